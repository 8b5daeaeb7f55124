package simulations

// Deterministic multi-region simulations of the replication cores. Every
// run is one seed (see sim_harness_test.go for how to replay one); every
// scenario ends with heal + quiesce and requires byte-identical digests and
// equal version vectors in every live region, nothing acknowledged lost,
// and the state the reference model (sim_model_test.go) predicts.

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"

	"concord/crdt"
	. "concord/replication"
	"concord/replication/simnet"
)

// shortMs halves a scenario phase under -short.
func shortMs(ms int64) int64 {
	if testing.Short() {
		return ms / 2
	}
	return ms
}

// simSeeds returns the seeds a test runs: SIMSEED alone if set, else n
// (SIMSEEDS overrides n; -short divides it by 4).
func simSeeds(tb testing.TB, n int) []uint64 {
	if v := os.Getenv("SIMSEED"); v != "" {
		seed, err := strconv.ParseUint(v, 0, 64)
		if err != nil {
			tb.Fatalf("SIMSEED=%q: %v", v, err)
		}
		return []uint64{seed}
	}
	if v := os.Getenv("SIMSEEDS"); v != "" {
		k, err := strconv.Atoi(v)
		if err != nil {
			tb.Fatalf("SIMSEEDS=%q: %v", v, err)
		}
		n = k
	} else if testing.Short() {
		n = (n + 3) / 4
	}
	base := uint64(0)
	if v := os.Getenv("SIMSEEDBASE"); v != "" {
		base, _ = strconv.ParseUint(v, 0, 64)
	}
	seeds := make([]uint64, n)
	for i := range seeds {
		seeds[i] = base + uint64(i) + 1
	}
	return seeds
}

// newTestSim starts a run whose failures fail t; SIMTRACE=1 logs every
// event.
func newTestSim(t testing.TB, name string, seed uint64, cfg simConfig) *sim {
	var logf func(string)
	if os.Getenv("SIMTRACE") != "" {
		logf = func(line string) { t.Log(line) }
	}
	s := newSim(name, seed, cfg, func(msg string) { t.Helper(); t.Fatal(msg) }, logf)
	s.replay = fmt.Sprintf("SIMSEED=%d go test ./simulations -run '^%s$' -v (SIMTRACE=1 for every event)",
		seed, strings.ReplaceAll(t.Name(), "/", "$/^"))
	return s
}

type simCase struct {
	name  string
	seeds int
	cfg   simConfig
}

// runSims runs scenario for every seed of every case, cases in parallel.
// after, if set, checks what the runs of one case did in total.
func runSims(t *testing.T, cases []simCase, scenario func(s *sim), after func(t *testing.T, total simStats, net simnet.Stats)) {
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			var total simStats
			var net simnet.Stats
			for _, seed := range simSeeds(t, c.seeds) {
				s := newTestSim(t, c.name, seed, c.cfg)
				scenario(s)
				addStats(&total, s.stats)
				addNetStats(&net, s.net.Stats)
			}
			t.Logf("%s: %+v", c.name, total)
			if after != nil && !t.Failed() {
				after(t, total, net)
			}
		})
	}
}

func addStats(a *simStats, b simStats) {
	a.localWrites += b.localWrites
	a.lostWrites += b.lostWrites
	a.lostRemote += b.lostRemote
	a.failovers += b.failovers
	a.restores += b.restores
	a.dials += b.dials
	a.senderResets += b.senderResets
	a.senderErrs += b.senderErrs
	a.receiverErrs += b.receiverErrs
	a.snapshots += b.snapshots
	a.chunks += b.chunks
	a.chunkErrs += b.chunkErrs
	a.joins += b.joins
	a.resumes += b.resumes
	a.merged += b.merged
	a.duplicates += b.duplicates
	a.rejected += b.rejected
	a.hlcBumps += b.hlcBumps
	a.mergedAfterJn += b.mergedAfterJn
	a.quiesceMs += b.quiesceMs
}

func addNetStats(a *simnet.Stats, b simnet.Stats) {
	a.Sent += b.Sent
	a.Delivered += b.Delivered
	a.Dropped += b.Dropped
	a.Duplicated += b.Duplicated
	a.Reordered += b.Reordered
	a.Discarded += b.Discarded
	a.Breaks += b.Breaks
	a.Cuts += b.Cuts
}

