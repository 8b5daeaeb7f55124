package crdt

import (
	"bytes"
	"flag"
	"fmt"
	"math/rand"
	"strconv"
	"strings"
	"testing"

	"pgregory.net/rapid"
)

// streamTable is a sequence of stream commands whose replies (RESP2 and
// RESP3 bytes) must equal Redis 7.0's: TestStreamTableAgainstRedis replays
// it on redis-server, TestStreamTable on a solo keyspace against the
// replies recorded in want (show form) for runs without redis-server.
var streamTable = []struct {
	args []string
	want string
}{
	{[]string{"XADD", "s", "1-1", "a", "1"}, `"1-1"`},
	{[]string{"XADD", "s", "1-1", "a", "1"}, `-ERR The ID specified in XADD is equal or smaller than the target stream top item`},
	{[]string{"XADD", "s", "0-0", "a", "1"}, `-ERR The ID specified in XADD must be greater than 0-0`},
	{[]string{"XADD", "s", "0", "a", "1"}, `-ERR The ID specified in XADD must be greater than 0-0`},
	{[]string{"XADD", "s", "1-*", "b", "2"}, `"1-2"`},
	{[]string{"XADD", "s", "0-*", "b", "2"}, `-ERR The ID specified in XADD is equal or smaller than the target stream top item`},
	{[]string{"XADD", "s", "5", "c", "3", "d", "4"}, `"5-0"`},
	{[]string{"XADD", "s", "00-01", "a", "b"}, `-ERR The ID specified in XADD is equal or smaller than the target stream top item`},
	{[]string{"XADD", "s", "+7-1", "a", "b"}, `"7-1"`},
	{[]string{"XADD", "s", "8--01", "a", "b"}, `"8-18446744073709551615"`},
	{[]string{"XADD", "s", "8-*", "a", "b"}, `-ERR Elements are too large to be stored`},
	{[]string{"XADD", "s", "9-*1", "a", "b"}, `-ERR Invalid stream ID specified as stream command argument`},
	{[]string{"XADD", "s", "abc", "a", "b"}, `-ERR Invalid stream ID specified as stream command argument`},
	{[]string{"XADD", "s", "1-18446744073709551616", "a", "b"}, `-ERR Invalid stream ID specified as stream command argument`},
	{[]string{"XADD", "s", "-", "a", "b"}, `-ERR Invalid stream ID specified as stream command argument`},
	{[]string{"XADD", "s", "10-1", "a"}, `-ERR wrong number of arguments for 'xadd' command`},
	{[]string{"XADD", "s", "10-1", "a", "b", "c"}, `-ERR wrong number of arguments for 'xadd' command`},
	{[]string{"XADD", "s", "MAXLEN", "-1", "10-1", "a", "b"}, `-ERR The MAXLEN argument must be >= 0.`},
	{[]string{"XADD", "s", "MAXLEN", "x", "10-1", "a", "b"}, `-ERR value is not an integer or out of range`},
	{[]string{"XADD", "s", "MAXLEN", "1", "MINID", "1", "10-1", "a", "b"}, `-ERR syntax error, MAXLEN and MINID options at the same time are not compatible`},
	{[]string{"XADD", "s", "LIMIT", "10", "10-1", "a", "b"}, `-ERR syntax error, LIMIT cannot be used without specifying a trimming strategy`},
	{[]string{"XADD", "s", "MAXLEN", "5", "LIMIT", "10", "10-1", "a", "b"}, `-ERR syntax error, LIMIT cannot be used without the special ~ option`},
	{[]string{"XADD", "s", "MAXLEN", "~", "5", "LIMIT", "-1", "10-1", "a", "b"}, `-ERR The LIMIT argument must be >= 0.`},
	{[]string{"XADD", "s", "MINID", "(5", "10-1", "a", "b"}, `-ERR Invalid stream ID specified as stream command argument`},
	{[]string{"XADD", "nokey", "NOMKSTREAM", "1-1", "a", "b"}, `nil`},
	{[]string{"EXISTS", "nokey"}, `:0`},
	{[]string{"XADD", "s", "NOMKSTREAM", "MAXLEN", "=", "4", "10-1", "e", "5"}, `"10-1"`},
	{[]string{"XLEN", "s"}, `:4`},
	{[]string{"XRANGE", "s", "-", "+"}, `[["5-0" ["c" "3" "d" "4"]] ["7-1" ["a" "b"]] ["8-18446744073709551615" ["a" "b"]] ["10-1" ["e" "5"]]]`},
	{[]string{"XRANGE", "s", "(5", "+", "COUNT", "1"}, `[["7-1" ["a" "b"]]]`},
	{[]string{"XRANGE", "s", "-", "(10-1"}, `[["5-0" ["c" "3" "d" "4"]] ["7-1" ["a" "b"]] ["8-18446744073709551615" ["a" "b"]]]`},
	{[]string{"XRANGE", "s", "5", "5"}, `[["5-0" ["c" "3" "d" "4"]]]`},
	{[]string{"XRANGE", "s", "-", "+", "COUNT", "0"}, `nil`},
	{[]string{"XRANGE", "s", "-", "+", "COUNT", "-3"}, `nil`},
	{[]string{"XRANGE", "nokey", "-", "+", "COUNT", "0"}, `[]`},
	{[]string{"XRANGE", "s", "-", "+", "COUNT"}, `-ERR syntax error`},
	{[]string{"XRANGE", "s", "(-", "+"}, `-ERR Invalid stream ID specified as stream command argument`},
	{[]string{"XRANGE", "s", "(18446744073709551615-18446744073709551615", "+"}, `-ERR invalid start ID for the interval`},
	{[]string{"XRANGE", "s", "-", "(0-0"}, `-ERR invalid end ID for the interval`},
	{[]string{"XREVRANGE", "s", "+", "-", "COUNT", "2"}, `[["10-1" ["e" "5"]] ["8-18446744073709551615" ["a" "b"]]]`},
	{[]string{"XREVRANGE", "s", "(8", "(1-2"}, `[["7-1" ["a" "b"]] ["5-0" ["c" "3" "d" "4"]]]`},
	{[]string{"XREVRANGE", "s", "-", "+"}, `[]`},
	{[]string{"XDEL", "s", "5-0", "abc"}, `-ERR Invalid stream ID specified as stream command argument`},
	{[]string{"XDEL", "nokey", "abc"}, `:0`},
	{[]string{"XDEL", "s", "5-0", "5-0", "99-9"}, `:1`},
	{[]string{"XINFO", "STREAM", "s"}, ``},
	{[]string{"XTRIM", "s", "MAXLEN", "2"}, `:1`},
	{[]string{"XTRIM", "s", "MINID", "=", "9"}, `:1`},
	{[]string{"XTRIM", "s", "MAXLEN", "1", "extra"}, `-ERR syntax error`},
	{[]string{"XTRIM", "nokey", "foo", "1"}, `-ERR syntax error`},
	{[]string{"XTRIM", "nokey", "MAXLEN", "0"}, `:0`},
	{[]string{"XTRIM", "s", "LIMIT", "10"}, `-ERR syntax error, LIMIT cannot be used without specifying a trimming strategy`},
	{[]string{"XADD", "s", "MAXLEN", "0", "11-1", "f", "v"}, `"11-1"`},
	{[]string{"XLEN", "s"}, `:0`},
	{[]string{"EXISTS", "s"}, `:1`},
	{[]string{"TYPE", "s"}, `+stream`},
	{[]string{"XINFO", "STREAM", "s"}, ``},
	{[]string{"XADD", "s", "11-1", "f", "v"}, `-ERR The ID specified in XADD is equal or smaller than the target stream top item`},
	{[]string{"XADD", "s", "12-1", "f", "v"}, `"12-1"`},
	{[]string{"XADD", "t", "1-1", "x", "y"}, `"1-1"`},
	{[]string{"XREAD", "STREAMS", "s", "t", "0", "0"}, `[["s" [["12-1" ["f" "v"]]]] ["t" [["1-1" ["x" "y"]]]]]`},
	{[]string{"XREAD", "COUNT", "1", "STREAMS", "s", "t", "$", "0-0"}, `[["t" [["1-1" ["x" "y"]]]]]`},
	{[]string{"XREAD", "STREAMS", "s", "$"}, `nil`},
	{[]string{"XREAD", "STREAMS", "s", "t", "0"}, `-ERR Unbalanced XREAD list of streams: for each stream key an ID or '$' must be specified.`},
	{[]string{"XREAD", "STREAMS", "s", "+"}, `-ERR Invalid stream ID specified as stream command argument`},
	{[]string{"XREAD", "COUNT", "x", "STREAMS", "s", "0"}, `-ERR value is not an integer or out of range`},
	{[]string{"XREAD", "BLOCK", "-1", "STREAMS", "s", "0"}, `-ERR timeout is negative`},
	{[]string{"XREAD", "BLOCK", "x", "STREAMS", "s", "0"}, `-ERR timeout is not an integer or out of range`},
	{[]string{"XREAD", "BLOCK", "0", "STREAMS", "s", "0"}, `[["s" [["12-1" ["f" "v"]]]]]`},
	{[]string{"XREAD", "FOO", "STREAMS", "s", "0"}, `-ERR syntax error`},
	{[]string{"XREAD", "COUNT", "1", "BLOCK", "1"}, `-ERR syntax error`},
	{[]string{"SET", "str", "x"}, `+OK`},
	{[]string{"XADD", "str", "1-1", "a", "b"}, `-WRONGTYPE Operation against a key holding the wrong kind of value`},
	{[]string{"XREAD", "STREAMS", "s", "str", "0", "0"}, `-WRONGTYPE Operation against a key holding the wrong kind of value`},
	{[]string{"XLEN", "str"}, `-WRONGTYPE Operation against a key holding the wrong kind of value`},
	{[]string{"XINFO", "STREAM", "nokey"}, `-ERR no such key`},
	{[]string{"XINFO", "STREAM", "s", "FULL", "COUNT", "1"}, ``},
	{[]string{"XINFO", "STREAM", "s", "full", "x"}, `-ERR unknown subcommand or wrong number of arguments for 'STREAM'. Try XINFO HELP.`},
	{[]string{"XINFO", "GROUPS", "s"}, `[]`},
	{[]string{"XINFO", "CONSUMERS", "s", "g"}, `-NOGROUP No such consumer group 'g' for key name 's'`},
	{[]string{"XINFO", "HELP"}, ``},
	{[]string{"XINFO", "foo"}, `-ERR unknown subcommand 'foo'. Try XINFO HELP.`},
	{[]string{"RENAME", "s", "s2"}, `+OK`},
	{[]string{"XINFO", "STREAM", "s2"}, ``},
	{[]string{"COPY", "s2", "s3"}, `:1`},
	{[]string{"XADD", "s3", "12-1", "f", "v"}, `-ERR The ID specified in XADD is equal or smaller than the target stream top item`},
	{[]string{"XINFO", "STREAM", "s3", "FULL"}, ``},
	{[]string{"OBJECT", "ENCODING", "s3"}, `"stream"`},
	{[]string{"XADD", "s3", "MAXLEN", "~", "0", "13-1", "f", "v"}, `"13-1"`},
	{[]string{"XLEN", "s3"}, `:0`},
	{[]string{"XSETID", "nokey", "1-1"}, `-ERR no such key`},
	{[]string{"XSETID", "s3", "1-1"}, `+OK`},
	{[]string{"XADD", "s4", "5-1", "a", "b"}, `"5-1"`},
	{[]string{"XSETID", "s4", "5-1", "ENTRIESADDED", "-1"}, `-ERR entries_added must be positive`},
	{[]string{"XSETID", "s4", "5-1", "entriesadded", "0"}, `-ERR The entries_added specified in XSETID is smaller than the target stream length`},
	{[]string{"XSETID", "s4", "5-1", "maxdeletedid", "6-1"}, `-ERR The ID specified in XSETID is smaller than the provided max_deleted_entry_id`},
	{[]string{"XSETID", "s4", "5-1", "maxdeletedid", "3-1", "entriesadded", "9"}, `+OK`},
	{[]string{"XSETID", "s4", "5-1", "foo"}, `-ERR syntax error`},
	{[]string{"XSETID", "s4", "-"}, `-ERR Invalid stream ID specified as stream command argument`},
	{[]string{"XINFO", "STREAM", "s4"}, ``},
	{[]string{"XDEL", "s4", "5-1"}, `:1`},
	{[]string{"XSETID", "s4", "2-1"}, `+OK`},
	{[]string{"XINFO", "STREAM", "s4", "FULL"}, ``},
	{[]string{"XADD", "s4", "3-1", "a", "b"}, `"3-1"`},
	{[]string{"XSETID", "str", "1-1"}, `-WRONGTYPE Operation against a key holding the wrong kind of value`},
}

