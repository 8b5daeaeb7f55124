package region

import (
	"context"

	"concord/crdt"
	pb "concord/proto"
)

// Leader queries: questions only the leader can answer, because they are
// about state the leader alone keeps outside the replicated state machine
// (what its shippers learned of other regions). The owner of the node
// registers a handler; any node asks, a follower through its forwarding
// connection (OP_QUERY), so a client connected to a follower gets the
// leader's answer.

// QueryHandler answers a leader query. It runs on the leader, on a
// goroutine of its own per query, and must return promptly (a forwarded
// query holds a slot on the forwarding connection only while it runs, but
// the asking node waits for it): it reads, it does not wait for events.
type QueryHandler func(args [][]byte) crdt.Reply

// SetQueryHandler registers the handler leader queries run (nil removes
// it). Safe from any goroutine.
func (n *Node) SetQueryHandler(h QueryHandler) {
	if h == nil {
		n.query.Store(nil)
		return
	}
	n.query.Store(&h)
}

// errNoQueryHandler answers a query on a leader that registered none.
var errNoQueryHandler = crdt.Err("ERR this region's leader answers no queries")

// runQuery runs the local handler.
func (n *Node) runQuery(args [][]byte) crdt.Reply {
	h := n.query.Load()
	if h == nil {
		return errNoQueryHandler
	}
	return (*h)(args)
}

// QueryLeader runs args through the leader's query handler: here if this
// node leads, else on the leader through forwarding. The error is
// ErrNoLeader when no leader answered (retry later), or ctx's.
func (n *Node) QueryLeader(ctx context.Context, args [][]byte) (crdt.Reply, error) {
	if n.Leader() {
		return n.runQuery(args), nil
	}
	r, err := n.fwd.call(ctx, &pb.Forward{Op: pb.Forward_OP_QUERY, Args: args})
	if err != nil {
		return crdt.Reply{}, err
	}
	if r.Status != pb.ForwardReply_STATUS_OK {
		return crdt.Reply{}, ErrNoLeader
	}
	return replyFromPB(r.Reply), nil
}
