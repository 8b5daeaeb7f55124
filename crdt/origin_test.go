package crdt

import (
	"encoding/binary"
	"errors"
	"testing"
)

// A keyspace moved to a fresh origin numbers that origin's dots from 1; its
// earlier origin's ops become those of another origin, which later batches
// depend on, and an origin it holds ops of cannot be taken again.
func TestSetOriginStartsFreshDots(t *testing.T) {
	ks, clk := newTestKS(t)
	ks.SetSolo(false)
	first := Origin{Region: 1, Incarnation: 5}
	if err := ks.SetOrigin(first); err != nil {
		t.Fatal(err)
	}
	_, b := ks.Apply(clk.stamp(), []Command{{Args: [][]byte{[]byte("SET"), []byte("a"), []byte("1")}}})
	if b.Origin != first || b.FirstSeq != 1 {
		t.Fatalf("first batch %s:%d", b.Origin, b.FirstSeq)
	}
	if err := ks.SetOrigin(first); err != nil {
		t.Fatalf("setting the current origin again: %v", err)
	}
	second := Origin{Region: 1, Incarnation: 6}
	if err := ks.SetOrigin(second); err != nil {
		t.Fatal(err)
	}
	_, b = ks.Apply(clk.stamp(), []Command{{Args: [][]byte{[]byte("SET"), []byte("a"), []byte("2")}}})
	if b.Origin != second || b.FirstSeq != 1 || b.Deps.Get(first) != 1 {
		t.Fatalf("batch after the move: %s:%d deps %v", b.Origin, b.FirstSeq, b.Deps)
	}
	if err := ks.SetOrigin(first); !errors.Is(err, ErrOriginUsed) {
		t.Fatalf("moving back to an origin with ops: %v", err)
	}
	if ks.Origin() != second {
		t.Fatalf("a refused SetOrigin changed the origin to %s", ks.Origin())
	}
}

// A region that restarts from empty state under a new incarnation: a peer
// holding the old incarnation's batches merges the new ones as new writes
// (not duplicates), and the restarted region merges its old incarnation's
// batches back as another origin's.
func TestNewIncarnationIsNotMistakenForTheOld(t *testing.T) {
	g := newReplicaRig(2, LogLimits{})
	if err := g.reps[0].FixOrigin(Origin{Region: 1, Incarnation: 10}); err != nil {
		t.Fatal(err)
	}
	g.write(0, "SET", "a", "old")
	g.write(0, "SET", "b", "old")
	g.ship(t, 0, 1)
	oldLog := g.reps[0].Log()
	oldRecs, _ := oldLog.Read(nil, oldLog.First(), 100, 1<<20)

	// Region 1 loses everything and starts over.
	g.reps[0] = NewReplica(NewKeyspace(Origin{Region: 1, Incarnation: 1}, Options{}), LogLimits{})
	if g.reps[0].OriginFixed() {
		t.Fatal("a new replica has its origin fixed")
	}
	if err := g.reps[0].FixOrigin(Origin{Region: 1, Incarnation: 11}); err != nil {
		t.Fatal(err)
	}
	g.write(0, "SET", "c", "new")
	l := g.reps[0].Log()
	recs, _ := l.Read(nil, l.First(), 100, 1<<20)
	if len(recs) != 1 || recs[0].Origin != (Origin{1, 11}) || recs[0].FirstSeq != 1 {
		t.Fatalf("new region's log: %+v", recs)
	}
	if out, err := g.reps[1].Merge(recs[0].Data); out != Merged {
		t.Fatalf("peer took the new incarnation's first write as %v (%v)", out, err)
	}
	for _, r := range oldRecs {
		if out, err := g.reps[0].Merge(r.Data); out != Merged {
			t.Fatalf("old incarnation's batch %s:%d merged back as %v (%v)", r.Origin, r.FirstSeq, out, err)
		}
	}
	if g.reps[0].Keyspace().Digest() != g.reps[1].Keyspace().Digest() {
		t.Fatal("regions did not converge")
	}
	// The old incarnation is held now: it cannot be taken again.
	if err := g.reps[0].FixOrigin(Origin{Region: 1, Incarnation: 10}); !errors.Is(err, ErrOriginUsed) {
		t.Fatalf("FixOrigin to a used origin: %v", err)
	}
}

func snapshotBytes(r *Replica) []byte {
	var buf []byte
	for _, p := range r.Snapshot() {
		buf = append(buf, p...)
	}
	return buf
}

// toFormat1 rewrites a format-2 replica snapshot as the format-1 one the
// previous version wrote: no flags byte.
func toFormat1(t *testing.T, buf []byte) []byte {
	t.Helper()
	n, k := binary.Uvarint(buf)
	hdr, rest := buf[k:k+int(n)], buf[k+int(n):]
	if hdr[0] != replicaFormatV2 {
		t.Fatalf("header format %d", hdr[0])
	}
	v1 := append([]byte{replicaFormatV1}, hdr[2:]...)
	out := binary.AppendUvarint(nil, uint64(len(v1)))
	out = append(out, v1...)
	return append(out, rest...)
}

// The fixed flag survives a snapshot; a format-1 snapshot counts as fixed
// exactly when its keyspace applied ops of its own origin.
func TestOriginFixedInSnapshot(t *testing.T) {
	g := newReplicaRig(2, LogLimits{})
	g.write(1, "SET", "x", "1")
	g.ship(t, 1, 0) // replica 0 holds another origin's ops only
	for _, fixed := range []bool{false, true} {
		r := g.reps[0]
		if fixed {
			if err := r.FixOrigin(Origin{Region: 1, Incarnation: 3}); err != nil {
				t.Fatal(err)
			}
		}
		back, err := RestoreReplica(snapshotBytes(r), LogLimits{})
		if err != nil {
			t.Fatal(err)
		}
		if back.OriginFixed() != fixed || back.Keyspace().Origin() != r.Keyspace().Origin() {
			t.Fatalf("restored fixed=%v origin %s, want %v %s", back.OriginFixed(), back.Keyspace().Origin(), fixed, r.Keyspace().Origin())
		}
	}

	// Format 1: replica 0 has written nothing of its own, replica 1 has.
	for i, want := range []bool{false, true} {
		old, err := RestoreReplica(toFormat1(t, snapshotBytes(g.reps[i])), LogLimits{})
		if err != nil {
			t.Fatalf("format 1: %v", err)
		}
		if old.OriginFixed() != want {
			t.Fatalf("format-1 state of replica %d: fixed=%v, want %v", i, old.OriginFixed(), want)
		}
		if old.Keyspace().Digest() != g.reps[i].Keyspace().Digest() {
			t.Fatal("format-1 state changed")
		}
	}

	// Unknown flags are refused.
	buf := snapshotBytes(g.reps[0])
	_, k := binary.Uvarint(buf)
	buf[k+1] |= 0x80
	if _, err := RestoreReplica(buf, LogLimits{}); err == nil {
		t.Fatal("unknown replica flags accepted")
	}
}
