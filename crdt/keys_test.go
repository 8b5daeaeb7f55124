package crdt

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"os"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Reference checks. The expected replies in the tables below were taken
// from Debian's redis-server 7.0.15. Set CONCORD_REF_REDIS=host:port to a
// throwaway redis-server (it is flushed!) and every table is also replayed
// against it, so a wrong expectation fails instead of encoding our own
// guess.

// refRedis is a minimal RESP2 client for the reference server.
type refRedis struct {
	c net.Conn
	r *bufio.Reader
}

// dialRef returns a flushed connection to the reference server, or nil if
// none is configured.
func dialRef(t *testing.T) *refRedis {
	t.Helper()
	addr := os.Getenv("CONCORD_REF_REDIS")
	if addr == "" {
		return nil
	}
	c, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		t.Fatalf("reference redis %s: %v", addr, err)
	}
	t.Cleanup(func() { c.Close() })
	ref := &refRedis{c: c, r: bufio.NewReader(c)}
	if got := ref.do(t, "FLUSHALL"); got != "+OK" {
		t.Fatalf("reference FLUSHALL: %s", got)
	}
	return ref
}

// do sends one command and renders the reply like show.
func (ref *refRedis) do(t *testing.T, args ...string) string {
	t.Helper()
	return ref.call(t, args...).String()
}

// refReply is a parsed RESP2 reply.
type refReply struct {
	kind  byte // '+', '-', ':', '$', '*', or 'n' for a null
	str   string
	elems []refReply
}

// String renders r in show's notation.
func (r refReply) String() string {
	switch r.kind {
	case 'n':
		return "nil"
	case '$':
		return fmt.Sprintf("%q", r.str)
	case '*':
		parts := make([]string, len(r.elems))
		for i, e := range r.elems {
			parts[i] = e.String()
		}
		return "[" + strings.Join(parts, " ") + "]"
	}
	return string(r.kind) + r.str
}

// call sends one command and returns the parsed reply.
func (ref *refRedis) call(t *testing.T, args ...string) refReply {
	t.Helper()
	var b bytes.Buffer
	fmt.Fprintf(&b, "*%d\r\n", len(args))
	for _, a := range args {
		fmt.Fprintf(&b, "$%d\r\n%s\r\n", len(a), a)
	}
	ref.c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := ref.c.Write(b.Bytes()); err != nil {
		t.Fatalf("reference write: %v", err)
	}
	r, err := ref.read()
	if err != nil {
		t.Fatalf("reference read: %v", err)
	}
	return r
}

func (ref *refRedis) read() (refReply, error) {
	line, err := ref.r.ReadString('\n')
	if err != nil {
		return refReply{}, err
	}
	line = strings.TrimSuffix(line, "\r\n")
	if line == "" {
		return refReply{}, fmt.Errorf("empty line")
	}
	switch line[0] {
	case '+', '-', ':':
		return refReply{kind: line[0], str: line[1:]}, nil
	case '$':
		n, _ := strconv.Atoi(line[1:])
		if n < 0 {
			return refReply{kind: 'n'}, nil
		}
		buf := make([]byte, n+2)
		if _, err := io.ReadFull(ref.r, buf); err != nil {
			return refReply{}, err
		}
		return refReply{kind: '$', str: string(buf[:n])}, nil
	case '*':
		n, _ := strconv.Atoi(line[1:])
		if n < 0 {
			return refReply{kind: 'n'}, nil
		}
		r := refReply{kind: '*', elems: make([]refReply, n)}
		for i := range r.elems {
			if r.elems[i], err = ref.read(); err != nil {
				return refReply{}, err
			}
		}
		return r, nil
	}
	return refReply{}, fmt.Errorf("unexpected reply %q", line)
}

// step is one command of a reference table and its expected reply in
// show's notation. db selects the database; noRef skips the reference
// check (random or clock-dependent replies).
type step struct {
	db    int
	args  []string
	want  string
	noRef bool
}

func rs(want string, args ...string) step           { return step{args: args, want: want} }
func rsDB(db int, want string, args ...string) step { return step{db: db, args: args, want: want} }

// runSteps runs a table against a fresh keyspace and, when configured, the
// reference server.
func runSteps(t *testing.T, steps []step) *Keyspace {
	t.Helper()
	ks, clk := newTestKS(t)
	runStepsOn(t, ks, clk, dialRef(t), steps)
	return ks
}

// runStepsOn runs a table against ks and ref (nil: no reference check).
func runStepsOn(t *testing.T, ks *Keyspace, clk *testClock, ref *refRedis, steps []step) {
	t.Helper()
	refDB := 0
	for i, st := range steps {
		got := show(doDB(t, ks, clk, st.db, st.args...))
		if got != st.want {
			t.Errorf("step %d %q: got %s, want %s", i, st.args, got, st.want)
		}
		if ref == nil || st.noRef {
			continue
		}
		if st.db != refDB {
			ref.do(t, "SELECT", strconv.Itoa(st.db))
			refDB = st.db
		}
		if r := ref.do(t, st.args...); r != st.want {
			t.Errorf("step %d %q: reference redis says %s, table says %s", i, st.args, r, st.want)
		}
	}
	if ref != nil && refDB != 0 {
		ref.do(t, "SELECT", "0")
	}
}

