package crdt

import (
	"bytes"
	"fmt"
	"math/rand"
	"strconv"
	"testing"

	"pgregory.net/rapid"
)

// hllCorrupt is a sparse HLL whose opcodes cover one register, not 16384:
// it passes the header check, so Redis answers INVALIDOBJ when reading it.
var hllCorrupt = "HYLL\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x80\x00"

// hllTrailing is a sparse HLL whose XZERO covers all 16384 registers,
// followed by one more VAL opcode.
const hllTrailing = "HYLL\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x80\x7f\xff\x80"

// hllXYZ is Redis's value after PFADD h x y, PFADD h z.
const hllXYZ = "HYLL\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x80a\x84\x80X͈E\xa0\x84\b"

// hllTables were checked against redis-server 7.0.15; TestHLLTablesRedis
// re-checks them when it is installed.
var hllTables = map[string][]shStep{
	"basics": {
		sh(`:0`, "PFCOUNT", "h"),
		sh(`:1`, "PFADD", "h", "a", "b", "c"),
		sh(`:0`, "PFADD", "h", "a"),
		sh(`:0`, "PFADD", "h"),
		sh(`:3`, "PFCOUNT", "h"),
		sh(`"HYLL\x01\x00\x00\x00\x03\x00\x00\x00\x00\x00\x00\x00`+"`"+`\xf3\x80P\xb1\x84K\xfb\x80BZ"`, "GET", "h"),
		sh(`+string`, "TYPE", "h"),
		sh(`"raw"`, "OBJECT", "ENCODING", "h"),
		sh(`:1`, "PFADD", "e"),
		sh(`"HYLL\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x80\x7f\xff"`, "GET", "e"),
		sh(`:0`, "PFCOUNT", "e"),
		sh(`"HYLL\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x7f\xff"`, "GET", "e"),
		sh(`:3`, "PFCOUNT", "h", "e", "missing"),
		sh(`+OK`, "PFMERGE", "m", "h", "missing"),
		sh(`:3`, "PFCOUNT", "m"),
		sh(`["0" ["m"]]`, "SCAN", "0", "TYPE", "string", "MATCH", "m"),
	},
	"errors": {
		sh(`+OK`, "SET", "s", "hello"),
		sh(`-WRONGTYPE Key is not a valid HyperLogLog string value.`, "PFADD", "s", "a"),
		sh(`-WRONGTYPE Key is not a valid HyperLogLog string value.`, "PFCOUNT", "s"),
		sh(`-WRONGTYPE Key is not a valid HyperLogLog string value.`, "PFMERGE", "d", "s"),
		sh(`:0`, "EXISTS", "d"),
		sh(`:1`, "HSET", "hh", "f", "v"),
		sh(`-WRONGTYPE Operation against a key holding the wrong kind of value`, "PFADD", "hh", "a"),
		sh(`-WRONGTYPE Operation against a key holding the wrong kind of value`, "PFCOUNT", "x", "hh"),
		sh(`-WRONGTYPE Operation against a key holding the wrong kind of value`, "PFMERGE", "hh", "x"),
		sh(`+OK`, "SET", "c", hllCorrupt),
		sh(`-INVALIDOBJ Corrupted HLL object detected`, "PFCOUNT", "c"),
		sh(`-INVALIDOBJ Corrupted HLL object detected`, "PFCOUNT", "c", "x"),
		sh(`-INVALIDOBJ Corrupted HLL object detected`, "PFADD", "c", "a"),
		sh(`-INVALIDOBJ Corrupted HLL object detected`, "PFMERGE", "x", "c"),
		// Opcodes covering every register and one more: Redis (with the
		// CVE-2025-32023 fix) refuses it on every path.
		sh(`+OK`, "SET", "c2", hllTrailing),
		sh(`-INVALIDOBJ Corrupted HLL object detected`, "PFCOUNT", "c2"),
		sh(`-INVALIDOBJ Corrupted HLL object detected`, "PFCOUNT", "c2", "x"),
		sh(`-INVALIDOBJ Corrupted HLL object detected`, "PFMERGE", "x", "c2"),
		sh(`-INVALIDOBJ Corrupted HLL object detected`, "PFDEBUG", "todense", "c2"),
		sh(`-INVALIDOBJ Corrupted HLL object detected`, "PFDEBUG", "getreg", "c2"),
		sh(`+OK`, "SET", "hd", "HYLL\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00"),
		sh(`-WRONGTYPE Key is not a valid HyperLogLog string value.`, "PFADD", "hd", "a"),
		sh(`+OK`, "SET", "he", "HYLL\x02\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x7f\xff"),
		sh(`-WRONGTYPE Key is not a valid HyperLogLog string value.`, "PFCOUNT", "he"),
		sh(`-ERR wrong number of arguments for 'pfadd' command`, "PFADD"),
		sh(`-ERR wrong number of arguments for 'pfcount' command`, "PFCOUNT"),
		sh(`-ERR wrong number of arguments for 'pfmerge' command`, "PFMERGE"),
		sh(`-ERR wrong number of arguments for 'pfdebug' command`, "PFDEBUG", "encoding"),
		sh(`-ERR The specified key does not exist`, "PFDEBUG", "encoding", "nokey"),
		sh(`-ERR wrong number of arguments for 'pfselftest' command`, "PFSELFTEST", "x"),
		sh(`-WRONGTYPE Key is not a valid HyperLogLog string value.`, "PFDEBUG", "encoding", "s"),
	},
	"as-string": {
		sh(`:1`, "PFADD", "h", "x", "y"),
		sh(`:1`, "PFADD", "h", "z"),
		sh(strconv.Quote(hllXYZ), "GET", "h"),
		sh(`:26`, "STRLEN", "h"),
		sh(`"HYLL"`, "GETRANGE", "h", "0", "3"),
		sh(`-ERR value is not an integer or out of range`, "INCR", "h"),
		sh(`-ERR value is not a valid float`, "INCRBYFLOAT", "h", "1"),
		// A copy written with SET is an HLL to PF* commands.
		sh(`+OK`, "SET", "c", hllXYZ),
		sh(`"embstr"`, "OBJECT", "ENCODING", "c"),
		sh(`:3`, "PFCOUNT", "c"),
		sh(strconv.Quote(hllXYZ[:8]+"\x03\x00\x00\x00\x00\x00\x00\x00"+hllXYZ[16:]), "GET", "c"),
		sh(`:1`, "PFADD", "c", "w"),
		sh(`:4`, "PFCOUNT", "c"),
		sh(`:4`, "PFCOUNT", "c", "h"),
		sh(`:1`, "EXPIRE", "c", "100"),
		sh(`:1`, "PFADD", "c", "v"),
		sh(`:100`, "TTL", "c"),
		sh(`+OK`, "PFMERGE", "c", "h"),
		sh(`:100`, "TTL", "c"),
		sh(`"raw"`, "OBJECT", "ENCODING", "c"),
		// String writes turn it back into a plain string.
		sh(`:27`, "APPEND", "h", "!"),
		sh(`+string`, "TYPE", "h"),
		sh(`-INVALIDOBJ Corrupted HLL object detected`, "PFCOUNT", "h"),
		sh(`:27`, "SETRANGE", "h", "0", "XYLL"),
		sh(`-WRONGTYPE Key is not a valid HyperLogLog string value.`, "PFCOUNT", "h"),
		sh(`+OK`, "SET", "h", "v"),
		sh(`"v"`, "GET", "h"),
		sh(`"v"`, "GETDEL", "h"),
		sh(`+OK`, "SET", "d", "HYLL"),
		sh(`[nil "HYLL"]`, "MGET", "h", "d"),
	},
	"rename-copy": {
		sh(`:1`, "PFADD", "a", "1", "2", "3", "4"),
		sh(`+OK`, "RENAME", "a", "b"),
		sh(`:4`, "PFCOUNT", "b"),
		sh(`:1`, "COPY", "b", "c"),
		sh(`:1`, "PFADD", "c", "5"),
		sh(`:5`, "PFCOUNT", "c"),
		sh(`:4`, "PFCOUNT", "b"),
		sh(`:5`, "PFCOUNT", "b", "c"),
		sh(`:1`, "PFDEBUG", "todense", "c"),
		sh(`:0`, "PFDEBUG", "todense", "c"),
		sh(`+dense`, "PFDEBUG", "encoding", "c"),
		sh(`:12304`, "STRLEN", "c"),
		sh(`+sparse`, "PFDEBUG", "encoding", "b"),
		sh(`"Z:495 v:2,1 Z:7031 v:1,1 Z:3445 v:1,1 Z:4397 v:4,1 Z:1012"`, "PFDEBUG", "decode", "b"),
		sh(`-ERR HLL encoding is not sparse`, "PFDEBUG", "decode", "c"),
		sh(`-ERR Unknown PFDEBUG subcommand 'foo'`, "PFDEBUG", "foo", "c"),
		sh(`+OK`, "PFMERGE", "b", "c"),
		sh(`+dense`, "PFDEBUG", "encoding", "b"),
		sh(`:5`, "PFCOUNT", "b"),
	},
}

