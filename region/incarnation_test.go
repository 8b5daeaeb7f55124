package region

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	gproto "google.golang.org/protobuf/proto"

	"concord/crdt"
	pb "concord/proto"
)

// Incarnations: a region that starts from empty state fixes its origin
// through the log before any write applies, keeps it across restarts with
// data, takes a new one after losing its state, and moves to a new one on
// RenewIncarnation.

// shiftClock is a wall clock the test moves forward (never back).
type shiftClock struct{ off atomic.Int64 }

func (c *shiftClock) now() time.Time          { return time.Now().Add(time.Duration(c.off.Load())) }
func (c *shiftClock) advance(d time.Duration) { c.off.Add(int64(d)) }

// incRegion is a non-solo region (so its own writes are logged) whose
// nodes share clk and the configured incarnation floor.
func incRegion(t *testing.T, size int, floor uint32, clk *shiftClock, mod func(*Config)) *testRegion {
	return newTestRegionWith(t, size, func(c *Config) {
		c.Solo = false
		c.Origin = crdt.Origin{Region: 1, Incarnation: floor}
		c.Clock = clk.now
		if mod != nil {
			mod(c)
		}
	})
}

// agreedOrigin waits until every running node has applied a fixed origin
// and they agree on it, and returns it.
func agreedOrigin(t *testing.T, r *testRegion) crdt.Origin {
	t.Helper()
	var o crdt.Origin
	waitFor(t, 10*time.Second, "every node to fix the same origin", func() bool {
		live := r.live()
		o = live[0].Origin()
		for _, n := range live {
			if !n.OriginFixed() || n.Origin() != o {
				return false
			}
		}
		return true
	})
	return o
}

// ownBatches decodes n's replication log records of origin o.
func ownBatches(t *testing.T, n *Node) []*crdt.Batch {
	t.Helper()
	var out []*crdt.Batch
	n.ReplView(func(r *crdt.Replica) {
		for _, rec := range logRecords(r) {
			b, err := crdt.DecodeBatch(rec.Data)
			if err != nil {
				t.Errorf("log record %d: %v", rec.Pos, err)
				continue
			}
			out = append(out, b)
		}
	})
	return out
}

// batchesOf keeps the batches of origin o.
func batchesOf(bs []*crdt.Batch, o crdt.Origin) []*crdt.Batch {
	var out []*crdt.Batch
	for _, b := range bs {
		if b.Origin == o {
			out = append(out, b)
		}
	}
	return out
}

// TestFreshRegionFixesIncarnationBeforeFirstWrite: a region bootstrapped
// from empty state takes an incarnation at least the configured floor (and
// above it when the clock's is higher), every node agrees, and the first
// write already carries it, at seq 1.
func TestFreshRegionFixesIncarnationBeforeFirstWrite(t *testing.T) {
	for _, size := range []int{1, 3} {
		for _, floor := range []uint32{1, math.MaxUint32 - 100} {
			t.Run(fmt.Sprintf("%d-node/floor-%d", size, floor), func(t *testing.T) {
				clk := &shiftClock{}
				r := incRegion(t, size, floor, clk, nil)
				l := r.leader()
				mustWrite(t, r.nodes[(l+1)%size], "SET", "a", "1")
				mustWrite(t, r.nodes[l], "INCR", "n")
				o := agreedOrigin(t, r)
				waitConverged(t, r.live()...)
				want := max(floor, clockIncarnation(clk.now()))
				if o.Region != 1 || o.Incarnation < floor || uint64(o.Incarnation)+60 < uint64(want) {
					t.Fatalf("origin %s: want region 1 at incarnation >= %d (floor %d, clock %d)", o, want, floor, clockIncarnation(clk.now()))
				}
				for _, n := range r.live() {
					bs := ownBatches(t, n)
					if len(bs) != 2 {
						t.Fatalf("%s logged %d batches, want 2", n.id, len(bs))
					}
					for i, b := range bs {
						if b.Origin != o || b.FirstSeq != uint64(i+1) {
							t.Fatalf("%s: batch %d is %s:%d, want %s:%d", n.id, i, b.Origin, b.FirstSeq, o, i+1)
						}
					}
				}
			})
		}
	}
}

