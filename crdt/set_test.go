package crdt

import (
	"bytes"
	"sort"
	"strconv"
	"testing"
)

func TestSetCommands(t *testing.T) {
	runSteps(t, []step{
		rs(":3", "SADD", "s", "1", "2", "3"),
		rs(":1", "SADD", "s", "3", "4", "4"),
		rs(":0", "SADD", "s", "1"),
		rs("-ERR wrong number of arguments for 'sadd' command", "SADD", "s"),
		rs(":4", "SCARD", "s"),
		rs(":0", "SCARD", "nokey"),
		rs("[\"1\" \"2\" \"3\" \"4\"]", "SMEMBERS", "s"), // an intset replies in order
		rs("[]", "SMEMBERS", "nokey"),
		rs(":1", "SISMEMBER", "s", "1"),
		rs(":0", "SISMEMBER", "s", "9"),
		rs(":0", "SISMEMBER", "nokey", "1"),
		rs("[:1 :0 :1]", "SMISMEMBER", "s", "1", "9", "2"),
		rs("[:0]", "SMISMEMBER", "nokey", "1"),
		rs("-ERR wrong number of arguments for 'smismember' command", "SMISMEMBER", "s"),
		rs(":0", "SREM", "nokey", "a"),
		rs(":1", "SREM", "s", "4", "4", "9"),
		rs(":3", "SCARD", "s"),

		rs(":1", "SADD", "one", "a"),
		rs(":1", "SREM", "one", "a"), // last member: the key goes
		rs(":0", "EXISTS", "one"),

		// SPOP / SRANDMEMBER argument checks.
		rs("-ERR value is out of range, must be positive", "SPOP", "s", "-1"),
		rs("-ERR value is out of range, must be positive", "SPOP", "s", "a"),
		rs("-ERR value is out of range, must be positive", "SPOP", "nokey", "-1"),
		rs("-ERR value is out of range, must be positive", "SPOP", "s", "99999999999999999999"),
		rs("-ERR syntax error", "SPOP", "s", "1", "2"),
		rs("[]", "SPOP", "s", "0"),
		rs("nil", "SPOP", "nokey"),
		rs("[]", "SPOP", "nokey", "3"),
		rs("nil", "SRANDMEMBER", "nokey"),
		rs("[]", "SRANDMEMBER", "nokey", "5"),
		rs("[]", "SRANDMEMBER", "nokey", "-5"),
		rs("[]", "SRANDMEMBER", "s", "0"),
		rs("-ERR value is not an integer or out of range", "SRANDMEMBER", "s", "a"),
		rs("-ERR value is not an integer or out of range", "SRANDMEMBER", "s", "1a"),
		rs("-ERR value is not an integer or out of range", "SRANDMEMBER", "s", "99999999999999999999"),
		rs("-ERR value is out of range, value must between -9223372036854775807 and 9223372036854775807", "SRANDMEMBER", "s", "-9223372036854775808"),
		rs("-ERR syntax error", "SRANDMEMBER", "s", "1", "2"),
		rs("[\"1\" \"2\" \"3\"]", "SRANDMEMBER", "s", "10"), // whole set
		rs("[\"1\" \"2\" \"3\"]", "SPOP", "s", "3"),         // whole set: the key goes
		rs(":0", "EXISTS", "s"),

		// SMOVE
		rs(":3", "SADD", "src", "a", "b", "c"),
		rs(":0", "SMOVE", "nokey", "src", "a"),
		rs(":0", "SMOVE", "src", "dst", "z"),
		rs(":1", "SMOVE", "src", "dst", "a"),
		rs(":1", "SMOVE", "src", "src", "b"),
		rs(":0", "SMOVE", "src", "src", "z"),
		rs(":1", "SADD", "dst", "b"),
		rs(":1", "SMOVE", "src", "dst", "b"), // already in dst: still 1
		rs(":1", "EXPIRE", "src", "100"),
		rs(":1", "SMOVE", "src", "dst", "c"), // last member: src goes, TTL too
		rs(":0", "EXISTS", "src"),
		rs(":3", "SCARD", "dst"),
		rs("-ERR wrong number of arguments for 'smove' command", "SMOVE", "src", "dst"),

		// SINTER / SUNION / SDIFF and STORE forms.
		rs(":4", "SADD", "x", "1", "2", "3", "4"),
		rs(":3", "SADD", "y", "3", "4", "5"),
		rs("[\"3\" \"4\"]", "SINTER", "x", "y"),
		rs("[]", "SINTER", "x", "nokey"),
		rs("[\"1\" \"2\"]", "SDIFF", "x", "y"),
		rs("[]", "SDIFF", "nokey", "x"),
		rs("[\"1\" \"2\" \"3\" \"4\"]", "SDIFF", "x", "nokey"),
		rs(":5", "SUNIONSTORE", "u", "x", "y"),
		rs(":5", "SCARD", "u"),
		rs(":2", "SINTERSTORE", "i", "x", "y"),
		rs(":2", "SDIFFSTORE", "d", "x", "y"),
		rs(":1", "EXPIRE", "d", "100"),
		rs(":2", "SDIFFSTORE", "d", "d", "nokey"), // dst is also a source
		rs(":-1", "TTL", "d"),                     // an overwrite drops the TTL
		rs(":0", "SINTERSTORE", "d", "nokey"),     // empty result deletes dst
		rs(":0", "EXISTS", "d"),
		rs(":0", "SDIFFSTORE", "d2", "x", "x"),
		rs(":0", "EXISTS", "d2"),
		rs("-ERR wrong number of arguments for 'sinterstore' command", "SINTERSTORE", "d"),
		rs("-ERR wrong number of arguments for 'sinter' command", "SINTER"),

		// SINTERCARD
		rs(":2", "SINTERCARD", "2", "x", "y"),
		rs(":1", "SINTERCARD", "2", "x", "y", "LIMIT", "1"),
		rs(":2", "SINTERCARD", "2", "x", "y", "limit", "0"),
		rs(":3", "SINTERCARD", "1", "x", "limit", "1", "limit", "3"),
		rs(":0", "SINTERCARD", "2", "x", "nokey"),
		rs(":4", "SINTERCARD", "2", "x", "x"),
		rs("-ERR numkeys should be greater than 0", "SINTERCARD", "0", "x"),
		rs("-ERR numkeys should be greater than 0", "SINTERCARD", "-1", "x"),
		rs("-ERR numkeys should be greater than 0", "SINTERCARD", "a", "x"),
		rs("-ERR numkeys should be greater than 0", "SINTERCARD", "99999999999999999999", "x"),
		rs("-ERR Number of keys can't be greater than number of args", "SINTERCARD", "2", "x"),
		rs("-ERR Number of keys can't be greater than number of args", "SINTERCARD", "3", "x", "y"),
		rs("-ERR syntax error", "SINTERCARD", "1", "x", "LIMIT"),
		rs("-ERR syntax error", "SINTERCARD", "1", "x", "foo", "2"),
		rs("-ERR syntax error", "SINTERCARD", "1", "x", "LIMIT", "5", "x"),
		rs("-ERR LIMIT can't be negative", "SINTERCARD", "1", "x", "LIMIT", "-1"),
		rs("-ERR LIMIT can't be negative", "SINTERCARD", "1", "x", "LIMIT", "a"),
		rs("-ERR LIMIT can't be negative", "SINTERCARD", "1", "x", "LIMIT", "99999999999999999999"),
		rs("-ERR wrong number of arguments for 'sintercard' command", "SINTERCARD", "1"),

		// SSCAN argument handling (iteration is tested below).
		rs("-ERR invalid cursor", "SSCAN", "x", "abc"),
		rs("-ERR invalid cursor", "SSCAN", "nokey", "abc"),
		rs("-ERR invalid cursor", "SSCAN", "x", " 0"),
		rs("-ERR invalid cursor", "SSCAN", "x", "18446744073709551616"),
		rs("[\"0\" []]", "SSCAN", "nokey", "0"),
		rs("[\"0\" []]", "SSCAN", "nokey", "0", "count", "0"), // options unchecked for a missing key
		rs("-ERR syntax error", "SSCAN", "x", "0", "count", "0"),
		rs("-ERR syntax error", "SSCAN", "x", "0", "count", "-1"),
		rs("-ERR value is not an integer or out of range", "SSCAN", "x", "0", "count", "a"),
		rs("-ERR syntax error", "SSCAN", "x", "0", "count"),
		rs("-ERR syntax error", "SSCAN", "x", "0", "match"),
		rs("-ERR syntax error", "SSCAN", "x", "0", "foo", "bar"),
		rs("-ERR syntax error", "SSCAN", "x", "0", "type", "set"),
		rs("[\"0\" [\"1\" \"2\" \"3\" \"4\"]]", "SSCAN", "x", "0"), // intset: all at once
		rs("[\"0\" [\"1\" \"2\" \"3\" \"4\"]]", "SSCAN", "x", "7", "COUNT", "1"),
		rs("[\"0\" [\"1\" \"2\"]]", "SSCAN", "x", "0", "MATCH", "[12]"),
		rs("[\"0\" [\"1\" \"2\" \"3\" \"4\"]]", "SSCAN", "x", "-1"),
		rs("-ERR wrong number of arguments for 'sscan' command", "SSCAN", "x"),

		// OBJECT ENCODING follows Redis 7.0 (no listpack sets before 7.2).
		rs("\"intset\"", "OBJECT", "ENCODING", "x"),
		rs(":1", "SADD", "h", "a"),
		rs("\"hashtable\"", "OBJECT", "encoding", "h"),
		rs(":2", "SADD", "h", "1", "2"),
		rs(":1", "SREM", "h", "a"),
		rs("\"hashtable\"", "OBJECT", "ENCODING", "h"), // never converts back
		rs(":2", "SINTERSTORE", "hi", "h"),
		rs("\"intset\"", "OBJECT", "ENCODING", "hi"), // a store builds afresh
		rs(":1", "COPY", "h", "hc"),
		rs("\"hashtable\"", "OBJECT", "ENCODING", "hc"), // a copy keeps it
		rs("+OK", "RENAME", "h", "hr"),
		rs("\"hashtable\"", "OBJECT", "ENCODING", "hr"),
		rs(":3", "SADD", "enc", "-1", "0", "9223372036854775807"),
		rs("\"intset\"", "OBJECT", "ENCODING", "enc"),
		rs(":1", "SADD", "enc2", "-0"),
		rs("\"hashtable\"", "OBJECT", "ENCODING", "enc2"),
		rs(":1", "SADD", "enc3", "01"),
		rs("\"hashtable\"", "OBJECT", "ENCODING", "enc3"),
		rs(":1", "SADD", "enc4", "9223372036854775808"),
		rs("\"hashtable\"", "OBJECT", "ENCODING", "enc4"),
		rs(":1", "SADD", "enc5", " 1"),
		rs("\"hashtable\"", "OBJECT", "ENCODING", "enc5"),
		rs("nil", "OBJECT", "ENCODING", "nokey"),
		rs("nil", "OBJECT", "FREQ", "nokey"),
		rs("nil", "OBJECT", "IDLETIME", "nokey"),
		rs("nil", "OBJECT", "REFCOUNT", "nokey"),
		rs(":1", "OBJECT", "REFCOUNT", "x"),
		rs(":0", "OBJECT", "IDLETIME", "x"),
		rs("-ERR An LFU maxmemory policy is not selected, access frequency not tracked. Please note that when switching between policies at runtime LRU and LFU data will take some time to adjust.", "OBJECT", "FREQ", "x"),
		rs("-ERR unknown subcommand 'foo'. Try OBJECT HELP.", "OBJECT", "foo"),
		rs("-ERR unknown subcommand 'foo'. Try OBJECT HELP.", "OBJECT", "foo", "x"),
		rs("-ERR wrong number of arguments for 'object' command", "OBJECT"),
		rs("-ERR wrong number of arguments for 'object|encoding' command", "OBJECT", "encoding"),
		rs("-ERR wrong number of arguments for 'object|encoding' command", "OBJECT", "ENCODING", "a", "b"),
		rs("-ERR wrong number of arguments for 'object|help' command", "OBJECT", "help", "x"),
	})
}

