package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"time"
)

// respConn is the smallest RESP2 client the ops subcommands need: one
// command at a time, the whole session (dial included) bounded by one
// deadline. It is not safe for concurrent use.
type respConn struct {
	nc net.Conn
	br *bufio.Reader
}

// reply is one RESP2 reply. kind is its type byte: '+' simple string, '-'
// error, ':' integer, '$' bulk string, '*' array.
type reply struct {
	kind  byte
	str   string // '+', '-', '$'
	num   int64  // ':'
	elems []reply
	null  bool // "$-1" or "*-1"
}

// Limits on what a reply may claim, so that a confused peer (not a Redis
// server at all) cannot make the client allocate without bound.
const (
	maxReplyBulk  = 64 << 20
	maxReplyElems = 1 << 20
	maxReplyDepth = 16
)

// dialRESP connects to addr and, if password is set, authenticates. The
// connection fails every operation once timeout has passed since the call.
func dialRESP(addr, password string, timeout time.Duration) (*respConn, error) {
	deadline := time.Now().Add(timeout)
	nc, err := net.DialTimeout("tcp", addr, timeout)
	if err != nil {
		return nil, err
	}
	nc.SetDeadline(deadline)
	c := &respConn{nc: nc, br: bufio.NewReader(nc)}
	if password != "" {
		r, err := c.do("AUTH", password)
		if err == nil && r.kind == '-' {
			err = errors.New(r.str)
		}
		if err != nil {
			nc.Close()
			return nil, fmt.Errorf("AUTH: %w", err)
		}
	}
	return c, nil
}

func (c *respConn) Close() error { return c.nc.Close() }

// do sends one command and reads its reply. An error reply is a reply, not
// an error; errors are for I/O and protocol failures.
func (c *respConn) do(args ...string) (reply, error) {
	var b []byte
	b = append(b, '*')
	b = strconv.AppendInt(b, int64(len(args)), 10)
	b = append(b, "\r\n"...)
	for _, a := range args {
		b = append(b, '$')
		b = strconv.AppendInt(b, int64(len(a)), 10)
		b = append(b, "\r\n"...)
		b = append(b, a...)
		b = append(b, "\r\n"...)
	}
	if _, err := c.nc.Write(b); err != nil {
		return reply{}, err
	}
	return readReply(c.br, 0)
}

func readReply(br *bufio.Reader, depth int) (reply, error) {
	line, err := br.ReadString('\n')
	if err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return reply{}, err
	}
	if len(line) < 3 || line[len(line)-2] != '\r' {
		return reply{}, fmt.Errorf("protocol error: bad line %q", line)
	}
	r := reply{kind: line[0]}
	body := line[1 : len(line)-2]
	switch r.kind {
	case '+', '-':
		r.str = body
		return r, nil
	case ':':
		r.num, err = strconv.ParseInt(body, 10, 64)
		if err != nil {
			return reply{}, fmt.Errorf("protocol error: bad integer %q", body)
		}
		return r, nil
	case '$':
		n, err := strconv.Atoi(body)
		if err != nil || n < -1 || n > maxReplyBulk {
			return reply{}, fmt.Errorf("protocol error: bad bulk length %q", body)
		}
		if n == -1 {
			r.null = true
			return r, nil
		}
		buf := make([]byte, n+2)
		if _, err := io.ReadFull(br, buf); err != nil {
			return reply{}, err
		}
		if string(buf[n:]) != "\r\n" {
			return reply{}, errors.New("protocol error: bulk string not terminated by CRLF")
		}
		r.str = string(buf[:n])
		return r, nil
	case '*':
		n, err := strconv.Atoi(body)
		if err != nil || n < -1 || n > maxReplyElems || depth >= maxReplyDepth {
			return reply{}, fmt.Errorf("protocol error: bad array length %q", body)
		}
		if n == -1 {
			r.null = true
			return r, nil
		}
		r.elems = make([]reply, 0, min(n, 1024))
		for range n {
			e, err := readReply(br, depth+1)
			if err != nil {
				return reply{}, err
			}
			r.elems = append(r.elems, e)
		}
		return r, nil
	}
	return reply{}, fmt.Errorf("protocol error: unexpected reply type %q", line[:1])
}

// text renders a scalar reply as a string; arrays render their elements
// joined by blanks.
func (r reply) text() string {
	switch {
	case r.null:
		return "(nil)"
	case r.kind == ':':
		return strconv.FormatInt(r.num, 10)
	case r.kind == '*':
		parts := make([]string, len(r.elems))
		for i, e := range r.elems {
			parts[i] = e.text()
		}
		return strings.Join(parts, " ")
	}
	return r.str
}
