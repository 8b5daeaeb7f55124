package server

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"concord/crdt"
)

func cmd(db int, args ...string) crdt.Command {
	a := make([][]byte, len(args))
	for i, s := range args {
		a[i] = []byte(s)
	}
	return crdt.Command{DB: db, Args: a}
}

func TestLocalStoreStampsAndOrder(t *testing.T) {
	if !hasCommands("incr", "get") {
		t.Skip("needs INCR and GET")
	}
	// A clock that runs backwards: stamps still strictly increase.
	var mu sync.Mutex
	now := time.UnixMilli(1_800_000_000_000)
	clock := func() time.Time {
		mu.Lock()
		defer mu.Unlock()
		now = now.Add(-time.Millisecond)
		return now
	}
	ks := crdt.NewKeyspace(crdt.Origin{Region: 1, Incarnation: 1}, crdt.Options{Solo: true})
	s := NewLocalStore(ks, LocalOptions{Clock: clock, Seed: 42})
	defer s.Close()

	const workers, rounds = 8, 100
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			key := fmt.Sprint("n", w)
			for r := 0; r < rounds; r++ {
				// Three units in one submission, each its own unit.
				res := <-s.ProposeUnits([][]crdt.Command{{cmd(0, "INCR", key)}, {cmd(0, "INCR", key)}, {cmd(0, "INCR", key)}})
				for i, u := range res {
					if u.Err != nil || len(u.Replies) != 1 || u.Replies[0].Int != int64(3*r+i+1) {
						t.Errorf("%s round %d unit %d: %+v", key, r, i, u)
						return
					}
				}
			}
		}()
	}
	var last crdt.HLC
	stop := make(chan struct{})
	go func() {
		for {
			select {
			case <-stop:
				return
			default:
			}
			s.Read(func(ks *crdt.Keyspace) {
				if lt := ks.LastTime(); lt < last {
					t.Errorf("LastTime went back: %v < %v", lt, last)
				} else {
					last = lt
				}
			})
		}
	}()
	wg.Wait()
	close(stop)
	// Propose runs a unit through the write path (reads are allowed in it).
	r, err := s.Propose(context.Background(), []crdt.Command{cmd(0, "GET", "n3"), cmd(0, "INCR", "n3"), cmd(0, "GET", "n3")})
	if err != nil || len(r) != 3 || string(r[0].Str) != "300" || r[1].Int != 301 || string(r[2].Str) != "301" {
		t.Fatalf("Propose = %+v, %v", r, err)
	}
	s.Read(func(ks *crdt.Keyspace) {
		for w := 0; w < workers; w++ {
			got := ks.Read(0, 0, 0, cmd(0, "GET", fmt.Sprint("n", w)).Args)
			want := fmt.Sprint(3 * rounds)
			if w == 3 {
				want = fmt.Sprint(3*rounds + 1)
			}
			if string(got.Str) != want {
				t.Errorf("n%d = %q", w, got.Str)
			}
		}
	})
}

func TestLocalStoreClose(t *testing.T) {
	ks := crdt.NewKeyspace(crdt.Origin{Region: 1, Incarnation: 1}, crdt.Options{Solo: true})
	s := NewLocalStore(ks, LocalOptions{})
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal("second Close:", err)
	}
	if _, err := s.Propose(context.Background(), []crdt.Command{cmd(0, "SET", "k", "v")}); !errors.Is(err, ErrClosed) {
		t.Errorf("Propose after Close: %v", err)
	}
	res := <-s.ProposeUnits([][]crdt.Command{{cmd(0, "SET", "k", "v")}, {cmd(0, "SET", "k", "w")}})
	if len(res) != 2 || !errors.Is(res[0].Err, ErrClosed) || !errors.Is(res[1].Err, ErrClosed) {
		t.Errorf("ProposeUnits after Close: %+v", res)
	}
	read := false
	s.Read(func(*crdt.Keyspace) { read = true })
	if !read {
		t.Error("Read after Close did not run")
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	s2 := NewLocalStore(crdt.NewKeyspace(crdt.Origin{Region: 1, Incarnation: 1}, crdt.Options{Solo: true}), LocalOptions{})
	defer s2.Close()
	if _, err := s2.Propose(ctx, []crdt.Command{cmd(0, "PING")}); err != nil && !errors.Is(err, context.Canceled) {
		t.Errorf("Propose with a canceled context: %v", err)
	}
}
