package crdt

import (
	"errors"
	"fmt"
	"testing"
)

func bargs(args ...string) [][]byte {
	a := make([][]byte, len(args))
	for i, s := range args {
		a[i] = []byte(s)
	}
	return a
}

// execGuarded applies cmds as one unit behind a guard for ws, as EXEC does,
// and reports whether the guard failed. An aborted unit must produce no
// batch and replies for nothing but the guard.
func execGuarded(t *testing.T, ks *Keyspace, clk *testClock, ws []Watch, cmds ...[]string) (aborted bool, replies []Reply) {
	t.Helper()
	unit := []Command{GuardCommand(ws)}
	for _, c := range cmds {
		unit = append(unit, Command{Args: bargs(c...)})
	}
	rs, b := ks.Apply(clk.stamp(), unit)
	if GuardFailed(rs[0]) {
		if b != nil {
			t.Fatalf("aborted unit produced a batch of %d ops", len(b.Ops))
		}
		for _, r := range rs[1:] {
			if r.Kind != 0 || r.Str != nil || r.Elems != nil {
				t.Fatalf("aborted unit ran a command: %s", show(r))
			}
		}
		return true, nil
	}
	return false, rs[1:]
}

func watch(ks *Keyspace, clk *testClock, keys ...string) []Watch {
	var ws []Watch
	for _, k := range keys {
		ws = append(ws, ks.WatchKey(0, []byte(k), clk.ms))
	}
	return ws
}

// TestWatchRedisRules checks the guard against what Redis 7.0 does for each
// kind of change between WATCH and EXEC (checked with redis-server 7.0.15).
func TestWatchRedisRules(t *testing.T) {
	type tc struct {
		name   string
		setup  [][]string
		key    string
		middle [][]string
		abort  bool
	}
	s := func(a ...string) []string { return a }
	cases := []tc{
		{"untouched", [][]string{s("SET", "k", "v")}, "k", nil, false},
		{"overwrite", [][]string{s("SET", "k", "v")}, "k", [][]string{s("SET", "k", "v")}, true},
		{"other key", [][]string{s("SET", "k", "v")}, "k", [][]string{s("SET", "j", "v"), s("DEL", "j")}, false},
		{"read only", [][]string{s("SET", "k", "v")}, "k", [][]string{s("GET", "k"), s("EXISTS", "k")}, false},
		{"deleted", [][]string{s("SET", "k", "v")}, "k", [][]string{s("DEL", "k")}, true},
		{"absent created", nil, "k", [][]string{s("SET", "k", "v")}, true},
		{"absent created and deleted", nil, "k", [][]string{s("SET", "k", "v"), s("DEL", "k")}, true},
		{"absent, DEL of it", nil, "k", [][]string{s("DEL", "k")}, false},
		{"absent, FLUSHALL", [][]string{s("SET", "j", "v")}, "k", [][]string{s("FLUSHALL")}, false},
		{"existing, FLUSHALL", [][]string{s("SET", "k", "v")}, "k", [][]string{s("FLUSHALL")}, true},
		{"existing, FLUSHDB", [][]string{s("SET", "k", "v")}, "k", [][]string{s("FLUSHDB")}, true},
		{"SADD existing member", [][]string{s("SADD", "k", "a")}, "k", [][]string{s("SADD", "k", "a")}, false},
		{"SADD new member", [][]string{s("SADD", "k", "a")}, "k", [][]string{s("SADD", "k", "a", "b")}, true},
		{"SMOVE to a set that has the member", [][]string{s("SADD", "j", "a"), s("SADD", "k", "a")}, "k", [][]string{s("SMOVE", "j", "k", "a")}, false},
		{"SMOVE to a set without it", [][]string{s("SADD", "j", "a"), s("SADD", "k", "b")}, "k", [][]string{s("SMOVE", "j", "k", "a")}, true},
		{"SMOVE from", [][]string{s("SADD", "k", "a", "b")}, "k", [][]string{s("SMOVE", "k", "j", "a")}, true},
		{"SREM missing member", [][]string{s("SADD", "k", "a")}, "k", [][]string{s("SREM", "k", "b")}, false},
		{"SREM last member", [][]string{s("SADD", "k", "a")}, "k", [][]string{s("SREM", "k", "a")}, true},
		{"ZADD same score", [][]string{s("ZADD", "k", "1", "a")}, "k", [][]string{s("ZADD", "k", "1", "a"), s("ZINCRBY", "k", "0", "a")}, false},
		{"ZADD new score", [][]string{s("ZADD", "k", "1", "a")}, "k", [][]string{s("ZADD", "k", "2", "a")}, true},
		{"HSET same value", [][]string{s("HSET", "k", "f", "v")}, "k", [][]string{s("HSET", "k", "f", "v")}, true},
		{"EXPIRE", [][]string{s("SET", "k", "v")}, "k", [][]string{s("EXPIRE", "k", "100")}, true},
		{"PERSIST without TTL", [][]string{s("SET", "k", "v")}, "k", [][]string{s("PERSIST", "k")}, false},
		{"RENAME away", [][]string{s("SET", "k", "v")}, "k", [][]string{s("RENAME", "k", "j")}, true},
		{"RENAME onto", [][]string{s("SET", "j", "v")}, "k", [][]string{s("RENAME", "j", "k")}, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ks, clk := newTestKS(t)
			for _, a := range c.setup {
				do(t, ks, clk, a...)
			}
			ws := watch(ks, clk, c.key)
			for _, a := range c.middle {
				do(t, ks, clk, a...)
			}
			aborted, _ := execGuarded(t, ks, clk, ws, []string{"SET", "out", "1"})
			if aborted != c.abort {
				t.Fatalf("aborted = %v, want %v", aborted, c.abort)
			}
			want := ":1"
			if aborted {
				want = ":0"
			}
			expect(t, ks, clk, want, "EXISTS", "out")
		})
	}
}

