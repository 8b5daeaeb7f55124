// Package server is Concord's RESP front end: it accepts Redis clients,
// parses their requests, runs connection and server commands itself and hands
// data commands to the crdt engine through a Store.
//
// Contract:
//
//   - Writes go through Store.Propose (or Pipeliner.ProposeUnits): each
//     command is one atomic, stamped unit applied by the write path; the
//     reply is sent only once the unit is applied. Pipelined commands of one
//     connection keep their order: consecutive writes are submitted without
//     waiting for each other, and any other command first waits for the
//     writes before it, so a connection always reads its own writes.
//   - Reads run through Store.Read against a consistent view, at the node's
//     wall clock (never earlier than the latest applied write), which only
//     decides what has expired.
//   - The server itself adds no time or randomness to the state machine;
//     the Store's stamp does (LocalStore: wall clock and a seeded generator).
//   - Replies and error texts are Redis 7.0's (Debian's redis-server 7.0.15
//     is the reference), in RESP2 or RESP3 as the client chose with HELLO.
//     crdt.Reply values are rendered to the wire in one place (reply.go),
//     and Go errors are translated to RESP errors in one place (errReply).
//
// Requests are parsed by reader.go, which follows Redis's own parser and
// enforces its limits (proto-max-bulk-len, multibulk length, the limits for
// unauthenticated clients, client-query-buffer-limit); replies are written
// with redcon's append functions. Each connection is served by one goroutine
// that reads a batch of pipelined commands, executes them in order and
// writes their replies together.
package server
