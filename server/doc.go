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
//   - A transaction's queued data commands (MULTI ... EXEC) are one unit,
//     applied atomically and shipped to other regions as one batch; WATCH
//     is checked in apply by a guard at the head of that unit (multi.go,
//     docs/transactions.md).
//   - Reads run through Store.Read against a consistent view, at the node's
//     wall clock (never earlier than the latest applied write), which only
//     decides what has expired. If the Store is a ReadFencer (a region's
//     node), each run of a connection's data reads (GET, MGET, DBSIZE, SCAN,
//     ...) first waits for ReadFence, at most 5 s, and every read of the run
//     gets its error if it fails ("TRYAGAIN ..."); a connection that sent
//     READONLY skips the fence and may read stale data. INFO is not fenced.
//   - If the Store is a Replica (a region's node), ROLE, the INFO
//     replication section and HELLO's role come from the region, INFO
//     persistence adds its fields, REGION runs its admin commands, and only
//     the leader runs the active expiry sweep. Both interfaces are asserted
//     once, in New.
//   - PUBLISH is not a write: if the Store is a Publisher, it goes through
//     the Store to the other nodes (which hand it back to this server's
//     delivery); otherwise it reaches this server's subscribers only
//     (pubsub.go, docs/pubsub.md).
//   - Blocking commands (block.go, docs/blocking.md) block the client,
//     never apply: if the Store is a WriteNotifier, apply reports the keys
//     writes gave content to, and one goroutine proposes each blocked
//     client's pop, FIFO per key, as an ordinary write of the command's
//     non-blocking form (ZMPOP, LMPOP, LMOVE) in the client's database.
//     XREAD BLOCK takes nothing, so its readers are served by re-reading
//     the local view instead (xread.go).
//   - The server itself adds no time or randomness to the state machine;
//     the Store's stamp does (LocalStore: wall clock and a seeded generator).
//   - Replies and error texts are Redis 7.0's (Debian's redis-server 7.0.15
//     is the reference), in RESP2 or RESP3 as the client chose with HELLO.
//     crdt.Reply values are rendered to the wire in one place (reply.go),
//     and Go errors are translated to RESP errors in one place (errReply;
//     readErrReply for the read fence builds on it).
//
// Requests are parsed by reader.go, which follows Redis's own parser and
// enforces its limits (proto-max-bulk-len, multibulk length, the limits for
// unauthenticated clients, client-query-buffer-limit); replies are written
// with redcon's append functions. redcon's request reader and server loop
// are not used: they enforce no limit, buffer a bulk of any announced size,
// reject "*-10" and split inline commands differently from Redis. Each
// connection is served by one goroutine that reads a batch of pipelined
// commands, executes them in order and writes their replies together.
//
// Where Concord knowingly differs from Redis 7.0:
//
//   - client-query-buffer-limit counts all input held for a client,
//     including the arguments of the command still being received (Redis
//     counts only its query buffer), so it is slightly stricter.
//   - client-output-buffer-limit is enforced for the "normal" and "pubsub"
//     classes. For a connection that never subscribed, the hard limit
//     applies to replies not yet written; replies are written whenever
//     input runs dry or 64 KB have accumulated. Above the soft limit a
//     write must complete within soft_seconds (0: at once) or the client
//     is closed. A client that stops reading is never buffered for without
//     bound: its goroutine waits on the socket and stops reading. A
//     connection that has subscribed is limited as Redis limits it, on
//     every append (asyncout.go), by the pubsub class while it has
//     subscriptions.
//   - PUBLISH answers the receivers on this node; PUBSUB and INFO's
//     pubsub figures are this node's; PUBSUB CHANNELS is sorted; shard
//     channels (SSUBSCRIBE, SPUBLISH) do not leave the node.
//   - DEBUG SLEEP stalls only the calling connection.
//   - A blocked client's pop is its own write, so another client may take
//     the data first (the blocked client then stays blocked); a pop in
//     flight wins over CLIENT UNBLOCK and the timeout (docs/blocking.md).
//   - LASTSAVE answers the start time: there is no RDB. INFO's
//     persistence section says what is persisted: nothing on a single node
//     (concord_persistence:none), the Raft log and snapshots on a region's
//     node (the region's fields, such as region_durability).
//   - INFO leaves out figures Concord does not measure (keyspace hits and
//     misses, avg_ttl, instantaneous rates, allocator details, replication
//     offsets); CLIENT LIST leaves out buffer and memory fields.
//   - commandstats time of a write includes waiting for the write path; a
//     pipelined run of reads or writes shares its time evenly.
//   - COMMAND INFO key specs are derived from first/last/step (keynum specs
//     for numkeys commands) with coarse flags (RW/update or RO/access);
//     COMMAND DOCS carries only each command's group.
//   - CONFIG knows the parameters Concord honours or can state truthfully;
//     maxmemory, save, appendonly, databases and the like are read-only.
//   - CLIENT NO-EVICT is accepted and changes nothing (no client eviction).
//   - HELLO and INFO report redis_version 7.0.15, the behaviour Concord
//     reproduces, so clients pick the right features.
//   - READONLY and READWRITE answer +OK as in Redis Cluster (standalone
//     Redis refuses them): READONLY lets the connection read this node's
//     view without the read fence, READWRITE (and RESET) turn it off, and
//     CLIENT LIST shows the flag as "r". On a single node they change
//     nothing.
//   - ROLE on a single node is a master without replicas, ["master", 0,
//     []]; on a region's node it is the region's answer.
//   - REGION (NODES, ADD, REMOVE, TRANSFER, SNAPSHOT, STATUS) is
//     Concord's own admin command, in the "cluster" group like READONLY;
//     a single node answers "ERR This instance has no region".
//   - INFO replication on a region's node has the region's fields (role,
//     region_state, region_leader_id, ...) instead of connected_slaves and
//     replication offsets.
package server
