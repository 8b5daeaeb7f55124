package crdt

import (
	"errors"
	"fmt"
)

// Choosing the origin a replica's local writes carry.
//
// An origin is (region, incarnation), and a dot is (origin, seq) with seq
// taken from the version vector in apply. A replica that starts from empty
// state under an origin it (or an earlier copy of it) already used would
// reissue dots other replicas hold for other writes, and they would skip
// the new writes as duplicates. So a replica's origin is decided once, as
// part of its replicated state (FixOrigin), before it takes any write, and
// moved to a fresh one (a renewal) when the replica learns that its state
// is behind its own origin. Which incarnation to take, and refusing writes
// until one is taken, is the caller's part (the region's FSM).

// ErrOriginUsed is returned by SetOrigin and FixOrigin for an origin the
// state already holds ops of.
var ErrOriginUsed = errors.New("crdt: origin already has ops in this state")

// SetOrigin makes o the origin of local writes from now on. o must be the
// current origin (nothing changes) or one of which the keyspace has applied
// no op (its version vector has no entry for o), so o's dots start at 1 and
// never continue a sequence this state may know only part of. Ops of the
// previous origin stay what they are: ops of an origin that is now simply
// another one in the version vector, which later batches depend on like
// any other. It returns ErrOriginUsed (and changes nothing) otherwise.
func (ks *Keyspace) SetOrigin(o Origin) error {
	if o == ks.self {
		return nil
	}
	if seq := ks.vv.Get(o); seq > 0 {
		return fmt.Errorf("%w: %s at seq %d", ErrOriginUsed, o, seq)
	}
	ks.self = o
	return nil
}

// OriginFixed reports whether the replica's origin has been decided
// (FixOrigin). A replica made by NewReplica has not; one restored from a
// snapshot has if the snapshotted one had. Replicated state: every replica
// that applied the same inputs agrees.
func (r *Replica) OriginFixed() bool { return r.fixed }

// FixOrigin sets the origin of the replica's local writes to o
// (Keyspace.SetOrigin, so o must be fresh in this state or the current one)
// and records that the origin is decided. Called on a replica whose origin
// is fixed already it moves it to o (a renewal). Deterministic: a pure
// function of the replica and o. On error nothing changes.
func (r *Replica) FixOrigin(o Origin) error {
	if err := r.ks.SetOrigin(o); err != nil {
		return err
	}
	r.fixed = true
	return nil
}

// Replica snapshot flags (format 2).
const (
	flagOriginFixed   byte = 1 << 0
	replicaFlagsKnown      = flagOriginFixed
)

func (r *Replica) flags() byte {
	if r.fixed {
		return flagOriginFixed
	}
	return 0
}

// legacyFixed decides the flag for a state written before it existed
// (replica snapshot format 1): the state counts as fixed if its keyspace
// applied ops of its own origin (it has been taking writes under that
// origin, and keeps it), as not fixed otherwise (it never wrote, so
// deciding now costs nothing).
func legacyFixed(ks *Keyspace) bool { return ks.vv.Get(ks.self) > 0 }
