package main

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// TestXReadBlockRegions: clients blocked in XREAD BLOCK on "$" in region 1,
// one on its leader and one on a follower, are both woken by an XADD made
// in region 0, once the entry is merged there; the wake-up is a local
// re-read, so no write is proposed for them.
func TestXReadBlockRegions(t *testing.T) {
	d := newDeployment(t, mrOptions{regions: 2, nodes: 3})
	d.waitConverged(30 * time.Second)
	ctx := context.Background()

	src := d.leader(0)
	dst := d.leader(1)
	follower := d.follower(1)
	type read struct {
		s   []redis.XStream
		err error
	}
	block := func(c *redis.Client) <-chan read {
		ch := make(chan read, 1)
		go func() {
			s, err := c.XRead(ctx, &redis.XReadArgs{Streams: []string{"xs", "$"}, Block: 0}).Result()
			ch <- read{s, err}
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
	lch, fch := block(dst.client), block(follower.client)
	waitBlocked(dst, 1)
	waitBlocked(follower, 1)
	id, err := src.client.XAdd(ctx, &redis.XAddArgs{Stream: "xs", Values: []string{"f", "v"}}).Result()
	if err != nil {
		t.Fatal(err)
	}
	for _, ch := range []<-chan read{lch, fch} {
		select {
		case r := <-ch:
			if r.err != nil || len(r.s) != 1 || r.s[0].Stream != "xs" || len(r.s[0].Messages) != 1 ||
				r.s[0].Messages[0].ID != id || r.s[0].Messages[0].Values["f"] != "v" {
				t.Fatalf("XREAD = %+v, %v; want xs %s", r.s, r.err, id)
			}
		case <-time.After(20 * time.Second):
			t.Fatalf("XREAD BLOCK not woken\n%s", d.describe())
		}
	}
	waitBlocked(dst, 0)
	waitBlocked(follower, 0)
	for _, n := range []*mrNode{dst, follower} {
		st, _ := n.client.Info(ctx, "stats").Result()
		if !strings.Contains(st, "blocked_pops_served:0\r\n") {
			t.Errorf("%s: XREAD counted as pops:\n%s", n, st)
		}
	}
}