func TestHLLTables(t *testing.T) {
	for name, steps := range hllTables {
		t.Run(name, func(t *testing.T) { shRun(t, steps) })
		t.Run(name+"/multiregion", func(t *testing.T) {
			// Not solo: no compaction, so the bytes come from replaying
			// the event history.
			ks := NewKeyspace(testOrigin, Options{})
			clk := &testClock{ms: testEpochMs}
			for _, s := range steps {
				expect(t, ks, clk, s.want, s.args...)
			}
		})
	}
}

func TestHLLTablesRedis(t *testing.T) {
	ref := shStartRedis(t)
	for name, steps := range hllTables {
		t.Run(name, func(t *testing.T) { shRunRedis(t, ref, steps) })
	}
}

// TestHLLRandomRedis runs random HLL sessions against a real Redis and a
// solo and a multi-region keyspace, comparing every reply and, after every
// write, the stored bytes of every key (GET). Batches of hundreds of
// elements cross the sparse size limit and the dense conversion.
func TestHLLRandomRedis(t *testing.T) {
	ref := shStartRedis(t)
	seeds := 30
	if testing.Short() {
		seeds = 4
	}
	for seed := 1; seed <= seeds; seed++ {
		ref.do(t, "FLUSHALL")
		solo, clk := newTestKS(t)
		multi := NewKeyspace(testOrigin, Options{})
		mclk := &testClock{ms: testEpochMs}
		rng := rand.New(rand.NewSource(int64(seed)))
		keys := []string{"p0", "p1", "p2", "s0"}
		key := func() string { return keys[rng.Intn(len(keys))] }
		next := 0
		for step := 0; step < 400; step++ {
			var args []string
			switch x := rng.Intn(100); {
			case x < 45:
				args = []string{"PFADD", key()}
				n := rng.Intn(4)
				if rng.Intn(6) == 0 {
					n = 50 + rng.Intn(600)
				}
				for i := 0; i < n; i++ {
					if rng.Intn(3) == 0 {
						args = append(args, "e"+strconv.Itoa(rng.Intn(next+1))) // an old one
					} else {
						next++
						args = append(args, "e"+strconv.Itoa(next))
					}
				}
			case x < 65:
				args = []string{"PFCOUNT", key()}
				for i := rng.Intn(3); i > 0; i-- {
					args = append(args, key())
				}
			case x < 80:
				args = []string{"PFMERGE", key()}
				for i := rng.Intn(3); i > 0; i-- {
					args = append(args, key())
				}
			case x < 85:
				// A string copy of an HLL: the next PF* write takes it over.
				src := key()
				v := ref.do(t, "GET", src)
				if v == "nil" {
					continue
				}
				b, err := strconv.Unquote(v)
				if err != nil {
					t.Fatal(err)
				}
				args = []string{"SET", key(), b}
			case x < 88:
				args = []string{"DEL", key()}
			case x < 91:
				args = []string{"PFDEBUG", []string{"todense", "encoding", "decode"}[rng.Intn(3)], key()}
			case x < 92:
				// Damage a value: the corrupt-encoding paths must fail
				// (or not) exactly where Redis's do.
				args = []string{"SETRANGE", key(), strconv.Itoa(16 + rng.Intn(40)), string([]byte{byte(rng.Intn(256))})}
			case x < 94:
				args = []string{"APPEND", "s0", "x"}
			default:
				args = []string{"SET", "s0", "plain"}
			}
			want := ref.do(t, args...)
			if got := show(do(t, solo, clk, args...)); got != want {
				t.Fatalf("seed %d step %d %.80q: solo got %.200s, redis %.200s", seed, step, args, got, want)
			}
			if got := show(do(t, multi, mclk, args...)); got != want {
				t.Fatalf("seed %d step %d %.80q: multi-region got %.200s, redis %.200s", seed, step, args, got, want)
			}
			for _, k := range keys {
				want := ref.do(t, "GET", k)
				if got := show(do(t, solo, clk, "GET", k)); got != want {
					t.Fatalf("seed %d step %d after %.80q: GET %s differs (solo)\n got %.300s\nwant %.300s", seed, step, args, k, got, want)
				}
				if got := show(do(t, multi, mclk, "GET", k)); got != want {
					t.Fatalf("seed %d step %d after %.80q: GET %s differs (multi-region)", seed, step, args, k)
				}
			}
		}
	}
}