// doDB is do for database db.
func doDB(t testing.TB, ks *Keyspace, clk *testClock, db int, args ...string) Reply {
	t.Helper()
	a := make([][]byte, len(args))
	for i, s := range args {
		a[i] = []byte(s)
	}
	if spec := Lookup(a[0]); spec != nil && !spec.Write {
		return ks.Read(db, clk.ms, uint64(clk.ms), a)
	}
	r, _ := ks.Apply(clk.stamp(), []Command{{DB: db, Args: a}})
	return r[0]
}

func TestKeyspaceCommands(t *testing.T) {
	runSteps(t, []step{
		rs(":1", "SADD", "a", "1"),
		rs(":1", "SADD", "b", "2"),
		rs(":2", "DEL", "a", "b", "c", "a"),
		rs(":1", "SADD", "a", "1"),
		rs(":2", "EXISTS", "a", "a", "b"),
		rs(":1", "UNLINK", "a", "a"),
		rs(":0", "DEL", "a"),
		rs(":1", "SADD", "a", "1"),
		rs("+set", "TYPE", "a"),
		rs("+none", "TYPE", "nokey"),
		rs("-ERR wrong number of arguments for 'del' command", "DEL"),
		rs("-ERR wrong number of arguments for 'type' command", "TYPE", "a", "b"),

		// RENAME / RENAMENX
		rs("-ERR no such key", "RENAME", "nokey", "x"),
		rs("-ERR no such key", "RENAMENX", "nokey", "x"),
		rs("+OK", "RENAME", "a", "a"),
		rs(":0", "RENAMENX", "a", "a"),
		rs("+OK", "RENAME", "a", "b"),
		rs(":0", "EXISTS", "a"),
		rs("[\"1\"]", "SMEMBERS", "b"),
		rs(":1", "SADD", "c", "x"),
		rs(":1", "EXPIRE", "c", "100"),
		rs("+OK", "RENAME", "c", "d"),
		rs(":100", "TTL", "d"),
		rs("+OK", "RENAME", "b", "d"), // overwrite drops d's TTL
		rs(":-1", "TTL", "d"),
		rs("[\"1\"]", "SMEMBERS", "d"),
		rs(":1", "SADD", "e", "5"),
		rs(":0", "RENAMENX", "d", "e"),
		rs(":1", "RENAMENX", "d", "f"),
		rs(":0", "EXISTS", "d"),

		// COPY
		rs("-ERR source and destination objects are the same", "COPY", "f", "f"),
		rs("-ERR source and destination objects are the same", "COPY", "nokey", "nokey"),
		rs(":0", "COPY", "nokey", "x"),
		rs(":1", "EXPIRE", "f", "100"),
		rs(":1", "COPY", "f", "g"),
		rs(":100", "TTL", "g"),
		rs(":0", "COPY", "f", "g"),
		rs(":1", "PERSIST", "f"),
		rs(":1", "COPY", "f", "g", "REPLACE"),
		rs(":-1", "TTL", "g"),
		rs(":1", "COPY", "f", "g", "DB", "1"),
		rsDB(1, "[\"1\"]", "SMEMBERS", "g"),
		rs(":0", "COPY", "f", "g", "db", "1"),
		rs(":1", "COPY", "f", "g", "db", "1", "replace"),
		rs(":1", "COPY", "f", "f", "db", "2"),
		rs("-ERR DB index is out of range", "COPY", "f", "g", "DB", "16"),
		rs("-ERR DB index is out of range", "COPY", "f", "g", "DB", "-1"),
		rs("-ERR DB index is out of range", "COPY", "f", "g", "DB", "99", "foo"),
		rs("-ERR DB index is out of range", "COPY", "nokey", "x", "DB", "99"),
		rs("-ERR value is not an integer or out of range", "COPY", "f", "g", "DB", "a"),
		rs("-ERR value is not an integer or out of range", "COPY", "f", "g", "DB", "01"),
		rs("-ERR value is out of range, value must between -2147483648 and 2147483647", "COPY", "f", "g", "DB", "99999999999"),
		rs("-ERR syntax error", "COPY", "f", "g", "foo"),
		rs("-ERR syntax error", "COPY", "f", "g", "DB"),
		rs("-ERR syntax error", "COPY", "f", "f", "foo"),
		rs(":1", "COPY", "f", "g", "replace", "replace"),
		rs("-ERR wrong number of arguments for 'copy' command", "COPY", "f"),

		// MOVE
		rs("-ERR source and destination objects are the same", "MOVE", "f", "0"),
		rs("-ERR source and destination objects are the same", "MOVE", "nokey", "0"),
		rs(":0", "MOVE", "f", "2"), // COPY ... DB 2 put an f there
		rs(":0", "MOVE", "nokey", "1"),
		rs("-ERR DB index is out of range", "MOVE", "f", "16"),
		rs("-ERR value is not an integer or out of range", "MOVE", "f", "a"),
		rs("-ERR value is out of range, value must between -2147483648 and 2147483647", "MOVE", "f", "99999999999"),
		rs(":2", "SADD", "h", "1", "2"),
		rs(":1", "EXPIRE", "h", "100"),
		rs(":1", "MOVE", "h", "3"),
		rs(":0", "EXISTS", "h"),
		rsDB(3, ":100", "TTL", "h"),
		rsDB(3, "[\"1\" \"2\"]", "SMEMBERS", "h"),

		// TOUCH, DBSIZE, KEYS, RANDOMKEY, FLUSH*
		rs(":3", "TOUCH", "e", "f", "f", "nokey"),
		rs(":3", "DBSIZE"),
		rs("-ERR wrong number of arguments for 'keys' command", "KEYS"),
		rs("-ERR wrong number of arguments for 'keys' command", "KEYS", "*", "x"),
		rs("-ERR wrong number of arguments for 'dbsize' command", "DBSIZE", "x"),
		rs("[\"e\"]", "KEYS", "e"),
		rs("[]", "KEYS", "z*"),
		rs("-ERR syntax error", "FLUSHDB", "foo"),
		rs("-ERR syntax error", "FLUSHDB", "sync", "async"),
		rs("-ERR syntax error", "FLUSHALL", "x"),
		rsDB(3, "+OK", "FLUSHDB", "ASYNC"),
		rsDB(3, ":0", "DBSIZE"),
		rs(":3", "DBSIZE"),
		rs("+OK", "FLUSHALL", "sync"),
		rs(":0", "DBSIZE"),
		rsDB(1, ":0", "DBSIZE"),
		rs("nil", "RANDOMKEY"),
		rs(":1", "SADD", "only", "x"),
		rs("\"only\"", "RANDOMKEY"),
		rs("+OK", "FLUSHDB"),

		// Whole-key moves of another type replay its content.
		rs(":2", "ZADD", "z", "1.5", "a", "2", "b"),
		rs(":1", "EXPIRE", "z", "100"),
		rs("+OK", "RENAME", "z", "z2"),
		rs("[\"a\" \"1.5\" \"b\" \"2\"]", "ZRANGE", "z2", "0", "-1", "WITHSCORES"),
		rs(":100", "TTL", "z2"),
		rs(":1", "SADD", "s", "x"),
		rs(":1", "COPY", "z2", "s", "REPLACE"),
		rs("+zset", "TYPE", "s"),
		rs(":100", "TTL", "s"),
		rs("\"listpack\"", "OBJECT", "ENCODING", "s"),
		rs(":1", "MOVE", "s", "4"),
		rsDB(4, "[\"a\" \"1.5\" \"b\" \"2\"]", "ZRANGE", "s", "0", "-1", "WITHSCORES"),
		rsDB(4, "+OK", "FLUSHALL"),
	})
}

