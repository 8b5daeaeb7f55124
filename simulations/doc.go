// Package simulations is Concord's failure-simulation harness, deterministic
// mode: whole multi-region deployments of the real replication core
// (crdt.Replica, replication.Sender and Receiver) over a simulated network
// (replication/simnet), driven by one seed.
//
// Contract:
//
//   - A run is a pure function of its Options (scenario, seed, workload,
//     fault, write cap): virtual time, every delay, drop, duplicate,
//     reorder, partition, clock skew, leader change (with Raft entries in
//     flight, some lost, some new leaders restored from a snapshot),
//     region outage, backup restore and every write come from the seed.
//     Replaying the same Options gives the same events, byte for byte.
//   - Each region is one replicated state with an ordered apply queue
//     standing in for its Raft log (hashicorp/raft cannot run
//     deterministically); its leader's replication machinery restarts on
//     every leader change.
//   - Workloads (workload.go) are what users build: carts, leaderboards,
//     counters and rate limiters, follower sets, sessions with TTL, comment
//     indexes, and a mix of every write type.
//   - Checkers run at the end of every run, after heal and quiesce:
//     convergence (identical digests and version vectors in every live
//     region), nothing acknowledged lost (every write any region applied is
//     held by every live one), and the reference model (model.go): counters
//     equal to the acknowledged increments, add-wins sets, LWW values that
//     are the write with the greatest stamp. Invariants (HLC monotonicity,
//     dot contiguity) are checked as the run goes.
//   - A failing run reports its seed, the command that replays it, the keys
//     it is about and their history; Shrink looks for the same failure with
//     fewer writes.
//   - Faults (faults.go) are deliberately broken merges a run can turn on,
//     to show each is caught. Only this package can turn them on.
//
// cmd/concord-sim runs scenarios and sweeps and writes the report (text and
// a self-contained HTML page with plots); `make sim` runs the long sweep.
// Nothing in the product imports this package.
package simulations
