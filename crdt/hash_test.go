package crdt

import (
	"fmt"
	"strings"
	"testing"
)

// hashTables are sequential sessions whose replies were checked against
// redis-server 7.0.15 (TestHashTablesRedis re-checks them when it is
// installed). Multi-field replies use small hashes without deletions, which
// Redis keeps in insertion order, the same as our slot order.
var hashTables = map[string][]shStep{
	"hset-hget": {
		sh(`-ERR wrong number of arguments for 'hset' command`, "HSET", "h", "f"),
		sh(`-ERR wrong number of arguments for 'hset' command`, "HSET", "h", "f", "v", "g"),
		sh(`-ERR wrong number of arguments for 'hmset' command`, "HMSET", "h", "f", "v", "g"),
		sh(`:0`, "HLEN", "h"),
		sh(`:2`, "HSET", "h", "a", "1", "b", "2"),
		sh(`:1`, "HSET", "h", "a", "x", "c", "3", "c", "4"),
		sh(`"x"`, "HGET", "h", "a"),
		sh(`"4"`, "HGET", "h", "c"),
		sh(`nil`, "HGET", "h", "zz"),
		sh(`nil`, "HGET", "nokey", "a"),
		sh(`+OK`, "HMSET", "h", "d", "", "e", "\x00\xff"),
		sh(`""`, "HGET", "h", "d"),
		sh(`"\x00\xff"`, "HGET", "h", "e"),
		sh(`:5`, "HLEN", "h"),
		sh(`["x" nil "2" nil]`, "HMGET", "h", "a", "zz", "b", "nokey"),
		sh(`[nil nil]`, "HMGET", "nokey", "a", "b"),
		sh(`["a" "b" "c" "d" "e"]`, "HKEYS", "h"),
		sh(`["x" "2" "4" "" "\x00\xff"]`, "HVALS", "h"),
		sh(`["a" "x" "b" "2" "c" "4" "d" "" "e" "\x00\xff"]`, "HGETALL", "h"),
		sh(`[]`, "HKEYS", "nokey"),
		sh(`[]`, "HVALS", "nokey"),
		sh(`[]`, "HGETALL", "nokey"),
		sh(`:1`, "HEXISTS", "h", "a"),
		sh(`:0`, "HEXISTS", "h", "zz"),
		sh(`:0`, "HEXISTS", "nokey", "a"),
		sh(`:1`, "HSTRLEN", "h", "a"),
		sh(`:2`, "HSTRLEN", "h", "e"),
		sh(`:0`, "HSTRLEN", "h", "zz"),
		sh(`:0`, "HSTRLEN", "nokey", "zz"),
		sh(`:1`, "HSETNX", "h", "n", "1"),
		sh(`:0`, "HSETNX", "h", "n", "2"),
		sh(`"1"`, "HGET", "h", "n"),
		sh(`:1`, "HSETNX", "h2", "n", "2"),
		sh(`"2"`, "HGET", "h2", "n"),
		sh(`+OK`, "SET", "s", "x"),
		sh(`-WRONGTYPE Operation against a key holding the wrong kind of value`, "HSET", "s", "a", "1"),
		sh(`-WRONGTYPE Operation against a key holding the wrong kind of value`, "HMSET", "s", "a", "1"),
		sh(`-WRONGTYPE Operation against a key holding the wrong kind of value`, "HSETNX", "s", "a", "1"),
		sh(`-WRONGTYPE Operation against a key holding the wrong kind of value`, "HGET", "s", "a"),
		sh(`-WRONGTYPE Operation against a key holding the wrong kind of value`, "HMGET", "s", "a"),
		sh(`-WRONGTYPE Operation against a key holding the wrong kind of value`, "HLEN", "s"),
		sh(`-WRONGTYPE Operation against a key holding the wrong kind of value`, "HEXISTS", "s", "a"),
		sh(`-WRONGTYPE Operation against a key holding the wrong kind of value`, "HSTRLEN", "s", "a"),
		sh(`-WRONGTYPE Operation against a key holding the wrong kind of value`, "HKEYS", "s"),
		sh(`-WRONGTYPE Operation against a key holding the wrong kind of value`, "HVALS", "s"),
		sh(`-WRONGTYPE Operation against a key holding the wrong kind of value`, "HGETALL", "s"),
		sh(`-WRONGTYPE Operation against a key holding the wrong kind of value`, "HDEL", "s", "a"),
		sh(`-ERR wrong number of arguments for 'hget' command`, "HGET", "h"),
		sh(`-ERR wrong number of arguments for 'hdel' command`, "HDEL", "h"),
	},
	"hdel": {
		sh(`:3`, "HSET", "h", "a", "1", "b", "2", "c", "3"),
		sh(`:0`, "HDEL", "nokey", "a"),
		sh(`:0`, "HDEL", "h", "zz"),
		sh(`:1`, "HDEL", "h", "a", "a", "zz"),
		sh(`:2`, "HLEN", "h"),
		sh(`:2`, "HDEL", "h", "b", "c"),
		sh(`:0`, "HLEN", "h"),
		sh(`nil`, "HGET", "h", "b"),
		sh(`+OK`, "SET", "h", "now a string"),
		sh(`"now a string"`, "GET", "h"),
	},
	"hincrby": {
		sh(`:5`, "HINCRBY", "h", "n", "5"),
		sh(`:2`, "HINCRBY", "h", "n", "-3"),
		sh(`-ERR value is not an integer or out of range`, "HINCRBY", "h", "n", "1.5"),
		sh(`-ERR value is not an integer or out of range`, "HINCRBY", "h", "n", "+1"),
		sh(`-ERR value is not an integer or out of range`, "HINCRBY", "h", "n", "9223372036854775808"),
		sh(`:9223372036854775807`, "HINCRBY", "h", "n", "9223372036854775805"),
		sh(`-ERR increment or decrement would overflow`, "HINCRBY", "h", "n", "1"),
		sh(`:1`, "HSET", "h", "s", "abc"),
		sh(`-ERR hash value is not an integer`, "HINCRBY", "h", "s", "1"),
		sh(`:0`, "HSET", "h", "s", "1.5"),
		sh(`-ERR hash value is not an integer`, "HINCRBY", "h", "s", "1"),
		sh(`:0`, "HSET", "h", "s", "007"),
		sh(`-ERR hash value is not an integer`, "HINCRBY", "h", "s", "1"),
		sh(`:0`, "HSET", "h", "s", "-9223372036854775808"),
		sh(`-ERR increment or decrement would overflow`, "HINCRBY", "h", "s", "-1"),
		sh(`:-9223372036854775807`, "HINCRBY", "h", "s", "1"),
		sh(`"-9223372036854775807"`, "HGET", "h", "s"),
		sh(`:-7`, "HINCRBY", "new", "f", "-7"),
		sh(`+OK`, "SET", "str", "x"),
		sh(`-WRONGTYPE Operation against a key holding the wrong kind of value`, "HINCRBY", "str", "f", "1"),
		sh(`-ERR value is not an integer or out of range`, "HINCRBY", "str", "f", "x"),
	},
	"hincrbyfloat": {
		sh(`"10.5"`, "HINCRBYFLOAT", "h", "f", "10.5"),
		sh(`"10.6"`, "HINCRBYFLOAT", "h", "f", "0.1"),
		sh(`"10.6"`, "HGET", "h", "f"),
		sh(`"5010.60000000000000009"`, "HINCRBYFLOAT", "h", "f", "5.0e3"),
		sh(`"5026.60000000000000009"`, "HINCRBYFLOAT", "h", "f", "0x10"),
		sh(`-ERR value is NaN or Infinity`, "HINCRBYFLOAT", "h", "f", "inf"),
		sh(`-ERR value is NaN or Infinity`, "HINCRBYFLOAT", "h", "f", "-infinity"),
		sh(`-ERR value is not a valid float`, "HINCRBYFLOAT", "h", "f", "nan"),
		sh(`-ERR value is not a valid float`, "HINCRBYFLOAT", "h", "f", "abc"),
		sh(`-ERR value is not a valid float`, "HINCRBYFLOAT", "h", "f", "1e5000"),
		sh(`:1`, "HSET", "h", "s", "abc"),
		sh(`-ERR hash value is not a float`, "HINCRBYFLOAT", "h", "s", "1"),
		sh(`-ERR value is not a valid float`, "HINCRBYFLOAT", "h", "s", "x"),
		sh(`:0`, "HSET", "h", "s", "inf"),
		sh(`-ERR increment would produce NaN or Infinity`, "HINCRBYFLOAT", "h", "s", "1"),
		sh(`:0`, "HSET", "h", "s", "1e4932"),
		sh(`-ERR increment would produce NaN or Infinity`, "HINCRBYFLOAT", "h", "s", "1e4932"),
		sh(`:0`, "HSET", "h", "s", "3.0e3"),
		sh(`"3001"`, "HINCRBYFLOAT", "h", "s", "1"),
		sh(`:3002`, "HINCRBY", "h", "s", "1"),
		sh(`"0.1"`, "HINCRBYFLOAT", "h", "g", "0.1"),
		sh(`"0.3"`, "HINCRBYFLOAT", "h", "g", "0.2"),
		sh(`+OK`, "SET", "str", "x"),
		sh(`-WRONGTYPE Operation against a key holding the wrong kind of value`, "HINCRBYFLOAT", "str", "f", "1"),
		sh(`-ERR value is not a valid float`, "HINCRBYFLOAT", "str", "f", "abc"),
		sh(`-ERR value is NaN or Infinity`, "HINCRBYFLOAT", "str", "f", "inf"),
	},
	"hrandfield": {
		sh(`nil`, "HRANDFIELD", "nokey"),
		sh(`[]`, "HRANDFIELD", "nokey", "2"),
		sh(`[]`, "HRANDFIELD", "nokey", "-2", "WITHVALUES"),
		sh(`-ERR value is not an integer or out of range`, "HRANDFIELD", "nokey", "abc"),
		sh(`-ERR syntax error`, "HRANDFIELD", "nokey", "1", "bad"),
		sh(`:1`, "HSET", "h", "a", "1"),
		sh(`"a"`, "HRANDFIELD", "h"),
		sh(`["a"]`, "HRANDFIELD", "h", "1"),
		sh(`["a" "1"]`, "HRANDFIELD", "h", "1", "WITHVALUES"),
		sh(`["a" "a" "a"]`, "HRANDFIELD", "h", "-3"),
		sh(`["a" "1" "a" "1"]`, "HRANDFIELD", "h", "-2", "withvalues"),
		sh(`[]`, "HRANDFIELD", "h", "0"),
		sh(`[]`, "HRANDFIELD", "h", "0", "WITHVALUES"),
		sh(`:1`, "HSET", "h", "b", "2"),
		sh(`["a" "b"]`, "HRANDFIELD", "h", "2"),
		sh(`["a" "1" "b" "2"]`, "HRANDFIELD", "h", "5", "WITHVALUES"),
		sh(`-ERR value is out of range, value must between -9223372036854775807 and 9223372036854775807`, "HRANDFIELD", "h", "-9223372036854775808"),
		sh(`-ERR value is out of range`, "HRANDFIELD", "h", "9223372036854775807", "WITHVALUES"),
		sh(`-ERR value is out of range`, "HRANDFIELD", "h", "-4611686018427387904", "WITHVALUES"),
		sh(`-ERR syntax error`, "HRANDFIELD", "h", "2", "foo"),
		sh(`-ERR syntax error`, "HRANDFIELD", "h", "2", "WITHVALUES", "x"),
		sh(`+OK`, "SET", "s", "x"),
		sh(`-WRONGTYPE Operation against a key holding the wrong kind of value`, "HRANDFIELD", "s"),
		sh(`-WRONGTYPE Operation against a key holding the wrong kind of value`, "HRANDFIELD", "s", "1"),
		sh(`-ERR syntax error`, "HRANDFIELD", "s", "1", "bad"),
	},
	"hscan": {
		sh(`["0" []]`, "HSCAN", "nokey", "0"),
		sh(`["0" []]`, "HSCAN", "nokey", "0", "COUNT", "0"),
		sh(`-ERR invalid cursor`, "HSCAN", "nokey", "x"),
		sh(`:2`, "HSET", "h", "a", "1", "b", "2"),
		sh(`["0" ["a" "1" "b" "2"]]`, "HSCAN", "h", "0"),
		sh(`["0" ["a" "1" "b" "2"]]`, "HSCAN", "h", "7", "COUNT", "1"),
		sh(`["0" ["a" "1"]]`, "HSCAN", "h", "0", "MATCH", "a*"),
		sh(`["0" ["a" "1" "b" "2"]]`, "HSCAN", "h", "0", "match", "*"),
		sh(`["0" []]`, "HSCAN", "h", "0", "MATCH", "zz"),
		sh(`-ERR invalid cursor`, "HSCAN", "h", "abc"),
		sh(`-ERR invalid cursor`, "HSCAN", "h", " 5"),
		sh(`-ERR invalid cursor`, "HSCAN", "h", "-"),
		sh(`-ERR invalid cursor`, "HSCAN", "h", "18446744073709551616"),
		sh(`-ERR invalid cursor`, "HSCAN", "h", "-18446744073709551616"),
		sh(`["0" ["a" "1" "b" "2"]]`, "HSCAN", "h", "-1"),
		sh(`["0" ["a" "1" "b" "2"]]`, "HSCAN", "h", "+5"),
		sh(`["0" ["a" "1" "b" "2"]]`, "HSCAN", "h", ""),
		sh(`["0" ["a" "1" "b" "2"]]`, "HSCAN", "h", "5\x00x"),
		sh(`["0" ["a" "1" "b" "2"]]`, "HSCAN", "h", "18446744073709551615"),
		sh(`-ERR syntax error`, "HSCAN", "h", "0", "COUNT", "0"),
		sh(`-ERR value is not an integer or out of range`, "HSCAN", "h", "0", "COUNT", "abc"),
		sh(`-ERR syntax error`, "HSCAN", "h", "0", "MATCH"),
		sh(`-ERR syntax error`, "HSCAN", "h", "0", "TYPE", "string"),
		sh(`-ERR syntax error`, "HSCAN", "h", "0", "FOO", "bar"),
		sh(`+OK`, "SET", "s", "x"),
		sh(`-WRONGTYPE Operation against a key holding the wrong kind of value`, "HSCAN", "s", "0"),
		sh(`-WRONGTYPE Operation against a key holding the wrong kind of value`, "HSCAN", "s", "0", "COUNT", "0"),
		sh(`-ERR invalid cursor`, "HSCAN", "s", "x"),
	},
}