// TestHLLSparseLimits covers the two promotions Redis makes from sparse to
// dense: a sparse value growing past hll-sparse-max-bytes, and a register
// count above 32 (which the sparse VAL opcode cannot hold; PFADD gets one
// about once in 2^32 elements, so the register is set directly).
func TestHLLSparseLimits(t *testing.T) {
	b := hllNewSparse()
	var r int
	for i := 0; i < 5000 && b[4] == hllSparse; i++ {
		prev := len(b)
		reg, count := hllPatLen([]byte("x" + strconv.Itoa(i)))
		b, r = hllSet(b, reg, count)
		if r < 0 {
			t.Fatal("corrupt")
		}
		if b[4] == hllSparse && len(b) > hllSparseMaxBytes {
			t.Fatalf("sparse value grew to %d bytes", len(b))
		}
		if b[4] == hllDense && prev+3 <= hllSparseMaxBytes-2 {
			t.Fatalf("promoted at %d bytes, below the limit", prev)
		}
	}
	if b[4] != hllDense || len(b) != hllDenseSize {
		t.Fatalf("never promoted by size: encoding %d, %d bytes", b[4], len(b))
	}

	s := hllNewSparse()
	s, _ = hllSet(s, 7, 5)
	s, r = hllSet(s, 100, 33)
	if r != 1 || s[4] != hllDense || len(s) != hllDenseSize {
		t.Fatalf("count 33: r=%d encoding=%d len=%d", r, s[4], len(s))
	}
	if g := hllDenseGet(s[hllHdrSize:], 100); g != 33 {
		t.Fatalf("register 100 = %d", g)
	}
	if g := hllDenseGet(s[hllHdrSize:], 7); g != 5 {
		t.Fatalf("register 7 = %d after promotion", g)
	}
	// Dense stays dense; the last register (whose bits end the value)
	// reads and writes correctly.
	s, r = hllSet(s, hllRegisters-1, 51)
	if r != 1 || hllDenseGet(s[hllHdrSize:], hllRegisters-1) != 51 || hllDenseGet(s[hllHdrSize:], hllRegisters-2) != 0 {
		t.Fatal("last register")
	}
}

