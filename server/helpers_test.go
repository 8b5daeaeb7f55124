package server

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"concord/crdt"
)

// startServer runs a Server on a loopback port with a fresh single-node
// LocalStore and stops both when the test ends.
func startServer(t testing.TB, opts Options) (*Server, string) {
	t.Helper()
	store := newTestLocalStore(t)
	return serveStore(t, store, opts)
}

// newTestLocalStore returns a single-node LocalStore closed when the test
// ends (after the servers using it, which register their cleanup later).
func newTestLocalStore(t testing.TB) *LocalStore {
	store := NewLocalStore(crdt.NewKeyspace(crdt.Origin{Region: 1, Incarnation: 1}, crdt.Options{Solo: true}), LocalOptions{})
	t.Cleanup(func() { store.Close() })
	return store
}

// serveStore runs a Server for store on a loopback port and stops it when
// the test ends; it does not close the store.
func serveStore(t testing.TB, store Store, opts Options) (*Server, string) {
	t.Helper()
	srv := New(store, opts)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	t.Cleanup(func() {
		srv.Close()
		if err := <-done; !errors.Is(err, ErrServerClosed) {
			t.Errorf("Serve returned %v", err)
		}
	})
	return srv, ln.Addr().String()
}

// hasCommands reports whether the crdt engine has all the named data
// commands (they land in main group by group).
func hasCommands(names ...string) bool {
	for _, n := range names {
		if crdt.Lookup([]byte(n)) == nil {
			return false
		}
	}
	return true
}

// rawConn is a test client that speaks raw RESP and returns each reply's
// exact bytes.
type rawConn struct {
	t  testing.TB
	nc net.Conn
	br *bufio.Reader
}

func dial(t testing.TB, addr string) *rawConn {
	t.Helper()
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	return &rawConn{t: t, nc: nc, br: bufio.NewReader(nc)}
}

// send writes raw bytes.
func (c *rawConn) send(s string) {
	c.t.Helper()
	if _, err := c.nc.Write([]byte(s)); err != nil {
		c.t.Fatalf("write: %v", err)
	}
}

// encode renders args as a RESP multibulk request.
func encode(args ...string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "*%d\r\n", len(args))
	for _, a := range args {
		fmt.Fprintf(&b, "$%d\r\n%s\r\n", len(a), a)
	}
	return b.String()
}

// do sends one command and returns its reply's raw bytes.
func (c *rawConn) do(args ...string) string {
	c.t.Helper()
	c.send(encode(args...))
	return c.read()
}

// read returns the next reply's raw bytes, failing the test on timeout.
func (c *rawConn) read() string {
	c.t.Helper()
	c.nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	var b bytes.Buffer
	if err := readValue(c.br, &b); err != nil {
		c.t.Fatalf("read reply: %v (got so far %q)", err, b.String())
	}
	return b.String()
}

// expect checks the next reply.
func (c *rawConn) expect(want string, args ...string) {
	c.t.Helper()
	if got := c.do(args...); got != want {
		c.t.Errorf("%q:\n got %q\nwant %q", args, got, want)
	}
}

// expectClosed checks that the server closes the connection, after
// sending exactly the bytes in want first.
func (c *rawConn) expectClosed(want string) {
	c.t.Helper()
	c.nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	got, err := io.ReadAll(c.br)
	// A server that closes while the client is still sending makes the
	// kernel answer with a reset; that is a close too, but it may drop
	// bytes sent before it, so it counts only when nothing was expected.
	if err != nil && !(want == "" && errors.Is(err, syscall.ECONNRESET)) {
		c.t.Fatalf("waiting for close: %v (got %q)", err, got)
	}
	if string(got) != want {
		c.t.Errorf("before close got %q, want %q", got, want)
	}
}

// readValue copies one RESP2/RESP3 value from r to w.
func readValue(r *bufio.Reader, w *bytes.Buffer) error {
	line, err := r.ReadString('\n')
	w.WriteString(line)
	if err != nil {
		return err
	}
	if len(line) < 3 || !strings.HasSuffix(line, "\r\n") {
		return fmt.Errorf("bad line %q", line)
	}
	body := line[1 : len(line)-2]
	switch line[0] {
	case '+', '-', ':', ',', '#', '_', '(':
		return nil
	case '$', '=', '!':
		n, err := strconv.Atoi(body)
		if err != nil {
			return err
		}
		if n < 0 {
			return nil
		}
		buf := make([]byte, n+2)
		_, err = io.ReadFull(r, buf)
		w.Write(buf)
		return err
	case '*', '~', '>', '%', '|':
		n, err := strconv.Atoi(body)
		if err != nil {
			return err
		}
		if line[0] == '%' || line[0] == '|' {
			n *= 2
		}
		for i := 0; i < n; i++ {
			if err := readValue(r, w); err != nil {
				return err
			}
		}
		return nil
	}
	return fmt.Errorf("unknown type in %q", line)
}
