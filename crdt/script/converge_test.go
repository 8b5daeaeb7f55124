package script

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"testing"

	"concord/crdt"
)

// scriptTemplates are scripts whose effects exercise every value type and
// the observed-remove rules within one batch (a later call removing what an
// earlier one wrote).
var scriptTemplates = []string{
	`redis.call('incrby', KEYS[1], ARGV[1]) return redis.call('get', KEYS[1])`,
	`redis.call('sadd', KEYS[1], ARGV[1], ARGV[2]) redis.call('srem', KEYS[1], ARGV[2]) return redis.call('scard', KEYS[1])`,
	`redis.call('hset', KEYS[1], ARGV[1], ARGV[2]) redis.call('hincrby', KEYS[1], 'n', 1) return 1`,
	`if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else redis.call('set', KEYS[1], ARGV[1]) return 0 end`,
	`redis.call('zadd', KEYS[1], ARGV[1], ARGV[2]) redis.call('zincrby', KEYS[1], 1, ARGV[2]) local r = redis.call('zrangebyscore', KEYS[1], '-inf', 5) for _, m in ipairs(r) do redis.call('zrem', KEYS[1], m) end return #r`,
	`redis.call('set', KEYS[1], ARGV[1]) redis.pcall('incr', KEYS[1]) redis.call('del', KEYS[1]) redis.call('append', KEYS[1], ARGV[2]) return 1`,
	`for i = 1, 5 do redis.call('sadd', KEYS[1], 'm' .. math.random(10)) end return redis.call('spop', KEYS[1])`,
	`redis.call('expire', KEYS[1], 100) return redis.call('del', KEYS[1], 'other')`,
}

// TestScriptsConverge: replicas of three origins run random scripts and
// exchange the resulting batches in random order, with duplicates; every
// replica ends in the same state.
func TestScriptsConverge(t *testing.T) {
	for run := 0; run < 20; run++ {
		seed := uint64(run)*0x9e3779b97f4a7c15 + 1
		t.Run(fmt.Sprint("seed", seed), func(t *testing.T) { convergeRun(t, seed) })
	}
}

func convergeRun(t *testing.T, seed uint64) {
	rng := rand.New(rand.NewPCG(seed, seed^0xabcdef))
	nodes := []*node{newNode(1), newNode(2), newNode(3)}
	var log [3][][]byte // each origin's batches, in order
	next := [3][3]int{} // next[i][j]: index of j's next batch for i
	keys := []string{"a", "b", "c"}
	deliver := func(i int) {
		j := rng.IntN(3)
		if j == i || next[i][j] >= len(log[j]) {
			return
		}
		k := next[i][j]
		if rng.IntN(5) == 0 && k > 0 {
			k = rng.IntN(k) // a duplicate
		}
		b, err := crdt.DecodeBatch(log[j][k])
		if err != nil {
			t.Fatal(err)
		}
		switch err := nodes[i].ks.Merge(b); {
		case err == nil:
			if k == next[i][j] {
				next[i][j]++
			}
		case errors.Is(err, crdt.ErrNotReady):
		default:
			t.Fatalf("merge: %v", err)
		}
	}
	for step := 0; step < 300; step++ {
		i := rng.IntN(3)
		if rng.IntN(2) == 0 {
			deliver(i)
			continue
		}
		s := scriptTemplates[rng.IntN(len(scriptTemplates))]
		_, b := nodes[i].do("eval", s, "1", keys[rng.IntN(len(keys))], fmt.Sprint(rng.IntN(9)+1), fmt.Sprint("v", rng.IntN(3)))
		if b != nil {
			log[i] = append(log[i], b.Encode(nil))
		}
	}
	for pending := true; pending; {
		pending = false
		for i := range nodes {
			for j := range nodes {
				if i != j && next[i][j] < len(log[j]) {
					pending = true
					deliver(i)
				}
			}
		}
	}
	for i := 1; i < 3; i++ {
		if nodes[i].ks.Digest() != nodes[0].ks.Digest() {
			t.Fatalf("seed %d: replica %d differs from replica 0", seed, i)
		}
	}
}
