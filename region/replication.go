package region

import (
	"math"

	"concord/crdt"
	pb "concord/proto"
)

// The node's side of cross-region replication. The region's replicated
// state is a crdt.Replica: its keyspace, its replication log (every batch
// the region applied, its own writes and those merged from other regions,
// in apply order) and the state transfers it is receiving. Every node
// applies the same entries, so every node holds the same log and any node
// can ship it once it leads.
//
// Batches and chunks received from other regions are proposed as units of
// their own (a remote unit, a chunk unit) and take the same write path as
// client writes: group commit, forwarding from a follower to the leader,
// and the same failures (TRYAGAIN when provably not applied, in doubt when
// the leader was lost with the entry in flight). Merging is idempotent
// (a batch the version vector covers is a Duplicate), so a caller may
// resend anything whose outcome it does not know.

// Origin returns the origin this region's writes carry, as this node has
// applied it: the keyspace's, which the log decides (an incarnation unit
// fixes it when the region starts from empty state, RenewIncarnation moves
// it) and a restored snapshot carries. Until the origin is fixed (see
// OriginFixed) it is the configured one, which this version's writes never
// carry: apply refuses them until the fix. It changes then and at each
// renewal, so
// whatever is derived from it (a replication stream's handshake) should
// be re-read rather than kept. Safe from any goroutine; it takes the
// state's read lock briefly, so it must not be called from inside Read or
// ReplView.
func (n *Node) Origin() crdt.Origin {
	n.fsm.mu.RLock()
	defer n.fsm.mu.RUnlock()
	return n.fsm.rep.Keyspace().Origin()
}

// OriginFixed reports whether this node has applied the decision of the
// region's origin (crdt.Replica.OriginFixed). A region that started from
// empty state fixes it with its leader's first entry, one round trip after
// the election; writes applied before that are refused (TRYAGAIN). Same
// locking as Origin.
func (n *Node) OriginFixed() bool {
	n.fsm.mu.RLock()
	defer n.fsm.mu.RUnlock()
	return n.fsm.rep.OriginFixed()
}

// ReplView runs fn with the node's replica under the state's read lock:
// apply waits until fn returns, so fn must be short. fn must not modify the
// replica, must not call back into the node (the lock is not reentrant: a
// waiting apply would deadlock it) and must not keep references into the
// replica after it returns, except LogRecord.Data, which is never modified
// and may be kept and shipped as is. Any number of ReplView and Read calls
// run concurrently.
func (n *Node) ReplView(fn func(r *crdt.Replica)) {
	n.fsm.mu.RLock()
	defer n.fsm.mu.RUnlock()
	fn(n.fsm.rep)
}

// ProposeRemote proposes batches received from another region (encoded
// crdt.Batch, in the sender's log order) as one unit; every node of the
// region merges them in order (crdt.Replica.Merge) when the entry applies.
// The result holds one integer reply per batch, its crdt.MergeOutcome
// (Merged, Duplicate or Rejected), or Err if the unit was not applied
// (retryable: ErrNoLeader, ErrNotApplied) or its outcome is unknown
// (ErrInDoubt), or ErrShutdown.
//
// It may be called on any node and from any goroutine; it does not block.
// Units submitted from one goroutine, by ProposeRemote, ProposeChunk and
// ProposeUnits alike, are proposed in submission order (the order
// ProposeUnits keeps for a pipeline). A unit that fails may be followed by
// later units that did apply, so a caller resends from its first failure;
// a batch whose predecessor is missing is Rejected, not applied out of
// order. The batches must not be modified until the result is delivered.
// The whole unit goes into one Raft entry: keep it near 1 MiB.
func (n *Node) ProposeRemote(batches [][]byte) <-chan crdt.Result {
	if len(batches) == 0 {
		res := make(chan crdt.Result, 1)
		res <- crdt.Result{Replies: []crdt.Reply{}}
		return res
	}
	return n.proposeOne(&pb.Unit{Remote: batches})
}

