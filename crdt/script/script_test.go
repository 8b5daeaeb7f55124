package script

import (
	"fmt"
	"strings"
	"testing"

	"concord/crdt"
)

// node is one replica applying stamped commands, as a region node does.
type node struct {
	ks *crdt.Keyspace
	t  int64
}

func newNode(region uint32) *node {
	return &node{ks: crdt.NewKeyspace(crdt.Origin{Region: region, Incarnation: 1}, crdt.Options{}), t: 1_700_000_000_000}
}

// do applies one command and returns its reply and batch.
func (n *node) do(args ...string) (crdt.Reply, *crdt.Batch) {
	n.t++
	a := make([][]byte, len(args))
	for i, s := range args {
		a[i] = []byte(s)
	}
	replies, b := n.ks.Apply(crdt.Stamp{Time: crdt.HLCFromMillis(n.t), Seed: uint64(n.t) * 7919}, []crdt.Command{{Args: a}})
	return replies[0], b
}

func (n *node) read(args ...string) crdt.Reply {
	a := make([][]byte, len(args))
	for i, s := range args {
		a[i] = []byte(s)
	}
	return n.ks.Read(0, n.t, 1, a)
}

// show renders a reply compactly for comparisons.
func show(r crdt.Reply) string {
	switch r.Kind {
	case crdt.KindNil, crdt.KindNilArray:
		return "nil"
	case crdt.KindStatus:
		return "+" + string(r.Str)
	case crdt.KindError:
		return "-" + string(r.Str)
	case crdt.KindInt, crdt.KindBool:
		return fmt.Sprint(r.Int)
	case crdt.KindBulk:
		return `"` + string(r.Str) + `"`
	case crdt.KindDouble:
		return "," + crdt.FormatDouble(r.Float)
	}
	parts := make([]string, len(r.Elems))
	for i, e := range r.Elems {
		parts[i] = show(e)
	}
	return "[" + strings.Join(parts, " ") + "]"
}

const redlockRelease = `if redis.call("get",KEYS[1]) == ARGV[1] then return redis.call("del",KEYS[1]) else return 0 end`

// delayPop pops every job due by ARGV[1] from a delay queue atomically.
const delayPop = `local jobs = redis.call('zrangebyscore', KEYS[1], '-inf', ARGV[1])
for _, j in ipairs(jobs) do redis.call('zrem', KEYS[1], j) end
return jobs`

func TestRedlockRelease(t *testing.T) {
	n := newNode(1)
	n.do("set", "lock", "token-a")
	if r, _ := n.do("eval", redlockRelease, "1", "lock", "token-b"); show(r) != "0" {
		t.Fatalf("release with the wrong token: %s", show(r))
	}
	if r := n.read("get", "lock"); show(r) != `"token-a"` {
		t.Fatalf("lock gone after a wrong release: %s", show(r))
	}
	if r, _ := n.do("eval", redlockRelease, "1", "lock", "token-a"); show(r) != "1" {
		t.Fatalf("release with the right token: %s", show(r))
	}
	if r := n.read("exists", "lock"); show(r) != "0" {
		t.Fatalf("lock still there: %s", show(r))
	}
}

func TestDelayQueuePop(t *testing.T) {
	n := newNode(1)
	n.do("zadd", "q", "10", "a", "20", "b", "30", "c")
	r, b := n.do("eval", delayPop, "1", "q", "25")
	if show(r) != `["a" "b"]` {
		t.Fatalf("pop: %s", show(r))
	}
	if got := show(n.read("zrange", "q", "0", "-1")); got != `["c"]` {
		t.Fatalf("left: %s", got)
	}
	// Two ZREMs: two ops of one batch.
	if b == nil || len(b.Ops) != 2 {
		t.Fatalf("want one batch of 2 ops, got %+v", b)
	}
}

// TestScriptOpsObserveEachOther: a script's later command removes what an
// earlier one wrote (each call is its own op).
func TestScriptOpsObserveEachOther(t *testing.T) {
	n := newNode(1)
	r, _ := n.do("eval", `redis.call('set','k','v') redis.call('del','k') redis.call('sadd','s','x') redis.call('srem','s','x') return redis.call('exists','k','s')`, "0")
	if show(r) != "0" {
		t.Fatalf("exists after set+del in one script: %s", show(r))
	}
}