// Concurrent random writes of every type in every region, under
// partitions and heals, with faithful or hostile streams.
func TestSimConcurrentWrites(t *testing.T) {
	cfg := func(n int, mode simnet.Mode, l simnet.Link) simConfig {
		return simConfig{regions: n, mode: mode, link: l, sender: simSender, multiProb: 0.1}
	}
	runSims(t, []simCase{
		{"3-faithful", 30, cfg(3, simnet.Reliable, faithfulLink)},
		{"3-hostile", 30, cfg(3, simnet.Hostile, hostileLink)},
		{"5-faithful", 12, cfg(5, simnet.Reliable, faithfulLink)},
		{"5-hostile", 12, cfg(5, simnet.Hostile, hostileLink)},
	}, func(s *sim) {
		s.setWriting(true)
		s.chaos(shortMs(15_000), false)
		s.finish(120_000)
	}, func(t *testing.T, total simStats, net simnet.Stats) {
		if total.localWrites < 500 || total.merged < 1000 {
			t.Errorf("too little happened: %+v", total)
		}
		if net.Cuts == 0 || net.Breaks == 0 {
			t.Errorf("no partition or broken stream: %+v", net)
		}
		if strings.HasSuffix(t.Name(), "hostile") && (net.Dropped == 0 || net.Duplicated == 0 || net.Reordered == 0 || total.receiverErrs == 0) {
			t.Errorf("hostile links did not misbehave, or receivers never refused: %+v %+v", net, total)
		}
	})
}

// All regions but one are killed (no traffic; they keep their state) while
// the survivor takes writes; they come back one by one.
func TestSimKillAndRevive(t *testing.T) {
	cfg := func(n int, mode simnet.Mode, l simnet.Link) simConfig {
		return simConfig{regions: n, mode: mode, link: l, sender: simSender}
	}
	runSims(t, []simCase{
		{"3", 8, cfg(3, simnet.Reliable, faithfulLink)},
		{"5", 4, cfg(5, simnet.Reliable, faithfulLink)},
		{"3-hostile", 6, cfg(3, simnet.Hostile, hostileLink)},
	}, func(s *sim) {
		s.setWriting(true)
		s.net.RunFor(3000)
		survivor := s.regs[0]
		for _, g := range s.regs[1:] {
			g.kill()
		}
		s.net.RunFor(shortMs(8000))
		for _, g := range s.regs[1:] {
			want := survivor.rep.Keyspace().Version()
			g.revive()
			g.writing = true
			if !s.runUntil(30_000, func() bool { return g.rep.Keyspace().Version().Dominates(want) }) {
				s.fatal(fmt.Errorf("%s did not catch up with the survivor's %v in 30 s:\n%s", g.name, want, s.describe()))
			}
			s.net.RunFor(2000)
		}
		s.finish(60_000)
	}, nil)
}

// The origin's writes reach only one peer, then the origin is destroyed:
// they still reach every region, relayed. With five regions the relay has
// two hops: the first peer is destroyed too once a second one has them.
func TestSimRelay(t *testing.T) {
	cfg := func(n int, mode simnet.Mode, l simnet.Link) simConfig {
		return simConfig{regions: n, mode: mode, link: l, sender: simSender}
	}
	runSims(t, []simCase{
		{"3", 8, cfg(3, simnet.Reliable, faithfulLink)},
		{"5", 6, cfg(5, simnet.Reliable, faithfulLink)},
		{"5-hostile", 4, cfg(5, simnet.Hostile, hostileLink)},
	}, func(s *sim) {
		s.setWriting(true)
		s.net.RunFor(2000)
		chain := s.regs[:2] // origin, first relay
		if len(s.regs) == 5 {
			chain = s.regs[:3] // origin, first relay, second relay
		}
		// Region chain[i] reaches only chain[i-1] and chain[i+1].
		for i, g := range chain[:len(chain)-1] {
			for _, h := range s.regs[i+2:] {
				s.net.Partition(g.name, h.name)
			}
		}
		s.net.RunFor(3000)
		for i, g := range chain[:len(chain)-1] {
			next := chain[i+1]
			g.writing = false
			want := g.rep.Keyspace().Version()
			if !s.runUntil(20_000, func() bool {
				return len(g.queue) == 0 && next.rep.Keyspace().Version().Dominates(g.rep.Keyspace().Version())
			}) {
				s.fatal(fmt.Errorf("%s did not get %s's writes %v:\n%s", next.name, g.name, want, s.describe()))
			}
			g.destroy()
		}
		s.finish(60_000)
		origin := s.regs[0]
		for _, g := range s.live() {
			if got, want := g.rep.Keyspace().Version().Get(origin.origin), origin.rep.Keyspace().Version().Get(origin.origin); got != want {
				s.fatal(fmt.Errorf("%s holds the destroyed origin's writes up to %d, want %d", g.name, got, want))
			}
		}
	}, nil)
}

