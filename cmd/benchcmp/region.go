package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// regionNode is one concord process of a region. Its ports and data dir
// stay the same across restarts, as a real node's would.
type regionNode struct {
	id, resp, raft, dir, log string
	args                     []string
	bin                      string
	cmd                      *exec.Cmd
}

func (n *regionNode) start() {
	f, err := os.OpenFile(n.log, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	check(err)
	defer f.Close() // the child has its own descriptor
	cmd := exec.Command(n.bin, n.args...)
	cmd.Stderr = f
	if err := cmd.Start(); err != nil {
		fail(fmt.Errorf("start %s: %w", n.id, err))
	}
	procs = append(procs, cmd)
	n.cmd = cmd
}

// kill stops the process with SIGKILL, as a crash would.
func (n *regionNode) kill() {
	n.cmd.Process.Kill()
	n.cmd.Wait()
}

// region is a region's processes on this machine.
type region struct {
	name  string
	nodes []*regionNode
}

// startRegion starts size concord processes forming a region with the
// default (fsync) durability and extra flags.
func startRegion(o *options, name string, size int) *region {
	r := &region{name: name}
	var peers []string
	for i := 0; i < size; i++ {
		n := &regionNode{
			id:   fmt.Sprintf("n%d", i+1),
			resp: fmt.Sprintf("127.0.0.1:%d", freePort()),
			raft: fmt.Sprintf("127.0.0.1:%d", freePort()),
			bin:  o.concordBin,
		}
		n.dir = filepath.Join(o.dir, name, n.id)
		n.log = filepath.Join(o.dir, name, n.id+".log")
		check(os.MkdirAll(n.dir, 0o755))
		peers = append(peers, n.id+"="+n.raft)
		r.nodes = append(r.nodes, n)
	}
	for _, n := range r.nodes {
		n.args = append([]string{"--addr", n.resp, "--node-id", n.id, "--data-dir", n.dir,
			"--raft-addr", n.raft, "--peers", strings.Join(peers, ",")}, o.raftArgs...)
		n.start()
	}
	r.waitReady(60 * time.Second)
	return r
}

func (r *region) stop() {
	for _, n := range r.nodes {
		stopProc(n.cmd)
	}
}

// waitReady waits until every running node reports region_ready:1.
func (r *region) waitReady(timeout time.Duration) {
	deadline := time.Now().Add(timeout)
	for _, n := range r.nodes {
		for {
			f, err := info(n.resp, "replication")
			if err == nil && f["region_ready"] == "1" {
				break
			}
			if time.Now().After(deadline) {
				fail(fmt.Errorf("region %s: node %s not ready after %v (%v %v); log %s", r.name, n.id, timeout, f, err, n.log))
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
}

// leader returns the node whose INFO says it is the master.
func (r *region) leader(timeout time.Duration) *regionNode {
	deadline := time.Now().Add(timeout)
	for {
		for _, n := range r.nodes {
			if f, err := info(n.resp, "replication"); err == nil && f["role"] == "master" && f["region_ready"] == "1" {
				return n
			}
		}
		if time.Now().After(deadline) {
			fail(fmt.Errorf("region %s: no ready leader after %v", r.name, timeout))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// term is the region's current Raft term as its leader reports it.
func (r *region) term() uint64 {
	f, err := info(r.leader(30*time.Second).resp, "replication")
	check(err)
	t, err := strconv.ParseUint(f["region_term"], 10, 64)
	check(err)
	return t
}

// electionLog returns the log lines since t, across the nodes and in time
// order, that tell why an election happened.
func (r *region) electionLog(t time.Time) []string {
	type entry struct {
		at   time.Time
		text string
	}
	var es []entry
	for _, n := range r.nodes {
		b, err := os.ReadFile(n.log)
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(b), "\n") {
			at, ok := lineTime(line)
			if !ok || at.Before(t.Truncate(time.Millisecond)) {
				continue
			}
			for _, what := range []string{"heartbeat timeout reached", "failed to contact", "stepping down",
				"election won", "pre-vote campaign failed", "lost leadership"} {
				if strings.Contains(line, what) {
					es = append(es, entry{at, n.id + ": " + line})
					break
				}
			}
		}
	}
	sort.SliceStable(es, func(i, j int) bool { return es[i].at.Before(es[j].at) })
	var out []string
	for i, e := range es {
		if i == 40 {
			out = append(out, fmt.Sprintf("... %d more", len(es)-40))
			break
		}
		out = append(out, e.text)
	}
	return out
}

// info sends INFO section to addr and returns its fields.
func info(addr, section string) (map[string]string, error) {
	c, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	fmt.Fprintf(c, "*2\r\n$4\r\nINFO\r\n$%d\r\n%s\r\n", len(section), section)
	br := bufio.NewReader(c)
	line, err := br.ReadString('\n')
	if err != nil {
		return nil, err
	}
	if !strings.HasPrefix(line, "$") {
		return nil, fmt.Errorf("INFO replied %q", strings.TrimSpace(line))
	}
	size, err := strconv.Atoi(strings.TrimSpace(line[1:]))
	if err != nil || size < 0 {
		return nil, fmt.Errorf("INFO replied %q", strings.TrimSpace(line))
	}
	body := make([]byte, size)
	if _, err := io.ReadFull(br, body); err != nil {
		return nil, err
	}
	m := map[string]string{}
	for _, l := range strings.Split(string(body), "\n") {
		if k, v, ok := strings.Cut(strings.TrimSpace(l), ":"); ok {
			m[k] = v
		}
	}
	return m, nil
}

// benchRegion runs redis-benchmark against the leaders of a 1-node and a
// 3-node region and against redis-server with appendfsync everysec and
// always, rotating the order every round, and prints medians with the
// ratios to each Redis mode.
func benchRegion(o *options) {
	type server struct {
		name string
		addr func() string
		pids func() []int // the leader's first
	}
	redis := func(name, fsync string) server {
		port := freePort()
		dir := filepath.Join(o.dir, name)
		check(os.MkdirAll(dir, 0o755))
		cmd := startProc(o.redisBin, "--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--save", "",
			"--appendonly", "yes", "--appendfsync", fsync, "--dir", dir)
		waitPort(port)
		addr := fmt.Sprintf("127.0.0.1:%d", port)
		return server{name, func() string { return addr }, func() []int { return []int{cmd.Process.Pid} }}
	}
	regionServer := func(name string, r *region) server {
		return server{name, func() string { return r.leader(30 * time.Second).resp }, func() []int {
			l := r.leader(30 * time.Second)
			pids := []int{l.cmd.Process.Pid}
			for _, n := range r.nodes {
				if n != l {
					pids = append(pids, n.cmd.Process.Pid)
				}
			}
			return pids
		}}
	}
	r1 := startRegion(o, "region-1", 1)
	r3 := startRegion(o, "region-3", 3)
	servers := []server{
		redis("redis-everysec", "everysec"),
		redis("redis-always", "always"),
		regionServer("region-1", r1),
		regionServer("region-3", r3),
	}
	term0, started := r3.term(), time.Now()

	fmt.Printf("\n## Regions (fsync durability) beside redis-server with appendonly yes\n\n")
	fmt.Printf("redis-benchmark -c %d -n %d -r %d -d %d, one test per run, against each region's leader; %d rounds, the order of the servers rotating each round; medians\n",
		o.clients, o.regionRequests, o.keyspace, o.size, o.regionRound)
	if len(o.raftArgs) > 0 {
		fmt.Printf("region nodes started with %s\n", strings.Join(o.raftArgs, " "))
	}
	tests := strings.Split(strings.ToLower(o.regionTests), ",")
	pipes := []int{1, 16}
	// med[pipe][server][test]: median ops/s; cpu[...]: median CPU
	// microseconds per request over all the server's processes.
	med := map[int]map[string]map[string]benchResult{}
	cpu := map[int]map[string]map[string]float64{}
	leaderCPU := map[int]map[string]float64{} // the 3-node region's leader alone
	for _, pipe := range pipes {
		res := map[string]map[string][]benchResult{}
		use := map[string]map[string][]float64{}
		lead := map[string][]float64{}
		for _, s := range servers {
			res[s.name] = map[string][]benchResult{}
			use[s.name] = map[string][]float64{}
		}
		for round := 0; round < o.regionRound; round++ {
			for i := range servers {
				s := servers[(i+round)%len(servers)]
				addr := s.addr()
				for _, test := range tests {
					run := runTest(o, addr, test, o.regionRequests, pipe, s.pids())
					res[s.name][test] = append(res[s.name][test], run)
					perReq := float64(issued(o.regionRequests, pipe))
					use[s.name][test] = append(use[s.name][test], float64(run.cpu.Microseconds())/perReq)
					if s.name == "region-3" {
						lead[test] = append(lead[test], float64(run.leadCPU.Microseconds())/perReq)
					}
				}
			}
		}
		med[pipe], cpu[pipe], leaderCPU[pipe] = map[string]map[string]benchResult{}, map[string]map[string]float64{}, map[string]float64{}
		for _, test := range tests {
			leaderCPU[pipe][test] = median(lead[test])
		}
		for _, s := range servers {
			med[pipe][s.name], cpu[pipe][s.name] = map[string]benchResult{}, map[string]float64{}
			for _, test := range tests {
				med[pipe][s.name][test] = summarize(res[s.name][test])
				cpu[pipe][s.name][test] = median(use[s.name][test])
			}
		}
	}
	term1 := r3.term()

	fmt.Printf("\nops/s and the region's ratio to each Redis mode:\n\n")
	fmt.Println("| test | pipeline | redis everysec | redis always | 1-node region | /everysec | /always | 3-node region | /everysec | /always |")
	fmt.Println("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
	for _, pipe := range pipes {
		for _, test := range tests {
			m := func(name string) benchResult { return med[pipe][name][test] }
			fmt.Printf("| %s | %d | %s | %s | %s | %s | %s | %s | %s | %s |\n", strings.ToUpper(test), pipe,
				m("redis-everysec").cell(), m("redis-always").cell(),
				m("region-1").cell(), ratioOf(m("region-1"), m("redis-everysec")), ratioOf(m("region-1"), m("redis-always")),
				m("region-3").cell(), ratioOf(m("region-3"), m("redis-everysec")), ratioOf(m("region-3"), m("redis-always")))
		}
	}
	fmt.Printf("\nCPU time per request, microseconds, summed over the server's processes (a region's three nodes share this machine's cores with each other and with redis-benchmark):\n\n")
	fmt.Println("| test | pipeline | redis everysec | redis always | 1-node region | 3-node region | its leader |")
	fmt.Println("| --- | --- | --- | --- | --- | --- | --- |")
	for _, pipe := range pipes {
		for _, test := range tests {
			c := func(name string) float64 { return cpu[pipe][name][test] }
			fmt.Printf("| %s | %d | %.1f | %.1f | %.1f | %.1f | %.1f |\n", strings.ToUpper(test), pipe,
				c("redis-everysec"), c("redis-always"), c("region-1"), c("region-3"), leaderCPU[pipe][test])
		}
	}

	// The targets, as figures: the weakest write test with figures on both
	// sides counts.
	worst := func(pipe int, base string) (string, float64) {
		name, low := "none", math.Inf(1)
		for _, test := range tests {
			if test == "get" || test == "lrange_100" || test == "publish" { // not keyspace writes
				continue
			}
			a, b := med[pipe]["region-3"][test], med[pipe][base][test]
			if a.err != "" || b.err != "" || b.rps <= 0 {
				continue
			}
			if v := a.rps / b.rps; v < low {
				name, low = strings.ToUpper(test), v
			}
		}
		return name, low
	}
	fmt.Printf("\nTargets for the 3-node region (figures, not tests):\n")
	t, v := worst(1, "redis-always")
	fmt.Printf("- writes without pipelining >= 1.0x redis always: weakest %s %.2fx\n", t, v)
	t, v = worst(16, "redis-always")
	fmt.Printf("- writes with -P 16 >= 0.6x redis always: weakest %s %.2fx\n", t, v)
	for _, pipe := range pipes {
		g := med[pipe]["region-3"]["get"]
		fmt.Printf("- GET -P %d >= 0.9x redis: %s of everysec, %s of always\n", pipe,
			ratioOf(g, med[pipe]["redis-everysec"]["get"]), ratioOf(g, med[pipe]["redis-always"]["get"]))
	}
	fmt.Printf("\n3-node region term %d before the runs, %d after: %d leader elections under benchmark load with no node stopped\n",
		term0, term1, term1-term0)
	if term1 != term0 {
		fmt.Println("\nWhy, from the nodes' logs:")
		for _, l := range r3.electionLog(started) {
			fmt.Println("    " + l)
		}
	}
	for _, p := range procs { // both regions and both redis-servers
		stopProc(p)
	}
}

// cpuTime is the user and system CPU time the processes have used
// (/proc/<pid>/stat, Linux only; clock ticks taken as 1/100 s).
func cpuTime(pids []int) time.Duration {
	var ticks int64
	for _, pid := range pids {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			continue
		}
		// Fields after the command name, which is in parentheses and may
		// hold blanks: state is the first, utime the 12th, stime the 13th.
		s := string(b)
		f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
		if len(f) < 13 {
			continue
		}
		u, _ := strconv.ParseInt(f[11], 10, 64)
		k, _ := strconv.ParseInt(f[12], 10, 64)
		ticks += u + k
	}
	return time.Duration(ticks) * 10 * time.Millisecond
}

func ratio(a, b float64) string {
	if b <= 0 {
		return "n/a"
	}
	return fmt.Sprintf("%.2f", a/b)
}

// benchFailover kills the leader of a 3-node region o.failover times with
// SIGKILL while a client connected to a surviving node writes, and reports
// how long the client went without a successful write: from the kill to
// the first write sent after it that succeeded. The killed node is
// restarted and caught up before the next kill.
func benchFailover(o *options) {
	r := startRegion(o, "failover", 3)
	fmt.Printf("\n## Failover: SIGKILL of a 3-node region's leader, %d times\n\n", o.failover)
	if len(o.raftArgs) > 0 {
		fmt.Printf("region nodes started with %s\n", strings.Join(o.raftArgs, " "))
	}

	// Elections with nobody killed would make failover look cheaper than
	// it is and mean the timeouts are too tight for this machine.
	t0 := r.term()
	if res := runTest(o, r.leader(30*time.Second).resp, "set", 50000, 1, nil); res.err != "" {
		fail(fmt.Errorf("SET load before the kills: %s", res.err))
	}
	t1 := r.term()
	fmt.Printf("term %d before a 50000-SET load with no kills, %d after\n\n", t0, t1)

	fmt.Printf("The client writes SET in a loop on one connection to a surviving node with a %v timeout per command, reconnecting after a timeout.\n", o.failoverTimeout)
	fmt.Printf("Milliseconds from the kill (from the nodes' logs, which have millisecond resolution): the first survivor's heartbeat timeout fires (timeout), the survivor that wins starts its successful campaign (campaign) and wins (elected), the client's node learns the new leader (known), and the client's first write sent after the kill succeeds (write).\n")
	fmt.Printf("Refused: pre-vote campaigns that failed because the other survivor had heard from the dead leader recently. Client timeouts: commands the client gave up on.\n")
	fmt.Printf("In flight: a second client on the same node, with a 15 s timeout, had a SET in flight when the leader was killed: when and how it was answered.\n\n")
	fmt.Println("| kill | killed | client on | new leader | terms | timeout | campaign | elected | known | write | refused | client timeouts | in flight |")
	fmt.Println("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
	var writes, elected []float64
	flights := map[string][]float64{} // in-flight writes' latency by reply
	refusedTotal := 0
	for k := 0; k < o.failover; k++ {
		l := r.leader(30 * time.Second)
		termBefore := r.term()
		var survivors []*regionNode
		for _, n := range r.nodes {
			if n != l {
				survivors = append(survivors, n)
			}
		}
		s := survivors[k%len(survivors)]
		w := startWriter(s.resp, o.failoverTimeout)
		patient := startWriter(s.resp, 15*time.Second)
		w.waitSuccesses(20, 30*time.Second)
		patient.waitSuccesses(20, 30*time.Second)
		killed := time.Now()
		l.kill()
		done, ok := w.firstSuccessSince(killed, 60*time.Second)
		w.stop()
		if !ok {
			fail(fmt.Errorf("failover %d: no successful write within 60s of killing %s; logs in %s", k+1, l.id, filepath.Dir(l.log)))
		}
		inflight, was := patient.inFlightAt(killed, 30*time.Second)
		patient.stop()
		flight := "-"
		if was {
			ms := float64(inflight.answered.Sub(killed).Microseconds()) / 1000
			flight = fmt.Sprintf("%.0f %s", ms, short(inflight.reply))
			kind := short(inflight.reply)
			flights[kind] = append(flights[kind], ms)
		}
		nl := r.leader(30 * time.Second)
		termAfter := r.term()
		won := first(logEvents(nl.log, killed, "raft: election won"))
		var timeout time.Time
		refused := 0
		for _, n := range survivors {
			timeout = earliest(timeout, first(logEvents(n.log, killed, "heartbeat timeout reached")))
			for _, t := range logEvents(n.log, killed, "pre-vote campaign failed") {
				if won.IsZero() || t.Before(won) {
					refused++
				}
			}
		}
		refusedTotal += refused
		var campaign time.Time
		for _, t := range logEvents(nl.log, killed, "entering candidate state") {
			if !won.IsZero() && !t.After(won) {
				campaign = t
			}
		}
		known := first(logEvents(s.log, killed, `msg="leader changed" component=region node=`+s.id+` leader=n`))
		ms := func(t time.Time) string {
			if t.IsZero() {
				return "-"
			}
			return fmt.Sprintf("%.0f", float64(t.Sub(killed).Microseconds())/1000)
		}
		wms := float64(done.Sub(killed).Microseconds()) / 1000
		writes = append(writes, wms)
		if !won.IsZero() {
			elected = append(elected, float64(won.Sub(killed).Microseconds())/1000)
		}
		fmt.Printf("| %d | %s | %s | %s | %d | %s | %s | %s | %s | %.0f | %d | %d | %s |\n", k+1, l.id, s.id, nl.id, termAfter-termBefore,
			ms(timeout), ms(campaign), ms(won), ms(known), wms, refused, w.timeouts(), flight)

		l.start()
		r.waitReady(60 * time.Second)
		// Let the restarted node settle as a follower before the next kill.
		time.Sleep(time.Second)
	}
	fmt.Printf("\nkill to first successful write, %d kills: p50 %.0f ms, p90 %.0f ms, p99 %.0f ms, max %.0f ms\n",
		len(writes), quantile(writes, 0.5), quantile(writes, 0.9), quantile(writes, 0.99), quantile(writes, 1))
	if len(elected) > 0 {
		fmt.Printf("kill to election won: p50 %.0f ms, p90 %.0f ms, p99 %.0f ms, max %.0f ms\n",
			quantile(elected, 0.5), quantile(elected, 0.9), quantile(elected, 0.99), quantile(elected, 1))
	}
	fmt.Printf("pre-vote campaigns refused: %d in %d kills\n", refusedTotal, len(writes))
	var kinds []string
	for kind := range flights {
		kinds = append(kinds, kind)
	}
	sort.Strings(kinds)
	for _, kind := range kinds {
		v := flights[kind]
		fmt.Printf("writes in flight at the kill answered %s: %d, after p50 %.0f ms, max %.0f ms\n", kind, len(v), quantile(v, 0.5), quantile(v, 1))
	}
	r.stop()
}

// short names a reply for the table: its first word.
func short(reply string) string {
	f := strings.Fields(reply)
	if len(f) == 0 {
		return "(empty)"
	}
	return f[0]
}

// quantile is the nearest-rank q-quantile of v.
func quantile(v []float64, q float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := append([]float64(nil), v...)
	sort.Float64s(s)
	i := int(math.Ceil(q*float64(len(s)))) - 1
	return s[max(0, min(i, len(s)-1))]
}

func earliest(a, b time.Time) time.Time {
	if a.IsZero() || (!b.IsZero() && b.Before(a)) {
		return b
	}
	return a
}

// logEvents returns the times of the lines of a node's log at or after
// since that contain what. Log times have millisecond resolution.
func logEvents(path string, since time.Time, what string) []time.Time {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil
	}
	since = since.Truncate(time.Millisecond)
	var ts []time.Time
	for _, line := range strings.Split(string(b), "\n") {
		if !strings.Contains(line, what) {
			continue
		}
		if t, ok := lineTime(line); ok && !t.Before(since) {
			ts = append(ts, t)
		}
	}
	return ts
}

// lineTime is the time of a log line (slog's text format).
func lineTime(line string) (time.Time, bool) {
	if !strings.HasPrefix(line, "time=") {
		return time.Time{}, false
	}
	v, _, _ := strings.Cut(line[len("time="):], " ")
	t, err := time.Parse("2006-01-02T15:04:05.000Z07:00", v)
	return t, err == nil
}

func first(ts []time.Time) time.Time {
	if len(ts) == 0 {
		return time.Time{}
	}
	return ts[0]
}

// writer sends SETs on one connection in a loop and records each one's
// outcome. A command that times out or fails on the connection closes it;
// the next one dials again.
type writer struct {
	addr    string
	timeout time.Duration
	mu      sync.Mutex
	ops     []writeOp
	quit    chan struct{}
	exited  chan struct{}
}

// writeOp is one command's outcome: the reply's first line, "timeout" or
// the I/O error.
type writeOp struct {
	sent, answered time.Time
	reply          string
}

func (op writeOp) ok() bool { return op.reply == "+OK" }

func startWriter(addr string, timeout time.Duration) *writer {
	w := &writer{addr: addr, timeout: timeout, quit: make(chan struct{}), exited: make(chan struct{})}
	go w.loop()
	return w
}

func (w *writer) loop() {
	defer close(w.exited)
	var (
		c  net.Conn
		br *bufio.Reader
	)
	defer func() {
		if c != nil {
			c.Close()
		}
	}()
	for i := 0; ; i++ {
		select {
		case <-w.quit:
			return
		default:
		}
		if c == nil {
			var err error
			if c, err = net.DialTimeout("tcp", w.addr, w.timeout); err != nil {
				c = nil
				time.Sleep(5 * time.Millisecond)
				continue
			}
			br = bufio.NewReader(c)
		}
		key := "failover:" + strconv.Itoa(i%1000)
		sent := time.Now()
		c.SetDeadline(sent.Add(w.timeout))
		_, err := fmt.Fprintf(c, "*3\r\n$3\r\nSET\r\n$%d\r\n%s\r\n$%d\r\n%d\r\n", len(key), key, len(strconv.Itoa(i)), i)
		var line string
		if err == nil {
			line, err = br.ReadString('\n')
		}
		op := writeOp{sent: sent, answered: time.Now(), reply: strings.TrimSpace(line)}
		if err != nil {
			// An error reply (TRYAGAIN after the region waited for a
			// leader) leaves the connection in step; anything else
			// does not.
			op.reply = err.Error()
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				op.reply = "timeout"
			}
			c.Close()
			c = nil
		}
		w.mu.Lock()
		w.ops = append(w.ops, op)
		w.mu.Unlock()
	}
}

func (w *writer) stop() {
	close(w.quit)
	<-w.exited
}

// timeouts counts the commands the client gave up on.
func (w *writer) timeouts() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	n := 0
	for _, op := range w.ops {
		if op.reply == "timeout" {
			n++
		}
	}
	return n
}

// waitSuccesses waits until n writes have succeeded.
func (w *writer) waitSuccesses(n int, timeout time.Duration) {
	deadline := time.Now().Add(timeout)
	for {
		got := 0
		w.mu.Lock()
		for _, op := range w.ops {
			if op.ok() {
				got++
			}
		}
		w.mu.Unlock()
		if got >= n {
			return
		}
		if time.Now().After(deadline) {
			fail(fmt.Errorf("writer on %s: %d successful writes in %v", w.addr, got, timeout))
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// firstSuccessSince returns when the first write sent at or after t was
// answered successfully.
func (w *writer) firstSuccessSince(t time.Time, timeout time.Duration) (time.Time, bool) {
	deadline := time.Now().Add(timeout)
	for {
		w.mu.Lock()
		for _, op := range w.ops {
			if !op.sent.Before(t) && op.ok() {
				w.mu.Unlock()
				return op.answered, true
			}
		}
		w.mu.Unlock()
		if time.Now().After(deadline) {
			return time.Time{}, false
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// inFlightAt waits for the outcome of the command that was in flight at t;
// false if none was (or none finished within timeout).
func (w *writer) inFlightAt(t time.Time, timeout time.Duration) (writeOp, bool) {
	deadline := time.Now().Add(timeout)
	for {
		w.mu.Lock()
		for _, op := range w.ops {
			if op.sent.Before(t) && !op.answered.Before(t) {
				w.mu.Unlock()
				return op, true
			}
			if !op.sent.Before(t) {
				w.mu.Unlock()
				return writeOp{}, false
			}
		}
		w.mu.Unlock()
		if time.Now().After(deadline) {
			return writeOp{}, false
		}
		time.Sleep(2 * time.Millisecond)
	}
}
