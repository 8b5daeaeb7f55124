package main

import (
	"bufio"
	"context"
	"io"
	"net"
	"os/exec"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"concord/crdt"
	"concord/server"
)

func TestReadReply(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want reply
	}{
		{"+OK\r\n", reply{kind: '+', str: "OK"}},
		{"-ERR no\r\n", reply{kind: '-', str: "ERR no"}},
		{":-42\r\n", reply{kind: ':', num: -42}},
		{"$5\r\na\r\nbc\r\n", reply{kind: '$', str: "a\r\nbc"}},
		{"$0\r\n\r\n", reply{kind: '$', str: ""}},
		{"$-1\r\n", reply{kind: '$', null: true}},
		{"*-1\r\n", reply{kind: '*', null: true}},
		{"*0\r\n", reply{kind: '*', elems: []reply{}}},
		{"*2\r\n*1\r\n:1\r\n$1\r\nx\r\n", reply{kind: '*', elems: []reply{
			{kind: '*', elems: []reply{{kind: ':', num: 1}}}, {kind: '$', str: "x"}}}},
	} {
		got, err := readReply(bufio.NewReader(strings.NewReader(tc.in)), 0)
		if err != nil || !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%q: %+v, %v; want %+v", tc.in, got, err, tc.want)
		}
	}
	for _, in := range []string{
		"", "+OK", "+OK\n", ":x\r\n", "$3\r\nab\r\n", "$3\r\nabcd\r\n", "$-2\r\n",
		"$99999999999\r\n", "*2\r\n:1\r\n", "*x\r\n", "%1\r\n", strings.Repeat("*1\r\n", 20) + ":1\r\n",
	} {
		if got, err := readReply(bufio.NewReader(strings.NewReader(in)), 0); err == nil {
			t.Errorf("%q: %+v, want an error", in, got)
		}
	}
}

// The client speaks to a real redis-server: AUTH, every reply type, and a
// refused password.
func TestRespClientRedis(t *testing.T) {
	addr := startRedis(t, 7701, "--requirepass", "pw")
	if _, err := dialRESP(addr, "wrong", 2*time.Second); err == nil || !strings.Contains(err.Error(), "WRONGPASS") {
		t.Errorf("wrong password: %v", err)
	}
	c, err := dialRESP(addr, "pw", 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for _, tc := range []struct {
		args []string
		want string // kind and text
	}{
		{[]string{"SET", "k", "v w\r\n"}, "+OK"},
		{[]string{"GET", "k"}, "$v w\r\n"},
		{[]string{"GET", "missing"}, "$(nil)"},
		{[]string{"RPUSH", "l", "a", "", "c"}, ":3"},
		{[]string{"LRANGE", "l", "0", "-1"}, "*a  c"},
		{[]string{"NOSUCH"}, "-ERR unknown command 'NOSUCH', with args beginning with: "},
	} {
		r, err := c.do(tc.args...)
		if err != nil {
			t.Fatalf("%v: %v", tc.args, err)
		}
		if got := string(r.kind) + r.text(); got != tc.want {
			t.Errorf("%v: %q, want %q", tc.args, got, tc.want)
		}
	}
	r, err := c.do("INFO", "replication")
	if err != nil || r.kind != '$' || infoFields(r.str)["role"] != "master" {
		t.Errorf("INFO replication: %+v, %v", r, err)
	}
}

// startRedis starts redis-server on port with args, skipping the test if it
// is not installed, and returns its address once it answers.
func startRedis(t *testing.T, port int, args ...string) string {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		t.Skip("redis-server is not installed")
	}
	addr := "127.0.0.1:" + strconv.Itoa(port)
	args = append([]string{"--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--save", "",
		"--appendonly", "no", "--dir", t.TempDir()}, args...)
	cmd := exec.Command(bin, args...)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	waitAccepting(t, addr)
	return addr
}

// waitAccepting polls until addr accepts connections.
func waitAccepting(t *testing.T, addr string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		nc, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			nc.Close()
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s not accepting: %v", addr, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// startConcord runs a single-node concord server in the test process and
// returns its address.
func startConcord(t *testing.T, opts server.Options) string {
	t.Helper()
	store := server.NewLocalStore(crdt.NewKeyspace(crdt.Origin{Region: 1, Incarnation: 1}, crdt.Options{Solo: true}), server.LocalOptions{})
	srv := server.New(store, opts)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close(); store.Close() })
	return ln.Addr().String()
}

// fakeNode is a RESP server answering each command with what answer
// returns (raw RESP), recording the commands it received.
type fakeNode struct {
	addr string
	got  chan []string
}

func startFake(t *testing.T, answer func(args []string) string) *fakeNode {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := &fakeNode{addr: ln.Addr().String(), got: make(chan []string, 100)}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(func() { cancel(); ln.Close() })
	go func() {
		for {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer nc.Close()
				context.AfterFunc(ctx, func() { nc.Close() })
				br := bufio.NewReader(nc)
				for {
					req, err := readReply(br, 0)
					if err != nil {
						return
					}
					args := make([]string, len(req.elems))
					for i, e := range req.elems {
						args[i] = e.str
					}
					f.got <- args
					if _, err := io.WriteString(nc, answer(args)); err != nil {
						return
					}
				}
			}()
		}
	}()
	return f
}

// bulk encodes s as a RESP bulk string.
func bulk(s string) string { return "$" + strconv.Itoa(len(s)) + "\r\n" + s + "\r\n" }