// TestWatchExpiry: a key that expires between WATCH and EXEC aborts; one
// already expired at WATCH time does not abort when it is removed, only
// when something is written to it afterwards (Redis 7.0's
// isWatchedKeyExpired and the expired flag of watched keys).
func TestWatchExpiry(t *testing.T) {
	ks, clk := newTestKS(t)
	do(t, ks, clk, "SET", "k", "v", "PX", "100")
	ws := watch(ks, clk, "k")
	clk.ms += 200
	if aborted, _ := execGuarded(t, ks, clk, ws); !aborted {
		t.Fatal("key that expired after WATCH: EXEC went through")
	}

	// Expired (not yet removed) at WATCH time.
	do(t, ks, clk, "SET", "k", "v", "PX", "100")
	clk.ms += 200
	ws = watch(ks, clk, "k")
	if !ws[0].Expired {
		t.Fatal("WatchKey did not see the key as expired")
	}
	if aborted, _ := execGuarded(t, ks, clk, ws); aborted {
		t.Fatal("key expired at WATCH, untouched: aborted")
	}
	do(t, ks, clk, "DEL", "k") // removes the expired content: no logical change
	if aborted, _ := execGuarded(t, ks, clk, ws); aborted {
		t.Fatal("key expired at WATCH, then removed: aborted")
	}
	do(t, ks, clk, "SET", "k", "new")
	if aborted, _ := execGuarded(t, ks, clk, ws); !aborted {
		t.Fatal("key expired at WATCH, then written: EXEC went through")
	}
	do(t, ks, clk, "DEL", "k")
	if aborted, _ := execGuarded(t, ks, clk, ws); !aborted {
		t.Fatal("key expired at WATCH, written and deleted: EXEC went through")
	}
}