// xinfoNoRadix drops the radix-tree-keys and radix-tree-nodes fields
// (Redis internals Concord leaves out) from a parsed Redis XINFO reply.
func xinfoNoRadix(r Reply) Reply {
	var out []Reply
	for i := 0; i+1 < len(r.Elems); i += 2 {
		if k := string(r.Elems[i].Str); k == "radix-tree-keys" || k == "radix-tree-nodes" {
			continue
		}
		out = append(out, r.Elems[i], r.Elems[i+1])
	}
	r.Elems = out
	return r
}

// streamRender renders a reply as the server would (zRender plus the
// XREAD map kind).
func streamRender(b *bytes.Buffer, r Reply, resp3 bool) {
	if r.Kind != KindPairMap {
		if r.Kind == KindArray || r.Kind == KindMap || r.Kind == KindSet {
			// Recurse through streamRender for nested pair maps.
			mark, n := byte('*'), len(r.Elems)
			switch {
			case r.Kind == KindMap && resp3:
				mark, n = '%', n/2
			case r.Kind == KindSet && resp3:
				mark = '~'
			}
			fmt.Fprintf(b, "%c%d\r\n", mark, n)
			for _, e := range r.Elems {
				streamRender(b, e, resp3)
			}
			return
		}
		zRender(b, r, resp3)
		return
	}
	if resp3 {
		fmt.Fprintf(b, "%%%d\r\n", len(r.Elems)/2)
		for _, e := range r.Elems {
			streamRender(b, e, resp3)
		}
		return
	}
	fmt.Fprintf(b, "*%d\r\n", len(r.Elems)/2)
	for i := 0; i+1 < len(r.Elems); i += 2 {
		b.WriteString("*2\r\n")
		streamRender(b, r.Elems[i], false)
		streamRender(b, r.Elems[i+1], false)
	}
}

