package simnet

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
)

func newNet(seed uint64) *Net { return New(rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))) }

// recorder attaches endpoints that log every delivery.
type recorder struct {
	log []string
	got map[string][]Delivery
}

func (r *recorder) attach(n *Net, names ...string) {
	if r.got == nil {
		r.got = map[string][]Delivery{}
	}
	for _, name := range names {
		name := name
		n.Attach(name, func(d Delivery) {
			r.got[name] = append(r.got[name], d)
			conn := uint64(0)
			if d.Conn != nil {
				conn = d.Conn.ID()
			}
			r.log = append(r.log, fmt.Sprintf("%d %s %s<-%s c%d %v", d.At, d.Kind, d.To, d.From, conn, d.Msg))
		})
	}
}

func TestReliableConnIsOrdered(t *testing.T) {
	n := newNet(1)
	var r recorder
	r.attach(n, "a", "b")
	n.SetDefault(Link{Delay: 10, Jitter: 50, Drop: 0.5, Dup: 0.5, Reorder: 0.5})
	c, err := n.Dial("a", "b", Reliable)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 200; i++ {
		if err := c.Send("a", i); err != nil {
			t.Fatal(err)
		}
		n.RunFor(1)
	}
	n.RunFor(1000)
	got := r.got["b"]
	if len(got) != 200 {
		t.Fatalf("got %d messages, want 200 (reliable: no loss, no duplicates)", len(got))
	}
	for i, d := range got {
		if d.Msg.(int) != i {
			t.Fatalf("message %d is %v: reliable connections deliver in order", i, d.Msg)
		}
	}
}

func TestHostileConnMisbehaves(t *testing.T) {
	n := newNet(2)
	var r recorder
	r.attach(n, "a", "b")
	n.SetDefault(Link{Delay: 10, Jitter: 5, Drop: 0.1, Dup: 0.1, Reorder: 0.2})
	c, _ := n.Dial("a", "b", Hostile)
	for i := 0; i < 1000; i++ {
		c.Send("a", i)
	}
	n.RunFor(10_000)
	got := r.got["b"]
	seen := map[int]int{}
	inversions := 0
	for i, d := range got {
		seen[d.Msg.(int)]++
		if i > 0 && d.Msg.(int) < got[i-1].Msg.(int) {
			inversions++
		}
	}
	dups := 0
	for _, k := range seen {
		if k > 1 {
			dups++
		}
	}
	if len(seen) >= 1000 || dups == 0 || inversions == 0 {
		t.Fatalf("hostile conn: %d distinct of 1000, %d duplicated, %d inversions; want loss, dups and reordering", len(seen), dups, inversions)
	}
	if n.Stats.Dropped == 0 || n.Stats.Duplicated == 0 || n.Stats.Reordered == 0 {
		t.Fatalf("stats %+v", n.Stats)
	}
}

func TestPartitionEndsConnsAndTellsBothEnds(t *testing.T) {
	n := newNet(3)
	var r recorder
	r.attach(n, "a", "b", "c")
	n.SetDefault(Link{Delay: 5})
	n.SetDetect(100)
	ab, _ := n.Dial("a", "b", Reliable)
	ac, _ := n.Dial("a", "c", Reliable)
	ab.Send("a", "in flight")
	n.Partition("b", "a")
	if ab.Open() || !ac.Open() {
		t.Fatalf("after Partition(a,b): ab open %v, ac open %v", ab.Open(), ac.Open())
	}
	if err := ab.Send("a", "late"); !errors.Is(err, ErrClosed) {
		t.Fatalf("send on cut conn: %v", err)
	}
	n.RunFor(99)
	if len(r.got["b"]) != 0 || len(r.got["a"]) != 0 {
		t.Fatalf("delivered before detection: %v", r.log)
	}
	n.RunFor(1)
	for _, end := range []string{"a", "b"} {
		g := r.got[end]
		if len(g) != 1 || g[0].Kind != Closed || g[0].Conn != ab {
			t.Fatalf("%s got %v, want one Closed for %v", end, g, ab)
		}
	}
	if _, err := n.Dial("a", "b", Reliable); !errors.Is(err, ErrUnreachable) {
		t.Fatalf("dial across a partition: %v", err)
	}
	if !n.Send("a", "c", "dgram") || n.Send("a", "b", "dgram") {
		t.Fatal("datagrams: a->c must be sent, a->b not")
	}
	n.Heal("a", "b")
	if _, err := n.Dial("a", "b", Reliable); err != nil {
		t.Fatalf("dial after heal: %v", err)
	}
}

func TestCloseTellsOnlyTheOtherEnd(t *testing.T) {
	n := newNet(4)
	var r recorder
	r.attach(n, "a", "b")
	n.SetDefault(Link{Delay: 7})
	c, _ := n.Dial("a", "b", Reliable)
	c.Send("b", "x") // in flight to a: lost with the close
	c.Close("a")
	c.Close("a")
	n.RunFor(100)
	if len(r.got["a"]) != 0 {
		t.Fatalf("closer got %v", r.got["a"])
	}
	if g := r.got["b"]; len(g) != 1 || g[0].Kind != Closed || g[0].At != 7 {
		t.Fatalf("other end got %v", g)
	}
}

