package simulations

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"hash/fnv"
	"math/rand/v2"
	"sort"
	"strings"

	"google.golang.org/protobuf/proto"

	"concord/crdt"
	pb "concord/proto"
	. "concord/replication"
	"concord/replication/simnet"
)

// simEpoch is the virtual wall clock at simulated time 0 (2026-01-01).
const simEpoch = 1_767_225_600_000

// simConfig describes one simulated deployment.
type simConfig struct {
	regions int
	mode    simnet.Mode // connection mode: faithful (Reliable) or Hostile
	link    simnet.Link // every link's behaviour
	detect  int64       // how long a cut takes to be noticed (default 500)
	limits  crdt.LogLimits
	sender  SenderConfig
	skew    []int64 // per region clock offset, ms (missing: 0)

	raftMin, raftMax int64    // delay from proposal to apply, ms
	writeGap         [2]int64 // ms between local writes in a writing region
	keys             int      // keys per workload class
	multiProb        float64  // chance a local write is a multi-command unit

	failoverMs   int64   // a region's unavailability after a leader change
	failoverSkew int64   // a new leader's clock differs by up to this
	restoreProb  float64 // chance a new leader's replica is restored from a snapshot
	tick         int64   // period of the senders' tick, ms
	raw          bool    // pass messages as Go values instead of protobuf bytes

	// Fault injection, for tests that show the checkers have teeth.
	wrapLog  func(g *simRegion, l Log) Log
	fault    fault // a deliberately broken merge (faults.go)
	loseAck  bool  // one INCRBY is recorded as acknowledged but never applied
	skipProp bool  // one remote proposal is acknowledged but never applied

	workload    string // workload.go; "" is every workload
	maxWrites   int    // cap on local write units issued (0: none)
	keepHistory bool   // record every write and fault in sim.history
}

func (c simConfig) withDefaults() simConfig {
	if c.regions == 0 {
		c.regions = 3
	}
	if c.detect == 0 {
		c.detect = 500
	}
	if c.raftMax == 0 {
		c.raftMin, c.raftMax = 1, 15
	}
	if c.writeGap == [2]int64{} {
		c.writeGap = [2]int64{5, 60}
	}
	if c.keys == 0 {
		c.keys = 6
	}
	if c.failoverMs == 0 {
		c.failoverMs = 300
	}
	if c.tick == 0 {
		c.tick = 10
	}
	if c.sender.HelloTimeout == 0 {
		c.sender.HelloTimeout = 1000
	}
	if c.sender.AckTimeout == 0 {
		c.sender.AckTimeout = 2000
	}
	return c
}

// simStats count what happened in a run, for scenario assertions.
type simStats struct {
	localWrites   int // applied local write units
	lostWrites    int // local write units lost in a leader change (never acknowledged)
	lostRemote    int // remote proposals lost in a leader change
	failovers     int
	restores      int // new leaders restored from a replica snapshot
	dials         int
	senderResets  int // Ready asked for a reset (timeouts)
	senderErrs    int // Step refused a message
	receiverErrs  int // Hello/Step/Done refused (order, protocol, rejected batch)
	snapshots     int // SetSnapshot calls
	chunks        int // chunks staged
	chunkErrs     int
	joins         int
	resumes       int // Welcomes naming a partly staged transfer
	merged        int
	duplicates    int
	rejected      int
	hlcBumps      int   // local writes whose stamp was not above the replica's last time
	mergedAfterJn int   // batches merged by a region after it joined a transfer
	quiesceMs     int64 // virtual time the final quiesce took to settle
}

// sim is one seeded run.
type sim struct {
	// fail ends the run with a message (a test's Fatalf, or the runner's
	// panic that Run recovers); logf, if set, receives every event.
	fail   func(msg string)
	logf   func(line string)
	replay string // how to replay this run, printed with failures
	name   string
	seed   uint64
	cfg    simConfig
	rng    *rand.Rand
	net    *simnet.Net
	regs   []*simRegion
	model  *simModel
	stats  simStats

	trace    []string // ring of notable events
	traceN   int
	traceAll bool
	hash     uint64 // running hash of notable events (determinism check)
	errs     []string

	lostAckDone bool
	skipDone    bool
	faultDone   int // how often the configured fault fired

	issued    int      // local write units issued (maxWrites)
	faults    int      // faults injected: partitions, isolations, leader changes, kills, restores
	history   []string // with cfg.keepHistory: every write and fault
	appliedAt map[lagKey]int64
	lags      []int64 // replication lag samples, ms
}

