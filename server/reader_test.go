package server

import (
	"fmt"
	"io"
	"strings"
	"testing"
)

// chunkReader hands out its data n bytes per Read, to show that parsing
// does not depend on how the input is split.
type chunkReader struct {
	data []byte
	n    int
}

func (r *chunkReader) Read(p []byte) (int, error) {
	if len(r.data) == 0 {
		return 0, io.EOF
	}
	k := min(r.n, len(p), len(r.data))
	copy(p, r.data[:k])
	r.data = r.data[k:]
	return k, nil
}

// parseAll parses everything in input, read chunk bytes at a time, and
// describes each event: a command's arguments, "(empty)" for an ignored
// request, "ERR ..." for a protocol error (which ends the stream) and
// "(incomplete)" if input ended inside a request.
func parseAll(input string, lim reqLimits, chunk int) []string {
	r := newReqReader(&chunkReader{data: []byte(input), n: chunk})
	var out []string
	for {
		args, ok, err := r.next(lim)
		if err != nil {
			return append(out, "ERR "+err.Error())
		}
		if !ok {
			if r.fill() != nil {
				if r.buffered() > 0 || r.multibulk > 0 {
					out = append(out, "(incomplete)")
				}
				return out
			}
			continue
		}
		if len(args) == 0 {
			out = append(out, "(empty)")
			continue
		}
		out = append(out, fmt.Sprintf("%q", args))
	}
}

var defaultLimits = reqLimits{maxBulk: DefaultProtoMaxBulkLen}

func TestReaderRedisCases(t *testing.T) {
	big := strings.Repeat("x", 40000) // a "big argument" (>= 32KB)
	unauth := reqLimits{maxBulk: DefaultProtoMaxBulkLen, authNeeded: true}
	cases := []struct {
		name string
		in   string
		lim  reqLimits
		want []string
	}{
		{name: "multibulk", in: "*2\r\n$3\r\nGET\r\n$1\r\nk\r\n", want: []string{`["GET" "k"]`}},
		{name: "pipeline", in: "*1\r\n$4\r\nPING\r\n*2\r\n$4\r\nECHO\r\n$0\r\n\r\n",
			want: []string{`["PING"]`, `["ECHO" ""]`}},
		{name: "binary", in: "*1\r\n$5\r\na\x00\r\nb\r\n", want: []string{`["a\x00\r\nb"]`}},
		{name: "negative count ignored", in: "*-10\r\n*1\r\n$4\r\nPING\r\n", want: []string{"(empty)", `["PING"]`}},
		{name: "zero count ignored", in: "*0\r\n", want: []string{"(empty)"}},
		{name: "big count accepted", in: "*2000000\r\n", want: []string{"(incomplete)"}},
		{name: "count over INT_MAX", in: "*2147483648\r\n", want: []string{"ERR Protocol error: invalid multibulk length"}},
		{name: "count INT_MAX", in: "*2147483647\r\n", want: []string{"(incomplete)"}},
		{name: "count plus sign", in: "*+1\r\n", want: []string{"ERR Protocol error: invalid multibulk length"}},
		{name: "count leading zero", in: "*01\r\n", want: []string{"ERR Protocol error: invalid multibulk length"}},
		{name: "count not a number", in: "*x\r\n", want: []string{"ERR Protocol error: invalid multibulk length"}},
		{name: "bulk over limit", in: "*1\r\n$600000000\r\n", want: []string{"ERR Protocol error: invalid bulk length"}},
		{name: "bulk at custom limit", in: "*1\r\n$1048577\r\n", lim: reqLimits{maxBulk: 1 << 20},
			want: []string{"ERR Protocol error: invalid bulk length"}},
		{name: "negative bulk", in: "*1\r\n$-1\r\n", want: []string{"ERR Protocol error: invalid bulk length"}},
		{name: "expected dollar", in: "*1\r\nx\r\n", want: []string{"ERR Protocol error: expected '$', got 'x'"}},
		{name: "CR after bulk unchecked", in: "*1\r\n$4\r\nPINGxx*1\r\n$4\r\nPING\r\n", want: []string{`["PING"]`, `["PING"]`}},
		{name: "LF after count unchecked", in: "*1\rX$4\r\nPING\r\n", want: []string{`["PING"]`}},
		{name: "big argument", in: "*2\r\n$3\r\nSET\r\n$40000\r\n" + big + "\r\n*1\r\n$4\r\nPING\r\n",
			want: []string{fmt.Sprintf("%q", []string{"SET", big}), `["PING"]`}},
		{name: "unauth count", in: "*11\r\n", lim: unauth, want: []string{"ERR Protocol error: unauthenticated multibulk length"}},
		{name: "unauth count 10 ok", in: "*10\r\n", lim: unauth, want: []string{"(incomplete)"}},
		{name: "unauth bulk", in: "*2\r\n$3\r\nget\r\n$16385\r\n", lim: unauth,
			want: []string{"ERR Protocol error: unauthenticated bulk length"}},
		{name: "unauth bulk 16KB ok", in: "*1\r\n$16384\r\n", lim: unauth, want: []string{"(incomplete)"}},
		{name: "too big count string", in: "*" + strings.Repeat("1", 70000), want: []string{"ERR Protocol error: too big mbulk count string"}},
		{name: "too big bulk count string", in: "*1\r\n$" + strings.Repeat("1", 70000), want: []string{"ERR Protocol error: too big bulk count string"}},
		{name: "NUL hides the CR", in: "*1\x00\r\n", want: []string{"(incomplete)"}},
		// Inline commands.
		{name: "inline", in: "set a b\r\n", want: []string{`["set" "a" "b"]`}},
		{name: "inline LF only", in: "ping\n", want: []string{`["ping"]`}},
		{name: "inline blanks", in: "  \t ping \t x  \r\n", want: []string{`["ping" "x"]`}},
		{name: "inline empty lines", in: "\r\n\n   \r\nping\r\n", want: []string{"(empty)", "(empty)", "(empty)", `["ping"]`}},
		{name: "inline quotes", in: `set "a b" 'c d' "\x41\n\t\"" 'it\'s'` + "\r\n",
			want: []string{`["set" "a b" "c d" "A\n\t\"" "it's"]`}},
		{name: "inline bad hex kept", in: `echo "\xZZ"` + "\r\n", want: []string{`["echo" "xZZ"]`}},
		{name: "inline empty quotes", in: `echo "" ''` + "\r\n", want: []string{`["echo" "" ""]`}},
		{name: "inline unbalanced", in: "set \"a b\r\n", want: []string{"ERR Protocol error: unbalanced quotes in request"}},
		{name: "inline quote then text", in: "ping \"a\"b\r\n", want: []string{"ERR Protocol error: unbalanced quotes in request"}},
		{name: "inline too big", in: strings.Repeat("a", 70000), want: []string{"ERR Protocol error: too big inline request"}},
		{name: "inline then multibulk", in: "ping\r\n*1\r\n$4\r\nPING\r\n", want: []string{`["ping"]`, `["PING"]`}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			lim := tc.lim
			if lim.maxBulk == 0 {
				lim.maxBulk = DefaultProtoMaxBulkLen
			}
			for _, chunk := range []int{1 << 20, 1, 7, 4096} {
				got := parseAll(tc.in, lim, chunk)
				if strings.Join(got, "\n") != strings.Join(tc.want, "\n") {
					t.Errorf("chunk %d:\n got %q\nwant %q", chunk, got, tc.want)
				}
			}
		})
	}
}

