package region

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/hashicorp/raft"

	pb "concord/proto"
)

// Linearizable reads. A read must see every write acknowledged before it
// started. The leader serves it after (1) its barrier for the term has
// applied all earlier terms' entries, (2) it knows it is still leader, and
// (3) its state has applied everything committed when the read arrived
// (the read index). For (2) it holds a lease: each time a quorum answers a
// VerifyLeader round started at t0, no other node can be elected before
// t0 + HeartbeatTimeout, because hashicorp/raft followers refuse votes while
// they have heard from a leader within that time; the lease is half that,
// leaving room for clock-rate drift and scheduling. Without a valid lease
// the read waits for a fresh round. A follower asks the leader for the read
// index and waits until it has applied that far.

var errNotLeader = errors.New("region: not the leader")

type leaseState struct {
	mu      sync.Mutex
	until   time.Time // lease end (monotonic clock)
	term    uint64    // term the lease and readiness belong to
	ready   bool      // barrier done for term
	paused  bool      // a leadership transfer is under way: no new leases
	readyCh chan struct{}

	waiters []chan error // reads waiting for the next verify round
	running bool
}

func newLeaseState() *leaseState { return &leaseState{readyCh: make(chan struct{})} }

// reset drops the lease and readiness (leadership changed).
func (l *leaseState) reset() {
	l.mu.Lock()
	l.until = time.Time{}
	l.ready = false
	l.term = 0
	l.readyCh = make(chan struct{})
	l.mu.Unlock()
}

func (l *leaseState) pause(p bool) {
	l.mu.Lock()
	l.paused = p
	if p {
		l.until = time.Time{}
	}
	l.mu.Unlock()
}

func (l *leaseState) setReady(term uint64) {
	l.mu.Lock()
	if !l.ready {
		l.ready, l.term = true, term
		close(l.readyCh)
	}
	l.mu.Unlock()
}

func (l *leaseState) readyFor(term uint64) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.ready && l.term == term
}

// leaseDuration is how long a verify round's answer keeps the lease.
func (n *Node) leaseDuration() time.Duration { return n.cfg.Timing.HeartbeatTimeout / 2 }

// leaseLoop renews the lease ahead of its end while this node leads, so
// reads rarely wait for a round.
func (n *Node) leaseLoop() {
	defer n.wg.Done()
	t := time.NewTicker(n.leaseDuration() / 3)
	defer t.Stop()
	for {
		select {
		case <-n.stop:
			return
		case <-t.C:
			if n.raft.State() == raft.Leader && n.lease.readyFor(n.raft.CurrentTerm()) {
				n.renewLease()
			}
		}
	}
}

// renewLease starts a verify round unless one is running.
func (n *Node) renewLease() { n.verifyRound(nil) }

// verifyRound adds a waiter (nil: none) to the next round of VerifyLeader
// and starts rounds until no waiter is left. A waiter joins a round that
// starts after it arrived, so the round's answer is about a moment after
// the read began.
func (n *Node) verifyRound(ch chan error) {
	l := n.lease
	l.mu.Lock()
	if ch != nil {
		l.waiters = append(l.waiters, ch)
	}
	if l.running {
		l.mu.Unlock()
		return
	}
	l.running = true
	l.mu.Unlock()
	go func() {
		for {
			l.mu.Lock()
			waiters := l.waiters
			l.waiters = nil
			l.mu.Unlock()
			term := n.raft.CurrentTerm()
			t0 := time.Now()
			err := n.raft.VerifyLeader().Error()
			l.mu.Lock()
			if err == nil && !l.paused && l.ready && l.term == term && n.raft.CurrentTerm() == term {
				l.until = t0.Add(n.leaseDuration())
			} else if err == nil {
				err = errNotLeader
			}
			more := len(l.waiters) > 0
			if !more {
				l.running = false
			}
			l.mu.Unlock()
			for _, w := range waiters {
				w <- err
			}
			if !more {
				return
			}
		}
	}()
}

// leaderReadIndex returns an index such that once applied, the local
// state holds every write acknowledged before the call.
func (n *Node) leaderReadIndex(ctx context.Context) (uint64, error) {
	if n.raft.State() != raft.Leader {
		return 0, errNotLeader
	}
	l := n.lease
	term := n.raft.CurrentTerm()
	l.mu.Lock()
	readyCh := l.readyCh
	l.mu.Unlock()
	select {
	case <-readyCh:
	case <-ctx.Done():
		return 0, ErrNoLeader
	}
	// The commit index read after the barrier, before confirming
	// leadership, covers every write acknowledged so far.
	idx := n.raft.CommitIndex()
	l.mu.Lock()
	valid := l.ready && l.term == term && !l.paused && time.Now().Before(l.until)
	l.mu.Unlock()
	if valid {
		n.cfg.Metrics.fence("lease")
		return idx, nil
	}
	ch := make(chan error, 1)
	n.verifyRound(ch)
	select {
	case err := <-ch:
		if err != nil {
			return 0, errNotLeader
		}
		n.cfg.Metrics.fence("verify")
		return idx, nil
	case <-ctx.Done():
		return 0, ErrNoLeader
	}
}

// ReadFence implements server.ReadFencer.
func (n *Node) ReadFence(ctx context.Context) error {
	if n.closing.Load() {
		return ErrShutdown
	}
	if n.unsafeSkipReadFence.Load() {
		return nil
	}
	deadline := time.Now().Add(noLeaderWait)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	ctx, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()
	for {
		var idx uint64
		var err error
		if n.raft.State() == raft.Leader {
			idx, err = n.leaderReadIndex(ctx)
		} else {
			idx, err = n.followerReadIndex(ctx)
		}
		if err == nil {
			if !n.fsm.waitApplied(idx, ctx.Done()) {
				return ErrNoLeader
			}
			return nil
		}
		if ctx.Err() != nil {
			return ErrNoLeader
		}
		// Leadership moved or no leader yet: try again shortly.
		select {
		case <-time.After(10 * time.Millisecond):
		case <-ctx.Done():
			return ErrNoLeader
		}
	}
}

func (n *Node) followerReadIndex(ctx context.Context) (uint64, error) {
	addr, id := n.raft.LeaderWithID()
	if addr == "" || string(id) == n.id {
		return 0, ErrNoLeader
	}
	r, err := n.fwd.call(ctx, &pb.Forward{Op: pb.Forward_OP_READ_INDEX})
	if err != nil {
		return 0, err
	}
	if r.Status != pb.ForwardReply_STATUS_OK {
		return 0, errNotLeader
	}
	n.cfg.Metrics.fence("leader_index")
	return r.Index, nil
}
