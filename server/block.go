package server

import (
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"concord/crdt"
)

// Blocking commands (BLPOP, BRPOP, BLMOVE, BRPOPLPUSH, BLMPOP, BZPOPMIN,
// BZPOPMAX, BZMPOP). The client blocks, the state machine never does: a
// blocked client lives on the node that holds its connection, and a pop is
// always an ordinary write of the command's non-blocking form (ZMPOP, LMPOP,
// LMOVE), proposed through the Store like any other write and applied
// deterministically everywhere. The blocking layer only decides when to
// propose it and for whom:
//
//  1. The command first runs as its non-blocking form if any of its keys
//     exists (after the read fence, so it sees the client's own writes).
//     A value or an error is the reply; "nothing to pop" blocks.
//  2. A blocked client is registered under each of its keys, in arrival
//     order. The Store's write hook (WriteNotifier) tells the blocker, from
//     inside apply and without blocking it, of every key a local write or a
//     merged remote effect gave content to, on a leader or a follower.
//  3. One goroutine per server (never one per client, never polling) takes
//     the signalled keys in order. For each, it finds the first client
//     blocked on it, in FIFO order, whose command wants the key's current
//     type, and proposes the pop for that client, from that key, in the
//     client's database. A value is delivered and the client leaves every
//     key it waited on (served once); "nothing to pop" means another client
//     or region took the data first, and the client stays blocked in its
//     place; then the next client is tried while the key still has data.
//  4. The blocked connection's goroutine waits on its socket, so it
//     buffers pipelined input and sees the connection close; the blocker,
//     CLIENT UNBLOCK and the timeout wake it by moving its read deadline.
//
// A client whose connection closes, or whose timeout or CLIENT UNBLOCK
// comes, while a pop for it is in flight gets that pop's outcome (if the
// connection is gone the value is lost, as for any client that disconnects
// before reading its reply; counted in blockStats.lost).
//
// Inside MULTI a blocking command behaves as its non-blocking form
// (blockSpec.multiForm is the hook a transaction uses).

// WriteNotifier is implemented by a Store that can tell the server which
// keys its writes gave content to, so blocked clients wake when data comes.
// NotifyWrites registers fn (replacing any earlier one); fn(db, key) is
// called from inside apply after every local or merged effect that added
// to key's content, and fn(-1, "") when any key may have changed (a
// snapshot restored, a state transfer joined). fn never blocks and never
// calls into the Store. A server whose Store is no WriteNotifier has no
// blocking commands.
type WriteNotifier interface {
	NotifyWrites(fn func(db int, key string))
}

// blockArgs is what a blocking command's arguments say.
type blockArgs struct {
	keys    [][]byte // keys to wait on, in argument order
	timeout int64    // ms; 0 blocks for ever
	mpop    crdt.MPopArgs
	// XREAD: the ID each key waits above ("$" resolved), and COUNT.
	ids   [][]byte
	count int64
}

// blockSpec is one blocking command's entry in the table.
type blockSpec struct {
	// base is the engine command the pop runs as; the entry registers only
	// if the engine has it.
	base string
	// keyType is the TYPE a key must show for a client blocked on it to be
	// served (Redis 7.0 leaves a client blocked when its key comes to hold
	// another type).
	keyType string
	// parse checks the arguments in Redis's order.
	parse func(args [][]byte) (blockArgs, crdt.Reply, bool)
	// unit builds the engine command: over all keys when ready is nil (the
	// first non-empty key in argument order is popped, atomically), or
	// from ready, the key that became available.
	unit func(args [][]byte, a blockArgs, ready []byte) [][]byte
	// reply turns the engine's reply into the blocking command's; nil
	// keeps it as it is.
	reply func(crdt.Reply) crdt.Reply

	// read: the command is served by reading unit against the local view,
	// not by proposing it (XREAD: a read, so every client blocked on a
	// key is served by the same new entry).
	read bool
	// attempt, if set, is the first attempt instead of parse and the
	// non-blocking form: it gives the reply, or (wait) the arguments to
	// block with, owning their memory.
	attempt func(c *client, args [][]byte) (r crdt.Reply, a blockArgs, wait bool)
	// wants tells a data command's blocking form (blockOpt) by its
	// arguments.
	wants func(args [][]byte) bool
}

