package region

import (
	"bufio"
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"

	"concord/crdt"
	pb "concord/proto"
)

// Within-region linearizability: concurrent clients on every node of a
// three-node region run SET/GET/INCR on a few keys while a nemesis kills
// the leader and cuts it off into a minority; porcupine then checks the
// recorded history against a per-key register (linearmodel_test.go).
//
// CONCORD_LINEAR_OPS sets the number of client operations (default 1200;
// the nemesis keeps injecting faults for as long as the clients run), and
// CONCORD_LINEAR_SEED replays the clients' choices of a failed run (the
// timing of a run cannot be replayed).

const (
	linClients    = 6
	linKeys       = 4
	linDefaultOps = 1200
)

// liveNodes is the clients' view of which nodes are running: the nemesis
// takes a node out of it before killing it and puts it back once restarted.
type liveNodes struct {
	mu    sync.RWMutex
	nodes []*Node
}

func (v *liveNodes) set(i int, n *Node) {
	v.mu.Lock()
	v.nodes[i] = n
	v.mu.Unlock()
}

// pick returns node pref, or the next running one if pref is down.
func (v *liveNodes) pick(pref int) *Node {
	for {
		v.mu.RLock()
		for j := range v.nodes {
			if n := v.nodes[(pref+j)%len(v.nodes)]; n != nil {
				v.mu.RUnlock()
				return n
			}
		}
		v.mu.RUnlock()
		time.Sleep(time.Millisecond) // the nemesis never stops more than one node
	}
}

func envInt(t *testing.T, name string, def int64) int64 {
	s := os.Getenv(name)
	if s == "" {
		return def
	}
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return v
}

func TestLinearizableUnderFaults(t *testing.T) {
	total := int(envInt(t, "CONCORD_LINEAR_OPS", linDefaultOps))
	seed := uint64(envInt(t, "CONCORD_LINEAR_SEED", time.Now().UnixNano()))
	t.Logf("seed %d (CONCORD_LINEAR_SEED), %d operations (CONCORD_LINEAR_OPS)", seed, total)

	r := newTestRegion(t, 3)
	r.leader()
	live := &liveNodes{nodes: append([]*Node(nil), r.nodes...)}
	h := newLinRecorder()

	var wg sync.WaitGroup
	for c := 0; c < linClients; c++ {
		ops := total / linClients
		if c < total%linClients {
			ops++
		}
		wg.Add(1)
		go func(c, ops int) {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(seed, uint64(c)))
			for i := 0; i < ops; i++ {
				n := live.pick(c % len(r.nodes))
				key := fmt.Sprintf("lin%d", rng.IntN(linKeys))
				ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
				switch x := rng.IntN(10); {
				case x < 4:
					h.read(ctx, c, n, key)
				case x < 7:
					h.write(ctx, c, n, linInput{op: linIncr, key: key})
				default:
					// distinct values, so a read names the write it saw
					h.write(ctx, c, n, linInput{op: linSet, key: key, val: int64(c+1)*1_000_000 + int64(i)*1_000})
				}
				cancel()
				// think time, so the operations spread over the faults
				time.Sleep(time.Duration(rng.IntN(20)) * time.Millisecond)
			}
		}(c, ops)
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()

	kills, cuts := linNemesis(r, live, done, rand.New(rand.NewPCG(seed, 1<<32)))

	// Quiesce, then read every key through every node: these reads pin down
	// what the writes in doubt did.
	r.net.heal()
	r.leader()
	for i, n := range r.nodes {
		deadline := time.Now().Add(15 * time.Second)
		for {
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
			err := n.ReadFence(ctx)
			cancel()
			if err == nil {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s cannot serve reads after the faults healed: %v", n.id, err)
			}
		}
		for k := 0; k < linKeys; k++ {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			h.read(ctx, linClients+i, n, fmt.Sprintf("lin%d", k))
			cancel()
		}
	}

	for _, b := range h.bad {
		t.Error(b)
	}
	start := time.Now()
	res, msg := checkLinearizable(h, linCheckTimeout(total), "")
	t.Logf("%d operations recorded (%d writes in doubt), %d TRYAGAIN writes dropped, %d failed reads; "+
		"%d leader kills, %d leader isolations; check %s in %v",
		len(h.recs), h.unknown, h.dropped, h.readErrs, kills, cuts, res, time.Since(start).Round(time.Millisecond))
	for e, n := range h.errs {
		t.Logf("%5d × %s", n, e)
	}
	if res != porcupine.Ok {
		t.Fatalf("seed %d: %s", seed, msg)
	}
	if kills == 0 || cuts == 0 {
		t.Errorf("the nemesis injected %d kills and %d isolations; the run was too short to test anything", kills, cuts)
	}
}

