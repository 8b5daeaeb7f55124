package region

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"concord/crdt"
)

// Fault tests: a node isolated, killed, restarted or lagging behind a
// snapshot. Each ends by checking that every acknowledged write survived and
// that the nodes' states are identical.

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// others returns the indexes of the region's nodes other than skip.
func (r *testRegion) others(skip int) []int {
	var out []int
	for i := range r.peers {
		if i != skip {
			out = append(out, i)
		}
	}
	return out
}

// leaderAmong waits for one of the given nodes to lead and be ready.
func (r *testRegion) leaderAmong(idx ...int) int {
	r.t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		for _, i := range idx {
			if n := r.nodes[i]; n != nil && n.Leader() && n.Ready() {
				return i
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	r.t.Fatalf("no leader among nodes %v", idx)
	return -1
}

// isolate cuts node i from every other node of the region.
func (r *testRegion) isolate(i int) {
	for j := range r.peers {
		if j != i {
			r.net.cut(r.peers[i].Addr, r.peers[j].Addr)
		}
	}
}

// live returns the running nodes.
func (r *testRegion) live() []*Node {
	var out []*Node
	for _, n := range r.nodes {
		if n != nil {
			out = append(out, n)
		}
	}
	return out
}

// waitConverged waits until the nodes hold identical states.
func waitConverged(t *testing.T, nodes ...*Node) {
	t.Helper()
	waitFor(t, 20*time.Second, "identical digests", func() bool {
		d := digest(nodes[0])
		for _, n := range nodes[1:] {
			if digest(n) != d {
				return false
			}
		}
		return true
	})
}

// outcome classes of a write, as a client sees them.
const (
	acked   = iota // OK: it must survive
	retry          // TRYAGAIN: provably not applied
	inDoubt        // any other error: may or may not be applied
)

func classify(rep crdt.Reply, err error) int {
	if err == nil && !rep.IsError() {
		return acked
	}
	var e *Error
	if errors.As(err, &e) && e.Retryable() {
		return retry
	}
	return inDoubt
}

// history records what clients were told about their writes: SETs of
// unique keys and INCRs of one counter.
type history struct {
	mu                   sync.Mutex
	keys                 []string // acknowledged SETs (value = key)
	setRetry, setDoubt   int
	incrAcked            int
	incrRetry, incrDoubt int
	errs                 map[string]int // failures by text
}

func (h *history) ackedCount() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.keys) + h.incrAcked
}

func (h *history) noteErr(rep crdt.Reply, err error) {
	text := ""
	switch {
	case err != nil:
		text = err.Error()
	case rep.IsError():
		text = string(rep.Str)
	default:
		return
	}
	if h.errs == nil {
		h.errs = map[string]int{}
	}
	h.errs[text]++
}

// writers run a write load against nodes until stopped.
type writers struct {
	h    *history
	stop chan struct{}
	wg   sync.WaitGroup
}

// startWriters runs perNode writers on each of the given nodes. Each writer
// alternates a SET of a fresh key and an INCR of "counter"; a writer whose
// node shuts down stops.
func startWriters(r *testRegion, idx []int, perNode int, prefix string) *writers {
	w := &writers{h: &history{}, stop: make(chan struct{})}
	for _, i := range idx {
		n := r.nodes[i]
		for g := 0; g < perNode; g++ {
			w.wg.Add(1)
			go func(n *Node, name string) {
				defer w.wg.Done()
				for seq := 0; ; seq++ {
					select {
					case <-w.stop:
						return
					default:
					}
					key := fmt.Sprintf("%s-%s-%d", prefix, name, seq)
					rep, err := do(n, "SET", key, key)
					c := classify(rep, err)
					w.h.mu.Lock()
					w.h.noteErr(rep, err)
					switch c {
					case acked:
						w.h.keys = append(w.h.keys, key)
					case retry:
						w.h.setRetry++
					default:
						w.h.setDoubt++
					}
					w.h.mu.Unlock()
					if errors.Is(err, ErrShutdown) {
						return
					}
					rep, err = do(n, "INCR", "counter")
					c = classify(rep, err)
					w.h.mu.Lock()
					w.h.noteErr(rep, err)
					switch c {
					case acked:
						w.h.incrAcked++
					case retry:
						w.h.incrRetry++
					default:
						w.h.incrDoubt++
					}
					w.h.mu.Unlock()
					if errors.Is(err, ErrShutdown) {
						return
					}
				}
			}(n, fmt.Sprintf("%s.%d", n.id, g))
		}
	}
	return w
}

