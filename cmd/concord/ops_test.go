package main

import (
	"net"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"

	"concord/server"
)

// runCmd runs the command line args in-process and returns its exit status,
// stdout and stderr.
func runCmd(args ...string) (int, string, string) {
	var out, errOut strings.Builder
	code := run(args, &out, &errOut)
	return code, out.String(), errOut.String()
}

// checkFail asserts exit status 1 with exactly one line on stderr
// containing want.
func checkFail(t *testing.T, code int, stderr, want string) {
	t.Helper()
	if code != exitFail || strings.Count(stderr, "\n") != 1 || !strings.HasSuffix(stderr, "\n") || !strings.Contains(stderr, want) {
		t.Errorf("exit %d, stderr %q; want 1 and one line containing %q", code, stderr, want)
	}
}

func TestHealthcheck(t *testing.T) {
	clearEnv(t)
	addr := startConcord(t, server.Options{})
	for _, args := range [][]string{{"--addr", addr}, {"--addr", addr, "--ready"}, {"--ready", "--addr=" + addr, "--timeout", "5s"}} {
		if code, out, errOut := runCmd(append([]string{"healthcheck"}, args...)...); code != 0 || out != "" || errOut != "" {
			t.Errorf("%v: exit %d, stdout %q, stderr %q", args, code, out, errOut)
		}
	}

	// Nothing listening.
	code, _, errOut := runCmd("healthcheck", "--addr", freeAddr(t))
	checkFail(t, code, errOut, "connection refused")

	// Accepts but never answers: the timeout ends it.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			defer nc.Close()
		}
	}()
	code, _, errOut = runCmd("healthcheck", "--addr", ln.Addr().String(), "--timeout", "200ms")
	checkFail(t, code, errOut, "timeout")

	// Answers PING with something else.
	f := startFake(t, func([]string) string { return "-LOADING Redis is loading the dataset in memory\r\n" })
	code, _, errOut = runCmd("healthcheck", "--addr", f.addr)
	checkFail(t, code, errOut, "LOADING")

	code, _, errOut = runCmd("healthcheck", "--addr", addr, "extra")
	if code != exitUsage {
		t.Errorf("extra argument: exit %d, stderr %q", code, errOut)
	}
}

// The password comes from --password, else from the configuration the
// server reads (file, then environment).
func TestHealthcheckAuth(t *testing.T) {
	clearEnv(t)
	addr := startConcord(t, server.Options{RequirePass: "s3cret"})
	code, _, errOut := runCmd("healthcheck", "--addr", addr)
	checkFail(t, code, errOut, "NOAUTH")
	code, _, errOut = runCmd("healthcheck", "--addr", addr, "--password", "nope")
	checkFail(t, code, errOut, "WRONGPASS")
	if code, _, errOut := runCmd("healthcheck", "--addr", addr, "--password", "s3cret"); code != 0 {
		t.Errorf("--password: exit %d, %q", code, errOut)
	}

	file := writeFile(t, "addr "+addr+"\nrequirepass s3cret\n")
	if code, _, errOut := runCmd("healthcheck", "--config", file); code != 0 {
		t.Errorf("--config: exit %d, %q", code, errOut)
	}
	t.Setenv("CONCORD_CONFIG", file)
	if code, _, errOut := runCmd("healthcheck"); code != 0 {
		t.Errorf("CONCORD_CONFIG: exit %d, %q", code, errOut)
	}
	t.Setenv("CONCORD_REQUIREPASS", "nope") // environment over file
	code, _, errOut = runCmd("healthcheck")
	checkFail(t, code, errOut, "WRONGPASS")

	t.Setenv("CONCORD_CONFIG", writeFile(t, "bogus 1\n"))
	code, _, errOut = runCmd("healthcheck", "--password", "s3cret")
	checkFail(t, code, errOut, "unknown directive")
}

// --ready reads region_ready from INFO replication.
func TestHealthcheckReady(t *testing.T) {
	clearEnv(t)
	var ready atomic.Value
	ready.Store("0")
	f := startFake(t, func(args []string) string {
		switch strings.ToUpper(args[0]) {
		case "PING":
			return "+PONG\r\n"
		case "INFO":
			return bulk("# Replication\r\nrole:slave\r\nregion_state:Follower\r\nregion_ready:" + ready.Load().(string) +
				"\r\nregion_leader_id:\r\n")
		}
		return "-ERR unexpected\r\n"
	})
	if code, _, errOut := runCmd("healthcheck", "--addr", f.addr); code != 0 {
		t.Errorf("alive: exit %d, %q", code, errOut)
	}
	code, _, errOut := runCmd("healthcheck", "--addr", f.addr, "--ready")
	checkFail(t, code, errOut, "not ready: region_ready:0 region_state:Follower")
	ready.Store("1")
	if code, _, errOut := runCmd("healthcheck", "--addr", f.addr, "--ready"); code != 0 {
		t.Errorf("ready: exit %d, %q", code, errOut)
	}

	// A real redis-server has no region_ready field: ready.
	raddr := startRedis(t, 7702)
	if code, _, errOut := runCmd("healthcheck", "--addr", raddr, "--ready"); code != 0 {
		t.Errorf("redis-server: exit %d, %q", code, errOut)
	}
}