// linCheckTimeout bounds the checker: far above what a correct history of
// this size takes, so Unknown means the search blew up.
func linCheckTimeout(ops int) time.Duration {
	return 10*time.Second + time.Duration(ops)*5*time.Millisecond
}

// linNemesis alternates two faults on the current leader until done is
// closed: kill it and restart it, or cut it off from both followers (a
// minority of one) and heal. It returns how many of each it injected.
func linNemesis(r *testRegion, live *liveNodes, done <-chan struct{}, rng *rand.Rand) (kills, cuts int) {
	pause := func(lo, hi int) bool {
		select {
		case <-done:
			return false
		case <-time.After(time.Duration(lo+rng.IntN(hi-lo)) * time.Millisecond):
			return true
		}
	}
	for cycle := 0; ; cycle++ {
		if !pause(200, 600) {
			return
		}
		l := r.leader()
		if cycle%2 == 0 {
			live.set(l, nil)
			r.kill(l)
			kills++
			pause(100, 1200)
			live.set(l, r.start(l))
		} else {
			for j, p := range r.peers {
				if j != l {
					r.net.cut(r.peers[l].Addr, p.Addr)
				}
			}
			cuts++
			pause(100, 1500)
			r.net.heal()
		}
	}
}

// localGet reads key from n's applied state, without any fence.
func localGet(n *Node, key string) (string, bool) {
	var r crdt.Reply
	n.Read(func(ks *crdt.Keyspace) {
		r = ks.Read(0, time.Now().UnixMilli(), 1, [][]byte{[]byte("GET"), []byte(key)})
	})
	return string(r.Str), r.Kind != crdt.KindNil
}

// TestLinearizableCatchesStaleRead shows the check has teeth: a follower
// cut off from the region, with its read fence disabled, serves a value
// the majority has already overwritten, and porcupine must reject that
// history. With the fence in place the same read is refused.
func TestLinearizableCatchesStaleRead(t *testing.T) {
	r := newTestRegion(t, 3)
	l := r.leader()
	f, o := (l+1)%3, (l+2)%3
	leader, follower := r.nodes[l], r.nodes[f]
	h := newLinRecorder()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	h.write(ctx, 0, leader, linInput{op: linSet, key: "x", val: 1})
	deadline := time.Now().Add(10 * time.Second)
	for {
		if v, ok := localGet(follower, "x"); ok && v == "1" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s never applied SET x 1", follower.id)
		}
		time.Sleep(5 * time.Millisecond)
	}
	r.net.cut(r.peers[f].Addr, r.peers[l].Addr)
	r.net.cut(r.peers[f].Addr, r.peers[o].Addr)
	h.write(ctx, 0, leader, linInput{op: linSet, key: "x", val: 2})
	if len(h.recs) != 2 || h.recs[1].out.unknown {
		t.Fatalf("the majority did not acknowledge SET x 2: %s", h.dump())
	}

	// Fenced: the cut-off follower cannot confirm it is up to date.
	fctx, fcancel := context.WithTimeout(ctx, time.Second)
	h.read(fctx, 1, follower, "x")
	fcancel()
	if last := h.recs[len(h.recs)-1]; last.in.op == linGet && last.out.val != 2 {
		t.Fatalf("fenced read on the cut-off follower returned %+v", last.out)
	}
	if res, msg := checkLinearizable(h, 10*time.Second, ""); res != porcupine.Ok {
		t.Fatalf("history before the stale read: %s", msg)
	}

	follower.unsafeSkipReadFence.Store(true)
	h.read(ctx, 1, follower, "x")
	if last := h.recs[len(h.recs)-1]; last.in.op != linGet || last.out.val != 1 {
		t.Fatalf("unfenced read on the cut-off follower: %s", h.dump())
	}
	dir := t.TempDir()
	res, msg := checkLinearizable(h, 10*time.Second, dir)
	if res != porcupine.Illegal {
		t.Fatalf("a stale read was not caught: check says %s\n%s", res, h.dump())
	}
	t.Logf("stale read caught: %s", msg)
	for _, name := range []string{"history.html", "history.txt"} {
		if fi, err := os.Stat(filepath.Join(dir, name)); err != nil || fi.Size() == 0 {
			t.Errorf("the rejected history was not written to %s: %v", name, err)
		}
	}
}

