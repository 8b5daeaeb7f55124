package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// The environment overrides defaults and flags override the environment;
// subcommands are dispatched before any configuration is read.
func TestParseArgs(t *testing.T) {
	clearEnv(t)
	t.Setenv("CONCORD_ADDR", "127.0.0.1:7000")
	t.Setenv("CONCORD_MAXCLIENTS", "50")
	t.Setenv("CONCORD_REGION", "3")
	c, err := loadConfig([]string{"--maxclients", "60", "--requirepass", "pw", "--incarnation", "2"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if c.addr != "127.0.0.1:7000" || c.maxClients != 60 || c.requirePass != "pw" || c.region != 3 || c.incarnation != 2 {
		t.Errorf("config = %+v", c)
	}
	var out, errOut strings.Builder
	if code := run([]string{"bogus"}, &out, &errOut); code != exitUsage || !strings.Contains(errOut.String(), "unknown subcommand") {
		t.Errorf("unknown subcommand: exit %d, stderr %q", code, errOut.String())
	}
	out.Reset()
	if code := run([]string{"version"}, &out, &errOut); code != 0 || !strings.HasPrefix(out.String(), "concord ") {
		t.Errorf("version: exit %d, stdout %q", code, out.String())
	}
	errOut.Reset()
	if code := run([]string{"--region", "5000000000"}, &out, &errOut); code != exitUsage || !strings.Contains(errOut.String(), "region") {
		t.Errorf("64-bit region: exit %d, stderr %q", code, errOut.String())
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

// binDir holds the concord binary built for this test process.
var (
	binOnce sync.Once
	binDir  string
	binErr  error
)

func TestMain(m *testing.M) {
	code := m.Run()
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	os.Exit(code)
}

// buildBinary builds concord once per test process and returns its path.
func buildBinary(t *testing.T) string {
	t.Helper()
	binOnce.Do(func() {
		if binDir, binErr = os.MkdirTemp("", "concord-bin"); binErr != nil {
			return
		}
		out, err := exec.Command("go", "build", "-o", filepath.Join(binDir, "concord"), ".").CombinedOutput()
		if err != nil {
			binErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if binErr != nil {
		t.Fatal(binErr)
	}
	return filepath.Join(binDir, "concord")
}

// freeAddr returns a loopback address nothing listens on right now.
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// startBinary starts concord on a free loopback port with args and waits
// for its "serving RESP" line. The process is killed when the test ends if
// it is still running.
func startBinary(t *testing.T, args ...string) (*exec.Cmd, string) {
	t.Helper()
	p := startProc(t, append([]string{"--addr", freeAddr(t)}, args...)...)
	return p.cmd, p.addr
}

// proc is a running concord process.
type proc struct {
	cmd    *exec.Cmd
	addr   string      // RESP address from its "serving RESP" line
	stderr *syncBuffer // its logs
}

// startProc starts concord with args (which set the address) and waits for
// its "serving RESP" line.
func startProc(t *testing.T, args ...string) *proc {
	t.Helper()
	p := &proc{cmd: exec.Command(buildBinary(t), args...), stderr: &syncBuffer{}}
	p.cmd.Env = cleanEnv()
	p.cmd.Stderr = p.stderr
	stdout, _ := p.cmd.StdoutPipe()
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.cmd.Process.Kill(); p.cmd.Wait() })
	line, err := bufio.NewReader(stdout).ReadString('\n')
	_, rest, ok := strings.Cut(line, "serving RESP on ")
	if err != nil || !ok {
		t.Fatalf("first line %q, %v; stderr:\n%s", line, err, p.stderr)
	}
	p.addr, _, _ = strings.Cut(rest, " ")
	return p
}

// syncBuffer is a bytes.Buffer safe for a writer and readers at once.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// cleanEnv is the test process's environment without CONCORD_* variables.
func cleanEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "CONCORD_") {
			env = append(env, kv)
		}
	}
	return env
}

// waitExit waits for cmd to exit and returns its error.
func waitExit(t *testing.T, cmd *exec.Cmd) error {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		return err
	case <-time.After(20 * time.Second):
		t.Fatal("still running 20s after being asked to stop")
		return nil
	}
}

// A single node configured by file serves the probes and metrics, answers
// the healthcheck subcommand (run as its own process, as a container's
// HEALTHCHECK would), logs JSON, and stops cleanly on SIGTERM.
func TestBinaryOps(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	metrics := freeAddr(t)
	conf := writeFile(t, "addr "+freeAddr(t)+"\nrequirepass pw\nmetrics-addr "+metrics+"\nlog-format json\n")
	p := startProc(t, "--config", conf)
	get := func(path string) (int, string) {
		t.Helper()
		resp, err := http.Get("http://" + metrics + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	for _, path := range []string{"/healthz", "/readyz"} {
		if code, body := get(path); code != 200 {
			t.Errorf("%s: %d %q", path, code, body)
		}
	}
	if code, body := get("/metrics"); code != 200 || !strings.Contains(body, "go_goroutines") ||
		!strings.Contains(body, "process_resident_memory_bytes") || strings.Contains(body, "concord_raft") {
		t.Errorf("/metrics: %d\n%s", code, body)
	}

	healthcheck := func(args ...string) (int, string) {
		t.Helper()
		cmd := exec.Command(buildBinary(t), append([]string{"healthcheck"}, args...)...)
		cmd.Env = cleanEnv()
		out, err := cmd.CombinedOutput()
		var ee *exec.ExitError
		if err != nil && !errors.As(err, &ee) {
			t.Fatal(err)
		}
		return cmd.ProcessState.ExitCode(), string(out)
	}
	if code, out := healthcheck("--config", conf, "--ready"); code != 0 || out != "" {
		t.Errorf("healthcheck: exit %d, output %q", code, out)
	}
	if code, out := healthcheck("--addr", p.addr); code != 1 || !strings.Contains(out, "NOAUTH") {
		t.Errorf("healthcheck without password: exit %d, output %q", code, out)
	}

	p.cmd.Process.Signal(syscall.SIGTERM)
	if err := waitExit(t, p.cmd); err != nil {
		t.Errorf("exit after SIGTERM: %v\n%s", err, p.stderr)
	}
	if code, out := healthcheck("--config", conf); code != 1 || !strings.Contains(out, "connection refused") {
		t.Errorf("healthcheck after stop: exit %d, output %q", code, out)
	}
	if _, err := http.Get("http://" + metrics + "/healthz"); err == nil {
		t.Error("metrics endpoint still up after stop")
	}
	// Every log line is a JSON object; the last says the node stopped.
	lines := strings.Split(strings.TrimSpace(p.stderr.String()), "\n")
	for _, l := range lines {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Errorf("log line not JSON: %q", l)
		}
	}
	if last := lines[len(lines)-1]; !strings.Contains(last, `"msg":"stopped"`) {
		t.Errorf("last log line %q", last)
	}
}