func TestExpireCommands(t *testing.T) {
	runSteps(t, []step{
		rs(":1", "SADD", "a", "1"),
		rs("-ERR NX and XX, GT or LT options at the same time are not compatible", "EXPIRE", "a", "100", "nx", "xx"),
		rs("-ERR NX and XX, GT or LT options at the same time are not compatible", "EXPIRE", "a", "100", "NX", "GT"),
		rs("-ERR NX and XX, GT or LT options at the same time are not compatible", "EXPIRE", "a", "100", "gt", "lt", "nx"),
		rs("-ERR NX and XX, GT or LT options at the same time are not compatible", "EXPIRE", "a", "abc", "NX", "XX"),
		rs("-ERR GT and LT options at the same time are not compatible", "EXPIRE", "a", "100", "gt", "lt"),
		rs("-ERR Unsupported option foo", "EXPIRE", "a", "100", "foo"),
		rs("-ERR Unsupported option foo bar", "EXPIRE", "a", "100", "foo\nbar"),
		rs("-ERR Unsupported option foo", "EXPIRE", "nokey", "100", "foo"),
		rs("-ERR value is not an integer or out of range", "EXPIRE", "a", "abc"),
		rs("-ERR value is not an integer or out of range", "EXPIRE", "nokey", "abc"),
		rs("-ERR value is not an integer or out of range", "EXPIRE", "a", "99999999999999999999"),
		rs("-ERR value is not an integer or out of range", "EXPIRE", "a", "+5"),
		rs("-ERR wrong number of arguments for 'expire' command", "EXPIRE", "a"),
		rs(":0", "EXPIRE", "nokey", "100"),
		rs(":0", "EXPIRE", "a", "100", "xx"),
		rs(":0", "EXPIRE", "a", "100", "gt"), // no TTL counts as infinite
		rs(":1", "EXPIRE", "a", "100", "nx", "nx"),
		rs(":0", "EXPIRE", "a", "100", "nx"),
		rs(":1", "EXPIRE", "a", "200", "xx", "gt"),
		rs(":0", "EXPIRE", "a", "300", "lt"),
		rs(":1", "EXPIRE", "a", "50", "lt"),
		rs(":50", "TTL", "a"),
		rs(":1", "PERSIST", "a"),
		rs(":0", "PERSIST", "a"),
		rs(":0", "PERSIST", "nokey"),
		rs(":-1", "TTL", "a"),
		rs(":1", "EXPIRE", "a", "100", "lt"), // no TTL counts as infinite
		rs(":100", "TTL", "a"),
		rs(":-2", "TTL", "nokey"),
		rs(":-2", "PTTL", "nokey"),
		rs(":-2", "EXPIRETIME", "nokey"),
		rs(":-2", "PEXPIRETIME", "nokey"),
		rs(":1", "SADD", "p", "1"),
		rs(":-1", "TTL", "p"),
		rs(":-1", "PTTL", "p"),
		rs(":-1", "EXPIRETIME", "p"),
		rs(":-1", "PEXPIRETIME", "p"),
		rs(":1", "PEXPIREAT", "p", "4000000000123"),
		rs(":4000000000", "EXPIRETIME", "p"),
		rs(":4000000000123", "PEXPIRETIME", "p"),
		rs(":1", "PEXPIREAT", "p", "4000000000999"),
		rs(":4000000001", "EXPIRETIME", "p"),
		rs(":1", "EXPIREAT", "p", "4000000000"),
		rs(":4000000000000", "PEXPIRETIME", "p"),

		// Overflow.
		rs("-ERR invalid expire time in 'expire' command", "EXPIRE", "a", "9223372036854775807"),
		rs("-ERR invalid expire time in 'expire' command", "EXPIRE", "a", "9223372036854775"),
		rs("-ERR invalid expire time in 'expire' command", "EXPIRE", "a", "-9223372036854775808"),
		rs("-ERR invalid expire time in 'expireat' command", "EXPIREAT", "a", "9223372036854775807"),
		rs("-ERR invalid expire time in 'expireat' command", "EXPIREAT", "a", "-9223372036854775808"),
		rs("-ERR invalid expire time in 'pexpire' command", "PEXPIRE", "a", "9223372036854775807"),
		rs("-ERR invalid expire time in 'pexpire' command", "PEXPIRE", "nokey", "9223372036854775000"),
		rs(":1", "EXPIREAT", "a", "9223372036854775"),
		rs(":1", "PEXPIREAT", "a", "9223372036854775807"),
		rs(":9223372036854776", "EXPIRETIME", "a"),
		rs(":9223372036854775807", "PEXPIRETIME", "a"),
		rs(":1", "EXPIRE", "a", "9223372036854"),

		// Times in the past delete the key (after the option checks).
		rs(":1", "SADD", "c", "1"),
		rs(":0", "EXPIRE", "c", "-1", "xx"),
		rs(":1", "EXISTS", "c"),
		rs(":1", "EXPIRE", "c", "-1", "nx"),
		rs(":0", "EXISTS", "c"),
		rs(":1", "SADD", "c", "1"),
		rs(":1", "EXPIRE", "c", "0"),
		rs(":-2", "TTL", "c"),
		rs(":1", "SADD", "c", "1"),
		rs(":1", "EXPIREAT", "c", "1"),
		rs(":0", "EXISTS", "c"),
		rs(":1", "SADD", "c", "1"),
		rs(":1", "PEXPIRE", "c", "-9223372036854775808"),
		rs(":0", "EXISTS", "c"),
		rs(":0", "EXPIRE", "c", "-5"),

		// A key's TTL goes with the key: a new key has none.
		rs(":1", "SADD", "d", "1"),
		rs(":1", "EXPIRE", "d", "100"),
		rs(":1", "SREM", "d", "1"),
		rs(":1", "SADD", "d", "1"),
		rs(":-1", "TTL", "d"),
		rs(":1", "EXPIRE", "d", "100"),
		rs(":1", "DEL", "d"),
		rs(":1", "SADD", "d", "1"),
		rs(":-1", "TTL", "d"),
		rs(":1", "PEXPIRE", "d", "1500"),
		{args: []string{"PTTL", "d"}, want: ":1500", noRef: true},
		{args: []string{"TTL", "d"}, want: ":2", noRef: true}, // 1.5 s rounds to 2
		rs(":1", "PEXPIRE", "d", "1499"),
		rs(":1", "TTL", "d"),
	})
}