// lagKey names one op for lag sampling.
type lagKey struct {
	origin crdt.Origin
	seq    uint64
}

// maxLagSamples bounds the lag samples one run keeps.
const maxLagSamples = 20_000

// event records a write or fault in the history.
func (s *sim) event(format string, args ...any) {
	if s.cfg.keepHistory {
		s.history = append(s.history, fmt.Sprintf("%7d ", s.now())+fmt.Sprintf(format, args...))
	}
}

func newSim(name string, seed uint64, cfg simConfig, fail func(string), logf func(string)) *sim {
	cfg = cfg.withDefaults()
	rng := rand.New(rand.NewPCG(seed, 0x51_4d_4e_45_54))
	s := &sim{fail: fail, logf: logf, name: name, seed: seed, cfg: cfg, rng: rng, net: simnet.New(rng),
		model: newSimModel(cfg.workload), traceAll: logf != nil, hash: 14695981039346656037,
		appliedAt: map[lagKey]int64{}}
	s.net.SetDefault(cfg.link)
	s.net.SetDetect(cfg.detect)
	for i := 0; i < cfg.regions; i++ {
		g := &simRegion{s: s, idx: i, id: uint32(i + 1), name: fmt.Sprintf("r%d", i+1), in: map[uint64]*simInbound{}}
		g.origin = crdt.Origin{Region: g.id, Incarnation: 1}
		g.rep = crdt.NewReplica(crdt.NewKeyspace(g.origin, crdt.Options{}), cfg.limits)
		if i < len(cfg.skew) {
			g.skew = cfg.skew[i]
		}
		g.view = Viewer(func(fn func(r *crdt.Replica)) { fn(g.rep) })
		s.regs = append(s.regs, g)
	}
	s.model.allRegions, s.model.joins = s.regs, &s.stats.joins
	for _, g := range s.regs {
		g.out = make([]*simOutbound, cfg.regions)
		for _, p := range s.regs {
			if p != g {
				g.out[p.idx] = &simOutbound{peer: p}
			}
		}
		g.newSenders()
		s.net.Attach(g.name, g.handle)
		s.net.After(int64(g.idx), g.name, simTick{})
		s.net.After(1+s.rng.Int64N(cfg.writeGap[1]+1), g.name, simWriteTimer{})
	}
	return s
}

func (s *sim) now() int64 { return s.net.Now() }

// tracef records a notable event.
func (s *sim) tracef(format string, args ...any) {
	line := fmt.Sprintf("%7d ", s.now()) + fmt.Sprintf(format, args...)
	h := fnv.New64a()
	h.Write([]byte(line))
	s.hash = s.hash*1099511628211 ^ h.Sum64()
	if s.traceAll {
		s.logf(line)
	}
	const ring = 300
	if len(s.trace) < ring {
		s.trace = append(s.trace, line)
	} else {
		s.trace[s.traceN%ring] = line
	}
	s.traceN++
}

// failf records a broken invariant; the run fails at its end.
func (s *sim) failf(format string, args ...any) {
	msg := fmt.Sprintf("%d ms: ", s.now()) + fmt.Sprintf(format, args...)
	s.tracef("INVARIANT %s", msg)
	if len(s.errs) < 20 {
		s.errs = append(s.errs, msg)
	}
}

