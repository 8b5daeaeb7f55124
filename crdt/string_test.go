package crdt

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"testing"
)

// This file runs command tables against a real redis-server, so the
// expected replies in string_test.go and hash_test.go are checked against
// Redis itself rather than against memory. Tests using it skip when
// redis-server is not installed.

// shRedis is a throwaway redis-server started by a test.
type shRedis struct {
	conn net.Conn
	r    *bufio.Reader
}

// shStartRedis starts redis-server on a free loopback port, without
// persistence, and stops it when the test ends.
func shStartRedis(t *testing.T) *shRedis {
	conn, r := startRefRedis(t, "redis-server not installed; skipping comparison with real Redis")
	return &shRedis{conn: conn, r: r}
}

// do sends one command and renders the reply like show.
func (c *shRedis) do(t testing.TB, args ...string) string {
	t.Helper()
	var b strings.Builder
	fmt.Fprintf(&b, "*%d\r\n", len(args))
	for _, a := range args {
		fmt.Fprintf(&b, "$%d\r\n%s\r\n", len(a), a)
	}
	if _, err := c.conn.Write([]byte(b.String())); err != nil {
		t.Fatal(err)
	}
	s, err := c.read()
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func (c *shRedis) read() (string, error) {
	line, err := c.r.ReadString('\n')
	if err != nil {
		return "", err
	}
	line = strings.TrimSuffix(line, "\r\n")
	kind, body := line[0], line[1:]
	switch kind {
	case '+':
		return "+" + body, nil
	case '-':
		return "-" + body, nil
	case ':':
		return ":" + body, nil
	case '_':
		return "nil", nil
	case '#':
		if body == "t" {
			return ":1", nil
		}
		return ":0", nil
	case ',':
		return strconv.Quote(body), nil
	case '$':
		n, _ := strconv.Atoi(body)
		if n < 0 {
			return "nil", nil
		}
		buf := make([]byte, n+2)
		if _, err := io.ReadFull(c.r, buf); err != nil {
			return "", err
		}
		return fmt.Sprintf("%q", buf[:n]), nil
	case '*', '%', '~':
		n, _ := strconv.Atoi(body)
		if n < 0 {
			return "nil", nil
		}
		if kind == '%' {
			n *= 2
		}
		parts := make([]string, n)
		for i := range parts {
			if parts[i], err = c.read(); err != nil {
				return "", err
			}
		}
		return "[" + strings.Join(parts, " ") + "]", nil
	}
	return "", fmt.Errorf("unexpected reply %q", line)
}

// shStep is one command of a table and the reply expected from it (as show
// renders replies).
type shStep struct {
	want string
	args []string
}

func sh(want string, args ...string) shStep { return shStep{want, args} }

// shRun runs steps on a fresh solo keyspace.
func shRun(t *testing.T, steps []shStep) {
	t.Helper()
	ks, clk := newTestKS(t)
	for _, s := range steps {
		expect(t, ks, clk, s.want, s.args...)
	}
}

// shRunRedis runs steps against a real Redis (flushed first) and reports
// every reply that differs from the table.
func shRunRedis(t *testing.T, ref *shRedis, steps []shStep) {
	t.Helper()
	ref.do(t, "FLUSHALL")
	for _, s := range steps {
		if got := ref.do(t, s.args...); got != s.want {
			t.Errorf("redis %q: got %s, table says %s", s.args, got, s.want)
		}
	}
}

// stringTables are sequential sessions whose replies were checked against
// redis-server 7.0.15 (TestStringTablesRedis re-checks them when it is
// installed).
var stringTables = map[string][]shStep{
	"set-get": {
		sh(`nil`, "GET", "k"),
		sh(`+OK`, "SET", "k", "v"),
		sh(`"v"`, "GET", "k"),
		sh(`+OK`, "SET", "k", ""),
		sh(`""`, "GET", "k"),
		sh(`+OK`, "SET", "k", "a\x00b\r\n"),
		sh(`"a\x00b\r\n"`, "GET", "k"),
		sh(`-ERR wrong number of arguments for 'get' command`, "GET"),
		sh(`-ERR wrong number of arguments for 'get' command`, "GET", "a", "b"),
		sh(`-ERR wrong number of arguments for 'set' command`, "SET", "k"),
		sh(`:1`, "HSET", "h", "f", "v"),
		sh(`-WRONGTYPE Operation against a key holding the wrong kind of value`, "GET", "h"),
		sh(`+OK`, "SET", "h", "s"),
		sh(`"s"`, "GET", "h"),
	},
	"set-options": {
		sh(`-ERR invalid expire time in 'set' command`, "SET", "k", "v", "EX", "0"),
		sh(`-ERR invalid expire time in 'set' command`, "SET", "k", "v", "EX", "-1"),
		sh(`-ERR value is not an integer or out of range`, "SET", "k", "v", "EX", "abc"),
		sh(`-ERR value is not an integer or out of range`, "SET", "k", "v", "EX", "1.5"),
		sh(`-ERR value is not an integer or out of range`, "SET", "k", "v", "EX", " 5"),
		sh(`-ERR invalid expire time in 'set' command`, "SET", "k", "v", "EX", "9223372036854775807"),
		sh(`-ERR invalid expire time in 'set' command`, "SET", "k", "v", "EX", "9223372036854775"),
		sh(`-ERR invalid expire time in 'set' command`, "SET", "k", "v", "PX", "9223372036854775807"),
		sh(`-ERR invalid expire time in 'set' command`, "SET", "k", "v", "EXAT", "9223372036854775807"),
		sh(`-ERR invalid expire time in 'set' command`, "SET", "k", "v", "EXAT", "0"),
		sh(`-ERR invalid expire time in 'set' command`, "SET", "k", "v", "PXAT", "-5"),
		sh(`nil`, "GET", "k"),
		sh(`-ERR syntax error`, "SET", "k", "v", "NX", "XX"),
		sh(`-ERR syntax error`, "SET", "k", "v", "XX", "NX"),
		sh(`-ERR syntax error`, "SET", "k", "v", "KEEPTTL", "EX", "5"),
		sh(`-ERR syntax error`, "SET", "k", "v", "EX", "5", "KEEPTTL"),
		sh(`-ERR syntax error`, "SET", "k", "v", "EX"),
		sh(`-ERR syntax error`, "SET", "k", "v", "BOGUS"),
		sh(`-ERR syntax error`, "SET", "k", "v", "EX", "5", "PX", "5"),
		sh(`-ERR syntax error`, "SET", "k", "v", "PXAT", "5", "EXAT", "5"),
		sh(`-ERR syntax error`, "SET", "k", "v", "PERSIST"),
		sh(`-ERR invalid expire time in 'set' command`, "SET", "k", "v", "NX", "EX", "0"),
		sh(`-ERR invalid expire time in 'set' command`, "SET", "k", "v", "GET", "EX", "0"),
		sh(`nil`, "SET", "k", "v", "XX"),
		sh(`nil`, "SET", "k", "v", "XX", "GET"),
		sh(`nil`, "GET", "k"),
		sh(`nil`, "SET", "k", "v", "NX", "GET"),
		sh(`"v"`, "SET", "k", "w", "NX", "GET"),
		sh(`"v"`, "GET", "k"),
		sh(`nil`, "SET", "k", "w", "NX"),
		sh(`+OK`, "SET", "k", "w", "XX"),
		sh(`"w"`, "SET", "k", "x", "xx", "get"),
		sh(`"x"`, "SET", "k", "y", "GET", "GET"),
		sh(`+OK`, "SET", "k", "v", "EX", "5", "EX", "6"),
		sh(`+OK`, "SET", "k", "v", "px", "100000"),
		sh(`+OK`, "SET", "k", "v", "KEEPTTL"),
		sh(`+OK`, "SET", "k", "v", "EXAT", "4102444800"),
		sh(`+OK`, "SET", "k", "v", "PXAT", "4102444800000"),
		sh(`+OK`, "SET", "k", "v", "PXAT", "9223372036854775807"),
		sh(`+OK`, "SET", "k", "v", "PXAT", "1"),
		sh(`nil`, "GET", "k"),
		sh(`nil`, "SET", "k", "v", "PXAT", "1", "GET"),
		sh(`nil`, "GET", "k"),
		sh(`:1`, "HSET", "h", "f", "v"),
		sh(`-WRONGTYPE Operation against a key holding the wrong kind of value`, "SET", "h", "v", "GET"),
		sh(`-WRONGTYPE Operation against a key holding the wrong kind of value`, "SET", "h", "v", "NX", "GET"),
		sh(`nil`, "SET", "h", "v", "NX"),
		sh(`"v"`, "HGET", "h", "f"),
		sh(`+OK`, "SET", "h", "v", "XX"),
		sh(`"v"`, "GET", "h"),
		sh(`:1`, "HSET", "h2", "f", "v"),
		sh(`+OK`, "SET", "h2", "v", "KEEPTTL"),
		sh(`"v"`, "GET", "h2"),
	},
	"getset-getdel": {
		sh(`nil`, "GETSET", "k", "a"),
		sh(`"a"`, "GETSET", "k", "b"),
		sh(`"b"`, "GET", "k"),
		sh(`"b"`, "GETDEL", "k"),
		sh(`nil`, "GETDEL", "k"),
		sh(`nil`, "GET", "k"),
		sh(`:1`, "HSET", "h", "f", "v"),
		sh(`-WRONGTYPE Operation against a key holding the wrong kind of value`, "GETSET", "h", "x"),
		sh(`-WRONGTYPE Operation against a key holding the wrong kind of value`, "GETDEL", "h"),
		sh(`:1`, "HLEN", "h"),
	},
	"getex": {
		sh(`nil`, "GETEX", "k"),
		sh(`nil`, "GETEX", "k", "EX", "5"),
		sh(`nil`, "GETEX", "k", "EX", "0"),
		sh(`nil`, "GETEX", "k", "EX", "abc"),
		sh(`-ERR syntax error`, "GETEX", "k", "FOO"),
		sh(`+OK`, "SET", "k", "v"),
		sh(`"v"`, "GETEX", "k"),
		sh(`-ERR invalid expire time in 'getex' command`, "GETEX", "k", "EX", "0"),
		sh(`-ERR invalid expire time in 'getex' command`, "GETEX", "k", "PX", "-1"),
		sh(`-ERR value is not an integer or out of range`, "GETEX", "k", "EX", "abc"),
		sh(`-ERR syntax error`, "GETEX", "k", "PERSIST", "EX", "5"),
		sh(`-ERR syntax error`, "GETEX", "k", "EX", "5", "PERSIST"),
		sh(`-ERR syntax error`, "GETEX", "k", "KEEPTTL"),
		sh(`-ERR syntax error`, "GETEX", "k", "NX"),
		sh(`-ERR syntax error`, "GETEX", "k", "GET"),
		sh(`-ERR syntax error`, "GETEX", "k", "EX"),
		sh(`-ERR invalid expire time in 'getex' command`, "GETEX", "k", "EX", "9223372036854775"),
		sh(`-ERR invalid expire time in 'getex' command`, "GETEX", "k", "PX", "9223372036854775807"),
		sh(`"v"`, "GETEX", "k", "EX", "5", "EX", "6"),
		sh(`"v"`, "GETEX", "k", "persist"),
		sh(`"v"`, "GETEX", "k", "PXAT", "9223372036854775807"),
		sh(`"v"`, "GETEX", "k", "EXAT", "4102444800"),
		sh(`"v"`, "GETEX", "k", "PXAT", "1"),
		sh(`nil`, "GET", "k"),
		sh(`:1`, "HSET", "h", "f", "v"),
		sh(`-WRONGTYPE Operation against a key holding the wrong kind of value`, "GETEX", "h"),
		sh(`-WRONGTYPE Operation against a key holding the wrong kind of value`, "GETEX", "h", "EX", "0"),
		sh(`-ERR syntax error`, "GETEX", "h", "FOO"),
	},
	"mset-mget": {
		sh(`-ERR wrong number of arguments for 'mset' command`, "MSET", "a"),
		sh(`-ERR wrong number of arguments for 'mset' command`, "MSET", "a", "1", "b"),
		sh(`-ERR wrong number of arguments for 'msetnx' command`, "MSETNX", "a", "1", "b"),
		sh(`+OK`, "MSET", "a", "1", "b", "2", "a", "3"),
		sh(`["3" "2" nil]`, "MGET", "a", "b", "c"),
		sh(`:0`, "MSETNX", "c", "1", "a", "2"),
		sh(`nil`, "GET", "c"),
		sh(`:1`, "MSETNX", "c", "1", "d", "2"),
		sh(`["1" "2"]`, "MGET", "c", "d"),
		sh(`:1`, "HSET", "h", "f", "v"),
		sh(`[nil "3"]`, "MGET", "h", "a"),
		sh(`:0`, "MSETNX", "h", "1", "z", "2"),
		sh(`+OK`, "MSET", "h", "x"),
		sh(`"x"`, "GET", "h"),
	},
	"append-strlen": {
		sh(`:3`, "APPEND", "k", "abc"),
		sh(`:5`, "APPEND", "k", "de"),
		sh(`"abcde"`, "GET", "k"),
		sh(`:5`, "STRLEN", "k"),
		sh(`:0`, "STRLEN", "nokey"),
		sh(`:0`, "APPEND", "e", ""),
		sh(`""`, "GET", "e"),
		sh(`+OK`, "SET", "n", "1"),
		sh(`:2`, "APPEND", "n", "2"),
		sh(`:13`, "INCR", "n"),
		sh(`:1`, "HSET", "h", "f", "v"),
		sh(`-WRONGTYPE Operation against a key holding the wrong kind of value`, "APPEND", "h", "x"),
		sh(`-WRONGTYPE Operation against a key holding the wrong kind of value`, "STRLEN", "h"),
	},
	"setrange-getrange": {
		sh(`+OK`, "SET", "s", "hello"),
		sh(`"hello"`, "GETRANGE", "s", "0", "-1"),
		sh(`"llo"`, "GETRANGE", "s", "-3", "-1"),
		sh(`""`, "GETRANGE", "s", "-1", "-3"),
		sh(`"hello"`, "GETRANGE", "s", "-100", "100"),
		sh(`""`, "GETRANGE", "s", "3", "1"),
		sh(`"h"`, "GETRANGE", "s", "0", "0"),
		sh(`"o"`, "GETRANGE", "s", "4", "10"),
		sh(`""`, "GETRANGE", "s", "5", "10"),
		sh(`"hello"`, "GETRANGE", "s", "-9223372036854775808", "9223372036854775807"),
		sh(`""`, "GETRANGE", "nokey", "0", "1"),
		sh(`-ERR value is not an integer or out of range`, "GETRANGE", "s", "a", "1"),
		sh(`-ERR value is not an integer or out of range`, "GETRANGE", "nokey", "0", "x"),
		sh(`"el"`, "SUBSTR", "s", "1", "2"),
		sh(`+OK`, "SET", "e", ""),
		sh(`""`, "GETRANGE", "e", "0", "-1"),
		sh(`""`, "GETRANGE", "e", "-1", "0"),
		sh(`-ERR offset is out of range`, "SETRANGE", "s", "-1", "x"),
		sh(`-ERR value is not an integer or out of range`, "SETRANGE", "s", "abc", "x"),
		sh(`:0`, "SETRANGE", "nokey", "5", ""),
		sh(`nil`, "GET", "nokey"),
		sh(`:0`, "SETRANGE", "nokey", "536870912", ""),
		sh(`-ERR string exceeds maximum allowed size (proto-max-bulk-len)`, "SETRANGE", "nokey", "536870912", "x"),
		sh(`-ERR string exceeds maximum allowed size (proto-max-bulk-len)`, "SETRANGE", "nokey", "536870911", "xy"),
		sh(`-ERR string exceeds maximum allowed size (proto-max-bulk-len)`, "SETRANGE", "s", "9223372036854775807", "xy"),
		sh(`:5`, "SETRANGE", "s", "536870912", ""),
		sh(`:9`, "SETRANGE", "s", "7", "XY"),
		sh(`"hello\x00\x00XY"`, "GET", "s"),
		sh(`:9`, "SETRANGE", "s", "0", "J"),
		sh(`"Jello\x00\x00XY"`, "GET", "s"),
		sh(`:4`, "SETRANGE", "n2", "2", "ab"),
		sh(`"\x00\x00ab"`, "GET", "n2"),
		sh(`:1`, "HSET", "h", "f", "v"),
		sh(`-WRONGTYPE Operation against a key holding the wrong kind of value`, "SETRANGE", "h", "0", ""),
		sh(`-ERR offset is out of range`, "SETRANGE", "h", "-1", "x"),
		sh(`-WRONGTYPE Operation against a key holding the wrong kind of value`, "GETRANGE", "h", "0", "1"),
		sh(`-ERR value is not an integer or out of range`, "GETRANGE", "h", "x", "1"),
	},
	"setnx-setex": {
		sh(`:1`, "SETNX", "k", "a"),
		sh(`:0`, "SETNX", "k", "b"),
		sh(`"a"`, "GET", "k"),
		sh(`:1`, "HSET", "h", "f", "v"),
		sh(`:0`, "SETNX", "h", "b"),
		sh(`-ERR invalid expire time in 'setex' command`, "SETEX", "k", "0", "x"),
		sh(`-ERR value is not an integer or out of range`, "SETEX", "k", "abc", "x"),
		sh(`-ERR invalid expire time in 'setex' command`, "SETEX", "k", "9223372036854775", "x"),
		sh(`-ERR invalid expire time in 'psetex' command`, "PSETEX", "k", "0", "x"),
		sh(`-ERR invalid expire time in 'psetex' command`, "PSETEX", "k", "-5", "x"),
		sh(`-ERR invalid expire time in 'psetex' command`, "PSETEX", "k", "9223372036854775807", "x"),
		sh(`"a"`, "GET", "k"),
		sh(`+OK`, "SETEX", "k", "10", "v"),
		sh(`"v"`, "GET", "k"),
		sh(`+OK`, "PSETEX", "k", "10000", "w"),
		sh(`"w"`, "GET", "k"),
		sh(`+OK`, "SETEX", "h", "10", "v"),
		sh(`"v"`, "GET", "h"),
	},
	"incr-decr": {
		sh(`:1`, "INCR", "n"),
		sh(`:0`, "DECR", "n"),
		sh(`:-1`, "DECR", "n"),
		sh(`:9`, "INCRBY", "n", "10"),
		sh(`:-1`, "DECRBY", "n", "10"),
		sh(`-ERR value is not an integer or out of range`, "INCRBY", "n", "1.5"),
		sh(`-ERR value is not an integer or out of range`, "INCRBY", "n", "+1"),
		sh(`-ERR value is not an integer or out of range`, "INCRBY", "n", " 1"),
		sh(`-ERR value is not an integer or out of range`, "INCRBY", "n", "01"),
		sh(`-ERR value is not an integer or out of range`, "INCRBY", "n", "9223372036854775808"),
		sh(`-ERR decrement would overflow`, "DECRBY", "n", "-9223372036854775808"),
		sh(`:9223372036854775806`, "DECRBY", "n", "-9223372036854775807"),
		sh(`:9223372036854775807`, "INCR", "n"),
		sh(`-ERR increment or decrement would overflow`, "INCR", "n"),
		sh(`"9223372036854775807"`, "GET", "n"),
		sh(`+OK`, "SET", "n", "-9223372036854775808"),
		sh(`-ERR increment or decrement would overflow`, "DECR", "n"),
		sh(`-ERR increment or decrement would overflow`, "INCRBY", "n", "-1"),
		sh(`:-1`, "INCRBY", "n", "9223372036854775807"),
		sh(`+OK`, "SET", "n", "007"),
		sh(`-ERR value is not an integer or out of range`, "INCR", "n"),
		sh(`+OK`, "SET", "n", "-0"),
		sh(`-ERR value is not an integer or out of range`, "INCR", "n"),
		sh(`+OK`, "SET", "n", "+5"),
		sh(`-ERR value is not an integer or out of range`, "INCR", "n"),
		sh(`+OK`, "SET", "n", " 3"),
		sh(`-ERR value is not an integer or out of range`, "INCR", "n"),
		sh(`+OK`, "SET", "n", "1e2"),
		sh(`-ERR value is not an integer or out of range`, "INCR", "n"),
		sh(`+OK`, "SET", "n", "12345678901234567890"),
		sh(`-ERR value is not an integer or out of range`, "INCR", "n"),
		sh(`+OK`, "SET", "n", ""),
		sh(`-ERR value is not an integer or out of range`, "INCR", "n"),
		sh(`+OK`, "SET", "n", "abc"),
		sh(`-ERR value is not an integer or out of range`, "DECRBY", "n", "1"),
		sh(`-ERR value is not an integer or out of range`, "DECRBY", "n", "x"),
		sh(`+OK`, "SET", "n", "41"),
		sh(`:42`, "INCR", "n"),
		sh(`"42"`, "GET", "n"),
		sh(`:1`, "HSET", "h", "f", "v"),
		sh(`-WRONGTYPE Operation against a key holding the wrong kind of value`, "INCR", "h"),
		sh(`-ERR value is not an integer or out of range`, "INCRBY", "h", "x"),
		sh(`-ERR decrement would overflow`, "DECRBY", "h", "-9223372036854775808"),
	},
	"incrbyfloat": {
		sh(`+OK`, "SET", "k", "10.5"),
		sh(`"10.6"`, "INCRBYFLOAT", "k", "0.1"),
		sh(`"10.6"`, "GET", "k"),
		sh(`+OK`, "SET", "k", "1"),
		sh(`"1000000000000000000008997324079559193870523944273290747938260082321265646596180935755849152083750497190350372508614274835903592556184672983913096260520748646287327135641843653294084255107606016789726652932370030551382947620994540294772781889620606179267611627097410650567187386105690089424915104006144"`, "INCRBYFLOAT", "k", "1e300"),
		sh(`+OK`, "SET", "k", "3.0e3"),
		sh(`"3001"`, "INCRBYFLOAT", "k", "1"),
		sh(`:3002`, "INCR", "k"),
		sh(`+OK`, "SET", "k", "5"),
		sh(`"5005"`, "INCRBYFLOAT", "k", "5.0e3"),
		sh(`"5021"`, "INCRBYFLOAT", "k", "0x10"),
		sh(`"5024"`, "INCRBYFLOAT", "k", "0x1.8p1"),
		sh(`"5024.25"`, "INCRBYFLOAT", "k", "0X1P-2"),
		sh(`"5024.75"`, "INCRBYFLOAT", "k", "0x.8"),
		sh(`"5025.25"`, "INCRBYFLOAT", "k", ".5"),
		sh(`"5030.25"`, "INCRBYFLOAT", "k", "5."),
		sh(`"5040.25"`, "INCRBYFLOAT", "k", "1e00000000000000000000000000001"),
		sh(`-ERR increment would produce NaN or Infinity`, "INCRBYFLOAT", "k", "inf"),
		sh(`-ERR increment would produce NaN or Infinity`, "INCRBYFLOAT", "k", "+inf"),
		sh(`-ERR increment would produce NaN or Infinity`, "INCRBYFLOAT", "k", "-Infinity"),
		sh(`-ERR value is not a valid float`, "INCRBYFLOAT", "k", "infin"),
		sh(`-ERR value is not a valid float`, "INCRBYFLOAT", "k", "nan"),
		sh(`-ERR value is not a valid float`, "INCRBYFLOAT", "k", "-nan"),
		sh(`-ERR value is not a valid float`, "INCRBYFLOAT", "k", "1e5000"),
		sh(`-ERR value is not a valid float`, "INCRBYFLOAT", "k", "1e-5000"),
		sh(`-ERR value is not a valid float`, "INCRBYFLOAT", "k", " 1"),
		sh(`-ERR value is not a valid float`, "INCRBYFLOAT", "k", "1 "),
		sh(`-ERR value is not a valid float`, "INCRBYFLOAT", "k", ""),
		sh(`-ERR value is not a valid float`, "INCRBYFLOAT", "k", "1,5"),
		sh(`-ERR value is not a valid float`, "INCRBYFLOAT", "k", "1.5.5"),
		sh(`-ERR value is not a valid float`, "INCRBYFLOAT", "k", "0x"),
		sh(`-ERR value is not a valid float`, "INCRBYFLOAT", "k", "0x."),
		sh(`-ERR value is not a valid float`, "INCRBYFLOAT", "k", "0x1p"),
		sh(`-ERR value is not a valid float`, "INCRBYFLOAT", "k", "1e"),
		sh(`-ERR value is not a valid float`, "INCRBYFLOAT", "k", "1e+"),
		sh(`-ERR value is not a valid float`, "INCRBYFLOAT", "k", "."),
		sh(`-ERR value is not a valid float`, "INCRBYFLOAT", "k", "1\x002"),
		sh(`-ERR value is not a valid float`, "INCRBYFLOAT", "k", "0x1p-16446"),
		sh(`"5040.25"`, "INCRBYFLOAT", "k", "0x1.0000001p-16446"),
		sh(`"5040.25"`, "INCRBYFLOAT", "k", "1e-4940"),
		sh(`"5040.25"`, "GET", "k"),
		sh(`+OK`, "SET", "k", "inf"),
		sh(`-ERR increment would produce NaN or Infinity`, "INCRBYFLOAT", "k", "1"),
		sh(`-ERR value is not a valid float`, "INCRBYFLOAT", "k", "x"),
		sh(`+OK`, "SET", "k", "abc"),
		sh(`-ERR value is not a valid float`, "INCRBYFLOAT", "k", "1"),
		sh(`+OK`, "SET", "k", "5\x00"),
		sh(`-ERR value is not a valid float`, "INCRBYFLOAT", "k", "1"),
		sh(`+OK`, "SET", "k", "-0.0"),
		sh(`"0"`, "INCRBYFLOAT", "k", "0"),
		sh(`"0"`, "INCRBYFLOAT", "k", "-0.0"),
		sh(`"-1.5"`, "INCRBYFLOAT", "k", "-1.5"),
		sh(`nil`, "GET", "f"),
		sh(`"0.1"`, "INCRBYFLOAT", "f", "0.1"),
		sh(`"0.3"`, "INCRBYFLOAT", "f", "0.2"),
		sh(`"0.3"`, "INCRBYFLOAT", "f", "1e-20"),
		sh(`"0.30000000000000001"`, "INCRBYFLOAT", "f", "1e-17"),
		sh(`"5.30000000000000001"`, "INCRBYFLOAT", "f", "5"),
		sh(`+OK`, "SET", "big", "1e308"),
		sh(`"199999999999999999993371759311691291321120199694831134415594095989843469737676123744200253843777078640893494450108026446304269499187921167194841628860392837535918200039206381557326219209014213335878306791577877829121087126122536729803237260434173178506889763247582601711514636284849020905456510092687857156096"`, "INCRBYFLOAT", "big", "1e308"),
		sh(`:309`, "STRLEN", "big"),
		sh(`:1`, "HSET", "h", "f", "v"),
		sh(`-WRONGTYPE Operation against a key holding the wrong kind of value`, "INCRBYFLOAT", "h", "1"),
		sh(`-WRONGTYPE Operation against a key holding the wrong kind of value`, "INCRBYFLOAT", "h", "abc"),
	},
}

func TestStringTables(t *testing.T) {
	for name, steps := range stringTables {
		t.Run(name, func(t *testing.T) { shRun(t, steps) })
	}
}

func TestStringTablesRedis(t *testing.T) {
	ref := shStartRedis(t)
	for name, steps := range stringTables {
		t.Run(name, func(t *testing.T) { shRunRedis(t, ref, steps) })
	}
}

// shReplica is one region's keyspace in a multi-replica test, with the
// batches it produced so they can be delivered to the others.
type shReplica struct {
	ks  *Keyspace
	out []*Batch
	ms  int64
}

func shReplicas(n int) []*shReplica {
	rs := make([]*shReplica, n)
	for i := range rs {
		rs[i] = &shReplica{ks: NewKeyspace(Origin{Region: uint32(i + 1), Incarnation: 1}, Options{}), ms: testEpochMs}
	}
	return rs
}

// do applies a write (or runs a read) on the replica and records the batch.
func (r *shReplica) do(t testing.TB, args ...string) Reply {
	t.Helper()
	a := make([][]byte, len(args))
	for i, s := range args {
		a[i] = []byte(s)
	}
	r.ms++
	if spec := Lookup(a[0]); spec != nil && !spec.Write {
		return r.ks.Read(0, r.ms, uint64(r.ms), a)
	}
	rep, b := r.ks.Apply(Stamp{Time: HLCFromMillis(r.ms), Seed: uint64(r.ms)}, []Command{{Args: a}})
	if b != nil {
		r.out = append(r.out, b)
	}
	return rep[0]
}

func (r *shReplica) expect(t testing.TB, want string, args ...string) {
	t.Helper()
	if got := show(r.do(t, args...)); got != want {
		t.Errorf("region %d %v: got %s, want %s", r.ks.Origin().Region, args, got, want)
	}
}

// deliver merges every batch from's produced so far into to (skipping what
// to has already applied).
func (r *shReplica) deliver(t testing.TB, to *shReplica) {
	t.Helper()
	for _, b := range r.out {
		if err := to.ks.Merge(b); err != nil {
			t.Fatalf("merge into region %d: %v", to.ks.Origin().Region, err)
		}
	}
}

// shSync delivers everything everywhere (twice round, so relayed
// dependencies are satisfied) and checks that all digests agree.
func shSync(t testing.TB, rs ...*shReplica) {
	t.Helper()
	for round := 0; round < 2; round++ {
		for _, a := range rs {
			for _, b := range rs {
				if a != b {
					for _, bt := range a.out {
						if err := b.ks.Merge(bt); err != nil && !errors.Is(err, ErrNotReady) {
							t.Fatal(err)
						}
					}
				}
			}
		}
	}
	for _, r := range rs[1:] {
		if r.ks.Digest() != rs[0].ks.Digest() {
			t.Fatalf("region %d and region %d diverged", rs[0].ks.Origin().Region, r.ks.Origin().Region)
		}
	}
}

func TestStringConcurrentIncrementsAddUp(t *testing.T) {
	rs := shReplicas(2)
	a, b := rs[0], rs[1]
	a.expect(t, "+OK", "SET", "k", "10")
	a.deliver(t, b)
	a.expect(t, ":11", "INCR", "k")
	a.expect(t, ":13", "INCRBY", "k", "2")
	b.expect(t, ":15", "INCRBY", "k", "5")
	b.expect(t, ":14", "DECR", "k")
	shSync(t, a, b)
	a.expect(t, `"17"`, "GET", "k")
	b.expect(t, `"17"`, "GET", "k")
	// Increments beyond int64 from different origins are kept exactly, and
	// INCR then answers Redis's range error.
	a.expect(t, "+OK", "SET", "big", "9223372036854775800")
	shSync(t, a, b)
	a.expect(t, ":9223372036854775807", "INCRBY", "big", "7")
	b.expect(t, ":9223372036854775805", "INCRBY", "big", "5")
	shSync(t, a, b)
	a.expect(t, `"9223372036854775812"`, "GET", "big")
	b.expect(t, "-ERR value is not an integer or out of range", "INCR", "big")
	// Float increments too, folded in tag order on every replica.
	a.expect(t, `"0.1"`, "INCRBYFLOAT", "f", "0.1")
	b.expect(t, `"0.2"`, "INCRBYFLOAT", "f", "0.2")
	shSync(t, a, b)
	a.expect(t, `"0.3"`, "GET", "f")
	b.expect(t, `"0.3"`, "GET", "f")
}

func TestStringSetObservesOnlySeenIncrements(t *testing.T) {
	rs := shReplicas(2)
	a, b := rs[0], rs[1]
	a.expect(t, "+OK", "SET", "k", "0")
	a.deliver(t, b)
	b.expect(t, ":5", "INCRBY", "k", "5")
	b.deliver(t, a)
	a.expect(t, ":6", "INCR", "k") // b has not seen this one
	b.expect(t, "+OK", "SET", "k", "100")
	shSync(t, a, b)
	a.expect(t, `"101"`, "GET", "k")
	b.expect(t, `"101"`, "GET", "k")
	// DEL is observed-remove too: an unseen increment brings the key back
	// from zero.
	b.expect(t, ":102", "INCR", "k")
	a.expect(t, "+OK", "SET", "k", "x") // concurrent with b's INCR
	shSync(t, a, b)
	// a's SET observed the base "100" and a's own INCR but not b's INCR,
	// which survives; it cannot apply to text, so the fold skips it until
	// an overwrite that has seen it removes it.
	a.expect(t, `"x"`, "GET", "k")
	a.expect(t, "-ERR value is not an integer or out of range", "INCR", "k")
	a.expect(t, "+OK", "SET", "k", "7")
	shSync(t, a, b)
	b.expect(t, ":8", "INCR", "k")
}

func TestStringConcurrentSetsLastWriterWins(t *testing.T) {
	rs := shReplicas(3)
	rs[0].expect(t, "+OK", "SET", "k", "a")
	rs[1].ms += 5 // region 2's clock is ahead
	rs[1].expect(t, "+OK", "SET", "k", "b")
	rs[2].expect(t, ":3", "APPEND", "k", "ccc")
	shSync(t, rs...)
	for _, r := range rs {
		r.expect(t, `"b"`, "GET", "k")
	}
	// The losing writes are kept until an overwrite observes them.
	rs[2].expect(t, "+OK", "SET", "k", "z")
	shSync(t, rs...)
	for _, r := range rs {
		r.expect(t, `"z"`, "GET", "k")
	}
	v, _ := rs[0].ks.dbs[0].keys.Get("k")
	if n := len(v.vals[0].(*strValue).base); n != 1 {
		t.Errorf("register holds %d values after an observing overwrite, want 1", n)
	}
}

// shTTL returns key's expiry in db 0 (0 if persistent or missing).
func shTTL(ks *Keyspace, key string) int64 {
	if e, ok := ks.dbs[0].keys.Get(key); ok {
		return e.ExpireAt()
	}
	return 0
}

func TestStringTTLRules(t *testing.T) {
	ks, clk := newTestKS(t)
	expect(t, ks, clk, "+OK", "SET", "k", "1", "EX", "100")
	at := shTTL(ks, "k")
	if at != clk.ms+100000 {
		t.Fatalf("SET EX 100 at %d: expiry %d", clk.ms, at)
	}
	// Writes that modify a string in place keep its TTL, as in Redis.
	expect(t, ks, clk, ":2", "INCR", "k")
	expect(t, ks, clk, `"3.5"`, "INCRBYFLOAT", "k", "1.5")
	expect(t, ks, clk, ":4", "APPEND", "k", "x")
	expect(t, ks, clk, ":4", "SETRANGE", "k", "0", "9")
	expect(t, ks, clk, "+OK", "SET", "k", "v", "KEEPTTL")
	if got := shTTL(ks, "k"); got != at {
		t.Fatalf("TTL changed to %d by in-place writes, want %d", got, at)
	}
	// A plain SET, GETSET or MSET removes it.
	expect(t, ks, clk, "+OK", "SET", "k", "v")
	if got := shTTL(ks, "k"); got != 0 {
		t.Fatalf("SET kept TTL %d", got)
	}
	expect(t, ks, clk, "+OK", "SETEX", "k", "10", "v")
	expect(t, ks, clk, `"v"`, "GETSET", "k", "w")
	expect(t, ks, clk, "+OK", "PSETEX", "k", "10", "v")
	expect(t, ks, clk, "+OK", "MSET", "k", "w")
	if got := shTTL(ks, "k"); got != 0 {
		t.Fatalf("GETSET/MSET kept TTL %d", got)
	}
	// GETEX sets and removes it; PXAT in the past deletes the key.
	expect(t, ks, clk, `"w"`, "GETEX", "k", "PX", "5000")
	if got := shTTL(ks, "k"); got != clk.ms+5000 {
		t.Fatalf("GETEX PX 5000 at %d: expiry %d", clk.ms, got)
	}
	expect(t, ks, clk, `"w"`, "GETEX", "k", "PERSIST")
	if got := shTTL(ks, "k"); got != 0 {
		t.Fatalf("GETEX PERSIST kept TTL %d", got)
	}
	expect(t, ks, clk, `"w"`, "GETEX", "k", "PXAT", "1")
	if ks.DBSize(0) != 0 {
		t.Fatalf("GETEX PXAT in the past left %d keys", ks.DBSize(0))
	}
	// SET PXAT in the past stores an expired key (as Redis 7.0 does):
	// invisible at once, removed by the next write that meets it.
	expect(t, ks, clk, "+OK", "SET", "k", "v", "PXAT", "1")
	expect(t, ks, clk, "nil", "GET", "k")
	expect(t, ks, clk, "nil", "SET", "k", "v2", "XX")
	expect(t, ks, clk, "+OK", "SET", "k", "v3", "NX")
	// SET over another type with KEEPTTL keeps the TTL, without it drops it.
	expect(t, ks, clk, ":1", "HSET", "h", "f", "v")
	mergeExpire(t, ks, "h", testEpochMs+1e9)
	expect(t, ks, clk, "+OK", "SET", "h", "s", "KEEPTTL")
	if got := shTTL(ks, "h"); got != testEpochMs+1e9 {
		t.Fatalf("SET KEEPTTL over a hash: expiry %d", got)
	}
	expect(t, ks, clk, `"s"`, "GET", "h")
}

// mergeExpire sets key's TTL through a batch from another origin (the
// EXPIRE command lives elsewhere).
func mergeExpire(t testing.TB, ks *Keyspace, key string, at int64) {
	t.Helper()
	o := Origin{Region: 99, Incarnation: 1}
	b := &Batch{Origin: o, FirstSeq: ks.Version().Get(o) + 1, Deps: nil,
		Ops: []Op{{Time: ks.LastTime() + 1, Effects: []Effect{{Kind: EffExpire, Key: []byte(key), Int: at}}}}}
	// The batch must have seen everything, so its context covers the key.
	for _, e := range ks.Version() {
		if e.Origin != o {
			b.Deps = append(b.Deps, e)
		}
	}
	if err := ks.Merge(b); err != nil {
		t.Fatal(err)
	}
}

func TestStringSoloCompaction(t *testing.T) {
	ks, clk := newTestKS(t)
	for i := 0; i < 100; i++ {
		do(t, ks, clk, "INCR", "n")
		do(t, ks, clk, "INCRBYFLOAT", "f", "0.1")
	}
	expect(t, ks, clk, `"100"`, "GET", "n")
	expect(t, ks, clk, `"10"`, "GET", "f")
	for _, k := range []string{"n", "f"} {
		e, _ := ks.dbs[0].keys.Get(k)
		s := e.vals[0].(*strValue)
		if len(s.base) != 1 || len(s.incs()) != 0 {
			t.Errorf("%s: %d base values and %d increments kept in solo mode, want 1 and 0", k, len(s.base), len(s.incs()))
		}
	}
}

func TestStringEncodeRoundTrip(t *testing.T) {
	rs := shReplicas(2)
	a, b := rs[0], rs[1]
	a.expect(t, "+OK", "SET", "k", "5")
	a.deliver(t, b)
	a.expect(t, ":6", "INCR", "k")
	b.expect(t, `"5.5"`, "INCRBYFLOAT", "k", "0.5")
	b.expect(t, "+OK", "SET", "s", "hello")
	a.expect(t, "+OK", "SET", "s", "world")
	shSync(t, a, b)
	snap := a.ks.Snapshot()
	ks2, err := Restore(snap)
	if err != nil {
		t.Fatal(err)
	}
	if ks2.Digest() != a.ks.Digest() {
		t.Fatal("restored state differs")
	}
	if got := show(ks2.Read(0, 0, 0, [][]byte{[]byte("GET"), []byte("k")})); got != `"6.5"` {
		t.Fatalf("restored GET k = %s", got)
	}
	// Every truncation fails cleanly.
	for i := 0; i < len(snap); i++ {
		if _, err := Restore(snap[:i]); err == nil {
			t.Fatalf("truncated snapshot (%d of %d bytes) accepted", i, len(snap))
		}
	}
}

func TestStringObjectEncodingAndReplay(t *testing.T) {
	for _, c := range []struct{ v, enc string }{
		{"123", "int"}, {"-9223372036854775808", "int"}, {"9223372036854775808", "embstr"},
		{"007", "embstr"}, {"", "embstr"}, {strings.Repeat("x", 44), "embstr"}, {strings.Repeat("x", 45), "raw"},
	} {
		if got := stringEncoding([]byte(c.v)); got != c.enc {
			t.Errorf("encoding of %q: %s, want %s", c.v, got, c.enc)
		}
	}
	ks, clk := newTestKS(t)
	do(t, ks, clk, "SET", "k", "41")
	do(t, ks, clk, "INCR", "k")
	e, _ := ks.dbs[0].keys.Get("k")
	var got []Effect
	e.visible().replay(func(f Effect) { got = append(got, f) })
	if len(got) != 1 || got[0].Kind != EffStrSet || string(got[0].Value) != "42" {
		t.Fatalf("replay: %v", got)
	}
}

func TestDecodeRejectsBadFloatIncrement(t *testing.T) {
	mk := func(text string) []byte {
		b := &Batch{Origin: Origin{Region: 2, Incarnation: 1}, FirstSeq: 1,
			Ops: []Op{{Time: 1, Effects: []Effect{{Kind: EffStrIncr, Flags: FlagFloat, Key: []byte("k"), Value: []byte(text)}}}}}
		return b.Encode(nil)
	}
	if _, err := DecodeBatch(mk("0.5")); err != nil {
		t.Fatalf("valid increment rejected: %v", err)
	}
	for _, bad := range []string{"", "abc", "inf", "nan", "1e5000", " 1"} {
		if _, err := DecodeBatch(mk(bad)); !errors.Is(err, ErrEffect) {
			t.Errorf("increment %q: err %v, want ErrEffect", bad, err)
		}
	}
}

func TestParseInt64LikeRedis(t *testing.T) {
	good := map[string]int64{"0": 0, "-1": -1, "9223372036854775807": 1<<63 - 1, "-9223372036854775808": -1 << 63, "10": 10}
	for s, want := range good {
		if v, ok := parseInt64([]byte(s)); !ok || v != want {
			t.Errorf("parseInt64(%q) = %d, %v", s, v, ok)
		}
	}
	for _, s := range []string{"", "-", "+1", "01", "-0", " 1", "1 ", "9223372036854775808", "-9223372036854775809", "1.0", "18446744073709551616", "99999999999999999999"} {
		if _, ok := parseInt64([]byte(s)); ok {
			t.Errorf("parseInt64(%q) accepted", s)
		}
	}
}

// TestParseLongDoubleNeverPanics feeds random byte strings built from the
// characters number syntax uses.
func TestParseLongDoubleNeverPanics(t *testing.T) {
	r := NewRand(7)
	alphabet := "0123456789abcdefxXpPeE.+-infINFnaN \x00"
	for i := 0; i < 20000; i++ {
		b := make([]byte, r.Intn(30))
		for j := range b {
			b[j] = alphabet[r.Intn(len(alphabet))]
		}
		if x, st := parseLongDouble(b); st == ldOK {
			formatLongDouble(x)
		}
	}
}