// TestWatchAbortIsNoop: a failed guard leaves state, version vector and
// counter exactly as they were.
func TestWatchAbortIsNoop(t *testing.T) {
	ks, clk := newTestKS(t)
	do(t, ks, clk, "SET", "k", "v")
	ws := watch(ks, clk, "k")
	do(t, ks, clk, "SET", "k", "w")
	before, mod, vv := ks.Digest(), ks.ModCount(), ks.Version()
	aborted, _ := execGuarded(t, ks, clk, ws, []string{"SET", "k", "x"}, []string{"INCR", "n"}, []string{"DEL", "k"})
	if !aborted {
		t.Fatal("not aborted")
	}
	if ks.Digest() != before || ks.ModCount() != mod || !ks.Version().Equal(vv) {
		t.Fatal("aborted unit changed the keyspace")
	}
	// Without a change the same unit runs whole, reads seeing earlier writes.
	ws = watch(ks, clk, "k")
	aborted, rs := execGuarded(t, ks, clk, ws, []string{"SET", "k", "x"}, []string{"GET", "k"}, []string{"INCR", "n"}, []string{"DEL", "k"}, []string{"GET", "k"})
	if aborted {
		t.Fatal("aborted without a change")
	}
	got := ""
	for _, r := range rs {
		got += show(r) + " "
	}
	if want := `+OK "x" :1 :1 nil `; got != want {
		t.Fatalf("replies %s, want %s", got, want)
	}
}

// TestWatchMergedWrite: a write merged from another region bumps the key's
// version, so EXEC aborts in the receiving region.
func TestWatchMergedWrite(t *testing.T) {
	a := NewKeyspace(Origin{Region: 1, Incarnation: 1}, Options{})
	b := NewKeyspace(Origin{Region: 2, Incarnation: 1}, Options{})
	clk := &testClock{ms: testEpochMs}
	ship := func(from, to *Keyspace, args ...string) {
		t.Helper()
		_, bt := from.Apply(clk.stamp(), []Command{{Args: bargs(args...)}})
		if bt == nil {
			t.Fatalf("%v produced no batch", args)
		}
		dec, err := DecodeBatch(bt.Encode(nil))
		if err != nil {
			t.Fatal(err)
		}
		if err := to.Merge(dec); err != nil {
			t.Fatal(err)
		}
	}
	ship(b, a, "SET", "k", "v")
	ws := watch(a, clk, "k", "absent")
	ship(b, a, "SET", "other", "v")
	if aborted, _ := execGuarded(t, a, clk, ws); aborted {
		t.Fatal("merge of another key aborted")
	}
	ship(b, a, "APPEND", "k", "x")
	if aborted, _ := execGuarded(t, a, clk, ws); !aborted {
		t.Fatal("merged write to a watched key: EXEC went through")
	}
	ws = watch(a, clk, "absent")
	ship(b, a, "SET", "absent", "v")
	ship(b, a, "DEL", "absent")
	if aborted, _ := execGuarded(t, a, clk, ws); !aborted {
		t.Fatal("merged create+delete of a watched absent key: EXEC went through")
	}

	// A state transfer (Join) counts as changing every key it visits.
	ws = watch(a, clk, "k")
	c := NewKeyspace(Origin{Region: 3, Incarnation: 1}, Options{})
	c.Apply(clk.stamp(), []Command{{Args: bargs("SET", "k", "from-c")}})
	a.Join(c)
	if aborted, _ := execGuarded(t, a, clk, ws); !aborted {
		t.Fatal("joined state changed a watched key: EXEC went through")
	}
}