func TestHashTables(t *testing.T) {
	for name, steps := range hashTables {
		t.Run(name, func(t *testing.T) { shRun(t, steps) })
	}
}

func TestHashTablesRedis(t *testing.T) {
	ref := shStartRedis(t)
	for name, steps := range hashTables {
		t.Run(name, func(t *testing.T) { shRunRedis(t, ref, steps) })
	}
}

func TestHashConcurrentSetDelAddWins(t *testing.T) {
	rs := shReplicas(2)
	a, b := rs[0], rs[1]
	a.expect(t, ":2", "HSET", "h", "f", "1", "g", "1")
	a.deliver(t, b)
	b.expect(t, ":1", "HDEL", "h", "f") // observed a's f=1 only
	a.expect(t, ":0", "HSET", "h", "f", "2")
	shSync(t, a, b)
	a.expect(t, `"2"`, "HGET", "h", "f")
	b.expect(t, `"2"`, "HGET", "h", "f")
	// HDEL against a concurrent HINCRBY: the observed value goes, the
	// unseen increment survives and the field exists with it alone.
	b.expect(t, ":1", "HDEL", "h", "f")
	a.expect(t, ":5", "HINCRBY", "h", "f", "3")
	shSync(t, a, b)
	a.expect(t, `"3"`, "HGET", "h", "f")
	b.expect(t, `"3"`, "HGET", "h", "f")
	// Concurrent HINCRBYs add up; an HSET removes only what it saw.
	a.expect(t, ":4", "HINCRBY", "h", "f", "1")
	b.expect(t, ":13", "HINCRBY", "h", "f", "10")
	shSync(t, a, b)
	a.expect(t, `"14"`, "HGET", "h", "f")
	a.expect(t, ":15", "HINCRBY", "h", "f", "1")
	b.expect(t, ":0", "HSET", "h", "f", "100")
	shSync(t, a, b)
	b.expect(t, `"101"`, "HGET", "h", "f")
	// Deleting every field concurrently with a new one: the new one stays.
	a.expect(t, ":2", "HDEL", "h", "f", "g")
	b.expect(t, ":1", "HSET", "h", "n", "x")
	shSync(t, a, b)
	a.expect(t, `["n" "x"]`, "HGETALL", "h")
}

