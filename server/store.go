package server

import (
	"context"
	"errors"

	"concord/crdt"
)

// Store is the write path and the read view the server drives. The Raft
// region implements it for a replicated node; LocalStore implements it for a
// single process.
//
// Concurrency: every method may be called from many goroutines at once.
// Proposals submitted by one goroutine are applied in the order it submitted
// them (pipelined commands of one connection keep their order).
type Store interface {
	// Propose applies cmds as one atomic, stamped unit through the write
	// path and returns a reply per command once applied. If ctx ends first
	// the outcome is unknown: the unit may still be applied later.
	Propose(ctx context.Context, cmds []crdt.Command) ([]crdt.Reply, error)
	// Read runs fn against a consistent view of the keyspace; fn must not
	// keep references to anything it reaches through ks, and must not call
	// back into the Store.
	Read(fn func(ks *crdt.Keyspace))
}

// Pipeliner is implemented by a Store that can take several units in one
// submission, so that the server can hand over a pipeline of writes at once
// and let the write path batch them (group commit). Each unit is still its
// own atomic, stamped unit; the units of one call are applied in order, and
// after the units the same goroutine submitted before. The channel receives
// exactly one value: a Result per unit, in order, once all are applied.
type Pipeliner interface {
	ProposeUnits(units [][]crdt.Command) <-chan []Result
}

// Result is the outcome of one unit.
type Result = crdt.Result

// ReadFencer is implemented by a replicated Store whose local view can lag
// behind writes acknowledged elsewhere (a follower, or a leader that may
// have been deposed). ReadFence returns once the view Read gives reflects
// every write acknowledged before the call, or an error saying why it
// cannot (no leader: a RedisError the client may retry). The server calls it
// before a connection's reads unless the connection sent READONLY.
type ReadFencer interface {
	ReadFence(ctx context.Context) error
}

// Replica is implemented by a Store that is one node of a replicated group
// (a region's Raft group). The server uses it for ROLE, INFO, the REGION
// admin command and to run background writes (active expiry) on the leader
// only.
type Replica interface {
	// Leader reports whether this node currently leads its group.
	Leader() bool
	// Role answers the ROLE command.
	Role() crdt.Reply
	// InfoFields returns the fields the store adds to an INFO section
	// ("replication", "persistence"), in order; nil for none.
	InfoFields(section string) [][2]string
	// Admin runs "REGION <args...>": membership and leadership commands.
	Admin(ctx context.Context, args [][]byte) crdt.Reply
}

// RedisError is an error that carries the Redis error reply a client should
// see ("TRYAGAIN ...", "ERR ..."), code included.
type RedisError interface {
	error
	RedisError() string
}

// Write-path errors.
var (
	// ErrClosed is returned for proposals made after the store was closed,
	// or still pending when it closed.
	ErrClosed = errors.New("server: store closed")
)

// PeerRegions is implemented by a Store whose region replicates with other
// regions (WAITREGIONS).
type PeerRegions interface {
	// PeerApplied returns, for each peer region, the version vector that
	// region last reported to this region's leader as applied there (its
	// acknowledgements); nil for a region without peers. A follower asks
	// its leader. An error means no leader answered (retry later).
	PeerApplied(ctx context.Context) ([]crdt.VersionVector, error)
}