// finish stops the writers and waits for their last writes' outcomes.
func (w *writers) finish() *history {
	close(w.stop)
	w.wg.Wait()
	return w.h
}

// checkHistory reads, linearizably through n, every acknowledged key and
// the counter: no acknowledged SET may be missing, and the counter must
// count every acknowledged INCR and none that was reported as not applied.
func checkHistory(t *testing.T, n *Node, h *history) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := n.ReadFence(ctx); err != nil {
		t.Fatalf("read fence on %s: %v", n.id, err)
	}
	var missing []string
	var counter int64
	n.Read(func(ks *crdt.Keyspace) {
		now := time.Now().UnixMilli()
		for _, k := range h.keys {
			r := ks.Read(0, now, 1, [][]byte{[]byte("GET"), []byte(k)})
			if r.Kind == crdt.KindNil || string(r.Str) != k {
				missing = append(missing, k)
			}
		}
		r := ks.Read(0, now, 1, [][]byte{[]byte("GET"), []byte("counter")})
		counter, _ = strconv.ParseInt(string(r.Str), 10, 64)
	})
	t.Logf("SET: %d acknowledged, %d TRYAGAIN, %d in doubt; INCR: %d acknowledged, %d TRYAGAIN, %d in doubt; counter %d",
		len(h.keys), h.setRetry, h.setDoubt, h.incrAcked, h.incrRetry, h.incrDoubt, counter)
	for text, k := range h.errs {
		t.Logf("  %d× %s", k, text)
	}
	if len(missing) > 0 {
		t.Fatalf("%d acknowledged SETs lost, e.g. %v", len(missing), missing[:min(5, len(missing))])
	}
	if counter < int64(h.incrAcked) || counter > int64(h.incrAcked+h.incrDoubt) {
		t.Fatalf("counter %d: want between %d acknowledged and %d acknowledged + in doubt (TRYAGAIN ones must not count)",
			counter, h.incrAcked, h.incrAcked+h.incrDoubt)
	}
}

func mustWrite(t *testing.T, n *Node, args ...string) {
	t.Helper()
	rep, err := do(n, args...)
	if err != nil || rep.IsError() {
		t.Fatalf("%v via %s: %v %s", args, n.id, err, rep.Str)
	}
}

// readVia reads key through n's read fence with a short deadline.
func readVia(n *Node, key string, timeout time.Duration) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	if err := n.ReadFence(ctx); err != nil {
		return "", err
	}
	var v string
	n.Read(func(ks *crdt.Keyspace) {
		v = string(ks.Read(0, time.Now().UnixMilli(), 1, [][]byte{[]byte("GET"), []byte(key)}).Str)
	})
	return v, nil
}