// TestWatchSnapshot: versions, the counter and removal records survive a
// snapshot, so a node restored from one judges guards as its peers do.
func TestWatchSnapshot(t *testing.T) {
	ks, clk := newTestKS(t)
	for i := 0; i < 50; i++ {
		do(t, ks, clk, "SET", fmt.Sprint("k", i), "v")
		if i%3 == 0 {
			do(t, ks, clk, "DEL", fmt.Sprint("k", i))
		}
	}
	ws := watch(ks, clk, "k1", "k3", "k4", "gone")
	do(t, ks, clk, "SET", "k1", "new")
	do(t, ks, clk, "SET", "k3", "new") // k3 was deleted: created again
	do(t, ks, clk, "SET", "gone", "x")
	do(t, ks, clk, "DEL", "gone")
	r, err := Restore(ks.Snapshot())
	if err != nil {
		t.Fatal(err)
	}
	if r.ModCount() != ks.ModCount() {
		t.Fatalf("counter %d restored as %d", ks.ModCount(), r.ModCount())
	}
	for _, w := range ws {
		if a, b := ks.changed(w, clk.ms), r.changed(w, clk.ms); a != b {
			t.Errorf("%s: changed=%v on the original, %v restored", w.Key, a, b)
		}
	}
	if !r.changed(ws[0], clk.ms) || r.changed(ws[2], clk.ms) || !r.changed(ws[3], clk.ms) {
		t.Error("restored keyspace judges watches wrongly")
	}
	// Both go on identically.
	for _, k := range []*Keyspace{ks, r} {
		k.Apply(Stamp{Time: HLCFromMillis(clk.ms + 1)}, []Command{{Args: bargs("DEL", "k4")}})
	}
	if ks.ModCount() != r.ModCount() || ks.changed(ws[2], clk.ms) != r.changed(ws[2], clk.ms) {
		t.Error("restored keyspace diverged from the original")
	}
	if !bytesEqual(ks.Snapshot(), r.Snapshot()) {
		t.Error("snapshots differ after the same write")
	}
}

func bytesEqual(a, b []byte) bool { return string(a) == string(b) }

// TestWatchRemovalWindow: past removalCap removals the records of the
// oldest are dropped and a watched absent key without a record aborts
// (conservative); within the window the records decide exactly.
func TestWatchRemovalWindow(t *testing.T) {
	ks, clk := newTestKS(t)
	ws := watch(ks, clk, "absent")
	for i := 0; i < 10; i++ {
		do(t, ks, clk, "SET", fmt.Sprint("k", i), "v")
		do(t, ks, clk, "DEL", fmt.Sprint("k", i))
	}
	if ks.changed(ws[0], clk.ms) {
		t.Fatal("removals of other keys changed an absent watched key")
	}
	for i := 0; i < removalCap+10; i++ {
		ks.Apply(clk.stamp(), []Command{{Args: bargs("SET", fmt.Sprint("r", i), "v")}, {Args: bargs("DEL", fmt.Sprint("r", i))}})
	}
	if !ks.changed(ws[0], clk.ms) {
		t.Fatal("no conservative abort once the removal window moved past the WATCH")
	}
	if len(ks.w.removed) > removalCap || len(ks.w.ring) != removalCap {
		t.Fatalf("removal records not bounded: %d records, ring %d", len(ks.w.removed), len(ks.w.ring))
	}
	r, err := Restore(ks.Snapshot())
	if err != nil {
		t.Fatal(err)
	}
	if len(r.w.removed) != len(ks.w.removed) || r.w.floor != ks.w.floor || r.w.mod != ks.w.mod {
		t.Fatal("removal window not restored")
	}
	ws = watch(ks, clk, "fresh")
	ks.Apply(clk.stamp(), []Command{{Args: bargs("SET", "x", "v")}, {Args: bargs("DEL", "x")}})
	if ks.changed(ws[0], clk.ms) {
		t.Fatal("a removal of another key after the WATCH changed an absent watched key")
	}
}

