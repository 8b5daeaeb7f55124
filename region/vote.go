package region

import (
	"strconv"

	"github.com/hashicorp/raft"
)

// voteTransport restores the Raft dissertation's vote rule (§4.1: a server
// grants its vote without consulting its own configuration) on top of
// hashicorp/raft, which refuses votes and pre-votes to a candidate that is
// not a voter in the refusing node's latest configuration.
//
// That refusal deadlocks a region when its leader dies while a membership
// change is half replicated. Seen in TestMembershipChangeDuringPartitionAnd
// LeaderKill/ADD: voters l, a, b; the leader l appends the configuration
// adding j, replicates it (and later entries) to a and j but not to b, and
// dies. j, now a voter in its own configuration, has the longest log; a has
// the new configuration and a shorter log; b still has the old one and the
// shortest. a needs 3 of 4 votes and j refuses it (j's log is longer); b
// needs 2 of 3 and a refuses it (a's log is longer); j needs 3 of 4 and b
// refuses it because j is not in b's configuration. No candidate can win
// until l comes back, however long that takes. With the dissertation's rule
// b votes for j, j wins with j, a and b, and b learns the new configuration
// from it.
//
// Safety does not rest on the refusal: a candidate counts votes against
// its own latest configuration, and the configurations a single-server
// change produces have overlapping majorities whoever votes. What the
// refusal was for, keeping a removed or demoted server from disrupting the
// region, stays covered by the checks the votes still pass through: a node
// that has heard from a leader within HeartbeatTimeout refuses votes and
// pre-votes (which the leader's read lease counts on too, see read.go), and
// a candidate's log must be at least as up to date as the voter's.
//
// Votes: the candidate's id is cleared from RequestVote, which makes
// hashicorp/raft skip both membership checks (it treats the request as one
// from a server too old to send its id) and apply every other rule as
// before. Pre-votes: hashicorp/raft's requestPreVote always checks
// membership, so a pre-vote from a candidate that is not a voter in this
// node's latest configuration is answered here, with requestPreVote's
// other rules (known leader, term, log up to date). A pre-vote changes no
// state, so answering it from a view read a moment earlier is harmless.
type voteTransport struct {
	*raft.NetworkTransport
	n    *Node
	ch   chan raft.RPC
	done chan struct{}
}

func newVoteTransport(n *Node, tr *raft.NetworkTransport) *voteTransport {
	t := &voteTransport{NetworkTransport: tr, n: n, ch: make(chan raft.RPC), done: make(chan struct{})}
	go t.run()
	return t
}

// Consumer implements raft.Transport: Raft reads its RPCs from here.
func (t *voteTransport) Consumer() <-chan raft.RPC { return t.ch }

// close stops the relay; Raft must have shut down first.
func (t *voteTransport) close() {
	select {
	case <-t.done:
	default:
		close(t.done)
	}
}

func (t *voteTransport) run() {
	in := t.NetworkTransport.Consumer()
	for {
		var rpc raft.RPC
		select {
		case rpc = <-in:
		case <-t.done:
			return
		}
		switch req := rpc.Command.(type) {
		case *raft.RequestVoteRequest:
			req.ID = nil
		case *raft.RequestPreVoteRequest:
			if t.answerPreVote(rpc, req) {
				continue
			}
		}
		select {
		case t.ch <- rpc:
		case <-t.done:
			rpc.Respond(nil, raft.ErrTransportShutdown)
			return
		}
	}
}

// answerPreVote answers a pre-vote from a candidate that is not a voter in
// this node's latest configuration and reports whether it did; others go to
// Raft.
func (t *voteTransport) answerPreVote(rpc raft.RPC, req *raft.RequestPreVoteRequest) bool {
	select {
	case <-t.n.raftUp:
	case <-t.done:
		return false
	}
	r := t.n.raft
	if r == nil {
		return false
	}
	f := r.GetConfiguration()
	if f.Error() != nil {
		return false
	}
	cfg := f.Configuration()
	if len(cfg.Servers) == 0 {
		return false // no configuration: hashicorp/raft grants on its own
	}
	for _, s := range cfg.Servers {
		if string(s.ID) == string(req.ID) && s.Suffrage == raft.Voter {
			return false
		}
	}
	term := r.CurrentTerm()
	resp := &raft.RequestPreVoteResponse{
		RPCHeader: raft.RPCHeader{
			ProtocolVersion: raft.ProtocolVersionMax,
			ID:              []byte(t.n.id),
			Addr:            t.EncodePeer(raft.ServerID(t.n.id), t.LocalAddr()),
		},
		Term: term,
	}
	defer func() { rpc.Respond(resp, nil) }()
	candidate := t.DecodePeer(req.Addr)
	if leader, _ := r.LeaderWithID(); leader != "" && leader != candidate {
		return true
	}
	if req.Term < term {
		return true
	}
	if req.Term > term {
		resp.Term = req.Term
	}
	lastIdx, lastTerm := lastEntry(r)
	if lastTerm > req.LastLogTerm || lastTerm == req.LastLogTerm && lastIdx > req.LastLogIndex {
		return true
	}
	t.n.log.Debug("granted a pre-vote to a candidate outside this node's voters", "candidate", string(req.ID), "term", req.Term)
	resp.Granted = true
	return true
}

// lastEntry is hashicorp/raft's getLastEntry: the last log entry, or the
// last snapshot if the log holds nothing newer.
func lastEntry(r *raft.Raft) (index, term uint64) {
	st := r.Stats()
	u := func(k string) uint64 { v, _ := strconv.ParseUint(st[k], 10, 64); return v }
	index, term = u("last_log_index"), u("last_log_term")
	if si := u("last_snapshot_index"); si > index {
		index, term = si, u("last_snapshot_term")
	}
	return index, term
}