// TestIncarnationKeptAcrossRestart: a region restarted with its data (from
// a snapshot and the log after it) keeps its incarnation, although its
// clock now suggests another, and its dots continue. Restarted with the
// floor raised above it (as after restoring a backup), it renews before
// its first write.
func TestIncarnationKeptAcrossRestart(t *testing.T) {
	clk := &shiftClock{}
	floor := uint32(1)
	r := incRegion(t, 3, 1, clk, func(c *Config) { c.Origin.Incarnation = floor })
	l := r.leader()
	mustWrite(t, r.nodes[l], "SET", "a", "1")
	o := agreedOrigin(t, r)
	if err := r.nodes[0].raft.Snapshot().Error(); err != nil {
		t.Fatal(err)
	}
	mustWrite(t, r.nodes[l], "SET", "b", "2")
	waitConverged(t, r.live()...)

	clk.advance(time.Hour)
	for i := range r.nodes {
		r.kill(i)
	}
	for i := range r.nodes {
		r.start(i)
	}
	l = r.leader()
	mustWrite(t, r.nodes[l], "SET", "c", "3")
	if got := agreedOrigin(t, r); got != o {
		t.Fatalf("origin after a restart with data: %s, was %s", got, o)
	}
	waitConverged(t, r.live()...)
	for _, n := range r.live() {
		bs := batchesOf(ownBatches(t, n), o)
		if last := bs[len(bs)-1]; last.FirstSeq != 3 {
			t.Fatalf("%s: write after the restart is %s:%d, want seq 3", n.id, last.Origin, last.FirstSeq)
		}
	}

	floor = o.Incarnation + 1000
	for i := range r.nodes {
		r.kill(i)
	}
	for i := range r.nodes {
		r.start(i)
	}
	l = r.leader()
	mustWrite(t, r.nodes[l], "SET", "d", "4")
	renewed := agreedOrigin(t, r)
	if renewed.Incarnation < floor {
		t.Fatalf("restarted with floor %d: origin %s", floor, renewed)
	}
	waitConverged(t, r.live()...)
	for _, n := range r.live() {
		bs := ownBatches(t, n)
		if last := bs[len(bs)-1]; last.Origin != renewed || last.FirstSeq != 1 || len(batchesOf(bs, renewed)) != 1 {
			t.Fatalf("%s: first write above the raised floor is %s:%d", n.id, last.Origin, last.FirstSeq)
		}
	}
	// Once above the floor, restarts keep it again.
	for i := range r.nodes {
		r.kill(i)
	}
	for i := range r.nodes {
		r.start(i)
	}
	r.leader()
	if got := agreedOrigin(t, r); got != renewed {
		t.Fatalf("restart above the floor: %s, was %s", got, renewed)
	}
}

