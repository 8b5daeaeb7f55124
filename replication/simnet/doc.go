// Package simnet is a deterministic simulated network for driving
// replication's Sender and Receiver (and anything else built as a state
// machine) without sockets, goroutines or a wall clock.
//
// Contract:
//
//  1. Time is virtual, in milliseconds, starting at 0. It advances only when
//     the caller runs the network (Step, RunUntil, RunFor); Now reports it.
//  2. Everything random (delays, jitter, drops, duplicates, reordering,
//     breaks) comes from the one *rand.Rand passed to New, consumed in the
//     order the caller's calls and the deliveries happen. The network keeps
//     no other state that depends on map iteration order, so the same seed
//     and the same calls give the same deliveries, byte for byte.
//  3. Endpoints are names. Attach registers the Handler that receives an
//     endpoint's deliveries; deliveries to an unattached name are dropped.
//     Handlers run synchronously inside Step, one at a time, and may call
//     any method of the Net (send, dial, close, partition, set timers).
//  4. Deliveries happen in (time, scheduling order): two deliveries due at
//     the same millisecond are handed over in the order they were scheduled.
//  5. A link is the one-way path from one endpoint to another. Its Link
//     settings (SetDefault, SetLink, SetLinks) give a one-way delay plus
//     uniform jitter, drop and duplicate probabilities, a probability of
//     reordering (an extra delay of up to ReorderMs) and a probability that
//     a message breaks the connection carrying it.
//  6. Partition(a, b) cuts both directions between a and b, Isolate(x)
//     cuts x from everyone (including endpoints attached later); Heal,
//     Rejoin and HealAll undo them. A message is delivered only if its link
//     is up both when it is sent and when it arrives.
//  7. Datagrams (Send) are independent messages: each is subject to the
//     link's delay, jitter, drop, duplication and reordering.
//  8. A Conn models a stream (a gRPC bidirectional stream over TCP) between
//     a dialer and an acceptor. Dial fails with ErrUnreachable if the link
//     is cut. The acceptor learns of a Conn from its first message. Jitter
//     never reorders a Conn: a message never arrives before one sent
//     earlier in the same direction. In Reliable mode a Conn delivers each
//     direction in order, without loss or duplication, until it ends; the
//     drop, duplicate and reorder settings do not apply (the transport
//     would retransmit), only delay, jitter and Break. In Hostile mode they
//     apply inside the Conn, as a broken transport or a buggy proxy would:
//     a dropped message vanishes, a duplicated one also arrives a second
//     time later, a reordered one is held back and overtaken; the others
//     still arrive in order.
//  9. A Conn ends when an end closes it (Close), when a partition or
//     isolation cuts its link, or when a message breaks it. From then on
//     nothing more is delivered on it, in either direction, including
//     messages already in flight, and every end that did not close it gets
//     exactly one Closed delivery: after the one-way delay for a Close by
//     the other end or a break, after the detection delay (SetDetect) for a
//     cut. An end may be told of the end while it still sends: sending on
//     an ended Conn returns ErrClosed and does nothing.
//  10. Timers (At, After) deliver a Timer to an endpoint at a virtual time;
//     they ignore partitions (they are local) and cannot be cancelled, so a
//     handler that no longer wants one ignores it.
//
// Net is not safe for concurrent use; a simulation is single-threaded by
// construction.
package simnet