// hllGens is the convergence workload: PF* commands on every key, with
// string writes, copies and removals in between.
var hllGens = []cmdGen{
	{"string", []string{"PFADD"}, func(d draws, k string, _ int64) []string {
		args := []string{"PFADD", k}
		n := d.intn(4, "n")
		if d.intn(8, "big") == 0 {
			n = 200 + d.intn(400, "bign") // past the sparse limit
		}
		base := d.intn(1000, "base")
		for i := 0; i < n; i++ {
			args = append(args, "e"+strconv.Itoa(base+i))
		}
		return args
	}},
	{"string", []string{"PFCOUNT"}, func(d draws, k string, _ int64) []string {
		if d.intn(3, "multi") == 0 {
			return []string{"PFCOUNT", k, otherKey(d, k)}
		}
		return []string{"PFCOUNT", k}
	}},
	{"string", []string{"PFMERGE"}, func(d draws, k string, _ int64) []string {
		return []string{"PFMERGE", k, otherKey(d, k)}
	}},
	{"string", []string{"PFDEBUG"}, func(d draws, k string, _ int64) []string {
		return []string{"PFDEBUG", "TODENSE", k}
	}},
	{"string", []string{"APPEND"}, func(d draws, k string, _ int64) []string {
		return []string{"APPEND", k, "x"}
	}},
	{"string", []string{"SET"}, func(d draws, k string, _ int64) []string {
		// A valid empty HLL written as a string.
		return []string{"SET", k, string(hllNewSparse())}
	}},
	{"keys", []string{"DEL"}, func(d draws, k string, _ int64) []string { return []string{"DEL", k} }},
	{"keys", []string{"RENAME"}, func(d draws, k string, _ int64) []string { return []string{"RENAME", k, otherKey(d, k)} }},
	{"keys", []string{"COPY"}, func(d draws, k string, _ int64) []string { return []string{"COPY", k, otherKey(d, k)} }},
}

// TestConvergeHLL: random PF* histories on 3-5 replicas, delivered in
// random order with duplicates, state transfers and restarts, end in
// identical digests, snapshots and joins (the model does not compute HLL
// bytes, so values are checked by TestHLLUnion and the Redis tests).
func TestConvergeHLL(t *testing.T) {
	w := newWorkloadOf(hllGens)
	counts = simCounts{}
	rapid.Check(t, func(rt *rapid.T) {
		if err := runSim(rapidDraws{rt}, w, simOpts{noModel: true}); err != nil {
			rt.Fatal(err)
		}
	})
	t.Logf("exercised: %v", &counts)
}