// A region away long enough that its peers' logs (50 records) trim what it
// lacks catches up by state transfer in several chunks, then streams.
func TestSimTrimTransfer(t *testing.T) {
	cfg := func(n int, mode simnet.Mode, l simnet.Link) simConfig {
		return simConfig{regions: n, mode: mode, link: l, limits: crdt.LogLimits{MaxRecords: 50},
			sender: SenderConfig{MaxInFlight: 4, BatchRecords: 8, ChunkBytes: 512}, writeGap: [2]int64{40, 160}, keys: 10}
	}
	runSims(t, []simCase{
		{"3-faithful", 8, cfg(3, simnet.Reliable, faithfulLink)},
		{"3-hostile", 8, cfg(3, simnet.Hostile, hostileLink)},
		{"5-faithful", 4, cfg(5, simnet.Reliable, faithfulLink)},
		{"5-hostile", 4, cfg(5, simnet.Hostile, hostileLink)},
	}, func(s *sim) {
		s.setWriting(true)
		s.net.RunFor(2000)
		away := s.regs[len(s.regs)-1]
		away.kill()
		s.net.RunFor(12_000)
		trimmed := false
		for _, g := range s.live()[:len(s.regs)-1] {
			if _, ok := g.rep.Log().Start(away.rep.Keyspace().Version(), g.rep.Keyspace().Version()); !ok {
				trimmed = true
			}
		}
		if !trimmed {
			s.fatal(fmt.Errorf("no peer's log trimmed what %s lacks:\n%s", away.name, s.describe()))
		}
		joins := s.stats.joins
		away.revive()
		away.writing = true
		// Writes go on, slower: a transfer must finish before the log turns
		// over, or the receiver needs another one as soon as it joins.
		s.cfg.writeGap = [2]int64{300, 600}
		if !s.runUntil(30_000, func() bool { return s.stats.joins > joins }) {
			s.fatal(fmt.Errorf("%s never joined a transfer:\n%s", away.name, s.describe()))
		}
		merged := s.stats.mergedAfterJn
		s.net.RunFor(5000) // streaming resumes: writes go on and reach it as batches
		if s.stats.mergedAfterJn == merged {
			s.fatal(fmt.Errorf("no batch merged after the transfer: streaming did not resume:\n%s", s.describe()))
		}
		s.finish(60_000)
	}, func(t *testing.T, total simStats, _ simnet.Stats) {
		if total.chunks < 3*total.joins {
			t.Errorf("transfers were not split into several chunks: %+v", total)
		}
	})
}

