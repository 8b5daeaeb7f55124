package server

import (
	"bufio"
	"bytes"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"concord/crdt"
)

// FuzzRequest feeds arbitrary bytes to the request path: the parser must
// give the same commands however the input is split, and a server
// connection fed the bytes must not panic, must answer only well-formed
// RESP and must finish (or be stopped by Close). The seed corpus is in
// testdata/fuzz/FuzzRequest.
func FuzzRequest(f *testing.F) {
	for _, s := range []string{
		"*1\r\n$4\r\nPING\r\n",
		"PING\r\nECHO \"a\\x00b\"\r\n",
		"*-10\r\n*0\r\n*2\r\n$4\r\nECHO\r\n$0\r\n\r\n",
		"*3\r\n$6\r\nCLIENT\r\n$7\r\nSETNAME\r\n$1\r\nx\r\n*2\r\n$5\r\nHELLO\r\n$1\r\n3\r\n",
		"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\nv\r\n*2\r\n$3\r\nGET\r\n$1\r\nk\r\n",
		"CONFIG SET requirepass x\r\nPING\r\nAUTH x\r\nINFO\r\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		lim := reqLimits{maxBulk: 1 << 20}
		whole := parseAll(string(data), lim, 1<<20)
		for _, chunk := range []int{1, 5} {
			if got := parseAll(string(data), lim, chunk); strings.Join(got, "\n") != strings.Join(whole, "\n") {
				t.Fatalf("chunk %d: %q\nwhole: %q", chunk, got, whole)
			}
		}
		serveBytes(t, data)
	})
}

// serveBytes runs one server connection over data and checks its output.
func serveBytes(t *testing.T, data []byte) {
	store := NewLocalStore(crdt.NewKeyspace(crdt.Origin{Region: 1, Incarnation: 1}, crdt.Options{Solo: true}), LocalOptions{})
	defer store.Close()
	srv := New(store, Options{NoActiveExpiry: true, ProtoMaxBulkLen: 1 << 20})
	fc := newFakeConn(data)
	srv.accept(fc)
	select {
	case <-fc.closed:
	case <-time.After(2 * time.Second):
		// Something waits (DEBUG SLEEP): Close must end it.
		go srv.Close()
		select {
		case <-fc.closed:
		case <-time.After(5 * time.Second):
			t.Fatalf("connection still running 5s after Close")
		}
	}
	srv.Close()
	out := fc.output()
	br := bufio.NewReader(bytes.NewReader(out))
	for {
		if _, err := br.Peek(1); err == io.EOF {
			break
		}
		var v bytes.Buffer
		if err := readValue(br, &v); err != nil {
			t.Fatalf("malformed reply %q in output %q: %v", v.String(), out, err)
		}
	}
}

// fakeConn is a net.Conn whose input is a fixed byte string and whose
// output is recorded (up to a cap).
type fakeConn struct {
	in     *bytes.Reader
	mu     sync.Mutex
	out    bytes.Buffer
	closed chan struct{}
	once   sync.Once
}

func newFakeConn(data []byte) *fakeConn {
	return &fakeConn{in: bytes.NewReader(data), closed: make(chan struct{})}
}

func (c *fakeConn) Read(p []byte) (int, error) {
	select {
	case <-c.closed:
		return 0, net.ErrClosed
	default:
	}
	return c.in.Read(p)
}

func (c *fakeConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.out.Len() < 8<<20 {
		c.out.Write(p)
	}
	return len(p), nil
}

func (c *fakeConn) output() []byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.out.Len() >= 8<<20 {
		return nil // truncated: not checked
	}
	return append([]byte(nil), c.out.Bytes()...)
}

func (c *fakeConn) Close() error {
	c.once.Do(func() { close(c.closed) })
	return nil
}

var fakeAddr = &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 1}

func (c *fakeConn) LocalAddr() net.Addr                { return fakeAddr }
func (c *fakeConn) RemoteAddr() net.Addr               { return fakeAddr }
func (c *fakeConn) SetDeadline(t time.Time) error      { return nil }
func (c *fakeConn) SetReadDeadline(t time.Time) error  { return nil }
func (c *fakeConn) SetWriteDeadline(t time.Time) error { return nil }
