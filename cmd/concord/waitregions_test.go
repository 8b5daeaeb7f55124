package main

import (
	"context"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// WAITREGIONS over real regions: the count is what the peers' leaders
// acknowledged, so a write it reports applied in a region is readable
// there at once.

// waitRegions runs WAITREGIONS on conn (the connection that wrote).
func waitRegions(t *testing.T, conn *redis.Conn, n, timeoutMs int) int64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	v, err := conn.Do(ctx, "WAITREGIONS", n, timeoutMs).Int64()
	if err != nil {
		t.Fatalf("WAITREGIONS %d %d: %v", n, timeoutMs, err)
	}
	return v
}

func mustConn(t *testing.T, c *redis.Client) *redis.Conn {
	conn := c.Conn()
	t.Cleanup(func() { conn.Close() })
	return conn
}

func connSet(t *testing.T, conn *redis.Conn, key, val string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := conn.Set(ctx, key, val, 0).Err(); err != nil {
		t.Fatalf("SET %s: %v", key, err)
	}
}

// readNow checks region r holds key=want on its first read: no polling.
func (d *mrDeployment) readNow(r int, key, want string) {
	d.t.Helper()
	got, err := mrDo(d.client(r), "GET", key)
	if err != nil || got != want {
		d.t.Fatalf("region %s right after WAITREGIONS: GET %s = %v (%v), want %q\n%s", d.name(r), key, got, err, want, d.describe())
	}
}

func TestWaitRegions(t *testing.T) {
	d := newDeployment(t, mrOptions{regions: 3, nodes: 1})
	const a, b, c = 0, 1, 2
	d.waitConverged(30 * time.Second)
	conn := mustConn(t, d.client(a))

	for i, v := range []string{"v1", "v2", "v3"} {
		connSet(t, conn, "wr:k", v)
		if got := waitRegions(t, conn, 2, 0); got != 2 {
			t.Fatalf("write %d: WAITREGIONS 2 0 = %d, want 2", i, got)
		}
		d.readNow(b, "wr:k", v)
		d.readNow(c, "wr:k", v)
	}

	// C cut off: only B can apply the next write.
	d.isolate(c)
	connSet(t, conn, "wr:k", "cut")
	start := time.Now()
	if got := waitRegions(t, conn, 2, 1000); got != 1 {
		t.Fatalf("C cut off: WAITREGIONS 2 1000 = %d, want 1", got)
	}
	if el := time.Since(start); el < time.Second {
		t.Fatalf("WAITREGIONS 2 1000 returned after %v, before its timeout with one region missing", el)
	}
	d.readNow(b, "wr:k", "cut")
	if got := waitRegions(t, conn, 1, 0); got != 1 {
		t.Fatalf("C cut off: WAITREGIONS 1 0 = %d, want 1", got)
	}

	// Healed: the same write reaches C and the wait completes.
	d.healAll()
	if got := waitRegions(t, conn, 2, 0); got != 2 {
		t.Fatalf("healed: WAITREGIONS 2 0 = %d, want 2", got)
	}
	d.readNow(c, "wr:k", "cut")

	// A connection that wrote nothing waits for everything region A had
	// applied, B's writes merged into A included.
	d.mustDo(b, "SET", "wr:fromb", "b")
	d.waitValue(a, "wr:fromb", "b", 30*time.Second)
	fresh := mustConn(t, d.client(a))
	if got := waitRegions(t, fresh, 2, 0); got != 2 {
		t.Fatalf("fresh connection: WAITREGIONS 2 0 = %d, want 2", got)
	}
	d.readNow(c, "wr:fromb", "b")
}

// TestWaitRegionsFromFollower: a follower does not ship, it asks its
// leader what the peers acknowledged.
func TestWaitRegionsFromFollower(t *testing.T) {
	d := newDeployment(t, mrOptions{regions: 3, nodes: 3})
	const a, b, c = 0, 1, 2
	d.waitConverged(60 * time.Second)
	follower := d.follower(a)
	conn := mustConn(t, follower.client)
	connSet(t, conn, "wrf:k", "from-follower")
	if got := waitRegions(t, conn, 2, 0); got != 2 {
		t.Fatalf("follower: WAITREGIONS 2 0 = %d, want 2", got)
	}
	d.readNow(b, "wrf:k", "from-follower")
	d.readNow(c, "wrf:k", "from-follower")

	d.isolate(b)
	connSet(t, conn, "wrf:k", "b-cut")
	if got := waitRegions(t, conn, 2, 2000); got != 1 {
		t.Fatalf("follower, B cut off: WAITREGIONS 2 2000 = %d, want 1", got)
	}
	d.readNow(c, "wrf:k", "b-cut")
}
