package crdt

import (
	"strconv"
	"strings"
	"testing"

	"pgregory.net/rapid"
)

// bitmapTables are sequential sessions whose replies were taken from
// redis-server 7.0.15 (TestBitmapTablesRedis re-checks them when it is
// installed).
var bitmapTables = map[string][]shStep{
	"setbit getbit": {
		sh(`:0`, "SETBIT", "k", "7", "1"),
		sh(`"\x01"`, "GET", "k"),
		sh(`:1`, "SETBIT", "k", "7", "1"),
		sh(`:1`, "SETBIT", "k", "7", "0"),
		sh(`"\x00"`, "GET", "k"),
		sh(`:1`, "STRLEN", "k"),
		sh(`:0`, "SETBIT", "k", "100", "1"),
		sh(`:13`, "STRLEN", "k"),
		sh(`:1`, "GETBIT", "k", "100"),
		sh(`:0`, "GETBIT", "k", "101"),
		sh(`:0`, "GETBIT", "k", "4294967295"),
		sh(`:0`, "GETBIT", "nokey", "5"),
		sh(`-ERR bit offset is not an integer or out of range`, "SETBIT", "k", "-1", "1"),
		sh(`-ERR bit offset is not an integer or out of range`, "SETBIT", "k", "4294967296", "1"),
		sh(`-ERR bit offset is not an integer or out of range`, "SETBIT", "k", "+1", "1"),
		sh(`-ERR bit offset is not an integer or out of range`, "SETBIT", "k", "01", "1"),
		sh(`-ERR bit offset is not an integer or out of range`, "SETBIT", "k", "1.5", "1"),
		sh(`-ERR bit is not an integer or out of range`, "SETBIT", "k", "1", "2"),
		sh(`-ERR bit is not an integer or out of range`, "SETBIT", "k", "1", "-1"),
		sh(`-ERR bit is not an integer or out of range`, "SETBIT", "k", "1", "abc"),
		sh(`-ERR bit offset is not an integer or out of range`, "SETBIT", "k", "abc", "abc"),
		sh(`-ERR bit offset is not an integer or out of range`, "GETBIT", "k", "abc"),
		sh(`-ERR bit offset is not an integer or out of range`, "GETBIT", "k", "4294967296"),
		sh(`+OK`, "SET", "n", "12"),
		sh(`:1`, "GETBIT", "n", "2"),
		sh(`:0`, "SETBIT", "n", "6", "1"),
		sh(`"32"`, "GET", "n"),
		sh(`:33`, "INCR", "n"),
		sh(`:1`, "HSET", "h", "f", "v"),
		sh(`-WRONGTYPE Operation against a key holding the wrong kind of value`, "SETBIT", "h", "1", "1"),
		sh(`-WRONGTYPE Operation against a key holding the wrong kind of value`, "GETBIT", "h", "1"),
		sh(`-ERR bit offset is not an integer or out of range`, "SETBIT", "h", "-1", "1"),
	},
	"bitcount": {
		sh(`+OK`, "SET", "s", "foobar"),
		sh(`:26`, "BITCOUNT", "s"),
		sh(`:4`, "BITCOUNT", "s", "0", "0"),
		sh(`:6`, "BITCOUNT", "s", "1", "1"),
		sh(`:6`, "BITCOUNT", "s", "1", "1", "BYTE"),
		sh(`:17`, "BITCOUNT", "s", "5", "30", "BIT"),
		sh(`:4`, "BITCOUNT", "s", "-1", "-1"),
		sh(`:1`, "BITCOUNT", "s", "-2", "-1", "bit"),
		sh(`:0`, "BITCOUNT", "s", "-1", "-2"),
		sh(`:0`, "BITCOUNT", "s", "-1", "-2", "FOO"),
		sh(`-ERR syntax error`, "BITCOUNT", "s", "0", "-1", "FOO"),
		sh(`-ERR syntax error`, "BITCOUNT", "s", "0"),
		sh(`-ERR value is not an integer or out of range`, "BITCOUNT", "s", "a", "b"),
		sh(`-ERR value is not an integer or out of range`, "BITCOUNT", "s", "0", "b"),
		sh(`-ERR syntax error`, "BITCOUNT", "s", "0", "1", "bit", "x"),
		sh(`:0`, "BITCOUNT", "nokey", "0"),
		sh(`:0`, "BITCOUNT", "nokey", "a", "b", "c", "d"),
		sh(`:0`, "BITCOUNT", "s", "100", "200"),
		sh(`:4`, "BITCOUNT", "s", "-100", "-50"),
		sh(`:26`, "BITCOUNT", "s", "-100", "100"),
		sh(`+OK`, "SET", "e", ""),
		sh(`:0`, "BITCOUNT", "e"),
		sh(`:0`, "BITCOUNT", "e", "0", "-1", "BIT"),
		sh(`+OK`, "SET", "n", "1234"),
		sh(`:13`, "BITCOUNT", "n"),
		sh(`:1`, "HSET", "h", "f", "v"),
		sh(`-WRONGTYPE Operation against a key holding the wrong kind of value`, "BITCOUNT", "h"),
		sh(`-WRONGTYPE Operation against a key holding the wrong kind of value`, "BITCOUNT", "h", "a", "b"),
	},
	"bitpos": {
		sh(`+OK`, "SET", "s", "\xff\xf0\x00"),
		sh(`:12`, "BITPOS", "s", "0"),
		sh(`:0`, "BITPOS", "s", "1"),
		sh(`:8`, "BITPOS", "s", "1", "1"),
		sh(`:12`, "BITPOS", "s", "0", "1", "1"),
		sh(`:16`, "BITPOS", "s", "0", "2"),
		sh(`:-1`, "BITPOS", "s", "1", "2"),
		sh(`:0`, "BITPOS", "s", "1", "0", "-1", "BIT"),
		sh(`:-1`, "BITPOS", "s", "0", "3", "10", "BIT"),
		sh(`:9`, "BITPOS", "s", "1", "9", "11", "bit"),
		sh(`:-1`, "BITPOS", "s", "0", "0", "7", "bit"),
		sh(`:0`, "BITPOS", "s", "1", "0", "0", "BYTE"),
		sh(`:16`, "BITPOS", "s", "0", "-1"),
		sh(`-ERR The bit argument must be 1 or 0.`, "BITPOS", "s", "2"),
		sh(`-ERR The bit argument must be 1 or 0.`, "BITPOS", "s", "-1"),
		sh(`-ERR value is not an integer or out of range`, "BITPOS", "s", "x"),
		sh(`-ERR value is not an integer or out of range`, "BITPOS", "s", "1", "a"),
		sh(`-ERR value is not an integer or out of range`, "BITPOS", "s", "1", "0", "a"),
		sh(`-ERR syntax error`, "BITPOS", "s", "1", "0", "1", "FOO"),
		sh(`-ERR syntax error`, "BITPOS", "s", "1", "0", "1", "bit", "x"),
		sh(`:0`, "BITPOS", "nokey", "0"),
		sh(`:-1`, "BITPOS", "nokey", "1"),
		sh(`:-1`, "BITPOS", "nokey", "1", "a", "b", "c", "d"),
		sh(`-ERR The bit argument must be 1 or 0.`, "BITPOS", "nokey", "2"),
		sh(`+OK`, "SET", "full", "\xff\xff"),
		sh(`:16`, "BITPOS", "full", "0"),
		sh(`:16`, "BITPOS", "full", "0", "0"),
		sh(`:-1`, "BITPOS", "full", "0", "0", "-1"),
		sh(`:-1`, "BITPOS", "full", "0", "0", "15", "BIT"),
		sh(`-ERR value is not an integer or out of range`, "BITPOS", "full", "0", "5", "BIT"),
		sh(`+OK`, "SET", "e", ""),
		sh(`:-1`, "BITPOS", "e", "0"),
		sh(`:-1`, "BITPOS", "e", "1"),
		sh(`:-1`, "BITPOS", "s", "1", "5", "2"),
		sh(`:0`, "BITPOS", "s", "1", "-100", "100"),
	},
	"bitop": {
		sh(`+OK`, "SET", "a", "abc"),
		sh(`+OK`, "SET", "b", "\x01\x02\x03\x04"),
		sh(`:4`, "BITOP", "AND", "d", "a", "b"),
		sh(`"\x01\x02\x03\x00"`, "GET", "d"),
		sh(`:4`, "BITOP", "or", "d", "a", "b"),
		sh(`"abc\x04"`, "GET", "d"),
		sh(`:4`, "BITOP", "XOR", "d", "a", "b", "nokey"),
		sh("\"```\\x04\"", "GET", "d"),
		sh(`:3`, "BITOP", "NOT", "d", "a"),
		sh(`"\x9e\x9d\x9c"`, "GET", "d"),
		sh(`-ERR BITOP NOT must be called with a single source key.`, "BITOP", "NOT", "d", "a", "b"),
		sh(`-ERR syntax error`, "BITOP", "NAND", "d", "a"),
		sh(`-ERR syntax error`, "BITOP", "", "d", "a"),
		sh(`:0`, "BITOP", "AND", "d", "nokey", "nokey2"),
		sh(`:0`, "EXISTS", "d"),
		sh(`:1`, "HSET", "h", "f", "v"),
		sh(`-WRONGTYPE Operation against a key holding the wrong kind of value`, "BITOP", "AND", "d", "a", "h"),
		sh(`:3`, "BITOP", "AND", "h", "a"),
		sh(`+string`, "TYPE", "h"),
		sh(`"abc"`, "GET", "h"),
		sh(`+OK`, "SET", "t", "v", "EX", "1000"),
		sh(`:3`, "BITOP", "OR", "t", "a"),
		sh(`:-1`, "TTL", "t"),
		sh(`:3`, "BITOP", "AND", "d", "a"),
		sh(`"abc"`, "GET", "d"),
		sh(`:3`, "BITOP", "AND", "a", "a", "nokey"),
		sh(`"\x00\x00\x00"`, "GET", "a"),
	},
	"bitfield": {
		sh(`[:0 :255]`, "BITFIELD", "bf", "SET", "u8", "0", "255", "GET", "u8", "0"),
		sh(`[:9]`, "BITFIELD", "bf", "INCRBY", "u8", "0", "10"),
		sh(`[:255 :0]`, "BITFIELD", "bf", "OVERFLOW", "SAT", "INCRBY", "u8", "0", "300", "INCRBY", "u8", "0", "-300"),
		sh(`[nil :0]`, "BITFIELD", "bf", "OVERFLOW", "FAIL", "INCRBY", "u8", "0", "300", "GET", "u8", "0"),
		sh(`[:0 :-100 :156]`, "BITFIELD", "bf", "SET", "i8", "#1", "-100", "GET", "i8", "#1", "GET", "u8", "8"),
		sh(`[:56]`, "BITFIELD", "bf", "INCRBY", "i8", "#1", "-100"),
		sh(`[:-44 :-45]`, "BITFIELD", "bf", "OVERFLOW", "SAT", "INCRBY", "i8", "#1", "-100", "OVERFLOW", "WRAP", "INCRBY", "i8", "#1", "-1"),
		sh(`[:59391220085948416 :-1 :9223372036854775807 :-1]`, "BITFIELD", "bf", "SET", "i64", "0", "-1", "GET", "i64", "0", "GET", "u63", "1", "GET", "i5", "3"),
		sh(`[:-9223372036854775808 :9223372036854775803]`, "BITFIELD", "bf", "INCRBY", "i64", "0", "-9223372036854775807", "INCRBY", "i64", "0", "-5"),
		sh(`[:9223372036854775798]`, "BITFIELD", "bf", "OVERFLOW", "SAT", "INCRBY", "i64", "0", "-5"),
		sh(`[nil nil :127 :255]`, "BITFIELD", "bf", "OVERFLOW", "FAIL", "SET", "u8", "0", "256", "SET", "u8", "0", "-1", "OVERFLOW", "SAT", "SET", "u8", "0", "-1", "GET", "u8", "0"),
		sh(`[:-1 :127 :127 :-128]`, "BITFIELD", "bf", "OVERFLOW", "SAT", "SET", "i8", "0", "200", "GET", "i8", "0", "SET", "i8", "0", "-200", "GET", "i8", "0"),
		sh(`[:0 :1 :0]`, "BITFIELD", "bf", "SET", "u3", "5", "9", "GET", "u3", "5", "GET", "u1", "5"),
		sh(`"\x81\xff\xff\xff\xff\xff\xff\xf6"`, "GET", "bf"),
		sh(`-ERR Invalid bitfield type. Use something like i16 u8. Note that u64 is not supported but i64 is.`, "BITFIELD", "bf", "GET", "u64", "0"),
		sh(`-ERR Invalid bitfield type. Use something like i16 u8. Note that u64 is not supported but i64 is.`, "BITFIELD", "bf", "GET", "i65", "0"),
		sh(`-ERR Invalid bitfield type. Use something like i16 u8. Note that u64 is not supported but i64 is.`, "BITFIELD", "bf", "GET", "x8", "0"),
		sh(`-ERR Invalid bitfield type. Use something like i16 u8. Note that u64 is not supported but i64 is.`, "BITFIELD", "bf", "GET", "i0", "0"),
		sh(`-ERR Invalid bitfield type. Use something like i16 u8. Note that u64 is not supported but i64 is.`, "BITFIELD", "bf", "GET", "u", "0"),
		sh(`-ERR bit offset is not an integer or out of range`, "BITFIELD", "bf", "GET", "u8", "-1"),
		sh(`-ERR bit offset is not an integer or out of range`, "BITFIELD", "bf", "GET", "u8", "#-1"),
		sh(`-ERR bit offset is not an integer or out of range`, "BITFIELD", "bf", "GET", "u8", "abc"),
		sh(`-ERR bit offset is not an integer or out of range`, "BITFIELD", "bf", "GET", "u8", "4294967296"),
		sh(`-ERR value is not an integer or out of range`, "BITFIELD", "bf", "SET", "u8", "0", "abc"),
		sh(`-ERR syntax error`, "BITFIELD", "bf", "SET", "u8", "0"),
		sh(`-ERR syntax error`, "BITFIELD", "bf", "GET", "u8"),
		sh(`-ERR Invalid OVERFLOW type specified`, "BITFIELD", "bf", "OVERFLOW", "FOO", "GET", "u8", "0"),
		sh(`-ERR syntax error`, "BITFIELD", "bf", "OVERFLOW"),
		sh(`-ERR syntax error`, "BITFIELD", "bf", "FOO"),
		sh(`[]`, "BITFIELD", "bf"),
		sh(`[:0]`, "BITFIELD", "nokey", "GET", "u8", "0"),
		sh(`:0`, "EXISTS", "nokey"),
		sh(`[nil]`, "BITFIELD", "nokey2", "OVERFLOW", "FAIL", "INCRBY", "u2", "100", "5"),
		sh(`"\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00"`, "GET", "nokey2"),
		sh(`[:129 :8191]`, "BITFIELD_RO", "bf", "GET", "u8", "0", "GET", "i16", "4"),
		sh(`-ERR BITFIELD_RO only supports the GET subcommand`, "BITFIELD_RO", "bf", "GET", "u8", "0", "SET", "u8", "0", "1"),
		sh(`-ERR Invalid bitfield type. Use something like i16 u8. Note that u64 is not supported but i64 is.`, "BITFIELD_RO", "bf", "INCRBY", "u8", "0", "1", "GET", "x", "0"),
		sh(`[:0]`, "BITFIELD_RO", "nokey", "GET", "u8", "0"),
		sh(`:1`, "HSET", "h", "f", "v"),
		sh(`-WRONGTYPE Operation against a key holding the wrong kind of value`, "BITFIELD", "h", "GET", "u8", "0"),
		sh(`-WRONGTYPE Operation against a key holding the wrong kind of value`, "BITFIELD", "h", "SET", "u8", "0", "1"),
		sh(`-WRONGTYPE Operation against a key holding the wrong kind of value`, "BITFIELD_RO", "h", "GET", "u8", "0"),
		sh(`-ERR BITFIELD_RO only supports the GET subcommand`, "BITFIELD_RO", "h", "SET", "u8", "0", "1"),
		sh(`-ERR Invalid bitfield type. Use something like i16 u8. Note that u64 is not supported but i64 is.`, "BITFIELD", "h", "GET", "x8", "0"),
		sh(`+OK`, "SET", "n", "7"),
		sh(`[:55 :0]`, "BITFIELD", "n", "GET", "u8", "0", "SET", "u8", "8", "49"),
		sh(`"71"`, "GET", "n"),
	},
}

