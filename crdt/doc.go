// Package crdt is Concord's deterministic core: CRDT value types, the keyspace
// state machine and the effect encoding that crosses regions.
//
// Contract:
//
//   - Apply is the only way a local write changes state. It takes a stamped
//     command (leader HLC time and a randomness seed) and returns the Redis
//     reply plus a Batch of effects. Every node that applies the same stamped
//     commands in the same order computes the same replies, the same effects
//     and the same state.
//   - Merge is the only way a remote write changes state. It takes a Batch
//     produced by another origin and applies its effects. Batches of one
//     origin must arrive in sequence order and after the batches they depend
//     on (Batch.Deps); the replication layer guarantees this and Merge checks
//     it. A batch already covered by the version vector is skipped, so
//     duplicates are harmless.
//   - Join merges a whole remote state (snapshot catch-up). It is
//     commutative, associative and idempotent.
//   - A unit that starts with a guard (GuardCommand, watch.go) runs only if
//     no key it watches changed since its WATCH, judged against per-key
//     versions that are part of the replicated state; otherwise it
//     produces no effect.
//   - Reads never mutate. Expired keys look absent to reads; they are removed
//     only by a stamped write (a sweep or the first write that touches them).
//
// The package owns no goroutines, reads no clock and uses no global
// randomness: time and randomness arrive inside Stamp. Map iteration order
// never reaches replies, effects or encodings.
//
// Conflict semantics (docs/semantics.md has the user-facing version): every
// piece of content carries the Tag of the write that made it (HLC time and a
// dot). Removal is observed-remove: a remove issued with a causal Context
// drops exactly the tags that context covers, so concurrent writes the remover
// had not seen survive. Single-valued things (string values, hash values,
// scores, TTLs) are multi-value registers whose visible value is the one with
// the greatest tag (last writer wins); increments are kept per dot and added
// to the register's value, so concurrent increments add up and an overwrite
// removes only the increments it observed.
package crdt