func TestHashLastFieldRemovesTTL(t *testing.T) {
	ks, clk := newTestKS(t)
	expect(t, ks, clk, ":2", "HSET", "h", "a", "1", "b", "2")
	mergeExpire(t, ks, "h", testEpochMs+1e9)
	expect(t, ks, clk, ":1", "HDEL", "h", "a")
	if shTTL(ks, "h") == 0 {
		t.Fatal("HDEL of one field dropped the TTL")
	}
	expect(t, ks, clk, ":1", "HDEL", "h", "b")
	expect(t, ks, clk, ":1", "HSET", "h", "c", "3")
	if got := shTTL(ks, "h"); got != 0 {
		t.Fatalf("TTL %d survived the hash's last field", got)
	}
	if n := len(ks.dbs[0].ghosts); n != 0 {
		t.Fatalf("%d ghost TTLs left", n)
	}
}

func TestHashSoloCompactionAndEncoding(t *testing.T) {
	ks, clk := newTestKS(t)
	for i := 0; i < 50; i++ {
		do(t, ks, clk, "HINCRBY", "h", "n", "2")
		do(t, ks, clk, "HINCRBYFLOAT", "h", "f", "0.5")
	}
	expect(t, ks, clk, `"100"`, "HGET", "h", "n")
	expect(t, ks, clk, `"25"`, "HGET", "h", "f")
	e, _ := ks.dbs[0].keys.Get("h")
	h := e.vals[0].(*hashValue)
	h.fields.Each(func(k string, n *numeric) bool {
		if len(n.base) != 1 || len(n.incs()) != 0 {
			t.Errorf("field %s: %d base values, %d increments in solo mode", k, len(n.base), len(n.incs()))
		}
		return true
	})
	if len(h.dirty) != 0 {
		t.Errorf("%d fields still marked for compaction", len(h.dirty))
	}
	if got := h.objectEncoding(); got != "listpack" {
		t.Errorf("small hash encoding %s", got)
	}
	do(t, ks, clk, "HSET", "h", "long", strings.Repeat("v", 65))
	if got := h.objectEncoding(); got != "hashtable" {
		t.Errorf("hash with a 65-byte value: encoding %s", got)
	}
	do(t, ks, clk, "HDEL", "h", "long")
	for i := 0; h.Len() < 512; i++ {
		do(t, ks, clk, "HSET", "h", fmt.Sprint("f", i), "v")
	}
	if got := h.objectEncoding(); got != "listpack" {
		t.Errorf("hash with 512 fields: encoding %s", got)
	}
	do(t, ks, clk, "HSET", "h", "one-more", "v")
	if got := h.objectEncoding(); got != "hashtable" {
		t.Errorf("hash with 513 fields: encoding %s", got)
	}
	var got []Effect
	h.replay(func(f Effect) { got = append(got, f) })
	if len(got) != h.Len() || got[0].Kind != EffHashSet || string(got[0].Field) != "n" || string(got[0].Value) != "100" {
		t.Errorf("replay gave %d effects, first %v", len(got), got[0].String())
	}
}

