package simulations

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"

	"concord/replication/linkfault"
)

// Real-process mode: the concord binary as separate processes (regions x
// nodes) on loopback, with every inter-region link through a fault proxy
// (replication/linkfault). A seeded schedule kills nodes (SIGKILL, then a
// restart from the same data dir), pauses them (SIGSTOP, SIGCONT), cuts and
// slows inter-region links and isolates whole regions, while a writer per
// region writes counters, sets and hashes through ordinary Redis clients.
// At the end everything heals and the checkers require every node of every
// region to report the same INFO crdt digest, every acknowledged write to be
// there, and every counter to equal its acknowledged increments plus some
// subset of the ones in doubt. Time and process count are bounded, and Close
// removes every process and proxy. Unlike deterministic mode, a seed fixes
// the schedule, not the outcome: the OS schedules the processes.

// ProcConfig describes one real-process run.
type ProcConfig struct {
	Binary  string // the concord binary
	Dir     string // scratch directory: data dirs and logs (the caller removes it)
	Regions int    // default 3
	Nodes   int    // per region, default 1
	Seed    uint64
	// Steps fault steps, one every StepEvery (defaults 8 and 800ms).
	Steps     int
	StepEvery time.Duration
	// ConvergeTimeout bounds the wait for equal digests after the heal
	// (default 60s).
	ConvergeTimeout time.Duration
	// Log receives progress lines (nil: none).
	Log func(line string)
}

// ProcResult is what a real-process run did and found.
type ProcResult struct {
	Failed     bool
	Failure    string
	Anomalies  map[string]int
	Faults     []string      // the schedule as it ran
	Writes     int           // write commands sent
	Acked      int           // acknowledged
	InDoubt    int           // outcome unknown (connection lost, timeout, "may or may not have been applied")
	Refused    int           // provably not applied (TRYAGAIN), not retried
	ConvergeMs int64         // from the heal until every node reported the same digest
	Took       time.Duration // the whole run
}

type procNode struct {
	region, idx      int
	name             string
	addr, raft, repl string
	dataDir, logFile string
	cmd              *exec.Cmd
	killed, paused   bool
	env              []string
	mu               sync.Mutex
	exited           chan struct{}
	clientMu         sync.Mutex
	client           *redis.Client
}

// ProcCluster is a running real-process deployment.
type ProcCluster struct {
	cfg     ProcConfig
	nodes   [][]*procNode
	proxies map[[3]int]*linkfault.Proxy // (from region, to region, to node)
	logf    func(format string, a ...any)
}

func (c *ProcConfig) defaults() {
	if c.Regions == 0 {
		c.Regions = 3
	}
	if c.Nodes == 0 {
		c.Nodes = 1
	}
	if c.Steps == 0 {
		c.Steps = 8
	}
	if c.StepEvery == 0 {
		c.StepEvery = 800 * time.Millisecond
	}
	if c.ConvergeTimeout == 0 {
		c.ConvergeTimeout = 60 * time.Second
	}
}

func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// quietLogger drops go-redis's own log lines (failed dials to a node the
// schedule killed are expected, and counted by the ledger).
type quietLogger struct{}

func (quietLogger) Printf(context.Context, string, ...interface{}) {}

