package crdt

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"flag"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
)

// Fuzz targets for everything that decodes bytes from another node: batches
// (replication and the Raft log) and snapshots (state transfer). Seed
// corpora live in testdata/fuzz/<FuzzName>/; `go test -run
// TestWriteFuzzCorpus -props.writecorpus` regenerates the valid seeds from
// seedBatches and seedSnapshots.

var writeCorpus = flag.Bool("props.writecorpus", false, "write the generated fuzz seeds under testdata/fuzz")

// seedBatches returns valid batches covering every effect kind and flag.
func seedBatches() []*Batch {
	o2 := Origin{Region: 2, Incarnation: 1}
	o3 := Origin{Region: 3, Incarnation: 7}
	t0 := HLCFromMillis(testEpochMs)
	k := []byte("k")
	all := []Effect{
		{Kind: EffDelKey, Key: k},
		{Kind: EffDelKey, Flags: FlagKeepTTL, Key: k},
		{Kind: EffStrSet, Key: k, Value: []byte("v")},
		{Kind: EffStrIncr, Key: []byte("n"), Int: -3},
		{Kind: EffStrIncr, Flags: FlagFloat, Key: []byte("f"), Value: []byte("1.5")},
		{Kind: EffExpire, Key: k, Int: testEpochMs + 1000},
		{Kind: EffExpire, Key: k},
		{Kind: EffHashSet, Key: []byte("h"), Field: []byte("f"), Value: []byte("1")},
		{Kind: EffHashIncr, Key: []byte("h"), Field: []byte("f"), Int: 5},
		{Kind: EffHashIncr, Flags: FlagFloat, Key: []byte("h"), Field: []byte("g"), Value: []byte("0.25")},
		{Kind: EffHashDel, Key: []byte("h"), Field: []byte("f")},
		{Kind: EffSetAdd, Key: []byte("s"), Field: []byte("m")},
		{Kind: EffSetRem, Key: []byte("s"), Field: []byte("m")},
		{Kind: EffZAdd, Key: []byte("z"), Field: []byte("m"), Float: 2.5},
		{Kind: EffZIncr, Key: []byte("z"), Field: []byte("m"), Float: -1},
		{Kind: EffZRem, Key: []byte("z"), Field: []byte("m")},
		{Kind: EffFlushDB, DB: 3},
		{Kind: EffFlushAll},
		listInsertEffect([]byte("l"), nil, -listStep, -1, [][]byte{[]byte("a"), []byte("b")}),
		listInsertEffect([]byte("l"), []lcomp{{n: 5, dot: Dot{o2, 1}, sub: -1}}, 0, 1, [][]byte{[]byte("c")}),
		{Kind: EffListRem, Key: []byte("l"), Value: encodeListPositions([]*lnode{{pos: lpos{head: lcomp{n: 5, dot: Dot{o2, 1}}}}})},
		{Kind: EffListPop, Key: []byte("l"), Value: encodeListPositions([]*lnode{{pos: lpos{head: lcomp{n: 5, dot: Dot{o2, 1}},
			rest: &[]lcomp{{n: -2, dot: Dot{o3, 9}, sub: 3}}}}})},
		{Kind: EffListSet, Key: []byte("l"), Field: encodeListPositions([]*lnode{{pos: lpos{head: lcomp{n: 0, dot: Dot{o2, 2}}}}})[1:], Value: []byte("v")},
		{Kind: EffXAdd, Key: []byte("x"), Field: streamID{5, 1}.bytes(), Value: encodeStreamFields([]string{"f", "v"})},
		{Kind: EffXMeta, Key: []byte("x"), Value: encodeStreamMeta(streamMeta{Added: 1, Last: streamID{5, 1}})},
		{Kind: EffXDel, Key: []byte("x"), Field: streamID{5, 1}.bytes()},
		{Kind: EffXTrim, Key: []byte("x"), Field: streamID{9, 0}.bytes()},
		{Kind: EffXMeta, Key: []byte("x"), Value: encodeStreamMeta(streamMeta{Last: streamID{2, 0}}), Int: 1},
		{Kind: EffHLLAdd, Key: []byte("p"), Value: []byte{7, 0, 3, 0xff, 0x3f, 40}, Int: hllFlagInvalidate},
		{Kind: EffHLLAdd, Key: []byte("p"), Int: hllFlagCount | hllFlagDense},
		{Kind: EffHLLSet, Key: []byte("p"), Value: []byte(hllCorrupt)},
		{Kind: EffDelKey, Flags: FlagHLLDel, Key: []byte("p")},
	}
	var out []*Batch
	for i, e := range all {
		out = append(out, &Batch{Origin: o2, FirstSeq: uint64(i + 1), Ops: []Op{{Time: t0 + HLC(i), Effects: []Effect{e}}}})
	}
	out = append(out,
		&Batch{Origin: o3, FirstSeq: 1, Deps: VersionVector{{o2, 4}}, Ops: []Op{
			{Time: t0, Effects: all[:6]},
			{Time: t0 + 1, Effects: all[6:12]},
			{Time: t0 + 1<<16, Effects: all[12:]},
		}},
		&Batch{Origin: o2, FirstSeq: 1, Ops: []Op{{Time: t0, Effects: []Effect{
			{Kind: EffZAdd, DB: 15, Key: []byte("z"), Field: []byte{0, 255}, Float: math.Inf(-1)},
			{Kind: EffStrSet, Key: []byte{}, Value: bytes.Repeat([]byte("x"), 300)},
		}}}},
	)
	return append(out, foldSeedBatches()...) // fold_test.go
}

