package region

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	gproto "google.golang.org/protobuf/proto"

	"concord/crdt"
	pb "concord/proto"
)

// remoteSource is another region's keyspace: its writes, encoded, are the
// batches a region receives from it.
type remoteSource struct {
	ks  *crdt.Keyspace
	now int64
}

func newRemoteSource(o crdt.Origin) *remoteSource {
	return &remoteSource{ks: crdt.NewKeyspace(o, crdt.Options{}), now: time.Now().UnixMilli()}
}

// batch applies one command at the source and returns its encoded batch.
func (s *remoteSource) batch(t testing.TB, args ...string) []byte {
	t.Helper()
	s.now++
	_, b := s.ks.Apply(crdt.Stamp{Time: crdt.HLCFromMillis(s.now), Seed: uint64(s.now)}, []crdt.Command{cmd(args...)})
	if b == nil {
		t.Fatalf("%v produced no effects", args)
	}
	return b.Encode(nil)
}

// chunkSender is the sending region chunks names (so the entries carrying
// them are format 3).
const chunkSender = 9

// chunks splits data into n transfer chunks of transfer id.
func chunks(id uint64, data []byte, n int) []crdt.Chunk {
	size := (len(data) + n - 1) / n
	var out []crdt.Chunk
	for off := 0; off < len(data); off += size {
		end := min(off+size, len(data))
		out = append(out, crdt.Chunk{From: chunkSender, ID: id, Offset: uint64(off), Data: data[off:end], Final: end == len(data)})
	}
	return out
}

func chunkPB(c crdt.Chunk) *pb.TransferChunk {
	return &pb.TransferChunk{From: c.From, Id: c.ID, Offset: c.Offset, Data: c.Data, Final: c.Final}
}

func logRecords(r *crdt.Replica) []crdt.LogRecord {
	l := r.Log()
	recs, err := l.Read(nil, l.First(), math.MaxInt, math.MaxInt)
	if err != nil {
		panic(err)
	}
	return recs
}

// TestEntryFormatOnlyWhenNeeded: entries of command units stay format 1,
// an entry with a remote or chunk unit is format 2, one with a chunk that
// names its sender format 3; decodeEntry refuses a format-1 entry holding
// such a unit, a format-2 entry holding a named chunk, and a unit mixing
// kinds.
func TestEntryFormatOnlyWhenNeeded(t *testing.T) {
	cmdUnit := &pb.Unit{Proposer: "n1", Id: 1, Commands: commandsToPB([]crdt.Command{cmd("SET", "a", "1")})}
	remote := &pb.Unit{Proposer: "n1", Id: 2, Remote: [][]byte{{1, 2, 3}}}
	chunk := &pb.Unit{Proposer: "n1", Id: 3, Chunk: &pb.TransferChunk{Id: 9, Data: []byte("x")}}
	named := &pb.Unit{Proposer: "n1", Id: 5, Chunk: &pb.TransferChunk{From: 2, Id: 9, Data: []byte("x")}}
	empty := &pb.Unit{Proposer: "n1", Id: 4}
	for _, c := range []struct {
		units []*pb.Unit
		want  uint32
	}{
		{nil, entryFormatV1},
		{[]*pb.Unit{cmdUnit}, entryFormatV1},
		{[]*pb.Unit{cmdUnit, empty}, entryFormatV1},
		{[]*pb.Unit{cmdUnit, remote}, entryFormatV2},
		{[]*pb.Unit{chunk}, entryFormatV2},
		{[]*pb.Unit{cmdUnit, chunk, cmdUnit}, entryFormatV2},
		{[]*pb.Unit{named}, entryFormatV3},
		{[]*pb.Unit{cmdUnit, remote, named, chunk}, entryFormatV3},
	} {
		if got := entryFormat(c.units); got != c.want {
			t.Errorf("entryFormat(%d units) = %d, want %d", len(c.units), got, c.want)
		}
	}
	marshal := func(format uint32, units ...*pb.Unit) []byte {
		data, err := gproto.Marshal(&pb.Entry{Format: format, Units: units})
		if err != nil {
			t.Fatal(err)
		}
		return data
	}
	if e, err := decodeEntry(marshal(entryFormatV2, cmdUnit, remote, chunk)); err != nil || len(e.Units) != 3 {
		t.Fatalf("format 2 with all unit kinds: %v %v", e, err)
	}
	for name, data := range map[string][]byte{
		"format 1 with a remote unit":             marshal(entryFormatV1, cmdUnit, remote),
		"format 1 with a chunk unit":              marshal(entryFormatV1, chunk),
		"format 2 with a named chunk unit":        marshal(entryFormatV2, named),
		"a unit with commands and remote batches": marshal(entryFormatV2, &pb.Unit{Commands: cmdUnit.Commands, Remote: remote.Remote}),
		"a unit with remote batches and a chunk":  marshal(entryFormatV2, &pb.Unit{Remote: remote.Remote, Chunk: chunk.Chunk}),
	} {
		_, err := decodeEntry(data)
		if err == nil || !strings.Contains(err.Error(), "corrupt") {
			t.Errorf("%s: got %v, want a corrupt-entry error", name, err)
		}
	}
	if e, err := decodeEntry(marshal(entryFormatV3, cmdUnit, remote, named, chunk)); err != nil || len(e.Units) != 4 {
		t.Fatalf("format 3 with all unit kinds: %v %v", e, err)
	}
	if _, err := decodeEntry(marshal(4, cmdUnit)); !errors.Is(err, errEntryFormat) {
		t.Errorf("format 4: got %v, want errEntryFormat", err)
	}
}

