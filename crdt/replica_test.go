package crdt

import (
	"bytes"
	"errors"
	"testing"
)

// replicaRig is a few non-solo replicas of different regions with their
// own test clocks.
type replicaRig struct {
	reps []*Replica
	clk  []*testClock
}

func newReplicaRig(n int, limits LogLimits) *replicaRig {
	g := &replicaRig{}
	for i := 0; i < n; i++ {
		ks := NewKeyspace(Origin{Region: uint32(i + 1), Incarnation: 1}, Options{})
		g.reps = append(g.reps, NewReplica(ks, limits))
		g.clk = append(g.clk, &testClock{ms: testEpochMs})
	}
	return g
}

func (g *replicaRig) write(i int, args ...string) Reply {
	a := make([][]byte, len(args))
	for j, s := range args {
		a[j] = []byte(s)
	}
	return g.reps[i].Apply(g.clk[i].stamp(), []Command{{DB: 0, Args: a}})[0]
}

// ship merges every record of from's log into to, in log order.
func (g *replicaRig) ship(t testing.TB, from, to int) {
	t.Helper()
	l := g.reps[from].Log()
	recs, err := l.Read(nil, l.First(), 1<<30, 1<<30)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range recs {
		if r.Origin == g.reps[to].Keyspace().Origin() {
			continue
		}
		if out, err := g.reps[to].Merge(r.Data); out == Rejected {
			t.Fatalf("merge of %s:%d into %d: %v", r.Origin, r.FirstSeq, to, err)
		}
	}
}

func TestReplicaLogsOwnAndMergedBatchesOnce(t *testing.T) {
	g := newReplicaRig(2, LogLimits{})
	g.write(0, "SET", "a", "1")
	g.write(0, "INCRBY", "n", "5")
	g.write(0, "GET", "a") // a read through Apply produces no batch
	if n := g.reps[0].Log().Len(); n != 2 {
		t.Fatalf("log holds %d records after 2 writes", n)
	}
	g.ship(t, 0, 1)
	g.ship(t, 0, 1) // duplicates change nothing
	if n := g.reps[1].Log().Len(); n != 2 {
		t.Fatalf("receiver logged %d records, want the 2 merged once", n)
	}
	if s := g.reps[1].Stats; s.Merged != 2 || s.Duplicates != 2 {
		t.Fatalf("stats %+v", s)
	}
	// The relayed record is byte-identical to the origin's.
	a, _ := g.reps[0].Log().Record(1)
	b, _ := g.reps[1].Log().Record(1)
	if !bytes.Equal(a.Data, b.Data) || a.Origin != b.Origin || a.FirstSeq != b.FirstSeq {
		t.Fatalf("relayed record differs: %+v vs %+v", a, b)
	}
}

func TestReplicaRejectsGapsAndOwnBatches(t *testing.T) {
	g := newReplicaRig(2, LogLimits{})
	g.write(0, "SET", "a", "1")
	g.write(0, "SET", "a", "2")
	second, _ := g.reps[0].Log().Record(2)
	if out, err := g.reps[1].Merge(second.Data); out != Rejected || !errors.Is(err, ErrGap) {
		t.Fatalf("batch 2 before 1: %v %v", out, err)
	}
	if out, err := g.reps[1].Merge([]byte{1, 2, 3}); out != Rejected || err == nil {
		t.Fatalf("garbage: %v %v", out, err)
	}
	// A region that sees its own writes beyond what it holds has lost
	// state under its incarnation: refused and counted.
	ks := NewKeyspace(Origin{Region: 1, Incarnation: 1}, Options{})
	amnesiac := NewReplica(ks, LogLimits{})
	first, _ := g.reps[0].Log().Record(1)
	if out, _ := amnesiac.Merge(first.Data); out != Rejected || amnesiac.Stats.OwnAhead != 1 {
		t.Fatalf("own batch ahead: %v, stats %+v", out, amnesiac.Stats)
	}
	if g.reps[1].Log().Len() != 0 {
		t.Fatal("a rejected batch was logged")
	}
}

