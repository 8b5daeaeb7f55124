package region

import (
	"fmt"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"concord/crdt"
)

// BenchmarkSnapshotPause measures how long apply is held while a snapshot
// of a 1,000,000-key keyspace is captured (fsm.Snapshot encodes it in
// memory; Persist then writes it without holding apply).
func BenchmarkSnapshotPause(b *testing.B) {
	const keys = 1_000_000
	ks := crdt.NewKeyspace(crdt.Origin{Region: 1, Incarnation: 1}, crdt.Options{Solo: true})
	val := make([]byte, 64)
	for i := 0; i < keys; i += 1000 {
		cmds := make([]crdt.Command, 0, 1000)
		for j := i; j < i+1000; j++ {
			cmds = append(cmds, crdt.Command{Args: [][]byte{[]byte("SET"), []byte(fmt.Sprintf("key:%08d", j)), val}})
		}
		ks.Apply(crdt.Stamp{Time: crdt.HLC(uint64(i+1) << 16)}, cmds)
	}
	f := newFSM(ks, crdt.LogLimits{}, newRegistry(), nil)
	f.ApplyBatch([]*raft.Log{{Index: 1, Type: raft.LogNoop}})
	b.ResetTimer()
	var size int
	for i := 0; i < b.N; i++ {
		start := time.Now()
		s, err := f.Snapshot()
		if err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(float64(time.Since(start).Milliseconds()), "pause-ms")
		size = s.(*fsmSnapshot).size()
	}
	b.ReportMetric(float64(size)/(1<<20), "MB")
}