// TestHashScanLarge checks that a hashtable-encoded hash is returned in
// pages whose union is the whole hash, each field once.
func TestHashScanLarge(t *testing.T) {
	ks, clk := newTestKS(t)
	want := map[string]bool{}
	for i := 0; i < 1000; i++ {
		f := fmt.Sprint("f", i)
		want[f] = true
		do(t, ks, clk, "HSET", "h", f, "v")
	}
	for i := 0; i < 300; i += 3 {
		do(t, ks, clk, "HDEL", "h", fmt.Sprint("f", i))
		delete(want, fmt.Sprint("f", i))
	}
	seen := map[string]int{}
	cursor, pages := "0", 0
	for {
		r := do(t, ks, clk, "HSCAN", "h", cursor, "COUNT", "25")
		cursor = string(r.Elems[0].Str)
		items := r.Elems[1].Elems
		for i := 0; i < len(items); i += 2 {
			seen[string(items[i].Str)]++
		}
		pages++
		if cursor == "0" {
			break
		}
	}
	if pages < 8 {
		t.Errorf("only %d pages for 200 fields with COUNT 25", pages)
	}
	if len(seen) != len(want) {
		t.Errorf("scan saw %d fields, want %d", len(seen), len(want))
	}
	for f, n := range seen {
		if !want[f] || n != 1 {
			t.Errorf("field %s seen %d times (present: %v)", f, n, want[f])
		}
	}
	r := do(t, ks, clk, "HSCAN", "h", "0", "MATCH", "f1?", "COUNT", "1000")
	if n := len(r.Elems[1].Elems) / 2; n != 7 { // f10..f19 but the deleted f12, f15, f18
		t.Errorf("MATCH f1? returned %d fields, want 7", n)
	}
}

