package region

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"concord/crdt"
)

// Membership tests: REGION ADD / REMOVE at runtime, alone and racing a
// partition and a leader kill (the combination that broke Redis-Raft under
// Jepsen).

// addJoiner reserves and starts one more node that is not among the
// region's bootstrap peers: it waits, empty, to be added.
func (r *testRegion) addJoiner() int {
	r.t.Helper()
	boot := append([]Peer(nil), r.peers...)
	prev := r.cfgMod
	r.cfgMod = func(c *Config) {
		if prev != nil {
			prev(c)
		}
		c.Peers = boot
	}
	j := r.addPeer()
	r.start(j)
	return j
}

func admin(n *Node, timeout time.Duration, args ...string) crdt.Reply {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var a [][]byte
	for _, s := range args {
		a = append(a, []byte(s))
	}
	return n.Admin(ctx, a)
}

// members returns n's view of the region's voters, sorted.
func members(n *Node) []string {
	var ids []string
	for _, s := range n.Status().Servers {
		if s.Voter {
			ids = append(ids, s.ID)
		}
	}
	slices.Sort(ids)
	return ids
}

// waitAgreed waits until the given nodes agree on the voters (want) and on
// one leader among them, which is the only node in the Leader state.
func (r *testRegion) waitAgreed(t *testing.T, want []string, idx ...int) int {
	t.Helper()
	slices.Sort(want)
	leader := -1
	waitFor(t, 20*time.Second, fmt.Sprintf("nodes %v to agree on members %v and one leader", idx, want), func() bool {
		leader = -1
		lid := ""
		for k, i := range idx {
			n := r.nodes[i]
			if !slices.Equal(members(n), want) {
				return false
			}
			st := n.Status()
			if k == 0 {
				lid = st.LeaderID
			}
			if st.LeaderID == "" || st.LeaderID != lid {
				return false
			}
			if n.Leader() {
				if leader >= 0 || n.id != lid {
					return false
				}
				leader = i
			}
		}
		return leader >= 0 && r.nodes[leader].Ready()
	})
	return leader
}

func ids(r *testRegion, idx ...int) []string {
	var out []string
	for _, i := range idx {
		out = append(out, r.peers[i].ID)
	}
	return out
}

func TestMembershipAddAndRemove(t *testing.T) {
	r := newTestRegion(t, 3)
	l := r.leader()
	for i := 0; i < 30; i++ {
		mustWrite(t, r.nodes[i%3], "SET", fmt.Sprint("k", i), fmt.Sprint(i))
	}
	j := r.addJoiner()
	nj := r.nodes[j]
	if nj.Ready() || len(nj.Status().Servers) != 0 {
		t.Fatalf("a node outside the region's configuration serves: %+v", nj.Status())
	}

	// ADD through a follower, which forwards it to the leader.
	f := r.others(l)[0]
	if rep := admin(r.nodes[f], 10*time.Second, "ADD", r.peers[j].ID, r.peers[j].Addr); rep.IsError() {
		t.Fatalf("REGION ADD via follower: %s", rep.Str)
	}
	all := []int{0, 1, 2, j}
	r.waitAgreed(t, ids(r, all...), all...)
	waitConverged(t, r.live()...)
	if v, err := readVia(nj, "k29", 5*time.Second); err != nil || v != "29" {
		t.Fatalf("new member: k29=%q %v", v, err)
	}
	mustWrite(t, nj, "SET", "via-new", "1")
	if rep := admin(nj, time.Second, "NODES"); len(rep.Elems) != 4 {
		t.Fatalf("REGION NODES on the new member: %d entries, want 4", len(rep.Elems))
	}

	// REMOVE a follower, sent through the new member.
	victim := r.others(l)[1]
	if rep := admin(nj, 10*time.Second, "REMOVE", r.peers[victim].ID); rep.IsError() {
		t.Fatalf("REGION REMOVE: %s", rep.Str)
	}
	rest := []int{l, f, j}
	r.waitAgreed(t, ids(r, rest...), rest...)
	r.kill(victim)
	mustWrite(t, r.nodes[f], "SET", "after-remove", "1")
	waitConverged(t, r.live()...)

	// REMOVE the leader itself: it steps down, the others go on.
	l = r.leaderAmong(rest...)
	if rep := admin(r.nodes[l], 10*time.Second, "REMOVE", r.peers[l].ID); rep.IsError() {
		t.Fatalf("REGION REMOVE of the leader: %s", rep.Str)
	}
	var two []int
	for _, i := range rest {
		if i != l {
			two = append(two, i)
		}
	}
	r.waitAgreed(t, ids(r, two...), two...)
	r.kill(l)
	mustWrite(t, r.nodes[two[0]], "SET", "after-leader-remove", "1")
	waitConverged(t, r.live()...)
	for _, k := range []string{"k0", "via-new", "after-remove", "after-leader-remove"} {
		if v, err := readVia(r.nodes[two[1]], k, 5*time.Second); err != nil || v == "" {
			t.Fatalf("%s after the removals: %q %v", k, v, err)
		}
	}
}

