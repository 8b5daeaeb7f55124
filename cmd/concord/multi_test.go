package main

import (
	"context"
	"errors"
	"strconv"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"concord/crdt"
)

// TestMultiRegionTransactions runs MULTI/EXEC and WATCH on real regions of
// three nodes: a WATCH on a follower sees the version its view holds after
// the read fence, EXEC is checked in apply wherever it is forwarded, a
// write by another node of the region or one merged from another region
// aborts it, and a transaction's writes reach the other region together.
func TestMultiRegionTransactions(t *testing.T) {
	if testing.Short() {
		t.Skip("starts two regions of three nodes")
	}
	d := newDeployment(t, mrOptions{regions: 2, nodes: 3})
	ctx := context.Background()
	follower := d.follower(0).client
	leader := d.leader(0).client
	d.mustDo(0, "SET", "k", "0")

	// Untouched: the transaction runs, from a follower's connection.
	err := follower.Watch(ctx, func(tx *redis.Tx) error {
		v, err := tx.Get(ctx, "k").Result()
		if err != nil {
			return err
		}
		_, err = tx.TxPipelined(ctx, func(p redis.Pipeliner) error {
			p.Set(ctx, "k", v+"1", 0)
			p.Set(ctx, "k2", "a", 0)
			return nil
		})
		return err
	}, "k")
	if err != nil {
		t.Fatalf("untouched WATCH on a follower: %v", err)
	}
	d.waitValue(1, "k", "01", 20*time.Second)
	if v, err := mrDo(d.client(1), "GET", "k2"); err != nil || v != "a" {
		t.Fatalf("region 1 got k without k2 of the same transaction: %v %v", v, err)
	}

	// Touched by another node of the region between WATCH and EXEC.
	err = follower.Watch(ctx, func(tx *redis.Tx) error {
		if err := leader.Set(ctx, "k", "other", 0).Err(); err != nil {
			return err
		}
		_, err := tx.TxPipelined(ctx, func(p redis.Pipeliner) error {
			p.Set(ctx, "k", "mine", 0)
			return nil
		})
		return err
	}, "k")
	if !errors.Is(err, redis.TxFailedErr) {
		t.Fatalf("WATCH touched by the leader's client: err = %v, want TxFailedErr", err)
	}
	if v := d.mustDo(0, "GET", "k"); v != "other" {
		t.Fatalf("aborted EXEC wrote: k = %v", v)
	}

	// Touched by a write merged from the other region.
	err = leader.Watch(ctx, func(tx *redis.Tx) error {
		d.mustDo(1, "SET", "k", "remote")
		d.waitValue(0, "k", "remote", 20*time.Second)
		_, err := tx.TxPipelined(ctx, func(p redis.Pipeliner) error {
			p.Set(ctx, "k", "mine", 0)
			return nil
		})
		return err
	}, "k")
	if !errors.Is(err, redis.TxFailedErr) {
		t.Fatalf("WATCH touched by a merged write: err = %v, want TxFailedErr", err)
	}

	// A watched absent key created and deleted in the other region.
	err = follower.Watch(ctx, func(tx *redis.Tx) error {
		d.mustDo(1, "SET", "fresh", "x")
		d.waitValue(0, "fresh", "x", 20*time.Second)
		d.mustDo(1, "DEL", "fresh")
		for deadline := time.Now().Add(20 * time.Second); ; {
			if n, _ := mrDo(d.client(0), "EXISTS", "fresh"); n == int64(0) {
				break
			}
			if time.Now().After(deadline) {
				t.Fatal("DEL never reached region 0")
			}
			time.Sleep(20 * time.Millisecond)
		}
		_, err := tx.TxPipelined(ctx, func(p redis.Pipeliner) error {
			p.Set(ctx, "fresh", "mine", 0)
			return nil
		})
		return err
	}, "fresh")
	if !errors.Is(err, redis.TxFailedErr) {
		t.Fatalf("absent key created and deleted remotely: err = %v, want TxFailedErr", err)
	}

	// Every node of region 0 holds the same versions: the same WATCH
	// outcome from each node's connection.
	for _, n := range d.regions[0].nodes {
		err := n.client.Watch(ctx, func(tx *redis.Tx) error {
			_, err := tx.TxPipelined(ctx, func(p redis.Pipeliner) error {
				p.Incr(ctx, "count")
				return nil
			})
			return err
		}, "k", "fresh", "count")
		if err != nil {
			t.Fatalf("%s: untouched WATCH failed: %v", n, err)
		}
	}
	if v := d.mustDo(0, "GET", "count"); v != "3" {
		t.Fatalf("count = %v, want 3", v)
	}
	d.waitConverged(30 * time.Second)
}

// TestMultiRegionWatchAfterRestore: a follower restarted from a Raft
// snapshot plus the log after it holds the same key versions as its peers
// (the counter and the removal records are in the snapshot), so a WATCH
// on it means the same to the EXEC the region applies.
func TestMultiRegionWatchAfterRestore(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a region of three nodes")
	}
	d := newDeployment(t, mrOptions{regions: 1, nodes: 3})
	ctx := context.Background()
	f := d.follower(0)
	for i := 0; i < 50; i++ {
		d.mustDo(0, "SET", "k"+strconv.Itoa(i), "v")
		if i%3 == 0 {
			d.mustDo(0, "DEL", "k"+strconv.Itoa(i))
		}
	}
	if _, err := mrDo(f.client, "REGION", "SNAPSHOT"); err != nil {
		t.Fatal(err)
	}
	d.mustDo(0, "SET", "k0", "again") // in the log after the snapshot
	d.mustDo(0, "DEL", "k1")
	f.stop(false)
	d.restartNode(f)

	// Every node ends with the same counter and the same versions.
	deadline := time.Now().Add(20 * time.Second)
	for {
		var mods []uint64
		var snaps []string
		for _, n := range d.regions[0].nodes {
			rn, _ := n.running()
			if rn == nil {
				t.Fatalf("%s not running", n)
			}
			rn.Read(func(ks *crdt.Keyspace) {
				mods = append(mods, ks.ModCount())
				snaps = append(snaps, string(ks.Snapshot()))
			})
		}
		if mods[0] == mods[1] && mods[1] == mods[2] && snaps[0] == snaps[1] && snaps[1] == snaps[2] {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("nodes disagree on key versions after a restart from a snapshot: counters %v", mods)
		}
		time.Sleep(20 * time.Millisecond)
	}

	// A WATCH on the restarted follower: k3 was deleted before the
	// snapshot, k1 after it; neither changes again, k0 does.
	try := func(touch string, keys ...string) error {
		return f.client.Watch(ctx, func(tx *redis.Tx) error {
			if touch != "" {
				d.mustDo(0, "SET", touch, "x")
				d.mustDo(0, "DEL", touch)
			}
			_, err := tx.TxPipelined(ctx, func(p redis.Pipeliner) error {
				p.Incr(ctx, "n")
				return nil
			})
			return err
		}, keys...)
	}
	if err := try("", "k0", "k1", "k3"); err != nil {
		t.Fatalf("untouched keys on the restarted follower: %v", err)
	}
	if err := try("other", "k1", "k3"); err != nil {
		t.Fatalf("another key touched: %v", err)
	}
	if err := try("k3", "k1", "k3"); !errors.Is(err, redis.TxFailedErr) {
		t.Fatalf("watched absent key created and deleted: err = %v, want TxFailedErr", err)
	}
}
