package crdt

import (
	"encoding/binary"
	"testing"
)

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

// stagingSource is a small keyspace snapshot to transfer.
func stagingSource(t *testing.T) []byte {
	t.Helper()
	src := NewKeyspace(Origin{Region: 9, Incarnation: 1}, Options{})
	src.Apply(Stamp{Time: HLCFromMillis(testEpochMs)}, []Command{{Args: [][]byte{[]byte("SET"), []byte("k"), []byte("v")}}})
	return src.Snapshot()
}

func mustStage(t *testing.T, r *Replica, c Chunk) (uint64, bool) {
	t.Helper()
	n, joined, err := r.StageChunk(c)
	if err != nil {
		t.Fatalf("chunk %+v: %v", c, err)
	}
	return n, joined
}

// TestStagingOneSlotPerSender: transfers from different senders never
// evict each other, however many run at once (seven regions rejoining used
// to livelock, each new transfer evicting the oldest of four); a sender's
// new transfer replaces its old one.
func TestStagingOneSlotPerSender(t *testing.T) {
	snap := stagingSource(t)
	r := NewReplica(NewKeyspace(Origin{Region: 1, Incarnation: 1}, Options{}), LogLimits{})
	const senders = 2 * MaxStagedTransfers
	for from := uint32(2); from < 2+senders; from++ {
		mustStage(t, r, Chunk{From: from, ID: uint64(from) * 100, Data: snap[:1]})
	}
	// A sender restarts under a new id: its old transfer goes, nobody
	// else's does.
	mustStage(t, r, Chunk{From: 2, ID: 201, Data: snap[:1]})
	if _, ok := r.Staged(2, 200); ok {
		t.Fatal("the sender's superseded transfer is still staged")
	}
	if n := r.StagedTransfers(); n != senders {
		t.Fatalf("%d transfers staged, want %d", n, senders)
	}
	// The same id from another sender is another transfer.
	if _, _, err := r.StageChunk(Chunk{From: 3, ID: 201, Offset: 1, Data: snap[1:]}); err == nil {
		t.Fatal("a chunk continued another sender's transfer")
	}
	for from := uint32(2); from < 2+senders; from++ {
		id := uint64(from) * 100
		if from == 2 {
			id = 201
		}
		if _, joined := mustStage(t, r, Chunk{From: from, ID: id, Offset: 1, Data: snap[1:], Final: true}); !joined {
			t.Fatalf("transfer from %d not joined", from)
		}
	}
	if r.Stats.Transfers != senders || r.StagedTransfers() != 0 {
		t.Fatalf("stats %+v, %d still staged", r.Stats, r.StagedTransfers())
	}
}

// TestStagingBounded: the slots are bounded even when senders come and go
// (a removed region's abandoned transfer): a sender beyond
// MaxStagingSenders evicts the slot that advanced least recently.
func TestStagingBounded(t *testing.T) {
	snap := stagingSource(t)
	r := NewReplica(NewKeyspace(Origin{Region: 1, Incarnation: 1}, Options{}), LogLimits{})
	for from := uint32(2); from < 2+MaxStagingSenders; from++ {
		mustStage(t, r, Chunk{From: from, ID: 1, Data: snap[:1]})
	}
	mustStage(t, r, Chunk{From: 2, ID: 1, Offset: 1, Data: snap[1:2]}) // 2 advances: 3 is now the stalest
	mustStage(t, r, Chunk{From: 1000, ID: 1, Data: snap[:1]})
	if n := r.StagedTransfers(); n != MaxStagingSenders {
		t.Fatalf("%d transfers staged, want %d", n, MaxStagingSenders)
	}
	if _, ok := r.Staged(3, 1); ok {
		t.Fatal("the least recently advanced transfer was not the one evicted")
	}
	if _, ok := r.Staged(2, 1); !ok {
		t.Fatal("a live transfer was evicted")
	}
}

// TestStagingLegacyChunks: chunks that do not name their sender (entries
// written before chunks did) stage under the earlier rule, so replaying
// an old log gives the state it always gave: at most MaxStagedTransfers,
// a new one evicting the oldest, by id. They share no slot with named ones.
func TestStagingLegacyChunks(t *testing.T) {
	snap := stagingSource(t)
	r := NewReplica(NewKeyspace(Origin{Region: 1, Incarnation: 1}, Options{}), LogLimits{})
	mustStage(t, r, Chunk{From: 5, ID: 1, Data: snap[:1]})
	for id := uint64(1); id <= MaxStagedTransfers+1; id++ {
		mustStage(t, r, Chunk{ID: id, Data: snap[:1]})
	}
	if _, ok := r.Staged(0, 1); ok {
		t.Fatal("the oldest legacy transfer was not evicted")
	}
	if _, ok := r.Staged(5, 1); !ok {
		t.Fatal("a legacy transfer evicted a named one")
	}
	if n := r.StagedTransfers(); n != MaxStagedTransfers+1 {
		t.Fatalf("%d staged", n)
	}
	if _, joined := mustStage(t, r, Chunk{ID: 2, Offset: 1, Data: snap[1:], Final: true}); !joined {
		t.Fatal("legacy transfer not joined")
	}
}

// TestStagingSnapshotFormats: staged transfers survive a replica snapshot
// with their senders (format 3); with only legacy ones staged the snapshot
// stays format 2, which the previous version reads.
func TestStagingSnapshotFormats(t *testing.T) {
	snap := stagingSource(t)
	roundTrip := func(r *Replica) (*Replica, byte) {
		t.Helper()
		var buf []byte
		for _, p := range r.Snapshot() {
			buf = append(buf, p...)
		}
		back, err := RestoreReplica(buf, LogLimits{})
		if err != nil {
			t.Fatal(err)
		}
		_, k := binary.Uvarint(buf)
		return back, buf[k]
	}
	r := NewReplica(NewKeyspace(Origin{Region: 1, Incarnation: 1}, Options{}), LogLimits{})
	mustStage(t, r, Chunk{ID: 7, Data: snap[:1]})
	back, v := roundTrip(r)
	if v != replicaFormatV2 {
		t.Fatalf("legacy staging written as format %d", v)
	}
	if n, ok := back.Staged(0, 7); !ok || n != 1 {
		t.Fatalf("legacy staging after restore: %d %v", n, ok)
	}
	mustStage(t, r, Chunk{From: 4, ID: 8, Data: snap[:2]})
	mustStage(t, r, Chunk{From: 6, ID: 8, Data: snap[:3]})
	back, v = roundTrip(r)
	if v != replicaFormat {
		t.Fatalf("named staging written as format %d", v)
	}
	for _, c := range []struct {
		from uint32
		id   uint64
		n    uint64
	}{{0, 7, 1}, {4, 8, 2}, {6, 8, 3}} {
		if n, ok := back.Staged(c.from, c.id); !ok || n != c.n {
			t.Fatalf("staging %d/%d after restore: %d %v", c.from, c.id, n, ok)
		}
	}
	if _, joined := mustStage(t, back, Chunk{From: 4, ID: 8, Offset: 2, Data: snap[2:], Final: true}); !joined {
		t.Fatal("restored transfer did not go on")
	}
}
