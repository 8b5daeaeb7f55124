package main

import (
	"bufio"
	"io"
	"net"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestParseArgs(t *testing.T) {
	t.Setenv("CONCORD_ADDR", "127.0.0.1:7000")
	t.Setenv("CONCORD_MAXCLIENTS", "50")
	t.Setenv("CONCORD_REGION", "3")
	c, err := parseArgs([]string{"server", "--maxclients", "60", "--requirepass", "pw", "--incarnation", "2"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	// Environment sets defaults, flags win.
	if c.addr != "127.0.0.1:7000" || c.maxClients != 60 || c.requirePass != "pw" || c.region != 3 || c.incarnation != 2 {
		t.Errorf("config = %+v", c)
	}
	if _, err := parseArgs([]string{"bogus"}, io.Discard); err == nil {
		t.Error("unknown subcommand accepted")
	}
	if _, err := parseArgs([]string{"--region", "5000000000"}, io.Discard); err == nil {
		t.Error("64-bit region accepted")
	}
}

// TestBinary builds concord, starts it, talks RESP to it and stops it with
// SIGTERM: it must exit cleanly.
func TestBinary(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	cmd, addr := startBinary(t, "--requirepass", "pw")
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	nc.SetDeadline(time.Now().Add(5 * time.Second))
	nc.Write([]byte("PING\r\nAUTH pw\r\nPING\r\n"))
	br := bufio.NewReader(nc)
	var got []string
	for i := 0; i < 3; i++ {
		s, err := br.ReadString('\n')
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, s)
	}
	if strings.Join(got, "") != "-NOAUTH Authentication required.\r\n+OK\r\n+PONG\r\n" {
		t.Errorf("replies %q", got)
	}
	cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("exit after SIGTERM: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("still running 10s after SIGTERM")
	}
	// The client was disconnected.
	if _, err := br.ReadString('\n'); err == nil {
		t.Error("connection still open after shutdown")
	}
}

// SHUTDOWN from a client stops the process cleanly, closing the connection
// without a reply as Redis does; SHUTDOWN SAVE is refused (nothing can be
// saved yet) and leaves the node running.
func TestShutdownCommand(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	cmd, addr := startBinary(t)
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	nc.SetDeadline(time.Now().Add(5 * time.Second))
	br := bufio.NewReader(nc)
	nc.Write([]byte("SHUTDOWN SAVE\r\nSHUTDOWN ABORT\r\nPING\r\n"))
	for _, want := range []string{"-ERR Errors trying to SHUTDOWN. Check logs.\r\n", "-ERR No shutdown in progress.\r\n", "+PONG\r\n"} {
		if got, err := br.ReadString('\n'); err != nil || got != want {
			t.Fatalf("got %q (%v), want %q", got, err, want)
		}
	}
	nc.Write([]byte("SHUTDOWN NOSAVE\r\n"))
	if got, err := br.ReadString('\n'); err == nil {
		t.Errorf("SHUTDOWN replied %q; Redis closes without a reply", got)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("exit after SHUTDOWN: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("still running 10s after SHUTDOWN")
	}
}

// startBinary builds concord, starts it on a free loopback port with args
// and waits for its "serving RESP" line. The process is killed when the
// test ends if it is still running.
func startBinary(t *testing.T, args ...string) (*exec.Cmd, string) {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "concord")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	cmd := exec.Command(bin, append([]string{"--addr", addr}, args...)...)
	stdout, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill() })
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil || !strings.Contains(line, "serving RESP on "+addr) {
		t.Fatalf("first line %q, %v", line, err)
	}
	return cmd, addr
}