// TestSetIntsetLimit checks the 512-member intset limit.
func TestSetIntsetLimit(t *testing.T) {
	args := []string{"SADD", "big"}
	for i := 1; i <= 512; i++ {
		args = append(args, strconv.Itoa(i))
	}
	runSteps(t, []step{
		rs(":512", args...),
		rs("\"intset\"", "OBJECT", "ENCODING", "big"),
		rs(":1", "SADD", "big", "513"),
		rs("\"hashtable\"", "OBJECT", "ENCODING", "big"),
		rs(":1", "SREM", "big", "513"),
		rs("\"hashtable\"", "OBJECT", "ENCODING", "big"),
	})
}

func TestSetWrongType(t *testing.T) {
	wrong := "-WRONGTYPE Operation against a key holding the wrong kind of value"
	runSteps(t, []step{
		rs("+OK", "SET", "str", "x"),
		rs(":2", "SADD", "s", "1", "a"),
		rs(wrong, "SADD", "str", "a"),
		rs(wrong, "SREM", "str", "a"),
		rs(wrong, "SCARD", "str"),
		rs(wrong, "SISMEMBER", "str", "a"),
		rs(wrong, "SMISMEMBER", "str", "a"),
		rs(wrong, "SMEMBERS", "str"),
		rs(wrong, "SPOP", "str"),
		rs(wrong, "SPOP", "str", "0"),
		rs("-ERR value is out of range, must be positive", "SPOP", "str", "-1"),
		rs(wrong, "SRANDMEMBER", "str"),
		rs(wrong, "SRANDMEMBER", "str", "0"),
		rs(wrong, "SSCAN", "str", "0"),
		rs(wrong, "SSCAN", "str", "0", "count", "0"),
		rs("-ERR invalid cursor", "SSCAN", "str", "x"),
		rs(":0", "SMOVE", "nokey", "str", "a"),
		rs(wrong, "SMOVE", "s", "str", "a"),
		rs(wrong, "SMOVE", "str", "s", "a"),
		rs(wrong, "SINTER", "nokey", "str"),
		rs(wrong, "SINTER", "s", "str"),
		rs(wrong, "SUNION", "nokey", "str"),
		rs(wrong, "SDIFF", "nokey", "str"),
		rs(wrong, "SDIFF", "str", "nokey"),
		rs(wrong, "SINTERCARD", "2", "nokey", "str"),
		rs(wrong, "SINTERSTORE", "d", "nokey", "str"),
		rs(wrong, "SUNIONSTORE", "d", "s", "str"),
		rs(wrong, "SDIFFSTORE", "d", "str", "nokey"),
		rs("+string", "TYPE", "str"),
		rs("[\"0\" [\"str\"]]", "SCAN", "0", "TYPE", "STRING"),
		rs(":2", "SUNIONSTORE", "str", "s"), // a store overwrites any type
		rs("+set", "TYPE", "str"),
		rs(":2", "SCARD", "str"),
		rs("+OK", "SET", "str", "x"), // and a string overwrites the set
		rs("+string", "TYPE", "str"),
		rs("\"embstr\"", "OBJECT", "ENCODING", "str"),
	})
}