// TestIsolatedLeaderStopsServing cuts the leader off from both followers.
// The old leader must acknowledge no write and serve no read once its lease
// is over, while the majority elects a leader and goes on; after the heal it
// catches up and nothing acknowledged is lost.
func TestIsolatedLeaderStopsServing(t *testing.T) {
	r := newTestRegion(t, 3)
	old := r.leader()
	on := r.nodes[old]
	mustWrite(t, on, "SET", "k", "before")
	if v, err := readVia(on, "k", time.Second); err != nil || v != "before" {
		t.Fatalf("read before the cut: %q %v", v, err)
	}
	w := startWriters(r, r.others(old), 2, "maj")

	lastBefore := on.raft.LastIndex()
	r.isolate(old)
	cutDone := time.Now()
	// A write proposed at once reaches the old leader's log (it leads until
	// its LeaderLeaseTimeout finds no quorum) but cannot commit.
	minority := make(chan error, 1)
	go func() {
		rep, err := do(on, "SET", "minority", "x")
		if err == nil && !rep.IsError() {
			minority <- nil
			return
		}
		if err == nil {
			err = fmt.Errorf("%s", rep.Str)
		}
		minority <- err
	}()

	// Reads: the lease was last renewed by a round that started before the
	// cut, so no read may start being served after cutDone + lease; from
	// there on every read is refused.
	lease := on.leaseDuration()
	on.lease.mu.Lock()
	until := on.lease.until
	on.lease.mu.Unlock()
	if until.After(cutDone.Add(lease)) {
		t.Fatalf("lease runs until %v after the cut, longer than one lease (%v)", until.Sub(cutDone), lease)
	}
	for time.Since(cutDone) < 3*on.cfg.Timing.HeartbeatTimeout {
		start := time.Now()
		_, err := readVia(on, "k", 100*time.Millisecond)
		if err == nil && start.After(cutDone.Add(lease)) {
			t.Fatalf("isolated leader served a read %v after the cut (lease %v)", start.Sub(cutDone), lease)
		}
	}
	waitFor(t, 5*time.Second, "the isolated leader to step down", func() bool { return !on.Leader() && !on.Ready() })
	appended := on.raft.LastIndex() > lastBefore
	t.Logf("minority write appended to the old leader's log: %v", appended)

	// The majority elects a leader and takes writes; the old leader
	// refuses to read the key the majority overwrote.
	nl := r.leaderAmong(r.others(old)...)
	mustWrite(t, r.nodes[nl], "SET", "k", "after")
	for i := 0; i < 3; i++ {
		if v, err := readVia(on, "k", 300*time.Millisecond); err == nil {
			t.Fatalf("isolated old leader served a read (k=%q) while the majority moved on", v)
		}
		if _, err := do2(on, 300*time.Millisecond, "SET", "minority2", "x"); err == nil {
			t.Fatal("isolated old leader acknowledged a write")
		}
	}
	waitFor(t, 10*time.Second, "more writes on the majority", func() bool { return w.h.ackedCount() >= 40 })
	select {
	case err := <-minority:
		if err == nil {
			t.Fatal("a write proposed on the isolated leader was acknowledged while it was cut off")
		}
		t.Logf("minority write failed while cut off: %v", err)
		minority <- err
	default:
	}

	r.net.heal()
	h := w.finish()
	merr := <-minority
	t.Logf("minority write outcome: %v", merr)
	if appended && merr == nil {
		t.Fatal("a write in the isolated leader's log was acknowledged, though the new leader overwrote it")
	}
	waitConverged(t, r.live()...)
	l := r.leader()
	checkHistory(t, r.nodes[l], h)
	if v, err := readVia(on, "k", 5*time.Second); err != nil || v != "after" {
		t.Fatalf("old leader after heal: k=%q %v", v, err)
	}
	// A write reported as not applied (TRYAGAIN) must really be absent.
	var e *Error
	if errors.As(merr, &e) && e.Retryable() {
		if v, _ := readVia(r.nodes[l], "minority", 5*time.Second); v != "" {
			t.Fatalf("write reported as not applied is present: minority=%q", v)
		}
	}
}

// do2 is do with a deadline.
func do2(n *Node, timeout time.Duration, args ...string) (crdt.Reply, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	rs, err := n.Propose(ctx, []crdt.Command{cmd(args...)})
	if err != nil {
		return crdt.Reply{}, err
	}
	if rs[0].IsError() {
		return rs[0], fmt.Errorf("%s", rs[0].Str)
	}
	return rs[0], nil
}

// TestFollowerCatchesUpByLog restarts a follower that missed writes; the
// leader still holds them in its log.
func TestFollowerCatchesUpByLog(t *testing.T) {
	r := newTestRegion(t, 3)
	l := r.leader()
	f := r.others(l)[0]
	mustWrite(t, r.nodes[l], "SET", "k0", "0")
	r.kill(f)
	for i := 1; i <= 100; i++ {
		mustWrite(t, r.nodes[l], "SET", fmt.Sprint("k", i), fmt.Sprint(i))
	}
	n := r.start(f)
	waitConverged(t, r.live()...)
	for _, i := range []int{0, 1, 50, 100} {
		if v, err := readVia(n, fmt.Sprint("k", i), 5*time.Second); err != nil || v != fmt.Sprint(i) {
			t.Fatalf("restarted follower: k%d=%q %v", i, v, err)
		}
	}
	if s := n.raft.Stats()["last_snapshot_index"]; s != "0" {
		t.Fatalf("follower caught up through a snapshot (index %s), not the log", s)
	}
}