func TestHashRandFieldDistinct(t *testing.T) {
	ks, clk := newTestKS(t)
	for i := 0; i < 20; i++ {
		do(t, ks, clk, "HSET", "h", fmt.Sprint("f", i), fmt.Sprint(i))
	}
	for _, count := range []int{3, 10, 19, 20, 25} {
		r := do(t, ks, clk, "HRANDFIELD", "h", fmt.Sprint(count), "WITHVALUES")
		if r.Kind != KindPairs {
			t.Fatalf("WITHVALUES reply kind %d, want pairs", r.Kind)
		}
		seen := map[string]bool{}
		for i := 0; i < len(r.Elems); i += 2 {
			f, v := string(r.Elems[i].Str), string(r.Elems[i+1].Str)
			if seen[f] || "f"+v != f {
				t.Fatalf("count %d: duplicate or wrong pair %s=%s", count, f, v)
			}
			seen[f] = true
		}
		if want := min(count, 20); len(seen) != want {
			t.Errorf("count %d: %d fields, want %d", count, len(seen), want)
		}
	}
	r := do(t, ks, clk, "HRANDFIELD", "h", "-50")
	if len(r.Elems) != 50 {
		t.Errorf("negative count: %d fields, want 50", len(r.Elems))
	}
	// Reads are a pure function of state and seed.
	a := show(ks.Read(0, clk.ms, 42, [][]byte{[]byte("HRANDFIELD"), []byte("h"), []byte("5")}))
	b := show(ks.Read(0, clk.ms, 42, [][]byte{[]byte("HRANDFIELD"), []byte("h"), []byte("5")}))
	if a != b {
		t.Errorf("same seed, different picks: %s vs %s", a, b)
	}
}