func sortedShow(r Reply) []string {
	var out []string
	for _, e := range r.Elems {
		out = append(out, string(e.Str))
	}
	sort.Strings(out)
	return out
}

// replica is one region's keyspace in a multi-replica test. Its batches
// are kept so they can be delivered to the others in order.
type replica struct {
	ks   *Keyspace
	clk  *testClock
	out  []*Batch
	sent map[*replica]int // batches of r.out already merged into a peer
}

func newReplicas(t *testing.T, n int) []*replica {
	t.Helper()
	rs := make([]*replica, n)
	for i := range rs {
		rs[i] = &replica{
			ks:   NewKeyspace(Origin{Region: uint32(i + 1), Incarnation: 1}, Options{}),
			clk:  &testClock{ms: testEpochMs},
			sent: map[*replica]int{},
		}
	}
	return rs
}

// do runs a command on the replica (a write through Apply, a read at the
// replica's clock).
func (r *replica) do(t *testing.T, args ...string) Reply {
	t.Helper()
	a := make([][]byte, len(args))
	for i, s := range args {
		a[i] = []byte(s)
	}
	if spec := Lookup(a[0]); spec != nil && !spec.Write {
		return r.ks.Read(0, r.clk.ms, uint64(r.clk.ms), a)
	}
	rep, b := r.ks.Apply(r.clk.stamp(), []Command{{Args: a}})
	if b != nil {
		r.out = append(r.out, b)
	}
	return rep[0]
}