var streamRecord = flag.Bool("stream.record", false, "TestStreamTableAgainstRedis: print Redis's replies in show form")

func TestStreamTableAgainstRedis(t *testing.T) {
	rc := zStartRedis(t)
	for _, resp3 := range []bool{false, true} {
		rc.do(t, "FLUSHALL")
		if resp3 {
			rc.do(t, "HELLO", "3")
		} else {
			rc.do(t, "HELLO", "2")
		}
		ks, clk := newTestKS(t)
		for _, c := range streamTable {
			raw := rc.do(t, c.args...)
			if c.args[0] == "XINFO" && (c.args[1] == "STREAM" || c.args[1] == "stream") && raw[0] != '-' {
				// Concord omits the radix-tree figures: compare the rest.
				parsed, _ := zParseRaw(raw)
				if resp3 {
					parsed.Kind = KindMap
				}
				var b bytes.Buffer
				zRender(&b, xinfoNoRadix(parsed), resp3)
				raw = b.Bytes()
			}
			got := do(t, ks, clk, c.args...)
			var b bytes.Buffer
			streamRender(&b, got, resp3)
			if *streamRecord && !resp3 {
				p, _ := zParseRaw(raw)
				fmt.Printf("%q %s\n", c.args, show(p))
			}
			if !bytes.Equal(b.Bytes(), raw) {
				t.Errorf("resp3=%v %q:\n got  %q\n want %q", resp3, c.args, b.Bytes(), raw)
			}
		}
	}
}

