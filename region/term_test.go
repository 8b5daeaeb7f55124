package region

import (
	"testing"

	"github.com/hashicorp/raft"
	gproto "google.golang.org/protobuf/proto"

	"concord/crdt"
	pb "concord/proto"
)

// termFixture is an FSM with one registered submission of one SET unit.
func termFixture(t *testing.T) (*fsm, *submission, chan []crdt.Result) {
	t.Helper()
	reg := newRegistry()
	f := newFSM(crdt.NewKeyspace(crdt.Origin{Region: 1, Incarnation: 1}, crdt.Options{Solo: true}), crdt.LogLimits{}, reg, nil)
	done := make(chan []crdt.Result, 1)
	s := &submission{units: []*pb.Unit{{Proposer: "n1", Id: 7, Commands: commandsToPB([]crdt.Command{cmd("SET", "k", "v")})}},
		done: func(r []crdt.Result) { done <- r }}
	reg.add(s)
	return f, s, done
}

func entryLog(t *testing.T, index, logTerm, entryTerm uint64, units ...*pb.Unit) *raft.Log {
	t.Helper()
	data, err := gproto.Marshal(&pb.Entry{Format: entryFormatV1, Term: entryTerm, Units: units})
	if err != nil {
		t.Fatal(err)
	}
	return &raft.Log{Index: index, Term: logTerm, Type: raft.LogCommand, Data: data}
}

func exists(f *fsm, key string) bool {
	var r crdt.Reply
	f.mu.RLock()
	r = f.rep.Keyspace().Read(0, 0, 1, [][]byte{[]byte("EXISTS"), []byte(key)})
	f.mu.RUnlock()
	return r.Int == 1
}

// An entry logged in a term other than the one it was proposed in is
// skipped by apply, and its units are reported not applied (TRYAGAIN) once
// an entry of a later term is applied.
func TestEntryFromAnotherTermIsSkippedAndReportedNotApplied(t *testing.T) {
	f, s, done := termFixture(t)
	f.reg.claim(s, 3)
	f.ApplyBatch([]*raft.Log{entryLog(t, 5, 4, 3, s.units[0])}) // proposed in 3, logged in 4
	if exists(f, "k") {
		t.Fatal("entry from another term was applied")
	}
	select {
	case r := <-done:
		if r[0].Err != ErrNotApplied {
			t.Fatalf("unit resolved as %v, want ErrNotApplied", r[0].Err)
		}
	default:
		t.Fatal("unit still waiting after a later term was applied")
	}
	if f.skipped.Load() != 1 {
		t.Fatalf("skipped = %d", f.skipped.Load())
	}
}

// A unit applied in its own term keeps its reply when later terms follow in
// the same batch.
func TestUnitAppliedBeforeLaterTermKeepsReply(t *testing.T) {
	f, s, done := termFixture(t)
	f.reg.claim(s, 3)
	f.ApplyBatch([]*raft.Log{entryLog(t, 5, 3, 3, s.units[0]), entryLog(t, 6, 4, 4)})
	r := <-done
	if r[0].Err != nil || string(r[0].Replies[0].Str) != "OK" {
		t.Fatalf("result %+v", r[0])
	}
	if !exists(f, "k") {
		t.Fatal("not applied")
	}
}

// A unit not yet proposed (parked: term 0) or proposed in the current term
// is left waiting; one in flight across a snapshot restore is in doubt.
func TestTermAdvanceLeavesUnproposedAndReportsRestoredInDoubt(t *testing.T) {
	f, s, done := termFixture(t)
	f.ApplyBatch([]*raft.Log{entryLog(t, 5, 9, 9)})
	select {
	case r := <-done:
		t.Fatalf("unproposed unit resolved: %+v", r)
	default:
	}
	f.reg.claim(s, 9)
	f.ApplyBatch([]*raft.Log{entryLog(t, 6, 9, 9)})
	select {
	case r := <-done:
		t.Fatalf("unit of the current term resolved: %+v", r)
	default:
	}
	f.reg.restored(6) // a snapshot may hold the unit's entry
	f.ApplyBatch([]*raft.Log{entryLog(t, 7, 10, 10)})
	if r := <-done; r[0].Err != ErrInDoubt {
		t.Fatalf("after a restore: %v, want ErrInDoubt", r[0].Err)
	}
}

// A watch on an index settles from the registry's own record of what was
// delivered: registered before the entry is applied it gets the unit's
// reply, after an entry without the unit it gets TRYAGAIN, and inside a
// restored snapshot it is in doubt. (Apply once stored its applied index
// before delivering, and a watch registered in between reported an applied
// write as not applied.)
func TestWatchSettlesOnlyAfterDelivery(t *testing.T) {
	f, s, done := termFixture(t)
	f.reg.claim(s, 2)
	f.reg.watch(s, 5)
	f.ApplyBatch([]*raft.Log{entryLog(t, 5, 2, 2, s.units[0])})
	if r := <-done; r[0].Err != nil {
		t.Fatalf("watched unit applied at its index: %v", r[0].Err)
	}

	f, s, done = termFixture(t)
	f.ApplyBatch([]*raft.Log{entryLog(t, 5, 2, 2)}) // index 5 holds another entry
	f.reg.watch(s, 5)
	if r := <-done; r[0].Err != ErrNotApplied {
		t.Fatalf("unit missing from its index: %v, want ErrNotApplied", r[0].Err)
	}

	f, s, done = termFixture(t)
	f.reg.restored(10)
	f.reg.watch(s, 7)
	if r := <-done; r[0].Err != ErrInDoubt {
		t.Fatalf("index inside a restored snapshot: %v, want ErrInDoubt", r[0].Err)
	}
}