// TestDecodedBatchesDoNotAliasTheEntry: the replication log keeps the
// remote batches and chunk data of a decoded entry; they must be copies,
// not views of the raft log's buffer.
func TestDecodedBatchesDoNotAliasTheEntry(t *testing.T) {
	batch := bytes.Repeat([]byte{7}, 64)
	data, err := gproto.Marshal(&pb.Entry{Format: entryFormatV2, Units: []*pb.Unit{
		{Remote: [][]byte{batch}}, {Chunk: &pb.TransferChunk{Data: batch}}}})
	if err != nil {
		t.Fatal(err)
	}
	e, err := decodeEntry(data)
	if err != nil {
		t.Fatal(err)
	}
	clear(data)
	if !bytes.Equal(e.Units[0].Remote[0], batch) || !bytes.Equal(e.Units[1].Chunk.Data, batch) {
		t.Fatal("decoded bytes changed with the entry's buffer: they alias it")
	}
}

// replFixture is a bare FSM of a non-solo region and a way to apply units
// to it and collect their results.
type replFixture struct {
	t     *testing.T
	f     *fsm
	index uint64
	id    uint64
}

func newReplFixture(t *testing.T, solo bool) *replFixture {
	ks := crdt.NewKeyspace(crdt.Origin{Region: 1, Incarnation: 1}, crdt.Options{Solo: solo})
	return &replFixture{t: t, f: newFSM(ks, crdt.LogLimits{}, newRegistry(), nil)}
}

// apply applies one entry holding units and returns their results.
func (x *replFixture) apply(units ...*pb.Unit) []crdt.Result {
	x.t.Helper()
	for _, u := range units {
		x.id++
		u.Proposer, u.Id = "n1", x.id
	}
	var got []crdt.Result
	s := &submission{units: units, done: func(r []crdt.Result) { got = r }}
	x.f.reg.add(s)
	data, err := gproto.Marshal(&pb.Entry{Format: entryFormat(units), Time: uint64(crdt.HLCFromMillis(time.Now().UnixMilli())), Units: units})
	if err != nil {
		x.t.Fatal(err)
	}
	x.index++
	x.f.ApplyBatch([]*raft.Log{{Index: x.index, Term: 1, Type: raft.LogCommand, Data: data}})
	if got == nil {
		x.t.Fatal("units not delivered")
	}
	return got
}

func ints(rs []crdt.Reply) []int64 {
	out := make([]int64, len(rs))
	for i, r := range rs {
		if r.Kind != crdt.KindInt {
			out[i] = -1
			continue
		}
		out[i] = r.Int
	}
	return out
}