// traceTail returns the last recorded events, oldest first.
func (s *sim) traceTail(n int) string {
	var lines []string
	if s.traceN <= len(s.trace) {
		lines = s.trace
	} else {
		k := s.traceN % len(s.trace)
		lines = append(append([]string{}, s.trace[k:]...), s.trace[:k]...)
	}
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// rerun says how to replay this run.
func (s *sim) rerun() string {
	return fmt.Sprintf("seed %d; replay with: %s", s.seed, s.replay)
}

// fatal ends the run with the seed, how to replay it and the trace tail.
func (s *sim) fatal(err error) {
	s.fail(fmt.Sprintf("%s: %v\n%s\nlast events:\n%s\nstats: %+v", s.name, err, s.rerun(), s.traceTail(60), s.stats))
}

// checkInvariants ends the run if an invariant broke during it.
func (s *sim) checkInvariants() {
	if len(s.errs) > 0 {
		s.fatal(fmt.Errorf("invariants broken:\n  %s", strings.Join(s.errs, "\n  ")))
	}
}

func (s *sim) live() []*simRegion {
	var out []*simRegion
	for _, g := range s.regs {
		if !g.dead {
			out = append(out, g)
		}
	}
	return out
}

func (s *sim) between(lo, hi int64) int64 {
	if hi <= lo {
		return lo
	}
	return lo + s.rng.Int64N(hi-lo+1)
}

// encode prepares a message for the network: protobuf bytes, as gRPC would
// carry them, so nothing is shared between regions by accident.
func (s *sim) encode(m proto.Message) any {
	if s.cfg.raw {
		return m
	}
	b, err := proto.Marshal(m)
	if err != nil {
		panic(err)
	}
	return b
}

func decodeAs[T any, P interface {
	*T
	proto.Message
}](v any) P {
	if m, ok := v.(P); ok {
		return m
	}
	m := P(new(T))
	if err := proto.Unmarshal(v.([]byte), m); err != nil {
		panic(err)
	}
	return m
}

// ---- regions ----

// simRegion is one region: its replicated state and its current leader's
// replication machinery.
type simRegion struct {
	s      *sim
	idx    int
	id     uint32
	name   string
	origin crdt.Origin
	rep    *crdt.Replica
	view   Viewer
	skew   int64

	gen       int   // leader generation
	downUntil int64 // no leader until then (after a leader change)
	dead      bool  // destroyed: does nothing ever again
	writing   bool  // issues local writes

	out    []*simOutbound // by peer index; nil for itself
	in     map[uint64]*simInbound
	queue  []*simProposal // Raft: proposed, applied in order at .at
	lastAt int64

	writeN int
	// carriedPops is the concurrent-pop count of replicas this region
	// replaced (restores): Stats are node-local and start again at zero.
	carriedPops uint64
	maxMerged   crdt.HLC // greatest HLC of any op merged from elsewhere
	joined      bool
}

type simOutbound struct {
	peer     *simRegion
	snd      *Sender
	conn     *simnet.Conn
	redialAt int64
}

type simInbound struct {
	conn   *simnet.Conn
	r      *Receiver
	closed bool
}

type simProposal struct {
	at     int64
	cmds   []crdt.Command // a local write unit
	stamp  crdt.Stamp
	remote *Proposal // or a remote proposal
	in     *simInbound
}

type (
	simTick       struct{}
	simApply      struct{}
	simWriteTimer struct{}
)

// clock is the region leader's wall clock, in Unix ms.
func (g *simRegion) clock() int64 { return simEpoch + g.s.now() + g.skew }

func (g *simRegion) down() bool { return g.s.now() < g.downUntil }

func (g *simRegion) newSenders() {
	for _, ob := range g.out {
		if ob == nil {
			continue
		}
		var l Log = g.view
		if g.s.cfg.wrapLog != nil {
			l = g.s.cfg.wrapLog(g, l)
		}
		ob.snd = NewSender(g.s.cfg.sender, l, g.origin, g.name, ob.peer.id)
		ob.snd.Tick(g.clock())
		ob.conn = nil
		ob.redialAt = g.s.now()
	}
}

func (g *simRegion) handle(d simnet.Delivery) {
	if g.dead {
		return
	}
	switch d.Kind {
	case simnet.Timer:
		switch d.Msg.(type) {
		case simTick:
			for _, ob := range g.out {
				if ob != nil {
					g.drive(ob)
				}
			}
			g.s.net.After(g.s.cfg.tick, g.name, simTick{})
		case simApply:
			g.applyDue()
		case simWriteTimer:
			if g.writing && !g.down() {
				g.proposeWrite()
			}
			gap := g.s.cfg.writeGap
			g.s.net.After(g.s.between(gap[0], gap[1]), g.name, simWriteTimer{})
		}
	case simnet.Message:
		if d.Conn.Dialer() == g.name {
			g.onPull(d.Conn, decodeAs[pb.Pull](d.Msg))
		} else {
			g.onPush(d.Conn, decodeAs[pb.Push](d.Msg))
		}
	case simnet.Closed:
		if d.Conn.Dialer() == g.name {
			for _, ob := range g.out {
				if ob != nil && ob.conn == d.Conn {
					g.s.tracef("%s: stream to %s ended", g.name, ob.peer.name)
					ob.snd.Disconnected()
					g.lostConn(ob)
				}
			}
		} else if in := g.in[d.Conn.ID()]; in != nil {
			in.closed = true
			delete(g.in, d.Conn.ID())
		}
	}
}

func (g *simRegion) lostConn(ob *simOutbound) {
	ob.conn = nil
	ob.redialAt = g.s.now() + g.s.between(20, 200)
}

// drive runs one sender: tick, (re)connect, hand it a snapshot if it asks,
// and send what it has ready.
func (g *simRegion) drive(ob *simOutbound) {
	s := g.s
	ob.snd.Tick(g.clock())
	if ob.conn == nil {
		if g.down() || s.now() < ob.redialAt {
			return
		}
		c, err := s.net.Dial(g.name, ob.peer.name, s.cfg.mode)
		if err != nil {
			ob.redialAt = s.now() + s.between(50, 300)
			return
		}
		s.stats.dials++
		s.tracef("%s: dial %s (%v)", g.name, ob.peer.name, c)
		ob.conn = c
		ob.snd.Connected()
	}
	if ob.snd.NeedsSnapshot() {
		data, vv, next := g.view.Snapshot()
		s.stats.snapshots++
		s.tracef("%s: snapshot for %s, %d bytes, vv %v", g.name, ob.peer.name, len(data), vv)
		ob.snd.SetSnapshot(data, vv, next)
	}
	msgs, reset := ob.snd.Ready()
	if reset {
		s.stats.senderResets++
		s.tracef("%s: sender to %s asks for a reset", g.name, ob.peer.name)
		ob.conn.Close(g.name)
		g.lostConn(ob)
		return
	}
	for _, m := range msgs {
		if err := ob.conn.Send(g.name, s.encode(m)); err != nil {
			ob.snd.Disconnected()
			g.lostConn(ob)
			return
		}
	}
}

func (g *simRegion) onPull(c *simnet.Conn, m *pb.Pull) {
	var ob *simOutbound
	for _, o := range g.out {
		if o != nil && o.conn == c {
			ob = o
		}
	}
	if ob == nil {
		return // a stream this leader no longer uses
	}
	if w := m.GetWelcome(); w != nil && w.TransferOffset > 0 {
		g.s.stats.resumes++
		g.s.tracef("%s: %s resumes transfer %x at %d", g.name, ob.peer.name, w.TransferId, w.TransferOffset)
	}
	if err := ob.snd.Step(m); err != nil {
		g.s.stats.senderErrs++
		g.s.tracef("%s: sender to %s: %v", g.name, ob.peer.name, err)
		c.Close(g.name)
		g.lostConn(ob)
		return
	}
	g.drive(ob)
}

func (g *simRegion) onPush(c *simnet.Conn, m *pb.Push) {
	s := g.s
	in := g.in[c.ID()]
	if in == nil {
		if g.down() {
			c.Close(g.name) // no leader to serve the stream
			return
		}
		in = &simInbound{conn: c, r: NewReceiver(g.origin, g.name, g.view)}
		g.in[c.ID()] = in
	}
	var err error
	if h := m.GetHello(); h != nil {
		var w *pb.Pull
		if w, err = in.r.Hello(h, g.clock()); err == nil {
			c.Send(g.name, s.encode(w))
			return
		}
	} else {
		var p Proposal
		if p, err = in.r.Step(m); err == nil {
			g.propose(&simProposal{remote: &p, in: in})
			return
		}
	}
	s.stats.receiverErrs++
	s.tracef("%s: receiver from %s: %v", g.name, c.Peer(g.name), err)
	g.closeIn(in)
}

func (g *simRegion) closeIn(in *simInbound) {
	in.closed = true
	in.conn.Close(g.name)
	delete(g.in, in.conn.ID())
}

// propose hands p to the region's Raft: it is applied after a delay, in
// proposal order.
func (g *simRegion) propose(p *simProposal) {
	s := g.s
	at := s.now() + s.between(s.cfg.raftMin, s.cfg.raftMax)
	if at < g.lastAt {
		at = g.lastAt
	}
	g.lastAt, p.at = at, at
	g.queue = append(g.queue, p)
	s.net.At(at, g.name, simApply{})
}

func (g *simRegion) applyDue() {
	for len(g.queue) > 0 && g.queue[0].at <= g.s.now() {
		p := g.queue[0]
		g.queue = g.queue[1:]
		if p.remote == nil {
			g.applyLocal(p)
		} else {
			g.applyRemote(p)
		}
	}
}

func (g *simRegion) applyRemote(p *simProposal) {
	s := g.s
	var a Applied
	if s.cfg.skipProp && !s.skipDone && len(p.remote.Batches) > 0 && s.stats.merged > 20 {
		// Fault: acknowledge as merged what was never applied.
		s.skipDone = true
		s.tracef("%s: FAULT skips a proposal of %d batches", g.name, len(p.remote.Batches))
		for range p.remote.Batches {
			a.Outcomes = append(a.Outcomes, crdt.Merged)
		}
	} else if ch := p.remote.Chunk; ch != nil {
		staged, joined, err := g.rep.StageChunk(*ch)
		a.Staged, a.Joined, a.Err = staged, joined, err
		if err != nil {
			s.stats.chunkErrs++
			s.tracef("%s: chunk %x@%d: %v", g.name, ch.ID, ch.Offset, err)
		} else {
			s.stats.chunks++
		}
		if joined {
			s.stats.joins++
			g.joined = true
			s.tracef("%s: joined transfer %x, vv %v", g.name, ch.ID, g.rep.Keyspace().Version())
		}
	} else {
		for _, b := range p.remote.Batches {
			b = s.breakMerge(g, b)
			out, err := g.rep.Merge(b)
			if out == crdt.Merged {
				s.sampleLag(b)
			}
			a.Outcomes = append(a.Outcomes, out)
			switch out {
			case crdt.Merged:
				s.stats.merged++
				if g.joined {
					s.stats.mergedAfterJn++
				}
				l := g.rep.Log()
				if r, ok := l.Record(l.Next() - 1); ok && r.Time > g.maxMerged {
					g.maxMerged = r.Time
				}
			case crdt.Duplicate:
				s.stats.duplicates++
			default:
				s.stats.rejected++
				s.tracef("%s: rejected batch: %v", g.name, err)
			}
		}
	}
	if in := p.in; in != nil && !in.closed && g.in[in.conn.ID()] == in {
		ack, err := in.r.Done(a, g.clock())
		if err != nil {
			s.stats.receiverErrs++
			s.tracef("%s: receiver from %s: %v", g.name, in.conn.Peer(g.name), err)
			g.closeIn(in)
			return
		}
		in.conn.Send(g.name, s.encode(ack))
	}
}

// proposeWrite proposes one local write unit, stamped with the leader's
// clock.
func (g *simRegion) proposeWrite() {
	s := g.s
	if s.cfg.maxWrites > 0 && s.issued >= s.cfg.maxWrites {
		return
	}
	s.issued++
	g.writeN++
	cmds := s.model.gen(s, g)
	g.propose(&simProposal{cmds: cmds, stamp: crdt.Stamp{Time: crdt.HLCFromMillis(g.clock()), Seed: s.rng.Uint64()}})
}

// write proposes a given write (scenarios that script their writes).
func (g *simRegion) write(args ...string) {
	g.propose(&simProposal{cmds: []crdt.Command{{DB: 0, Args: simArgs(args...)}},
		stamp: crdt.Stamp{Time: crdt.HLCFromMillis(g.clock()), Seed: g.s.rng.Uint64()}})
}

func simArgs(args ...string) [][]byte {
	out := make([][]byte, len(args))
	for i, a := range args {
		out[i] = []byte(a)
	}
	return out
}

func (g *simRegion) applyLocal(p *simProposal) {
	s := g.s
	ks := g.rep.Keyspace()
	before, seq0, vv0 := ks.LastTime(), ks.Version().Get(g.origin), ks.Version()
	if s.cfg.loseAck && !s.lostAckDone && len(p.cmds) == 1 &&
		strings.EqualFold(string(p.cmds[0].Args[0]), "INCRBY") && s.model.tracked(p.cmds[0].Args) && string(p.cmds[0].Args[2]) != "0" {
		// Fault: the client is told OK, the write is never applied.
		s.lostAckDone = true
		s.tracef("%s: FAULT acknowledges %q without applying it", g.name, p.cmds[0].Args)
		s.model.record(g, p.cmds[0].Args, crdt.Tag{}, vv0, crdt.Reply{})
		return
	}
	replies := g.rep.Apply(p.stamp, p.cmds)
	s.stats.localWrites++
	after := ks.LastTime()
	if p.stamp.Time <= before {
		s.stats.hlcBumps++
	}
	if after <= before || after < p.stamp.Time {
		s.failf("%s: local write at stamp %d got HLC %d, replica was at %d", g.name, p.stamp.Time, after, before)
	}
	if g.maxMerged != 0 && after <= g.maxMerged {
		s.failf("%s: local write got HLC %d, not above a merged write's %d", g.name, after, g.maxMerged)
	}
	seq1 := ks.Version().Get(g.origin)
	for q := seq0 + 1; q <= seq1; q++ {
		s.appliedAt[lagKey{g.origin, q}] = s.now()
	}
	if s.cfg.keepHistory {
		var parts []string
		for i, c := range p.cmds {
			parts = append(parts, fmt.Sprintf("%q -> %s", c.Args, replyText(replies[i])))
		}
		s.event("%s write seq %d..%d: %s", g.name, seq0+1, seq1, strings.Join(parts, "; "))
	}
	for i, c := range p.cmds {
		if replies[i].Kind == crdt.KindError {
			if s.model.tracked(c.Args) {
				s.failf("%s: %q: %s", g.name, c.Args, replies[i].Str)
			}
			continue
		}
		var tag crdt.Tag
		if len(p.cmds) == 1 {
			// SREM or EXPIRE that changed nothing, LPOP of an empty list
			noop := seq1 == seq0 && (replies[i].Kind == crdt.KindInt && replies[i].Int == 0 || replies[i].Kind == crdt.KindNil)
			if seq1 != seq0+1 && !noop && s.model.tracked(c.Args) {
				s.failf("%s: %q used seqs %d..%d", g.name, c.Args, seq0, seq1)
			}
			tag = crdt.Tag{Time: after, Dot: crdt.Dot{Origin: g.origin, Seq: seq1}}
		}
		s.model.record(g, c.Args, tag, vv0, replies[i])
	}
}

// ---- leader changes, kills ----

// failover models a leader change in g: Raft entries proposed but not yet
// applied survive up to a point chosen by the seed (a committed prefix) and
// the rest is lost; every stream of the old leader ends; the new leader
// starts fresh Senders and Receivers against the same replicated state,
// possibly restored from a Raft snapshot of it, after an election delay.
func (g *simRegion) failover() {
	s := g.s
	keep := s.rng.IntN(len(g.queue) + 1)
	lost := len(g.queue) - keep
	for _, p := range g.queue[keep:] {
		if p.remote == nil {
			s.stats.lostWrites++
		} else {
			s.stats.lostRemote++
		}
	}
	g.queue = g.queue[:keep]
	for _, p := range g.queue {
		p.in = nil // the old leader's receivers are gone; the outcome is unknown to the sender
	}
	if len(g.queue) == 0 {
		g.lastAt = 0
	}
	for _, ob := range g.out {
		if ob != nil && ob.conn != nil {
			ob.conn.Close(g.name)
		}
	}
	ids := make([]uint64, 0, len(g.in))
	for id := range g.in {
		ids = append(ids, id)
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] }) // Close draws from the seeded rng
	for _, id := range ids {
		g.in[id].closed = true
		g.in[id].conn.Close(g.name)
	}
	g.in = map[uint64]*simInbound{}
	g.gen++
	g.downUntil = s.now() + s.between(s.cfg.failoverMs/2, s.cfg.failoverMs)
	if s.cfg.failoverSkew > 0 {
		g.skew += s.between(-s.cfg.failoverSkew, s.cfg.failoverSkew)
	}
	if s.rng.Float64() < s.cfg.restoreProb {
		g.restoreFromSnapshot()
	}
	g.newSenders()
	for _, ob := range g.out {
		if ob != nil {
			ob.redialAt = g.downUntil
		}
	}
	s.stats.failovers++
	s.faults++
	s.tracef("%s: leader change (gen %d), kept %d pending proposals", g.name, g.gen, keep)
	s.event("%s: leader change, %d pending proposals kept, %d lost", g.name, keep, lost)
}