// seedSnapshots returns snapshots of states built by short simulated runs
// over the registered commands (plus an empty one and a TTL-only one).
func seedSnapshots() [][]byte {
	empty := NewKeyspace(Origin{Region: 1, Incarnation: 1}, Options{})
	out := [][]byte{empty.Snapshot(), NewKeyspace(testOrigin, Options{Solo: true}).Snapshot()}
	ghost := NewKeyspace(Origin{Region: 1, Incarnation: 1}, Options{})
	ghost.applyEffect(&Effect{Kind: EffExpire, Key: []byte("g"), Int: testEpochMs},
		Tag{Time: HLCFromMillis(testEpochMs), Dot: Dot{Origin: Origin{Region: 2, Incarnation: 1}, Seq: 1}}, Context{})
	out = append(out, ghost.Snapshot())
	if w := newWorkload(); len(w.gens) > 0 {
		for seed := uint64(1); seed <= 6; seed++ {
			if ks := simState(seed, w); ks != nil {
				out = append(out, ks.Snapshot())
			}
		}
	}
	out = append(out, listSeedSnapshot())
	out = append(out, streamSeedSnapshots()...) // stream_test.go
	for seed := uint64(1); seed <= 4; seed++ {
		if ks := simStateOpts(seed, newWorkloadOf(hllGens), simOpts{noModel: true}); ks != nil {
			out = append(out, ks.Snapshot())
		}
	}
	return append(out, foldSeedSnapshots()...) // fold_test.go
}

// listSeedSnapshot holds lists with LSET values and a multi-component
// position.
func listSeedSnapshot() []byte {
	ks := NewKeyspace(Origin{Region: 1, Incarnation: 1}, Options{})
	clk := &testClock{ms: testEpochMs}
	for _, c := range [][]string{
		{"RPUSH", "l", "a", "b", "c"}, {"LSET", "l", "1", "B"}, {"LPUSH", "l", "z"},
		{"RPUSH", "m", "x", "y"},
	} {
		ks.Apply(clk.stamp(), []Command{{Args: strArgs(c)}})
	}
	for i := 0; i < 20; i++ {
		ks.Apply(clk.stamp(), []Command{{Args: strArgs([]string{"LINSERT", "m", "AFTER", "x", strconv.Itoa(i)})}})
	}
	return ks.Snapshot()
}

// simState runs a short simulation and returns replica 0's final state.
func simState(seed uint64, w *workload) *Keyspace { return simStateOpts(seed, w, simOpts{}) }

