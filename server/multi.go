package server

import (
	"math/rand/v2"
	"strings"
	"time"

	"concord/crdt"
)

// Transactions: MULTI, EXEC, DISCARD, WATCH and UNWATCH, with Redis 7.0's
// replies (docs/transactions.md).
//
// Commands sent after MULTI are checked as Redis's processCommand checks
// them (existence, arity, authentication, no_multi) and queued; a failed
// check flags the transaction, and EXEC then discards it with EXECABORT.
// EXEC hands every queued data command to the write path as ONE unit, so
// they are applied atomically, in one stamped log entry whose effects form
// one batch for the other regions, and reads inside it see the earlier
// writes. Server commands queued (PING, ECHO, SELECT, INFO, ...) run on the
// connection at EXEC, in queue order after the unit is applied: their
// replies take their place in EXEC's array, and SELECT changes the database
// of the data commands queued after it.
//
// WATCH records the keyspace's modification counter in the node's read view
// (after the read fence), and EXEC's unit starts with a guard that apply
// evaluates against the keys' versions (crdt/watch.go): if a watched key
// changed, the unit does nothing and EXEC answers a null array. No
// server-side registry of watched keys exists, so a connection that closes
// leaves nothing behind.
//
// Blocking commands (BLPOP, ...) queued in MULTI must run as their
// non-blocking forms, as in Redis: EXEC gives them to apply inside the
// unit, where nothing waits, so a blocking layer must only intercept
// commands that run outside a transaction (client.exec's !c.multi path).

// txState is a connection's transaction: the queue after MULTI and the
// watched keys.
type txState struct {
	multi   bool // MULTI was sent; commands are queued
	dirty   bool // a queued command was rejected: EXEC aborts
	queued  []queuedCmd
	watches []crdt.Watch
}

type queuedCmd struct {
	cmd  *command
	args [][]byte
}

func txCommands() []*command {
	flags := []string{"noscript", "loading", "stale", "fast", "allow_busy"}
	cats := []string{"fast", "transaction"}
	return []*command{
		{name: "multi", arity: 1, flags: flags, cats: cats, run: cmdMulti, txControl: true},
		{name: "exec", arity: 1, flags: []string{"noscript", "loading", "stale", "skip_slowlog"},
			cats: []string{"slow", "transaction"}, run: cmdExec, txControl: true},
		{name: "discard", arity: 1, flags: flags, cats: cats, run: cmdDiscard, txControl: true},
		{name: "watch", arity: -2, flags: flags, cats: cats, firstKey: 1, lastKey: -1, step: 1,
			run: cmdWatch, txControl: true},
		// UNWATCH inside MULTI is queued, as in Redis (it then changes
		// nothing: EXEC unwatches anyway).
		{name: "unwatch", arity: 1, flags: flags, cats: cats, run: cmdUnwatch},
	}
}

var (
	errExecAbort = crdt.Err("EXECABORT Transaction discarded because of previous errors.")
	errNoMulti   = crdt.Err("ERR Command not allowed inside a transaction")
)

// execAbort is Redis's execCommandAbort: the reply when EXEC itself is
// rejected (wrong arity), which also discards any transaction.
func execAbort(c *client, r crdt.Reply) crdt.Reply {
	c.discardTx()
	msg := strings.TrimPrefix(string(r.Str), "ERR ")
	return crdt.Err("EXECABORT Transaction discarded because of: " + msg)
}

// flagTx marks the transaction in progress, if any, as failed.
func (c *client) flagTx() {
	if c.tx.multi {
		c.tx.dirty = true
	}
}

// discardTx ends the transaction and forgets the watched keys.
func (c *client) discardTx() {
	c.tx = txState{}
	c.multiN.Store(-1)
}

// queueTx queues a command after MULTI.
func (c *client) queueTx(cmd *command, args [][]byte) crdt.Reply {
	for _, f := range cmd.flags {
		if f == "no_multi" {
			cmd.stats.rejected.Add(1)
			c.tx.dirty = true
			return errNoMulti
		}
	}
	if cmd.data != nil && !cmd.data.TypedName {
		args[0] = cmd.nameBytes // as queue does
	}
	c.tx.queued = append(c.tx.queued, queuedCmd{cmd: cmd, args: args})
	c.multiN.Store(int64(len(c.tx.queued)))
	return crdt.Queued
}

func cmdMulti(c *client, args [][]byte) crdt.Reply {
	if c.tx.multi {
		return crdt.Err("ERR MULTI calls can not be nested")
	}
	c.tx.multi = true
	c.multiN.Store(0)
	return crdt.OK
}

func cmdDiscard(c *client, args [][]byte) crdt.Reply {
	if !c.tx.multi {
		return crdt.Err("ERR DISCARD without MULTI")
	}
	c.discardTx()
	return crdt.OK
}

func cmdUnwatch(c *client, args [][]byte) crdt.Reply {
	c.tx.watches = nil
	return crdt.OK
}