// restoreFromSnapshot replaces the replica by a decoded copy of its Raft
// snapshot, as on a node that installed one.
func (g *simRegion) restoreFromSnapshot() {
	s := g.s
	var buf bytes.Buffer
	for _, p := range g.rep.Snapshot() {
		buf.Write(p)
	}
	rep, err := crdt.RestoreReplica(buf.Bytes(), s.cfg.limits)
	if err != nil {
		s.failf("%s: restoring the replica snapshot: %v", g.name, err)
		return
	}
	old := g.rep
	if rep.Keyspace().Digest() != old.Keyspace().Digest() || rep.Log().First() != old.Log().First() ||
		rep.Log().Next() != old.Log().Next() || rep.Keyspace().LastTime() != old.Keyspace().LastTime() {
		s.failf("%s: restored replica differs from the original", g.name)
		return
	}
	g.carriedPops += g.rep.Keyspace().Stats.ListConcurrentPops // node-local counters restart with the replica
	g.rep = rep
	s.stats.restores++
}

// kill stops all of g's traffic (it keeps its state); revive undoes it.
func (g *simRegion) kill() {
	g.writing = false
	g.s.net.Isolate(g.name)
	g.s.tracef("%s: killed", g.name)
	g.s.faults++
	g.s.event("%s: killed", g.name)
}