// TestStreamTable checks the recorded expectations without redis-server.
func TestStreamTable(t *testing.T) {
	ks, clk := newTestKS(t)
	for _, c := range streamTable {
		// Through the RESP2 bytes, so the shape of XREAD's reply counts.
		var b bytes.Buffer
		streamRender(&b, do(t, ks, clk, c.args...), false)
		got, _ := zParseRaw(b.Bytes())
		if c.want != "" && show(got) != c.want {
			t.Errorf("%q: got %s, want %s", c.args, show(got), c.want)
		}
	}
}

// TestStreamAutoIDSolo: alone, "*" IDs are exactly Redis's: the op's
// millisecond with sequence 0, then 1, 2 ... within one millisecond, and
// the last ID's millisecond when the clock is behind it.
func TestStreamAutoIDSolo(t *testing.T) {
	ks, _ := newTestKS(t)
	ms := int64(testEpochMs)
	add := func(tm HLC, id string) string {
		r, _ := ks.Apply(Stamp{Time: tm}, []Command{{Args: strArgs([]string{"XADD", "s", id, "f", "v"})}})
		return show(r[0])
	}
	t0 := HLCFromMillis(ms)
	want := []string{
		add(t0, "*"), add(t0, "*"), add(t0+5, "*"), add(HLCFromMillis(ms+1), "*"),
		add(HLCFromMillis(ms+1), strconv.FormatInt(ms+9, 10)+"-5"), add(HLCFromMillis(ms+2), "*"),
	}
	m := strconv.FormatInt(ms, 10)
	m1 := strconv.FormatInt(ms+1, 10)
	m9 := strconv.FormatInt(ms+9, 10)
	exp := []string{`"` + m + `-0"`, `"` + m + `-1"`, `"` + m + `-2"`, `"` + m1 + `-0"`, `"` + m9 + `-5"`, `"` + m9 + `-6"`}
	if strings.Join(want, " ") != strings.Join(exp, " ") {
		t.Fatalf("got %v, want %v", want, exp)
	}
}

// streamPair is two regions' keyspaces (not solo) with manual delivery.
type streamPair struct {
	t   *testing.T
	ks  [3]*Keyspace
	clk int64
}

func newStreamRegions(t *testing.T) *streamPair {
	p := &streamPair{t: t, clk: testEpochMs}
	for i := range p.ks {
		p.ks[i] = NewKeyspace(Origin{Region: uint32(i + 1), Incarnation: 1}, Options{})
	}
	return p
}

// run applies a command on region i at the shared millisecond ms (the
// HLC logical part keeps stamps apart) and returns the reply and batch.
func (p *streamPair) run(i int, ms int64, args ...string) (string, *Batch) {
	p.t.Helper()
	r, b := p.ks[i].Apply(Stamp{Time: HLCFromMillis(ms)}, []Command{{Args: strArgs(args)}})
	return show(r[0]), b
}

func (p *streamPair) read(i int, args ...string) string {
	return show(p.ks[i].Read(0, p.clk+1000, 0, strArgs(args)))
}

func (p *streamPair) deliver(to int, bs ...*Batch) {
	p.t.Helper()
	for _, b := range bs {
		if b == nil {
			continue
		}
		d, err := DecodeBatch(b.Encode(nil))
		if err != nil {
			p.t.Fatal(err)
		}
		if err := p.ks[to].Merge(d); err != nil {
			p.t.Fatal(err)
		}
	}
}

func TestStreamConcurrentAutoIDs(t *testing.T) {
	p := newStreamRegions(t)
	ms := p.clk
	r0, b0 := p.run(0, ms, "XADD", "s", "*", "f", "a")
	r1, b1 := p.run(1, ms, "XADD", "s", "*", "f", "b")
	r0b, b0b := p.run(0, ms, "XADD", "s", "*", "f", "c")
	m := strconv.FormatInt(ms, 10)
	// Region r's automatic sequence numbers are r + k*65536.
	if r0 != `"`+m+`-1"` || r1 != `"`+m+`-2"` || r0b != `"`+m+`-65537"` {
		t.Fatalf("auto IDs %s %s %s", r0, r1, r0b)
	}
	p.deliver(1, b0, b0b)
	p.deliver(0, b1)
	for i := 0; i < 2; i++ {
		if got := p.read(i, "XLEN", "s"); got != ":3" {
			t.Errorf("region %d XLEN %s", i, got)
		}
		if got := p.read(i, "XINFO", "STREAM", "s"); !strings.Contains(got, `"entries-added" :3`) ||
			!strings.Contains(got, `"last-generated-id" "`+m+`-65537"`) {
			t.Errorf("region %d XINFO %s", i, got)
		}
	}
	if p.ks[0].Digest() != p.ks[1].Digest() {
		t.Fatal("digests differ")
	}
	// The next automatic ID on region 2 is above everything merged.
	if r, _ := p.run(1, ms, "XADD", "s", "*", "f", "d"); r != `"`+m+`-65538"` {
		t.Fatalf("after merge: %s", r)
	}
}

