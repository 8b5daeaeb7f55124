package server

import (
	"io"
	"net"
	"strings"
	"testing"
	"time"
)

// Protocol limits and hostile input (issue 2, item 5). Each limit answers
// with Redis 7.0's error text and closes the connection as Redis does.

func TestProtoMaxBulkLen(t *testing.T) {
	_, addr := startServer(t, Options{NoActiveExpiry: true})
	c := dial(t, addr)
	c.expect("*2\r\n$18\r\nproto-max-bulk-len\r\n$9\r\n536870912\r\n", "CONFIG", "GET", "proto-max-bulk-len")
	dial(t, addr).sendClosed("*1\r\n$536870913\r\n", "-ERR Protocol error: invalid bulk length\r\n")
	c.expect("+OK\r\n", "CONFIG", "SET", "proto-max-bulk-len", "1mb")
	ok := strings.Repeat("b", 1<<20)
	c.expect("$1048576\r\n"+ok+"\r\n", "ECHO", ok)
	c.sendClosed("*2\r\n$4\r\nECHO\r\n$1048577\r\n", "-ERR Protocol error: invalid bulk length\r\n")
	c2 := dial(t, addr)
	c2.expect("-ERR CONFIG SET failed (possibly related to argument 'proto-max-bulk-len') - argument must be between 1048576 and 9223372036854775807 inclusive\r\n",
		"CONFIG", "SET", "proto-max-bulk-len", "1000")
}

// sendClosed sends raw input and expects exactly reply, then a close.
func (c *rawConn) sendClosed(input, reply string) {
	c.t.Helper()
	c.send(input)
	c.expectClosed(reply)
}

func TestMultibulkLimits(t *testing.T) {
	_, addr := startServer(t, Options{NoActiveExpiry: true})
	// "*-10" and "*0" are ignored, like Redis.
	c := dial(t, addr)
	c.send("*-10\r\n*0\r\n")
	c.expect("+PONG\r\n", "PING")
	dial(t, addr).sendClosed("*2147483648\r\n", "-ERR Protocol error: invalid multibulk length\r\n")
	dial(t, addr).sendClosed("*x\r\n", "-ERR Protocol error: invalid multibulk length\r\n")
	dial(t, addr).sendClosed("*1\r\nx\r\n", "-ERR Protocol error: expected '$', got 'x'\r\n")
	dial(t, addr).sendClosed("*1\r\n$-1\r\n", "-ERR Protocol error: invalid bulk length\r\n")
	dial(t, addr).sendClosed(strings.Repeat("*", 70000), "-ERR Protocol error: too big mbulk count string\r\n")
	dial(t, addr).sendClosed("*1\r\n$"+strings.Repeat("1", 70000), "-ERR Protocol error: too big bulk count string\r\n")
	dial(t, addr).sendClosed(strings.Repeat("a", 70000), "-ERR Protocol error: too big inline request\r\n")
	dial(t, addr).sendClosed("ping \"a\r\n", "-ERR Protocol error: unbalanced quotes in request\r\n")
	// Commands before the bad one still run and answer first.
	dial(t, addr).sendClosed("PING\r\n*1\r\n$4\r\nPING\r\n*1\r\n$-5\r\n", "+PONG\r\n+PONG\r\n-ERR Protocol error: invalid bulk length\r\n")
	// A huge announced count costs nothing until the arguments arrive.
	big := dial(t, addr)
	big.send("*1000000000\r\n$4\r\nECHO\r\n")
	time.Sleep(10 * time.Millisecond)
	c.expect("+PONG\r\n", "PING")
}

func TestQueryBufferLimit(t *testing.T) {
	_, addr := startServer(t, Options{NoActiveExpiry: true})
	c := dial(t, addr)
	c.expect("+OK\r\n", "CONFIG", "SET", "client-query-buffer-limit", "1mb")
	// A 2 MB argument is within proto-max-bulk-len but not within the
	// query buffer: the connection is closed without a reply.
	v := dial(t, addr)
	go func() {
		v.nc.Write([]byte("*2\r\n$4\r\nECHO\r\n$2000000\r\n"))
		v.nc.Write([]byte(strings.Repeat("z", 1500000))) // may fail once closed
	}()
	v.expectClosed("")
	// Below the limit all is well.
	small := strings.Repeat("s", 500000)
	c.expect("$500000\r\n"+small+"\r\n", "ECHO", small)
	c.expect("-ERR CONFIG SET failed (possibly related to argument 'client-query-buffer-limit') - argument must be a memory value\r\n",
		"CONFIG", "SET", "client-query-buffer-limit", "lots")
}

