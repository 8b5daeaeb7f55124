package simulations

import (
	"errors"
	"fmt"
	"regexp"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"

	"concord/crdt"
	. "concord/replication"
	"concord/replication/simnet"
)

// Named scenarios, as the sweep tests and cmd/concord-sim run them. Each
// writes with one workload under one fault schedule and ends with heal,
// quiesce and every checker (finish).

// Links: faithful streams (ordered, reliable, but they break now and then)
// and hostile ones (loss, duplication and reordering inside a stream).
var (
	faithfulLink = simnet.Link{Delay: 20, Jitter: 30, Break: 0.002}
	hostileLink  = simnet.Link{Delay: 20, Jitter: 30, Drop: 0.02, Dup: 0.02, Reorder: 0.03, Break: 0.002}
)

// simSender makes messages small, so that windows, batching and
// compression all take part.
var simSender = SenderConfig{MaxInFlight: 4, BatchRecords: 8, DeflateMin: 256, ChunkBytes: 1024}

// Scenario is one named simulation.
type Scenario struct {
	Name string
	Doc  string
	cfg  simConfig
	run  func(s *sim)
}

// Scenarios lists every named scenario, in the order a sweep runs them.
var Scenarios = []Scenario{
	{Name: "partitions", Doc: "3 regions, faithful streams, random partitions and heals, every workload",
		cfg: simConfig{regions: 3, link: faithfulLink, sender: simSender, multiProb: 0.2},
		run: func(s *sim) { s.setWriting(true); s.chaos(6000, false) }},
	{Name: "hostile", Doc: "3 regions, streams that drop, duplicate and reorder; partitions and leader changes with entries in flight, some new leaders restored from a snapshot",
		cfg: simConfig{regions: 3, mode: simnet.Hostile, link: hostileLink, sender: simSender, restoreProb: 0.3,
			limits: crdt.LogLimits{MaxRecords: 80}},
		run: func(s *sim) { s.setWriting(true); s.chaos(6000, true) }},
	{Name: "outage", Doc: "3 regions; one is away long enough that the others' logs trim what it lacks: it catches up by state transfer",
		cfg: simConfig{regions: 3, link: faithfulLink, sender: simSender, limits: crdt.LogLimits{MaxRecords: 50}},
		run: func(s *sim) {
			s.setWriting(true)
			s.net.RunFor(1000)
			away := s.regs[2]
			away.kill()
			s.net.RunFor(8000)
			away.revive()
			away.writing = true
			s.chaos(2000, false)
		}},
	{Name: "relay", Doc: "3 regions; region 3 reaches only region 2, then dies: its writes reach region 1 through the relay",
		cfg: simConfig{regions: 3, link: faithfulLink, sender: simSender},
		run: func(s *sim) {
			s.setWriting(true)
			s.net.RunFor(1000)
			origin, relay, far := s.regs[2], s.regs[1], s.regs[0]
			s.net.Partition(origin.name, far.name)
			s.tracef("partition %s %s", origin.name, far.name)
			s.net.RunFor(3000)
			origin.writing = false
			if !s.runUntil(20_000, func() bool {
				return len(origin.queue) == 0 && relay.rep.Keyspace().Version().Dominates(origin.rep.Keyspace().Version())
			}) {
				s.fatal(fmt.Errorf("%s did not get %s's writes:\n%s", relay.name, origin.name, s.describe()))
			}
			origin.destroy()
			s.chaos(1000, false)
		}},
	{Name: "skew", Doc: "3 regions with clocks 30 s apart, partitions and leader changes: LWW follows stamps, not wall clocks",
		cfg: simConfig{regions: 3, link: faithfulLink, sender: simSender, skew: []int64{0, 30_000, -30_000}},
		run: func(s *sim) { s.setWriting(true); s.chaos(5000, true) }},
	{Name: "five", Doc: "5 regions, hostile streams, partitions and leader changes",
		cfg: simConfig{regions: 5, mode: simnet.Hostile, link: hostileLink, sender: simSender, writeGap: [2]int64{20, 120}},
		run: func(s *sim) { s.setWriting(true); s.chaos(5000, true) }},
	{Name: "backup-restore", Doc: "3 regions; region 1 is restored from an old backup and must take a new incarnation before it writes again",
		cfg: simConfig{regions: 3, link: faithfulLink, sender: simSender},
		run: func(s *sim) {
			s.setWriting(true)
			s.net.RunFor(1500)
			g := s.regs[0]
			backup := g.backup()
			s.net.RunFor(2500)
			g.restoreBackup(backup)
			s.chaos(3000, false)
		}},
}