func TestEffectsReplicateAsOneBatch(t *testing.T) {
	a, b := newNode(1), newNode(2)
	_, batch := a.do("eval", `redis.call('set','x','1') redis.call('incrby','c',5) redis.call('hset','h','f','v') return 1`, "0")
	if batch == nil || len(batch.Ops) != 3 {
		t.Fatalf("want one batch with 3 ops, got %+v", batch)
	}
	enc := batch.Encode(nil)
	dec, err := crdt.DecodeBatch(enc)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.ks.Merge(dec); err != nil {
		t.Fatal(err)
	}
	if a.ks.Digest() != b.ks.Digest() {
		t.Fatal("digests differ after merging the script's batch")
	}
	if got := show(b.read("get", "c")); got != `"5"` {
		t.Fatalf("remote counter: %s", got)
	}
}

// TestDeterministic: two nodes applying the same stamped scripts give the
// same replies and state, including pairs() over library tables, tostring
// of tables, math.random and SPOP inside scripts.
func TestDeterministic(t *testing.T) {
	scripts := []string{
		`local out = {} for k in pairs(_G) do out[#out+1] = k end return out`,
		`local out = {} for k in pairs(string) do out[#out+1] = k end for k in pairs(redis) do out[#out+1] = k end return out`,
		`return {tostring({}), tostring(rawget(_G, 'print') == nil), tostring(function() end), tostring({})}`,
		`return string.format('%s %s %d%% %5.1f %s', {}, 1/3, 7, 2.25, tostring)`,
		`return {tostring(math.random()), math.random(100), math.random(5, 9)}`,
		`for i = 1, 20 do redis.call('sadd', 's', 'm' .. i) end return redis.call('spop', 's', 3)`,
		`local t = {} for i = 1, 50 do t['k' .. i] = i end local o = {} for k, v in pairs(t) do o[#o+1] = k end redis.call('set', 'order', table.concat(o, ',')) return #o`,
		`return cjson.encode({b = 1, a = {1, 2}, c = 'x'})`,
	}
	var replies [2][]string
	nodes := []*node{newNode(1), newNode(1)}
	for i, n := range nodes {
		for _, s := range scripts {
			r, _ := n.do("eval", s, "0")
			if r.IsError() {
				t.Fatalf("%s: %s", s, show(r))
			}
			replies[i] = append(replies[i], show(r))
		}
	}
	for j := range scripts {
		if replies[0][j] != replies[1][j] {
			t.Errorf("script %d differs:\n%s\n%s", j, replies[0][j], replies[1][j])
		}
	}
	if nodes[0].ks.Digest() != nodes[1].ks.Digest() {
		t.Fatal("digests differ")
	}
}

func TestBudget(t *testing.T) {
	old := budgetInstructions
	budgetInstructions = 100_000
	defer func() { budgetInstructions = old }()
	n := newNode(1)
	for _, s := range []string{
		`redis.call('set', 'before', '1')
while true do end`,
		`while true do pcall(function() while true do end end) end`,
		`local co = coroutine.wrap(function() while true do end end) co()`,
		`local co = coroutine.create(function() while true do end end) coroutine.resume(co) while true do end`,
	} {
		r, _ := n.do("eval", s, "0")
		if !r.IsError() || !strings.HasPrefix(string(r.Str), errBudgetText+" script: ") {
			t.Fatalf("%s: want budget error, got %s", s, show(r))
		}
	}
	r, _ := n.do("eval", "local i = 0\nwhile true do\n  i = i + 1\nend", "0")
	if strings.HasSuffix(string(r.Str), ":?.") || !strings.Contains(string(r.Str), ", on @user_script:") {
		t.Fatalf("budget error should name the loop's line: %s", show(r))
	}
	// Writes made before the stop stay, as after any script error.
	if got := show(n.read("get", "before")); got != `"1"` {
		t.Fatalf("write before the budget ran out: %s", got)
	}
	// A script within budget still runs.
	if r, _ := n.do("eval", `local s = 0 for i = 1, 1000 do s = s + i end return s`, "0"); show(r) != "500500" {
		t.Fatalf("small loop: %s", show(r))
	}
}