// TestGuardNotForClients: the guard is internal, and a corrupt one aborts
// nothing silently but fails with an error.
func TestGuardNotForClients(t *testing.T) {
	if s := Lookup([]byte(GuardName)); s == nil || !s.Internal {
		t.Fatal("guard is not an internal command")
	}
	ks, clk := newTestKS(t)
	rs, _ := ks.Apply(clk.stamp(), []Command{{Args: bargs(GuardName, "0", "k")}})
	if !rs[0].IsError() {
		t.Fatalf("short guard: %s", show(rs[0]))
	}
	rs, _ = ks.Apply(clk.stamp(), []Command{{Args: bargs(GuardName, "x", "k", "1", "0")}})
	if !rs[0].IsError() {
		t.Fatalf("bad guard: %s", show(rs[0]))
	}
}

// TestWatchRegionDeterminism: two nodes of one region apply the same
// entries (local writes, guarded units, batches merged from another
// region, a state transfer); one of them is restored from a snapshot at a
// random point. Guards must decide alike on both, and the counter, the
// replies and the state must stay identical: a WATCH read on either node
// means the same to the EXEC applied on both.
func TestWatchRegionDeterminism(t *testing.T) {
	aborts, passes := 0, 0
	for seed := uint64(1); seed <= 20; seed++ {
		rng := Rand{s: seed}
		self := Origin{Region: 1, Incarnation: 1}
		a, b := NewKeyspace(self, Options{}), NewKeyspace(self, Options{})
		remote := NewKeyspace(Origin{Region: 2, Incarnation: 1}, Options{})
		ms := int64(testEpochMs)
		keys := []string{"k0", "k1", "k2", "k3"}
		key := func() string { return keys[rng.Intn(len(keys))] }
		randCmd := func() []string {
			switch rng.Intn(8) {
			case 0:
				return []string{"DEL", key()}
			case 1:
				return []string{"SADD", key(), "m"}
			case 2:
				return []string{"PEXPIRE", key(), "5"}
			case 3:
				return []string{"GET", key()}
			case 4:
				return []string{"FLUSHALL"}
			default:
				return []string{"SET", key(), "v"}
			}
		}
		var ws []Watch
		restoreAt := rng.Intn(300)
		for step := 0; step < 300; step++ {
			ms += int64(rng.Intn(3))
			st := Stamp{Time: HLCFromMillis(ms), Seed: uint64(step)}
			var unit []Command
			switch rng.Intn(5) {
			case 0: // a write in the other region, merged into both nodes
				_, bt := remote.Apply(st, []Command{{Args: bargs(randCmd()...)}})
				if bt == nil {
					continue
				}
				data := bt.Encode(nil)
				for _, ks := range []*Keyspace{a, b} {
					dec, err := DecodeBatch(data)
					if err != nil {
						t.Fatal(err)
					}
					if err := ks.Merge(dec); err != nil {
						t.Fatal(err)
					}
				}
				continue
			case 1: // a WATCH read on a node, then a guarded EXEC
				node := a
				if rng.Intn(2) == 0 {
					node = b
				}
				ws = append(ws[:0], node.WatchKey(0, []byte(key()), ms), node.WatchKey(0, []byte(key()), ms))
				continue
			case 2:
				if ws != nil {
					unit = append(unit, GuardCommand(ws))
				}
			}
			unit = append(unit, Command{Args: bargs(randCmd()...)}, Command{Args: bargs(randCmd()...)})
			ra, _ := a.Apply(st, unit)
			rb, _ := b.Apply(st, unit)
			if isGuard(unit[0].Args) {
				if GuardFailed(ra[0]) {
					aborts++
				} else {
					passes++
				}
			}
			for i := range ra {
				if show(ra[i]) != show(rb[i]) {
					t.Fatalf("seed %d step %d: replies differ: %s vs %s", seed, step, show(ra[i]), show(rb[i]))
				}
			}
			if step == restoreAt {
				r, err := Restore(b.Snapshot())
				if err != nil {
					t.Fatal(err)
				}
				b = r
			}
			if a.ModCount() != b.ModCount() || a.Digest() != b.Digest() {
				t.Fatalf("seed %d step %d: nodes diverged (counter %d vs %d)", seed, step, a.ModCount(), b.ModCount())
			}
		}
		if string(a.Snapshot()) != string(b.Snapshot()) {
			t.Fatalf("seed %d: snapshots differ", seed)
		}
	}
	if aborts == 0 || passes == 0 {
		t.Fatalf("workload too narrow: %d guards failed, %d passed", aborts, passes)
	}
	t.Logf("%d guards failed, %d passed", aborts, passes)
}