// TestCacheRestartTakesNewIncarnation: a cache-durability region restarted
// whole has lost its state; it takes a higher incarnation, its new writes
// start at seq 1 of it, and the old incarnation's batches, merged back
// from another region, are new to it (not duplicates), while a region
// holding the old batches takes the new ones as new writes.
func TestCacheRestartTakesNewIncarnation(t *testing.T) {
	clk := &shiftClock{}
	r := incRegion(t, 3, 1, clk, func(c *Config) { c.Durability = DurabilityCache })
	l := r.leader()
	mustWrite(t, r.nodes[l], "SET", "old1", "x")
	mustWrite(t, r.nodes[(l+1)%3], "SET", "old2", "y")
	first := agreedOrigin(t, r)
	var oldBatches [][]byte
	r.nodes[l].ReplView(func(rep *crdt.Replica) {
		for _, rec := range logRecords(rep) {
			oldBatches = append(oldBatches, append([]byte(nil), rec.Data...))
		}
	})
	// Another region that received them.
	peer := crdt.NewReplica(crdt.NewKeyspace(crdt.Origin{Region: 2, Incarnation: 1}, crdt.Options{}), crdt.LogLimits{})
	for _, b := range oldBatches {
		if out, err := peer.Merge(b); out != crdt.Merged {
			t.Fatalf("peer merging the first incarnation: %v %v", out, err)
		}
	}

	clk.advance(10 * time.Second)
	for i := range r.nodes {
		r.kill(i)
	}
	for i := range r.nodes {
		r.start(i)
	}
	l = r.leader()
	mustWrite(t, r.nodes[l], "SET", "new", "z")
	second := agreedOrigin(t, r)
	if second.Region != 1 || second.Incarnation <= first.Incarnation {
		t.Fatalf("after losing its state the region took %s, had %s", second, first)
	}
	bs := ownBatches(t, r.nodes[l])
	if len(bs) != 1 || bs[0].Origin != second || bs[0].FirstSeq != 1 {
		t.Fatalf("first write after the restart: %+v", bs)
	}
	var newBatch []byte
	r.nodes[l].ReplView(func(rep *crdt.Replica) { newBatch = append([]byte(nil), logRecords(rep)[0].Data...) })
	if out, err := peer.Merge(newBatch); out != crdt.Merged {
		t.Fatalf("peer holding the old incarnation took the new write as %v (%v)", out, err)
	}

	// The old incarnation's writes come back from the peer region.
	got := remote(t, r.nodes[(l+1)%3], oldBatches...)
	for i, o := range got {
		if o != int64(crdt.Merged) {
			t.Fatalf("old batch %d merged back as %d, want Merged", i, o)
		}
	}
	waitConverged(t, r.live()...)
	for _, k := range []string{"old1", "old2", "new"} {
		if v := readVal(t, r.nodes[l], "EXISTS", k); v.Int != 1 {
			t.Fatalf("%s missing after the merge", k)
		}
	}
	if d := digest(r.nodes[l]); d != peer.Keyspace().Digest() {
		t.Fatal("the region and its peer did not converge")
	}
}

// TestRenewIncarnation: a renewal, proposed on a follower, moves every node
// to a higher incarnation (even with the clock unchanged) and later writes
// carry it from seq 1, depending on the old origin's ops.
func TestRenewIncarnation(t *testing.T) {
	regionSizes(t, func(t *testing.T, size int) {
		clk := &shiftClock{}
		r := incRegion(t, size, 1, clk, nil)
		l := r.leader()
		via := r.nodes[(l+1)%size]
		mustWrite(t, via, "SET", "a", "1")
		mustWrite(t, via, "SET", "a", "2")
		old := agreedOrigin(t, r)

		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := via.RenewIncarnation(ctx); err != nil {
			t.Fatal(err)
		}
		if o := via.Origin(); o.Region != 1 || o.Incarnation <= old.Incarnation {
			t.Fatalf("after RenewIncarnation returned: %s, was %s", o, old)
		}
		mustWrite(t, r.nodes[l], "SET", "a", "3")
		renewed := agreedOrigin(t, r)
		if renewed != via.Origin() {
			t.Fatalf("nodes agree on %s, the renewing node reported %s", renewed, via.Origin())
		}
		bs := ownBatches(t, r.nodes[l])
		last := bs[len(bs)-1]
		if last.Origin != renewed || last.FirstSeq != 1 || last.Deps.Get(old) != 2 {
			t.Fatalf("write after the renewal: %s:%d deps %v", last.Origin, last.FirstSeq, last.Deps)
		}
		if err := via.RenewIncarnation(ctx); err != nil {
			t.Fatal(err)
		}
		if o := agreedOrigin(t, r); o.Incarnation <= renewed.Incarnation {
			t.Fatalf("second renewal: %s, was %s", o, renewed)
		}
	})
}