// scanAll runs a whole SCAN-family iteration (prefix is {"SCAN"} or
// {"SSCAN", key}; opts follow the cursor) and returns the elements seen,
// sorted and deduplicated.
func scanAll(t *testing.T, ks *Keyspace, clk *testClock, prefix []string, opts ...string) []string {
	t.Helper()
	seen := map[string]bool{}
	cursor := "0"
	for calls := 0; ; calls++ {
		if calls > 100000 {
			t.Fatalf("%v: scan does not end", prefix)
		}
		args := append(append(append([]string{}, prefix...), cursor), opts...)
		r := doDB(t, ks, clk, 0, args...)
		if r.Kind != KindArray || len(r.Elems) != 2 {
			t.Fatalf("%v: bad reply %s", args, show(r))
		}
		for _, e := range r.Elems[1].Elems {
			seen[string(e.Str)] = true
		}
		if cursor = string(r.Elems[0].Str); cursor == "0" {
			break
		}
	}
	return sortedKeys(seen)
}

func (ref *refRedis) scanAll(t *testing.T, prefix []string, opts ...string) []string {
	t.Helper()
	seen := map[string]bool{}
	cursor := "0"
	for {
		args := append(append(append([]string{}, prefix...), cursor), opts...)
		r := ref.call(t, args...)
		if r.kind != '*' || len(r.elems) != 2 {
			t.Fatalf("reference %v: bad reply %s", args, r)
		}
		for _, e := range r.elems[1].elems {
			seen[e.str] = true
		}
		if cursor = r.elems[0].str; cursor == "0" {
			break
		}
	}
	return sortedKeys(seen)
}