// TestMembershipChangeDuringPartitionAndLeaderKill starts a membership
// change through a follower, partitions the leader from another follower
// and kills the leader while the change is in flight, under write load.
// After the heal and the leader's restart the change is retried until it
// succeeds (it may have been lost); then every node agrees on the members
// and on one leader, states are identical and no acknowledged write is
// lost. A change that was acknowledged must already be in effect.
func TestMembershipChangeDuringPartitionAndLeaderKill(t *testing.T) {
	for _, op := range []string{"ADD", "REMOVE"} {
		t.Run(op, func(t *testing.T) {
			size := 3
			if op == "REMOVE" {
				size = 4 // three voters stay
			}
			r := newTestRegion(t, size)
			l := r.leader()
			o := r.others(l)
			a, b := o[0], o[1]
			var target int
			var want []int // members once the change is in effect
			if op == "ADD" {
				target = r.addJoiner()
				want = []int{0, 1, 2, target}
			} else {
				target = o[2]
				want = []int{l, a, b}
			}
			w := startWriters(r, []int{l, a, b}, 1, "m")
			waitFor(t, 10*time.Second, "writes before the change", func() bool { return w.h.ackedCount() >= 20 })

			args := []string{op, r.peers[target].ID}
			if op == "ADD" {
				args = append(args, r.peers[target].Addr)
			}
			first := make(chan crdt.Reply, 1)
			go func() { first <- admin(r.nodes[a], 20*time.Second, args...) }()
			r.net.cut(r.peers[l].Addr, r.peers[b].Addr)
			time.Sleep(20 * time.Millisecond) // let the change reach the leader (or not)
			r.kill(l)
			atKill := w.h.ackedCount()
			waitFor(t, 20*time.Second, "writes after the leader kill", func() bool { return w.h.ackedCount() >= atKill+20 })
			r.net.heal()
			r.start(l)

			rep := <-first
			t.Logf("%s during the partition and kill: %s", op, rep.Str)
			if !rep.IsError() {
				// Acknowledged: already committed, so in every member's
				// latest configuration once they have caught up.
				r.waitAgreed(t, ids(r, want...), want...)
			} else {
				waitFor(t, 30*time.Second, op+" after the heal", func() bool {
					rep := admin(r.nodes[a], 10*time.Second, args...)
					// A lost reply may hide a REMOVE that took effect.
					return !rep.IsError() || op == "REMOVE" && strings.Contains(string(rep.Str), "no node")
				})
			}
			h := w.finish()
			leader := r.waitAgreed(t, ids(r, want...), want...)
			if op == "REMOVE" {
				r.kill(target)
			}
			var nodes []*Node
			for _, i := range want {
				nodes = append(nodes, r.nodes[i])
			}
			waitConverged(t, nodes...)
			checkHistory(t, r.nodes[leader], h)
			if rep := admin(r.nodes[a], time.Second, "NODES"); len(rep.Elems) != len(want) {
				t.Fatalf("REGION NODES: %d entries, want %d", len(rep.Elems), len(want))
			}
			for _, i := range want {
				if st := r.nodes[i].Status(); !strings.EqualFold(st.State, "leader") && st.LeaderID != r.peers[leader].ID {
					t.Fatalf("%s follows %q, not %s", st.ID, st.LeaderID, r.peers[leader].ID)
				}
			}
		})
	}
}

// TestElectionAcrossHalfReplicatedAdd builds, step by step, the state the
// ADD case above reached in about 1 run in 10 and that no election could
// leave (see vote.go): the configuration adding j is on l, a and j but not
// on b, and j's log is longer than a's when l dies. a cannot win (j's log
// is longer), b cannot (a's is), and j can only with b's vote, which
// hashicorp/raft alone refuses because j is not in b's configuration. The
// survivors must elect a leader that takes writes, and b must learn the new
// configuration from it.
func TestElectionAcrossHalfReplicatedAdd(t *testing.T) {
	// Building the state takes the first leader to keep leading through
	// it; on a loaded machine it sometimes loses leadership first, and then
	// the setup starts over in a fresh region.
	for attempt := 1; ; attempt++ {
		r, a, b, j, ok := halfReplicatedAdd(t)
		if !ok {
			if attempt == 3 {
				t.Fatal("the leader lost leadership while the state was built, 3 times")
			}
			t.Logf("attempt %d: the leader lost leadership while the state was built; again", attempt)
			continue
		}
		all := members(r.nodes[a])
		r.waitAgreed(t, all, a, b, j)
		mustWrite(t, r.nodes[b], "SET", "after", "1")
		waitConverged(t, r.nodes[a], r.nodes[b], r.nodes[j])
		for _, k := range []string{"k9", "m9", "after"} {
			if v, err := readVia(r.nodes[b], k, 5*time.Second); err != nil || v == "" {
				t.Fatalf("%s after the election: %q %v", k, v, err)
			}
		}
		return
	}
}

