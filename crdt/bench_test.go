package crdt

import (
	"strconv"
	"testing"
)

// Benchmarks of the apply path: the single applier goroutine caps write
// throughput, so its cost per command is what these track.

func benchApply(b *testing.B, mk func(i int) [][]byte) {
	ks := NewKeyspace(testOrigin, Options{Solo: true})
	cmds := make([]Command, 1)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		cmds[0] = Command{Args: mk(i)}
		ks.Apply(Stamp{Time: HLCFromMillis(testEpochMs + int64(i)), Seed: uint64(i)}, cmds)
	}
}

func BenchmarkApplySet(b *testing.B) {
	val := make([]byte, 64)
	benchApply(b, func(i int) [][]byte {
		return [][]byte{[]byte("set"), []byte("key:" + strconv.Itoa(i%100000)), val}
	})
}

func BenchmarkApplyIncr(b *testing.B) {
	benchApply(b, func(i int) [][]byte {
		return [][]byte{[]byte("incr"), []byte("key:" + strconv.Itoa(i%100000))}
	})
}

func BenchmarkApplyZadd(b *testing.B) {
	benchApply(b, func(i int) [][]byte {
		return [][]byte{[]byte("zadd"), []byte("z"), strconv.AppendInt(nil, int64(i%1000), 10), []byte("m:" + strconv.Itoa(i%100000))}
	})
}

func BenchmarkReadGet(b *testing.B) {
	ks := NewKeyspace(testOrigin, Options{Solo: true})
	for i := 0; i < 100000; i++ {
		ks.Apply(Stamp{Time: HLCFromMillis(testEpochMs + int64(i))}, []Command{{Args: [][]byte{[]byte("set"), []byte("key:" + strconv.Itoa(i)), []byte("v")}}})
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		ks.Read(0, testEpochMs, 0, [][]byte{[]byte("get"), []byte("key:" + strconv.Itoa(i%100000))})
	}
}