func TestEffectLogStart(t *testing.T) {
	g := newReplicaRig(3, LogLimits{})
	for i := 0; i < 3; i++ {
		g.write(0, "INCR", "a")
		g.write(1, "INCR", "b")
	}
	g.ship(t, 1, 0) // region 1 now logs 0's three and 1's three
	l, have := g.reps[0].Log(), g.reps[0].Keyspace().Version()
	o1, o2 := Origin{1, 1}, Origin{2, 1}
	cases := []struct {
		name string
		peer VersionVector
		pos  uint64
		ok   bool
	}{
		{"empty peer starts at the first record", nil, 1, true},
		{"peer holding all", have, l.Next(), true},
		{"peer lacking the last own write", VersionVector{{o1, 2}, {o2, 3}}, 3, true},
		{"peer lacking merged writes", VersionVector{{o1, 3}, {o2, 1}}, 5, true},
		{"peer ahead on an origin", VersionVector{{o1, 9}, {o2, 3}}, l.Next(), true},
	}
	for _, c := range cases {
		pos, ok := l.Start(c.peer, have)
		if pos != c.pos || ok != c.ok {
			t.Errorf("%s: Start = %d, %v; want %d, %v", c.name, pos, ok, c.pos, c.ok)
		}
	}

	// Trimming: a small log cannot serve a peer behind its first record.
	l.SetLimits(LogLimits{MaxRecords: 2})
	g.write(0, "INCR", "a") // appends and trims to 2 records
	have = g.reps[0].Keyspace().Version()
	if l.Len() != 2 || l.First() != 6 {
		t.Fatalf("after trim: len %d first %d", l.Len(), l.First())
	}
	if _, ok := l.Start(nil, have); ok {
		t.Fatal("Start served an empty peer from a trimmed log")
	}
	if pos, ok := l.Start(VersionVector{{o1, 3}, {o2, 3}}, have); !ok || pos != 7 {
		t.Fatalf("peer missing only kept records: %d %v", pos, ok)
	}
	if _, err := l.Read(nil, 1, 10, 1<<20); !errors.Is(err, ErrTrimmed) {
		t.Fatalf("Read of a trimmed position: %v", err)
	}
}

func TestReplicaStateTransfer(t *testing.T) {
	g := newReplicaRig(3, LogLimits{})
	g.write(0, "SET", "k", "v")
	g.write(0, "SADD", "s", "x", "y")
	g.write(2, "INCRBY", "n", "7")
	g.ship(t, 2, 0)
	snap := g.reps[0].Keyspace().Snapshot()
	rcv := g.reps[1]
	g.write(1, "SADD", "s", "z") // concurrent with the transfer
	const id = 0xabc
	chunks := [][]byte{snap[:len(snap)/3], snap[len(snap)/3 : 2*len(snap)/3], snap[2*len(snap)/3:]}
	off := uint64(0)
	for i, c := range chunks {
		final := i == len(chunks)-1
		if i == 1 {
			// Out of order: refused, staging kept.
			if _, _, err := rcv.StageChunk(Chunk{ID: id, Offset: off + 1, Data: c}); !errors.Is(err, ErrChunkOrder) {
				t.Fatalf("out-of-order chunk: %v", err)
			}
		}
		staged, joined, err := rcv.StageChunk(Chunk{ID: id, Offset: off, Data: c, Final: final})
		if err != nil {
			t.Fatal(err)
		}
		off += uint64(len(c))
		if final != joined || !final && staged != off {
			t.Fatalf("chunk %d: staged %d joined %v", i, staged, joined)
		}
		if !final && rcv.Keyspace().DBSize(0) != 1 {
			t.Fatal("staged state became visible before the final chunk")
		}
	}
	if got := rcv.Keyspace().Version(); !got.Dominates(g.reps[0].Keyspace().Version()) {
		t.Fatalf("after join vv %v does not cover %v", got, g.reps[0].Keyspace().Version())
	}
	if n := rcv.Keyspace().DBSize(0); n != 3 {
		t.Fatalf("after join %d keys, want 3", n)
	}
	// The log knows it does not hold what the join brought.
	if _, ok := rcv.Log().Start(nil, rcv.Keyspace().Version()); ok {
		t.Fatal("Start claims to serve joined state from the log")
	}
	// The receiver's own write is still servable to a peer that has the rest.
	peer := g.reps[0].Keyspace().Version()
	if pos, ok := rcv.Log().Start(peer, rcv.Keyspace().Version()); !ok || pos != 1 {
		t.Fatalf("Start for a peer lacking only the local write: %d %v", pos, ok)
	}
}

