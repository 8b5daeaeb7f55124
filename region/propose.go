package region

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/hashicorp/raft"
	gproto "google.golang.org/protobuf/proto"

	"concord/crdt"
	pb "concord/proto"
)

// Propose implements server.Store.
func (n *Node) Propose(ctx context.Context, cmds []crdt.Command) ([]crdt.Reply, error) {
	ch := n.ProposeUnits([][]crdt.Command{cmds})
	select {
	case r := <-ch:
		return r[0].Replies, r[0].Err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// ProposeUnits implements server.Pipeliner. The units go to the batcher in
// order; a pipeline longer than one entry holds is split into consecutive
// submissions, which the batcher proposes in order.
func (n *Node) ProposeUnits(units [][]crdt.Command) <-chan []crdt.Result {
	pbs := make([]*pb.Unit, len(units))
	for i, u := range units {
		pbs[i] = &pb.Unit{Commands: commandsToPB(u)}
	}
	res := make(chan []crdt.Result, 1)
	n.submitUnits(pbs, func(r []crdt.Result) { res <- r })
	return res
}

// submitUnits is the write path every proposal takes (client pipelines,
// remote batches, transfer chunks): it names the units (proposer, id),
// splits them into submissions of at most maxEntryUnits and queues those
// for the batcher in order, then calls done once with every unit's result.
// Units submitted by one goroutine therefore reach the batcher, and the
// leader, in the order submitted, whichever kind they are.
func (n *Node) submitUnits(units []*pb.Unit, done func([]crdt.Result)) {
	if n.closing.Load() {
		out := make([]crdt.Result, len(units))
		for i := range out {
			out[i].Err = ErrShutdown
		}
		done(out)
		return
	}
	start := time.Now()
	chunks := (len(units) + maxEntryUnits - 1) / maxEntryUnits
	var (
		mu   sync.Mutex
		all  = make([]crdt.Result, len(units))
		left = chunks
	)
	for c := 0; c < chunks; c++ {
		lo, hi := c*maxEntryUnits, min((c+1)*maxEntryUnits, len(units))
		s := &submission{units: units[lo:hi:hi], start: start, deadline: start.Add(inDoubtWait)}
		for _, u := range s.units {
			u.Proposer, u.Id = n.id, n.unitID.Add(1)
		}
		if chunks == 1 {
			s.done = func(r []crdt.Result) {
				n.cfg.Metrics.observeCommit(time.Since(start))
				done(r)
			}
		} else {
			s.done = func(r []crdt.Result) {
				mu.Lock()
				copy(all[lo:], r)
				left--
				last := left == 0
				mu.Unlock()
				if last {
					n.cfg.Metrics.observeCommit(time.Since(start))
					done(all)
				}
			}
		}
		n.reg.add(s)
		n.submit(s)
	}
}

// submit queues s for the batcher.
func (n *Node) submit(s *submission) {
	select {
	case n.in <- s:
	case <-n.stop:
		n.finish(s, ErrShutdown)
	}
}

// finish fails s: a forwarded submission tells its follower, a local one
// resolves its waiters. A forwarded write this node refuses because it is
// stopping is sent back as not led here: the follower's client must not
// see this node's shutdown, and the follower sends it to the next leader.
func (n *Node) finish(s *submission, err error) {
	if s.remote != nil {
		n.reg.drop(s)
		if err == ErrShutdown {
			s.remote.notLeader()
		} else {
			s.remote.fail(err)
		}
		return
	}
	n.reg.fail(s, err)
}

// batchLoop is group commit: it packs the submissions waiting when it
// wakes into one entry, proposes it if a slot is free, and otherwise keeps
// packing until one frees up, so the batch grows with the load.
func (n *Node) batchLoop() {
	defer n.wg.Done()
	var (
		group        []*submission
		units, bytes int
	)
	add := func(s *submission) {
		group = append(group, s)
		units += len(s.units)
		for _, u := range s.units {
			bytes += unitBytes(u)
		}
	}
	full := func() bool { return units >= maxEntryUnits || bytes >= maxEntryBytes }
	for {
		if len(group) == 0 {
			select {
			case s := <-n.in:
				add(s)
			case <-n.stop:
				return
			}
		}
	drain:
		for !full() {
			select {
			case s := <-n.in:
				add(s)
			default:
				break drain
			}
		}
		if n.raft.State() != raft.Leader {
			for _, s := range group {
				n.routeAway(s)
			}
			group, units, bytes = group[:0], 0, 0
			continue
		}
	wait:
		for {
			if full() {
				select {
				case n.slots <- struct{}{}:
					break wait
				case <-n.stop:
					return
				}
			}
			select {
			case n.slots <- struct{}{}:
				break wait
			case s := <-n.in:
				add(s)
			case <-n.stop:
				return
			}
		}
		n.proposeEntry(group)
		group, units, bytes = nil, 0, 0
	}
}

// route sends a submission that this node cannot propose to where it can
// go: forwarded writes back to their follower, local ones to the leader or,
// with no leader known, into the parking lot.
func (n *Node) route(s *submission) {
	if s.remote != nil {
		n.reg.drop(s)
		s.remote.notLeader()
		return
	}
	if n.raft.State() == raft.Leader {
		if n.reg.release(s) {
			n.submit(s)
		}
		return
	}
	n.routeAway(s)
}

// routeAway is route for the batcher itself, which must not queue to
// itself: a node that just became leader finds the work parked and
// resubmits it within a tick.
func (n *Node) routeAway(s *submission) {
	if s.remote != nil {
		n.reg.drop(s)
		s.remote.notLeader()
		return
	}
	if addr, id := n.raft.LeaderWithID(); addr != "" && string(id) != n.id {
		n.fwd.send(s)
		return
	}
	n.park(s)
}

// proposeEntry stamps and proposes one entry; a goroutine waits for raft's
// verdict. Replies arrive through apply; this only handles failures.
func (n *Node) proposeEntry(group []*submission) {
	n.awaitStarted()
	n.rngMu.Lock()
	seed := n.rng.Uint64()
	n.rngMu.Unlock()
	term := n.raft.CurrentTerm()
	e := &pb.Entry{Time: uint64(crdt.HLCFromMillis(n.cfg.Clock().UnixMilli())), Seed: seed, Term: term, Gated: true}
	kept := group[:0]
	for _, s := range group {
		if s.remote != nil && s.remoteTerm != 0 && s.remoteTerm != term {
			// Forwarded in another term: the follower counts on it being
			// applied in that term or never, so it goes back unproposed.
			n.reg.drop(s)
			s.remote.notLeader()
			continue
		}
		kept = append(kept, s)
	}
	group = kept
	if len(group) == 0 {
		<-n.slots
		return
	}
	kept = group[:0]
	for _, s := range group {
		if !n.reg.claim(s, term) {
			continue // answered already (deadline or a later term): never propose it
		}
		kept = append(kept, s)
		e.Units = append(e.Units, s.units...)
	}
	group = kept
	if len(group) == 0 {
		<-n.slots
		return
	}
	// Format 2 only when a unit needs it: a region that never replicates
	// keeps writing what nodes of the previous version read.
	e.Format = entryFormat(e.Units)
	data, err := gproto.Marshal(e)
	if err != nil { // cannot happen for these messages; fail loudly anyway
		<-n.slots
		for _, s := range group {
			n.finish(s, &Error{"ERR cannot encode log entry: " + err.Error()})
		}
		return
	}
	n.cfg.Metrics.observeEntry(len(e.Units), len(data))

	f := n.raft.Apply(data, 0)
	go func() {
		err := f.Error()
		<-n.slots
		if err == nil {
			return // apply delivers the replies
		}
		idx := f.Index()
		appended := idx != 0 && !errors.Is(err, raft.ErrNotLeader) && !errors.Is(err, raft.ErrLeadershipTransferInProgress)
		for _, s := range group {
			switch {
			case !appended && errors.Is(err, raft.ErrRaftShutdown):
				n.finish(s, ErrShutdown)
			case !appended:
				// Never reached the log: safe to send elsewhere.
				n.route(s)
			case s.remote != nil:
				n.reg.drop(s)
				s.remote.inDoubt(idx)
			default:
				n.cfg.Metrics.failed("in_doubt_watch", len(s.units))
				n.reg.watch(s, idx)
			}
		}
	}()
}

// park holds a submission until a leader is known, or fails it with
// TRYAGAIN once it has waited noLeaderWait.
func (n *Node) park(s *submission) {
	if !n.reg.release(s) {
		return
	}
	if s.parkedAt.IsZero() {
		s.parkedAt = time.Now()
	}
	n.parkMu.Lock()
	n.parked = append(n.parked, s)
	n.parkMu.Unlock()
}

func (n *Node) parkLoop() {
	defer n.wg.Done()
	t := time.NewTicker(20 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-n.stop:
			return
		case <-t.C:
		case <-n.wake:
		}
		n.parkMu.Lock()
		parked := n.parked
		n.parked = nil
		n.parkMu.Unlock()
		if len(parked) == 0 {
			continue
		}
		addr, _ := n.raft.LeaderWithID()
		now := time.Now()
		for _, s := range parked {
			switch {
			case addr != "" || n.raft.State() == raft.Leader:
				n.submit(s)
			case now.Sub(s.parkedAt) > noLeaderWait:
				n.cfg.Metrics.failed("no_leader", len(s.units))
				n.finish(s, ErrNoLeader)
			default:
				n.parkMu.Lock()
				n.parked = append(n.parked, s)
				n.parkMu.Unlock()
			}
		}
	}
}