func TestBitmapTables(t *testing.T) {
	for name, steps := range bitmapTables {
		t.Run(name, func(t *testing.T) { shRun(t, steps) })
	}
}

func TestBitmapTablesRedis(t *testing.T) {
	ref := shStartRedis(t)
	for name, steps := range bitmapTables {
		t.Run(name, func(t *testing.T) { shRunRedis(t, ref, steps) })
	}
}

// A bitmap is an LWW string: concurrent SETBITs of different bits in two
// regions keep one side's whole string (the later stamp), not the union of
// the bits. This is the documented rule (docs/bitmaps-geo.md).
func TestBitmapConcurrentSetBitsLastWriterWins(t *testing.T) {
	rs := shReplicas(2)
	a, b := rs[0], rs[1]
	a.expect(t, ":0", "SETBIT", "k", "0", "1")
	shSync(t, a, b)
	a.expect(t, ":0", "SETBIT", "k", "1", "1")  // "\xc0"
	b.ms += 5                                   // b's write is later
	b.expect(t, ":0", "SETBIT", "k", "15", "1") // "\x80\x01"
	shSync(t, a, b)
	for _, r := range rs {
		r.expect(t, `"\x80\x01"`, "GET", "k")
		r.expect(t, ":0", "GETBIT", "k", "1") // a's bit is lost
		r.expect(t, ":2", "BITCOUNT", "k")
	}
	// BITFIELD writes follow the same rule; reads see the merged string.
	a.expect(t, "[:128]", "BITFIELD", "k", "SET", "u8", "0", "7")
	shSync(t, a, b)
	b.expect(t, "[:7 :1]", "BITFIELD_RO", "k", "GET", "u8", "0", "GET", "u8", "8")
}

