package main

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"concord/replication/linkfault"
)

// replPair is two 1-node regions, us (1) and eu (2), replicating to each
// other; us streams to eu through a fault proxy, so the us->eu path can be
// given a delay.
type replPair struct {
	us, eu *regionNode
	proxy  *linkfault.Proxy
}

// startReplPair starts both regions (separate processes, default fsync
// durability). usArgs are extra flags for us's node.
func startReplPair(o *options, tag string, usArgs ...string) *replPair {
	p := &replPair{}
	euRepl := fmt.Sprintf("127.0.0.1:%d", freePort())
	usRepl := fmt.Sprintf("127.0.0.1:%d", freePort())
	var err error
	p.proxy, err = linkfault.New("127.0.0.1:0", euRepl)
	check(err)
	mk := func(name string, id int, repl, peer string, extra []string) *regionNode {
		n := &regionNode{
			id:   "n1",
			resp: fmt.Sprintf("127.0.0.1:%d", freePort()),
			raft: fmt.Sprintf("127.0.0.1:%d", freePort()),
			bin:  o.concordBin,
		}
		n.dir = filepath.Join(o.dir, tag, name)
		n.log = filepath.Join(o.dir, tag, name+".log")
		check(os.MkdirAll(n.dir, 0o755))
		n.args = append([]string{"--addr", n.resp, "--node-id", n.id, "--data-dir", n.dir,
			"--raft-addr", n.raft, "--peers", n.id + "=" + n.raft,
			"--region", strconv.Itoa(id), "--region-name", name, "--repl-addr", repl,
			"--peer-region", peer}, o.raftArgs...)
		n.args = append(n.args, extra...)
		return n
	}
	p.us = mk("us", 1, usRepl, "2 eu "+p.proxy.Addr(), usArgs)
	p.eu = mk("eu", 2, euRepl, "1 us "+usRepl, nil)
	p.us.start()
	p.eu.start()
	for _, n := range []*regionNode{p.us, p.eu} {
		(&region{name: n.dir, nodes: []*regionNode{n}}).waitReady(60 * time.Second)
	}
	p.waitStreaming(60 * time.Second)
	return p
}