func sortedKeys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func TestScanArguments(t *testing.T) {
	runSteps(t, []step{
		rs("-ERR invalid cursor", "SCAN", "abc"),
		rs("-ERR invalid cursor", "SCAN", " 0"),
		rs("-ERR invalid cursor", "SCAN", "0x"),
		rs("-ERR invalid cursor", "SCAN", "1e3"),
		rs("-ERR invalid cursor", "SCAN", "-"),
		rs("-ERR invalid cursor", "SCAN", "18446744073709551616"),
		rs("-ERR invalid cursor", "SCAN", "-18446744073709551616"),
		rs("[\"0\" []]", "SCAN", ""),
		rs("[\"0\" []]", "SCAN", "+0"),
		rs("[\"0\" []]", "SCAN", "-0"),
		rs("[\"0\" []]", "SCAN", "00"),
		rs("[\"0\" []]", "SCAN", "18446744073709551615"),
		rs("[\"0\" []]", "SCAN", "-18446744073709551615"),
		rs("-ERR syntax error", "SCAN", "0", "count", "0"),
		rs("-ERR syntax error", "SCAN", "0", "count"),
		rs("-ERR value is not an integer or out of range", "SCAN", "0", "count", "a"),
		rs("-ERR value is not an integer or out of range", "SCAN", "0", "count", "9223372036854775808"),
		rs("[\"0\" []]", "SCAN", "0", "count", "9223372036854775807"),
		rs("-ERR syntax error", "SCAN", "0", "match"),
		rs("-ERR syntax error", "SCAN", "0", "type"),
		rs("-ERR syntax error", "SCAN", "0", "novalue"),
		rs("[\"0\" []]", "SCAN", "0", "type", "foo"),
		rs("[\"0\" []]", "SCAN", "0", "MATCH", "*", "COUNT", "5", "TYPE", "set"),
		rs("-ERR wrong number of arguments for 'scan' command", "SCAN"),
	})
}

func TestScanIteration(t *testing.T) {
	ks, clk := newTestKS(t)
	ref := dialRef(t)
	put := func(args ...string) {
		t.Helper()
		doDB(t, ks, clk, 0, args...)
		if ref != nil {
			ref.do(t, args...)
		}
	}
	for i := 0; i < 300; i++ {
		put("SADD", "key:"+strconv.Itoa(i), "m")
	}
	put("SADD", "other", "m")
	put("SADD", "hs", "a", "b")
	members := []string{"SADD", "big"}
	for i := 0; i < 200; i++ {
		members = append(members, "m"+strconv.Itoa(i))
	}
	put(members...)

	cases := []struct {
		prefix []string
		opts   []string
		want   int
	}{
		{[]string{"SCAN"}, nil, 303},
		{[]string{"SCAN"}, []string{"COUNT", "7"}, 303},
		{[]string{"SCAN"}, []string{"MATCH", "key:1*"}, 111},
		{[]string{"SCAN"}, []string{"MATCH", "key:1?", "COUNT", "1000"}, 10},
		{[]string{"SCAN"}, []string{"TYPE", "set"}, 303},
		{[]string{"SCAN"}, []string{"TYPE", "SET", "MATCH", "o*"}, 1},
		{[]string{"SCAN"}, []string{"TYPE", "string"}, 0},
		{[]string{"SSCAN", "big"}, nil, 200},
		{[]string{"SSCAN", "big"}, []string{"COUNT", "3"}, 200},
		{[]string{"SSCAN", "big"}, []string{"MATCH", "m1*"}, 111},
		{[]string{"SSCAN", "hs"}, []string{"MATCH", "a"}, 1},
	}
	for _, c := range cases {
		got := scanAll(t, ks, clk, c.prefix, c.opts...)
		if len(got) != c.want {
			t.Errorf("%v %v: %d elements, want %d", c.prefix, c.opts, len(got), c.want)
		}
		if ref != nil {
			if want := ref.scanAll(t, c.prefix, c.opts...); strings.Join(got, ",") != strings.Join(want, ",") {
				t.Errorf("%v %v: got %v, reference %v", c.prefix, c.opts, got, want)
			}
		}
	}
	// KEYS agrees with a full SCAN.
	keys := sortedShow(do(t, ks, clk, "KEYS", "key:2*"))
	if scan := scanAll(t, ks, clk, []string{"SCAN"}, "MATCH", "key:2*"); strings.Join(keys, ",") != strings.Join(scan, ",") || len(keys) != 111 {
		t.Errorf("KEYS key:2* = %d keys, SCAN = %d", len(keys), len(scan))
	}
}

