package region

import (
	"slices"
	"testing"

	"concord/crdt"
	pb "concord/proto"
)

// TestFSMWriteHook: the write hook (NotifyWrites) hears of keys committed
// local units and merged remote units gave content to, hears "any key"
// after a snapshot restore, and stays installed on the restored keyspace.
func TestFSMWriteHook(t *testing.T) {
	type note struct {
		db  int
		key string
	}
	var heard []note
	hook := func(db int, key string) { heard = append(heard, note{db, key}) }

	x := newReplFixture(t, false)
	x.f.setWriteHook(hook)
	src := newRemoteSource(crdt.Origin{Region: 2, Incarnation: 1})
	x.apply(&pb.Unit{Commands: commandsToPB([]crdt.Command{cmd("ZADD", "z", "1", "m")})},
		&pb.Unit{Remote: [][]byte{src.batch(t, "SET", "r", "1")}})
	if !slices.Equal(heard, []note{{0, "z"}, {0, "r"}}) {
		t.Fatalf("apply: heard %v", heard)
	}

	snap, err := x.f.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	var sink memSink
	if err := snap.Persist(&sink); err != nil {
		t.Fatal(err)
	}
	y := newReplFixture(t, false)
	y.f.setWriteHook(hook)
	heard = nil
	if err := y.f.Restore(readCloser(sink.Bytes())); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(heard, []note{{-1, ""}}) {
		t.Fatalf("restore: heard %v", heard)
	}
	heard = nil
	y.index = x.index
	y.apply(&pb.Unit{Commands: commandsToPB([]crdt.Command{cmd("ZADD", "after", "1", "m")})})
	if !slices.Equal(heard, []note{{0, "after"}}) {
		t.Fatalf("apply after restore: heard %v", heard)
	}
}
