// Package replication ships every region's effects to every other region
// over gRPC, so that regions accept writes independently and converge.
//
// Contract:
//
//   - A region's replication log (crdt.EffectLog) holds every batch of
//     effects it applied, its own and those received, in apply order. The
//     leader of each region streams that log to every peer region from the
//     first record the peer lacks, judged by the peer's version vector.
//     Apply order is causal order, so a peer can merge what it receives in
//     stream order; relaying what was received means a write that reached
//     any surviving region reaches all of them.
//   - The receiver proposes what it receives to its own region's Raft group
//     and acknowledges only after apply, with its version vector. The
//     vector lives in replicated state, so after a leader change on either
//     side a new stream resumes from it: nothing is lost, and nothing is
//     applied twice (merging skips what the vector covers).
//   - A peer that lacks something the log no longer holds (trimmed, or
//     brought here by a state transfer) catches up by state transfer: the
//     sender's keyspace snapshot in chunks, staged in the receiver's
//     replicated state and joined in one step, then streaming resumes.
//
// The logic is in two deterministic state machines, Sender and Receiver,
// driven by messages and ticks in the style of etcd-io/raft (Step, Ready);
// they do no I/O and read no clock. The gRPC adapter (Shipper, Service) is
// a thin layer over them, and simulations drive them over a simulated
// network instead (package simnet).
//
// This package does not import region: it declares the small interfaces it
// needs (Region, Log, State) and cmd wires a region.Node into them.
package replication