// TestLinearizabilityModel checks the model on hand-built histories whose
// verdict is known, in-doubt writes included.
func TestLinearizabilityModel(t *testing.T) {
	type op struct {
		client    int
		in        linInput
		out       linOutput
		call, ret int64 // ret < 0: outcome unknown
	}
	set := func(k string, v int64) linInput { return linInput{op: linSet, key: k, val: v} }
	incr := func(k string) linInput { return linInput{op: linIncr, key: k} }
	get := func(k string) linInput { return linInput{op: linGet, key: k} }
	val := func(v int64) linOutput { return linOutput{present: true, val: v} }
	none := linOutput{}
	cases := []struct {
		name string
		ops  []op
		want porcupine.CheckResult
	}{
		{"sequential", []op{
			{0, set("a", 5), none, 0, 10},
			{0, incr("a"), val(6), 20, 30},
			{1, get("a"), val(6), 40, 50},
			{1, get("b"), none, 60, 70},
		}, porcupine.Ok},
		{"read of an overwritten value", []op{
			{0, set("a", 1), none, 0, 10},
			{0, set("a", 2), none, 20, 30},
			{1, get("a"), val(1), 40, 50},
		}, porcupine.Illegal},
		{"concurrent read may see either", []op{
			{0, set("a", 1), none, 0, 10},
			{0, set("a", 2), none, 20, 50},
			{1, get("a"), val(1), 30, 40},
			{2, get("a"), val(2), 35, 45},
		}, porcupine.Ok},
		{"reads go back in time", []op{
			{0, set("a", 1), none, 0, 10},
			{0, set("a", 2), none, 20, 100},
			{1, get("a"), val(2), 30, 40},
			{2, get("a"), val(1), 50, 60},
		}, porcupine.Illegal},
		{"lost increment", []op{
			{0, incr("c"), val(1), 0, 10},
			{1, incr("c"), val(1), 20, 30},
		}, porcupine.Illegal},
		{"in-doubt increment may have happened", []op{
			{0, incr("c"), linOutput{unknown: true}, 0, -1},
			{1, get("c"), val(1), 20, 30},
			{1, incr("c"), val(2), 40, 50},
		}, porcupine.Ok},
		{"in-doubt increment may not have happened", []op{
			{0, incr("c"), linOutput{unknown: true}, 0, -1},
			{1, get("c"), none, 20, 30},
			{1, incr("c"), val(1), 40, 50},
		}, porcupine.Ok},
		{"in-doubt increment happened once at most", []op{
			{0, incr("c"), linOutput{unknown: true}, 0, -1},
			{1, incr("c"), val(3), 20, 30},
		}, porcupine.Illegal},
		{"in-doubt write cannot precede its call", []op{
			{1, get("a"), val(7), 0, 10},
			{0, set("a", 7), linOutput{unknown: true}, 20, -1},
		}, porcupine.Illegal},
		{"in-doubt write may land late", []op{
			{0, set("a", 7), linOutput{unknown: true}, 0, -1},
			{1, get("a"), none, 20, 30},
			{1, get("a"), val(7), 40, 50},
		}, porcupine.Ok},
		{"keys are independent", []op{
			{0, set("a", 1), none, 0, 10},
			{1, get("b"), val(1), 20, 30},
		}, porcupine.Illegal},
	}
	for _, c := range cases {
		h := newLinRecorder()
		for _, o := range c.ops {
			r := linRecord{client: o.client, node: "n", in: o.in, out: o.out, call: o.call, ret: o.ret}
			if o.ret < 0 {
				r.err = "in doubt"
			}
			h.recs = append(h.recs, r)
		}
		res, _ := porcupine.CheckOperationsVerbose(registerModel, h.operations(), 10*time.Second)
		if res != c.want {
			t.Errorf("%s: %s, want %s\n%s", c.name, res, c.want, h.dump())
		}
	}
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

// linUncut restores the link between nodes at raft addresses a and b,
// leaving other cuts in place.
func linUncut(f *netFault, a, b string) {
	f.mu.Lock()
	delete(f.blocked, [2]string{a, b})
	delete(f.blocked, [2]string{b, a})
	f.mu.Unlock()
}

// TestLinearizableAcrossFollowerRestart aims at the leader's read lease. A
// lease rests on the followers that answered the leader's last heartbeat
// round refusing votes for a while. A follower restarted at once forgets
// it heard from a leader: if it then voted for a candidate that the leader
// could not reach, the new leader would commit writes while the old one
// still served reads from its lease. Each attempt sets that up: candidate
// B is cut off from everyone (so it keeps campaigning), follower A is
// killed, B's link to A restored, A's link to the leader L cut, and A
// restarted, while clients write through B and read through L. B is n3,
// configured to campaign every 20-40 ms so that its next try comes well
// inside L's lease. Before Open made a restarted node sit out a heartbeat
// timeout, most attempts caught a stale read. CONCORD_LINEAR_RESTARTS sets
// the number of attempts.
func TestLinearizableAcrossFollowerRestart(t *testing.T) {
	attempts := int(envInt(t, "CONCORD_LINEAR_RESTARTS", 4))
	r := newTestRegion(t, 3)
	for i := range r.nodes {
		r.kill(i)
	}
	const b = 2
	r.cfgMod = func(c *Config) {
		if c.NodeID == r.peers[b].ID {
			c.Timing = Timing{HeartbeatTimeout: 20 * time.Millisecond, ElectionTimeout: 20 * time.Millisecond,
				LeaderLeaseTimeout: 10 * time.Millisecond, CommitTimeout: 5 * time.Millisecond}
		}
	}
	for i := range r.nodes {
		r.start(i)
	}
	h := newLinRecorder()
	addr := func(i int) string { return r.peers[i].Addr }
	var elections []time.Duration
	for attempt := 0; attempt < attempts; attempt++ {
		l := r.leader()
		if l == b { // n3 must not lead: its lease would be short
			r.kill(b)
			l = r.leader()
			r.start(b)
		}
		a := 1 - l // the other one of n1, n2
		L, B := r.nodes[l], r.nodes[b]
		r.net.cut(addr(b), addr(l))
		r.net.cut(addr(b), addr(a))
		// Failed campaigns rid B of pooled connections to A, which would
		// fail once A restarts.
		time.Sleep(300 * time.Millisecond)

		key := fmt.Sprintf("r%d", attempt)
		stop := make(chan struct{})
		var wg sync.WaitGroup
		wg.Add(2)
		go func() {
			defer wg.Done()
			for i := int64(1); ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
				h.write(ctx, 0, B, linInput{op: linSet, key: key, val: i})
				cancel()
			}
		}()
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
				h.read(ctx, 1, L, key)
				cancel()
				time.Sleep(time.Millisecond)
			}
		}()
		killed := time.Now()
		r.kill(a)
		linUncut(r.net, addr(a), addr(b))
		r.net.cut(addr(a), addr(l))
		A := r.start(a)
		// L's lease ends within HeartbeatTimeout/2 of A's death: wait past
		// it, and for the majority to elect, whichever comes last.
		var elected time.Duration
		for time.Since(killed) < DefaultTiming.HeartbeatTimeout || elected == 0 {
			if elected == 0 && (A.Leader() || B.Leader()) {
				elected = time.Since(killed).Round(time.Millisecond)
				elections = append(elections, elected)
			}
			if time.Since(killed) > 5*time.Second {
				break
			}
			time.Sleep(time.Millisecond)
		}
		close(stop)
		wg.Wait()
		r.net.heal()
	}
	res, msg := checkLinearizable(h, 30*time.Second, "")
	t.Logf("%d attempts; a new leader was elected with the restarted follower %v after the kill; %d operations; check %s",
		attempts, elections, len(h.recs), res)
	if res != porcupine.Ok {
		t.Fatal(msg)
	}
}