// BITOP's destination is a whole-key write: the observed content and TTL
// go; an increment the writer had not seen survives as with SET.
func TestBitmapBitopDestinationOverwrites(t *testing.T) {
	rs := shReplicas(2)
	a, b := rs[0], rs[1]
	a.expect(t, "+OK", "SET", "src", "\x0f")
	a.expect(t, ":1", "HSET", "dst", "f", "v")
	a.expect(t, ":1", "EXPIRE", "dst", "1000")
	shSync(t, a, b)
	b.expect(t, ":1", "BITOP", "NOT", "dst", "src")
	shSync(t, a, b)
	for _, r := range rs {
		r.expect(t, `"\xf0"`, "GET", "dst")
		r.expect(t, ":-1", "TTL", "dst")
	}
	// An empty result deletes the destination.
	a.expect(t, ":0", "BITOP", "AND", "dst", "nosuch")
	shSync(t, a, b)
	b.expect(t, ":0", "EXISTS", "dst")
}

// bitmapGens drive the convergence harness with bitmap writes mixed with
// plain string writes, counters and deletes on the same keys.
var bitmapGens = []cmdGen{
	{"string", []string{"SETBIT"}, func(d draws, k string, _ int64) []string {
		return []string{"SETBIT", k, strconv.Itoa(d.intn(24, "bit")), strconv.Itoa(d.intn(2, "on"))}
	}},
	{"string", []string{"BITFIELD"}, func(d draws, k string, _ int64) []string {
		ow := []string{"WRAP", "SAT", "FAIL"}[d.intn(3, "ow")]
		return []string{"BITFIELD", k, "OVERFLOW", ow, "INCRBY", "i5", strconv.Itoa(d.intn(20, "boff")), nonzero(d, "by"),
			"SET", "u4", "#" + strconv.Itoa(d.intn(4, "idx")), small(d, "v")}
	}},
	{"string", []string{"BITOP"}, func(d draws, k string, _ int64) []string {
		op := []string{"AND", "OR", "XOR", "NOT"}[d.intn(4, "op")]
		if op == "NOT" {
			return []string{"BITOP", op, k, otherKey(d, k)}
		}
		return []string{"BITOP", op, k, otherKey(d, k), otherKey(d, k)}
	}},
	{"string", []string{"SET"}, func(d draws, k string, _ int64) []string { return []string{"SET", k, small(d, "val")} }},
	{"string", []string{"INCRBY"}, func(d draws, k string, _ int64) []string { return []string{"INCRBY", k, nonzero(d, "by")} }},
	{"string", []string{"APPEND"}, func(d draws, k string, _ int64) []string { return []string{"APPEND", k, "\x01"} }},
	{"keys", []string{"DEL"}, func(d draws, k string, _ int64) []string { return []string{"DEL", k} }},
}