// multiForm is the hook for MULTI/EXEC: Redis runs a blocking command
// inside a transaction as its non-blocking form, checking its arguments
// when EXEC runs. It returns the engine command to put in the
// transaction's unit and the function that turns its reply into the
// blocking command's (empty: a null array or null bulk, never a wait). If
// the arguments are bad there is no command, and errR is the reply EXEC
// shows in its place.
func (b *blockSpec) multiForm(args [][]byte) (unit [][]byte, reply func(crdt.Reply) crdt.Reply, errR crdt.Reply) {
	a, errR, ok := b.parse(args)
	if !ok {
		return nil, nil, errR
	}
	return b.unit(args, a, nil), b.finish, crdt.Reply{}
}

// finish applies the entry's reply transformation.
func (b *blockSpec) finish(r crdt.Reply) crdt.Reply {
	if b.reply == nil {
		return r
	}
	return b.reply(r)
}

// emptyReply reports a reply that means "nothing to pop".
func emptyReply(r crdt.Reply) bool {
	return r.Kind == crdt.KindNil || r.Kind == crdt.KindNilArray
}

// Error replies of blocking.
var errUnblocked = crdt.Err("UNBLOCKED client unblocked via CLIENT UNBLOCK")

// blockCommands is the table of blocking commands: COMMAND's metadata and
// how each one pops. XREAD BLOCK is not here: XREAD stays a data command
// whose BLOCK form (xread.go) is served by reading.
func blockCommands() []*command {
	zsetW := []string{"write", "sortedset"}
	listW := []string{"write", "list"}
	cats := func(c []string, speed string) []string {
		return append(append(append([]string{}, c...), speed), "blocking")
	}
	return []*command{
		{name: "bzpopmin", arity: -3, flags: []string{"write", "noscript", "blocking", "fast"},
			cats: cats(zsetW, "fast"), firstKey: 1, lastKey: -2, step: 1,
			block: popSpec("zmpop", "zset", "MIN")},
		{name: "bzpopmax", arity: -3, flags: []string{"write", "noscript", "blocking", "fast"},
			cats: cats(zsetW, "fast"), firstKey: 1, lastKey: -2, step: 1,
			block: popSpec("zmpop", "zset", "MAX")},
		{name: "bzmpop", arity: -5, flags: []string{"write", "blocking", "movablekeys"},
			cats: cats(zsetW, "slow"), block: mpopSpec("zmpop", "zset", "MIN", "MAX")},
		{name: "blpop", arity: -3, flags: []string{"write", "noscript", "blocking"},
			cats: cats(listW, "slow"), firstKey: 1, lastKey: -2, step: 1,
			block: popSpec("lmpop", "list", "LEFT")},
		{name: "brpop", arity: -3, flags: []string{"write", "noscript", "blocking"},
			cats: cats(listW, "slow"), firstKey: 1, lastKey: -2, step: 1,
			block: popSpec("lmpop", "list", "RIGHT")},
		{name: "blmpop", arity: -5, flags: []string{"write", "blocking", "movablekeys"},
			cats: cats(listW, "slow"), block: mpopSpec("lmpop", "list", "LEFT", "RIGHT")},
		{name: "blmove", arity: 6, flags: []string{"write", "denyoom", "noscript", "blocking"},
			cats: cats(listW, "slow"), firstKey: 1, lastKey: 2, step: 1, block: blmoveSpec},
		{name: "brpoplpush", arity: 4, flags: []string{"write", "denyoom", "noscript", "blocking"},
			cats: cats(listW, "slow"), firstKey: 1, lastKey: 2, step: 1, block: brpoplpushSpec},
	}
}