func TestScriptCacheSnapshot(t *testing.T) {
	n := newNode(1)
	r, _ := n.do("script", "load", "return ARGV[1] .. '!'")
	sha := string(r.Str)
	if sha != SHA1Hex([]byte("return ARGV[1] .. '!'")) {
		t.Fatalf("sha %s", sha)
	}
	n.do("eval", "return 7", "0")
	ks, err := crdt.Restore(n.ks.Snapshot())
	if err != nil {
		t.Fatal(err)
	}
	m := &node{ks: ks, t: n.t}
	if r, _ := m.do("evalsha", sha, "0", "hi"); show(r) != `"hi!"` {
		t.Fatalf("evalsha after restore: %s", show(r))
	}
	if r := m.read("evalsha_ro", SHA1Hex([]byte("return 7")), "0"); show(r) != "7" {
		t.Fatalf("implicitly cached script after restore: %s", show(r))
	}
	if c, _ := m.ks.ScriptStats(); c != 2 {
		t.Fatalf("scripts after restore: %d", c)
	}
	m.do("script", "flush")
	if r, _ := m.do("evalsha", sha, "0", "hi"); !strings.HasPrefix(show(r), "-NOSCRIPT") {
		t.Fatalf("evalsha after flush: %s", show(r))
	}
	// The cache is region state: digests (which regions compare) ignore it.
	if m.ks.Digest() != n.ks.Digest() {
		t.Fatal("script cache reached the digest")
	}
	// A snapshot without scripts restores too; corrupt tails are refused.
	if _, err := crdt.Restore(m.ks.Snapshot()); err != nil {
		t.Fatal(err)
	}
	snap := n.ks.Snapshot()
	if _, err := crdt.Restore(snap[:len(snap)-1]); err == nil {
		t.Fatal("truncated script section accepted")
	}
}

func TestReadOnly(t *testing.T) {
	n := newNode(1)
	r, _ := n.do("script", "load", "return redis.call('set','a','1')")
	sha := string(r.Str)
	if r := n.read("evalsha_ro", sha, "0"); !strings.HasPrefix(show(r), "-ERR Write commands are not allowed from read-only scripts. script: ") {
		t.Fatalf("write in evalsha_ro: %s", show(r))
	}
	if r, _ := n.do("eval_ro", "return redis.call('set','a','1')", "0"); !strings.HasPrefix(show(r), "-ERR Write commands are not allowed from read-only scripts.") {
		t.Fatalf("write in eval_ro: %s", show(r))
	}
	if r := n.read("evalsha_ro", sha[:39]+"0", "0"); !strings.HasPrefix(show(r), "-NOSCRIPT") {
		t.Fatalf("unknown sha: %s", show(r))
	}
}

// TestBadScripts: nothing a script does crashes the node.
func TestBadScripts(t *testing.T) {
	n := newNode(1)
	for _, s := range []string{
		`local t = {} t[1] = t return t`,
		`return string.rep('x', 1e10)`,
		`local s = string.rep('x', 1e6) local t = {} for i = 1, 1000 do t[i] = s end return #table.concat(t)`,
		`local function f() return f() + 1 end return f()`,
		`return cjson.decode(string.rep('[', 2000))`,
		`local t = {} t.x = t return cjson.encode(t)`,
		`return collectgarbage('count')`,
		`return setmetatable({}, {__index = function(t, k) return t[k] end}).x`,
		`error()`, `error(nil)`, `error({})`, `error(setmetatable({}, {__tostring = function() return 'm' end}))`,
		`return redis.call('set', 'k', 'v', 'ex')`,
		`return redis.call('eval', 'return 1', 0)`,
		`return 1 +`,
	} {
		r, _ := n.do("eval", s, "0")
		if !r.IsError() {
			t.Errorf("%s: want an error, got %s", s, show(r))
		}
	}
}

// TestStateReuseIsolated: Lua states are pooled, but what one script does
// to its environment never reaches the next.
func TestStateReuseIsolated(t *testing.T) {
	n := newNode(1)
	for _, s := range []string{
		`string.upper = nil return 1`,
		`redis = nil return 1`,
		`getmetatable('').__index = {} return 1`,
		`getmetatable(_G).__index = nil return 1`,
		`table.insert = function() end return 1`,
		`cjson.encode = nil return 1`,
	} {
		if r, _ := n.do("eval", s, "0"); r.IsError() {
			t.Fatalf("%s: %s", s, show(r))
		}
		check := `return {string.upper('a'), ('b'):upper(), type(redis.call), pcall(function() return nosuch end), cjson.encode({1})}`
		if r, _ := n.do("eval", check, "0"); show(r) != `["A" "B" "function" nil "[1]"]` {
			t.Fatalf("after %s: %s", s, show(r))
		}
	}
	for _, s := range []string{
		`string.foo = 1`, `rawset(_G, 'x', 1)`, `rawset(string, 'x', 1)`,
		`setmetatable(_G, nil)`, `x = 1`, `redis.foo = 1`,
	} {
		r, _ := n.do("eval", s, "0")
		if !strings.Contains(show(r), "Attempt to modify a readonly table script: ") {
			t.Fatalf("%s: %s", s, show(r))
		}
	}
}