func TestMaxClients(t *testing.T) {
	srv, addr := startServer(t, Options{NoActiveExpiry: true, MaxClients: 2})
	a := dial(t, addr)
	a.expect("+PONG\r\n", "PING")
	b := dial(t, addr)
	b.expect("+PONG\r\n", "PING")
	dial(t, addr).expectClosed("-ERR max number of clients reached\r\n")
	if n := srv.stats.rejectedConns.Load(); n != 1 {
		t.Errorf("rejected_connections = %d, want 1", n)
	}
	a.expect("+OK\r\n", "CONFIG", "SET", "maxclients", "3")
	dial(t, addr).expect("+PONG\r\n", "PING")
	a.expect("-ERR CONFIG SET failed (possibly related to argument 'maxclients') - argument must be between 1 and 4294967295 inclusive\r\n",
		"CONFIG", "SET", "maxclients", "0")
	// A slot frees up when a client leaves.
	b.expect("+OK\r\n", "QUIT")
	b.expectClosed("")
	deadline := time.Now().Add(5 * time.Second)
	for srv.numClients() > 2 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	dial(t, addr).expect("+PONG\r\n", "PING")
}

func TestOutputBufferHardLimit(t *testing.T) {
	_, addr := startServer(t, Options{NoActiveExpiry: true})
	c := dial(t, addr)
	c.expect("*2\r\n$26\r\nclient-output-buffer-limit\r\n$67\r\nnormal 0 0 0 slave 268435456 67108864 60 pubsub 33554432 8388608 60\r\n",
		"CONFIG", "GET", "client-output-buffer-limit")
	c.expect("+OK\r\n", "CONFIG", "SET", "client-output-buffer-limit", "normal 1kb 0 0")
	c.expect("$500\r\n"+strings.Repeat("o", 500)+"\r\n", "ECHO", strings.Repeat("o", 500))
	// A reply above the hard limit closes the client; nothing of it is sent.
	c.send(encode("ECHO", strings.Repeat("o", 2000)))
	c.expectClosed("")
	d := dial(t, addr)
	d.expect("-ERR CONFIG SET failed (possibly related to argument 'client-output-buffer-limit') - Invalid client class specified in buffer limit configuration.\r\n",
		"CONFIG", "SET", "client-output-buffer-limit", "foo 1 2 3")
	d.expect("-ERR CONFIG SET failed (possibly related to argument 'client-output-buffer-limit') - Wrong number of arguments in buffer limit configuration.\r\n",
		"CONFIG", "SET", "client-output-buffer-limit", "normal 1 2")
}

func TestOutputBufferSoftLimit(t *testing.T) {
	if testing.Short() {
		t.Skip("waits for the soft limit's seconds")
	}
	_, addr := startServer(t, Options{NoActiveExpiry: true})
	c := dial(t, addr)
	c.expect("+OK\r\n", "CONFIG", "SET", "client-output-buffer-limit", "normal 0 64kb 1")
	// A client that asks for far more than the socket buffers hold and does
	// not read stays above the soft limit for more than a second: closed.
	val := strings.Repeat("q", 64<<10)
	const n = 400 // 26 MB of replies
	go func() {
		req := encode("ECHO", val)
		for i := 0; i < n; i++ {
			if _, err := c.nc.Write([]byte(req)); err != nil {
				return
			}
		}
	}()
	time.Sleep(2500 * time.Millisecond)
	c.nc.SetReadDeadline(time.Now().Add(10 * time.Second))
	got, err := io.Copy(io.Discard, c.nc)
	if ne, ok := err.(net.Error); ok && ne.Timeout() {
		t.Fatalf("connection not closed (read %d bytes)", got)
	}
	if full := int64(n * (len(val) + 10)); got >= full {
		t.Errorf("got all %d bytes of replies; the slow client was not closed", got)
	}
}

func TestIdleTimeout(t *testing.T) {
	_, addr := startServer(t, Options{NoActiveExpiry: true})
	c := dial(t, addr)
	c.expect("+OK\r\n", "CONFIG", "SET", "timeout", "1")
	idle := dial(t, addr)
	idle.expectClosed("")
	c.expectClosed("") // idle too, while the test waited
	c = dial(t, addr)
	c.expect("+OK\r\n", "CONFIG", "SET", "timeout", "0")
}

func TestHTTPRequestClosed(t *testing.T) {
	_, addr := startServer(t, Options{NoActiveExpiry: true})
	dial(t, addr).sendClosed("POST / HTTP/1.1\r\nHost: x\r\n\r\n", "")
	dial(t, addr).sendClosed("PING\r\nHost: x\r\n", "+PONG\r\n")
}

// TestOutputBufferLimitMidPipeline: once a pipeline's replies pass the hard
// limit, nothing more is sent, not even the later, small replies.
func TestOutputBufferLimitMidPipeline(t *testing.T) {
	_, addr := startServer(t, Options{NoActiveExpiry: true})
	c := dial(t, addr)
	c.expect("+OK\r\n", "CONFIG", "SET", "client-output-buffer-limit", "normal 10kb 0 0")
	c.send("PING\r\n" + encode("ECHO", strings.Repeat("e", 20000)) + "PING\r\nPING\r\n")
	c.nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	got, _ := io.ReadAll(c.br)
	if s := string(got); s != "" && s != "+PONG\r\n" {
		t.Errorf("after the limit the client got %q", s)
	}
}