// popSpec is BLPOP/BRPOP/BZPOPMIN/BZPOPMAX: "cmd key [key ...] timeout",
// popping one element as "<base> numkeys keys... <where> COUNT 1" and
// flattening [key, [element]] into [key, element...].
func popSpec(base, keyType, where string) *blockSpec {
	return &blockSpec{
		base: base, keyType: keyType,
		parse: func(args [][]byte) (blockArgs, crdt.Reply, bool) {
			ms, errR, ok := crdt.ParseTimeout(args[len(args)-1])
			if !ok {
				return blockArgs{}, errR, false
			}
			return blockArgs{keys: args[1 : len(args)-1], timeout: ms}, crdt.Reply{}, true
		},
		unit: func(args [][]byte, a blockArgs, ready []byte) [][]byte {
			keys := a.keys
			if ready != nil {
				keys = [][]byte{ready}
			}
			u := make([][]byte, 0, len(keys)+5)
			u = append(u, []byte(base), []byte(strconv.Itoa(len(keys))))
			u = append(u, keys...)
			return append(u, []byte(where), []byte("COUNT"), []byte("1"))
		},
		reply: func(r crdt.Reply) crdt.Reply {
			if r.Kind != crdt.KindArray || len(r.Elems) != 2 || len(r.Elems[1].Elems) != 1 {
				return r
			}
			el := r.Elems[1].Elems[0]
			if el.Kind == crdt.KindArray { // [member, score]
				return crdt.Array(append([]crdt.Reply{r.Elems[0]}, el.Elems...)...)
			}
			return crdt.Array(r.Elems[0], el)
		},
	}
}

// mpopSpec is BLMPOP/BZMPOP: "cmd timeout numkeys key [key ...] <where>
// [COUNT n]", whose numkeys, where and COUNT Redis checks before the
// timeout, popping as "<base> numkeys key [key ...] <where> COUNT n".
func mpopSpec(base, keyType string, wheres ...string) *blockSpec {
	return &blockSpec{
		base: base, keyType: keyType,
		parse: func(args [][]byte) (blockArgs, crdt.Reply, bool) {
			m, errR, ok := crdt.ParseMPop(args, 2, wheres...)
			if !ok {
				return blockArgs{}, errR, false
			}
			ms, errR, ok := crdt.ParseTimeout(args[1])
			if !ok {
				return blockArgs{}, errR, false
			}
			return blockArgs{keys: m.Keys, timeout: ms, mpop: m}, crdt.Reply{}, true
		},
		unit: func(args [][]byte, a blockArgs, ready []byte) [][]byte {
			keys := a.mpop.Keys
			if ready != nil {
				keys = [][]byte{ready}
			}
			u := make([][]byte, 0, len(keys)+5)
			u = append(u, []byte(base), []byte(strconv.Itoa(len(keys))))
			u = append(u, keys...)
			return append(u, []byte(wheres[a.mpop.Where]), []byte("COUNT"),
				[]byte(strconv.FormatInt(a.mpop.Count, 10)))
		},
	}
}

// listWhere is Redis's getListPositionFromObjectOrReply.
func listWhere(b []byte) bool {
	s := string(b)
	return len(s) == 4 && (s[0]|0x20) == 'l' && (s[1]|0x20) == 'e' && (s[2]|0x20) == 'f' && (s[3]|0x20) == 't' ||
		len(s) == 5 && (s[0]|0x20) == 'r' && (s[1]|0x20) == 'i' && (s[2]|0x20) == 'g' && (s[3]|0x20) == 'h' && (s[4]|0x20) == 't'
}

// blmoveSpec is "BLMOVE src dst LEFT|RIGHT LEFT|RIGHT timeout": it waits on
// src only and pops as LMOVE.
var blmoveSpec = &blockSpec{
	base: "lmove", keyType: "list",
	parse: func(args [][]byte) (blockArgs, crdt.Reply, bool) {
		if !listWhere(args[3]) || !listWhere(args[4]) {
			return blockArgs{}, crdt.ErrSyntax, false
		}
		ms, errR, ok := crdt.ParseTimeout(args[5])
		if !ok {
			return blockArgs{}, errR, false
		}
		return blockArgs{keys: args[1:2], timeout: ms}, crdt.Reply{}, true
	},
	unit: func(args [][]byte, _ blockArgs, _ []byte) [][]byte {
		return [][]byte{[]byte("lmove"), args[1], args[2], args[3], args[4]}
	},
}

