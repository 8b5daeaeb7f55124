package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha1"
	"encoding/csv"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"os/exec"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// A test is one table row: a redis-benchmark -t test, or PUBLISH or
// EVALSHA run as custom command lines. Each round of each test is its own
// redis-benchmark invocation, so a command that fails (redis-benchmark
// 7.0 exits at the first error reply) costs only its own row, and every
// test gets the same pre-fill on every server rather than whatever the
// tests before it left behind.

// benchResult is one run's ops/s, or why there is no figure, and the CPU
// time the measured processes spent during the redis-benchmark run (not
// during the setup or the check).
type benchResult struct {
	rps          float64
	err          string
	cpu, leadCPU time.Duration // all the pids given to runTest; the first alone
}

const (
	benchList       = "mylist" // the key redis-benchmark's list tests use
	benchChannel    = "benchcmp:channel"
	benchCounter    = "benchcmp:evalsha"
	benchScript     = "return redis.call('incr', KEYS[1])"
	subscriberDrain = 10 * time.Second // how long published messages may take to arrive
)

// issued is how many requests redis-benchmark sends for -n n -P pipe:
// each client claims a whole pipeline of requests while fewer than n have
// been claimed, so the total rounds n up to a multiple of pipe.
func issued(n, pipe int) int {
	return (n + pipe - 1) / pipe * pipe
}

// runTest runs one test against addr: its setup, one redis-benchmark
// invocation, and a check that the server did what the figure claims
// (every RPOP popped an element, every EVALSHA ran its script, every
// PUBLISH reached the subscriber). A failed setup, run or check gives an
// error instead of a figure. pids are the server's processes, whose CPU
// time is measured around the run.
func runTest(o *options, addr, test string, n, pipe int, pids []int) benchResult {
	test = strings.ToLower(test)
	want := issued(n, pipe)
	c, err := dialClient(addr)
	if err != nil {
		return benchResult{err: err.Error()}
	}
	defer c.close()
	var command []string // nil: redis-benchmark's own -t test
	var after func() error
	switch test {
	case "lpush":
		before, err := c.int("LLEN", benchList)
		if err != nil {
			return benchResult{err: "setup: " + err.Error()}
		}
		after = func() error { return c.expectInt(before+want, "LLEN", benchList) }
	case "rpop":
		// Pop elements that are there: an RPOP of an empty list is a
		// cheaper command than the one this row is about. One more than
		// will be popped, so the check sees that exactly want were.
		if err := c.fillList(want+1, o.size); err != nil {
			return benchResult{err: "setup: " + err.Error()}
		}
		after = func() error { return c.expectInt(1, "LLEN", benchList) }
	case "lrange_100":
		// redis-benchmark's -t lrange_100 first pushes the list itself with
		// as many LPUSHes as it then sends LRANGEs, in the same run, which
		// would put the pre-fill into the CPU figures and double the time.
		// The same list (want elements of -d bytes) is pushed here instead
		// and the run sends the command line its LRANGE_100 sends.
		if err := c.fillList(want, o.size); err != nil {
			return benchResult{err: "setup: " + err.Error()}
		}
		command = []string{"lrange", benchList, "0", "99"}
		after = func() error { return c.expectInt(want, "LLEN", benchList) }
	case "publish":
		sub, err := subscribe(addr, benchChannel)
		if err != nil {
			return benchResult{err: "setup: " + err.Error()}
		}
		defer sub.close()
		command = []string{"publish", benchChannel, strings.Repeat("x", o.size)}
		after = func() error { return sub.wait(int64(want), subscriberDrain) }
	case "evalsha":
		sha, err := c.call("SCRIPT", "LOAD", benchScript)
		if err != nil {
			return benchResult{err: "setup: " + err.Error()}
		}
		sum := sha1.Sum([]byte(benchScript))
		if sha != hex.EncodeToString(sum[:]) {
			return benchResult{err: fmt.Sprintf("setup: SCRIPT LOAD replied %q", sha)}
		}
		before, err := c.int("GET", benchCounter)
		if err != nil {
			return benchResult{err: "setup: " + err.Error()}
		}
		command = []string{"evalsha", sha, "1", benchCounter}
		after = func() error { return c.expectInt(before+want, "GET", benchCounter) }
	}
	var before, beforeLead time.Duration
	if len(pids) > 0 {
		before, beforeLead = cpuTime(pids), cpuTime(pids[:1])
	}
	res := benchmark(o, addr, test, command, n, pipe)
	if len(pids) > 0 {
		res.cpu, res.leadCPU = cpuTime(pids)-before, cpuTime(pids[:1])-beforeLead
	}
	if res.err == "" && after != nil {
		if err := after(); err != nil {
			return benchResult{err: "check: " + err.Error()}
		}
	}
	return res
}