func (g *simRegion) revive() {
	g.s.net.Rejoin(g.name)
	g.s.tracef("%s: revived", g.name)
	g.s.event("%s: revived", g.name)
}

// destroy removes g forever.
func (g *simRegion) destroy() {
	g.s.net.Isolate(g.name)
	g.dead, g.writing = true, false
	g.s.tracef("%s: destroyed", g.name)
	g.s.faults++
	g.s.event("%s: destroyed", g.name)
}

// ---- running and checking ----

func (s *sim) setWriting(on bool) {
	for _, g := range s.live() {
		g.writing = on
	}
}

// chaos runs the network for dur ms, applying a random fault every so
// often: partitions, heals, isolations and, if leaders is set, leader
// changes.
func (s *sim) chaos(dur int64, leaders bool) {
	end := s.now() + dur
	for s.now() < end {
		s.net.RunFor(s.between(100, 1500))
		live := s.live()
		a, b := live[s.rng.IntN(len(live))], live[s.rng.IntN(len(live))]
		switch k := s.rng.IntN(10); {
		case k < 3 && a != b:
			s.net.Partition(a.name, b.name)
			s.tracef("partition %s %s", a.name, b.name)
			s.faults++
			s.event("partition %s %s", a.name, b.name)
		case k < 5 && a != b:
			s.net.Heal(a.name, b.name)
			s.tracef("heal %s %s", a.name, b.name)
			s.event("heal %s %s", a.name, b.name)
		case k == 5:
			s.net.Isolate(a.name)
			s.tracef("isolate %s", a.name)
			s.faults++
			s.event("isolate %s", a.name)
		case k == 6:
			s.healLive()
			s.tracef("heal all")
			s.event("heal all")
		case k >= 8 && leaders:
			a.failover()
		}
	}
}