// brpoplpushSpec is "BRPOPLPUSH src dst timeout", BLMOVE src dst RIGHT LEFT.
var brpoplpushSpec = &blockSpec{
	base: "lmove", keyType: "list",
	parse: func(args [][]byte) (blockArgs, crdt.Reply, bool) {
		ms, errR, ok := crdt.ParseTimeout(args[3])
		if !ok {
			return blockArgs{}, errR, false
		}
		return blockArgs{keys: args[1:2], timeout: ms}, crdt.Reply{}, true
	},
	unit: func(args [][]byte, _ blockArgs, _ []byte) [][]byte {
		return [][]byte{[]byte("lmove"), args[1], args[2], []byte("RIGHT"), []byte("LEFT")}
	},
}

// blockKey is a key in a database.
type blockKey struct {
	db  int
	key string
}

type blockState uint8

const (
	bWaiting blockState = iota // registered, no pop in flight
	bPopping                   // the blocker is proposing a pop for it
	bDone                      // reply is set; unregistered
)

// blocked is one blocked client. Fields after spec are guarded by
// blocker.mu.
type blocked struct {
	c    *client
	spec *blockSpec
	args [][]byte // the command, copied: the connection keeps reading
	a    blockArgs
	db   int
	keys []blockKey // distinct, in argument order
	seq  uint64     // registration order
	ttl  bool       // has a timeout (INFO clients_in_timeout_table)

	state blockState
	reply crdt.Reply
	// unblock is the reply CLIENT UNBLOCK asked for while a pop was in
	// flight: used if that pop finds nothing.
	unblock *crdt.Reply
	gone    bool // the connection closed while a pop was in flight
}

// blockStats are the blocker's counters.
type blockStats struct {
	served atomic.Int64 // pops delivered to blocked clients
	raced  atomic.Int64 // pops proposed that found nothing: someone else took the data
	lost   atomic.Int64 // pops whose client disconnected while they were in flight
}

// blocker holds a server's blocked clients and serves them.
type blocker struct {
	s      *Server
	active atomic.Int64 // registered clients: notify's lock-free fast path

	mu        sync.Mutex
	keys      map[blockKey][]*blocked // FIFO per key
	clients   map[int64]*blocked      // by client id
	inTimeout int
	seq       uint64
	ready     []blockKey // signalled keys, in signal order
	readySet  map[blockKey]struct{}
	all       bool       // every key was signalled
	fresh     []*blocked // registered since the blocker last looked

	wake  chan struct{}
	stats blockStats
}

func newBlocker(s *Server) *blocker {
	return &blocker{s: s, keys: map[blockKey][]*blocked{}, clients: map[int64]*blocked{},
		readySet: map[blockKey]struct{}{}, wake: make(chan struct{}, 1)}
}

// notify is the Store's write hook. It runs inside apply: it only records
// the key and wakes the blocker, never waits.
func (b *blocker) notify(db int, key string) {
	if b.active.Load() == 0 {
		return
	}
	b.mu.Lock()
	if db < 0 {
		b.all = true
	} else {
		k := blockKey{db, key}
		if _, watched := b.keys[k]; !watched {
			b.mu.Unlock()
			return
		}
		if _, dup := b.readySet[k]; !dup {
			b.readySet[k] = struct{}{}
			b.ready = append(b.ready, k)
		}
	}
	b.mu.Unlock()
	b.signal()
}

func (b *blocker) signal() {
	select {
	case b.wake <- struct{}{}:
	default:
	}
}

// counts returns the number of blocked clients and of those with a
// timeout (INFO clients).
func (b *blocker) counts() (blocked, withTimeout int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.clients), b.inTimeout
}