// TestScanGuarantee checks SCAN's promise under churn: a key present from
// the start to the end of an iteration is returned, however many keys are
// deleted and added between the calls.
func TestScanGuarantee(t *testing.T) {
	ks, clk := newTestKS(t)
	stable := map[string]bool{}
	for i := 0; i < 500; i++ {
		k := "k" + strconv.Itoa(i)
		do(t, ks, clk, "SADD", k, "x")
		if i%3 == 0 {
			stable[k] = true
		}
	}
	r := NewRand(42)
	seen := map[string]bool{}
	cursor := "0"
	next := 500
	for calls := 0; ; calls++ {
		if calls > 10000 {
			t.Fatal("scan does not end")
		}
		rep := do(t, ks, clk, "SCAN", cursor, "COUNT", "5")
		for _, e := range rep.Elems[1].Elems {
			seen[string(e.Str)] = true
		}
		if cursor = string(rep.Elems[0].Str); cursor == "0" {
			break
		}
		// Churn: delete a few unstable keys, add new ones (which may take
		// freed slots behind or ahead of the cursor).
		for j := 0; j < 4; j++ {
			k := "k" + strconv.Itoa(r.Intn(next))
			if !stable[k] {
				do(t, ks, clk, "DEL", k)
			}
			do(t, ks, clk, "SADD", "k"+strconv.Itoa(next), "x")
			next++
		}
	}
	for k := range stable {
		if !seen[k] {
			t.Errorf("SCAN missed %s, present throughout", k)
		}
	}

	// The same holds for SSCAN over a hash-table set.
	args := []string{"SADD", "s"}
	for i := 0; i < 600; i++ {
		args = append(args, "m"+strconv.Itoa(i))
	}
	do(t, ks, clk, args...)
	seen = map[string]bool{}
	cursor = "0"
	for calls := 0; ; calls++ {
		if calls > 10000 {
			t.Fatal("sscan does not end")
		}
		rep := do(t, ks, clk, "SSCAN", "s", cursor, "COUNT", "5")
		for _, e := range rep.Elems[1].Elems {
			seen[string(e.Str)] = true
		}
		if cursor = string(rep.Elems[0].Str); cursor == "0" {
			break
		}
		m := r.Intn(600)
		if m%3 != 0 {
			do(t, ks, clk, "SREM", "s", "m"+strconv.Itoa(m))
		}
		do(t, ks, clk, "SADD", "s", "n"+strconv.Itoa(calls))
	}
	for i := 0; i < 600; i += 3 {
		if !seen["m"+strconv.Itoa(i)] {
			t.Errorf("SSCAN missed m%d, present throughout", i)
		}
	}
}

// TestActiveExpiry: SampleExpired finds expired keys without reading the
// whole keyspace, and the concord-expire write removes them as an observed
// remove that replicates like any other.
func TestActiveExpiry(t *testing.T) {
	rs := newReplicas(t, 2)
	a, b := rs[0], rs[1]
	for i := 0; i < 50; i++ {
		k := "e" + strconv.Itoa(i)
		a.do(t, "SADD", k, "m")
		a.do(t, "PEXPIRE", k, "1000")
	}
	for i := 0; i < 50; i++ {
		a.do(t, "SADD", "live"+strconv.Itoa(i), "m")
		if i%2 == 0 {
			a.do(t, "EXPIRE", "live"+strconv.Itoa(i), "1000")
		}
	}
	a.do(t, "SADD", "racer", "m")
	a.do(t, "PEXPIRE", "racer", "1000")
	syncAll(t, rs)
	if got := a.ks.Expires(0); got != 76 || got != a.ks.KeysWithTTL(0) {
		t.Fatalf("Expires = %d, KeysWithTTL = %d, want 76", got, a.ks.KeysWithTTL(0))
	}
	// b re-adds to "racer" concurrently with a's sweep below: the sweep
	// removes what it observed (the old member and the TTL), not the add.
	b.do(t, "SADD", "racer", "new")

	a.clk.ms += 2000
	now := a.clk.ms
	if got := a.ks.SampleExpired(0, now-1500, 10, NewRand(1)); len(got) != 0 {
		t.Errorf("sampled %d keys before they expired", len(got))
	}
	r := NewRand(7)
	removed := 0
	for round := 0; round < 100 && a.ks.DBSize(0) > 50; round++ {
		keys := a.ks.SampleExpired(0, now, 8, r)
		if len(keys) > 8 {
			t.Fatalf("sampled %d keys, max 8", len(keys))
		}
		args := []string{"concord-expire"}
		for _, k := range keys {
			if !bytes.HasPrefix(k, []byte("e")) && string(k) != "racer" {
				t.Fatalf("sampled live key %q", k)
			}
			args = append(args, string(k))
		}
		args = append(args, "live0", "nokey") // not expired / missing: untouched
		rep := a.do(t, args...)
		if rep.Int != int64(len(keys)) {
			t.Fatalf("concord-expire %v: %s", keys, show(rep))
		}
		removed += len(keys)
	}
	if removed != 51 || a.ks.DBSize(0) != 50 || a.ks.Expires(0) != 25 {
		t.Errorf("removed %d, dbsize %d, expires %d; want 51, 50, 25", removed, a.ks.DBSize(0), a.ks.Expires(0))
	}
	if a.ks.Stats.ExpiredKeys != 51 {
		t.Errorf("Stats.ExpiredKeys = %d", a.ks.Stats.ExpiredKeys)
	}
	b.clk.ms = a.clk.ms
	syncAll(t, rs)
	expectR(t, b, "[\"new\"]", "SMEMBERS", "racer")
	expectR(t, b, ":-1", "TTL", "racer")
	converged(t, rs, []string{"DBSIZE"}, []string{"KEYS", "e*"})
	if b.ks.Expires(0) != 25 {
		t.Errorf("b: Expires = %d, want 25", b.ks.Expires(0))
	}
	if spec := Lookup([]byte("CONCORD-EXPIRE")); spec == nil || !spec.Internal || !spec.Write {
		t.Error("concord-expire must be an internal write command")
	}
}