// StartProc starts the deployment and waits until every node is ready.
func StartProc(cfg ProcConfig) (*ProcCluster, error) {
	cfg.defaults()
	redis.SetLogger(quietLogger{})
	pc := &ProcCluster{cfg: cfg, proxies: map[[3]int]*linkfault.Proxy{}}
	pc.logf = func(format string, a ...any) {
		if cfg.Log != nil {
			cfg.Log(fmt.Sprintf(format, a...))
		}
	}
	for r := 0; r < cfg.Regions; r++ {
		var reg []*procNode
		for i := 0; i < cfg.Nodes; i++ {
			n := &procNode{region: r, idx: i, name: fmt.Sprintf("r%dn%d", r+1, i+1)}
			var err error
			for _, p := range []*string{&n.addr, &n.raft, &n.repl} {
				if *p, err = freeAddr(); err != nil {
					return nil, err
				}
			}
			n.dataDir = filepath.Join(cfg.Dir, n.name)
			n.logFile = filepath.Join(cfg.Dir, n.name+".log")
			reg = append(reg, n)
		}
		pc.nodes = append(pc.nodes, reg)
	}
	for r := range pc.nodes {
		for to := range pc.nodes {
			if to == r {
				continue
			}
			for i, n := range pc.nodes[to] {
				p, err := linkfault.New("127.0.0.1:0", n.repl)
				if err != nil {
					pc.Close()
					return nil, err
				}
				pc.proxies[[3]int{r, to, i}] = p
			}
		}
	}
	for r, reg := range pc.nodes {
		var peers []string
		for _, n := range reg {
			peers = append(peers, "n"+strconv.Itoa(n.idx+1)+"="+n.raft)
		}
		var regions []string
		for to := range pc.nodes {
			if to == r {
				continue
			}
			var addrs []string
			for i := range pc.nodes[to] {
				addrs = append(addrs, pc.proxies[[3]int{r, to, i}].Addr())
			}
			regions = append(regions, fmt.Sprintf("%d region%d %s", to+1, to+1, strings.Join(addrs, ",")))
		}
		for _, n := range reg {
			n.env = []string{
				"CONCORD_ADDR=" + n.addr, "CONCORD_REGION=" + strconv.Itoa(r+1), "CONCORD_REGION_NAME=region" + strconv.Itoa(r+1),
				"CONCORD_NODE_ID=n" + strconv.Itoa(n.idx+1), "CONCORD_RAFT_ADDR=" + n.raft, "CONCORD_PEERS=" + strings.Join(peers, ","),
				"CONCORD_DATA_DIR=" + n.dataDir, "CONCORD_REPL_ADDR=" + n.repl, "CONCORD_PEER_REGIONS=" + strings.Join(regions, ";"),
				// A shared, loaded machine: slower heartbeats keep Raft from
				// electing on scheduling hiccups.
				"CONCORD_HEARTBEAT_TIMEOUT=600ms", "CONCORD_ELECTION_TIMEOUT=600ms", "CONCORD_LEADER_LEASE_TIMEOUT=300ms",
				"CONCORD_LOGLEVEL=warn",
			}
			if err := pc.start(n); err != nil {
				pc.Close()
				return nil, err
			}
		}
	}
	if err := pc.waitReady(60 * time.Second); err != nil {
		pc.Close()
		return nil, err
	}
	return pc, nil
}

// processEnv is the environment without CONCORD_* settings of the caller.
func processEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "CONCORD_") {
			env = append(env, kv)
		}
	}
	return env
}

func (pc *ProcCluster) start(n *procNode) error {
	logf, err := os.OpenFile(n.logFile, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	cmd := exec.Command(pc.cfg.Binary)
	cmd.Env = append(processEnv(), n.env...)
	cmd.Stderr = logf
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		logf.Close()
		return err
	}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return err
	}
	exited := make(chan struct{})
	n.mu.Lock()
	n.cmd, n.killed, n.paused, n.exited = cmd, false, false, exited
	n.mu.Unlock()
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			fmt.Fprintln(logf, sc.Text())
		}
		cmd.Wait()
		logf.Close()
		close(exited)
	}()
	return nil
}

func (n *procNode) redis() *redis.Client {
	n.clientMu.Lock()
	defer n.clientMu.Unlock()
	if n.client == nil {
		n.client = redis.NewClient(&redis.Options{Addr: n.addr, DialTimeout: time.Second, ReadTimeout: 3 * time.Second,
			WriteTimeout: time.Second, MaxRetries: -1, PoolSize: 4})
	}
	return n.client
}

func (pc *ProcCluster) all() []*procNode {
	var out []*procNode
	for _, reg := range pc.nodes {
		out = append(out, reg...)
	}
	return out
}

