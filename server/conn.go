package server

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"net"
	"sort"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"concord/crdt"
)

const (
	// flushAt is the output size at which replies are written out before
	// the rest of a pipeline is processed.
	flushAt = 64 << 10
	// maxWrites bounds the writes one connection submits at once.
	maxWrites = 1024
	// maxReads bounds the reads run under one read lock.
	maxReads = 64
)

// client is one connection. Its goroutine (serve) owns everything except
// the fields under mu and the atomics, which CLIENT LIST/KILL and INFO read
// from other goroutines.
type client struct {
	srv     *Server
	nc      net.Conn
	id      int64
	addr    string
	laddr   string
	fd      int
	created time.Time
	rd      *reqReader
	out     []byte
	pending []pendingCmd // a run of consecutive data commands, all reads or all writes
	writes  bool         // the run in pending is writes
	replies []crdt.Reply // scratch for a run of reads

	authenticated bool
	closeAfter    bool // QUIT, protocol error, CLIENT KILL of itself
	discard       bool // output limit hit: nothing more is sent
	deadline      bool // a read deadline is set (timeout)
	// wrote: a write was submitted since WAITREGIONS last measured;
	// lastWrite is what that WAITREGIONS waited for (cmd_waitregions.go).
	wrote     bool
	lastWrite crdt.VersionVector
	// tx is the MULTI queue and the watched keys (multi.go).
	tx txState

	mu      sync.Mutex // guards the fields below; written only by serve
	db      int
	resp    int
	name    string
	libName string
	libVer  string
	// readonly: the connection sent READONLY, its reads skip the fence.
	readonly bool

	lastCmd atomic.Pointer[command] // latest command run (CLIENT LIST cmd=)

	lastActive atomic.Int64 // Unix ns of the latest command or input
	killed     atomic.Bool

	// Pub/sub (pubsub.go): subs is owned by serve and changed under the
	// hub's write lock; nsubs counts it for other goroutines; presp is
	// resp for the goroutines that deliver messages. ao, set by the first
	// subscription and never unset, carries all output from then on.
	subs  subState
	nsubs [numSubKinds]atomic.Int64
	presp atomic.Int32
	ao    *asyncOut

	// multiN is CLIENT LIST's multi=: commands queued after MULTI, -1
	// outside a transaction.
	multiN atomic.Int64
	// capture, while EXEC runs a queued server command, collects what the
	// command writes itself (SUBSCRIBE's confirmations) so it lands inside
	// EXEC's reply array.
	capture *[]crdt.Reply
}

// pendingCmd is a data command queued to run with the commands next to it;
// its reply is not yet in the output buffer.
type pendingCmd struct {
	cmd  *command
	unit crdt.Command
	name []byte // the command name as sent (SLOWLOG shows it)
}

func newClient(s *Server, nc net.Conn) *client {
	now := time.Now()
	c := &client{
		srv:           s,
		nc:            nc,
		id:            s.nextID.Add(1),
		addr:          nc.RemoteAddr().String(),
		laddr:         nc.LocalAddr().String(),
		fd:            connFD(nc),
		created:       now,
		rd:            newReqReader(nc),
		resp:          2,
		authenticated: s.requirePass() == "",
	}
	c.presp.Store(2)
	c.lastActive.Store(now.UnixNano())
	c.multiN.Store(-1)
	return c
}

// connFD returns the connection's file descriptor (CLIENT LIST's fd), -1
// if it has none.
func connFD(nc net.Conn) int {
	sc, ok := nc.(syscall.Conn)
	if !ok {
		return -1
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return -1
	}
	fd := -1
	raw.Control(func(f uintptr) { fd = int(f) })
	return fd
}

// authNeeded reports whether the client must authenticate before running
// commands other than AUTH, HELLO, QUIT and RESET.
func (c *client) authNeeded() bool {
	return !c.authenticated && c.srv.requirePass() != ""
}