// isBlocked reports whether client id is blocked (CLIENT LIST flag b).
func (b *blocker) isBlocked(id int64) bool {
	if b.active.Load() == 0 {
		return false
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	_, ok := b.clients[id]
	return ok
}

// register adds bl under its keys; the blocker then checks it once, which
// closes the gap between the client's own attempt and its registration.
func (b *blocker) register(bl *blocked) {
	b.mu.Lock()
	b.seq++
	bl.seq = b.seq
	for _, k := range bl.keys {
		b.keys[k] = append(b.keys[k], bl)
	}
	b.clients[bl.c.id] = bl
	if bl.ttl {
		b.inTimeout++
	}
	b.fresh = append(b.fresh, bl)
	b.active.Add(1)
	b.mu.Unlock()
	b.signal()
}

// removeLocked unregisters bl; b.mu is held.
func (b *blocker) removeLocked(bl *blocked) {
	if _, ok := b.clients[bl.c.id]; !ok || b.clients[bl.c.id] != bl {
		return
	}
	for _, k := range bl.keys {
		list := b.keys[k]
		for i, x := range list {
			if x == bl {
				list = append(list[:i:i], list[i+1:]...)
				break
			}
		}
		if len(list) == 0 {
			delete(b.keys, k)
		} else {
			b.keys[k] = list
		}
	}
	delete(b.clients, bl.c.id)
	if bl.ttl {
		b.inTimeout--
	}
	b.active.Add(-1)
}

// deliverLocked ends bl's wait with r and wakes its goroutine; b.mu is
// held.
func (b *blocker) deliverLocked(bl *blocked, r crdt.Reply) {
	b.removeLocked(bl)
	bl.state, bl.reply = bDone, r
	bl.c.nc.SetReadDeadline(time.Now())
}

// unblock is CLIENT UNBLOCK: it ends client id's wait with r. It reports
// whether the client was blocked.
func (b *blocker) unblock(id int64, r crdt.Reply) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	bl := b.clients[id]
	if bl == nil {
		return false
	}
	switch bl.state {
	case bWaiting:
		b.deliverLocked(bl, r)
	case bPopping:
		bl.unblock = &r // the pop in flight decides
	}
	return true
}

// run serves signalled keys until the server closes.
func (b *blocker) run() {
	defer b.s.wg.Done()
	for {
		select {
		case <-b.wake:
		case <-b.s.done:
			return
		}
		for b.step() {
		}
	}
}

// step serves what was signalled since the last step; false if nothing.
func (b *blocker) step() bool {
	b.mu.Lock()
	fresh, ready, all := b.fresh, b.ready, b.all
	b.fresh, b.ready, b.all = nil, nil, false
	clear(b.readySet)
	if all {
		// Every watched key, oldest waiter first (not map order).
		ready = ready[:0]
		for k := range b.keys {
			ready = append(ready, k)
		}
		sort.Slice(ready, func(i, j int) bool { return b.keys[ready[i]][0].seq < b.keys[ready[j]][0].seq })
	}
	b.mu.Unlock()
	if len(fresh) == 0 && len(ready) == 0 {
		return false
	}
	for _, bl := range fresh {
		b.serveFresh(bl)
	}
	for _, k := range ready {
		b.serveKey(k)
	}
	return true
}

// serveFresh gives a newly registered client the attempt it would have had
// without the race: its command's non-blocking form over all its keys, if
// any of them exists.
func (b *blocker) serveFresh(bl *blocked) {
	b.mu.Lock()
	waiting := bl.state == bWaiting
	b.mu.Unlock()
	if !waiting || !bl.spec.read && !b.s.anyExists(bl.db, bl.a.keys) {
		return
	}
	b.mu.Lock()
	if bl.state != bWaiting {
		b.mu.Unlock()
		return
	}
	bl.state = bPopping
	b.mu.Unlock()
	b.finish(bl, b.pop(bl, nil))
}

// serveKey serves the clients blocked on k, in FIFO order, while k has
// data of the type they wait for. A pop that finds nothing ends the round
// (the data is gone); a read that finds nothing (new entries below the
// client's ID) only passes that client over.
func (b *blocker) serveKey(k blockKey) {
	var passed map[*blocked]bool
	for {
		typ := b.s.keyType(k)
		b.mu.Lock()
		var bl *blocked
		for _, x := range b.keys[k] {
			if x.state == bWaiting && x.spec.keyType == typ && !passed[x] {
				bl = x
				break
			}
		}
		if bl == nil {
			b.mu.Unlock()
			return
		}
		bl.state = bPopping
		b.mu.Unlock()
		if b.finish(bl, b.pop(bl, []byte(k.key))) {
			continue
		}
		if !bl.spec.read {
			return
		}
		if passed == nil {
			passed = map[*blocked]bool{}
		}
		passed[bl] = true
	}
}