// TestWritesBeforeTheOriginIsFixed: writes sent to a region the moment it
// starts, before a leader exists, succeed or get TRYAGAIN; none is applied
// under the configured origin or any but the fixed one.
func TestWritesBeforeTheOriginIsFixed(t *testing.T) {
	clk := &shiftClock{}
	r := &testRegion{t: t, net: newNetFault(), cfgMod: func(c *Config) {
		c.Solo = false
		c.Clock = clk.now
	}}
	for i := 0; i < 3; i++ {
		r.addPeer()
	}
	t.Cleanup(func() {
		for _, n := range r.nodes {
			if n != nil {
				n.Close()
			}
		}
	})
	var (
		wg             sync.WaitGroup
		mu             sync.Mutex
		acked, retried int
	)
	for i := range r.peers {
		n := r.start(i)
		for w := 0; w < 4; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for j := 0; j < 10; j++ {
					rep, err := do2(n, 15*time.Second, "INCR", fmt.Sprintf("k%d", w))
					var re *Error
					mu.Lock()
					switch {
					case err == nil && !rep.IsError():
						acked++
					case errors.As(err, &re) && re.Retryable():
						retried++
					default:
						t.Errorf("write via %s: %v %s", n.id, err, rep.Str)
					}
					mu.Unlock()
				}
			}()
		}
	}
	wg.Wait()
	o := agreedOrigin(t, r)
	if o == (crdt.Origin{Region: 1, Incarnation: 1}) {
		t.Fatal("the region kept the configured origin")
	}
	waitConverged(t, r.live()...)
	bs := ownBatches(t, r.nodes[0])
	if len(bs) != acked {
		t.Fatalf("%d writes acknowledged, %d logged", acked, len(bs))
	}
	for i, b := range bs {
		if b.Origin != o || b.FirstSeq != uint64(i+1) {
			t.Fatalf("batch %d is %s:%d, want %s:%d", i, b.Origin, b.FirstSeq, o, i+1)
		}
	}
	t.Logf("%d acknowledged, %d TRYAGAIN", acked, retried)
}

// incFixture is a bare FSM whose origin is not fixed, applied entry by
// entry.
type incFixture struct {
	t     *testing.T
	f     *fsm
	index uint64
	id    uint64
}

func newIncFixture(t *testing.T) *incFixture {
	ks := crdt.NewKeyspace(crdt.Origin{Region: 1, Incarnation: 1}, crdt.Options{})
	return &incFixture{t: t, f: newFSM(ks, crdt.LogLimits{}, newRegistry(), nil)}
}