// TestFSMAppliesRemoteAndChunkUnits: remote units reply one merge outcome
// per batch, chunk units the staged bytes and whether they joined (or an
// error reply), and the log records local and remote batches in apply
// order.
func TestFSMAppliesRemoteAndChunkUnits(t *testing.T) {
	x := newReplFixture(t, false)
	src := newRemoteSource(crdt.Origin{Region: 2, Incarnation: 1})
	b1, b2 := src.batch(t, "SET", "a", "1"), src.batch(t, "INCRBY", "c", "5")
	src.batch(t, "SET", "lost", "x") // never sent
	b4 := src.batch(t, "SADD", "s", "m")

	r := x.apply(&pb.Unit{Commands: commandsToPB([]crdt.Command{cmd("SET", "local", "1")})},
		&pb.Unit{Remote: [][]byte{b1, b2}})
	if r[0].Err != nil || string(r[0].Replies[0].Str) != "OK" {
		t.Fatalf("local unit: %+v", r[0])
	}
	if got := ints(r[1].Replies); !reflect.DeepEqual(got, []int64{int64(crdt.Merged), int64(crdt.Merged)}) {
		t.Fatalf("first merge: %v", got)
	}
	r = x.apply(&pb.Unit{Remote: [][]byte{b1, b4, []byte("garbage")}})
	want := []int64{int64(crdt.Duplicate), int64(crdt.Rejected), int64(crdt.Rejected)}
	if got := ints(r[0].Replies); !reflect.DeepEqual(got, want) {
		t.Fatalf("duplicate, gap, garbage: %v, want %v", got, want)
	}
	// A rejected batch's reply names why (crdt.RejectReason first).
	for i, reason := range []string{"gap: ", "corrupt: "} {
		if got := string(r[0].Replies[i+1].Str); !strings.HasPrefix(got, reason) {
			t.Errorf("rejection %d: reply text %q, want it to start with %q", i, got, reason)
		}
	}

	recs := logRecords(x.f.rep)
	var origins []uint32
	for _, rec := range recs {
		origins = append(origins, rec.Origin.Region)
	}
	if !reflect.DeepEqual(origins, []uint32{1, 2, 2}) || !bytes.Equal(recs[1].Data, b1) || !bytes.Equal(recs[2].Data, b2) {
		t.Fatalf("log origins %v", origins)
	}

	other := newRemoteSource(crdt.Origin{Region: 3, Incarnation: 1})
	other.batch(t, "SET", "t", "v")
	cs := chunks(0x51, other.ks.Snapshot(), 2)
	r = x.apply(&pb.Unit{Chunk: chunkPB(cs[0])})
	if got := ints(r[0].Replies); !reflect.DeepEqual(got, []int64{int64(len(cs[0].Data)), 0}) {
		t.Fatalf("first chunk: %v", got)
	}
	bad := cs[1]
	bad.Offset++
	r = x.apply(&pb.Unit{Chunk: chunkPB(bad)})
	if len(r[0].Replies) != 1 || r[0].Replies[0].Kind != crdt.KindError || !strings.HasPrefix(string(r[0].Replies[0].Str), "ERR ") ||
		!strings.Contains(string(r[0].Replies[0].Str), "out of order") {
		t.Fatalf("chunk out of order: %+v", r[0].Replies)
	}
	r = x.apply(&pb.Unit{Chunk: chunkPB(cs[1])})
	if got := ints(r[0].Replies); !reflect.DeepEqual(got, []int64{0, 1}) {
		t.Fatalf("final chunk: %v", got)
	}
	if v := x.f.rep.Keyspace().Read(0, time.Now().UnixMilli(), 1, [][]byte{[]byte("GET"), []byte("t")}); string(v.Str) != "v" {
		t.Fatalf("joined state: t=%q", v.Str)
	}
	st := x.f.rep.Stats
	if st.Merged != 2 || st.Duplicates != 1 || st.Rejected != 2 || st.Chunks != 2 || st.Transfers != 1 {
		t.Fatalf("stats %+v", st)
	}
}

// memSink is a raft.SnapshotSink in memory.
type memSink struct {
	bytes.Buffer
	closed, cancelled bool
}

func (s *memSink) ID() string    { return "mem" }
func (s *memSink) Close() error  { s.closed = true; return nil }
func (s *memSink) Cancel() error { s.cancelled = true; return nil }