// TestJoinCAI checks that Join of string and hash states is commutative,
// associative and idempotent, and equals delivering every batch.
func TestJoinCAI(t *testing.T) {
	rs := shReplicas(3)
	a, b, c := rs[0], rs[1], rs[2]
	a.expect(t, "+OK", "SET", "k", "10")
	a.expect(t, ":2", "HSET", "h", "x", "1", "y", "2")
	a.deliver(t, b)
	early := append([]*Batch(nil), a.out...)
	b.expect(t, ":11", "INCR", "k")
	b.expect(t, ":1", "HDEL", "h", "x")
	b.expect(t, `"0.5"`, "HINCRBYFLOAT", "h", "z", "0.5")
	c.expect(t, "+OK", "SET", "k", "c")
	c.expect(t, ":1", "HSET", "h", "x", "c")
	a.expect(t, ":15", "INCRBY", "k", "5")
	a.expect(t, ":12", "HINCRBY", "h", "y", "10")
	for _, bt := range early {
		if err := c.ks.Merge(bt); err != nil {
			t.Fatal(err)
		}
	}
	b.deliver(t, c)
	c.expect(t, "+OK", "SET", "k", "100") // saw b's INCR, not a's INCRBY
	c.expect(t, "+OK", "SET", "s", "only-c")

	clone := func(k *Keyspace) *Keyspace {
		out, err := Restore(k.Snapshot())
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	join := func(x, y *Keyspace) *Keyspace {
		z := clone(x)
		z.Join(y)
		return z
	}
	A, B, C := a.ks, b.ks, c.ks
	if join(A, B).Digest() != join(B, A).Digest() {
		t.Error("join not commutative")
	}
	if join(join(A, B), C).Digest() != join(A, join(B, C)).Digest() {
		t.Error("join not associative")
	}
	if join(A, A).Digest() != A.Digest() {
		t.Error("join not idempotent")
	}
	all := join(join(A, B), C)
	shSync(t, a, b, c)
	if all.Digest() != a.ks.Digest() {
		t.Error("join of the states differs from delivering every batch")
	}
	// (Slot layouts, hence HGETALL order, depend on history; the content
	// does not.)
	for _, q := range [][]string{{"GET", "k"}, {"HMGET", "h", "x", "y", "z"}, {"HLEN", "h"}, {"GET", "s"}} {
		args := [][]byte{}
		for _, s := range q {
			args = append(args, []byte(s))
		}
		if x, y := show(all.Read(0, 0, 0, args)), show(a.ks.Read(0, 0, 0, args)); x != y {
			t.Errorf("%v: joined %s, merged %s", q, x, y)
		}
	}
	a.expect(t, `"105"`, "GET", "k")
}

// TestHashReplyKinds pins the reply kinds whose RESP3 shapes differ from
// RESP2 (checked with redis-cli -3): HGETALL is a map, HRANDFIELD
// WITHVALUES pairs (nested in RESP3, even with a negative count), the
// float increments bulk strings, not doubles.
func TestHashReplyKinds(t *testing.T) {
	ks, clk := newTestKS(t)
	do(t, ks, clk, "HSET", "h", "f", "1")
	for _, c := range []struct {
		kind ReplyKind
		args []string
	}{
		{KindMap, []string{"HGETALL", "h"}},
		{KindMap, []string{"HGETALL", "nokey"}},
		{KindPairs, []string{"HRANDFIELD", "h", "-2", "WITHVALUES"}},
		{KindPairs, []string{"HRANDFIELD", "h", "2", "WITHVALUES"}},
		{KindArray, []string{"HRANDFIELD", "h", "-2"}},
		{KindArray, []string{"HRANDFIELD", "nokey", "2", "WITHVALUES"}},
		{KindArray, []string{"HKEYS", "h"}},
		{KindArray, []string{"HSCAN", "h", "0"}},
		{KindBulk, []string{"HINCRBYFLOAT", "h", "f", "1.5"}},
		{KindBulk, []string{"INCRBYFLOAT", "k", "1.5"}},
		{KindNil, []string{"HRANDFIELD", "nokey"}},
	} {
		if r := do(t, ks, clk, c.args...); r.Kind != c.kind {
			t.Errorf("%v: reply kind %d, want %d", c.args, r.Kind, c.kind)
		}
	}
}