// TestConvergeBitmaps: SETBIT, BITFIELD and BITOP on several replicas with
// random delivery, duplicates, transfers and restarts converge to one
// digest (the harness's checks; the reference model has no bitmaps, so
// values are compared across replicas, not against the model).
func TestConvergeBitmaps(t *testing.T) {
	w := newWorkloadOf(bitmapGens)
	if len(w.gens) < len(bitmapGens) {
		t.Skip("bitmap commands not all registered")
	}
	counts = simCounts{}
	rapid.Check(t, func(rt *rapid.T) {
		if err := runSim(rapidDraws{rt}, w, simOpts{noModel: true}); err != nil {
			rt.Fatal(err)
		}
	})
	t.Logf("exercised: %v", &counts)
}

// FuzzBitfield checks that no BITFIELD argument list panics, and that a
// read-only one never writes.
func FuzzBitfield(f *testing.F) {
	f.Add("SET i64 #3 -9223372036854775808 INCRBY u63 0 -1 GET i1 4294967295")
	f.Add("OVERFLOW FAIL INCRBY i8 #-1 1")
	f.Fuzz(func(t *testing.T, s string) {
		ks, clk := newTestKS(t)
		args := append([]string{"BITFIELD", "k"}, strings.Fields(s)...)
		do(t, ks, clk, "SET", "k", "\xff\x00\xaa")
		r := do(t, ks, clk, args...)
		if !r.IsError() && len(r.Elems) > len(args) {
			t.Fatalf("%q: %d replies", args, len(r.Elems))
		}
	})
}