func TestStreamConcurrentRules(t *testing.T) {
	p := newStreamRegions(t)
	ms := p.clk
	_, base := p.run(0, ms, "XADD", "s", "1-1", "f", "base")
	p.deliver(1, base)
	// Same explicit ID from both regions: one entry, the later tag's
	// fields, an LWW conflict counted where the second one lands.
	_, a := p.run(0, ms+1, "XADD", "s", "5-1", "f", "zero")
	_, b := p.run(1, ms+2, "XADD", "s", "5-1", "f", "one")
	p.deliver(1, a)
	p.deliver(0, b)
	for i := 0; i < 2; i++ {
		if got := p.read(i, "XRANGE", "s", "5-1", "5-1"); got != `[["5-1" ["f" "one"]]]` {
			t.Errorf("region %d: %s", i, got)
		}
		if got := p.read(i, "XINFO", "STREAM", "s"); !strings.Contains(got, `"entries-added" :3`) || !strings.Contains(got, `"length" :2`) {
			t.Errorf("region %d XINFO %s", i, got)
		}
	}
	if p.ks[0].Stats.LWWConflicts != 1 {
		t.Errorf("LWW conflicts on region 1: %d", p.ks[0].Stats.LWWConflicts)
	}
	// XTRIM concurrent with a remote add of a lower ID: the add was not
	// observed, so it survives and the stream is over MAXLEN until the
	// next trim.
	_, c := p.run(0, ms+3, "XADD", "s", "9-1", "f", "x")
	_, trim := p.run(0, ms+4, "XTRIM", "s", "MAXLEN", "1")
	_, low := p.run(1, ms+5, "XADD", "s", "MAXLEN", "5", "6-0", "f", "late")
	p.deliver(1, c, trim)
	p.deliver(0, low)
	for i := 0; i < 2; i++ {
		if got := p.read(i, "XRANGE", "s", "-", "+"); got != `[["6-0" ["f" "late"]] ["9-1" ["f" "x"]]]` {
			t.Errorf("region %d after trim: %s", i, got)
		}
	}
	// XDEL concurrent with nothing new: removes; a concurrent DEL and
	// XADD: the add survives, and entries-added keeps the adding
	// region's count (the DEL had not seen its latest add).
	_, del := p.run(0, ms+6, "DEL", "s")
	_, add := p.run(1, ms+7, "XADD", "s", "10-1", "f", "after")
	p.deliver(1, del)
	p.deliver(0, add)
	for i := 0; i < 2; i++ {
		if got := p.read(i, "XRANGE", "s", "-", "+"); got != `[["10-1" ["f" "after"]]]` {
			t.Errorf("region %d after DEL: %s", i, got)
		}
	}
	if p.ks[0].Digest() != p.ks[1].Digest() {
		t.Fatal("digests differ")
	}
	// max-deleted-entry-id and last-generated-id merge by maximum.
	_, x1 := p.run(0, ms+8, "XADD", "s", "20-1", "f", "v")
	p.deliver(1, x1)
	_, d0 := p.run(0, ms+9, "XDEL", "s", "10-1")
	_, d1 := p.run(1, ms+10, "XDEL", "s", "20-1")
	p.deliver(1, d0)
	p.deliver(0, d1)
	for i := 0; i < 2; i++ {
		got := p.read(i, "XINFO", "STREAM", "s")
		if !strings.Contains(got, `"max-deleted-entry-id" "20-1"`) || !strings.Contains(got, `"last-generated-id" "20-1"`) || !strings.Contains(got, `"length" :0`) {
			t.Errorf("region %d: %s", i, got)
		}
	}
	if p.ks[0].Digest() != p.ks[1].Digest() {
		t.Fatal("digests differ")
	}
}

func TestStreamSetIDAcrossRegions(t *testing.T) {
	p := newStreamRegions(t)
	ms := p.clk
	_, a := p.run(0, ms, "XADD", "s", "5-1", "f", "v")
	p.deliver(1, a)
	_, d := p.run(0, ms+1, "XDEL", "s", "5-1")
	p.deliver(1, d)
	// Region 1 lowers last-generated-id while region 2 adds concurrently:
	// the unseen add's record survives: the IDs combine by maximum and
	// entries-added is 7 (XSETID) plus region 2's one add.
	_, set := p.run(0, ms+2, "XSETID", "s", "2-0", "ENTRIESADDED", "7")
	_, add := p.run(1, ms+3, "XADD", "s", "6-1", "f", "w")
	if got := p.read(0, "XINFO", "STREAM", "s"); !strings.Contains(got, `"last-generated-id" "2-0"`) || !strings.Contains(got, `"entries-added" :7`) {
		t.Fatalf("after XSETID: %s", got)
	}
	p.deliver(1, set)
	p.deliver(0, add)
	for i := 0; i < 2; i++ {
		got := p.read(i, "XINFO", "STREAM", "s")
		if !strings.Contains(got, `"last-generated-id" "6-1"`) || !strings.Contains(got, `"entries-added" :8`) || !strings.Contains(got, `"length" :1`) {
			t.Errorf("region %d: %s", i, got)
		}
	}
	if p.ks[0].Digest() != p.ks[1].Digest() {
		t.Fatal("digests differ")
	}
}