// Lookup returns the scenario named name.
func Lookup(name string) (Scenario, bool) {
	for _, sc := range Scenarios {
		if sc.Name == name {
			return sc, true
		}
	}
	return Scenario{}, false
}

// Faults are deliberately broken merges and log rules (faults.go). A run
// with one must fail its checkers; they exist to prove the harness catches
// each kind of bug, and nothing outside this package can turn them on.
var Faults = []string{"drop-increment", "remove-wins", "skip-relay", "reuse-seq", "lose-ack"}

// Options select one run.
type Options struct {
	Scenario string
	Seed     uint64
	Workload string // workload name (workload.go); "" is "all"
	Fault    string // one of Faults, or ""
	// MaxWrites caps the local write units the run issues (0: no cap). The
	// shrinker lowers it to find a short failing history.
	MaxWrites int
	// Trace, if set, receives every event of the run as it happens.
	Trace func(line string)
}

// Replay is the command that reruns the run.
func (o Options) Replay() string {
	var b strings.Builder
	fmt.Fprintf(&b, "go run ./cmd/concord-sim -scenario %s -seed %d", o.Scenario, o.Seed)
	if o.Workload != "" {
		fmt.Fprintf(&b, " -workload %s", o.Workload)
	}
	if o.Fault != "" {
		fmt.Fprintf(&b, " -fault %s", o.Fault)
	}
	if o.MaxWrites > 0 {
		fmt.Fprintf(&b, " -writes %d", o.MaxWrites)
	}
	return b.String() + " -trace"
}

// Result is what one run did and found.
type Result struct {
	Options Options
	Failed  bool
	// Failure is the checkers' message (with the trace tail), Anomalies
	// its findings by kind.
	Failure   string
	Anomalies map[string]int
	// History is the run's writes and faults, in order (kept in full: runs
	// the shrinker produces are short).
	History []string
	// Keys are the keys the failure is about (divergent between regions,
	// or quoted by the model); KeyHistory is History cut to the writes on
	// them and every fault: the short story of the bug.
	Keys       []string
	KeyHistory []string

	Writes      int    // local write units applied
	Acked       int    // units acknowledged to the client (applied, not lost in a leader change)
	Lost        int    // units lost in leader changes before they were applied (never acknowledged)
	Faults      int    // partitions, isolations, leader changes, kills and restores injected
	ConvergeMs  int64  // virtual time from the final heal until every live region settled
	VirtualMs   int64  // virtual time the whole run took
	Messages    uint64 // messages the network carried
	Dropped     uint64
	Duplicated  uint64
	Reordered   uint64
	LagSamples  []int64 // ms from a write's apply at its origin to its apply in each other region
	StateDigest string  // a live region's digest at the end
}

// errFailed carries a failing run's message out of the harness.
type errFailed struct{ msg string }

// Run runs one scenario with one seed.
func Run(o Options) Result { return run(o, true) }

// run is Run; explain says whether a failure's keys and key history are
// worked out (the shrinker's trial runs skip it).
func run(o Options, explain bool) (res Result) {
	res.Options = o
	sc, ok := Lookup(o.Scenario)
	if !ok {
		res.Failed, res.Failure = true, fmt.Sprintf("unknown scenario %q", o.Scenario)
		return res
	}
	cfg := sc.cfg
	cfg.workload = o.Workload
	cfg.maxWrites = o.MaxWrites
	cfg.keepHistory = true
	if o.Fault != "" {
		if err := cfg.setFault(o.Fault); err != nil {
			res.Failed, res.Failure = true, err.Error()
			return res
		}
	}
	s := newSim(sc.Name, o.Seed, cfg, func(msg string) { panic(errFailed{msg}) }, o.Trace)
	s.replay = o.Replay()
	defer func() {
		if r := recover(); r != nil {
			f, ok := r.(errFailed)
			if !ok {
				panic(r)
			}
			res.Failed, res.Failure = true, f.msg
		}
		res.fill(s, explain)
	}()
	if cfg.fault == faultReuseSeq && sc.Name != "backup-restore" {
		panic(errFailed{"fault reuse-seq needs the backup-restore scenario"})
	}
	sc.run(s)
	s.finish(60_000)
	return res
}