// TestForwardedRequestWhileRestarting: a node listens before Raft is
// built, so a follower that still takes it for the leader can send it a
// read-index request in between; that used to find n.raft nil and crash
// the node. The request must wait for Raft and get an answer.
func TestForwardedRequestWhileRestarting(t *testing.T) {
	r := newTestRegion(t, 3)
	l := r.leader()
	r.kill(l)
	answered := make(chan error, 1)
	go func() {
		deadline := time.Now().Add(10 * time.Second)
		for time.Now().Before(deadline) {
			c, err := net.DialTimeout("tcp", r.peers[l].Addr, 100*time.Millisecond)
			if err != nil {
				continue // not listening yet
			}
			defer c.Close()
			req, _ := appendFrame([]byte{forwardMagic}, &pb.Forward{Op: pb.Forward_OP_READ_INDEX, Id: 1})
			if _, err := c.Write(req); err != nil {
				answered <- err
				return
			}
			c.SetReadDeadline(time.Now().Add(10 * time.Second))
			var rep pb.ForwardReply
			if err := readFrame(bufio.NewReader(c), &rep); err != nil {
				answered <- fmt.Errorf("no answer: %w", err)
				return
			}
			if rep.Id != 1 {
				answered <- fmt.Errorf("answer to request %d, want 1", rep.Id)
				return
			}
			answered <- nil
			return
		}
		answered <- fmt.Errorf("never reached the restarting node")
	}()
	r.start(l)
	if err := <-answered; err != nil {
		t.Fatal(err)
	}
}
