// Package script is Concord's Lua scripting engine: EVAL, EVALSHA, EVAL_RO,
// EVALSHA_RO and SCRIPT, with the redis.* API, cjson and bit, converting
// between Redis replies and Lua values as Redis 7.0 does.
//
// It lives beside the crdt package rather than inside it because it needs a
// Lua VM (github.com/yuin/gopher-lua, a Lua 5.1 implementation in pure Go,
// the Lua version Redis embeds): crdt stays stdlib only and this package is
// its one consumer of a third-party dependency. It registers its commands
// with crdt's command table from init (crdt.Register), so any binary that
// imports it (the server package does) serves them.
//
// Contract:
//
//   - Scripts run inside apply, on every node of a region, like any other
//     write. Each redis.call runs through the command's Tx (Tx.Exec), and
//     each call that writes is its own op of the command's batch, so the
//     script's effects cross regions as one batch and never the script.
//   - A script is a pure function of the keyspace and its arguments: no
//     clock, no global randomness. math.random is Redis's lrand48, seeded
//     from the op's deterministic random source; tostring of a table or
//     function names it by a counter instead of its address; table
//     iteration (pairs, next) follows gopher-lua's insertion order, which is
//     the same on every node; collectgarbage("count") is refused.
//   - A runaway script is stopped by an instruction budget
//     (budgetInstructions), counted the same way on every node, never by
//     a wall-clock timer. The script then fails with an error; the writes
//     it made before stay, as after any script error in Redis.
//   - The script cache is the region's replicated state (crdt's Tx.Script,
//     Tx.CacheScript); compiled functions are cached per process, keyed by
//     SHA1, which is safe because compiling is a pure function of the body.
//   - Lua states are pooled (vm.go), but a state goes back to the pool only
//     if its environment is exactly as built, so pooling never changes
//     what a script sees. Concurrent reads (EVALSHA_RO) each take their
//     own state.
//
// docs/scripting.md is the user-facing version, with what differs from
// Redis.
package script