// waitStreaming waits until us reports its stream to eu established.
func (p *replPair) waitStreaming(timeout time.Duration) {
	deadline := time.Now().Add(timeout)
	for {
		f, err := info(p.us.resp, "replication")
		if err == nil && strings.Contains(f["peer_region0"], "state=streaming") {
			return
		}
		if time.Now().After(deadline) {
			fail(fmt.Errorf("us never streamed to eu (%v %v); logs in %s", f["peer_region0"], err, filepath.Dir(p.us.log)))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (p *replPair) stop() {
	stopProc(p.us.cmd)
	stopProc(p.eu.cmd)
	p.proxy.Close()
}

// respConn is a minimal pipelining RESP client for the load generator.
type respConn struct {
	c net.Conn
	w *bufio.Writer
	r *bufio.Reader
}

func dialResp(addr string) *respConn {
	c, err := net.Dial("tcp", addr)
	check(err)
	return &respConn{c: c, w: bufio.NewWriterSize(c, 1<<16), r: bufio.NewReaderSize(c, 1<<16)}
}

func (c *respConn) send(args ...string) {
	fmt.Fprintf(c.w, "*%d\r\n", len(args))
	for _, a := range args {
		fmt.Fprintf(c.w, "$%d\r\n%s\r\n", len(a), a)
	}
}

// reply reads one reply line; bulk replies are returned as their content
// ("" for nil). An error reply is fatal.
func (c *respConn) reply() string {
	line := c.replyOrError()
	if strings.HasPrefix(line, "-") {
		fail(fmt.Errorf("server error: %s", line))
	}
	return line
}

// replyOrError is reply, returning an error reply as its line.
func (c *respConn) replyOrError() string {
	line, err := c.r.ReadString('\n')
	check(err)
	line = strings.TrimRight(line, "\r\n")
	if strings.HasPrefix(line, "-") {
		return line
	}
	if !strings.HasPrefix(line, "$") {
		return line
	}
	n, err := strconv.Atoi(line[1:])
	check(err)
	if n < 0 {
		return ""
	}
	buf := make([]byte, n+2)
	_, err = ioReadFull(c.r, buf)
	check(err)
	return string(buf[:n])
}

func ioReadFull(r *bufio.Reader, buf []byte) (int, error) {
	n := 0
	for n < len(buf) {
		m, err := r.Read(buf[n:])
		n += m
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

func (c *respConn) do(args ...string) string {
	c.send(args...)
	check(c.w.Flush())
	return c.reply()
}

// writeLoad writes SETs of random-ish keys to addr at rate writes/s (0:
// as fast as conns pipelined connections go) until stop closes, and
// returns how many were acknowledged.
func writeLoad(addr string, rate, conns int, stop <-chan struct{}) *atomic.Int64 {
	var done atomic.Int64
	const tick = 5 * time.Millisecond
	for i := 0; i < conns; i++ {
		go func(i int) {
			c := dialResp(addr)
			defer c.c.Close()
			per := 64 // unlimited: pipeline depth
			if rate > 0 {
				per = rate * int(tick/time.Millisecond) / 1000 / conns
				if per < 1 {
					per = 1
				}
			}
			t := time.NewTicker(tick)
			defer t.Stop()
			n := 0
			for {
				select {
				case <-stop:
					return
				default:
				}
				if rate > 0 {
					select {
					case <-stop:
						return
					case <-t.C:
					}
				}
				for j := 0; j < per; j++ {
					n++
					c.send("SET", fmt.Sprintf("load:%d:%d", i, n%100000), "value-0123456789abcdef")
				}
				check(c.w.Flush())
				for j := 0; j < per; j++ {
					c.reply()
				}
				done.Add(int64(per))
			}
		}(i)
	}
	return &done
}

// lagProbe measures replication lag from us to eu: every interval it
// writes a counter to a probe key in us and notes when us acknowledged it;
// a poller reads the key in eu every 500 µs and notes when each value
// first shows. Lag is the time from us's acknowledgement to eu showing it.
type lagProbe struct {
	mu    sync.Mutex
	acked map[int]time.Time
	lags  []float64 // ms, in probe order of appearance
	seen  int
}

func runLagProbe(us, eu string, interval time.Duration, stop <-chan struct{}) *lagProbe {
	p := &lagProbe{acked: map[int]time.Time{}}
	probeSeq++
	key := "lagprobe:" + strconv.Itoa(probeSeq) // a fresh key per run: an old value would count as seen
	w, r := dialResp(us), dialResp(eu)
	go func() {
		defer w.c.Close()
		t := time.NewTicker(interval)
		defer t.Stop()
		for n := 1; ; n++ {
			select {
			case <-stop:
				return
			case <-t.C:
			}
			w.do("SET", key, strconv.Itoa(n))
			at := time.Now()
			p.mu.Lock()
			p.acked[n] = at
			p.mu.Unlock()
		}
	}()
	go func() {
		defer r.c.Close()
		for {
			select {
			case <-stop:
				return
			default:
			}
			v := r.do("GET", key)
			now := time.Now()
			if m, err := strconv.Atoi(v); err == nil {
				p.mu.Lock()
				for ; p.seen < m; p.seen++ {
					// A value eu shows before us acknowledged it (the ack
					// was still on its way) counts as no lag.
					at, ok := p.acked[p.seen+1]
					lag := 0.0
					if ok && now.After(at) {
						lag = float64(now.Sub(at).Microseconds()) / 1000
					}
					p.lags = append(p.lags, lag)
				}
				p.mu.Unlock()
			}
			time.Sleep(500 * time.Microsecond)
		}
	}()
	return p
}

var probeSeq int

func (p *lagProbe) samples() []float64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]float64(nil), p.lags...)
}

// benchRepl measures cross-region replication between two 1-node
// regions: lag at a steady write rate with and without added one-way
// delay, the lag as the rate steps up, and the catch-up time of a new
// region by state transfer.
func benchRepl(o *options) {
	fmt.Printf("\n## replication: two 1-node regions (fsync), us -> eu\n\n")
	fmt.Printf("Lag: time from us acknowledging a write to eu serving it (probe every 10 ms, eu polled every 0.5 ms), under SET load on us.\n\n")
	fmt.Println("| one-way delay | target writes/s | achieved writes/s | probes | lag p50 ms | lag p99 ms | lag max ms |")
	fmt.Println("| --- | --- | --- | --- | --- | --- | --- |")
	p := startReplPair(o, "lag")
	for _, delay := range []time.Duration{0, 50 * time.Millisecond} {
		p.proxy.SetDelay(delay, 0)
		p.waitStreaming(30 * time.Second)
		ach, lags := replStep(p, o.replRate, o.replSeconds)
		fmt.Printf("| %v | %d | %.0f | %d | %.1f | %.1f | %.1f |\n", delay, o.replRate, ach, len(lags),
			quantile(lags, 0.5), quantile(lags, 0.99), quantile(lags, 1))
	}
	p.proxy.SetDelay(0, 0)

	fmt.Printf("\nRate steps (no added delay), %d s each; the lag in the step's second half tells whether eu keeps up.\n\n", o.replSeconds)
	fmt.Println("| target writes/s | achieved writes/s | lag p50 ms (2nd half) | lag p99 ms (2nd half) | eu behind at end (records) |")
	fmt.Println("| --- | --- | --- | --- | --- |")
	for _, rate := range []int{20000, 40000, 60000, 0} {
		ach, lags := replStep(p, rate, o.replSeconds)
		half := lags[len(lags)/2:]
		f, _ := info(p.us.resp, "replication")
		target := strconv.Itoa(rate)
		if rate == 0 {
			target = "unlimited (16 conns x 64 pipelined)"
		}
		fmt.Printf("| %s | %.0f | %.1f | %.1f | %s |\n", target, ach, quantile(half, 0.5), quantile(half, 0.99), field(f["peer_region0"], "lag_records"))
		time.Sleep(2 * time.Second) // let eu drain before the next step
	}
	p.stop()

	if o.replKeys > 0 {
		benchCatchUp(o)
	}
}

// replStep runs write load at rate on us for seconds with the lag probe
// and returns the achieved rate and the lag samples (ms).
func replStep(p *replPair, rate, seconds int) (float64, []float64) {
	stop := make(chan struct{})
	conns := 8
	if rate == 0 {
		conns = 16
	}
	done := writeLoad(p.us.resp, rate, conns, stop)
	probe := runLagProbe(p.us.resp, p.eu.resp, 10*time.Millisecond, stop)
	start := time.Now()
	time.Sleep(time.Duration(seconds) * time.Second)
	n := done.Load()
	el := time.Since(start)
	// Let the last probes arrive before stopping the poller.
	time.Sleep(500 * time.Millisecond)
	close(stop)
	lags := probe.samples()
	if len(lags) == 0 {
		fail(fmt.Errorf("no lag probe reached eu"))
	}
	return float64(n) / el.Seconds(), lags
}

// benchCatchUp loads keys into us while eu does not exist yet, with a
// replication log too small to hold them, then starts eu and times until
// it holds every key: a state transfer followed by streaming.
func benchCatchUp(o *options) {
	fmt.Printf("\nCatch-up of a new region by state transfer: %d keys loaded into us (repl-log-size 1mb, so the log cannot cover them), then eu started empty.\n\n", o.replKeys)
	p := startReplPair(o, "catchup", "--repl-log-size", "1mb")
	stopProc(p.eu.cmd)
	check(os.RemoveAll(p.eu.dir))
	check(os.MkdirAll(p.eu.dir, 0o755))
	port, err := strconv.Atoi(p.us.resp[strings.LastIndex(p.us.resp, ":")+1:])
	check(err)
	t0 := time.Now()
	load(port, o.replKeys)
	fmt.Printf("loaded in %.1f s\n", time.Since(t0).Seconds())
	want := strconv.Itoa(o.replKeys)
	start := time.Now()
	p.eu.start()
	eu := &region{name: "eu", nodes: []*regionNode{p.eu}}
	eu.waitReady(60 * time.Second)
	var busy []string // error replies while eu caught up
	for {
		c := dialResp(p.eu.resp)
		c.send("DBSIZE")
		check(c.w.Flush())
		v := c.replyOrError()
		c.c.Close()
		if strings.HasPrefix(v, "-") {
			busy = append(busy, fmt.Sprintf("%.1fs %s", time.Since(start).Seconds(), v))
		}
		if strings.TrimPrefix(v, ":") == want {
			break
		}
		if time.Since(start) > 10*time.Minute {
			fail(fmt.Errorf("eu holds %s of %s keys after 10 minutes", v, want))
		}
		time.Sleep(100 * time.Millisecond)
	}
	el := time.Since(start)
	if len(busy) > 0 {
		fmt.Printf("eu answered errors while catching up (%d): first %s, last %s\n", len(busy), busy[0], busy[len(busy)-1])
	}
	f, _ := info(p.us.resp, "replication")
	fmt.Printf("\n| keys | catch-up s (eu start to all keys served) | transfers by us | us RSS MiB | eu RSS MiB |\n| --- | --- | --- | --- | --- |\n")
	fmt.Printf("| %d | %.1f | %s | %.0f | %.0f |\n", o.replKeys, el.Seconds(), field(f["peer_region0"], "transfers"),
		float64(rss(p.us.cmd.Process.Pid))/(1<<20), float64(rss(p.eu.cmd.Process.Pid))/(1<<20))
	p.stop()
}

// field returns the value of name in an INFO line of k=v pairs.
func field(line, name string) string {
	for _, kv := range strings.Split(line, ",") {
		if k, v, ok := strings.Cut(kv, "="); ok && k == name {
			return v
		}
	}
	return "?"
}