// pop proposes bl's pop (from ready, or over all its keys if nil) as an
// ordinary write in bl's database.
func (b *blocker) pop(bl *blocked, ready []byte) crdt.Reply {
	cmd := crdt.Command{DB: bl.db, Args: bl.spec.unit(bl.args, bl.a, ready)}
	if bl.spec.read {
		// The write hook fires once the write is applied to this node's
		// view, so that view already holds what woke the client: no read
		// fence (the client passed one before it blocked).
		var r crdt.Reply
		if ready == nil {
			b.s.store.Read(func(ks *crdt.Keyspace) { r = ks.Read(cmd.DB, readTime(ks), 0, cmd.Args) })
			return r
		}
		// Woken from one stream: Redis 7.0 serves it alone, once its
		// last-generated ID passes the client's.
		key, id := cmd.Args[len(cmd.Args)-2], cmd.Args[len(cmd.Args)-1]
		b.s.store.Read(func(ks *crdt.Keyspace) { r = ks.XReadWake(cmd.DB, readTime(ks), key, id, bl.a.count) })
		return r
	}
	replies, err := b.s.store.Propose(b.s.ctx(), []crdt.Command{cmd})
	if err != nil {
		return errReply(err)
	}
	if len(replies) != 1 {
		return crdt.Err("ERR internal error: write path returned " + itoa(int64(len(replies))) + " replies")
	}
	return replies[0]
}

// finish settles a pop: a value or an error is delivered; nothing to pop
// returns the client to waiting (in its place in line). It reports
// whether the client was served.
func (b *blocker) finish(bl *blocked, r crdt.Reply) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if emptyReply(r) {
		if !bl.spec.read {
			b.stats.raced.Add(1)
		}
		switch {
		case bl.gone:
			b.removeLocked(bl)
			bl.state = bDone
		case bl.unblock != nil:
			b.deliverLocked(bl, *bl.unblock)
		default:
			bl.state = bWaiting
			bl.c.nc.SetReadDeadline(time.Now()) // let it re-arm its timeout
		}
		return false
	}
	if bl.spec.read {
		// A read takes nothing: a reader that left loses nothing.
	} else if bl.gone {
		b.stats.lost.Add(1)
		b.s.log.Warn("blocked client disconnected while its pop was in flight; the popped value is lost",
			"client", bl.c.id, "addr", bl.c.addr)
	} else {
		b.stats.served.Add(1)
	}
	b.deliverLocked(bl, bl.spec.finish(r))
	return true
}

// anyExists reports whether any of keys exists in database db.
func (s *Server) anyExists(db int, keys [][]byte) bool {
	args := make([][]byte, 0, len(keys)+1)
	args = append(args, []byte("exists"))
	args = append(args, keys...)
	var r crdt.Reply
	s.store.Read(func(ks *crdt.Keyspace) { r = ks.Read(db, readTime(ks), 0, args) })
	return r.Kind == crdt.KindInt && r.Int > 0
}

// keyType is TYPE's answer for k.
func (s *Server) keyType(k blockKey) string {
	var r crdt.Reply
	s.store.Read(func(ks *crdt.Keyspace) {
		r = ks.Read(k.db, readTime(ks), 0, [][]byte{[]byte("type"), []byte(k.key)})
	})
	return string(r.Str)
}