// TestFollowerCatchesUpBySnapshot restarts a follower whose missing entries
// the leader has already compacted away: it must install a snapshot.
func TestFollowerCatchesUpBySnapshot(t *testing.T) {
	r := newTestRegionWith(t, 3, func(c *Config) {
		c.SnapshotThreshold = 64
		c.TrailingLogs = 8
		c.walSegmentSize = 4 << 10
	})
	l := r.leader()
	f := r.others(l)[0]
	for i := 0; i < 20; i++ {
		mustWrite(t, r.nodes[l], "SET", fmt.Sprint("k", i), fmt.Sprint(i))
	}
	waitConverged(t, r.live()...)
	fLast := r.nodes[f].raft.LastIndex()
	r.kill(f)
	for i := 20; i < 120; i++ {
		mustWrite(t, r.nodes[l], "SET", fmt.Sprint("k", i), fmt.Sprint(i))
	}
	ln := r.nodes[l]
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if rep := ln.Admin(ctx, [][]byte{[]byte("SNAPSHOT")}); rep.IsError() {
		t.Fatalf("REGION SNAPSHOT: %s", rep.Str)
	}
	snapIdx, _ := strconv.ParseUint(ln.raft.Stats()["last_snapshot_index"], 10, 64)
	// The entry after the follower's last is gone from the leader's log.
	var entry raft.Log
	if err := ln.wal.GetLog(fLast+1, &entry); err == nil {
		t.Fatalf("leader still holds entry %d after the snapshot; the follower could catch up by log", fLast+1)
	}
	n := r.start(f)
	waitConverged(t, r.live()...)
	got, _ := strconv.ParseUint(n.raft.Stats()["last_snapshot_index"], 10, 64)
	if got < snapIdx {
		t.Fatalf("restarted follower's last snapshot is at %d, want the leader's (%d) installed", got, snapIdx)
	}
	for i := 0; i < 120; i++ {
		if v, err := readVia(n, fmt.Sprint("k", i), 5*time.Second); err != nil || v != fmt.Sprint(i) {
			t.Fatalf("follower after snapshot install: k%d=%q %v", i, v, err)
		}
	}
	// It goes on applying after the snapshot.
	mustWrite(t, n, "SET", "after", "1")
	waitConverged(t, r.live()...)
}

// newTestRegionWith is newTestRegion with every node's config adjusted by
// mod, which is in place before the first node starts.
func newTestRegionWith(t *testing.T, size int, mod func(*Config)) *testRegion {
	t.Helper()
	r := &testRegion{t: t, net: newNetFault(), cfgMod: mod}
	for i := 0; i < size; i++ {
		r.addPeer()
	}
	for i := range r.peers {
		r.start(i)
	}
	t.Cleanup(func() {
		for _, n := range r.nodes {
			if n != nil {
				n.Close()
			}
		}
	})
	return r
}

// addPeer reserves an address and a data dir for one more node (not
// started) and returns its index.
func (r *testRegion) addPeer() int {
	r.t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		r.t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	r.peers = append(r.peers, Peer{ID: fmt.Sprintf("n%d", len(r.peers)+1), Addr: addr})
	r.dirs = append(r.dirs, r.t.TempDir())
	r.nodes = append(r.nodes, nil)
	return len(r.peers) - 1
}

// TestKillUnderLoadLosesNoAcknowledgedWrite kills a node (leader or
// follower) without a leadership transfer while clients write through every
// node, then restarts it: every acknowledged write is kept.
func TestKillUnderLoadLosesNoAcknowledgedWrite(t *testing.T) {
	for _, victim := range []string{"leader", "follower"} {
		t.Run(victim, func(t *testing.T) {
			r := newTestRegion(t, 3)
			l := r.leader()
			v := l
			if victim == "follower" {
				v = r.others(l)[0]
			}
			w := startWriters(r, []int{0, 1, 2}, 2, "w")
			waitFor(t, 10*time.Second, "writes before the kill", func() bool { return w.h.ackedCount() >= 60 })
			r.kill(v)
			atKill := w.h.ackedCount()
			survivors := r.others(v)
			r.leaderAmong(survivors...)
			waitFor(t, 15*time.Second, "writes after the kill", func() bool { return w.h.ackedCount() >= atKill+60 })
			h := w.finish()
			r.start(v)
			waitConverged(t, r.live()...)
			checkHistory(t, r.nodes[r.leader()], h)
		})
	}
}

