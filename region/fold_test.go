package region

import (
	"reflect"
	"strconv"
	"testing"
	"time"

	"concord/crdt"
)

// TestFoldUnitAppliesOnEveryNode: a fold unit, proposed through a follower
// and through the leader, folds the same counters on every node (equal
// digests and logs), answers how many items it folded, leaves every value
// as it was, logs the fold op under the region's origin for shipping, and
// folds nothing (no op, no log record) once nothing is left.
func TestFoldUnitAppliesOnEveryNode(t *testing.T) {
	r, _ := newReplRegion(t, 3, nil)
	l := r.leader()
	lead, fol := r.nodes[l], r.nodes[r.others(l)[0]]

	src := newRemoteSource(crdt.Origin{Region: 2, Incarnation: 1})
	var batches [][]byte
	for i := 1; i <= 3; i++ {
		batches = append(batches, src.batch(t, "INCRBY", "c", strconv.Itoa(i)))
		batches = append(batches, src.batch(t, "HINCRBY", "h", "f", "10"))
	}
	batches = append(batches, src.batch(t, "ZINCRBY", "z", "2", "m"))
	remote(t, fol, batches...)
	for i := 0; i < 4; i++ {
		mustWrite(t, fol, "INCRBY", "c", "100")
		mustWrite(t, lead, "HINCRBY", "h", "f", "1")
		mustWrite(t, lead, "ZINCRBY", "z", "0.5", "m")
	}
	wantC, wantF, wantZ := "406", "34", "4"

	backlog := func(n *Node) (b int) {
		n.ReplView(func(rp *crdt.Replica) { b = rp.Keyspace().Unfolded() })
		return b
	}
	waitSameLogs(t, r, -1)
	for _, n := range r.nodes {
		if b := backlog(n); b != 3 {
			t.Fatalf("%s: backlog %d before the fold, want 3 (c, h.f, z.m)", n.id, b)
		}
	}
	stable := crdt.VersionVector(nil)
	lead.ReplView(func(rp *crdt.Replica) { stable = rp.Keyspace().Version().Clone() })
	before := len(nodeLog(lead))

	fold := func(n *Node, max int) int64 {
		t.Helper()
		res := wait(t, n.ProposeFold(stable, max))
		if res.Err != nil || len(res.Replies) != 1 || res.Replies[0].Kind != crdt.KindInt {
			t.Fatalf("ProposeFold via %s: %+v", n.id, res)
		}
		return res.Replies[0].Int
	}
	if n := fold(fol, 1); n != 1 {
		t.Fatalf("fold of at most 1 item via the follower folded %d", n)
	}
	if n := fold(lead, 100); n != 2 {
		t.Fatalf("second fold via the leader folded %d, want the 2 items left", n)
	}
	if n := fold(lead, 100); n != 0 {
		t.Fatalf("fold with nothing left folded %d", n)
	}
	recs := waitSameLogs(t, r, before+2) // two fold ops; the empty one issued nothing
	origin := lead.Origin()
	for _, rec := range recs[before:] {
		if rec.Origin != origin {
			t.Fatalf("fold op logged under %v, want the region's origin %v", rec.Origin, origin)
		}
	}
	if recs[before+1].Time <= recs[before].Time || recs[before].Time <= recs[before-1].Time {
		t.Fatalf("fold ops' times do not follow the log: %v %v %v", recs[before-1].Time, recs[before].Time, recs[before+1].Time)
	}
	for _, n := range r.nodes {
		if b := backlog(n); b != 0 {
			t.Errorf("%s: backlog %d after the folds", n.id, b)
		}
		if v := readVal(t, n, "GET", "c"); string(v.Str) != wantC {
			t.Errorf("%s: c = %q, want %s", n.id, v.Str, wantC)
		}
		if v := readVal(t, n, "HGET", "h", "f"); string(v.Str) != wantF {
			t.Errorf("%s: h.f = %q, want %s", n.id, v.Str, wantF)
		}
		if v := readVal(t, n, "ZSCORE", "z", "m"); string(v.Str) != wantZ {
			t.Errorf("%s: z.m = %q, want %s", n.id, v.Str, wantZ)
		}
	}
	// Increments after the fold add to the folded value.
	mustWrite(t, fol, "INCRBY", "c", "1")
	waitSameLogs(t, r, before+3)
	if v := readVal(t, lead, "GET", "c"); string(v.Str) != "407" {
		t.Errorf("c after the fold and INCRBY 1 = %q", v.Str)
	}

	// A restarted follower replays the fold units from the log (or
	// snapshot) to the same state.
	i := r.others(l)[1]
	r.kill(i)
	r.start(i)
	d := digest(lead)
	waitFor(t, 20*time.Second, "the restarted node's state", func() bool { return digest(r.nodes[i]) == d })
	if !reflect.DeepEqual(nodeLog(r.nodes[i]), nodeLog(lead)) {
		t.Fatal("the restarted node's log differs")
	}
}