// TestSampleExpiredBounded: one call looks at a bounded number of keys,
// however large the keyspace, and repeated calls still find every expired
// key.
func TestSampleExpiredBounded(t *testing.T) {
	ks, clk := newTestKS(t)
	for i := 0; i < 5000; i++ {
		k := "k" + strconv.Itoa(i)
		do(t, ks, clk, "SADD", k, "m")
		ttl := "100000"
		if i%1000 == 0 {
			ttl = "1"
		}
		do(t, ks, clk, "PEXPIRE", k, ttl)
	}
	now := clk.ms + 10
	r := NewRand(3)
	found := map[string]bool{}
	calls := 0
	for ; len(found) < 5 && calls < 10000; calls++ {
		for _, k := range ks.SampleExpired(0, now, 20, r) {
			found[string(k)] = true
		}
	}
	if len(found) != 5 {
		t.Fatalf("found %d of 5 expired keys in %d calls", len(found), calls)
	}
	if ks.SampleExpired(0, now, 0, r) != nil || ks.SampleExpired(99, now, 5, r) != nil {
		t.Error("max 0 or a bad db must sample nothing")
	}
	// RANDOMKEY skips expired keys.
	ks2, clk2 := newTestKS(t)
	do(t, ks2, clk2, "SADD", "dead", "m")
	do(t, ks2, clk2, "PEXPIRE", "dead", "1")
	do(t, ks2, clk2, "SADD", "alive", "m")
	clk2.ms += 5
	for i := 0; i < 20; i++ {
		if r := ks2.Read(0, clk2.ms, uint64(i), [][]byte{[]byte("RANDOMKEY")}); show(r) != "\"alive\"" {
			t.Fatalf("RANDOMKEY = %s", show(r))
		}
	}
	expect(t, ks2, clk2, ":2", "DBSIZE") // expired keys count until removed, as in Redis
	expect(t, ks2, clk2, "[\"alive\"]", "KEYS", "*")
	expect(t, ks2, clk2, "[\"0\" [\"alive\"]]", "SCAN", "0")
}

// TestObjectIdletime: reads and writes through the key reset the idle
// time; TYPE, TTL, EXISTS and OBJECT do not, as in Redis.
func TestObjectIdletime(t *testing.T) {
	ks, clk := newTestKS(t)
	do(t, ks, clk, "SADD", "k", "m")
	clk.ms += 5000
	expect(t, ks, clk, ":5", "OBJECT", "IDLETIME", "k")
	for _, c := range [][]string{{"TYPE", "k"}, {"TTL", "k"}, {"EXISTS", "k"}, {"OBJECT", "ENCODING", "k"}, {"SCAN", "0"}, {"KEYS", "*"}} {
		do(t, ks, clk, c...)
	}
	expect(t, ks, clk, ":5", "OBJECT", "IDLETIME", "k")
	do(t, ks, clk, "SCARD", "k")
	expect(t, ks, clk, ":0", "OBJECT", "IDLETIME", "k")
	clk.ms += 3000
	do(t, ks, clk, "TOUCH", "k")
	expect(t, ks, clk, ":0", "OBJECT", "IDLETIME", "k")
	clk.ms += 3000
	do(t, ks, clk, "SADD", "k", "n")
	expect(t, ks, clk, ":0", "OBJECT", "IDLETIME", "k")
	// RENAME looks the source up, which counts as an access in Redis.
	clk.ms += 4000
	do(t, ks, clk, "RENAME", "k", "k2")
	expect(t, ks, clk, ":0", "OBJECT", "IDLETIME", "k2")
	// EXISTS does not count.
	clk.ms += 4000
	do(t, ks, clk, "EXISTS", "k2")
	expect(t, ks, clk, ":4", "OBJECT", "IDLETIME", "k2")
	// A key merged from a peer gets the op's time as its first access.
	rs := newReplicas(t, 2)
	rs[0].do(t, "SADD", "p", "x")
	syncAll(t, rs)
	rs[1].clk.ms = rs[0].clk.ms + 2000
	expectR(t, rs[1], ":2", "OBJECT", "IDLETIME", "p")
}