// TestWatchConverge: guarded transactions in three regions, their batches
// delivered in random order with duplicates. An aborted unit ships
// nothing and a passing one ships one batch like any unit, so the regions
// converge to the same state whatever the guards decided.
func TestWatchConverge(t *testing.T) {
	aborted := 0
	for seed := uint64(1); seed <= 30; seed++ {
		rng := Rand{s: seed}
		var ks []*Keyspace
		for i := 0; i < 3; i++ {
			ks = append(ks, NewKeyspace(Origin{Region: uint32(i + 1), Incarnation: 1}, Options{}))
		}
		type msg struct {
			to     int
			origin Origin
			last   uint64
			data   []byte
		}
		var queue []msg
		ms := int64(testEpochMs)
		keys := []string{"a", "b", "c"}
		key := func() string { return keys[rng.Intn(len(keys))] }
		cmd := func() Command {
			var a []string
			switch rng.Intn(6) {
			case 0:
				a = []string{"DEL", key()}
			case 1:
				a = []string{"SADD", key(), "m" + key()}
			case 2:
				a = []string{"INCR", key()}
			case 3:
				a = []string{"SREM", key(), "m" + key()}
			default:
				a = []string{"SET", key(), key()}
			}
			return Command{Args: bargs(a...)}
		}
		watches := make([][]Watch, 3)
		deliver := func(i int) {
			m := queue[i]
			dec, err := DecodeBatch(m.data)
			if err != nil {
				t.Fatal(err)
			}
			switch err := ks[m.to].Merge(dec); {
			case err == nil:
				if rng.Intn(4) != 0 { // keep a duplicate now and then
					queue = append(queue[:i], queue[i+1:]...)
				}
			case errors.Is(err, ErrGap), errors.Is(err, ErrNotReady):
			default:
				t.Fatal(err)
			}
		}
		for step := 0; step < 400; step++ {
			i := rng.Intn(3)
			ms++
			switch x := rng.Intn(10); {
			case x < 2:
				watches[i] = []Watch{ks[i].WatchKey(0, []byte(key()), ms)}
			case x < 6:
				unit := []Command{GuardCommand(watches[i])}
				for n := 1 + rng.Intn(3); n > 0; n-- {
					unit = append(unit, cmd())
				}
				watches[i] = nil
				rs, b := ks[i].Apply(Stamp{Time: HLCFromMillis(ms), Seed: uint64(step)}, unit)
				if GuardFailed(rs[0]) {
					aborted++
				}
				if b != nil {
					data := b.Encode(nil)
					for j := 0; j < 3; j++ {
						if j != i {
							queue = append(queue, msg{j, b.Origin, b.LastSeq(), data})
						}
					}
				}
			default:
				if len(queue) > 0 {
					deliver(rng.Intn(len(queue)))
				}
			}
		}
		for rounds := 0; len(queue) > 0; rounds++ {
			if rounds > 100000 {
				t.Fatalf("seed %d: %d batches never delivered", seed, len(queue))
			}
			deliver(rng.Intn(len(queue)))
			// Drop duplicates of what every receiver has.
			out := queue[:0]
			for _, m := range queue {
				if m.last > ks[m.to].vv.Get(m.origin) {
					out = append(out, m)
				}
			}
			queue = out
		}
		if ks[0].Digest() != ks[1].Digest() || ks[1].Digest() != ks[2].Digest() {
			t.Fatalf("seed %d: regions did not converge", seed)
		}
	}
	if aborted == 0 {
		t.Fatal("no guard ever failed: the workload does not exercise aborts")
	}
}