// halfReplicatedAdd builds the state of TestElectionAcrossHalfReplicatedAdd
// and kills l; ok is false (and the region closed) if l stopped leading
// before the state was complete.
func halfReplicatedAdd(t *testing.T) (r *testRegion, a, b, j int, ok bool) {
	r = newTestRegion(t, 3)
	l := r.leader()
	o := r.others(l)
	a, b = o[0], o[1]
	defer func() {
		if !ok {
			for i, n := range r.nodes {
				if n != nil {
					r.kill(i)
				}
			}
		}
	}()
	for i := 0; i < 10; i++ {
		mustWrite(t, r.nodes[l], "SET", fmt.Sprint("k", i), "v")
	}
	waitConverged(t, r.nodes[l], r.nodes[a], r.nodes[b])

	r.net.cut(r.peers[l].Addr, r.peers[b].Addr)
	for i := 0; i < 10; i++ { // committed by l and a alone
		mustWrite(t, r.nodes[l], "SET", fmt.Sprint("m", i), "v")
	}
	j = r.addJoiner()
	if rep := admin(r.nodes[l], 10*time.Second, "ADD", r.peers[j].ID, r.peers[j].Addr); rep.IsError() || !r.nodes[l].Leader() {
		t.Logf("REGION ADD on l: %q, l leads: %v", rep.Str, r.nodes[l].Leader())
		return r, a, b, j, false
	}
	all := ids(r, l, a, b, j)
	slices.Sort(all)
	if got := members(r.nodes[b]); slices.Equal(got, all) {
		t.Fatalf("b learned the new configuration through a cut link: %v", got)
	}

	// An entry that reaches j only: a is cut off too, so it never commits.
	r.net.cut(r.peers[l].Addr, r.peers[a].Addr)
	go do2(r.nodes[l], 2*time.Second, "SET", "only-on-j", "v")
	deadline := time.Now().Add(5 * time.Second)
	for r.nodes[j].raft.LastIndex() <= r.nodes[a].raft.LastIndex() {
		if time.Now().After(deadline) {
			t.Logf("j's log never passed a's")
			return r, a, b, j, false
		}
		time.Sleep(time.Millisecond)
	}
	r.kill(l)
	if !slices.Equal(members(r.nodes[a]), all) || !slices.Equal(members(r.nodes[j]), all) || slices.Equal(members(r.nodes[b]), all) {
		t.Fatalf("setup: a %v, j %v, b %v; want a and j on %v, b not", members(r.nodes[a]), members(r.nodes[j]), members(r.nodes[b]), all)
	}
	return r, a, b, j, true
}

// TestRemovedNodeDoesNotDisrupt covers what hashicorp/raft's refusal of
// votes from outside the configuration was for, now that vote.go lifts it:
// a node removed while cut off never learns of its removal and keeps
// campaigning. Its pre-votes must still be refused (every member has a
// leader), so the region's term and leader do not move.
func TestRemovedNodeDoesNotDisrupt(t *testing.T) {
	r := newTestRegion(t, 3)
	l := r.leader()
	x := r.others(l)[0]
	r.isolate(x)
	if rep := admin(r.nodes[l], 10*time.Second, "REMOVE", r.peers[x].ID); rep.IsError() {
		t.Fatalf("REGION REMOVE: %s", rep.Str)
	}
	rest := r.others(x)
	r.waitAgreed(t, ids(r, rest...), rest...)
	// x campaigns from its own view, in which it is still a voter.
	waitFor(t, 5*time.Second, "the removed node to lose its leader", func() bool { return r.nodes[x].Status().LeaderID == "" })
	if !slices.Contains(members(r.nodes[x]), r.peers[x].ID) {
		t.Fatalf("the removed node learned of its removal through a cut link: %v", members(r.nodes[x]))
	}
	r.net.heal()
	term := r.nodes[l].Status().Term
	for end := time.Now().Add(3 * time.Second); time.Now().Before(end); {
		mustWrite(t, r.nodes[rest[1]], "SET", "k", "v")
		time.Sleep(50 * time.Millisecond)
	}
	if st := r.nodes[l].Status(); !r.nodes[l].Leader() || st.Term != term {
		t.Fatalf("the removed node disrupted the region: leader %v, term %d -> %d", r.nodes[l].Leader(), term, st.Term)
	}
	if st := r.nodes[x].Status(); st.Term != term || st.State == "Leader" {
		t.Fatalf("the removed node: term %d (region's %d), state %s", st.Term, term, st.State)
	}
}