// The word- and byte-skipping scans agree with a bit-by-bit scan.
func TestBitScansMatchNaive(t *testing.T) {
	r := NewRand(3)
	for trial := 0; trial < 3000; trial++ {
		s := make([]byte, 1+r.Uint64()%40)
		for i := range s {
			switch r.Uint64() % 3 {
			case 0:
				s[i] = 0
			case 1:
				s[i] = 0xff
			default:
				s[i] = byte(r.Uint64())
			}
		}
		nbits := int64(len(s)) * 8
		from := int64(r.Uint64() % uint64(nbits))
		to := from + int64(r.Uint64()%uint64(nbits-from))
		var count int64
		first := [2]int64{-1, -1}
		for i := from; i <= to; i++ {
			b := getBitAt(s, uint64(i))
			count += int64(b)
			if first[b] < 0 {
				first[b] = i
			}
		}
		if got := popcountBits(s, from, to); got != count {
			t.Fatalf("popcountBits(%x, %d, %d) = %d, want %d", s, from, to, got, count)
		}
		for bit := uint64(0); bit < 2; bit++ {
			if got := firstBit(s, from, to, bit); got != first[bit] {
				t.Fatalf("firstBit(%x, %d, %d, %d) = %d, want %d", s, from, to, bit, got, first[bit])
			}
		}
	}
}
