package server

// The scripting engine registers EVAL, EVALSHA, EVAL_RO, EVALSHA_RO and
// SCRIPT with crdt's command table; importing it here gives every binary
// that serves RESP scripting.
import _ "concord/crdt/script"