// TestWholeKeyMoves: RENAME, COPY and MOVE carry the TTL, replace the
// destination's content and (RENAME, MOVE) remove the source, across
// replicas too.
func TestWholeKeyMoves(t *testing.T) {
	rs := newReplicas(t, 2)
	a, b := rs[0], rs[1]
	a.do(t, "SADD", "src", "1", "2")
	a.do(t, "EXPIRE", "src", "500")
	a.do(t, "SADD", "dst", "old")
	syncAll(t, rs)
	a.do(t, "RENAME", "src", "dst")
	b.do(t, "SADD", "src", "3") // concurrent: survives as "src"
	syncAll(t, rs)
	for _, r := range rs {
		expectR(t, r, "[\"1\" \"2\"]", "SMEMBERS", "dst")
		expectR(t, r, ":500", "TTL", "dst")
		expectR(t, r, "[\"3\"]", "SMEMBERS", "src")
	}
	converged(t, rs)
	a.do(t, "COPY", "dst", "dst", "DB", "5")
	a.do(t, "MOVE", "src", "6")
	syncAll(t, rs)
	for _, r := range rs {
		for db, want := range map[int]string{0: "[\"dst\"]", 5: "[\"dst\"]", 6: "[\"src\"]"} {
			if got := show(r.ks.Read(db, r.clk.ms, 0, [][]byte{[]byte("KEYS"), []byte("*")})); got != want {
				t.Errorf("%s db %d: KEYS = %s, want %s", r.ks.Origin(), db, got, want)
			}
		}
		if got := show(r.ks.Read(5, r.clk.ms, 0, [][]byte{[]byte("TTL"), []byte("dst")})); got != ":500" {
			t.Errorf("%s: copied TTL = %s", r.ks.Origin(), got)
		}
	}
	converged(t, rs)
}

// TestConcurrentReadsTouch: reads may run concurrently with each other
// and each records an access; run with -race to check that is safe.
func TestConcurrentReadsTouch(t *testing.T) {
	ks, clk := newTestKS(t)
	do(t, ks, clk, "SADD", "k", "a", "b")
	now := clk.ms
	done := make(chan bool)
	for g := 0; g < 4; g++ {
		go func(g int) {
			for i := 0; i < 200; i++ {
				ms := now + int64(i*1000)
				ks.Read(0, ms, uint64(i), [][]byte{[]byte("SCARD"), []byte("k")})
				ks.Read(0, ms, uint64(i), [][]byte{[]byte("OBJECT"), []byte("IDLETIME"), []byte("k")})
				ks.Read(0, ms, uint64(i), [][]byte{[]byte("SRANDMEMBER"), []byte("k"), []byte("-3")})
			}
			done <- true
		}(g)
	}
	for g := 0; g < 4; g++ {
		<-done
	}
}

// A restored node must keep HSCAN/ZSCAN cursors and random picks identical
// to the node it came from: the slot layout travels in the snapshot.
func TestSnapshotKeepsCollectionLayout(t *testing.T) {
	ks, clk := newTestKS(t)
	for i := 0; i < 300; i++ {
		do(t, ks, clk, "HSET", "h", fmt.Sprintf("f%03d", i), "v")
		do(t, ks, clk, "ZADD", "z", "1", fmt.Sprintf("m%03d", i))
	}
	for i := 0; i < 300; i += 3 {
		do(t, ks, clk, "HDEL", "h", fmt.Sprintf("f%03d", i))
		do(t, ks, clk, "ZREM", "z", fmt.Sprintf("m%03d", i))
	}
	do(t, ks, clk, "HSET", "h", "new", "v")
	do(t, ks, clk, "ZADD", "z", "2", "new")
	rs, err := Restore(ks.Snapshot())
	if err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{
		{"HSCAN", "h", "0", "COUNT", "10"},
		{"ZSCAN", "z", "0", "COUNT", "10"},
		{"HRANDFIELD", "h", "5"},
		{"ZRANDMEMBER", "z", "5"},
	} {
		a := make([][]byte, len(args))
		for i, s := range args {
			a[i] = []byte(s)
		}
		want := show(ks.Read(0, clk.ms, 42, a))
		if got := show(rs.Read(0, clk.ms, 42, a)); got != want {
			t.Errorf("%v after restore: %s, before: %s", args, got, want)
		}
	}
}

func TestSnapshotKeepsKeyLayout(t *testing.T) {
	ks, clk := newTestKS(t)
	for i := 0; i < 200; i++ {
		do(t, ks, clk, "SET", fmt.Sprintf("k%03d", i), "v")
	}
	for i := 0; i < 200; i += 7 {
		do(t, ks, clk, "DEL", fmt.Sprintf("k%03d", 199-i))
	}
	rs, err := Restore(ks.Snapshot())
	if err != nil {
		t.Fatal(err)
	}
	// New keys land in the same slots on both, so cursors agree.
	for i := 0; i < 10; i++ {
		k := fmt.Sprintf("new%d", i)
		do(t, ks, clk, "SET", k, "v")
		rs.Apply(Stamp{Time: HLCFromMillis(clk.ms), Seed: 1}, []Command{{Args: [][]byte{[]byte("SET"), []byte(k), []byte("v")}}})
	}
	for _, args := range [][]string{{"SCAN", "0", "COUNT", "30"}, {"RANDOMKEY"}} {
		a := make([][]byte, len(args))
		for i, s := range args {
			a[i] = []byte(s)
		}
		want := show(ks.Read(0, clk.ms, 7, a))
		if got := show(rs.Read(0, clk.ms, 7, a)); got != want {
			t.Errorf("%v after restore: %s, before: %s", args, got, want)
		}
	}
}