// execBlocking runs a blocking command for c: at once if it can, else it
// blocks c until a pop serves it, the timeout, CLIENT UNBLOCK or the
// connection closing. took excludes the time spent blocked.
func (c *client) execBlocking(cmd *command, args [][]byte) (r crdt.Reply, took time.Duration) {
	s := c.srv
	spec := cmd.block
	start := time.Now()
	if spec == nil {
		spec = cmd.blockOpt
	}
	if spec.attempt != nil {
		r, a, wait := spec.attempt(c, args)
		if !wait {
			return r, time.Since(start)
		}
		return c.waitBlocked(spec, nil, a, time.Since(start))
	}
	a, errR, ok := spec.parse(args)
	if !ok {
		return errR, time.Since(start)
	}
	if r, ok := c.fenceReads(); !ok {
		return r, time.Since(start)
	}
	if s.anyExists(c.db, a.keys) {
		c.wrote = true
		replies, err := s.store.Propose(s.ctx(), []crdt.Command{{DB: c.db, Args: spec.unit(args, a, nil)}})
		switch {
		case err != nil:
			return errReply(err), time.Since(start)
		case len(replies) != 1:
			return writeReply(Result{Replies: replies}), time.Since(start)
		case !emptyReply(replies[0]):
			return spec.finish(replies[0]), time.Since(start)
		}
	}
	took = time.Since(start)

	// Block. The arguments alias the connection's read buffer, which keeps
	// filling while the client waits: copy them.
	own := make([][]byte, len(args))
	for i, x := range args {
		own[i] = append([]byte(nil), x...)
	}
	a, _, _ = spec.parse(own)
	return c.waitBlocked(spec, own, a, took)
}

// waitBlocked blocks c on a.keys until it is served, its timeout, CLIENT
// UNBLOCK or the connection closing. args and a must not alias the
// connection's buffer.
func (c *client) waitBlocked(spec *blockSpec, args [][]byte, a blockArgs, took time.Duration) (crdt.Reply, time.Duration) {
	s := c.srv
	bl := &blocked{c: c, spec: spec, args: args, a: a, db: c.db, ttl: a.timeout > 0}
	seen := map[string]bool{}
	for _, k := range a.keys {
		if !seen[string(k)] {
			seen[string(k)] = true
			bl.keys = append(bl.keys, blockKey{c.db, string(k)})
		}
	}
	var deadline time.Time
	if !crdt.TimeoutForever(a.timeout) {
		deadline = time.Now().Add(time.Duration(a.timeout) * time.Millisecond)
	}
	b := s.blk
	b.register(bl)
	defer func() {
		c.nc.SetReadDeadline(time.Time{})
		c.deadline = false
	}()
	for {
		b.mu.Lock()
		if bl.state == bDone {
			r := bl.reply
			b.mu.Unlock()
			if r.Kind != crdt.KindError && !emptyReply(r) && !spec.read {
				c.wrote = true
			}
			return r, took
		}
		if bl.state == bWaiting && !deadline.IsZero() && !time.Now().Before(deadline) {
			b.removeLocked(bl)
			bl.state = bDone
			b.mu.Unlock()
			return crdt.NilArray, took
		}
		// Under the lock, so a wake-up's deadline is never overwritten.
		if bl.state == bPopping || deadline.IsZero() {
			c.nc.SetReadDeadline(time.Time{})
		} else {
			c.nc.SetReadDeadline(deadline)
		}
		b.mu.Unlock()
		before := c.rd.total
		err := c.rd.fill()
		s.stats.netInput.Add(c.rd.total - before)
		if err == nil {
			c.lastActive.Store(time.Now().UnixNano())
			if n := c.rd.buffered(); int64(n) <= s.cfg.qbufLimit.Load() {
				continue
			}
			s.log.Warn("closing client that reached max query buffer length",
				"client", c.id, "addr", c.addr, "qbuf", c.rd.buffered())
		} else if isTimeout(err) && !c.killed.Load() {
			continue
		}
		// The connection is gone (closed, killed, or over its limit).
		b.mu.Lock()
		switch bl.state {
		case bWaiting:
			b.removeLocked(bl)
			bl.state = bDone
		case bPopping:
			bl.gone = true
		}
		b.mu.Unlock()
		c.closeAfter = true
		c.discard = true
		return crdt.Reply{}, took
	}
}

func isTimeout(err error) bool {
	t, ok := err.(interface{ Timeout() bool })
	return ok && t.Timeout()
}
