// Package region runs one region's Raft group: hashicorp/raft with a
// raft-wal log, file snapshots and a TCP (optionally mutual-TLS) transport,
// and a thin FSM over crdt.Replica.
//
// Contract:
//   - Every write is a unit of commands; many units from all connections are
//     packed into one log entry (group commit) stamped by the leader with its
//     clock and a seed, so apply is a pure function of the log on every node.
//   - A write is answered only after its entry is committed by a quorum and
//     applied; in the default durability mode the quorum has it on disk.
//   - Any node accepts writes: followers forward them to the leader over the
//     Raft port. A write whose outcome cannot be known (the leader died with
//     it in flight) is reported as such, never as a retryable failure;
//     failures that provably left no trace are retryable (TRYAGAIN).
//   - ReadFence makes the local view reflect every write acknowledged before
//     it was called (a leader lease, a quorum check, or the leader's applied
//     index for followers), so reads are linearizable within the region.
package region
