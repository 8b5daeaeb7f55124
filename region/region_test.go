package region

import (
	"context"
	"fmt"
	"testing"
	"time"

	"concord/crdt"
)

func TestWritesOnAnyNodeReadEverywhere(t *testing.T) {
	r := newTestRegion(t, 3)
	r.leader()
	for i, n := range r.nodes {
		key := fmt.Sprintf("k%d", i)
		rep, err := do(n, "SET", key, fmt.Sprint(i))
		if err != nil || string(rep.Str) != "OK" {
			t.Fatalf("SET via n%d: %v %v", i+1, rep, err)
		}
		rep, err = do(n, "INCR", "counter")
		if err != nil || rep.Int != int64(i+1) {
			t.Fatalf("INCR via n%d: %+v %v", i+1, rep, err)
		}
	}
	for _, n := range r.nodes {
		for i := range r.nodes {
			v, ok, err := get(n, fmt.Sprintf("k%d", i))
			if err != nil || !ok || v != fmt.Sprint(i) {
				t.Fatalf("read k%d via %s: %q %v %v", i, n.id, v, ok, err)
			}
		}
	}
	// every node ends with the same state
	deadline := time.Now().Add(5 * time.Second)
	for {
		d0, d1, d2 := digest(r.nodes[0]), digest(r.nodes[1]), digest(r.nodes[2])
		if d0 == d1 && d1 == d2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("digests differ")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestLeaderKillLosesNoAcknowledgedWrite(t *testing.T) {
	r := newTestRegion(t, 3)
	l := r.leader()
	// writers on every node keep incrementing; count acknowledged INCRs
	type res struct{ acked, failed int }
	stop := make(chan struct{})
	out := make(chan res, 3)
	for i := range r.nodes {
		n := r.nodes[i]
		if i == l {
			n = r.nodes[(l+1)%3] // the leader dies: its clients' writes are not interesting
		}
		go func(n *Node) {
			var x res
			for {
				select {
				case <-stop:
					out <- x
					return
				default:
				}
				rep, err := do(n, "INCR", "c")
				if err == nil && rep.Kind != 3 {
					x.acked++
				} else {
					x.failed++
				}
			}
		}(n)
	}
	time.Sleep(300 * time.Millisecond)
	r.kill(l)
	time.Sleep(1500 * time.Millisecond)
	close(stop)
	total, failed := 0, 0
	for range r.nodes {
		x := <-out
		total += x.acked
		failed += x.failed
	}
	nl := r.leader()
	v, _, err := get(r.nodes[nl], "c")
	if err != nil {
		t.Fatal(err)
	}
	var got int
	fmt.Sscan(v, &got)
	t.Logf("acked %d, failed %d, counter %d", total, failed, got)
	if got < total || got > total+failed {
		t.Fatalf("counter %d, acknowledged %d (+%d failed/in doubt)", got, total, failed)
	}
	// writes resume
	if _, err := do(r.nodes[nl], "INCR", "c"); err != nil {
		t.Fatal(err)
	}
}

func TestRestartAllKeepsState(t *testing.T) {
	r := newTestRegion(t, 3)
	r.leader()
	for i := 0; i < 200; i++ {
		if _, err := do(r.nodes[i%3], "SET", fmt.Sprint("k", i), fmt.Sprint(i)); err != nil {
			t.Fatal(err)
		}
	}
	want := digest(r.nodes[r.leader()])
	for i := range r.nodes {
		r.kill(i)
	}
	for i := range r.nodes {
		r.start(i)
	}
	l := r.leader()
	if _, _, err := get(r.nodes[l], "k1"); err != nil {
		t.Fatal(err)
	}
	for i, n := range r.nodes {
		deadline := time.Now().Add(5 * time.Second)
		for digest(n) != want {
			if time.Now().After(deadline) {
				t.Fatalf("node %d state differs after restart", i)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
}

func TestAdminTransferAndRemoveFromFollower(t *testing.T) {
	r := newTestRegion(t, 3)
	l := r.leader()
	f := (l + 1) % 3
	ctx := context.Background()
	if rep := r.nodes[f].Admin(ctx, [][]byte{[]byte("TRANSFER")}); rep.Kind != crdt.KindStatus {
		t.Fatalf("TRANSFER via follower: %s", rep.Str)
	}
	deadline := time.Now().Add(5 * time.Second)
	for r.nodes[l].Leader() {
		if time.Now().After(deadline) {
			t.Fatal("leadership did not move")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if rep := r.nodes[f].Admin(ctx, [][]byte{[]byte("REMOVE"), []byte("nope")}); rep.Kind != crdt.KindError {
		t.Fatalf("REMOVE of a non-member: %+v", rep)
	}
}