// benchmark runs redis-benchmark once, bounded by o.benchTimeout.
// command is a custom command line, nil for redis-benchmark's -t test.
func benchmark(o *options, addr, test string, command []string, n, pipe int) benchResult {
	host, port, _ := net.SplitHostPort(addr)
	args := []string{"-h", host, "-p", port, "-n", strconv.Itoa(n), "-c", strconv.Itoa(o.clients),
		"-r", strconv.Itoa(o.keyspace), "-d", strconv.Itoa(o.size), "-P", strconv.Itoa(pipe), "--csv"}
	if command == nil {
		args = append(args, "-t", test)
	} else {
		args = append(args, command...)
	}
	ctx, cancel := context.WithTimeout(context.Background(), o.benchTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, o.benchBin, args...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	if ctx.Err() != nil {
		return benchResult{err: fmt.Sprintf("redis-benchmark timed out after %v", o.benchTimeout)}
	}
	if err != nil {
		return benchResult{err: benchError(out.String(), err)}
	}
	row := test
	if command != nil {
		row = command[0]
	}
	rps, err := parseCSV(out.Bytes(), row)
	if err != nil {
		return benchResult{err: err.Error()}
	}
	return benchResult{rps: rps}
}

// benchError is the reason a redis-benchmark run failed: its "Error..."
// line (such as "Error from server: NOSCRIPT ..."), else its last line.
func benchError(out string, err error) string {
	last := ""
	for _, l := range strings.Split(out, "\n") {
		l = strings.TrimSpace(l)
		if strings.HasPrefix(l, "Error") {
			return l
		}
		if l != "" && !strings.HasPrefix(l, `"test"`) {
			last = l
		}
	}
	if last != "" {
		return last
	}
	return "redis-benchmark: " + err.Error()
}

// parseCSV picks test's ops/s from redis-benchmark's --csv output. Rows
// are named by their first word ("LRANGE_100 (first 100 elements)",
// "publish benchcmp:channel xxx"); the pre-fill row "LPUSH (needed to
// benchmark LRANGE)" is not the LPUSH test and is skipped.
func parseCSV(out []byte, test string) (float64, error) {
	recs, err := csv.NewReader(bytes.NewReader(out)).ReadAll()
	if err != nil {
		return 0, fmt.Errorf("redis-benchmark output: %v", err)
	}
	for _, rec := range recs {
		if len(rec) < 2 || rec[0] == "test" || strings.Contains(rec[0], "(needed") {
			continue
		}
		f := strings.Fields(rec[0])
		if len(f) == 0 || !strings.EqualFold(f[0], test) {
			continue
		}
		v, err := strconv.ParseFloat(rec[1], 64)
		if err != nil {
			return 0, fmt.Errorf("redis-benchmark output: rps %q", rec[1])
		}
		return v, nil
	}
	return 0, fmt.Errorf("redis-benchmark printed no %s row", strings.ToUpper(test))
}

// summarize is the median over rounds, or the first round's error: a
// figure made of only the rounds that worked would not be comparable.
func summarize(runs []benchResult) benchResult {
	var v []float64
	for _, r := range runs {
		if r.err != "" {
			return r
		}
		v = append(v, r.rps)
	}
	if len(v) == 0 {
		return benchResult{err: "no runs"}
	}
	return benchResult{rps: median(v)}
}

// cell prints a figure, or the error in its place (without the table's
// column separator).
func (r benchResult) cell() string {
	if r.err != "" {
		return "error: " + strings.ReplaceAll(r.err, "|", "/")
	}
	return fmt.Sprintf("%.0f", r.rps)
}

// ratioOf is a/b for two results, "n/a" if either has no figure.
func ratioOf(a, b benchResult) string {
	if a.err != "" || b.err != "" {
		return "n/a"
	}
	return ratio(a.rps, b.rps)
}

// client is a plain RESP2 connection for setups and checks; unlike
// respConn it returns errors, so they become a row's error.
type client struct {
	c net.Conn
	r *bufio.Reader
	w *bufio.Writer
}

func dialClient(addr string) (*client, error) {
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return nil, err
	}
	return &client{c: c, r: bufio.NewReaderSize(c, 1<<16), w: bufio.NewWriterSize(c, 1<<16)}, nil
}

func (c *client) close() { c.c.Close() }

func (c *client) send(args ...string) {
	fmt.Fprintf(c.w, "*%d\r\n", len(args))
	for _, a := range args {
		fmt.Fprintf(c.w, "$%d\r\n%s\r\n", len(a), a)
	}
}

// call sends one command and returns its reply: a status, integer or bulk
// string as text ("" for nil), an error reply as an error.
func (c *client) call(args ...string) (string, error) {
	c.c.SetDeadline(time.Now().Add(30 * time.Second))
	c.send(args...)
	if err := c.w.Flush(); err != nil {
		return "", err
	}
	return c.reply()
}

func (c *client) reply() (string, error) {
	v, err := readValue(c.r)
	if err != nil {
		return "", err
	}
	switch v := v.(type) {
	case respError:
		return "", errors.New(string(v))
	case string:
		return v, nil
	default:
		return "", fmt.Errorf("unexpected reply %v", v)
	}
}