func TestReplicaSnapshotRoundTrip(t *testing.T) {
	g := newReplicaRig(2, LogLimits{})
	for i := 0; i < 5; i++ {
		g.write(0, "INCR", "a")
		g.write(1, "SADD", "s", string(rune('a'+i)))
	}
	g.ship(t, 1, 0)
	r := g.reps[0]
	r.Log().SetLimits(LogLimits{MaxRecords: 3})
	g.write(0, "INCR", "a") // trims to the newest 3
	r.StageChunk(Chunk{ID: 7, Data: []byte("partial")})
	var buf []byte
	for _, p := range r.Snapshot() {
		buf = append(buf, p...)
	}
	back, err := RestoreReplica(buf, LogLimits{MaxRecords: 3})
	if err != nil {
		t.Fatal(err)
	}
	if back.Keyspace().Digest() != r.Keyspace().Digest() {
		t.Fatal("keyspace digest changed")
	}
	if n, ok := back.Staged(0, 7); !ok || n != 7 {
		t.Fatalf("staged transfer lost: %d %v", n, ok)
	}
	a, _ := r.Log().Read(nil, r.Log().First(), 100, 1<<20)
	b, _ := back.Log().Read(nil, back.Log().First(), 100, 1<<20)
	if len(a) != len(b) || len(a) != 3 {
		t.Fatalf("log lengths %d %d", len(a), len(b))
	}
	for i := range a {
		if a[i].Pos != b[i].Pos || !bytes.Equal(a[i].Data, b[i].Data) || a[i].Time != b[i].Time {
			t.Fatalf("record %d differs", i)
		}
	}
	have := r.Keyspace().Version()
	for _, peer := range []VersionVector{nil, have, {{Origin{1, 1}, 4}, {Origin{2, 1}, 5}}} {
		p1, ok1 := r.Log().Start(peer, have)
		p2, ok2 := back.Log().Start(peer, have)
		if p1 != p2 || ok1 != ok2 {
			t.Fatalf("Start(%v) differs after restore: %d %v vs %d %v", peer, p1, ok1, p2, ok2)
		}
	}
	// Truncations and bit flips never panic.
	for i := 0; i < len(buf); i += 7 {
		RestoreReplica(buf[:i], LogLimits{})
		flipped := append([]byte(nil), buf...)
		flipped[i] ^= 0x55
		RestoreReplica(flipped, LogLimits{})
	}
}

func FuzzRestoreReplica(f *testing.F) {
	g := newReplicaRig(2, LogLimits{})
	g.write(0, "SET", "a", "1")
	g.write(1, "HSET", "h", "f", "v")
	g.write(1, "INCRBY", "n", "3")
	g.reps[1].StageChunk(Chunk{ID: 9, Data: []byte{1, 2, 3}})
	g.reps[0].StageChunk(Chunk{From: 2, ID: 9, Data: []byte{4, 5}})
	for i := 0; i < 2; i++ {
		g.ship(f, 1-i, i)
		var buf []byte
		for _, p := range g.reps[i].Snapshot() {
			buf = append(buf, p...)
		}
		f.Add(buf)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := RestoreReplica(data, LogLimits{})
		if err != nil {
			return
		}
		// Whatever was accepted re-encodes to a state that restores the same.
		var buf []byte
		for _, p := range r.Snapshot() {
			buf = append(buf, p...)
		}
		back, err := RestoreReplica(buf, LogLimits{})
		if err != nil {
			t.Fatalf("re-encoded replica does not restore: %v", err)
		}
		if back.Keyspace().Digest() != r.Keyspace().Digest() || back.Log().Next() != r.Log().Next() {
			t.Fatal("round trip changed the replica")
		}
		have := r.Keyspace().Version()
		r.Log().Start(nil, have)
		r.Log().Read(nil, r.Log().First(), 10, 1<<20)
	})
}
