package server

import (
	"context"
	"time"

	"concord/crdt"
)

// Region commands: READONLY, READWRITE, ROLE, REGION and WAITREGIONS
// (cmd_waitregions.go). They are what a
// client sees of the node being one member of a region's Raft group (a
// Store that implements Replica and ReadFencer); on a single node without
// Raft they answer as a standalone Redis master would.

// readFenceTimeout bounds how long a run of reads waits for the region to
// confirm the local view is current (a leader election takes about a
// second); past it the reads fail with a retryable error instead of
// hanging the connection.
const readFenceTimeout = 5 * time.Second

func regionCommands() []*command {
	return []*command{
		{name: "readonly", arity: 1, flags: flagsConnFast, cats: catsFastConn, run: cmdReadOnly},
		{name: "readwrite", arity: 1, flags: flagsConnFast, cats: catsFastConn, run: cmdReadWrite},
		{name: "role", arity: 1, flags: []string{"noscript", "loading", "stale", "fast"},
			cats: []string{"admin", "fast", "dangerous"}, run: cmdRole},
		{name: "region", arity: -2, flags: []string{"admin", "noscript", "loading", "stale"},
			cats: []string{"admin", "slow", "dangerous"}, run: cmdRegion},
		{name: "waitregions", arity: 3, flags: []string{"noscript"},
			cats: []string{"slow", "connection"}, run: cmdWaitRegions},
	}
}

// cmdReadOnly lets the connection read this node's local view without the
// read fence: possibly stale, but served without asking the leader, as
// READONLY lets a Redis Cluster client read from a replica. Redis answers it
// with an error outside cluster mode; Concord always accepts it.
func cmdReadOnly(c *client, args [][]byte) crdt.Reply {
	c.setReadOnly(true)
	return crdt.OK
}

// cmdReadWrite turns READONLY off: reads are fenced again.
func cmdReadWrite(c *client, args [][]byte) crdt.Reply {
	c.setReadOnly(false)
	return crdt.OK
}

func (c *client) setReadOnly(on bool) {
	c.mu.Lock()
	c.readonly = on
	c.mu.Unlock()
}

// standaloneRole is Redis 7.0's ROLE reply for a master without replicas
// that has not yet written a replication stream (offset 0).
var standaloneRole = crdt.Array(crdt.BulkString("master"), crdt.Int(0), crdt.Array())

func cmdRole(c *client, args [][]byte) crdt.Reply {
	if r := c.srv.replica; r != nil {
		return r.Role()
	}
	return standaloneRole
}

var errNoRegion = crdt.Err("ERR This instance has no region (single node without Raft)")

// cmdRegion hands "REGION <args...>" to the region. args stay valid only
// for the call, which is all Admin may rely on.
func cmdRegion(c *client, args [][]byte) crdt.Reply {
	r := c.srv.replica
	if r == nil {
		return errNoRegion
	}
	return r.Admin(c.srv.ctx(), args[1:])
}

// fenceReads runs the read fence before a run of reads, unless the
// connection sent READONLY or the store needs none. On failure it returns
// the reply every read of the run gets.
func (c *client) fenceReads() (crdt.Reply, bool) {
	f := c.srv.fencer
	if f == nil || c.readonly {
		return crdt.Reply{}, true
	}
	ctx, cancel := context.WithTimeout(c.srv.ctx(), readFenceTimeout)
	err := f.ReadFence(ctx)
	cancel()
	if err != nil {
		return readErrReply(err), false
	}
	return crdt.Reply{}, true
}

// helloRole is HELLO's "role": a follower of a region answers "replica",
// as a Redis replica does, so HELLO agrees with ROLE and INFO.
func (s *Server) helloRole() string {
	if s.replica != nil && !s.replica.Leader() {
		return "replica"
	}
	return "master"
}
