package main

// Garbage collection of counter increments and incarnation renewal across
// real regions (the multi-region harness of multiregion_test.go).

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"concord/crdt"
)

// infoInt reads an integer field of INFO replication from region r's
// leader over RESP (so the binary's wiring, replicatedNode included, is
// what answers).
func (d *mrDeployment) infoInt(r int, field string) int64 {
	d.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	info, err := d.leader(r).client.Info(ctx, "replication").Result()
	if err != nil {
		d.t.Fatalf("region %s: INFO replication: %v", d.name(r), err)
	}
	for _, line := range strings.Split(info, "\r\n") {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				d.t.Fatalf("region %s: %s:%q", d.name(r), field, v)
			}
			return n
		}
	}
	d.t.Fatalf("region %s: INFO replication has no %s:\n%s", d.name(r), field, info)
	return 0
}

// waitBacklogs waits until every running region's leader reports a GC
// backlog of 0.
func (d *mrDeployment) waitBacklogs(timeout time.Duration) {
	d.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		var left []string
		for r, reg := range d.regions {
			if reg.up() {
				if b := d.infoInt(r, "concord_gc_backlog"); b != 0 {
					left = append(left, fmt.Sprintf("%s=%d", reg.name, b))
				}
			}
		}
		if len(left) == 0 {
			return
		}
		if time.Now().After(deadline) {
			d.t.Fatalf("GC backlog not 0 after %v: %v\n%s", timeout, left, d.describe())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestMultiRegionGarbageCollection: increments written in every region
// while the regions are cut from each other stay unfolded (each region's
// backlog > 0: no peer has reported them); once the links heal, every
// region folds them (backlog 0, concord_gc_folded > 0) and the counters
// are the exact sums everywhere, digests equal. A region that is down
// holds collection back in the others (its report is missing) until it
// returns; then everything folds and converges again, sums exact.
func TestMultiRegionGarbageCollection(t *testing.T) {
	d := newDeployment(t, mrOptions{regions: 3, nodes: 1, gcInterval: 100 * time.Millisecond})
	want := map[string]int64{}
	incr := func(r int, key string, by int64) {
		d.mustDo(r, "INCRBY", key, by)
		want[key] += by
	}
	hincr := func(r int, field string, by int64) {
		d.mustDo(r, "HINCRBY", "gc:h", field, by)
		want["gc:h/"+field] += by
	}
	check := func(when string) {
		t.Helper()
		for r := range d.regions {
			if !d.regions[r].up() {
				continue
			}
			for key, w := range want {
				var got int64
				if k, f, ok := strings.Cut(key, "/"); ok {
					v, err := mrDo(d.client(r), "HGET", k, f)
					if err != nil {
						t.Fatalf("%s: HGET %s %s: %v", d.name(r), k, f, err)
					}
					got, _ = strconv.ParseInt(v.(string), 10, 64)
				} else {
					got = getInt(t, d.client(r), key)
				}
				if got != w {
					t.Errorf("%s: region %s: %s = %d, want %d", when, d.name(r), key, got, w)
				}
			}
		}
	}

	for a := range d.regions {
		for b := range d.regions {
			if a != b {
				d.cut(a, b)
			}
		}
	}
	for i := 1; i <= 20; i++ {
		for r := range d.regions {
			incr(r, "gc:c", int64(i*(r+1)))
			incr(r, fmt.Sprintf("gc:c%d", i%4), 1)
			hincr(r, fmt.Sprintf("f%d", i%3), int64(r+1))
		}
	}
	for r := range d.regions {
		if b := d.infoInt(r, "concord_gc_backlog"); b == 0 {
			t.Fatalf("region %s: backlog 0 with every peer cut off", d.name(r))
		}
	}
	d.healAll()
	d.waitConverged(60 * time.Second)
	d.waitBacklogs(60 * time.Second)
	d.waitConverged(30 * time.Second) // the fold ops, shipped, applied everywhere
	var folded int64
	for r := range d.regions {
		folded += d.infoInt(r, "concord_gc_folded")
	}
	if folded == 0 {
		t.Fatalf("backlog 0 with nothing folded\n%s", d.describe())
	}
	check("after collection")

	// A region that is down holds collection back.
	const c = 2
	d.stopRegion(c)
	for i := 0; i < 10; i++ {
		incr(0, "gc:c", 7)
		incr(1, "gc:c", 11)
		hincr(1, "f0", 1)
	}
	foldedBefore := d.infoInt(0, "concord_gc_folded") + d.infoInt(1, "concord_gc_folded")
	// 30 collection intervals: collection runs, but nothing C has not
	// reported is stable.
	for end := time.Now().Add(3 * time.Second); time.Now().Before(end); {
		for _, r := range []int{0, 1} {
			if b := d.infoInt(r, "concord_gc_backlog"); b == 0 {
				t.Fatalf("region %s: backlog 0 while region %s is down\n%s", d.name(r), d.name(c), d.describe())
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	if f := d.infoInt(0, "concord_gc_folded") + d.infoInt(1, "concord_gc_folded"); f != foldedBefore {
		t.Errorf("items folded while region %s was down: %d -> %d", d.name(c), foldedBefore, f)
	}
	check("with a region down")
	d.startRegion(c)
	d.waitConverged(60 * time.Second)
	d.waitBacklogs(60 * time.Second)
	d.waitConverged(30 * time.Second)
	check("after the region returned")
}

// TestMultiRegionRestoredRegionRenews: a region restored from an old copy
// of its data dir has lost writes a peer holds under its origin. Once it
// reconnects, its leader notices (the peer's vector is ahead for its own
// origin) and takes a new incarnation; its new writes then reach the peer
// (under the old origin they would be skipped as duplicates), the writes
// it lost come back from the peer, and nothing is lost or doubled.
func TestMultiRegionRestoredRegionRenews(t *testing.T) {
	d := newDeployment(t, mrOptions{regions: 2, nodes: 1, gcInterval: 100 * time.Millisecond})
	const a, b = 0, 1
	for i := 0; i < 5; i++ {
		d.mustDo(a, "INCRBY", "rr:c", 1)
		d.mustDo(a, "SADD", "rr:s", fmt.Sprintf("old%d", i))
	}
	d.waitConverged(30 * time.Second)
	na := d.regions[a].nodes[0]
	backup := t.TempDir()
	d.stopRegion(a)
	if err := os.CopyFS(backup, os.DirFS(na.dir)); err != nil {
		t.Fatal(err)
	}
	d.startRegion(a)
	rn, _ := na.running()
	before := rn.Origin()
	for i := 5; i < 10; i++ { // lost by the restore, held by B
		d.mustDo(a, "INCRBY", "rr:c", 1)
		d.mustDo(a, "SADD", "rr:s", fmt.Sprintf("old%d", i))
	}
	// B holds every write A made (only writes that never left A are lost
	// with a restore).
	d.waitConverged(30 * time.Second)
	var lastOld uint64 // what A issued under its origin before the restore (fold ops included)
	rn, _ = na.running()
	rn.ReplView(func(r *crdt.Replica) { lastOld = r.Keyspace().Version().Get(before) })
	d.stopRegion(a)
	if err := os.RemoveAll(na.dir); err != nil {
		t.Fatal(err)
	}
	if err := os.CopyFS(na.dir, os.DirFS(backup)); err != nil {
		t.Fatal(err)
	}
	d.event("restored %s from the copy", na)
	d.startRegion(a)
	deadline := time.Now().Add(30 * time.Second)
	for {
		if rn, _ = na.running(); rn.Origin().Incarnation > before.Incarnation {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("origin still %v after the restore\n%s", rn.Origin(), d.describe())
		}
		time.Sleep(20 * time.Millisecond)
	}
	after := rn.Origin()
	_, mgr := na.running()
	if p := mgr.Peers(); len(p) != 1 || p[0].OwnAhead == 0 {
		t.Fatalf("renewed without the shipper seeing the peer ahead: %+v", p)
	}
	t.Logf("origin renewed %v -> %v", before, after)
	for i := 0; i < 3; i++ {
		d.mustDo(a, "INCRBY", "rr:c", 1)
		d.mustDo(a, "SADD", "rr:s", fmt.Sprintf("new%d", i))
	}
	d.waitConverged(60 * time.Second)
	d.waitBacklogs(60 * time.Second)
	for r := range d.regions {
		if got := getInt(t, d.client(r), "rr:c"); got != 13 {
			t.Errorf("region %s: rr:c = %d, want 13", d.name(r), got)
		}
		if got := smembers(t, d.client(r), "rr:s"); len(got) != 13 || !got["old9"] || !got["new2"] {
			t.Errorf("region %s: rr:s = %v, want old0..old9 and new0..new2", d.name(r), got)
		}
	}
	rnB, _ := d.leader(b).running()
	var vvB crdt.VersionVector
	rnB.ReplView(func(r *crdt.Replica) { vvB = r.Keyspace().Version() })
	if lastOld < 20 || vvB.Get(before) < lastOld || vvB.Get(after) == 0 {
		t.Errorf("B's vector %v: want the old origin at %d or above (every write A issued under it, %d before the restore) and the new one present", vvB, lastOld, lastOld)
	}
}