// healLive heals every partition and isolation except of dead regions.
func (s *sim) healLive() {
	s.net.HealAll()
	for _, g := range s.regs {
		if g.dead {
			s.net.Isolate(g.name)
		}
	}
}

// settled reports whether every live region applied everything and all
// live regions hold the same version vector.
func (s *sim) settled() bool {
	live := s.live()
	vv := live[0].rep.Keyspace().Version()
	for _, g := range live {
		if len(g.queue) > 0 || g.down() || !g.rep.Keyspace().Version().Equal(vv) {
			return false
		}
	}
	return true
}

// quiesce stops writes, heals the network and runs until the regions
// settle (or limit ms pass), then a little longer so acks drain.
func (s *sim) quiesce(limit int64) error {
	s.setWriting(false)
	s.healLive()
	s.tracef("quiesce")
	s.event("heal all, stop writing, quiesce")
	deadline := s.now() + limit
	for s.now() < deadline {
		s.net.RunFor(100)
		if s.settled() {
			s.stats.quiesceMs += s.now() + limit - deadline
			s.net.RunFor(1000)
			return nil
		}
	}
	return fmt.Errorf("regions did not settle in %d ms:\n%s", limit, s.describe())
}

// runUntil runs until cond holds (checked every ms) or limit ms pass.
func (s *sim) runUntil(limit int64, cond func() bool) bool {
	deadline := s.now() + limit
	for s.now() < deadline {
		if cond() {
			return true
		}
		s.net.RunFor(1)
	}
	return cond()
}