// TestSnapshotRestoresBothVersions: a version 2 snapshot brings back the
// log and staged transfers; a version 1 snapshot (keyspace only) restores
// with an empty log; configuration decides the solo flag; unknown versions
// are refused.
func TestSnapshotRestoresBothVersions(t *testing.T) {
	x := newReplFixture(t, false)
	src := newRemoteSource(crdt.Origin{Region: 2, Incarnation: 1})
	x.apply(&pb.Unit{Commands: commandsToPB([]crdt.Command{cmd("INCR", "n")})}, &pb.Unit{Remote: [][]byte{src.batch(t, "SET", "a", "1")}})
	other := newRemoteSource(crdt.Origin{Region: 3, Incarnation: 1})
	other.batch(t, "SET", "t", "v")
	cs := chunks(0x77, other.ks.Snapshot(), 3)
	x.apply(&pb.Unit{Chunk: chunkPB(cs[0])})

	snap, err := x.f.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	var sink memSink
	if err := snap.Persist(&sink); err != nil || !sink.closed {
		t.Fatalf("persist: %v", err)
	}
	data := sink.Bytes()
	if !bytes.Equal(data[:8], []byte{'C', 'O', 'N', 'C', 'S', 'N', 'P', 2}) || binary.BigEndian.Uint64(data[8:16]) != x.index {
		t.Fatalf("snapshot header %q", data[:16])
	}

	y := newReplFixture(t, false)
	if err := y.f.Restore(readCloser(data)); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(logRecords(y.f.rep), logRecords(x.f.rep)) || len(logRecords(y.f.rep)) != 2 {
		t.Fatal("restored log differs")
	}
	if y.f.rep.Keyspace().Digest() != x.f.rep.Keyspace().Digest() || y.f.applied.Load() != x.index {
		t.Fatal("restored state differs")
	}
	if n, ok := y.f.rep.Staged(chunkSender, 0x77); !ok || n != uint64(len(cs[0].Data)) {
		t.Fatalf("staged transfer after restore: %d %v", n, ok)
	}
	// The restored replica goes on with the transfer.
	if r := y.apply(&pb.Unit{Chunk: chunkPB(cs[1])}); ints(r[0].Replies)[0] != int64(len(cs[0].Data)+len(cs[1].Data)) {
		t.Fatalf("chunk after restore: %+v", r[0].Replies)
	}

	// A solo node restoring the same snapshot: configuration wins.
	z := newReplFixture(t, true)
	if err := z.f.Restore(readCloser(data)); err != nil {
		t.Fatal(err)
	}
	if !z.f.rep.Keyspace().Solo() {
		t.Fatal("restored keyspace ignores the configured solo flag")
	}

	// Version 1: header + keyspace snapshot.
	ks := x.f.rep.Keyspace()
	v1 := append([]byte{'C', 'O', 'N', 'C', 'S', 'N', 'P', 1}, data[8:16]...)
	v1 = append(v1, ks.Snapshot()...)
	w := newReplFixture(t, false)
	if err := w.f.Restore(readCloser(v1)); err != nil {
		t.Fatalf("version 1: %v", err)
	}
	if w.f.rep.Keyspace().Digest() != ks.Digest() || w.f.rep.Log().Len() != 0 || w.f.rep.Keyspace().Solo() {
		t.Fatal("version 1 restore: state differs, log not empty or solo flag from the snapshot")
	}
	// It logs what it applies from then on.
	w.apply(&pb.Unit{Commands: commandsToPB([]crdt.Command{cmd("INCR", "n")})})
	if w.f.rep.Log().Len() != 1 {
		t.Fatalf("log after a local write on a v1-restored replica: %d records", w.f.rep.Log().Len())
	}

	bad := append([]byte{}, data...)
	bad[7] = 3
	if err := newReplFixture(t, false).f.Restore(readCloser(bad)); err == nil || !strings.Contains(err.Error(), "unknown snapshot format") {
		t.Fatalf("version 3: %v", err)
	}
}

type nopCloser struct{ *bytes.Reader }

func (nopCloser) Close() error { return nil }

func readCloser(b []byte) nopCloser { return nopCloser{bytes.NewReader(b)} }