// streamGens are the convergence workload for streams: explicit IDs from
// a small range (so regions collide), automatic IDs, trims of both kinds,
// XDEL, and the whole-key commands that interact with them.
var streamGens = []cmdGen{
	{"stream", []string{"XADD"}, func(d draws, k string, _ int64) []string {
		args := []string{"XADD", k}
		switch d.intn(5, "xtrim") {
		case 0:
			args = append(args, "MAXLEN", strconv.Itoa(d.intn(4, "maxlen")))
		case 1:
			args = append(args, "MINID", strconv.Itoa(d.intn(12, "minid")))
		}
		// Explicit IDs stay in a narrow band so regions collide; "*"
		// jumps to the clock, after which explicit IDs fail, so it is
		// rare.
		switch x := d.intn(20, "xid"); {
		case x == 0:
			args = append(args, "*")
		case x < 5:
			args = append(args, strconv.Itoa(d.intn(12, "ms"))+"-*")
		default:
			args = append(args, strconv.Itoa(d.intn(12, "ms"))+"-"+strconv.Itoa(d.intn(3, "seq")))
		}
		return append(args, "f", small(d, "xval"))
	}},
	{"stream", []string{"XDEL"}, func(d draws, k string, _ int64) []string {
		return []string{"XDEL", k, strconv.Itoa(d.intn(12, "ms")) + "-" + strconv.Itoa(d.intn(3, "seq"))}
	}},
	{"stream", []string{"XTRIM"}, func(d draws, k string, _ int64) []string {
		if chance(d, 50, "xtrimkind") {
			return []string{"XTRIM", k, "MAXLEN", strconv.Itoa(d.intn(4, "maxlen"))}
		}
		return []string{"XTRIM", k, "MINID", strconv.Itoa(d.intn(12, "minid"))}
	}},
	{"stream", []string{"XSETID"}, func(d draws, k string, _ int64) []string {
		args := []string{"XSETID", k, strconv.Itoa(d.intn(14, "ms")) + "-0"}
		if chance(d, 30, "xsadded") {
			args = append(args, "ENTRIESADDED", strconv.Itoa(d.intn(20, "added")))
		}
		return args
	}},
	{"stream", []string{"XLEN"}, func(d draws, k string, _ int64) []string { return []string{"XLEN", k} }},
	{"keys", []string{"DEL"}, func(d draws, k string, _ int64) []string { return []string{"DEL", k} }},
	{"keys", []string{"RENAME"}, func(d draws, k string, _ int64) []string {
		return []string{"RENAME", k, otherKey(d, k)}
	}},
	{"keys", []string{"SET"}, func(d draws, k string, _ int64) []string { return []string{"SET", k, "1"} }},
	{"keys", []string{"PEXPIRE"}, func(d draws, k string, _ int64) []string {
		return []string{"PEXPIRE", k, strconv.Itoa(1 + d.intn(400, "ms"))}
	}},
}

// TestConvergeStreams: 3-5 replicas, random delivery with duplicates,
// transfers and restarts (runSim); every replica ends with one digest,
// snapshots and joins agree. The reference model does not know streams,
// so values are checked by TestStreamModel instead.
func TestConvergeStreams(t *testing.T) {
	w := newWorkloadOf(streamGens)
	counts = simCounts{}
	rapid.Check(t, func(rt *rapid.T) {
		if err := runSim(rapidDraws{rt}, w, simOpts{noModel: true}); err != nil {
			rt.Fatal(err)
		}
	})
	t.Logf("exercised: %v", &counts)
}

// TestStreamModel checks the CRDT rule itself on random histories: three
// regions run random XADD/XDEL/XTRIM/DEL on one stream and exchange
// batches in random order; the final entries must be exactly the adds
// that no remove had observed, each ID showing its latest add's fields.
func TestStreamModel(t *testing.T) {
	for seed := int64(1); seed <= 200; seed++ {
		streamModelRun(t, seed)
	}
}

type xAddRec struct {
	id     streamID
	fields string
	tag    Tag
}