// waitReady waits until every node answers the healthcheck's ready probe.
func (pc *ProcCluster) waitReady(timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for _, n := range pc.all() {
		for {
			cmd := exec.Command(pc.cfg.Binary, "healthcheck", "--ready", "--addr", n.addr)
			cmd.Env = processEnv()
			out, err := cmd.CombinedOutput()
			if err == nil {
				break
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("%s not ready after %v: %s (log %s)", n.name, timeout, strings.TrimSpace(string(out)), n.logFile)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	return nil
}

// Close kills every process and closes every proxy.
func (pc *ProcCluster) Close() {
	for _, n := range pc.all() {
		n.mu.Lock()
		cmd, exited := n.cmd, n.exited
		n.mu.Unlock()
		if cmd != nil && cmd.Process != nil {
			cmd.Process.Signal(syscall.SIGCONT)
			cmd.Process.Kill()
			<-exited
		}
		if n.client != nil {
			n.client.Close()
		}
	}
	for _, p := range pc.proxies {
		p.Close()
	}
}

// ---- faults ----

func (pc *ProcCluster) kill(n *procNode) {
	n.mu.Lock()
	cmd, exited := n.cmd, n.exited
	n.killed = true
	n.mu.Unlock()
	cmd.Process.Signal(syscall.SIGCONT) // a paused process dies too, but say so
	cmd.Process.Kill()
	<-exited
}

func (pc *ProcCluster) restart(n *procNode) error {
	n.mu.Lock()
	killed := n.killed
	n.mu.Unlock()
	if !killed {
		return nil
	}
	return pc.start(n)
}

func (pc *ProcCluster) pause(n *procNode, on bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.killed || n.paused == on {
		return
	}
	n.paused = on
	if on {
		n.cmd.Process.Signal(syscall.SIGSTOP)
	} else {
		n.cmd.Process.Signal(syscall.SIGCONT)
	}
}

// link applies f to both directions of the link between regions a and b.
func (pc *ProcCluster) link(a, b int, f func(p *linkfault.Proxy)) {
	for k, p := range pc.proxies {
		if (k[0] == a && k[1] == b) || (k[0] == b && k[1] == a) {
			f(p)
		}
	}
}

// healAll ends every fault: restarts killed nodes, resumes paused ones,
// heals and speeds up every link.
func (pc *ProcCluster) healAll() error {
	for _, p := range pc.proxies {
		p.Heal()
		p.SetDelay(0, 0)
	}
	for _, n := range pc.all() {
		pc.pause(n, false)
		if err := pc.restart(n); err != nil {
			return err
		}
	}
	return nil
}

// ---- workload and checks ----

type procLedger struct {
	mu       sync.Mutex
	acked    map[string]int64 // counter -> acknowledged sum
	doubt    map[string][]int64
	members  map[string]map[string]bool // set -> acknowledged members
	written  map[string]map[string]bool // set -> every member ever sent
	fields   map[string]map[string]string
	writes   int
	ackedN   int
	doubtN   int
	refusedN int
}

func newProcLedger() *procLedger {
	return &procLedger{acked: map[string]int64{}, doubt: map[string][]int64{}, members: map[string]map[string]bool{},
		written: map[string]map[string]bool{}, fields: map[string]map[string]string{}}
}

// outcome classifies a write's reply: applied, refused (provably not
// applied: TRYAGAIN) or in doubt.
func outcome(err error) string {
	if err == nil {
		return "acked"
	}
	if strings.HasPrefix(err.Error(), "TRYAGAIN") {
		return "refused"
	}
	return "doubt"
}

// writer writes to region r until ctx ends, on a node chosen at random per
// command (followers forward writes to their leader).
func (pc *ProcCluster) writer(ctx context.Context, r int, rng *rand.Rand, l *procLedger, wg *sync.WaitGroup) {
	defer wg.Done()
	for i := 0; ctx.Err() == nil; i++ {
		n := pc.nodes[r][rng.IntN(len(pc.nodes[r]))]
		c := n.redis()
		cctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		var err error
		var note func(o string)
		switch k := rng.IntN(3); k {
		case 0:
			key, d := fmt.Sprintf("c:%d", rng.IntN(4)), int64(1+rng.IntN(9))
			err = c.IncrBy(cctx, key, d).Err()
			note = func(o string) {
				switch o {
				case "acked":
					l.acked[key] += d
				case "doubt":
					l.doubt[key] = append(l.doubt[key], d)
				}
			}
		case 1:
			key, m := fmt.Sprintf("s:%d", rng.IntN(4)), fmt.Sprintf("r%d-%d", r+1, i)
			err = c.SAdd(cctx, key, m).Err()
			note = func(o string) {
				if l.written[key] == nil {
					l.written[key], l.members[key] = map[string]bool{}, map[string]bool{}
				}
				l.written[key][m] = true
				if o == "acked" {
					l.members[key][m] = true
				}
			}
		default:
			key, f := fmt.Sprintf("h:%d", rng.IntN(4)), fmt.Sprintf("r%d-%d", r+1, i)
			err = c.HSet(cctx, key, f, "v").Err()
			note = func(o string) {
				if o == "acked" {
					if l.fields[key] == nil {
						l.fields[key] = map[string]string{}
					}
					l.fields[key][f] = "v"
				}
			}
		}
		cancel()
		o := outcome(err)
		l.mu.Lock()
		l.writes++
		switch o {
		case "acked":
			l.ackedN++
		case "doubt":
			l.doubtN++
		default:
			l.refusedN++
		}
		note(o)
		l.mu.Unlock()
		if err != nil {
			// Back off a little on errors: the node may be down or paused.
			select {
			case <-ctx.Done():
			case <-time.After(50 * time.Millisecond):
			}
			continue
		}
		select {
		case <-ctx.Done():
		case <-time.After(5 * time.Millisecond):
		}
	}
}

// digest returns the node's INFO crdt db0 digest line.
func digest(n *procNode) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	s, err := n.redis().Info(ctx, "crdt").Result()
	if err != nil {
		return "", err
	}
	for _, line := range strings.Split(s, "\r\n") {
		if strings.HasPrefix(line, "db0:digest=") {
			return strings.TrimPrefix(line, "db0:"), nil
		}
	}
	return "empty", nil
}

// RunProc starts a deployment, runs the seeded fault schedule under the
// workload, heals, and checks. The deployment is always torn down.
func RunProc(cfg ProcConfig) (res ProcResult) {
	cfg.defaults()
	start := time.Now()
	defer func() { res.Took = time.Since(start) }()
	fail := func(kind, format string, a ...any) {
		res.Failed = true
		if res.Anomalies == nil {
			res.Anomalies = map[string]int{}
		}
		res.Anomalies[kind]++
		if res.Failure != "" {
			res.Failure += "\n"
		}
		res.Failure += fmt.Sprintf(format, a...)
	}
	pc, err := StartProc(cfg)
	if err != nil {
		fail("setup", "starting the deployment: %v", err)
		return res
	}
	defer pc.Close()
	rng := rand.New(rand.NewPCG(cfg.Seed, 0x70726f63))
	l := newProcLedger()
	ctx, stop := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for r := range pc.nodes {
		wg.Add(1)
		go pc.writer(ctx, r, rand.New(rand.NewPCG(cfg.Seed, uint64(r))), l, &wg)
	}
	event := func(format string, a ...any) {
		line := fmt.Sprintf("%6.1fs ", time.Since(start).Seconds()) + fmt.Sprintf(format, a...)
		res.Faults = append(res.Faults, line)
		pc.logf("%s", line)
	}
	for step := 0; step < cfg.Steps; step++ {
		time.Sleep(cfg.StepEvery)
		r := rng.IntN(cfg.Regions)
		n := pc.nodes[r][rng.IntN(cfg.Nodes)]
		other := (r + 1 + rng.IntN(cfg.Regions-1)) % cfg.Regions
		switch k := rng.IntN(7); k {
		case 0:
			// At most a minority of a multi-node region down at once, so
			// the region keeps a quorum; a one-node region goes down.
			down := 0
			for _, m := range pc.nodes[r] {
				if m.killed || m.paused {
					down++
				}
			}
			if cfg.Nodes > 1 && down+1 > (cfg.Nodes-1)/2 {
				continue
			}
			if !n.killed {
				pc.kill(n)
				event("SIGKILL %s", n.name)
			}
		case 1:
			if !n.killed {
				continue
			}
			if err := pc.restart(n); err != nil {
				fail("setup", "restarting %s: %v", n.name, err)
				stop()
				wg.Wait()
				return res
			}
			event("restart %s", n.name)
		case 2:
			if !n.killed && !n.paused {
				pc.pause(n, true)
				event("SIGSTOP %s", n.name)
			}
		case 3:
			if !n.paused {
				continue
			}
			pc.pause(n, false)
			event("SIGCONT %s", n.name)
		case 4:
			pc.link(r, other, func(p *linkfault.Proxy) { p.Cut() })
			event("cut region%d <-> region%d", r+1, other+1)
		case 5:
			d := time.Duration(20+rng.IntN(100)) * time.Millisecond
			pc.link(r, other, func(p *linkfault.Proxy) { p.SetDelay(d, d/2) })
			event("delay region%d <-> region%d %v +- %v", r+1, other+1, d, d/2)
		case 6:
			pc.link(r, other, func(p *linkfault.Proxy) { p.Heal(); p.SetDelay(0, 0) })
			event("heal region%d <-> region%d", r+1, other+1)
		}
	}
	if err := pc.healAll(); err != nil {
		fail("setup", "heal: %v", err)
	}
	event("heal everything")
	healed := time.Now()
	// Keep writing a moment after the heal, then stop: the checks need a
	// final state.
	time.Sleep(500 * time.Millisecond)
	stop()
	wg.Wait()
	res.Writes, res.Acked, res.InDoubt, res.Refused = l.writes, l.ackedN, l.doubtN, l.refusedN
	if err := pc.waitReady(60 * time.Second); err != nil {
		fail("stuck", "after the heal: %v", err)
		return res
	}
	deadline := time.Now().Add(cfg.ConvergeTimeout)
	var last map[string]string
	for {
		last = map[string]string{}
		same := true
		var ref string
		for _, n := range pc.all() {
			d, err := digest(n)
			if err != nil {
				d = "error: " + err.Error()
			}
			last[n.name] = d
			if ref == "" {
				ref = d
			} else if d != ref {
				same = false
			}
		}
		if same && !strings.HasPrefix(ref, "error") {
			res.ConvergeMs = time.Since(healed).Milliseconds()
			break
		}
		if time.Now().After(deadline) {
			names := make([]string, 0, len(last))
			for k := range last {
				names = append(names, k)
			}
			sort.Strings(names)
			var b strings.Builder
			for _, k := range names {
				fmt.Fprintf(&b, "\n  %s %s", k, last[k])
			}
			fail("divergent", "digests differ %v after the heal:%s", cfg.ConvergeTimeout, b.String())
			return res
		}
		time.Sleep(200 * time.Millisecond)
	}
	for _, n := range pc.all() {
		pc.checkNode(n, l, fail)
	}
	return res
}

// checkNode reads the ledger's keys from one node and checks them.
func (pc *ProcCluster) checkNode(n *procNode, l *procLedger, fail func(kind, format string, a ...any)) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c := n.redis()
	c.Do(ctx, "READONLY") // the node's own view: every node must hold it all
	for key, sum := range l.acked {
		got, err := c.Get(ctx, key).Int64()
		if err != nil && !errors.Is(err, redis.Nil) {
			fail("error", "%s: GET %s: %v", n.name, key, err)
			continue
		}
		max := sum
		for _, d := range l.doubt[key] {
			max += d
		}
		switch {
		case got < sum:
			fail("lost", "%s: %s = %d, below the acknowledged increments %d", n.name, key, got, sum)
		case got > max:
			fail("duplicated", "%s: %s = %d, above acknowledged + in doubt %d", n.name, key, got, max)
		}
	}
	for key, members := range l.written {
		got, err := c.SMembers(ctx, key).Result()
		if err != nil {
			fail("error", "%s: SMEMBERS %s: %v", n.name, key, err)
			continue
		}
		have := map[string]bool{}
		for _, m := range got {
			have[m] = true
			if !members[m] {
				fail("duplicated", "%s: %s holds %q, never written", n.name, key, m)
			}
		}
		for m := range l.members[key] {
			if !have[m] {
				fail("lost", "%s: %s lacks the acknowledged member %q", n.name, key, m)
			}
		}
	}
	for key, fields := range l.fields {
		got, err := c.HGetAll(ctx, key).Result()
		if err != nil {
			fail("error", "%s: HGETALL %s: %v", n.name, key, err)
			continue
		}
		for f := range fields {
			if _, ok := got[f]; !ok {
				fail("lost", "%s: %s lacks the acknowledged field %q", n.name, key, f)
			}
		}
	}
}
