package region

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"

	"concord/crdt"
)

// BenchmarkProposeRegion3 measures SETs through a 3-node in-process region
// (raft-wal with fsync, loopback TCP) from 64 concurrent proposers on the
// leader, one command per unit, as non-pipelined clients would send them.
func BenchmarkProposeRegion3(b *testing.B) {
	r := newTestRegion(b, 3)
	l := r.nodes[r.leader()]
	var next atomic.Int64
	b.ResetTimer()
	var wg sync.WaitGroup
	for w := 0; w < 64; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := next.Add(1)
				if i > int64(b.N) {
					return
				}
				c := crdt.Command{Args: [][]byte{[]byte("SET"), []byte(fmt.Sprint("k", i%100000)), []byte("xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx")}}
				if _, err := l.Propose(context.Background(), []crdt.Command{c}); err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
}