// serve runs the connection until it closes.
func (c *client) serve() {
	s := c.srv
	defer func() {
		c.drain()
		s.hub.unsubscribeAll(c)
		if c.ao != nil {
			c.endAsync()
		}
		c.nc.Close()
		s.removeClient(c)
		s.wg.Done()
	}()
	for !c.killed.Load() {
		args, ok, err := c.rd.next(reqLimits{maxBulk: s.cfg.maxBulk.Load(), authNeeded: c.authNeeded()})
		if err != nil {
			var pe *protoError
			if errors.As(err, &pe) {
				c.drain()
				c.reply(crdt.Err("ERR " + pe.msg))
				c.flush()
				s.log.Debug("protocol error", "client", c.id, "addr", c.addr, "err", pe.msg)
			}
			return
		}
		if !ok {
			c.drain()
			if c.flush() != nil || c.closeAfter {
				return
			}
			if !c.read() {
				return
			}
			continue
		}
		if len(args) == 0 {
			continue // "*0", "*-1" or an empty inline line: ignored
		}
		c.exec(args)
		if c.closeAfter {
			c.drain()
			c.flush()
			return
		}
		if len(c.out) >= flushAt {
			c.drain()
			if c.flush() != nil {
				return
			}
		}
	}
}

// read waits for more input and applies the idle timeout and the query
// buffer limit. It reports whether the connection should go on.
func (c *client) read() bool {
	s := c.srv
	// Subscribers wait for messages, not for their own input: Redis
	// exempts them from the idle timeout.
	if t := s.cfg.timeout.Load(); t > 0 && !c.subscribedAny() {
		c.nc.SetReadDeadline(time.Now().Add(time.Duration(t) * time.Second))
		c.deadline = true
	} else if c.deadline {
		c.nc.SetReadDeadline(time.Time{})
		c.deadline = false
	}
	before := c.rd.total
	err := c.rd.fill()
	s.stats.netInput.Add(c.rd.total - before)
	if err != nil {
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() && !c.killed.Load() {
			s.log.Debug("closing idle client", "client", c.id, "addr", c.addr)
		}
		return false
	}
	c.lastActive.Store(time.Now().UnixNano())
	if n := c.rd.buffered(); int64(n) > s.cfg.qbufLimit.Load() {
		s.log.Warn("closing client that reached max query buffer length",
			"client", c.id, "addr", c.addr, "qbuf", n)
		return false
	}
	return true
}

// exec runs one command: checks as Redis's processCommand does (existence,
// arity, authentication, in that order), then runs it.
func (c *client) exec(args [][]byte) {
	s := c.srv
	if isSecurityAttack(args[0]) {
		s.log.Warn("possible SECURITY ATTACK detected: a client sent a HTTP-like request; connection aborted",
			"client", c.id, "addr", c.addr)
		c.closeAfter = true
		c.killed.Store(true)
		return
	}
	cmd, errR := s.lookup(args)
	if cmd == nil {
		c.drain()
		c.flagTx()
		c.reply(errR)
		return
	}
	if !cmd.arityOK(len(args)) {
		cmd.stats.rejected.Add(1)
		c.drain()
		c.flagTx()
		if cmd.name == "exec" {
			c.reply(execAbort(c, errArity(cmd.name)))
			return
		}
		c.reply(errArity(cmd.name))
		return
	}
	if !cmd.noAuth && c.authNeeded() {
		cmd.stats.rejected.Add(1)
		c.drain()
		c.flagTx()
		c.reply(crdt.Err("NOAUTH Authentication required."))
		return
	}
	c.lastCmd.Store(cmd)
	if !cmd.pubsubOK && c.resp == 2 && c.subscribedAny() {
		cmd.stats.rejected.Add(1)
		c.drain()
		c.reply(errPubSubContext(cmd))
		return
	}
	if c.tx.multi && !cmd.txControl && cmd.name != "quit" && cmd.name != "reset" {
		c.reply(c.queueTx(cmd, args))
		return
	}
	if cmd.block != nil || cmd.blockOpt != nil && cmd.blockOpt.wants(args) {
		c.drain()
		r, took := c.execBlocking(cmd, args)
		s.stats.commands.Add(1)
		cmd.stats.add(1, took, r.Kind == crdt.KindError)
		c.reply(r)
		return
	}
	if cmd.data != nil {
		c.queue(cmd, args)
		return
	}
	c.drain()
	start := time.Now()
	r := cmd.run(c, args)
	took := time.Since(start)
	s.slowlogRecord(c, cmd, args, took)
	s.stats.commands.Add(1)
	cmd.stats.add(1, took, r.Kind == crdt.KindError)
	c.reply(r)
}