func cmdWatch(c *client, args [][]byte) crdt.Reply {
	if c.tx.multi {
		return crdt.Err("ERR WATCH inside MULTI is not allowed")
	}
	// The counter a WATCH records must be at least as new as every write
	// acknowledged before it, as a read's view is.
	if r, ok := c.fenceReads(); !ok {
		return r
	}
	db := c.db
	c.srv.store.Read(func(ks *crdt.Keyspace) {
		now := readTime(ks)
		for _, k := range args[1:] {
			if c.watching(db, k) {
				continue // Redis keeps the first WATCH of a key
			}
			c.tx.watches = append(c.tx.watches, ks.WatchKey(db, k, now))
		}
	})
	return crdt.OK
}

func (c *client) watching(db int, key []byte) bool {
	for _, w := range c.tx.watches {
		if w.DB == db && string(w.Key) == string(key) {
			return true
		}
	}
	return false
}

// cmdExec runs the queued commands. Its commandstats entry counts the EXEC
// itself; each queued command is counted under its own name, as Redis
// counts commands run by EXEC.
func cmdExec(c *client, args [][]byte) crdt.Reply {
	if !c.tx.multi {
		return crdt.Err("ERR EXEC without MULTI")
	}
	tx := c.tx
	c.tx = txState{}
	// CLIENT LIST shows the transaction (flag x, multi=N) until EXEC ends,
	// as Redis does for commands EXEC runs.
	defer c.multiN.Store(-1)
	if tx.dirty {
		return errExecAbort
	}
	start := time.Now()
	// Data commands in queue order, each with the database the SELECTs
	// queued before it leave; pos maps queued commands to unit indexes.
	var unit []crdt.Command
	if len(tx.watches) > 0 {
		unit = append(unit, crdt.GuardCommand(tx.watches))
	}
	pos := make([]int, len(tx.queued))
	// A blocking command runs as its non-blocking form (finish turns the
	// reply into the blocking command's), or answers fixed when its
	// arguments are bad.
	finish := make([]func(crdt.Reply) crdt.Reply, len(tx.queued))
	fixed := make([]*crdt.Reply, len(tx.queued))
	db, writes := c.db, false
	for i, q := range tx.queued {
		pos[i] = -1
		switch {
		case q.cmd.block != nil:
			u, fin, errR := q.cmd.block.multiForm(q.args)
			if u == nil {
				fixed[i] = &errR
				continue
			}
			pos[i] = len(unit)
			unit = append(unit, crdt.Command{DB: db, Args: u})
			finish[i] = fin
			writes = true
		case q.cmd.data != nil:
			pos[i] = len(unit)
			unit = append(unit, crdt.Command{DB: db, Args: q.args})
			writes = writes || q.cmd.data.Write
		case q.cmd.name == "select":
			if n, ok := selectDB(q.args[1]); ok {
				db = n
			}
		}
	}
	var replies []crdt.Reply
	switch {
	case len(unit) == 0:
	case writes || len(tx.watches) > 0:
		c.wrote = c.wrote || writes
		var err error
		replies, err = c.srv.store.Propose(c.srv.ctx(), unit)
		if err == nil && len(replies) != len(unit) {
			return crdt.Err("ERR internal error: write path returned " + itoa(int64(len(replies))) + " replies")
		}
		if err != nil {
			return errReply(err)
		}
		if len(tx.watches) > 0 && crdt.GuardFailed(replies[0]) {
			return crdt.NilArray
		}
	default:
		// Reads only and nothing watched: one consistent view is as
		// atomic as apply, and spares the write path.
		replies = make([]crdt.Reply, len(unit))
		if r, ok := c.fenceReads(); !ok {
			for i := range replies {
				replies[i] = r
			}
			break
		}
		seed := rand.Uint64() // reads are not replicated: any seed will do
		c.srv.store.Read(func(ks *crdt.Keyspace) {
			now := readTime(ks)
			for i, u := range unit {
				replies[i] = ks.Read(u.DB, now, seed+uint64(i), u.Args)
			}
		})
	}
	took := time.Since(start)
	out := make([]crdt.Reply, 0, len(tx.queued))
	for i, q := range tx.queued {
		var r crdt.Reply
		t := took / time.Duration(len(tx.queued))
		var written []crdt.Reply
		if pos[i] >= 0 {
			r = replies[pos[i]]
			if finish[i] != nil {
				r = finish[i](r)
			}
		} else if fixed[i] != nil {
			r = *fixed[i]
		} else {
			s := time.Now()
			c.capture = &written
			r = q.cmd.run(c, q.args)
			c.capture = nil
			t = time.Since(s)
		}
		c.srv.stats.commands.Add(1)
		q.cmd.stats.add(1, t, r.Kind == crdt.KindError)
		if r.Kind == crdt.KindError {
			c.srv.stats.countError(errorCode(r))
		}
		if r.Kind == kindNone {
			// A command that wrote its own replies (SUBSCRIBE a b: one
			// confirmation per channel) puts them in the array in its
			// place. Redis counts the command once and so sends more
			// elements than its array header says; here the header counts
			// what is sent.
			out = append(out, written...)
			continue
		}
		out = append(out, written...)
		out = append(out, r)
	}
	return crdt.Reply{Kind: crdt.KindArray, Elems: out}
}