// ProposeChunk proposes one piece of a state transfer from another region
// (bytes of its Keyspace.Snapshot, see crdt.Replica.StageChunk) as one
// unit. The result holds two integer replies, the bytes now staged for the
// transfer (0 once joined) and 1 if this chunk completed and joined the
// transfer (else 0), or a single error reply ("ERR ...") if the replica
// refused the chunk (out of order, or a final chunk whose state does not
// decode); Err as for ProposeRemote. The same concurrency and ordering
// contract as ProposeRemote: chunks of a transfer submitted in order from
// one goroutine are proposed in order; a chunk applied out of order is
// refused, not staged. c.Data must not be modified until the result is
// delivered.
func (n *Node) ProposeChunk(c crdt.Chunk) <-chan crdt.Result {
	return n.proposeOne(&pb.Unit{Chunk: &pb.TransferChunk{From: c.From, Id: c.ID, Offset: c.Offset, Data: c.Data, Final: c.Final}})
}

// ProposeFold proposes a garbage-collection unit: every node of the region
// runs crdt.Replica.Fold with the entry's stamp and this stable vector
// when it applies, folding up to maxItems counters, hash fields and
// sorted-set members whose pieces stable covers, and logs the fold op it
// issues (under the region's origin, like a write) for shipping to the
// other regions, which apply it when it arrives. stable must be causally
// stable (see crdt/fold.go); it is the caller's to compute. The result
// holds one integer reply, the number of items folded (0: nothing was
// foldable and no op was issued), or Err as for ProposeRemote. The same
// concurrency and ordering contract as ProposeRemote.
func (n *Node) ProposeFold(stable crdt.VersionVector, maxItems int) <-chan crdt.Result {
	if maxItems <= 0 || len(stable) == 0 {
		res := make(chan crdt.Result, 1)
		res <- crdt.Result{Replies: []crdt.Reply{crdt.Int(0)}}
		return res
	}
	return n.proposeOne(&pb.Unit{Fold: &pb.FoldUnit{Stable: foldStableToPB(stable), MaxItems: uint32(min(maxItems, math.MaxUint32))}})
}

// proposeOne submits one unit through the common write path.
func (n *Node) proposeOne(u *pb.Unit) <-chan crdt.Result {
	res := make(chan crdt.Result, 1)
	n.submitUnits([]*pb.Unit{u}, func(r []crdt.Result) { res <- r[0] })
	return res
}

// Progress returns the index of the last Raft entry this node applied and
// a channel closed when that index next advances or a snapshot is
// restored (then the replica was replaced whole: re-read what was derived
// from it). Safe from any goroutine, cheap (no state lock). Typical use:
// read the state, then wait on the channel and read again. After the node
// stops, the channel is never closed: select on a stop signal too.
func (n *Node) Progress() (applied uint64, changed <-chan struct{}) {
	f := n.fsm
	f.progressMu.Lock()
	ch := f.progress
	f.progressMu.Unlock()
	// Read after the channel: an advance stores applied before closing
	// the channel, so an index read here never misses its close.
	return f.applied.Load(), ch
}

// LeaderWatch reports whether this node leads its region now (as Raft last
// notified it; false once the node is stopping) and a channel closed at
// the next change of that: when it becomes leader or stops leading. Safe
// from any goroutine. Work that must run only on the leader (shipping the
// replication log to other regions) starts when it reads true and stops
// when the channel closes, then calls LeaderWatch again. A node that has
// just become leader may still be applying entries of earlier terms (its
// log then lags what the previous leader shipped; shipping is idempotent,
// and Ready reports when it has caught up).
func (n *Node) LeaderWatch() (leader bool, changed <-chan struct{}) {
	n.leadingMu.Lock()
	defer n.leadingMu.Unlock()
	return n.leading, n.leadingCh
}

// setLeading records a leadership notification; a stopping node never
// leads. closing is read under the lock, so a notification handled
// concurrently with Close cannot leave leading set after it.
func (n *Node) setLeading(v bool) {
	n.leadingMu.Lock()
	defer n.leadingMu.Unlock()
	v = v && !n.closing.Load()
	if v == n.leading {
		return
	}
	n.leading = v
	close(n.leadingCh)
	n.leadingCh = make(chan struct{})
}
