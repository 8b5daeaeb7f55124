package region

import (
	"context"
	"strings"
	"testing"
	"time"

	"concord/crdt"
	_ "concord/crdt/script" // EVAL & co. in the command table
)

func evalshaRO(n *Node, sha string) crdt.Reply {
	var r crdt.Reply
	n.Read(func(ks *crdt.Keyspace) {
		r = ks.Read(0, time.Now().UnixMilli(), 1, [][]byte{[]byte("evalsha_ro"), []byte(sha), []byte("0")})
	})
	return r
}

// TestScriptCacheSurvivesFailoverAndSnapshot: SCRIPT LOAD is replicated
// state of the region, so EVALSHA works on a new leader after the old one
// dies, and on a node that restarts from a snapshot.
func TestScriptCacheSurvivesFailoverAndSnapshot(t *testing.T) {
	r := newTestRegion(t, 3)
	l := r.leader()
	rep, err := do(r.nodes[l], "SCRIPT", "LOAD", "return redis.call('incr', KEYS[1])")
	if err != nil || rep.Kind != crdt.KindBulk {
		t.Fatalf("SCRIPT LOAD: %+v %v", rep, err)
	}
	sha := string(rep.Str)
	if rep, err := do(r.nodes[l], "EVALSHA", sha, "1", "c"); err != nil || rep.Int != 1 {
		t.Fatalf("EVALSHA on the first leader: %+v %v", rep, err)
	}
	r.kill(l)
	nl := r.leader()
	if rep, err := do(r.nodes[nl], "EVALSHA", sha, "1", "c"); err != nil || rep.Int != 2 {
		t.Fatalf("EVALSHA after failover: %+v %v", rep, err)
	}
	// Every surviving node holds the script.
	for i, n := range r.nodes {
		if n == nil {
			continue
		}
		deadline := time.Now().Add(5 * time.Second)
		for {
			got := evalshaRO(n, sha)
			if !strings.HasPrefix(string(got.Str), "NOSCRIPT") {
				break // found (it fails: no key given)
			}
			if time.Now().After(deadline) {
				t.Fatalf("node %d: EVALSHA_RO = %+v", i, got)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	// Snapshot a survivor, restart it: it restores the cache from the
	// snapshot.
	f := (nl + 1) % 3
	if r.nodes[f] == nil {
		f = (nl + 2) % 3
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if rep := r.nodes[f].Admin(ctx, [][]byte{[]byte("SNAPSHOT")}); rep.IsError() {
		t.Fatalf("snapshot: %s", rep.Str)
	}
	r.kill(f)
	r.start(f)
	r.start(l) // the old leader comes back too and catches up
	nl = r.leader()
	if rep, err := do(r.nodes[f], "EVALSHA", sha, "1", "c"); err != nil || rep.Int != 3 {
		t.Fatalf("EVALSHA through the restarted node: %+v %v", rep, err)
	}
	for i, n := range r.nodes {
		deadline := time.Now().Add(10 * time.Second)
		for {
			if n.Ready() {
				if got := evalshaRO(n, sha); !strings.HasPrefix(string(got.Str), "NOSCRIPT") {
					break
				}
			}
			if time.Now().After(deadline) {
				t.Fatalf("node %d after restart lacks the script", i)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	// SCRIPT FLUSH goes through the log too.
	if _, err := do(r.nodes[nl], "SCRIPT", "FLUSH"); err != nil {
		t.Fatal(err)
	}
	for i, n := range r.nodes {
		deadline := time.Now().Add(5 * time.Second)
		for !strings.HasPrefix(string(evalshaRO(n, sha).Str), "NOSCRIPT") {
			if time.Now().After(deadline) {
				t.Fatalf("node %d kept the script after SCRIPT FLUSH", i)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
}
