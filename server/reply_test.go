package server

import (
	"math"
	"testing"

	"concord/crdt"
)

// TestAppendReply checks every reply kind's bytes in RESP2 and RESP3
// against what Redis 7.0 writes for the same reply.
func TestAppendReply(t *testing.T) {
	str := crdt.BulkString
	cases := []struct {
		name       string
		r          crdt.Reply
		resp2, re3 string
	}{
		{"nil", crdt.Nil, "$-1\r\n", "_\r\n"},
		{"nil array", crdt.NilArray, "*-1\r\n", "_\r\n"},
		{"status", crdt.OK, "+OK\r\n", "+OK\r\n"},
		{"error", crdt.ErrWrongType, "-WRONGTYPE Operation against a key holding the wrong kind of value\r\n",
			"-WRONGTYPE Operation against a key holding the wrong kind of value\r\n"},
		{"error newline", crdt.Err("ERR a\r\nb"), "-ERR a  b\r\n", "-ERR a  b\r\n"},
		{"int", crdt.Int(-42), ":-42\r\n", ":-42\r\n"},
		{"bulk", str("hi"), "$2\r\nhi\r\n", "$2\r\nhi\r\n"},
		{"empty bulk", str(""), "$0\r\n\r\n", "$0\r\n\r\n"},
		{"array", crdt.Array(crdt.Int(1), str("a"), crdt.Nil), "*3\r\n:1\r\n$1\r\na\r\n$-1\r\n", "*3\r\n:1\r\n$1\r\na\r\n_\r\n"},
		{"empty array", crdt.Array(), "*0\r\n", "*0\r\n"},
		{"map", crdt.Reply{Kind: crdt.KindMap, Elems: []crdt.Reply{str("f"), str("v"), str("g"), crdt.Int(2)}},
			"*4\r\n$1\r\nf\r\n$1\r\nv\r\n$1\r\ng\r\n:2\r\n", "%2\r\n$1\r\nf\r\n$1\r\nv\r\n$1\r\ng\r\n:2\r\n"},
		{"set", crdt.Reply{Kind: crdt.KindSet, Elems: []crdt.Reply{str("a"), str("b")}},
			"*2\r\n$1\r\na\r\n$1\r\nb\r\n", "~2\r\n$1\r\na\r\n$1\r\nb\r\n"},
		{"double", crdt.Double(1.5), "$3\r\n1.5\r\n", ",1.5\r\n"},
		{"double 0.1", crdt.Double(0.1), "$19\r\n0.10000000000000001\r\n", ",0.10000000000000001\r\n"},
		{"double inf", crdt.Double(math.Inf(1)), "$3\r\ninf\r\n", ",inf\r\n"},
		{"double -inf", crdt.Double(math.Inf(-1)), "$4\r\n-inf\r\n", ",-inf\r\n"},
		{"double exp", crdt.Double(1e21), "$5\r\n1e+21\r\n", ",1e+21\r\n"},
		{"bool true", crdt.Bool(true), ":1\r\n", "#t\r\n"},
		{"bool false", crdt.Bool(false), ":0\r\n", "#f\r\n"},
		{"pairs", crdt.Reply{Kind: crdt.KindPairs, Elems: []crdt.Reply{str("m"), crdt.Double(2), str("n"), crdt.Double(3.5)}},
			"*4\r\n$1\r\nm\r\n$1\r\n2\r\n$1\r\nn\r\n$3\r\n3.5\r\n", "*2\r\n*2\r\n$1\r\nm\r\n,2\r\n*2\r\n$1\r\nn\r\n,3.5\r\n"},
		{"nested", crdt.Array(crdt.Reply{Kind: crdt.KindMap, Elems: []crdt.Reply{str("k"), crdt.Reply{Kind: crdt.KindSet, Elems: []crdt.Reply{crdt.Status("x")}}}}),
			"*1\r\n*2\r\n$1\r\nk\r\n*1\r\n+x\r\n", "*1\r\n%1\r\n$1\r\nk\r\n~1\r\n+x\r\n"},
		{"verbatim", verbatim("a:1\r\n"), "$5\r\na:1\r\n\r\n", "=9\r\ntxt:a:1\r\n\r\n"},
	}
	for _, tc := range cases {
		if got := string(appendReply(nil, tc.r, 2)); got != tc.resp2 {
			t.Errorf("%s RESP2: got %q want %q", tc.name, got, tc.resp2)
		}
		if got := string(appendReply(nil, tc.r, 3)); got != tc.re3 {
			t.Errorf("%s RESP3: got %q want %q", tc.name, got, tc.re3)
		}
	}
}

func TestErrorCode(t *testing.T) {
	for in, want := range map[string]string{
		"ERR syntax error":                     "ERR",
		"WRONGTYPE Operation":                  "WRONGTYPE",
		"NOAUTH Authentication required":       "NOAUTH",
		"nospace":                              "ERR",
		"ABCDEFGHIJKLMNOPQRSTUVWXYZABCDEFGH x": "ERR", // no space within 32 bytes
	} {
		if got := errorCode(crdt.Err(in)); got != want {
			t.Errorf("errorCode(%q) = %q, want %q", in, got, want)
		}
	}
}