func (res *Result) fill(s *sim, explain bool) {
	res.History = s.history
	res.Writes = s.stats.localWrites
	res.Lost = s.stats.lostWrites
	res.Acked = s.stats.localWrites
	res.Faults = s.faults
	res.ConvergeMs = s.stats.quiesceMs
	res.VirtualMs = s.now()
	res.Messages = s.net.Stats.Delivered
	res.Dropped = s.net.Stats.Dropped
	res.Duplicated = s.net.Stats.Duplicated
	res.Reordered = s.net.Stats.Reordered
	res.LagSamples = s.lags
	if live := s.live(); len(live) > 0 {
		res.StateDigest = shortDigest(live[0])
	}
	res.Anomalies = classify(res.Failure)
	if res.Failed && explain {
		res.Keys = failingKeys(s, res.Failure)
		if len(res.Keys) > 0 {
			res.KeyHistory = keyHistory(res.History, res.Keys[:1])
		}
	}
}

// classify sorts a failure's findings into the report's anomaly kinds.
func classify(failure string) map[string]int {
	out := map[string]int{}
	for _, line := range strings.Split(failure, "\n") {
		switch {
		case strings.Contains(line, "lacks") || strings.Contains(line, "want the sum") ||
			strings.Contains(line, "want the union") || strings.Contains(line, "no acknowledged write made it") ||
			strings.Contains(line, "want present"):
			out["lost"]++
		case strings.Contains(line, "want absent"):
			out["resurrected"]++
		case strings.Contains(line, "digest") && strings.Contains(line, "!="):
			out["divergent"]++
		case strings.Contains(line, "vv") && strings.Contains(line, "!="):
			out["divergent"]++
		case strings.Contains(line, "(tag"):
			out["stale"]++
		case strings.Contains(line, "did not settle"):
			out["stuck"]++
		case strings.Contains(line, "INVARIANT"):
			out["invariant"]++
		}
	}
	if failure != "" && len(out) == 0 {
		out["other"]++
	}
	return out
}

// Shrink looks for a shorter failing run of a failing one: the same
// scenario, seed and fault with fewer local writes. It returns the
// shortest failing run it found (res itself if none is shorter). A run is
// a pure function of its options, so the result replays exactly.
func Shrink(res Result, budget int) Result {
	if !res.Failed {
		return res
	}
	best := res
	hi := res.Writes
	if best.Options.MaxWrites > 0 && best.Options.MaxWrites < hi {
		hi = best.Options.MaxWrites
	}
	// Halve while it still fails, then step down by smaller amounts: the
	// outcome is not monotone in the cap, so this is a search, not a
	// bisection.
	for step := hi / 2; step >= 1 && budget > 0; {
		o := best.Options
		o.MaxWrites = hi - step
		if o.MaxWrites < 1 {
			step /= 2
			continue
		}
		budget--
		r := run(o, false)
		if r.Failed && sameKind(r, res) {
			best, hi = r, o.MaxWrites
			continue
		}
		step /= 2
	}
	if best.Options.MaxWrites != res.Options.MaxWrites {
		best = Run(best.Options)
	}
	return best
}

// sameKind reports whether two failures found the same kinds of anomaly,
// so shrinking keeps the bug it started with.
func sameKind(a, b Result) bool {
	for k := range b.Anomalies {
		if a.Anomalies[k] == 0 {
			return false
		}
	}
	return true
}