// TestHLLUnion: replicas PFADD random elements to one key (and PFMERGE
// other keys into it, PFCOUNT it) concurrently; batches are delivered in
// random order with duplicates. Every replica ends with the same bytes,
// and their registers are exactly those of an HLL of the union of every
// element added anywhere, so PFCOUNT is the union's estimate.
func TestHLLUnion(t *testing.T) {
	rapid.Check(t, func(rt *rapid.T) {
		n := rapid.IntRange(2, 4).Draw(rt, "replicas")
		reps := make([]*Keyspace, n)
		clocks := make([]int64, n)
		for i := range reps {
			reps[i] = NewKeyspace(simOrigin(i), Options{})
			clocks[i] = testEpochMs + int64(rapid.IntRange(0, 50).Draw(rt, "skew"))
		}
		var union [hllRegisters]uint8
		add := func(e string) {
			reg, c := hllPatLen([]byte(e))
			union[reg] = max(union[reg], c)
		}
		type msg struct {
			to   int
			data []byte
		}
		var net []msg
		pending := make([][][]byte, n)
		deliver := func(m msg) {
			if _, err := DecodeBatch(m.data); err != nil {
				rt.Fatal(err)
			}
			pending[m.to] = append(pending[m.to], m.data)
			for progress := true; progress; {
				progress = false
				rest := pending[m.to][:0]
				for _, p := range pending[m.to] {
					b, _ := DecodeBatch(p)
					if err := reps[m.to].Merge(b); err != nil {
						rest = append(rest, p)
						continue
					}
					progress = true
				}
				pending[m.to] = rest
			}
		}
		steps := rapid.IntRange(5, 60).Draw(rt, "steps")
		for s := 0; s < steps; s++ {
			if len(net) > 0 && rapid.Bool().Draw(rt, "deliver") {
				i := rapid.IntRange(0, len(net)-1).Draw(rt, "msg")
				m := net[i]
				if rapid.IntRange(0, 4).Draw(rt, "dup") != 0 {
					net = append(net[:i], net[i+1:]...)
				}
				deliver(m)
				continue
			}
			r := rapid.IntRange(0, n-1).Draw(rt, "rep")
			clocks[r] += int64(rapid.IntRange(1, 20).Draw(rt, "dt"))
			var args []string
			switch rapid.IntRange(0, 5).Draw(rt, "cmd") {
			case 0, 1, 2:
				args = []string{"PFADD", "h"}
				k := rapid.IntRange(0, 5).Draw(rt, "n")
				if rapid.IntRange(0, 6).Draw(rt, "big") == 0 {
					k = 300 + rapid.IntRange(0, 300).Draw(rt, "bign")
				}
				base := rapid.IntRange(0, 2000).Draw(rt, "base")
				for i := 0; i < k; i++ {
					e := "e" + strconv.Itoa(base+i)
					args = append(args, e)
					add(e)
				}
			case 3:
				args = []string{"PFCOUNT", "h"}
			case 4:
				// Elements reach h through another key and PFMERGE.
				args = []string{"PFADD", "g" + strconv.Itoa(r)}
				for i := rapid.IntRange(0, 3).Draw(rt, "gn"); i > 0; i-- {
					e := "g" + strconv.Itoa(rapid.IntRange(0, 3000).Draw(rt, "ge"))
					args = append(args, e)
					add(e)
				}
			case 5:
				args = []string{"PFMERGE", "h", "g" + strconv.Itoa(r)}
			}
			_, b := reps[r].Apply(Stamp{Time: HLCFromMillis(clocks[r])}, []Command{{Args: strArgs(args)}})
			if b == nil {
				continue
			}
			data := b.Encode(nil)
			for to := range reps {
				if to != r {
					net = append(net, msg{to, data})
				}
			}
		}
		for len(net) > 0 {
			m := net[0]
			net = net[1:]
			deliver(m)
		}
		for i := 1; i < n; i++ {
			if reps[i].Digest() != reps[0].Digest() {
				rt.Fatalf("replica %d's digest differs from replica 0's", i)
			}
		}
		// g keys were merged into h only where a PFMERGE ran; merge them
		// all everywhere so h must be the whole union.
		for i, ks := range reps {
			for j := range reps {
				ks.Apply(Stamp{Time: HLCFromMillis(clocks[i] + 100000)}, []Command{{Args: strArgs([]string{"PFMERGE", "h", "g" + strconv.Itoa(j)})}})
			}
			tx := Tx{ks: ks, Now: clocks[i]}
			v, found, _, _ := getString(&tx, []byte("h"))
			if !found {
				if union != [hllRegisters]uint8{} {
					rt.Fatalf("replica %d lost h", i)
				}
				continue
			}
			max := make([]uint8, hllRegisters)
			if !hllMergeInto(max, v) {
				rt.Fatalf("replica %d: corrupt HLL", i)
			}
			if !bytes.Equal(max, union[:]) {
				rt.Fatalf("replica %d: registers differ from the union's", i)
			}
		}
	})
}