func (s *sim) describe() string {
	var b strings.Builder
	for _, g := range s.regs {
		fmt.Fprintf(&b, "  %s dead=%v down=%v queue=%d vv=%v log=[%d,%d) digest=%s\n", g.name, g.dead, g.down(),
			len(g.queue), g.rep.Keyspace().Version(), g.rep.Log().First(), g.rep.Log().Next(), shortDigest(g))
		for _, ob := range g.out {
			if ob != nil {
				st := ob.snd.Stats()
				fmt.Fprintf(&b, "    -> %s %s inflight=%d acked=%d next=%d peervv=%v resets=%d\n",
					ob.peer.name, st.State, st.InFlight, st.AckedPos, st.NextPos, st.PeerVV, st.Resets)
			}
		}
	}
	return b.String()
}

func shortDigest(g *simRegion) string {
	d := g.rep.Keyspace().Digest()
	return hex.EncodeToString(d[:6])
}

// checkConverged requires every live region to hold byte-identical state
// and version vectors, and every write any region (dead or alive) applied
// to be covered by every live region: nothing acknowledged is lost.
func checkConverged(regs []*simRegion) error {
	var live []*simRegion
	for _, g := range regs {
		if !g.dead {
			live = append(live, g)
		}
	}
	var errs []string
	ref := live[0]
	rd, rv := ref.rep.Keyspace().Digest(), ref.rep.Keyspace().Version()
	for _, g := range live[1:] {
		if d := g.rep.Keyspace().Digest(); d != rd {
			errs = append(errs, fmt.Sprintf("%s digest %x != %s digest %x", g.name, d[:8], ref.name, rd[:8]))
		}
		if v := g.rep.Keyspace().Version(); !v.Equal(rv) {
			errs = append(errs, fmt.Sprintf("%s vv %v != %s vv %v", g.name, v, ref.name, rv))
		}
	}
	for _, o := range regs {
		own := o.rep.Keyspace().Version().Get(o.origin)
		for _, g := range live {
			if got := g.rep.Keyspace().Version().Get(o.origin); got < own {
				errs = append(errs, fmt.Sprintf("%s lacks %s's writes %d..%d", g.name, o.name, got+1, own))
			}
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("not converged:\n  %s", strings.Join(errs, "\n  "))
	}
	return nil
}

// finish heals, quiesces and runs every check; the test fails with the
// seed on any failure.
func (s *sim) finish(limit int64) {
	if err := s.quiesce(limit); err != nil {
		s.fatal(err)
	}
	if err := checkConverged(s.regs); err != nil {
		s.fatal(err)
	}
	if err := s.model.check(s.live()); err != nil {
		s.fatal(err)
	}
	s.checkInvariants()
	for _, g := range s.live() {
		s.tracef("%s final digest %s", g.name, shortDigest(g))
	}
}

// sortedKeys returns m's keys in order.
func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// replyText renders a reply for the history.
func replyText(r crdt.Reply) string {
	switch r.Kind {
	case crdt.KindError:
		return "(error) " + string(r.Str)
	case crdt.KindNil, crdt.KindNilArray:
		return "(nil)"
	case crdt.KindArray, crdt.KindMap, crdt.KindSet, crdt.KindPairs:
		return fmt.Sprintf("(%d elements)", len(r.Elems))
	}
	if v, ok := replyString(r); ok {
		return v
	}
	return "?"
}