// A transfer cut off mid-way resumes from what the receiver staged: the
// new stream's Welcome names the transfer and its offset.
func TestSimTransferResume(t *testing.T) {
	cfg := func(n int, mode simnet.Mode, l simnet.Link) simConfig {
		return simConfig{regions: n, mode: mode, link: l, limits: crdt.LogLimits{MaxRecords: 50},
			sender: SenderConfig{MaxInFlight: 1, BatchRecords: 8, ChunkBytes: 256}, writeGap: [2]int64{40, 160}, keys: 10}
	}
	runSims(t, []simCase{
		{"3-faithful", 8, cfg(3, simnet.Reliable, simnet.Link{Delay: 20, Jitter: 30})},
		{"5-faithful", 4, cfg(5, simnet.Reliable, simnet.Link{Delay: 20, Jitter: 30})},
		{"3-hostile", 6, cfg(3, simnet.Hostile, simnet.Link{Delay: 20, Jitter: 30, Dup: 0.01, Reorder: 0.01})},
	}, func(s *sim) {
		s.setWriting(true)
		s.net.RunFor(2000)
		away := s.regs[len(s.regs)-1]
		away.kill()
		s.net.RunFor(12_000)
		away.revive()
		// Wait for a transfer to be partly staged, then cut its stream.
		var from *simRegion
		partial := func() bool {
			for _, g := range s.regs[:len(s.regs)-1] {
				st := g.out[away.idx].snd.Stats()
				if st.TransferAcked > 0 && st.TransferAcked+2*512 < st.TransferSize {
					from = g
					return true
				}
			}
			return false
		}
		if !s.runUntil(30_000, partial) {
			s.fatal(fmt.Errorf("no transfer to %s was caught mid-way:\n%s", away.name, s.describe()))
		}
		resumes := s.stats.resumes
		s.tracef("cut the transfer %s -> %s", from.name, away.name)
		s.net.Partition(from.name, away.name)
		s.net.RunFor(1500)
		s.net.Heal(from.name, away.name)
		if !s.runUntil(20_000, func() bool { return s.stats.resumes > resumes }) {
			s.fatal(fmt.Errorf("the transfer %s -> %s did not resume:\n%s", from.name, away.name, s.describe()))
		}
		s.finish(60_000)
	}, nil)
}

// Leader changes in every region, mid-stream and mid-transfer: pending
// proposals survive or are lost by the seed, new leaders restart shipping
// and receiving against the same replicated state (sometimes restored from
// a snapshot of it). The counters of the model prove nothing is lost and
// nothing applied twice.
func TestSimLeaderChanges(t *testing.T) {
	cfg := func(n int, mode simnet.Mode, l simnet.Link, limits crdt.LogLimits) simConfig {
		return simConfig{regions: n, mode: mode, link: l, limits: limits, sender: simSender,
			restoreProb: 0.5, failoverSkew: 300, multiProb: 0.1}
	}
	runSims(t, []simCase{
		{"3-faithful", 16, cfg(3, simnet.Reliable, faithfulLink, crdt.LogLimits{})},
		{"3-hostile", 12, cfg(3, simnet.Hostile, hostileLink, crdt.LogLimits{})},
		{"5-faithful", 6, cfg(5, simnet.Reliable, faithfulLink, crdt.LogLimits{})},
		{"3-smalllog", 12, cfg(3, simnet.Reliable, faithfulLink, crdt.LogLimits{MaxRecords: 60})},
		{"3-smalllog-hostile", 8, cfg(3, simnet.Hostile, hostileLink, crdt.LogLimits{MaxRecords: 60})},
	}, func(s *sim) {
		s.setWriting(true)
		end := s.now() + shortMs(15_000)
		for s.now() < end {
			s.net.RunFor(s.between(200, 1200))
			s.regs[s.rng.IntN(len(s.regs))].failover()
			if s.rng.IntN(4) == 0 {
				a, b := s.regs[s.rng.IntN(len(s.regs))], s.regs[s.rng.IntN(len(s.regs))]
				if a != b {
					s.net.Partition(a.name, b.name)
				}
			}
			if s.rng.IntN(4) == 0 {
				s.healLive()
			}
		}
		s.finish(120_000)
	}, func(t *testing.T, total simStats, _ simnet.Stats) {
		if total.failovers == 0 || total.lostWrites+total.lostRemote == 0 || total.restores == 0 || total.hlcBumps == 0 {
			t.Errorf("leader changes did not exercise lost proposals, restores and clock bumps: %+v", total)
		}
	})
}