func TestIsolateCoversLaterEndpointsAndRejoin(t *testing.T) {
	n := newNet(5)
	var r recorder
	r.attach(n, "a", "b")
	n.Isolate("a")
	r.attach(n, "late")
	if n.Reachable("a", "late") || !n.Reachable("b", "late") {
		t.Fatal("isolation must cover every endpoint, and only a")
	}
	n.Partition("a", "b")
	n.Rejoin("a")
	if !n.Reachable("a", "late") || n.Reachable("a", "b") {
		t.Fatal("Rejoin undoes the isolation but not a partition")
	}
	n.HealAll()
	if !n.Reachable("a", "b") {
		t.Fatal("HealAll")
	}
}

func TestBreakAndTimers(t *testing.T) {
	n := newNet(6)
	var r recorder
	r.attach(n, "a", "b")
	n.SetLinks("a", "b", Link{Delay: 3, Break: 1})
	c, _ := n.Dial("a", "b", Reliable)
	c.Send("a", "boom")
	n.After(10, "a", "tick")
	n.At(5, "b", "tock")
	n.RunFor(20)
	want := []string{
		"3 closed a<-b c1 <nil>",
		"3 closed b<-a c1 <nil>",
		"5 timer b<- c0 tock",
		"10 timer a<- c0 tick",
	}
	if strings.Join(r.log, "\n") != strings.Join(want, "\n") {
		t.Fatalf("got\n%s\nwant\n%s", strings.Join(r.log, "\n"), strings.Join(want, "\n"))
	}
}

// TestDeterministic runs the same randomized workload twice per seed and
// requires identical delivery logs.
func TestDeterministic(t *testing.T) {
	run := func(seed uint64) string {
		n := newNet(seed)
		var r recorder
		names := []string{"a", "b", "c"}
		r.attach(n, names...)
		n.SetDefault(Link{Delay: 10, Jitter: 20, Drop: 0.05, Dup: 0.05, Reorder: 0.1, Break: 0.01})
		rng := n.Rand()
		var conns []*Conn
		for i := 0; i < 500; i++ {
			a, b := names[rng.IntN(3)], names[rng.IntN(3)]
			switch rng.IntN(10) {
			case 0:
				if c, err := n.Dial(a, b, Mode(rng.IntN(2))); err == nil {
					conns = append(conns, c)
				}
			case 1:
				n.Partition(a, b)
			case 2:
				n.Heal(a, b)
			case 3, 4, 5:
				if len(conns) > 0 {
					c := conns[rng.IntN(len(conns))]
					c.Send(c.Dialer(), i)
				}
			default:
				n.Send(a, b, i)
			}
			n.RunFor(rng.Int64N(5))
		}
		n.RunFor(10_000)
		return strings.Join(r.log, "\n")
	}
	for seed := uint64(1); seed <= 5; seed++ {
		if a, b := run(seed), run(seed); a != b {
			t.Fatalf("seed %d: two runs differ", seed)
		}
	}
	if run(1) == run(2) {
		t.Fatal("different seeds gave the same run")
	}
}

// Jitter never reorders a connection, in either mode; in Hostile mode only
// the Reorder and Dup draws do, and a duplicate arrives after its original.
func TestHostileOrderComesOnlyFromFaults(t *testing.T) {
	n := newNet(7)
	var r recorder
	r.attach(n, "a", "b")
	n.SetDefault(Link{Delay: 10, Jitter: 100})
	c, _ := n.Dial("a", "b", Hostile)
	for i := 0; i < 300; i++ {
		c.Send("a", i)
	}
	n.RunFor(10_000)
	for i, d := range r.got["b"] {
		if d.Msg.(int) != i {
			t.Fatalf("message %d is %v: jitter alone reordered a hostile conn", i, d.Msg)
		}
	}
	n2 := newNet(8)
	var r2 recorder
	r2.attach(n2, "a", "b")
	n2.SetDefault(Link{Delay: 10, Dup: 0.3})
	c2, _ := n2.Dial("a", "b", Hostile)
	for i := 0; i < 300; i++ {
		c2.Send("a", i)
	}
	n2.RunFor(10_000)
	first := map[int]int{}
	for k, d := range r2.got["b"] {
		if j, ok := first[d.Msg.(int)]; ok && j > k {
			t.Fatalf("a duplicate of %v arrived before its original", d.Msg)
		} else if !ok {
			first[d.Msg.(int)] = k
		}
	}
	if n2.Stats.Duplicated == 0 || len(r2.got["b"]) <= 300 {
		t.Fatalf("no duplicates: %+v", n2.Stats)
	}
}