func TestReaderBuffered(t *testing.T) {
	// The query buffer counts unparsed input and the parts of the command
	// in progress, including a big argument being read.
	in := "*2\r\n$3\r\nSET\r\n$50000\r\n" + strings.Repeat("y", 30000)
	r := newReqReader(&chunkReader{data: []byte(in), n: len(in)})
	for {
		_, ok, err := r.next(defaultLimits)
		if err != nil || ok {
			t.Fatalf("ok=%v err=%v", ok, err)
		}
		if r.fill() != nil {
			break
		}
	}
	if got, want := r.buffered(), len(in)-len("*2\r\n"); got != want {
		t.Errorf("buffered = %d, want %d", got, want)
	}
}

func TestString2ll(t *testing.T) {
	for _, tc := range []struct {
		in string
		n  int64
		ok bool
	}{
		{"0", 0, true}, {"-0", 0, false}, {"01", 0, false}, {"+1", 0, false}, {"", 0, false},
		{"-", 0, false}, {"9223372036854775807", 9223372036854775807, true},
		{"9223372036854775808", 0, false}, {"-9223372036854775808", -9223372036854775808, true},
		{"-9223372036854775809", 0, false}, {" 1", 0, false}, {"1 ", 0, false}, {"12a", 0, false},
	} {
		n, ok := string2ll([]byte(tc.in))
		if n != tc.n || ok != tc.ok {
			t.Errorf("string2ll(%q) = %d, %v; want %d, %v", tc.in, n, ok, tc.n, tc.ok)
		}
	}
}
