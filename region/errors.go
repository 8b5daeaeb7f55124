package region

import (
	"errors"
	"strings"
)

// Error is a write-path or read-path failure with the Redis error reply a
// client should see. It satisfies server.RedisError.
type Error struct{ text string }

func (e *Error) Error() string      { return "region: " + e.text }
func (e *Error) RedisError() string { return e.text }

// Retryable reports whether the failure provably left no trace, so the
// client may send the command again (TRYAGAIN).
func (e *Error) Retryable() bool { return strings.HasPrefix(e.text, "TRYAGAIN ") }

var (
	// ErrNoLeader: no leader could be reached in time. Nothing was applied.
	ErrNoLeader = &Error{"TRYAGAIN no leader in this region (election in progress or quorum lost); retry"}
	// ErrNotApplied: the entry holding the write was overwritten by a new
	// leader; the write was not applied.
	ErrNotApplied = &Error{"TRYAGAIN the region's leader changed before the write committed; it was not applied, retry"}
	// ErrInDoubt: leadership was lost with the write in flight and its
	// fate could not be learned in time: it may or may not be applied.
	ErrInDoubt = &Error{"ERR the region's leader changed with the write in flight; it may or may not have been applied"}
	// ErrOriginNotFixed: the region has not decided its origin yet (it
	// has just started from empty state and its leader is taking a new
	// incarnation, one round trip); the write was not applied.
	ErrOriginNotFixed = &Error{"TRYAGAIN the region is taking a new incarnation (it started from empty state); the write was not applied, retry"}
	// ErrShutdown: the node is shutting down.
	ErrShutdown = &Error{"ERR server is shutting down"}
)

// errText renders any error as a Redis error reply text.
func errText(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.text
	}
	return "ERR " + err.Error()
}