// TestHLLEffectsSmall: a PFADD ships register raises, not the value.
func TestHLLEffectsSmall(t *testing.T) {
	ks := NewKeyspace(testOrigin, Options{})
	args := []string{"PFADD", "h"}
	for i := 0; i < 2000; i++ {
		args = append(args, fmt.Sprint(i))
	}
	ks.Apply(Stamp{Time: HLCFromMillis(testEpochMs)}, []Command{{Args: strArgs(args)}})
	_, b := ks.Apply(Stamp{Time: HLCFromMillis(testEpochMs + 1)}, []Command{{Args: strArgs([]string{"PFADD", "h", "new-one", "and-another"})}})
	if b == nil {
		t.Skip("no register changed")
	}
	if n := len(b.Encode(nil)); n > 64 {
		t.Fatalf("PFADD of 2 elements to a dense HLL shipped %d bytes", n)
	}
}

// TestHLLDecodeRejects: effects and snapshots with malformed HLL parts are
// refused, never applied.
func TestHLLDecodeRejects(t *testing.T) {
	for name, f := range map[string]Effect{
		"regs not triples":   {Kind: EffHLLAdd, Key: []byte("h"), Value: []byte{1, 2}},
		"register too big":   {Kind: EffHLLAdd, Key: []byte("h"), Value: []byte{0, 0x40, 1}},
		"count zero":         {Kind: EffHLLAdd, Key: []byte("h"), Value: []byte{1, 0, 0}},
		"count over 63":      {Kind: EffHLLAdd, Key: []byte("h"), Value: []byte{1, 0, 64}},
		"unknown flag":       {Kind: EffHLLAdd, Key: []byte("h"), Int: 8},
		"base not an HLL":    {Kind: EffHLLSet, Key: []byte("h"), Value: []byte("hello")},
		"dense of bad size":  {Kind: EffHLLSet, Key: []byte("h"), Value: []byte("HYLL\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00")},
		"unknown encoding 2": {Kind: EffHLLSet, Key: []byte("h"), Value: []byte("HYLL\x02\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00")},
	} {
		b := &Batch{Origin: testOrigin, FirstSeq: 1, Ops: []Op{{Time: 1, Effects: []Effect{f}}}}
		if _, err := DecodeBatch(b.Encode(nil)); err == nil {
			t.Errorf("%s: decoded", name)
		}
	}
	ok := &Batch{Origin: testOrigin, FirstSeq: 1, Ops: []Op{{Time: 1, Effects: []Effect{
		{Kind: EffHLLAdd, Key: []byte("h"), Value: []byte{1, 0, 5, 0xff, 0x3f, 63}, Int: hllFlagsAll},
		{Kind: EffHLLSet, Key: []byte("h"), Value: hllNewSparse()},
	}}}}
	if _, err := DecodeBatch(ok.Encode(nil)); err != nil {
		t.Fatalf("valid HLL effects refused: %v", err)
	}
}

// TestHLLSnapshot: an HLL's history survives Snapshot/Restore with its
// digest and bytes, and a non-solo keyspace keeps replaying after restore.
func TestHLLSnapshot(t *testing.T) {
	ks := NewKeyspace(testOrigin, Options{})
	clk := &testClock{ms: testEpochMs}
	expect(t, ks, clk, ":1", "PFADD", "h", "a", "b")
	expect(t, ks, clk, ":2", "PFCOUNT", "h")
	expect(t, ks, clk, ":1", "PFADD", "h", "c")
	expect(t, ks, clk, "+OK", "SET", "s", string(hllNewSparse()))
	expect(t, ks, clk, ":1", "PFADD", "s", "z")
	before := show(do(t, ks, clk, "GET", "h"))
	rs, err := Restore(ks.Snapshot())
	if err != nil {
		t.Fatal(err)
	}
	if rs.Digest() != ks.Digest() {
		t.Fatal("digest changed by Snapshot/Restore")
	}
	if got := show(do(t, rs, clk, "GET", "h")); got != before {
		t.Fatalf("bytes after restore: %s, want %s", got, before)
	}
	expect(t, rs, clk, ":3", "PFCOUNT", "h")
	expect(t, rs, clk, ":1", "PFCOUNT", "s")
	expect(t, rs, clk, "+string", "TYPE", "s")
}

