package crdt

import (
	"testing"
)

func TestListCommands(t *testing.T) {
	runSteps(t, []step{
		rs(":3", "RPUSH", "l", "a", "b", "c"),
		rs(":5", "LPUSH", "l", "y", "x"),
		rs("[\"x\" \"y\" \"a\" \"b\" \"c\"]", "LRANGE", "l", "0", "-1"),
		rs(":5", "LLEN", "l"),
		rs(":0", "LLEN", "nokey"),
		rs("-ERR wrong number of arguments for 'lpush' command", "LPUSH", "l"),
		rs(":0", "LPUSHX", "nokey", "a"),
		rs(":0", "RPUSHX", "nokey", "a"),
		rs(":0", "EXISTS", "nokey"),
		rs(":6", "RPUSHX", "l", "d"),
		rs(":7", "LPUSHX", "l", "w"),
		rs("\"w\"", "LINDEX", "l", "0"),
		rs("\"d\"", "LINDEX", "l", "-1"),
		rs("\"x\"", "LINDEX", "l", "-6"),
		rs("nil", "LINDEX", "l", "7"),
		rs("nil", "LINDEX", "l", "-8"),
		rs("nil", "LINDEX", "nokey", "x"),
		rs("-ERR value is not an integer or out of range", "LINDEX", "l", "x"),
		rs("[\"y\" \"a\"]", "LRANGE", "l", "2", "3"),
		rs("[\"c\" \"d\"]", "LRANGE", "l", "-2", "100"),
		rs("[]", "LRANGE", "l", "5", "2"),
		rs("[]", "LRANGE", "l", "7", "9"),
		rs("[\"w\"]", "LRANGE", "l", "-100", "0"),
		rs("[]", "LRANGE", "nokey", "0", "-1"),
		rs("-ERR value is not an integer or out of range", "LRANGE", "nokey", "a", "1"),
		rs("-ERR value is not an integer or out of range", "LRANGE", "l", "0", "1.5"),

		// Pops.
		rs("\"w\"", "LPOP", "l"),
		rs("\"d\"", "RPOP", "l"),
		rs("[\"x\" \"y\"]", "LPOP", "l", "2"),
		rs("[\"c\" \"b\"]", "RPOP", "l", "2"),
		rs("[]", "LPOP", "l", "0"),
		rs("nil", "LPOP", "nokey"),
		rs("nil", "LPOP", "nokey", "2"),
		rs("nil", "LPOP", "nokey", "0"),
		rs("-ERR value is out of range, must be positive", "LPOP", "l", "-1"),
		rs("-ERR value is out of range, must be positive", "RPOP", "nokey", "x"),
		rs("-ERR wrong number of arguments for 'lpop' command", "LPOP", "l", "1", "2"),
		rs("[\"a\"]", "RPOP", "l", "5"), // the last element: the key goes
		rs(":0", "EXISTS", "l"),

		// LSET.
		rs("-ERR no such key", "LSET", "nokey", "0", "x"),
		rs("-ERR no such key", "LSET", "nokey", "x", "x"),
		rs(":3", "RPUSH", "m", "a", "b", "c"),
		rs("+OK", "LSET", "m", "-1", "C"),
		rs("+OK", "LSET", "m", "0", "A"),
		rs("-ERR index out of range", "LSET", "m", "3", "x"),
		rs("-ERR index out of range", "LSET", "m", "-4", "x"),
		rs("-ERR value is not an integer or out of range", "LSET", "m", "x", "x"),
		rs("[\"A\" \"b\" \"C\"]", "LRANGE", "m", "0", "-1"),

		// LINSERT.
		rs(":4", "LINSERT", "m", "BEFORE", "b", "x"),
		rs(":5", "LINSERT", "m", "after", "b", "y"),
		rs(":6", "LINSERT", "m", "AFTER", "C", "z"),
		rs(":7", "LINSERT", "m", "before", "A", "0"),
		rs(":-1", "LINSERT", "m", "before", "nope", "0"),
		rs(":0", "LINSERT", "nokey", "before", "a", "0"),
		rs("-ERR syntax error", "LINSERT", "m", "middle", "a", "0"),
		rs("-ERR syntax error", "LINSERT", "nokey", "middle", "a", "0"),
		rs("[\"0\" \"A\" \"x\" \"b\" \"y\" \"C\" \"z\"]", "LRANGE", "m", "0", "-1"),

		// LREM.
		rs(":0", "DEL", "r"),
		rs(":8", "RPUSH", "r", "a", "b", "a", "c", "a", "b", "a", "d"),
		rs(":2", "LREM", "r", "2", "a"),
		rs("[\"b\" \"c\" \"a\" \"b\" \"a\" \"d\"]", "LRANGE", "r", "0", "-1"),
		rs(":1", "LREM", "r", "-1", "a"),
		rs("[\"b\" \"c\" \"a\" \"b\" \"d\"]", "LRANGE", "r", "0", "-1"),
		rs(":2", "LREM", "r", "0", "b"),
		rs(":0", "LREM", "r", "0", "zz"),
		rs(":0", "LREM", "nokey", "0", "zz"),
		rs("-ERR value is not an integer or out of range", "LREM", "nokey", "x", "zz"),
		rs(":1", "LREM", "r", "-9223372036854775808", "a"),
		rs(":1", "LREM", "r", "0", "c"),
		rs(":1", "LREM", "r", "1", "d"), // the last element: the key goes
		rs(":0", "EXISTS", "r"),
	})
}
