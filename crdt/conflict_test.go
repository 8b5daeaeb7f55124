package crdt

import "testing"

func (g *replicaRig) writeDB(i, db int, args ...string) Reply {
	a := make([][]byte, len(args))
	for j, s := range args {
		a[j] = []byte(s)
	}
	return g.reps[i].Apply(g.clk[i].stamp(), []Command{{DB: db, Args: a}})[0]
}

func (g *replicaRig) exchange(t *testing.T) {
	t.Helper()
	g.ship(t, 0, 1)
	g.ship(t, 1, 0)
}

func (g *replicaRig) stats(i int) Stats { return g.reps[i].Keyspace().Stats }

func TestLWWConflictCountedOnceOnEachSide(t *testing.T) {
	for _, tc := range []struct {
		name  string
		write func(g *replicaRig, i int)
	}{
		{"string", func(g *replicaRig, i int) { g.write(i, "SET", "k", string(rune('a'+i))) }},
		{"hash field", func(g *replicaRig, i int) { g.write(i, "HSET", "h", "f", string(rune('a'+i))) }},
		{"zset score", func(g *replicaRig, i int) { g.write(i, "ZADD", "z", string(rune('1'+i)), "m") }},
		{"ttl", func(g *replicaRig, i int) { g.write(i, "EXPIRE", "k", string(rune('5'+i))+"00") }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := newReplicaRig(2, LogLimits{})
			if tc.name == "ttl" {
				g.write(0, "SET", "k", "v")
				g.ship(t, 0, 1)
			}
			base := [2]uint64{g.stats(0).LWWConflicts, g.stats(1).LWWConflicts}
			tc.write(g, 0)
			tc.write(g, 1) // neither saw the other's
			g.exchange(t)
			for i := 0; i < 2; i++ {
				if got := g.stats(i).LWWConflicts - base[i]; got != 1 {
					t.Errorf("replica %d: %d LWW conflicts, want 1", i, got)
				}
			}
			if g.reps[0].Keyspace().Digest() != g.reps[1].Keyspace().Digest() {
				t.Fatal("replicas differ after exchanging everything")
			}
			// Sequential writes from here on: each saw the one before.
			for r := 0; r < 4; r++ {
				i := r % 2
				tc.write(g, i)
				g.ship(t, i, 1-i)
			}
			g.exchange(t)
			for i := 0; i < 2; i++ {
				if got := g.stats(i).LWWConflicts - base[i]; got != 1 {
					t.Errorf("replica %d after sequential writes: %d LWW conflicts, want still 1", i, got)
				}
			}
		})
	}
}

func TestSequentialWritesCountNoConflict(t *testing.T) {
	g := newReplicaRig(2, LogLimits{})
	for r := 0; r < 6; r++ {
		i := r % 2
		g.write(i, "SET", "k", "v")
		g.write(i, "HSET", "h", "f", "v")
		g.write(i, "ZADD", "z", "1", "m")
		g.write(i, "SADD", "s", "x")
		g.write(i, "SREM", "s", "x")
		g.write(i, "DEL", "h")
		g.ship(t, i, 1-i)
	}
	for i := 0; i < 2; i++ {
		if s := g.stats(i); s.LWWConflicts != 0 || s.AddWinsConflicts != 0 {
			t.Errorf("replica %d: %+v, want no conflicts", i, s)
		}
	}
}

func TestAddWinsConflictCounted(t *testing.T) {
	g := newReplicaRig(2, LogLimits{})
	g.write(0, "SADD", "s", "x")
	g.write(0, "SET", "k", "v")
	g.ship(t, 0, 1)
	g.write(1, "SREM", "s", "x") // saw the first add only
	g.write(1, "DEL", "k")
	g.write(0, "SADD", "s", "x") // concurrent re-add
	g.write(0, "APPEND", "k", "w")
	g.ship(t, 1, 0) // the removes reach replica 0 after its adds: saved
	if got := g.stats(0).AddWinsConflicts; got != 2 {
		t.Fatalf("replica 0: %d add-wins conflicts, want 2 (SREM and DEL met unobserved adds)", got)
	}
	g.ship(t, 0, 1)
	if g.reps[0].Keyspace().Digest() != g.reps[1].Keyspace().Digest() {
		t.Fatal("replicas differ (stats must not affect state)")
	}
	if r := g.write(1, "SISMEMBER", "s", "x"); r.Int != 1 {
		t.Fatalf("add-wins lost the re-added member: %s", show(r))
	}
}

func TestDBDigest(t *testing.T) {
	g := newReplicaRig(2, LogLimits{})
	g.writeDB(0, 0, "SET", "a", "1")
	g.writeDB(1, 3, "HSET", "h", "f", "v")
	g.writeDB(1, 0, "INCRBY", "n", "5")
	g.writeDB(0, 3, "SADD", "s", "x")
	g.exchange(t)
	a, b := g.reps[0].Keyspace(), g.reps[1].Keyspace()
	for db := 0; db < NumDBs; db++ {
		if a.DBDigest(db) != b.DBDigest(db) {
			t.Fatalf("db %d: digests differ after quiescence", db)
		}
	}
	if a.DBDigest(0) == a.DBDigest(3) || a.DBDigest(3) == a.DBDigest(5) {
		t.Fatal("different databases' content gave equal digests")
	}
	before := a.DBDigest(5)           // empty
	g.writeDB(0, 3, "SADD", "s", "y") // only replica 0, only db 3
	for db := 0; db < NumDBs; db++ {
		if differ := a.DBDigest(db) != b.DBDigest(db); differ != (db == 3) {
			t.Fatalf("db %d: differ=%v after a write to db 3 on one side", db, differ)
		}
	}
	if a.DBDigest(5) != before || !a.DBEmpty(5) || a.DBEmpty(3) {
		t.Fatal("empty db changed")
	}
	g.exchange(t)
	if a.DBDigest(3) != b.DBDigest(3) {
		t.Fatal("db 3 differs after the write was shipped")
	}
}