// Clocks several seconds apart: regions converge, LWW follows HLC tags,
// a region whose clock is behind still wins when its write causally
// follows, and the senders measure the offsets.
func TestSimClockSkew(t *testing.T) {
	cfg := func(skew ...int64) simConfig {
		return simConfig{regions: len(skew), skew: skew, link: simnet.Link{Delay: 20, Jitter: 30}, sender: simSender}
	}
	runSims(t, []simCase{
		{"3", 8, cfg(4000, 0, -5000)},
		{"5", 4, cfg(3000, -2000, 6000, 0, -4500)},
	}, func(s *sim) {
		s.setWriting(true)
		s.chaos(8000, false)
		s.setWriting(false)
		ahead, behind := s.regs[0], s.regs[0]
		for _, g := range s.regs {
			if g.skew > ahead.skew {
				ahead = g
			}
			if g.skew < behind.skew {
				behind = g
			}
		}
		s.healLive()
		ahead.write("SET", "skew:k", "ahead")
		if !s.runUntil(10_000, func() bool {
			return len(ahead.queue) == 0 && behind.rep.Keyspace().Version().Dominates(ahead.rep.Keyspace().Version())
		}) {
			s.fatal(fmt.Errorf("%s did not merge %s's write:\n%s", behind.name, ahead.name, s.describe()))
		}
		stamp := crdt.HLCFromMillis(behind.clock())
		behind.write("SET", "skew:k", "behind")
		s.runUntil(1000, func() bool { return len(behind.queue) == 0 })
		h := s.model.hist["skew:k"]
		if len(h) != 2 || h[1].val != "behind" {
			s.fatal(fmt.Errorf("skew:k writes %v", h))
		}
		if stamp >= h[0].tag.Time {
			s.fatal(fmt.Errorf("%s's clock (%d) is not behind %s's write (%d): the scenario tests nothing", behind.name, stamp, ahead.name, h[0].tag.Time))
		}
		if !tagLess(h[0].tag, h[1].tag) {
			s.fatal(fmt.Errorf("%s's write after merging %v got tag %v: HLC went backwards", behind.name, h[0].tag, h[1].tag))
		}
		s.finish(60_000)
		for _, g := range s.live() {
			if got, _ := replyString(simRead(g, "GET", "skew:k")); got != "behind" {
				s.fatal(fmt.Errorf("%s: GET skew:k = %q, want the causally later write", g.name, got))
			}
			// Offsets measured by acks: within the link delay and Raft
			// delay of the configured skew.
			for _, ob := range g.out {
				if ob == nil {
					continue
				}
				want := ob.peer.skew - g.skew
				if got := ob.snd.Stats().ClockOffsetMs; got < want-60 || got > want+60 {
					s.fatal(fmt.Errorf("%s -> %s: clock offset %d ms, configured %d", g.name, ob.peer.name, got, want))
				}
			}
		}
	}, func(t *testing.T, total simStats, _ simnet.Stats) {
		if total.hlcBumps == 0 {
			t.Errorf("no local write was stamped below the replica's clock: %+v", total)
		}
	})
}

// A run is a function of its seed: two runs of one seed record the same
// events and end in the same state.
func TestSimDeterministic(t *testing.T) {
	run := func(seed uint64) (uint64, string) {
		s := newTestSim(t, "det", seed, simConfig{regions: 3, mode: simnet.Hostile, link: hostileLink, sender: simSender,
			restoreProb: 0.5, limits: crdt.LogLimits{MaxRecords: 60}})
		s.setWriting(true)
		s.chaos(6000, true)
		s.finish(60_000)
		return s.hash, shortDigest(s.regs[0])
	}
	for _, seed := range simSeeds(t, 2) {
		h1, d1 := run(seed)
		h2, d2 := run(seed)
		if h1 != h2 || d1 != d2 {
			t.Fatalf("seed %d: two runs differ (%x/%s vs %x/%s)", seed, h1, d1, h2, d2)
		}
	}
}

