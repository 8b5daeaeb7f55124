package main

import (
	"bufio"
	"fmt"
	"net"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// freePortRun returns a port p such that p..p+n-1 are free right now.
func freePortRun(t *testing.T, n int) int {
	t.Helper()
	for try := 0; try < 50; try++ {
		base := 20000 + (time.Now().Nanosecond()/1000)%30000
		ok := true
		var ls []net.Listener
		for i := 0; i < n && ok; i++ {
			l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(base+i))
			if err != nil {
				ok = false
				break
			}
			ls = append(ls, l)
		}
		for _, l := range ls {
			l.Close()
		}
		if ok {
			return base
		}
	}
	t.Fatal("no free port run")
	return 0
}

// startLocal runs `concord local` and waits until it lists its nodes.
func startLocal(t *testing.T, args ...string) (*exec.Cmd, []string) {
	t.Helper()
	cmd := exec.Command(buildBinary(t), append([]string{"local"}, args...)...)
	cmd.Env = cleanEnv()
	stderr := &syncBuffer{}
	cmd.Stderr = stderr
	out, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	var addrs []string
	br := bufio.NewReader(out)
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			t.Fatalf("concord local: %v; stderr:\n%s", err, stderr)
		}
		if strings.Contains(line, " running") {
			break
		}
		f := strings.Fields(line) // node n1: redis-cli -h H -p P ...
		if len(f) >= 7 && f[0] == "node" {
			addrs = append(addrs, net.JoinHostPort(f[4], f[6]))
		}
	}
	go func() { // keep draining
		for {
			if _, err := br.ReadString('\n'); err != nil {
				return
			}
		}
	}()
	return cmd, addrs
}

// `concord local --nodes 3` runs a whole region in one process: a write on
// one node is read on another, and the data survives Ctrl-C and a restart.
func TestLocalRegion(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	dir := t.TempDir()
	port, raftPort := freePortRun(t, 3), freePortRun(t, 3)
	args := []string{"--nodes", "3", "--port", fmt.Sprint(port), "--raft-port", fmt.Sprint(raftPort), "--data-dir", dir}
	cmd, addrs := startLocal(t, args...)
	if len(addrs) != 3 {
		t.Fatalf("nodes listed: %v", addrs)
	}
	for _, a := range addrs {
		waitReady(t, a)
	}
	c, err := dialRESP(addrs[1], "", 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{{"SET", "greeting", "hello"}, {"INCR", "visits"}} {
		if r, err := c.do(args...); err != nil || r.kind == '-' {
			t.Fatalf("%v: %+v %v", args, r, err)
		}
	}
	c.Close()
	read := func(addr string) string {
		c, err := dialRESP(addr, "", 10*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		r, err := c.do("GET", "greeting")
		if err != nil {
			t.Fatal(err)
		}
		return r.str
	}
	if got := read(addrs[0]); got != "hello" {
		t.Fatalf("GET on n1 after SET on n2: %q", got)
	}
	cmd.Process.Signal(syscall.SIGINT)
	if err := waitExit(t, cmd); err != nil {
		t.Fatalf("exit after Ctrl-C: %v", err)
	}
	_, addrs = startLocal(t, args...)
	for _, a := range addrs {
		waitReady(t, a)
	}
	if got := read(addrs[2]); got != "hello" {
		t.Fatalf("GET after restart: %q", got)
	}
}

// `concord local --regions 3` runs three regions that replicate with each
// other: a counter incremented in every region adds up everywhere, a
// write in one region is read in the others, and all survive a restart.
func TestLocalRegions(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	dir := t.TempDir()
	port, raftPort, replPort := freePortRun(t, 3), freePortRun(t, 3), freePortRun(t, 3)
	args := []string{"--regions", "3", "--port", fmt.Sprint(port), "--raft-port", fmt.Sprint(raftPort),
		"--repl-port", fmt.Sprint(replPort), "--data-dir", dir}
	cmd, addrs := startLocal(t, args...)
	if len(addrs) != 3 {
		t.Fatalf("nodes listed: %v", addrs)
	}
	for _, a := range addrs {
		waitReady(t, a)
	}
	do := func(addr string, args ...string) reply {
		t.Helper()
		c, err := dialRESP(addr, "", 10*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		r, err := c.do(args...)
		if err != nil || r.kind == '-' {
			t.Fatalf("%s %v: %+v %v", addr, args, r, err)
		}
		return r
	}
	for i, a := range addrs {
		do(a, "INCRBY", "visits", fmt.Sprint(i+1))
	}
	do(addrs[0], "SET", "greeting", "hello")
	waitFor := func(addr, key, want string) {
		t.Helper()
		deadline := time.Now().Add(20 * time.Second)
		for {
			got := do(addr, "GET", key).str
			if got == want {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("GET %s on %s = %q, want %q", key, addr, got, want)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	for _, a := range addrs {
		waitFor(a, "visits", "6")
		waitFor(a, "greeting", "hello")
	}
	cmd.Process.Signal(syscall.SIGINT)
	if err := waitExit(t, cmd); err != nil {
		t.Fatalf("exit after Ctrl-C: %v", err)
	}
	_, addrs = startLocal(t, args...)
	for _, a := range addrs {
		waitReady(t, a)
	}
	do(addrs[2], "INCR", "visits")
	for _, a := range addrs {
		waitFor(a, "visits", "7")
	}
}