// hllPair is two regions for scripted concurrency tests.
type hllPair struct {
	t    *testing.T
	reps [2]*Keyspace
	ms   int64
}

func newHLLPair(t *testing.T) *hllPair {
	return &hllPair{t: t, reps: [2]*Keyspace{NewKeyspace(simOrigin(0), Options{}), NewKeyspace(simOrigin(1), Options{})}, ms: testEpochMs}
}

// run applies a command at region r and returns its reply and batch.
func (p *hllPair) run(r int, args ...string) (string, []byte) {
	p.ms++
	rs, b := p.reps[r].Apply(Stamp{Time: HLCFromMillis(p.ms)}, []Command{{Args: strArgs(args)}})
	if b == nil {
		return show(rs[0]), nil
	}
	return show(rs[0]), b.Encode(nil)
}

func (p *hllPair) deliver(to int, data []byte) {
	p.t.Helper()
	b, err := DecodeBatch(data)
	if err != nil {
		p.t.Fatal(err)
	}
	if err := p.reps[to].Merge(b); err != nil {
		p.t.Fatal(err)
	}
}

func (p *hllPair) read(r int, args ...string) string {
	return show(p.reps[r].Read(0, p.ms, 0, strArgs(args)))
}

// count is PFCOUNT computed from region r's bytes without writing the
// cache (a write would have to be delivered too).
func (p *hllPair) count(r int, key string) string {
	tx := Tx{ks: p.reps[r], Now: p.ms}
	v, found, _, _ := getString(&tx, []byte(key))
	if !found {
		return ":0"
	}
	c, ok := hllCount(v)
	if !ok {
		return "corrupt"
	}
	return fmt.Sprintf(":%d", c)
}

// TestHLLDeleteWins: a DEL beats a PFADD it had not seen, in both delivery
// orders and through state transfer, while a PFADD that had seen the DEL
// survives it.
func TestHLLDeleteWins(t *testing.T) {
	for _, order := range []string{"del-first", "add-first", "join"} {
		t.Run(order, func(t *testing.T) {
			p := newHLLPair(t)
			_, b0 := p.run(0, "PFADD", "k", "a", "b")
			p.deliver(1, b0)
			_, del := p.run(0, "DEL", "k")
			_, add := p.run(1, "PFADD", "k", "c", "d", "e") // concurrent with the DEL
			if add == nil {
				t.Fatal("PFADD changed nothing")
			}
			switch order {
			case "del-first":
				p.deliver(1, del)
				p.deliver(0, add)
			case "add-first":
				p.deliver(0, add)
				p.deliver(1, del)
			case "join":
				s0, s1 := p.reps[0].Snapshot(), p.reps[1].Snapshot()
				r0, _ := Restore(s0)
				r1, _ := Restore(s1)
				p.reps[0].Join(r1)
				p.reps[1].Join(r0)
			}
			for r := range p.reps {
				if got := p.read(r, "EXISTS", "k"); got != ":0" {
					t.Fatalf("region %d: EXISTS k = %s: the concurrent PFADD survived the DEL", r, got)
				}
			}
			if p.reps[0].Digest() != p.reps[1].Digest() {
				t.Fatal("digests differ")
			}
			// A PFADD that saw the DEL survives, everywhere.
			_, after := p.run(1, "PFADD", "k", "x")
			p.deliver(0, after)
			for r := range p.reps {
				if got := p.count(r, "k"); got != ":1" {
					t.Fatalf("region %d: PFCOUNT after the DEL = %s, want :1", r, got)
				}
			}
			// A new concurrent DEL/PFADD pair is decided the same way.
			_, del2 := p.run(0, "DEL", "k")
			_, add2 := p.run(1, "PFADD", "k", "y")
			p.deliver(1, del2)
			p.deliver(0, add2)
			for r := range p.reps {
				if got := p.read(r, "EXISTS", "k"); got != ":0" {
					t.Fatalf("region %d: second round: EXISTS k = %s", r, got)
				}
			}
			if p.reps[0].Digest() != p.reps[1].Digest() {
				t.Fatal("digests differ after the second round")
			}
			for r := range p.reps {
				if n := p.reps[r].Stats.DeleteWinsConflicts; n != 2 {
					t.Errorf("region %d counted %d delete-wins conflicts, want 2", r, n)
				}
			}
			if n := len(p.reps[0].dbs[0].hllDels["k"]); n != 1 {
				t.Fatalf("%d tombstones kept for k, want 1 (the older one is covered)", n)
			}
		})
	}
}

