package script

import "testing"

// BenchmarkEval measures one cached EVAL through Apply: a fresh Lua state,
// the environment, one GET and the reply conversion.
func BenchmarkEval(b *testing.B) {
	n := newNode(1)
	n.do("set", "k", "v")
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		n.do("eval", "return redis.call('get', KEYS[1])", "1", "k")
	}
}
