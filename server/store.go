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
type Result struct {
	Replies []crdt.Reply
	Err     error
}

// Write-path errors.
var (
	// ErrClosed is returned for proposals made after the store was closed,
	// or still pending when it closed.
	ErrClosed = errors.New("server: store closed")
)