// sendTo merges every batch r produced that to has not seen yet.
func (r *replica) sendTo(t *testing.T, to *replica) {
	t.Helper()
	for ; r.sent[to] < len(r.out); r.sent[to]++ {
		if err := to.ks.Merge(r.out[r.sent[to]]); err != nil {
			t.Fatalf("merge into %s: %v", to.ks.Origin(), err)
		}
	}
}

// syncAll exchanges every batch between every pair. Batches only depend on
// what their origin had seen, and every origin's own batches go out in
// order, so two rounds reach every replica.
func syncAll(t *testing.T, rs []*replica) {
	t.Helper()
	for round := 0; round < 2; round++ {
		for _, a := range rs {
			for _, b := range rs {
				if a != b {
					a.sendTo(t, b)
				}
			}
		}
	}
}

// converged fails unless every replica has the same digest and answers
// the same to each read.
func converged(t *testing.T, rs []*replica, reads ...[]string) {
	t.Helper()
	for _, r := range rs[1:] {
		if r.ks.Digest() != rs[0].ks.Digest() {
			t.Errorf("digests differ between %s and %s", rs[0].ks.Origin(), r.ks.Origin())
		}
	}
	for _, rd := range reads {
		want := show(rs[0].do(t, rd...))
		for _, r := range rs[1:] {
			if got := show(r.do(t, rd...)); got != want {
				t.Errorf("%v: %s says %s, %s says %s", rd, rs[0].ks.Origin(), want, r.ks.Origin(), got)
			}
		}
	}
}