func TestRegionCmd(t *testing.T) {
	clearEnv(t)
	f := startFake(t, func(args []string) string {
		switch strings.ToUpper(strings.Join(args, " ")) {
		case "AUTH PW":
			return "+OK\r\n"
		case "REGION NODES":
			return "*2\r\n*5\r\n" + bulk("n1") + bulk("127.0.0.1:7001") + bulk("voter") + bulk("leader") + bulk("127.0.0.1:6001") +
				"*5\r\n" + bulk("n2") + bulk("127.0.0.1:7002") + bulk("voter") + bulk("follower") + bulk("")
		case "REGION STATUS":
			return "*4\r\n" + bulk("state") + bulk("Leader") + bulk("term") + ":3\r\n"
		case "REGION ADD N4 127.0.0.1:7004", "REGION TRANSFER", "REGION TRANSFER N2", "REGION SNAPSHOT":
			return "+OK\r\n"
		case "REGION REMOVE N9":
			return "-ERR no node n9 in the region\r\n"
		}
		return "-ERR unexpected " + strings.Join(args, " ") + "\r\n"
	})
	sent := func() []string {
		t.Helper()
		select {
		case a := <-f.got:
			return a
		default:
			return nil
		}
	}
	code, out, errOut := runCmd("region", "nodes", "--addr", f.addr)
	wantTable := "ID  RAFT-ADDR       SUFFRAGE  ROLE      RESP-ADDR\n" +
		"n1  127.0.0.1:7001  voter     leader    127.0.0.1:6001\n" +
		"n2  127.0.0.1:7002  voter     follower  -\n"
	if code != 0 || out != wantTable || errOut != "" {
		t.Errorf("nodes: exit %d, stdout\n%s, stderr %q", code, out, errOut)
	}
	if got := sent(); !reflect.DeepEqual(got, []string{"REGION", "NODES"}) {
		t.Errorf("nodes sent %q", got)
	}

	// Flags anywhere; AUTH first when a password is given.
	code, out, _ = runCmd("region", "--password", "pw", "add", "n4", "--addr", f.addr, "127.0.0.1:7004")
	if code != 0 || out != "OK\n" {
		t.Errorf("add: exit %d, stdout %q", code, out)
	}
	if a, b := sent(), sent(); !reflect.DeepEqual(a, []string{"AUTH", "pw"}) || !reflect.DeepEqual(b, []string{"REGION", "ADD", "n4", "127.0.0.1:7004"}) {
		t.Errorf("add sent %q, %q", a, b)
	}

	for _, args := range [][]string{{"transfer"}, {"transfer", "n2"}, {"snapshot"}} {
		if code, out, errOut := runCmd(append([]string{"region", "--addr", f.addr}, args...)...); code != 0 || out != "OK\n" {
			t.Errorf("%v: exit %d, stdout %q, stderr %q", args, code, out, errOut)
		}
	}
	if code, out, _ := runCmd("region", "status", "--addr", f.addr); code != 0 || out != "state: Leader\nterm: 3\n" {
		t.Errorf("status: exit %d, stdout %q", code, out)
	}

	code, out, errOut = runCmd("region", "remove", "n9", "--addr", f.addr)
	checkFail(t, code, errOut, "ERR no node n9 in the region")
	if out != "" {
		t.Errorf("error reply printed on stdout: %q", out)
	}
	code, _, errOut = runCmd("region", "status", "--addr", freeAddr(t))
	checkFail(t, code, errOut, "connection refused")

	for _, args := range [][]string{{}, {"add", "n4"}, {"remove"}, {"transfer", "a", "b"}, {"bogus"}, {"nodes", "--bogus"}} {
		if code, _, _ := runCmd(append([]string{"region", "--addr", f.addr}, args...)...); code != exitUsage {
			t.Errorf("%v: exit %d, want %d", args, code, exitUsage)
		}
	}
}

func TestPrintReply(t *testing.T) {
	s := func(v string) reply { return reply{kind: '$', str: v} }
	arr := func(e ...reply) reply { return reply{kind: '*', elems: e} }
	for _, tc := range []struct {
		r    reply
		want string
	}{
		{reply{kind: '+', str: "OK"}, "OK\n"},
		{reply{kind: ':', num: 7}, "7\n"},
		{reply{kind: '$', null: true}, "(nil)\n"},
		{s("line1\nline2\n"), "line1\nline2\n"},
		{arr(s("state"), s("Leader"), s("commit_index"), reply{kind: ':', num: 9}), "state: Leader\ncommit_index: 9\n"},
		{arr(arr(s("state"), s("Leader")), arr(s("peers"), arr(s("a"), s("b")))), "state: Leader\npeers: a b\n"},
		{arr(s("n1"), s("n2"), s("n3")), "n1\nn2\nn3\n"},
		{arr(s("127.0.0.1:1"), s("x")), "127.0.0.1:1\nx\n"},
	} {
		var b strings.Builder
		printReply(&b, tc.r)
		if b.String() != tc.want {
			t.Errorf("%+v: %q, want %q", tc.r, b.String(), tc.want)
		}
	}
}
