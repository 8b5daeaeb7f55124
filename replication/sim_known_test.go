package replication

// Reproductions of known bugs found by the simulations, outside this
// package's code. They are skipped unless SIMKNOWN=1, so the suite stays
// green until they are fixed; run them to see the failure:
//
//	SIMKNOWN=1 go test ./replication -run Known -v

import (
	"os"
	"testing"

	"concord/crdt"
	"concord/replication/simnet"
)

func skipKnown(t *testing.T) {
	if os.Getenv("SIMKNOWN") == "" {
		t.Skip("known bug; SIMKNOWN=1 to run")
	}
}

// crdt: ZINCRBY whose result equals the current score (an increment of 0,
// or one lost to float absorption) is emitted as EffZAdd of the current
// score, an overwrite that cancels the increments it observed. Two such
// concurrent writes make the losing one cancel increments the winner never
// saw: the score is no longer the sum of the increments (found by
// TestSimConcurrentWrites/5-hostile, seed 5093). INCRBY, HINCRBY and
// INCRBYFLOAT by 0 stay increments. Fix (crdt/cmd_zset.go, the ns == cur
// case of zaddGeneric): with INCR, emit EffZIncr even when the score does
// not change; EffZIncr creates the member, so a concurrent ZREM still loses.
func TestKnownZIncrByZeroIsAnOverwrite(t *testing.T) {
	skipKnown(t)
	g := newRig(t, SenderConfig{}, crdt.LogLimits{})
	a, b := g.src, g.dst
	sync := func(from, to *crdt.Replica) {
		l := from.Log()
		recs, _ := l.Read(nil, l.First(), 1<<30, 1<<30)
		for _, r := range recs {
			to.Merge(r.Data)
		}
	}
	g.write(a, "ZINCRBY", "z", "5", "m")
	sync(a, b)
	g.write(b, "ZINCRBY", "z", "3", "m") // a does not see it
	g.write(b, "ZINCRBY", "z", "0", "m")
	g.write(a, "ZINCRBY", "z", "0", "m") // stamped after b's
	sync(a, b)
	sync(b, a)
	for _, rep := range []*crdt.Replica{a, b} {
		if r := rep.Keyspace().Read(0, simEpoch, 0, simArgs("ZSCORE", "z", "m")); r.Float != 8 {
			t.Errorf("region %d: ZSCORE = %v, want 5+3+0+0 = 8", rep.Keyspace().Origin().Region, r.Float)
		}
	}
}

// replication/crdt: a region rejoining seven regions after its peers'
// logs trimmed gets a state transfer from each of its six peers at once,
// but a replica stages at most crdt.MaxStagedTransfers (4) and a new
// transfer evicts the oldest staged one. The evicted sender's next chunk
// is refused (out of order), it restarts under a new id and evicts
// another: no transfer ever completes, even with writes stopped. (Five
// regions are fine; six usually recover after a few evictions.) Fix: one
// staging slot per sending region (the chunk must name its sender), or
// refuse a new transfer while the slots hold live ones.
func TestKnownManyPeersTransferLivelock(t *testing.T) {
	skipKnown(t)
	runSims(t, []simCase{{"7", 2, simConfig{regions: 7, link: simnet.Link{Delay: 20, Jitter: 30}, limits: crdt.LogLimits{MaxRecords: 50},
		sender: SenderConfig{MaxInFlight: 2, BatchRecords: 8, ChunkBytes: 256}, writeGap: [2]int64{100, 300}, keys: 10}}}, func(s *sim) {
		s.setWriting(true)
		s.net.RunFor(2000)
		away := s.regs[len(s.regs)-1]
		away.kill()
		s.net.RunFor(12_000)
		away.revive()
		s.finish(120_000)
	}, nil)
}
