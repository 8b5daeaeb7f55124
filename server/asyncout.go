package server

import (
	"net"
	"sync"
	"time"

	"concord/crdt"
)

// asyncOut is the output of a connection that has subscribed. Messages
// arrive from other goroutines at any time, also while the connection's
// goroutine waits for input, so the connection's own replies and the
// messages go into one buffer, in the order they are produced, and a
// writer goroutine per connection writes it out. The buffer is limited
// as Redis limits a client's output buffer: by the client-output-buffer-
// limit class "pubsub" while the connection has subscriptions, "normal"
// otherwise; what the writer has taken but not yet written counts too.
type asyncOut struct {
	mu       sync.Mutex
	cond     sync.Cond // signalled when a write completes
	buf      []byte    // not yet taken by the writer
	inflight int       // bytes the writer is writing
	// softAt is when the output first reached the soft limit (Unix
	// seconds, as Redis keeps it); zero while below.
	softAt  int64
	dead    bool // a limit was hit or a write failed: nothing more is kept
	closing bool // the connection ends: write what is left, then stop

	signal chan struct{} // wakes the writer; capacity 1
	done   chan struct{} // closed when the writer returns
}

// startAsync switches c's output to an asyncOut (its first subscription),
// keeping the replies not yet written in front.
func (c *client) startAsync() {
	if c.ao != nil {
		return
	}
	o := &asyncOut{signal: make(chan struct{}, 1), done: make(chan struct{})}
	o.cond.L = &o.mu
	o.buf = append(o.buf, c.out...)
	c.out = nil
	c.ao = o
	go c.writeLoop()
}

func (o *asyncOut) wake() {
	select {
	case o.signal <- struct{}{}:
	default:
	}
}

// appendReply adds one of the connection's own replies (called by serve).
func (o *asyncOut) appendReply(c *client, r crdt.Reply) {
	o.mu.Lock()
	if !o.dead {
		o.buf = appendReply(o.buf, r, c.resp)
		c.checkLimits()
	}
	big := len(o.buf) >= flushAt
	o.mu.Unlock()
	if big {
		o.wake()
	}
}

// push adds a message frame (called by whichever goroutine delivers it).
func (c *client) push(frame []byte) {
	o := c.ao
	o.mu.Lock()
	if o.dead {
		o.mu.Unlock()
		return
	}
	o.buf = append(o.buf, frame...)
	c.checkLimits()
	o.mu.Unlock()
	o.wake()
}

// pushResp is the protocol messages for c are encoded in.
func (c *client) pushResp() int { return int(c.presp.Load()) }

// checkLimits is Redis's checkClientOutputBufferLimits, run on every
// append with c.ao.mu held: past the hard limit, or past the soft limit
// for more than its seconds, the client is closed and its output dropped.
func (c *client) checkLimits() {
	o := c.ao
	class := 0
	if c.subscribedAny() {
		class = 2
	}
	lim := c.srv.cfg.obuf.Load()[class]
	used := uint64(len(o.buf) + o.inflight)
	over := lim.hard > 0 && used >= lim.hard
	if lim.soft > 0 && used >= lim.soft {
		now := time.Now().Unix()
		if o.softAt == 0 {
			o.softAt = now
		} else if now-o.softAt > lim.softSeconds {
			over = true
		}
	} else {
		o.softAt = 0
	}
	if !over {
		return
	}
	c.srv.log.Warn("client scheduled to be closed ASAP for overcoming of output buffer limits",
		"client", c.id, "addr", c.addr, "class", obufClasses[class], "pending", used)
	o.dead = true
	o.buf = nil
	o.cond.Broadcast()
	c.killed.Store(true)
	c.nc.Close()
}

// flush hands what serve produced to the writer. A connection without
// subscriptions then waits until it is written, as a connection that
// never subscribed does, so that one which stops reading stops being
// read rather than buffered for; a subscribed one goes on (Redis's pubsub
// limits bound it).
func (o *asyncOut) flush(c *client) error {
	o.wake()
	o.mu.Lock()
	defer o.mu.Unlock()
	if !c.subscribedAny() {
		for !o.dead && (len(o.buf) > 0 || o.inflight > 0) {
			o.cond.Wait()
		}
	}
	if o.dead {
		return net.ErrClosed
	}
	return nil
}

// writeLoop writes the buffer out until the connection ends.
func (c *client) writeLoop() {
	o := c.ao
	defer close(o.done)
	var spare []byte
	for {
		o.mu.Lock()
		for len(o.buf) == 0 && !o.closing && !o.dead {
			o.mu.Unlock()
			<-o.signal
			o.mu.Lock()
		}
		if o.dead || len(o.buf) == 0 {
			o.mu.Unlock()
			return
		}
		out := o.buf
		o.buf, spare = spare[:0], nil
		o.inflight = len(out)
		o.mu.Unlock()

		// In pieces, so that what is written stops counting against
		// the limits as it goes, as in Redis.
		var err error
		for off := 0; off < len(out) && err == nil; {
			end := min(off+flushAt, len(out))
			var n int
			n, err = c.nc.Write(out[off:end])
			c.srv.stats.netOutput.Add(int64(n))
			off += n
			o.mu.Lock()
			o.inflight = len(out) - off
			if err != nil {
				o.dead = true
				o.buf = nil
			}
			o.cond.Broadcast()
			o.mu.Unlock()
		}
		if err != nil {
			c.killed.Store(true)
			c.nc.Close()
			return
		}
		if cap(out) <= 4*flushAt {
			spare = out
		}
	}
}

// asyncDrainTimeout bounds how long an ending connection's last output
// may take to write (QUIT's +OK, replies to a client that half-closed).
const asyncDrainTimeout = 5 * time.Second

// endAsync stops the writer once it has written what is left, unless the
// connection was killed; serve calls it after the last subscription is
// gone, so nothing more arrives.
func (c *client) endAsync() {
	o := c.ao
	o.mu.Lock()
	o.closing = true
	o.mu.Unlock()
	o.wake()
	if c.killed.Load() {
		c.nc.Close()
	} else {
		c.nc.SetWriteDeadline(time.Now().Add(asyncDrainTimeout))
	}
	<-o.done
}