func (x *incFixture) apply(gated bool, units ...*pb.Unit) []crdt.Result {
	x.t.Helper()
	for _, u := range units {
		x.id++
		u.Proposer, u.Id = "n1", x.id
	}
	var got []crdt.Result
	x.f.reg.add(&submission{units: units, done: func(r []crdt.Result) { got = r }})
	data, err := gproto.Marshal(&pb.Entry{Format: entryFormat(units), Gated: gated,
		Time: uint64(crdt.HLCFromMillis(time.Now().UnixMilli())), Units: units})
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

func setUnit(k, v string) *pb.Unit {
	return &pb.Unit{Commands: commandsToPB([]crdt.Command{cmd("SET", k, v)})}
}

func (x *incFixture) origin() (crdt.Origin, bool) {
	return x.f.rep.Keyspace().Origin(), x.f.rep.OriginFixed()
}

// TestFSMRefusesWritesUntilOriginFixed: in entries of this version
// (gated), every write unit, remote batch and chunk applied before the
// origin is fixed is answered TRYAGAIN and changes nothing; the
// incarnation unit fixes the origin (raised above incarnations the state
// holds), a second one is refused, a renewal moves it higher.
func TestFSMRefusesWritesUntilOriginFixed(t *testing.T) {
	x := newIncFixture(t)
	src := newRemoteSource(crdt.Origin{Region: 2, Incarnation: 1})
	b1 := src.batch(t, "SET", "r", "1")
	rs := x.apply(true, setUnit("a", "1"))
	if rs[0].Err != ErrOriginNotFixed || !ErrOriginNotFixed.Retryable() {
		t.Fatalf("write before the origin is fixed: %+v", rs[0])
	}
	rs = x.apply(true, &pb.Unit{Remote: [][]byte{b1}}, &pb.Unit{Chunk: &pb.TransferChunk{Id: 1, Data: []byte("x")}})
	if rs[0].Err != ErrOriginNotFixed || rs[1].Err != ErrOriginNotFixed {
		t.Fatalf("remote and chunk units before the origin is fixed: %+v", rs)
	}
	if len(x.f.rep.Keyspace().Version()) != 0 || x.f.rep.Log().Len() != 0 || exists(x.f, "a") {
		t.Fatal("a refused unit changed the state")
	}
	if _, staged := x.f.rep.Staged(0, 1); staged {
		t.Fatal("a refused chunk was staged")
	}

	// The incarnation unit, in the same entry as writes before and after
	// it: the first is refused, the second applies under the new origin.
	rs = x.apply(true, setUnit("a", "1"), &pb.Unit{Incarnation: 500}, setUnit("b", "1"))
	if rs[0].Err != ErrOriginNotFixed {
		t.Fatalf("write ahead of the incarnation unit: %+v", rs[0])
	}
	if rs[1].Err != nil || rs[1].Replies[0].Int != 500 {
		t.Fatalf("incarnation unit: %+v", rs[1])
	}
	if rs[2].Err != nil || string(rs[2].Replies[0].Str) != "OK" {
		t.Fatalf("write after the incarnation unit: %+v", rs[2])
	}
	if o, fixed := x.origin(); o != (crdt.Origin{Region: 1, Incarnation: 500}) || !fixed {
		t.Fatalf("origin %s fixed=%v", o, fixed)
	}
	recs := logRecords(x.f.rep)
	if len(recs) != 1 || recs[0].Origin != (crdt.Origin{Region: 1, Incarnation: 500}) || recs[0].FirstSeq != 1 {
		t.Fatalf("log after the fix: %+v", recs)
	}

	// Fixed: another fix is refused; a renewal asking for less goes above.
	rs = x.apply(true, &pb.Unit{Incarnation: 900})
	if len(rs[0].Replies) != 1 || !rs[0].Replies[0].IsError() {
		t.Fatalf("second fix: %+v", rs[0])
	}
	if o, _ := x.origin(); o.Incarnation != 500 {
		t.Fatalf("a refused fix moved the origin to %s", o)
	}
	rs = x.apply(true, &pb.Unit{Incarnation: 3, Renew: true})
	if rs[0].Err != nil || rs[0].Replies[0].Int != 501 {
		t.Fatalf("renewal asking for 3: %+v", rs[0])
	}
	// A renewal decided on a view the log has moved past changes nothing.
	rs = x.apply(true, &pb.Unit{Incarnation: 3, Renew: true, RenewFrom: 500})
	if rs[0].Err != nil || rs[0].Replies[0].Int != 501 {
		t.Fatalf("renewal from a left incarnation: %+v", rs[0])
	}
	if o, _ := x.origin(); o.Incarnation != 501 {
		t.Fatalf("a stale renewal moved the origin to %s", o)
	}
	if rs := x.apply(true, &pb.Unit{Remote: [][]byte{b1}}); ints(rs[0].Replies)[0] != int64(crdt.Merged) {
		t.Fatalf("remote batch once fixed: %+v", rs[0])
	}
	rs = x.apply(true, setUnit("c", "1"))
	recs = logRecords(x.f.rep)
	if last := recs[len(recs)-1]; rs[0].Err != nil || last.Origin != (crdt.Origin{Region: 1, Incarnation: 501}) || last.FirstSeq != 1 {
		t.Fatalf("write after the renewal: %+v, logged %s:%d", rs[0], last.Origin, last.FirstSeq)
	}
}

// TestFSMAppliesEntriesOfEarlierVersions: entries written before origins
// were fixed through the log (not gated) apply as they did, under the
// configured origin; the first incarnation unit then takes an incarnation
// above it. Snapshots of the previous versions restore as fixed exactly
// when they took writes of their own.
func TestFSMAppliesEntriesOfEarlierVersions(t *testing.T) {
	x := newIncFixture(t)
	if rs := x.apply(false, setUnit("a", "1")); rs[0].Err != nil {
		t.Fatalf("ungated write: %+v", rs[0])
	}
	if o, fixed := x.origin(); o != (crdt.Origin{Region: 1, Incarnation: 1}) || fixed {
		t.Fatalf("after an ungated write: %s fixed=%v", o, fixed)
	}
	rs := x.apply(true, &pb.Unit{Incarnation: 1})
	if rs[0].Err != nil || rs[0].Replies[0].Int != 2 {
		t.Fatalf("incarnation unit over a state holding incarnation 1: %+v", rs[0])
	}

	// Region snapshot format 1 (a keyspace).
	for _, wrote := range []bool{false, true} {
		ks := crdt.NewKeyspace(crdt.Origin{Region: 1, Incarnation: 4}, crdt.Options{})
		if wrote {
			ks.Apply(crdt.Stamp{Time: crdt.HLCFromMillis(time.Now().UnixMilli())}, []crdt.Command{cmd("SET", "k", "v")})
		}
		var buf bytes.Buffer
		magic := snapshotMagic
		magic[len(magic)-1] = snapshotV1
		buf.Write(magic[:])
		binary.Write(&buf, binary.BigEndian, uint64(7))
		buf.Write(ks.Snapshot())
		y := newIncFixture(t)
		if err := y.f.Restore(io.NopCloser(&buf)); err != nil {
			t.Fatal(err)
		}
		if o, fixed := y.origin(); fixed != wrote || o != ks.Origin() {
			t.Fatalf("format-1 snapshot (wrote %v): %s fixed=%v", wrote, o, fixed)
		}
	}
}

// TestIncarnationUnitFormat: an incarnation unit needs a format-2 entry
// and cannot share a unit with anything else.
func TestIncarnationUnitFormat(t *testing.T) {
	inc := &pb.Unit{Incarnation: 9}
	if entryFormat([]*pb.Unit{setUnit("a", "1"), inc}) != entryFormatV2 || entryFormat([]*pb.Unit{{Renew: true}}) != entryFormatV2 {
		t.Fatal("incarnation unit not written as format 2")
	}
	for name, e := range map[string]*pb.Entry{
		"format 1":            {Format: entryFormatV1, Units: []*pb.Unit{inc}},
		"with commands":       {Format: entryFormatV2, Units: []*pb.Unit{{Incarnation: 9, Commands: setUnit("a", "1").Commands}}},
		"with remote batches": {Format: entryFormatV2, Units: []*pb.Unit{{Renew: true, Remote: [][]byte{{1}}}}},
	} {
		data, _ := gproto.Marshal(e)
		if _, err := decodeEntry(data); err == nil {
			t.Errorf("%s: decoded", name)
		}
	}
}

func TestClockIncarnation(t *testing.T) {
	for _, c := range []struct {
		t    time.Time
		want uint32
	}{
		{incarnationEpoch.Add(-time.Hour), 1},
		{incarnationEpoch, 1},
		{incarnationEpoch.Add(1500 * time.Millisecond), 1},
		{incarnationEpoch.Add(86400 * time.Second), 86400},
		{incarnationEpoch.Add(200 * 365 * 24 * time.Hour), math.MaxUint32},
	} {
		if got := clockIncarnation(c.t); got != c.want {
			t.Errorf("clockIncarnation(%v) = %d, want %d", c.t, got, c.want)
		}
	}
}
