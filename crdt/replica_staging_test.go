package crdt

import "testing"

// TestDroppedStagingIsNotRetained: a transfer dropped, superseded or
// joined leaves no reference to its data in the staging list's backing
// array (it can be as large as a whole keyspace snapshot).
func TestDroppedStagingIsNotRetained(t *testing.T) {
	src := NewKeyspace(Origin{Region: 9, Incarnation: 1}, Options{})
	src.Apply(Stamp{Time: HLCFromMillis(testEpochMs)}, []Command{{Args: [][]byte{[]byte("SET"), []byte("k"), []byte("v")}}})
	snap := src.Snapshot()
	r := NewReplica(NewKeyspace(Origin{Region: 1, Incarnation: 1}, Options{}), LogLimits{})
	for id := uint64(1); id <= MaxStagedTransfers+1; id++ { // the last one drops the oldest
		if _, _, err := r.StageChunk(Chunk{ID: id, Data: snap[:1]}); err != nil {
			t.Fatal(err)
		}
	}
	if _, _, err := r.StageChunk(Chunk{ID: MaxStagedTransfers + 1, Offset: 1, Data: snap[1:], Final: true}); err != nil {
		t.Fatal(err)
	}
	live := map[*staging]bool{}
	for _, s := range r.staged {
		live[s] = true
	}
	full := r.staged[:cap(r.staged)]
	for i, s := range full {
		if s != nil && !live[s] {
			t.Fatalf("slot %d of the staging array still holds transfer %d", i, s.id)
		}
	}
	if len(r.staged) != MaxStagedTransfers-1 {
		t.Fatalf("%d transfers staged, want %d", len(r.staged), MaxStagedTransfers-1)
	}
}