func expectR(t *testing.T, r *replica, want string, args ...string) {
	t.Helper()
	if got := show(r.do(t, args...)); got != want {
		t.Errorf("%s %v: got %s, want %s", r.ks.Origin(), args, got, want)
	}
}

// TestSetAddWins: a remove only takes the adds it observed, so an add
// concurrent with it (even a re-add of a present member) survives.
func TestSetAddWins(t *testing.T) {
	rs := newReplicas(t, 3)
	a, b, c := rs[0], rs[1], rs[2]
	a.do(t, "SADD", "s", "x", "y")
	syncAll(t, rs)

	a.do(t, "SREM", "s", "x")   // observed x's add
	b.do(t, "SADD", "s", "x")   // concurrent re-add: a fresh tag
	c.do(t, "SREM", "s", "y")   // removes y everywhere: no concurrent add
	c.do(t, "SADD", "s", "new") // plain concurrent add
	syncAll(t, rs)
	for _, r := range rs {
		expectR(t, r, "[:1 :0 :1]", "SMISMEMBER", "s", "x", "y", "new")
	}
	converged(t, rs, []string{"SCARD", "s"})

	// Concurrent removes of the same member both take it.
	a.do(t, "SREM", "s", "new")
	b.do(t, "SREM", "s", "new")
	syncAll(t, rs)
	for _, r := range rs {
		expectR(t, r, ":0", "SISMEMBER", "s", "new")
	}
	converged(t, rs)

	// SPOP of the last member deletes the key, but a concurrent add keeps it.
	a.do(t, "SPOP", "s", "5")
	b.do(t, "SADD", "s", "late")
	syncAll(t, rs)
	for _, r := range rs {
		expectR(t, r, "[\"late\"]", "SMEMBERS", "s")
	}
	converged(t, rs)
}

// TestDelKeepsUnseenAdd: DEL is an observed remove of the key's content.
func TestDelKeepsUnseenAdd(t *testing.T) {
	rs := newReplicas(t, 2)
	a, b := rs[0], rs[1]
	a.do(t, "SADD", "k", "a")
	a.do(t, "EXPIRE", "k", "100")
	syncAll(t, rs)

	a.do(t, "DEL", "k")
	b.do(t, "SADD", "k", "b")
	syncAll(t, rs)
	for _, r := range rs {
		expectR(t, r, "[\"b\"]", "SMEMBERS", "k")
		// b's write set no TTL, and DEL removed the one it saw.
		expectR(t, r, ":-1", "TTL", "k")
	}
	converged(t, rs)

	// FLUSHALL is an observed remove too.
	a.do(t, "SADD", "k2", "x")
	syncAll(t, rs)
	a.do(t, "FLUSHALL")
	b.do(t, "SADD", "k2", "y")
	syncAll(t, rs)
	for _, r := range rs {
		expectR(t, r, "[\"k2\"]", "KEYS", "*")
		expectR(t, r, "[\"y\"]", "SMEMBERS", "k2")
	}
	converged(t, rs)
}

