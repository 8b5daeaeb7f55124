package crdt

import (
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

// strStub stands in for a string value: this branch has no string type,
// and WRONGTYPE replies need a key of another type.
type strStub struct{ tag Tag }

func (v *strStub) Type() ValueType                          { return TypeString }
func (v *strStub) apply(*Effect, Tag, Context)              {}
func (v *strStub) removeObserved(c Context)                 {}
func (v *strStub) empty() bool                              { return false }
func (v *strStub) maxTag() Tag                              { return v.tag }
func (v *strStub) join(VersionVector, value, VersionVector) {}
func (v *strStub) encode(e *encoder)                        {}
func (v *strStub) replay(func(Effect))                      {}
func (v *strStub) objectEncoding() string                   { return "embstr" }

// putString stores a string-typed stub under key in ks and, if ref is set,
// a real string there.
func putString(t *testing.T, ks *Keyspace, ref *refRedis, key string) {
	t.Helper()
	ks.dbs[0].keys.Set(key, &entry{key: key, vals: []value{&strStub{}}})
	if ref != nil {
		if r := ref.do(t, "SET", key, "x"); r != "+OK" {
			t.Fatalf("reference SET: %s", r)
		}
	}
}

func TestSetWrongType(t *testing.T) {
	ks, clk := newTestKS(t)
	ref := dialRef(t)
	putString(t, ks, ref, "str")
	wrong := "-WRONGTYPE Operation against a key holding the wrong kind of value"
	runStepsOn(t, ks, clk, ref, []step{
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