func streamModelRun(t *testing.T, seed int64) {
	r := rand.New(rand.NewSource(seed))
	const n = 3
	var ks [n]*Keyspace
	var inbox [n][]*Batch
	var adds []xAddRec
	var removes []struct {
		ids func(streamID) bool
		ctx Context
	}
	for i := range ks {
		ks[i] = NewKeyspace(Origin{Region: uint32(i + 1), Incarnation: 1}, Options{})
	}
	clock := int64(testEpochMs)
	for step := 0; step < 60; step++ {
		i := r.Intn(n)
		if r.Intn(3) == 0 && len(inbox[i]) > 0 { // deliver the oldest pending batch
			b := inbox[i][0]
			if err := ks[i].Merge(b); err != nil {
				t.Fatalf("seed %d: %v", seed, err)
			}
			inbox[i] = inbox[i][1:]
			continue
		}
		clock += int64(r.Intn(2))
		var args []string
		switch r.Intn(6) {
		case 0, 1, 2:
			args = []string{"XADD", "s", strconv.Itoa(1+r.Intn(8)) + "-" + strconv.Itoa(r.Intn(2)), "f", strconv.Itoa(step)}
			if r.Intn(3) == 0 {
				args[2] = "*"
			}
		case 3:
			args = []string{"XDEL", "s", strconv.Itoa(1+r.Intn(8)) + "-" + strconv.Itoa(r.Intn(2))}
		case 4:
			args = []string{"XTRIM", "s", "MAXLEN", strconv.Itoa(r.Intn(3))}
		default:
			args = []string{"DEL", "s"}
		}
		_, b := ks[i].Apply(Stamp{Time: HLCFromMillis(clock)}, []Command{{Args: strArgs(args)}})
		if b == nil {
			continue
		}
		for oi := range b.Ops {
			tag, ctx := b.Tag(oi), b.Context(oi)
			for _, f := range b.Ops[oi].Effects {
				id, _ := streamIDFrom(f.Field)
				switch f.Kind {
				case EffXAdd:
					fs, _ := decodeStreamFields(f.Value)
					adds = append(adds, xAddRec{id, strings.Join(fs, ","), tag})
				case EffXDel:
					removes = append(removes, struct {
						ids func(streamID) bool
						ctx Context
					}{func(x streamID) bool { return x == id }, ctx})
				case EffXTrim:
					removes = append(removes, struct {
						ids func(streamID) bool
						ctx Context
					}{func(x streamID) bool { return !id.less(x) }, ctx})
				case EffDelKey:
					removes = append(removes, struct {
						ids func(streamID) bool
						ctx Context
					}{func(streamID) bool { return true }, ctx})
				}
			}
		}
		for j := range ks {
			if j != i {
				inbox[j] = append(inbox[j], b)
			}
		}
	}
	for i := range ks {
		for _, b := range inbox[i] {
			if err := ks[i].Merge(b); err != nil {
				t.Fatalf("seed %d: %v", seed, err)
			}
		}
	}
	// The model: an add survives unless a remove covering its ID had
	// observed it; an ID shows its surviving add with the greatest tag.
	live := map[streamID]xAddRec{}
	for _, a := range adds {
		gone := false
		for _, rm := range removes {
			if rm.ids(a.id) && rm.ctx.covers(a.tag) {
				gone = true
				break
			}
		}
		if !gone {
			if cur, ok := live[a.id]; !ok || a.tag.After(cur.tag) {
				live[a.id] = a
			}
		}
	}
	var want []string
	for id, a := range live {
		want = append(want, fmt.Sprintf("%020d-%020d %s", id.ms, id.seq, a.fields))
	}
	sortStrings(want)
	for i := range ks {
		var got []string
		e, ok := ks[i].dbs[0].keys.Get("s")
		if ok {
			for nd := e.value(TypeStream).(*streamValue).list.first(); nd != nil; nd = nd.next() {
				w, _ := nd.vals.winner()
				got = append(got, fmt.Sprintf("%020d-%020d %s", nd.id.ms, nd.id.seq, strings.Join(w.Val, ",")))
			}
		}
		if strings.Join(got, "\n") != strings.Join(want, "\n") {
			t.Fatalf("seed %d region %d:\n got  %v\n want %v", seed, i, got, want)
		}
		if ks[i].Digest() != ks[0].Digest() {
			t.Fatalf("seed %d: digests differ", seed)
		}
	}
}

func sortStrings(s []string) {
	for i := 1; i < len(s); i++ {
		for j := i; j > 0 && s[j] < s[j-1]; j-- {
			s[j], s[j-1] = s[j-1], s[j]
		}
	}
}

// TestStreamSnapshotJoin: a stream survives Snapshot/Restore byte for
// byte, Join is idempotent and commutative on streams, and corrupt stream
// encodings are refused.
func TestStreamSnapshotJoin(t *testing.T) {
	p := newStreamRegions(t)
	ms := p.clk
	_, a := p.run(0, ms, "XADD", "s", "1-1", "f", "a", "g", "b")
	_, b := p.run(1, ms+1, "XADD", "s", "1-1", "f", "other")
	_, c := p.run(1, ms+2, "XADD", "s", "2-1", "f", "c")
	_, d := p.run(0, ms+3, "XDEL", "s", "1-1")
	_ = d
	p.deliver(2, a, b, c)
	snap := p.ks[0].Snapshot()
	r, err := Restore(snap)
	if err != nil {
		t.Fatal(err)
	}
	if r.Digest() != p.ks[0].Digest() || !bytes.Equal(r.Snapshot(), snap) {
		t.Fatal("restore changed the state")
	}
	j1, _ := Restore(p.ks[0].Snapshot())
	j1.Join(p.ks[1])
	j2, _ := Restore(p.ks[1].Snapshot())
	j2.Join(p.ks[0])
	if j1.Digest() != j2.Digest() {
		t.Fatal("join is not commutative")
	}
	// Op-based delivery of the same ops gives the joined state.
	p.deliver(0, b, c)
	p.deliver(1, a, d)
	if p.ks[0].Digest() != j1.Digest() || p.ks[1].Digest() != j1.Digest() {
		t.Fatal("join differs from delivery")
	}
	before := j1.Digest()
	j1.Join(p.ks[2])
	if j1.Digest() != before {
		t.Fatal("joining an older state changed the result")
	}
	if got := show(j1.Read(0, ms+100, 0, strArgs([]string{"XRANGE", "s", "-", "+"}))); got != `[["1-1" ["f" "other"]] ["2-1" ["f" "c"]]]` {
		// Region 1's XDEL had not seen region 2's add of the same ID.
		t.Fatalf("joined content %s", got)
	}
	// Truncations and byte flips of the snapshot never panic.
	for i := 0; i < len(snap); i++ {
		Restore(snap[:i])
		bad := append([]byte(nil), snap...)
		bad[i] ^= 0x41
		Restore(bad)
	}
}