// TestExpireConcurrentWithDelete: a TTL written concurrently with the
// removal of the key's content is kept (as a ghost register) so that
// every replica holds the same state whatever the delivery order.
func TestExpireConcurrentWithDelete(t *testing.T) {
	for _, order := range []string{"a-first", "b-first"} {
		t.Run(order, func(t *testing.T) {
			rs := newReplicas(t, 3)
			a, b, c := rs[0], rs[1], rs[2]
			a.do(t, "SADD", "k", "m")
			syncAll(t, rs)

			a.do(t, "SREM", "k", "m") // last member: content and TTL go
			b.do(t, "EXPIRE", "k", "100")
			if order == "a-first" {
				a.sendTo(t, c)
				b.sendTo(t, c)
			} else {
				b.sendTo(t, c)
				a.sendTo(t, c)
			}
			syncAll(t, rs)
			for _, r := range rs {
				expectR(t, r, ":0", "EXISTS", "k")
			}
			converged(t, rs)

			// Content comes back: every replica agrees on its TTL.
			c.do(t, "SADD", "k", "again")
			syncAll(t, rs)
			converged(t, rs, []string{"TTL", "k"}, []string{"SMEMBERS", "k"})

			// A DEL that saw everything leaves nothing behind.
			a.do(t, "DEL", "k")
			syncAll(t, rs)
			for _, r := range rs {
				expectR(t, r, ":-2", "TTL", "k")
				if len(r.ks.dbs[0].ghosts) != 0 {
					t.Errorf("%s: ghost TTLs left: %v", r.ks.Origin(), r.ks.dbs[0].ghosts)
				}
			}
			converged(t, rs)
		})
	}
}

// TestSPopDeterminism: SPOP's choice is a function of the stamp and the
// replicated state, so nodes of one region applying the same stamped
// commands pop the same members, and so does a node restored from a
// snapshot of one of them.
func TestSPopDeterminism(t *testing.T) {
	origin := Origin{Region: 7, Incarnation: 1}
	n1 := NewKeyspace(origin, Options{Solo: true})
	n2 := NewKeyspace(origin, Options{Solo: true})
	clk := &testClock{ms: testEpochMs}
	apply := func(nodes []*Keyspace, args ...string) []string {
		a := make([][]byte, len(args))
		for i, s := range args {
			a[i] = []byte(s)
		}
		st := clk.stamp()
		var out []string
		for _, ks := range nodes {
			r, _ := ks.Apply(st, []Command{{Args: a}})
			out = append(out, show(r[0]))
		}
		return out
	}
	both := []*Keyspace{n1, n2}
	args := []string{"SADD", "s"}
	for i := 0; i < 300; i++ {
		args = append(args, "m"+strconv.Itoa(i))
	}
	apply(both, args...)
	// Churn so the slot layout is not simply insertion order.
	for i := 0; i < 300; i += 7 {
		apply(both, "SREM", "s", "m"+strconv.Itoa(i))
	}
	apply(both, "SADD", "s", "x1", "x2", "x3")

	n3, err := Restore(n1.Snapshot())
	if err != nil {
		t.Fatal(err)
	}
	all := []*Keyspace{n1, n2, n3}
	distinct := map[string]bool{}
	for i := 0; i < 20; i++ {
		var got []string
		if i%2 == 0 {
			got = apply(all, "SPOP", "s")
		} else {
			got = apply(all, "SPOP", "s", "5")
		}
		if got[0] != got[1] || got[0] != got[2] {
			t.Fatalf("SPOP %d: nodes disagree: %v", i, got)
		}
		distinct[got[0]] = true
		// Inserts after the restore must land in the same slots too: add
		// more than was popped so the free slots from before the snapshot
		// get reused.
		apply(all, "SADD", "s", "y"+strconv.Itoa(i), "z"+strconv.Itoa(i), "w"+strconv.Itoa(i))
	}
	if len(distinct) < 15 {
		t.Errorf("SPOP looks not random: %d distinct replies of 20", len(distinct))
	}
	if n1.Digest() != n2.Digest() || n1.Digest() != n3.Digest() {
		t.Error("digests differ after identical SPOPs")
	}
	// SRANDMEMBER with a seed is repeatable too.
	r1 := n1.Read(0, clk.ms, 99, [][]byte{[]byte("SRANDMEMBER"), []byte("s"), []byte("-10")})
	r3 := n3.Read(0, clk.ms, 99, [][]byte{[]byte("SRANDMEMBER"), []byte("s"), []byte("-10")})
	if show(r1) != show(r3) {
		t.Errorf("SRANDMEMBER differs: %s vs %s", show(r1), show(r3))
	}
}