// The checkers have teeth: a run with a planted fault must fail them. The
// test fails if a checker passes.
func TestSimCheckersHaveTeeth(t *testing.T) {
	base := simConfig{regions: 3, link: faithfulLink, sender: simSender}
	seeds := simSeeds(t, 4)

	t.Run("log-drops-a-record", func(t *testing.T) {
		// Region 1's senders never read one of its own records: peers see
		// a gap, refuse what follows, and the streams retry forever.
		for _, seed := range seeds {
			cfg := base
			cfg.wrapLog = func(g *simRegion, l Log) Log {
				if g.idx != 0 {
					return l
				}
				return dropRecordLog{Log: l, origin: g.origin, seq: 10}
			}
			s := newTestSim(t, "teeth", seed, cfg)
			s.setWriting(true)
			s.chaos(5000, false)
			qerr := s.quiesce(10_000)
			err := checkConverged(s.regs)
			if err == nil {
				t.Fatalf("%s: convergence checker passed a run whose log drops a record (quiesce: %v)", s.rerun(), qerr)
			}
			if !strings.Contains(err.Error(), "lacks r1's writes 10..") {
				t.Fatalf("%s: checker failed for another reason: %v", s.rerun(), err)
			}
		}
	})

	t.Run("acknowledged-write-lost", func(t *testing.T) {
		// One INCRBY is acknowledged (recorded) but never applied: the
		// regions agree with each other, the model catches it.
		for _, seed := range seeds {
			cfg := base
			cfg.loseAck = true
			s := newTestSim(t, "teeth", seed, cfg)
			s.setWriting(true)
			s.chaos(5000, false)
			if err := s.quiesce(60_000); err != nil {
				s.fatal(err)
			}
			if !s.lostAckDone {
				t.Fatalf("%s: the fault never fired", s.rerun())
			}
			if err := checkConverged(s.regs); err != nil {
				s.fatal(err)
			}
			err := s.model.check(s.live())
			if err == nil {
				t.Fatalf("%s: model checker passed a run that lost an acknowledged INCRBY", s.rerun())
			}
			if !strings.Contains(err.Error(), "want the sum of increments") {
				t.Fatalf("%s: model checker failed for another reason: %v", s.rerun(), err)
			}
		}
	})

	t.Run("converged-run-passes", func(t *testing.T) {
		// The same runs without a fault pass both checkers (so the two
		// failures above come from the faults).
		for _, seed := range seeds {
			s := newTestSim(t, "teeth", seed, base)
			s.setWriting(true)
			s.chaos(5000, false)
			s.finish(60_000)
		}
	})
}

// A receiving region that acknowledges a proposal it never applied is
// repaired by the protocol, not hidden: the ack carries the true version
// vector, the next batch of that origin is refused as a gap, and the
// stream restarts from what the region really holds (or a relay supplies
// it). The run converges.
func TestSimSelfHealsUnappliedProposal(t *testing.T) {
	runSims(t, []simCase{{"3", 6, simConfig{regions: 3, link: faithfulLink, sender: simSender, skipProp: true}}}, func(s *sim) {
		s.setWriting(true)
		s.chaos(8000, false)
		if !s.skipDone {
			s.fatal(fmt.Errorf("the fault never fired"))
		}
		s.finish(60_000)
	}, nil)
}

// dropRecordLog hides the record of origin holding seq from Read.
type dropRecordLog struct {
	Log
	origin crdt.Origin
	seq    uint64
}

func (l dropRecordLog) Read(dst []crdt.LogRecord, pos uint64, maxRecords, maxBytes int) ([]crdt.LogRecord, error) {
	out, err := l.Log.Read(dst, pos, maxRecords, maxBytes)
	kept := out[:len(dst)]
	for _, r := range out[len(dst):] {
		if r.Origin == l.origin && r.FirstSeq <= l.seq && l.seq <= r.LastSeq {
			continue
		}
		kept = append(kept, r)
	}
	return kept, err
}

// A region rejoining seven regions after its peers' logs trimmed gets a
// state transfer from each of its six peers at once. A replica used to
// stage at most four transfers, a new one evicting the oldest: the evicted
// sender restarted and evicted another, and no transfer ever completed.
// With one staging slot per sending region they all complete.
func TestSimManyPeersTransfer(t *testing.T) {
	runSims(t, []simCase{{"7", 2, simConfig{regions: 7, link: simnet.Link{Delay: 20, Jitter: 30}, limits: crdt.LogLimits{MaxRecords: 50},
		sender: SenderConfig{MaxInFlight: 2, BatchRecords: 8, ChunkBytes: 256}, writeGap: [2]int64{100, 300}, keys: 10}}}, func(s *sim) {
		s.setWriting(true)
		s.net.RunFor(2000)
		away := s.regs[len(s.regs)-1]
		away.kill()
		s.net.RunFor(12_000)
		away.revive()
		s.finish(120_000)
	}, func(t *testing.T, total simStats, _ simnet.Stats) {
		if total.joins < 6 {
			t.Errorf("the rejoining region joined only %d transfers: %+v", total.joins, total)
		}
	})
}
