package main

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"
)

// TestMultiRegionScriptBatch: a script's writes cross regions as one batch,
// applied atomically. Region 0 runs a script that moves one unit from x to
// y and appends to a log key; region 1 reads all three keys in one
// read-only script (atomic against applies) and must never see the writes
// of a script half applied.
func TestMultiRegionScriptBatch(t *testing.T) {
	d := newDeployment(t, mrOptions{regions: 2, nodes: 1})
	const move = `redis.call('decr', KEYS[1]) redis.call('incr', KEYS[2]) redis.call('sadd', KEYS[3], redis.call('get', KEYS[2])) return redis.call('get', KEYS[2])`
	if !strings.Contains(fmt.Sprint(d.mustDo(0, "SET", "x", "1000")), "OK") {
		t.Fatal("SET x")
	}
	d.waitValue(1, "x", "1000", 30*time.Second)
	readSHA, _ := d.mustDo(1, "SCRIPT", "LOAD", `return {redis.call('get','x'), redis.call('get','y'), redis.call('scard','log')}`).(string)
	ctx := context.Background()
	stop := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		for i := 0; ; i++ {
			select {
			case <-stop:
				done <- nil
				return
			default:
			}
			v, err := d.client(1).EvalShaRO(ctx, readSHA, nil).Slice()
			if err != nil {
				done <- err
				return
			}
			var x, y int
			var n int64
			if len(v) == 3 {
				if s, ok := v[0].(string); ok {
					fmt.Sscan(s, &x)
				}
				if s, ok := v[1].(string); ok {
					fmt.Sscan(s, &y)
				}
				n, _ = v[2].(int64)
			}
			if x+y != 1000 || int64(y) != n {
				done <- fmt.Errorf("region 1 saw a half-applied script: x=%d y=%d scard(log)=%d", x, y, n)
				return
			}
		}
	}()
	for i := 1; i <= 200; i++ {
		if _, err := d.client(0).Eval(ctx, move, []string{"x", "y", "log"}).Result(); err != nil {
			t.Fatal(err)
		}
	}
	d.waitValue(1, "y", "200", 30*time.Second)
	close(stop)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	// Scripts themselves do not cross: region 1 never saw SCRIPT LOAD of
	// region 0's script, nor region 0 region 1's.
	if v, err := d.client(0).ScriptExists(ctx, readSHA).Result(); err != nil || v[0] {
		t.Fatalf("region 0 has region 1's script: %v %v", v, err)
	}
	d.waitConverged(30 * time.Second)
}