// TestSetRandomCounts checks SRANDMEMBER's and SPOP's count semantics.
func TestSetRandomCounts(t *testing.T) {
	ks, clk := newTestKS(t)
	do(t, ks, clk, "SADD", "s", "a", "b", "c", "d", "e", "f", "g", "h", "i", "j")
	for _, n := range []int{1, 3, 9} {
		r := do(t, ks, clk, "SRANDMEMBER", "s", strconv.Itoa(n))
		ms := sortedShow(r)
		if len(ms) != n || r.Kind != KindArray {
			t.Fatalf("SRANDMEMBER %d: %s", n, show(r))
		}
		for i := 1; i < len(ms); i++ {
			if ms[i] == ms[i-1] {
				t.Fatalf("SRANDMEMBER %d repeated a member: %s", n, show(r))
			}
		}
	}
	if r := do(t, ks, clk, "SRANDMEMBER", "s", "-25"); len(r.Elems) != 25 {
		t.Errorf("SRANDMEMBER -25: %d members", len(r.Elems))
	}
	if r := do(t, ks, clk, "SRANDMEMBER", "s", "-5000000"); !r.IsError() {
		t.Errorf("SRANDMEMBER -5000000 should be refused, got %d members", len(r.Elems))
	}
	r := do(t, ks, clk, "SPOP", "s", "4")
	if r.Kind != KindSet || len(r.Elems) != 4 {
		t.Fatalf("SPOP 4: %s", show(r))
	}
	expect(t, ks, clk, ":6", "SCARD", "s")
	for _, m := range r.Elems {
		expect(t, ks, clk, ":0", "SISMEMBER", "s", string(m.Str))
	}
	if r := do(t, ks, clk, "SPOP", "s", "9"); r.Kind != KindSet || len(r.Elems) != 6 {
		t.Fatalf("SPOP 9: %s", show(r))
	}
	expect(t, ks, clk, ":0", "EXISTS", "s")
	// RESP3 kinds: SMEMBERS and the set algebra are sets, SRANDMEMBER an array.
	do(t, ks, clk, "SADD", "s", "a")
	for _, c := range [][]string{{"SMEMBERS", "s"}, {"SINTER", "s"}, {"SUNION", "s"}, {"SDIFF", "s"}} {
		if r := do(t, ks, clk, c...); r.Kind != KindSet {
			t.Errorf("%v: kind %d, want set", c, r.Kind)
		}
	}
	if r := do(t, ks, clk, "SRANDMEMBER", "s", "5"); r.Kind != KindArray {
		t.Errorf("SRANDMEMBER 5: kind %d, want array", r.Kind)
	}
}

// TestSetSnapshotAndJoin: the canonical encoding ignores apply order and
// survives a snapshot; Join merges sets add-wins.
func TestSetSnapshotAndJoin(t *testing.T) {
	rs := newReplicas(t, 2)
	a, b := rs[0], rs[1]
	a.do(t, "SADD", "s", "1", "2", "3")
	syncAll(t, rs)
	a.do(t, "SREM", "s", "1")
	b.do(t, "SADD", "s", "1", "4")
	b.do(t, "SADD", "t", "x")

	// Join in both directions instead of exchanging batches.
	sa, _ := Restore(a.ks.Snapshot())
	sb, _ := Restore(b.ks.Snapshot())
	a.ks.Join(sb)
	b.ks.Join(sa)
	if a.ks.Digest() != b.ks.Digest() {
		t.Fatal("digests differ after join")
	}
	for _, r := range rs {
		expectR(t, r, "[:1 :1 :1 :1]", "SMISMEMBER", "s", "1", "2", "3", "4")
		expectR(t, r, ":1", "EXISTS", "t")
	}
	// Join is idempotent.
	before := a.ks.Digest()
	a.ks.Join(sb)
	if a.ks.Digest() != before {
		t.Error("join is not idempotent")
	}
	// Restore keeps the digest.
	r, err := Restore(a.ks.Snapshot())
	if err != nil {
		t.Fatal(err)
	}
	if r.Digest() != a.ks.Digest() {
		t.Error("restore changed the digest")
	}
}

// encodeSetForTest returns a set's snapshot form (canonical encoding and
// layout).
func encodeSetForTest(members ...string) []byte {
	v := &setValue{}
	for i, m := range members {
		v.apply(&Effect{Kind: EffSetAdd, Field: []byte(m)}, Tag{Time: HLC(i + 5), Dot: Dot{Origin: testOrigin, Seq: uint64(i + 1)}}, Context{})
	}
	e := &encoder{}
	v.encode(e)
	v.encodeLayout(e)
	return e.b
}

