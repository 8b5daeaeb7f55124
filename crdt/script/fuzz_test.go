package script

import (
	"testing"

	"concord/crdt"
)

// FuzzDecoders feeds arbitrary bytes to the decoders scripts call on
// untrusted data (cjson.decode, cmsgpack.unpack, struct.unpack) and to the
// compiler: whatever the input, the reply is a reply, never a crash.
func FuzzDecoders(f *testing.F) {
	for _, s := range []string{`[1,2,{"a":null}]`, "\x93\x01\x02\xa1x", "\xdc\xff\xff", `{"a":`, "\xcb", "b c0", "i4", "return 1 +", "#!lua flags=no-writes\nreturn 1"} {
		f.Add(s)
	}
	n := newNode(1)
	old := budgetInstructions
	budgetInstructions = 1_000_000 // fuzzed scripts may loop; keep each run short
	defer func() { budgetInstructions = old }()
	f.Fuzz(func(t *testing.T, in string) {
		for _, script := range []string{
			`return cjson.encode(cjson.decode(ARGV[1]))`,
			`return cmsgpack.pack(cmsgpack.unpack(ARGV[1]))`,
			`return {struct.unpack(ARGV[1], ARGV[1])}`,
			`return struct.pack(ARGV[1], 1, 2, 'abc')`,
			`return loadstring(ARGV[1])`,
		} {
			if r, _ := n.do("eval_ro", script, "0", in); r.Kind == crdt.KindError && len(r.Str) == 0 {
				t.Fatal("empty error")
			}
		}
		_ = n.read("evalsha_ro", SHA1Hex([]byte(in)), "0")
		if r, _ := n.do("eval", in, "0"); r.Kind == crdt.KindError && len(r.Str) == 0 {
			t.Fatal("empty error")
		}
		n.do("script", "flush") // keep the cache from growing with every input
	})
}