// TestHLLDeleteObservedOnly: removals of keys that held no HLL where they
// ran stay observed-removes: a concurrent PFADD survives them.
func TestHLLDeleteObservedOnly(t *testing.T) {
	p := newHLLPair(t)
	_, s := p.run(0, "SET", "k", "v")
	p.deliver(1, s)
	_, del := p.run(0, "DEL", "k")
	_, add := p.run(1, "PFADD", "k", "a") // WRONGTYPE: k is a string at region 1
	if add != nil {
		t.Fatal("PFADD on a plain string wrote")
	}
	_, add = p.run(1, "PFADD", "j", "a")
	_, delj := p.run(0, "DEL", "j") // j does not exist at region 0: nothing to beat
	if delj != nil {
		t.Fatal("DEL of a missing key wrote")
	}
	p.deliver(1, del)
	p.deliver(0, add)
	for r := range p.reps {
		if got := p.count(r, "j"); got != ":1" {
			t.Fatalf("region %d: PFCOUNT j = %s", r, got)
		}
	}
}

// TestFoldConvergeHLL: fold ops collect HLL histories and tombstones in
// the middle of random multi-region runs; every replica still converges
// (digests, joins, snapshots) and folds leave the bytes unchanged (the
// fold simulation compares them with the same ops run without folds).
func TestFoldConvergeHLL(t *testing.T) {
	runFoldProperty(t, newWorkloadOf(hllGens), simOpts{noModel: true})
}

// TestHLLFoldCollects: once every region has seen everything, a fold op
// turns each HLL's history into one group and drops the tombstones, on
// every region alike, without changing a byte of what GET returns; a
// PFADD concurrent with nothing then still works on top.
func TestHLLFoldCollects(t *testing.T) {
	p := newHLLPair(t)
	var all [][2]any
	run := func(r int, args ...string) {
		if _, b := p.run(r, args...); b != nil {
			all = append(all, [2]any{1 - r, b})
		}
	}
	run(0, "PFADD", "k", "a", "b")
	run(1, "PFADD", "k", "c")
	run(0, "PFCOUNT", "k")
	run(1, "PFADD", "j", "x")
	run(0, "PFADD", "k", "d")
	run(1, "DEL", "j")
	for _, m := range all {
		p.deliver(m[0].(int), m[1].([]byte))
	}
	before := p.read(0, "GET", "k")
	if p.read(1, "GET", "k") != before || len(p.reps[0].dbs[0].hllDels["j"]) != 1 {
		t.Fatal("setup did not converge")
	}
	if p.reps[0].Unfolded() == 0 {
		t.Fatal("no HLL history to fold")
	}
	p.ms++
	b, n := p.reps[0].Fold(Stamp{Time: HLCFromMillis(p.ms)}, p.reps[0].Version(), 100)
	if b == nil || n != 2 {
		t.Fatalf("fold folded %d items", n)
	}
	p.deliver(1, b.Encode(nil))
	for r := range p.reps {
		if got := p.read(r, "GET", "k"); got != before {
			t.Fatalf("region %d: GET changed by the fold:\n%s\n%s", r, got, before)
		}
		if n := p.reps[r].HLLTombstones(); n != 0 {
			t.Fatalf("region %d keeps %d tombstones", r, n)
		}
		if n := p.reps[r].Unfolded(); n != 0 {
			t.Fatalf("region %d: %d items left unfolded", r, n)
		}
		h := p.reps[r].dbs[0].keys.index["k"].val.value(TypeHLL).(*hllValue)
		if h.grp == nil || len(h.events) != 0 || len(h.bases) != 0 {
			t.Fatalf("region %d: history not folded: %d bases, %d events", r, len(h.bases), len(h.events))
		}
	}
	if p.reps[0].Digest() != p.reps[1].Digest() {
		t.Fatal("digests differ after the fold")
	}
	_, add := p.run(1, "PFADD", "k", "e")
	p.deliver(0, add)
	if p.read(0, "GET", "k") != p.read(1, "GET", "k") || p.count(0, "k") != ":5" {
		t.Fatalf("after the fold: count %s", p.count(0, "k"))
	}
}

// TestPFSelfTest runs PFSELFTEST: register access and the estimate's
// error up to a million elements, sparse and dense side by side.
func TestPFSelfTest(t *testing.T) {
	if testing.Short() {
		t.Skip("a million elements")
	}
	ks, clk := newTestKS(t)
	expect(t, ks, clk, "+OK", "PFSELFTEST")
}