// isSecurityAttack recognises HTTP requests sent to the port (Redis closes
// such connections without a reply).
func isSecurityAttack(name []byte) bool {
	if len(name) != 4 && len(name) != 5 {
		return false
	}
	return bytes.EqualFold(name, []byte("host:")) || bytes.EqualFold(name, []byte("post"))
}

// readTime is the time reads judge expiry at: the wall clock, but never
// before the latest applied write, so a key a write already saw as expired
// never reappears.
func readTime(ks *crdt.Keyspace) int64 {
	now := time.Now().UnixMilli()
	if last := ks.LastTime().Millis(); last > now {
		return last
	}
	return now
}

// queue adds a data command to the current run. Consecutive writes are
// submitted together, each as its own unit, so none waits for the one
// before it; consecutive reads run under one read lock. A command of the
// other kind first completes the run, so every command sees the effects of
// the ones before it and replies keep their order.
func (c *client) queue(cmd *command, args [][]byte) {
	w := cmd.isWrite()
	if len(c.pending) > 0 && c.writes != w {
		c.drain()
	}
	sent := args[0]
	if !cmd.data.TypedName {
		args[0] = cmd.nameBytes // canonical lowercase name for the engine
	}
	c.pending = append(c.pending, pendingCmd{cmd: cmd, unit: crdt.Command{DB: c.db, Args: args}, name: sent})
	c.writes = w
	if w && len(c.pending) >= maxWrites || !w && len(c.pending) >= maxReads {
		c.drain()
	}
}

func writeReply(r Result) crdt.Reply {
	if r.Err != nil {
		return errReply(r.Err)
	}
	if len(r.Replies) != 1 {
		return crdt.Err("ERR internal error: write path returned " + itoa(int64(len(r.Replies))) + " replies")
	}
	return r.Replies[0]
}

// drain runs the queued commands and queues their replies in order. Their
// time in commandstats is the run's time shared out evenly.
func (c *client) drain() {
	n := len(c.pending)
	if n == 0 {
		return
	}
	start := time.Now()
	if c.writes {
		c.runWrites()
	} else {
		c.runReads()
	}
	each := time.Since(start) / time.Duration(n)
	c.srv.stats.commands.Add(int64(n))
	// Counters are shared by all connections: add a run of one command
	// once, not once per command.
	var (
		cur           *command
		calls, failed int64
	)
	for i := range c.pending {
		cmd, r := c.pending[i].cmd, c.replies[i]
		if cmd != cur {
			if cur != nil {
				cur.stats.addN(calls, each, failed)
			}
			cur, calls, failed = cmd, 0, 0
		}
		calls++
		if r.Kind == crdt.KindError {
			failed++
		}
		if p := &c.pending[i]; p.name != nil {
			p.unit.Args[0] = p.name
			c.srv.slowlogRecord(c, cmd, p.unit.Args, each)
		}
		c.reply(r)
		c.pending[i] = pendingCmd{}
		c.replies[i] = crdt.Reply{}
	}
	cur.stats.addN(calls, each, failed)
	c.pending = c.pending[:0]
	c.replies = c.replies[:0]
}