// decodeSetForTest decodes what encodeSetForTest wrote.
func decodeSetForTest(b []byte) (*setValue, error) {
	d := &decoder{b: b}
	v := decodeSet(d).(*setValue)
	v.decodeLayout(d)
	if d.err == nil && len(d.b) != 0 {
		d.fail()
	}
	return v, d.err
}

// TestSetDecodeRejectsGarbage: the set decoder fails cleanly on truncated,
// extended or non-canonical input.
func TestSetDecodeRejectsGarbage(t *testing.T) {
	good := encodeSetForTest("b", "a", "1")
	v, err := decodeSetForTest(good)
	if err != nil || v.card() != 3 || v.objectEncoding() != "hashtable" {
		t.Fatalf("round trip: %v, card %d", err, v.card())
	}
	for i := 0; i < len(good); i++ {
		if _, err := decodeSetForTest(good[:i]); err == nil {
			t.Errorf("truncated to %d bytes: accepted", i)
		}
	}
	if _, err := decodeSetForTest(append(good, 0)); err == nil {
		t.Error("trailing byte accepted")
	}
	// Unsorted members are not canonical.
	e := &encoder{}
	e.uvarint(2)
	for _, m := range []string{"b", "a"} {
		e.str(m)
		e.uvarint(1)
		e.tag(Tag{Time: 1, Dot: Dot{Origin: testOrigin, Seq: 1}})
	}
	if d := (&decoder{b: e.b}); func() bool { decodeSet(d); return d.err == nil }() {
		t.Error("unsorted members accepted")
	}
}

// FuzzSetDecode: no input makes the set decoder panic or allocate beyond
// what the input describes, and whatever it accepts re-encodes to bytes
// that decode to the same state. (Not necessarily to the input bytes:
// varints may arrive in non-minimal form.)
func FuzzSetDecode(f *testing.F) {
	f.Add(encodeSetForTest())
	f.Add(encodeSetForTest("a"))
	f.Add(encodeSetForTest("3", "1", "2"))
	f.Add(encodeSetForTest("x", "y", "z", "10"))
	f.Fuzz(func(t *testing.T, b []byte) {
		v, err := decodeSetForTest(b)
		if err != nil {
			return
		}
		e := &encoder{}
		v.encode(e)
		v.encodeLayout(e)
		w, err := decodeSetForTest(e.b)
		if err != nil {
			t.Fatalf("re-encoding %x does not decode: %v", e.b, err)
		}
		e2 := &encoder{}
		w.encode(e2)
		w.encodeLayout(e2)
		if !bytes.Equal(e.b, e2.b) {
			t.Fatalf("re-encoding is not stable:\n%x\n%x", e.b, e2.b)
		}
	})
}

func BenchmarkSAdd(b *testing.B) {
	ks, clk := newTestKS(b)
	args := [][]byte{[]byte("SADD"), []byte("s"), nil}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		args[2] = []byte(strconv.Itoa(i % 100000))
		ks.Apply(clk.stamp(), []Command{{Args: args}})
	}
}

func BenchmarkSIsMember(b *testing.B) {
	ks, clk := newTestKS(b)
	for i := 0; i < 1000; i++ {
		do(b, ks, clk, "SADD", "s", strconv.Itoa(i))
	}
	args := [][]byte{[]byte("SISMEMBER"), []byte("s"), []byte("500")}
	b.ReportAllocs()
	for b.Loop() {
		ks.Read(0, clk.ms, 1, args)
	}
}

// TestSetAsZSetInput: the sorted-set algebra reads sets as members with
// score 1.
func TestSetAsZSetInput(t *testing.T) {
	runSteps(t, []step{
		rs(":4", "SADD", "s", "b", "a", "c", "1"),
		rs(":2", "ZADD", "z", "1", "a", "2", "x"),
		rs("[\"1\" \"1\" \"b\" \"1\" \"c\" \"1\" \"a\" \"2\" \"x\" \"2\"]", "ZUNION", "2", "s", "z", "WITHSCORES"),
		rs("[\"a\"]", "ZINTER", "2", "s", "z"),
		rs(":3", "ZDIFFSTORE", "d", "2", "s", "z"),
		rs("+zset", "TYPE", "d"),
	})
}
