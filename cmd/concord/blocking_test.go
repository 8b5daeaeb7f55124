package main

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// TestBlockingRegions: a client blocked on a follower of a 3-node region is
// woken by a write made through the leader (the follower's apply signals
// it and the follower proposes the pop), and a client blocked in another
// region is woken by the merged remote effect of a write made in the
// first. Each pop is an ordinary replicated write: afterwards every node
// of both regions agrees the key is gone.
func TestBlockingRegions(t *testing.T) {
	d := newDeployment(t, mrOptions{regions: 2, nodes: 3})
	d.waitConverged(30 * time.Second)
	ctx := context.Background()

	leader := d.leader(0)
	follower := d.follower(0)
	type popped struct {
		z   *redis.ZWithKey
		err error
	}
	block := func(c *redis.Client, key string) <-chan popped {
		ch := make(chan popped, 1)
		go func() {
			z, err := c.BZPopMin(ctx, 0, key).Result()
			ch <- popped{z, err}
		}()
		return ch
	}
	waitBlocked := func(n *mrNode, want int) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for {
			info, _ := n.client.Info(ctx, "clients").Result()
			if strings.Contains(info, "blocked_clients:"+strconv.Itoa(want)+"\r\n") {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: INFO clients:\n%s", n, info)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	expect := func(ch <-chan popped, key, member string) {
		t.Helper()
		select {
		case p := <-ch:
			if p.err != nil || p.z.Key != key || p.z.Member != member {
				t.Fatalf("BZPOPMIN = %+v, %v; want %s %s", p.z, p.err, key, member)
			}
		case <-time.After(20 * time.Second):
			t.Fatalf("BZPOPMIN %s not woken\n%s", key, d.describe())
		}
	}

	// Follower, woken through the leader.
	fch := block(follower.client, "bq")
	waitBlocked(follower, 1)
	if err := leader.client.ZAdd(ctx, "bq", redis.Z{Score: 1, Member: "f"}).Err(); err != nil {
		t.Fatal(err)
	}
	expect(fch, "bq", "f")
	waitBlocked(follower, 0)

	// Region 1, woken by region 0's write merged there.
	other := d.leader(1)
	rch := block(other.client, "rq")
	waitBlocked(other, 1)
	if err := leader.client.ZAdd(ctx, "rq", redis.Z{Score: 2, Member: "r"}).Err(); err != nil {
		t.Fatal(err)
	}
	expect(rch, "rq", "r")

	d.waitConverged(30 * time.Second)
	for r := range d.regions {
		for _, n := range d.regions[r].nodes {
			// A slow machine (-race) may hold an election meanwhile: a
			// TRYAGAIN read is retried.
			deadline := time.Now().Add(20 * time.Second)
			e, err := n.client.Exists(ctx, "bq", "rq").Result()
			for err != nil && strings.HasPrefix(err.Error(), "TRYAGAIN") && time.Now().Before(deadline) {
				time.Sleep(50 * time.Millisecond)
				e, err = n.client.Exists(ctx, "bq", "rq").Result()
			}
			if err != nil || e != 0 {
				t.Errorf("%s: EXISTS bq rq = %d, %v after the pops", n, e, err)
			}
		}
	}
}