// Sweep runs scenarios x seeds and returns every result, in that order,
// shrinking the failures. Runs share nothing, so they go on every core at
// once; each is still a pure function of its options. A Trace function, if
// set, must be safe to call from several goroutines.
func Sweep(scenarios []string, seeds []uint64, o Options, shrinkBudget int) ([]Result, error) {
	var jobs []Options
	for _, name := range scenarios {
		if _, ok := Lookup(name); !ok {
			return nil, errors.New("unknown scenario " + name)
		}
		for _, seed := range seeds {
			oo := o
			oo.Scenario, oo.Seed = name, seed
			jobs = append(jobs, oo)
		}
	}
	out := make([]Result, len(jobs))
	next := make(chan int)
	var wg sync.WaitGroup
	for w := 0; w < runtime.GOMAXPROCS(0); w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				r := Run(jobs[i])
				if r.Failed {
					r = Shrink(r, shrinkBudget)
				}
				out[i] = r
			}
		}()
	}
	for i := range jobs {
		next <- i
	}
	close(next)
	wg.Wait()
	return out, nil
}

// ScenarioNames returns the names of every scenario.
func ScenarioNames() []string {
	out := make([]string, len(Scenarios))
	for i, sc := range Scenarios {
		out[i] = sc.Name
	}
	return out
}

// quantile returns the q-quantile of xs (sorted copy).
func quantile(xs []int64, q float64) int64 {
	if len(xs) == 0 {
		return 0
	}
	s := append([]int64(nil), xs...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	i := int(q * float64(len(s)-1))
	return s[i]
}

// keyView renders what a region holds under key, by type, for comparing
// regions key by key.
func keyView(g *simRegion, key string) string {
	typ, _ := replyString(simRead(g, "TYPE", key))
	var r crdt.Reply
	switch typ {
	case "string":
		r = simRead(g, "GET", key)
	case "hash":
		r = simRead(g, "HGETALL", key)
	case "set":
		r = simRead(g, "SMEMBERS", key)
	case "zset":
		r = simRead(g, "ZRANGE", key, "0", "-1", "WITHSCORES")
	default:
		return typ
	}
	var parts []string
	var walk func(r crdt.Reply)
	walk = func(r crdt.Reply) {
		if len(r.Elems) > 0 {
			for _, e := range r.Elems {
				walk(e)
			}
			return
		}
		v, _ := replyString(r)
		parts = append(parts, v)
	}
	walk(r)
	if typ == "set" || typ == "hash" {
		sort.Strings(parts) // canonical order for comparison only
	}
	ttl, _ := replyString(simRead(g, "TTL", key))
	return typ + " " + strings.Join(parts, ",") + " ttl>0:" + strconv.FormatBool(ttl != "-1")
}

// divergentKeys returns the keys whose content differs between live
// regions, sorted.
func divergentKeys(regs []*simRegion) []string {
	all := map[string]bool{}
	for _, g := range regs {
		for _, e := range simRead(g, "KEYS", "*").Elems {
			all[string(e.Str)] = true
		}
	}
	var out []string
	for _, k := range sortedKeys(all) {
		ref := keyView(regs[0], k)
		for _, g := range regs[1:] {
			if keyView(g, k) != ref {
				out = append(out, k)
				break
			}
		}
	}
	return out
}

// failingKeys names the keys a failure is about: those that differ between
// regions, and those the model's findings quote.
func failingKeys(s *sim, failure string) []string {
	keys := map[string]bool{}
	if live := s.live(); len(live) > 1 {
		for _, k := range divergentKeys(live) {
			keys[k] = true
		}
	}
	for _, m := range keyPattern.FindAllString(failure, -1) {
		keys[m] = true
	}
	return sortedKeys(keys)
}

var keyPattern = regexp.MustCompile(`\b(?:c|f|s|w|hc|hw|zi|zw|fl|m):[A-Za-z0-9:]+`)

// keyHistory keeps the history lines about keys, and every fault.
func keyHistory(history, keys []string) []string {
	var out []string
	for _, line := range history {
		if !strings.Contains(line, " write seq ") {
			out = append(out, line)
			continue
		}
		for _, k := range keys {
			if strings.Contains(line, `"`+k+`"`) {
				out = append(out, line)
				break
			}
		}
	}
	return out
}