// simStateOpts is simState with options (noModel for workloads the model
// does not know).
func simStateOpts(seed uint64, w *workload, opts simOpts) *Keyspace {
	d := randDraws{NewRand(seed)}
	s := &sim{d: d, w: w, opts: opts, model: newModel()}
	for i := 0; i < 3; i++ {
		s.reps = append(s.reps, &simReplica{ks: NewKeyspace(simOrigin(i), Options{}), clock: testEpochMs})
	}
	for k := 0; k < 40; k++ {
		if k%3 == 2 {
			_ = s.deliver(false)
		} else {
			_ = s.local(d.intn(3, "replica"))
		}
	}
	for len(s.net) > 0 {
		_ = s.deliver(false)
	}
	return s.reps[0].ks
}

func corpusFile(data []byte) string {
	return fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n", data)
}

func TestWriteFuzzCorpus(t *testing.T) {
	if !*writeCorpus {
		t.Skip("run with -props.writecorpus to regenerate the seed corpus")
	}
	write := func(name string, seeds [][]byte) {
		dir := filepath.Join("testdata", "fuzz", name)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		for _, s := range seeds {
			sum := sha256.Sum256(s)
			p := filepath.Join(dir, fmt.Sprintf("seed-%x", sum[:8]))
			if err := os.WriteFile(p, []byte(corpusFile(s)), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	var batches [][]byte
	for _, b := range seedBatches() {
		batches = append(batches, b.Encode(nil))
	}
	write("FuzzDecodeBatch", batches)
	write("FuzzMergeHostile", batches)
	write("FuzzRestore", seedSnapshots())
}

func FuzzDecodeBatch(f *testing.F) {
	for _, b := range seedBatches() {
		f.Add(b.Encode(nil))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		b, err := DecodeBatch(data)
		if err != nil {
			if b != nil {
				t.Fatalf("error %v with a non-nil batch", err)
			}
			return
		}
		// Re-encoding is canonical: decoding it gives the same batch and
		// encoding that gives the same bytes. The only non-canonical
		// inputs the decoder accepts are varints with redundant 0x80
		// continuation bytes (encoding/binary accepts them), so a
		// re-encoding that differs from the input must be shorter.
		enc := b.Encode(nil)
		b2, err := DecodeBatch(enc)
		if err != nil {
			t.Fatalf("re-encoded batch does not decode: %v", err)
		}
		if enc2 := b2.Encode(nil); !bytes.Equal(enc, enc2) {
			t.Fatalf("encoding is not a fixed point:\n%x\n%x", enc, enc2)
		}
		if !bytes.Equal(enc, data) && len(enc) >= len(data) {
			t.Fatalf("accepted a non-canonical input that is not an overlong varint:\nin  %x\nout %x", data, enc)
		}
		if len(b.Ops) == 0 || b.FirstSeq == 0 || b.LastSeq() < b.FirstSeq {
			t.Fatalf("accepted batch with bad sequence range %d+%d", b.FirstSeq, len(b.Ops))
		}
		for i := 1; i < len(b.Ops); i++ {
			if b.Ops[i].Time <= b.Ops[i-1].Time {
				t.Fatalf("op times not increasing: %v", b.Ops)
			}
		}
	})
}

func FuzzRestore(f *testing.F) {
	for _, s := range seedSnapshots() {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		ks, err := Restore(data)
		if err != nil {
			return
		}
		// Whatever was accepted can be used, snapshotted and restored, and
		// the snapshot is a fixed point from there on.
		snap := ks.Snapshot()
		d := ks.Digest()
		ks2, err := Restore(snap)
		if err != nil {
			t.Fatalf("snapshot of a restored state does not restore: %v", err)
		}
		if ks2.Digest() != d || !bytes.Equal(ks2.Snapshot(), snap) {
			t.Fatalf("snapshot round trip changed the state")
		}
		for i := 0; i < NumDBs; i++ {
			ks.dbs[i].keys.Each(func(k string, _ *entry) bool {
				readKey(ks, i, k)
				return true
			})
		}
		fresh := NewKeyspace(Origin{Region: 77, Incarnation: 1}, Options{})
		fresh.Join(ks2)
		_ = fresh.Digest()
	})
}

// readKey runs the read commands that exist against key (they must not
// panic whatever state they meet).
func readKey(ks *Keyspace, dbi int, key string) {
	for _, args := range [][]string{
		{"GET", key}, {"SMEMBERS", key}, {"HGETALL", key}, {"ZRANGE", key, "0", "-1", "WITHSCORES"},
		{"TYPE", key}, {"PTTL", key}, {"STRLEN", key}, {"SCARD", key}, {"HLEN", key}, {"ZCARD", key},
		{"XRANGE", key, "-", "+"}, {"XREVRANGE", key, "+", "-"}, {"XINFO", "STREAM", key, "FULL"},
		{"XREAD", "STREAMS", key, "0"},
	} {
		if Lookup([]byte(args[0])) != nil {
			ks.Read(dbi, testEpochMs, 1, strArgs(args))
		}
	}
}

var (
	hostileBaseOnce sync.Once
	hostileBase     []byte
)

// hostileBaseState is the state hostile batches are merged into: replica
// 1.1 after a short simulated run, as a snapshot (restored fresh per input).
func hostileBaseState() []byte {
	hostileBaseOnce.Do(func() {
		ks := NewKeyspace(Origin{Region: 1, Incarnation: 1}, Options{})
		if w := newWorkload(); len(w.gens) > 0 {
			ks = simState(42, w)
		}
		hostileBase = ks.Snapshot()
	})
	return hostileBase
}

// typesRegistered reports whether every effect of b acts on a value type
// this build has (until every type is merged, effects of missing types are
// out of scope: the keyspace cannot hold them).
func typesRegistered(b *Batch) bool {
	for _, op := range b.Ops {
		for _, e := range op.Effects {
			if t := effectTypes[e.Kind]; t != TypeNone && codecs[t].new == nil {
				return false
			}
		}
	}
	return true
}

func FuzzMergeHostile(f *testing.F) {
	for _, b := range seedBatches() {
		f.Add(b.Encode(nil))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		b, err := DecodeBatch(data)
		if err != nil || !typesRegistered(b) {
			return
		}
		ks, err := Restore(hostileBaseState())
		if err != nil {
			t.Fatal(err)
		}
		before := ks.Digest()
		err = ks.Merge(b)
		if err != nil && !errors.Is(err, ErrGap) && !errors.Is(err, ErrNotReady) && !errors.Is(err, ErrOwnBatch) {
			t.Fatalf("unexpected merge error %v", err)
		}
		after := ks.Digest()
		if err != nil && after != before {
			t.Fatalf("refused batch (%v) changed the state", err)
		}
		// The state stays consistent: its snapshot restores to the same
		// digest and is a fixed point, merging the batch again changes
		// nothing, and reads and a local write work.
		snap := ks.Snapshot()
		ks2, rerr := Restore(snap)
		if rerr != nil {
			t.Fatalf("state after hostile merge does not restore: %v", rerr)
		}
		if ks2.Digest() != after || !bytes.Equal(ks2.Snapshot(), snap) {
			t.Fatalf("state after hostile merge does not round-trip")
		}
		if err == nil {
			if err := ks.Merge(b); err != nil || ks.Digest() != after {
				t.Fatalf("merging the batch again was not a no-op: %v", err)
			}
			// Deterministic: another copy of the base merging the same
			// batch ends in the same state. And the state-based merge
			// agrees: joining the merged state into the base gives it.
			other, _ := Restore(hostileBaseState())
			if other.Merge(b) != nil || other.Digest() != after {
				t.Fatalf("merging the same batch into the same state gave another digest")
			}
			base, _ := Restore(hostileBaseState())
			base.Join(ks2)
			if base.Digest() != after {
				t.Fatalf("join of the merged state into the base differs from the merge")
			}
		}
		for _, op := range b.Ops {
			for _, e := range op.Effects {
				readKey(ks, int(e.DB), string(e.Key))
			}
		}
		if Lookup([]byte("DEL")) != nil {
			st := Stamp{Time: ks.LastTime() + 1}
			for _, op := range b.Ops {
				for _, e := range op.Effects {
					if e.Key != nil {
						ks.Apply(st, []Command{{DB: int(e.DB), Args: [][]byte{[]byte("DEL"), e.Key}}})
					}
				}
			}
			if ks3, err := Restore(ks.Snapshot()); err != nil || ks3.Digest() != ks.Digest() {
				t.Fatalf("state after DEL does not round-trip: %v", err)
			}
		}
	})
}
