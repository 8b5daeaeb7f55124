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