// TestStreamEffectDecode: stream effects round-trip, and malformed ones
// (wrong ID length, odd field lists, trailing bytes) are refused.
func TestStreamEffectDecode(t *testing.T) {
	ks := NewKeyspace(Origin{Region: 1, Incarnation: 1}, Options{})
	_, b := ks.Apply(Stamp{Time: HLCFromMillis(testEpochMs)}, []Command{{Args: strArgs([]string{"XADD", "s", "MAXLEN", "0", "1-1", "f", "v"})}})
	if _, err := DecodeBatch(b.Encode(nil)); err != nil {
		t.Fatal(err)
	}
	bad := []Effect{
		{Kind: EffXAdd, Key: []byte("s"), Field: []byte("short"), Value: encodeStreamFields([]string{"f", "v"})},
		{Kind: EffXAdd, Key: []byte("s"), Field: streamID{1, 1}.bytes(), Value: encodeStreamFields([]string{"f"})},
		{Kind: EffXDel, Key: []byte("s"), Field: []byte{1}},
		{Kind: EffXMeta, Key: []byte("s"), Value: append(encodeStreamMeta(streamMeta{Added: 1}), 0)},
	}
	for _, f := range bad {
		bb := &Batch{Origin: Origin{Region: 2, Incarnation: 1}, FirstSeq: 1, Ops: []Op{{Time: 1, Effects: []Effect{f}}}}
		if _, err := DecodeBatch(bb.Encode(nil)); err == nil {
			t.Errorf("%v decoded", f.String())
		}
	}
}

// BenchmarkStreamXAdd appends to one stream through Apply (explicit
// increasing IDs, as a solo region would); per-op cost stays flat as the
// stream grows.
func BenchmarkStreamXAdd(b *testing.B) {
	ks, clk := newTestKS(b)
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		a := [][]byte{[]byte("XADD"), []byte("s"), []byte(strconv.Itoa(i+1) + "-1"), []byte("f"), []byte("v")}
		ks.Apply(clk.stamp(), []Command{{Args: a}})
	}
}

// BenchmarkStreamXRangeSeek reads one entry from the middle of a 100k
// entry stream: the seek is O(log n), not a scan.
func BenchmarkStreamXRangeSeek(b *testing.B) {
	ks, clk := newTestKS(b)
	const n = 100000
	for i := 0; i < n; i++ {
		ks.Apply(clk.stamp(), []Command{{Args: strArgs([]string{"XADD", "s", strconv.Itoa(i+1) + "-1", "f", "v"})}})
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		id := strconv.Itoa(1+(i*7919)%n) + "-1"
		if r := ks.Read(0, clk.ms, 0, strArgs([]string{"XRANGE", "s", id, "+", "COUNT", "1"})); len(r.Elems) != 1 {
			b.Fatal(show(r))
		}
	}
}

// streamSeedSnapshots are fuzz seeds: two regions' states after
// concurrent stream writes (a collided ID, a trim, an XSETID) are merged.
func streamSeedSnapshots() [][]byte {
	var ks [2]*Keyspace
	for i := range ks {
		ks[i] = NewKeyspace(Origin{Region: uint32(i + 1), Incarnation: 1}, Options{})
	}
	var bs [2][]*Batch
	run := func(i int, ms int64, args ...string) {
		if _, b := ks[i].Apply(Stamp{Time: HLCFromMillis(ms)}, []Command{{Args: strArgs(args)}}); b != nil {
			bs[i] = append(bs[i], b)
		}
	}
	run(0, testEpochMs, "XADD", "x", "5-1", "f", "a", "g", "b")
	run(1, testEpochMs, "XADD", "x", "5-1", "f", "c")
	run(1, testEpochMs+1, "XADD", "x", "*", "f", "d")
	run(0, testEpochMs+2, "XADD", "x", "MAXLEN", "1", "6-*", "f", "e")
	run(0, testEpochMs+3, "XSETID", "x", "9-9", "ENTRIESADDED", "12")
	run(1, testEpochMs+4, "XADD", "y", "1-1", "f", "v")
	run(1, testEpochMs+5, "XDEL", "y", "1-1")
	out := [][]byte{ks[0].Snapshot(), ks[1].Snapshot()}
	for i := range ks {
		for _, b := range bs[1-i] {
			ks[i].Merge(b)
		}
		out = append(out, ks[i].Snapshot())
	}
	return out
}
