package region

import (
	"context"
	"fmt"
	"testing"
	"time"

	"concord/crdt"
)

// localGet reads key from n's applied state, without any fence.
func localGet(n *Node, key string) (string, bool) {
	var r crdt.Reply
	n.Read(func(ks *crdt.Keyspace) {
		r = ks.Read(0, time.Now().UnixMilli(), 1, [][]byte{[]byte("GET"), []byte(key)})
	})
	return string(r.Str), r.Kind != crdt.KindNil
}

// TestRestartAfterTailTruncation: a deposed leader whose uncommitted tail
// is overwritten by the new leader must still be able to restart. (The
// linearizability workload found that raft-wal v0.4.0 marked the truncated
// segment sealed without writing its index, so the node panicked on its
// next start: hashicorp/raft-wal#31, fixed in v0.4.1.)
func TestRestartAfterTailTruncation(t *testing.T) {
	r := newTestRegion(t, 3)
	l := r.leader()
	old := r.nodes[l]
	if _, err := do(old, "SET", "a", "1"); err != nil {
		t.Fatal(err)
	}
	for j, p := range r.peers {
		if j != l {
			r.net.cut(r.peers[l].Addr, p.Addr)
		}
	}
	// Appended to the isolated leader's log, never committed.
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	old.Propose(ctx, []crdt.Command{cmd("SET", "a", "lost")})
	cancel()
	nl := -1
	deadline := time.Now().Add(15 * time.Second)
	for nl < 0 {
		for i, n := range r.nodes {
			if i != l && n.Leader() && n.Ready() {
				nl = i
			}
		}
		if time.Now().After(deadline) {
			t.Fatal("the majority elected no leader")
		}
		time.Sleep(10 * time.Millisecond)
	}
	for i := 0; i < 20; i++ {
		if _, err := do(r.nodes[nl], "SET", "a", fmt.Sprint(i)); err != nil {
			t.Fatal(err)
		}
	}
	r.net.heal()
	want := r.nodes[nl].Status().CommitIndex
	for old.Status().AppliedIndex < want {
		if time.Now().After(deadline) {
			t.Fatalf("the old leader never caught up (applied %d, want %d)", old.Status().AppliedIndex, want)
		}
		time.Sleep(10 * time.Millisecond)
	}
	r.kill(l)
	n := r.start(l)
	deadline = time.Now().Add(15 * time.Second)
	for {
		if v, ok := localGet(n, "a"); ok && v == "19" {
			break
		}
		if time.Now().After(deadline) {
			v, _ := localGet(n, "a")
			t.Fatalf("restarted node holds a=%q, want 19", v)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