// runWrites submits the queued writes and waits until they are applied.
func (c *client) runWrites() {
	s := c.srv
	n := len(c.pending)
	c.wrote = true
	var results []Result
	if s.pipe != nil {
		units := make([][]crdt.Command, n)
		for i := range c.pending {
			units[i] = []crdt.Command{c.pending[i].unit}
		}
		select {
		case results = <-s.pipe.ProposeUnits(units):
		case <-s.done:
		}
	} else {
		for i := range c.pending {
			replies, err := s.store.Propose(s.ctx(), []crdt.Command{c.pending[i].unit})
			results = append(results, Result{Replies: replies, Err: err})
		}
	}
	for i := 0; i < n; i++ {
		r := errReply(ErrClosed)
		if i < len(results) {
			r = writeReply(results[i])
		}
		c.replies = append(c.replies, r)
	}
}

// runReads runs the queued reads against one consistent view, after the
// read fence (one per run) if the store has one.
func (c *client) runReads() {
	c.replies = append(c.replies, make([]crdt.Reply, len(c.pending))...)
	if r, ok := c.fenceReads(); !ok {
		for i := range c.replies {
			c.replies[i] = r
		}
		return
	}
	seed := rand.Uint64() // reads are not replicated: any seed will do
	c.srv.store.Read(func(ks *crdt.Keyspace) {
		now := readTime(ks)
		for i := range c.pending {
			u := &c.pending[i].unit
			c.replies[i] = ks.Read(u.DB, now, seed+uint64(i), u.Args)
		}
	})
}

// reply appends r to the output buffer and enforces the output buffer hard
// limit.
func (c *client) reply(r crdt.Reply) {
	if c.capture != nil {
		*c.capture = append(*c.capture, r)
		return
	}
	if r.Kind == crdt.KindError {
		c.srv.stats.countError(errorCode(r))
	}
	if r.Kind == kindNone {
		return
	}
	if c.ao != nil {
		c.ao.appendReply(c, r)
		return
	}
	if c.discard {
		return
	}
	c.out = appendReply(c.out, r, c.resp)
	lim := c.srv.cfg.obuf.Load()[0]
	if lim.hard > 0 && uint64(len(c.out)) > lim.hard {
		c.srv.log.Warn("client scheduled to be closed ASAP for overcoming of output buffer limits",
			"client", c.id, "addr", c.addr, "pending", len(c.out))
		c.out = c.out[:0]
		c.discard = true
		c.closeAfter = true
		c.killed.Store(true)
	}
}

// flush writes the output buffer. Output above the soft limit must drain
// within the limit's seconds or the client is closed.
func (c *client) flush() error {
	if c.ao != nil {
		return c.ao.flush(c)
	}
	if len(c.out) == 0 {
		return nil
	}
	lim := c.srv.cfg.obuf.Load()[0]
	soft := lim.soft > 0 && uint64(len(c.out)) > lim.soft
	if soft {
		c.nc.SetWriteDeadline(time.Now().Add(time.Duration(lim.softSeconds) * time.Second))
	}
	n, err := c.nc.Write(c.out)
	if soft {
		c.nc.SetWriteDeadline(time.Time{})
	}
	c.srv.stats.netOutput.Add(int64(n))
	if cap(c.out) > 4*flushAt {
		c.out = nil
	} else {
		c.out = c.out[:0]
	}
	return err
}

// kill disconnects the client from another goroutine (CLIENT KILL).
func (c *client) kill() {
	c.killed.Store(true)
	c.nc.Close()
}

// resetState returns the connection to a new connection's state (RESET).
func (c *client) resetState() {
	c.mu.Lock()
	c.db = 0
	c.resp = 2
	c.name = ""
	c.readonly = false
	c.mu.Unlock()
	c.presp.Store(2)
	c.authenticated = c.srv.requirePass() == ""
	c.srv.hub.unsubscribeAll(c)
	c.discardTx()
}

func sortClients(cs []*client) {
	sort.Slice(cs, func(i, j int) bool { return cs[i].id < cs[j].id })
}