// int is call for a reply that is a number (nil counts as 0, as GET of a
// counter that does not exist yet).
func (c *client) int(args ...string) (int, error) {
	s, err := c.call(args...)
	if err != nil {
		return 0, err
	}
	if s == "" {
		return 0, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil {
		return 0, fmt.Errorf("%s replied %q", args[0], s)
	}
	return n, nil
}

func (c *client) expectInt(want int, args ...string) error {
	got, err := c.int(args...)
	if err != nil {
		return err
	}
	if got != want {
		return fmt.Errorf("%s is %d, want %d", strings.Join(args, " "), got, want)
	}
	return nil
}

// fillList replaces redis-benchmark's list with n elements of size bytes,
// the elements its LPUSH test pushes, 1000 per pipelined LPUSH.
func (c *client) fillList(n, size int) error {
	if _, err := c.call("DEL", benchList); err != nil {
		return err
	}
	elem := strings.Repeat("x", size)
	const batch = 1000
	for i := 0; i < n; i += batch {
		m := min(batch, n-i)
		args := []string{"LPUSH", benchList}
		for j := 0; j < m; j++ {
			args = append(args, elem)
		}
		c.send(args...)
	}
	c.c.SetDeadline(time.Now().Add(60 * time.Second))
	if err := c.w.Flush(); err != nil {
		return err
	}
	for i := 0; i < n; i += batch {
		if _, err := c.reply(); err != nil {
			return err
		}
	}
	return c.expectInt(n, "LLEN", benchList)
}

// respError is an error reply read by readValue.
type respError string

// readValue reads one RESP2 value: strings for simple, integer and bulk
// replies ("" for nil), respError for errors, []any for arrays.
func readValue(r *bufio.Reader) (any, error) {
	line, err := r.ReadString('\n')
	if err != nil {
		return nil, err
	}
	line = strings.TrimRight(line, "\r\n")
	if line == "" {
		return nil, fmt.Errorf("empty reply line")
	}
	switch line[0] {
	case '+', ':':
		return line[1:], nil
	case '-':
		return respError(line[1:]), nil
	case '$':
		n, err := strconv.Atoi(line[1:])
		if err != nil {
			return nil, fmt.Errorf("bad bulk length %q", line)
		}
		if n < 0 {
			return "", nil
		}
		buf := make([]byte, n+2)
		if _, err := io.ReadFull(r, buf); err != nil {
			return nil, err
		}
		return string(buf[:n]), nil
	case '*':
		n, err := strconv.Atoi(line[1:])
		if err != nil {
			return nil, fmt.Errorf("bad array length %q", line)
		}
		a := make([]any, 0, max(n, 0))
		for i := 0; i < n; i++ {
			v, err := readValue(r)
			if err != nil {
				return nil, err
			}
			a = append(a, v)
		}
		return a, nil
	}
	return nil, fmt.Errorf("unexpected reply line %q", line)
}

// subscriber is a connection subscribed to one channel that counts the
// messages it receives, so PUBLISH is measured delivering to a real
// subscriber, not just looking up a channel nobody listens on.
type subscriber struct {
	c        net.Conn
	received atomic.Int64
	done     chan struct{}
	err      error // set before done closes
}

func subscribe(addr, channel string) (*subscriber, error) {
	c, err := dialClient(addr)
	if err != nil {
		return nil, err
	}
	c.c.SetDeadline(time.Now().Add(10 * time.Second))
	c.send("SUBSCRIBE", channel)
	if err := c.w.Flush(); err != nil {
		c.close()
		return nil, err
	}
	v, err := readValue(c.r)
	if err != nil {
		c.close()
		return nil, err
	}
	if a, ok := v.([]any); !ok || len(a) != 3 || a[0] != "subscribe" {
		c.close()
		return nil, fmt.Errorf("SUBSCRIBE replied %v", v)
	}
	c.c.SetDeadline(time.Time{})
	s := &subscriber{c: c.c, done: make(chan struct{})}
	go func() {
		defer close(s.done)
		for {
			v, err := readValue(c.r)
			if err != nil {
				s.err = err
				return
			}
			if a, ok := v.([]any); ok && len(a) == 3 && a[0] == "message" && a[1] == channel {
				s.received.Add(1)
			}
		}
	}()
	return s, nil
}

// wait waits until n messages have arrived, the connection fails, or
// timeout passes.
func (s *subscriber) wait(n int64, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for s.received.Load() < n {
		select {
		case <-s.done:
			return fmt.Errorf("subscriber got %d of %d messages, then: %v", s.received.Load(), n, s.err)
		case <-time.After(10 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("subscriber got %d of %d messages within %v", s.received.Load(), n, timeout)
		}
	}
	if got := s.received.Load(); got != n {
		return fmt.Errorf("subscriber got %d messages, want %d", got, n)
	}
	return nil
}

func (s *subscriber) close() {
	s.c.Close()
	<-s.done
}