// TestCacheDurabilityRestartRejoinsEmpty shows what cache durability means
// for a restart: the node discards its disk (its log was never fsynced),
// comes back with an empty log and keyspace, and catches up from the
// others like a new member. Restarting every node empties the region.
func TestCacheDurabilityRestartRejoinsEmpty(t *testing.T) {
	r := newTestRegionWith(t, 3, func(c *Config) { c.Durability = DurabilityCache })
	l := r.leader()
	for i := 0; i < 50; i++ {
		mustWrite(t, r.nodes[i%3], "SET", fmt.Sprint("k", i), fmt.Sprint(i))
	}
	waitConverged(t, r.live()...)
	full := digest(r.nodes[l])
	empty := crdt.NewKeyspace(crdt.Origin{Region: 1, Incarnation: 1}, crdt.Options{Solo: true}).Digest()

	f := r.others(l)[0]
	r.kill(f)
	marker := filepath.Join(r.dirs[f], "marker")
	if err := os.WriteFile(marker, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	// Restarted while cut off, it shows what it kept: nothing.
	r.isolate(f)
	n := r.start(f)
	if _, err := os.Stat(marker); !os.IsNotExist(err) {
		t.Fatalf("cache-mode restart kept the old data dir (marker: %v)", err)
	}
	if last := n.raft.LastIndex(); last > 1 { // 1: its bootstrap configuration
		t.Fatalf("cache-mode restart kept its log up to %d", last)
	}
	if digest(n) != empty {
		t.Fatal("cache-mode restart kept keyspace state")
	}
	r.net.heal()
	waitConverged(t, r.live()...)
	if digest(n) != full {
		t.Fatal("rejoined cache-mode node does not hold the region's state")
	}
	if v, err := readVia(n, "k7", 5*time.Second); err != nil || v != "7" {
		t.Fatalf("rejoined cache-mode node: k7=%q %v", v, err)
	}

	// All nodes restarted: nothing survives, and the region works again.
	for i := range r.nodes {
		r.kill(i)
	}
	for i := range r.nodes {
		r.start(i)
	}
	l = r.leader()
	for _, n := range r.live() {
		if digest(n) != empty {
			t.Fatalf("%s kept state across a full cache-mode restart", n.id)
		}
	}
	mustWrite(t, r.nodes[(l+1)%3], "SET", "fresh", "1")
	waitConverged(t, r.live()...)
}

// TestLeaderShutdownIsInvisibleToFollowersClients shuts the leader down
// cleanly (or kills it) while clients write through the followers. Writes
// the leader refuses because it is stopping never reached the log: the
// followers must send them on to the next leader, not fail them with the
// leader's "server is shutting down".
func TestLeaderShutdownIsInvisibleToFollowersClients(t *testing.T) {
	for _, how := range []string{"shutdown", "close"} {
		t.Run(how, func(t *testing.T) {
			r := newTestRegion(t, 3)
			l := r.leader()
			w := startWriters(r, r.others(l), 2, "f")
			waitFor(t, 10*time.Second, "writes before the shutdown", func() bool { return w.h.ackedCount() >= 40 })
			if how == "shutdown" {
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				if err := r.nodes[l].Shutdown(ctx); err != nil {
					t.Errorf("shutdown: %v", err)
				}
				cancel()
				r.nodes[l] = nil
			} else {
				r.kill(l)
			}
			at := w.h.ackedCount()
			waitFor(t, 15*time.Second, "writes after the shutdown", func() bool { return w.h.ackedCount() >= at+40 })
			h := w.finish()
			checkHistory(t, r.nodes[r.leader()], h)
			for text, k := range h.errs {
				if strings.Contains(text, "shutting down") {
					t.Errorf("%d writes through a running follower failed with %q", k, text)
				}
			}
		})
	}
}

// TestLeadershipTransferUnderLoadLeavesNoWriteInDoubt hands leadership
// over (REGION TRANSFER) several times while clients write through every
// node. A clean handover leaves the outcome of every write known: the old
// leader tells followers which forwarded writes it never proposed, and
// those go to the new leader.
func TestLeadershipTransferUnderLoadLeavesNoWriteInDoubt(t *testing.T) {
	r := newTestRegion(t, 3)
	r.leader()
	w := startWriters(r, []int{0, 1, 2}, 2, "t")
	for i := 0; i < 4; i++ {
		waitFor(t, 10*time.Second, "writes", func() bool { return w.h.ackedCount() >= (i+1)*40 })
		l := r.leader()
		if rep := admin(r.nodes[l], 10*time.Second, "TRANSFER"); rep.IsError() {
			t.Fatalf("REGION TRANSFER: %s", rep.Str)
		}
		waitFor(t, 10*time.Second, "a new leader", func() bool {
			nl := r.leader()
			return nl != l
		})
	}
	h := w.finish()
	checkHistory(t, r.nodes[r.leader()], h)
	if h.setDoubt+h.incrDoubt > 0 {
		t.Fatalf("%d writes left in doubt by clean leadership transfers", h.setDoubt+h.incrDoubt)
	}
}
