package region

import (
	"bufio"
	"net"
	"sync"
	"sync/atomic"
	"time"

	pb "concord/proto"
)

// The broadcast channel: fire-and-forget messages from one node to every
// other member of the region, for what must reach every node but is not
// state (cross-region replication carries PUBLISH this way). Each node
// keeps one connection to each other member, on the member's Raft port
// with first byte broadcastMagic, and only ever writes on it; the member
// hands each message to its handler. Nothing is acknowledged or retried:
// a member that is down, unreachable or too slow misses what was sent
// meanwhile, and the sender counts it as dropped. Broadcast never blocks.
//
// Why not the forwarding channel: it runs from each follower to the
// leader only and every request waits for an answer; broadcasts go from
// any node to all, and nobody waits.

// broadcastMagic is the first byte of a broadcast connection.
const broadcastMagic = 'B'

// broadcastQueueBytes bounds what may wait for one member's connection;
// beyond it messages are dropped rather than buffered without limit.
const broadcastQueueBytes = 4 << 20

// broadcastRedial is how long a member that could not be reached is
// skipped (its messages dropped) before it is dialed again.
const broadcastRedial = time.Second

type broadcaster struct {
	n       *Node
	handler atomic.Pointer[func([]byte)]

	mu     sync.Mutex
	conns  map[string]*bcConn // by member address
	closed bool

	sent, dropped, received atomic.Uint64
}

type bcConn struct {
	b      *broadcaster
	addr   string
	mu     sync.Mutex
	queue  [][]byte // frames waiting for the writer
	bytes  int
	signal chan struct{}
	dead   chan struct{}
	failed time.Time // dial failed at: skipped until broadcastRedial later
	once   sync.Once
}

func newBroadcaster(n *Node) *broadcaster {
	return &broadcaster{n: n, conns: map[string]*bcConn{}}
}

// SetBroadcastHandler sets the function given every broadcast message
// another member sends this node (nil: they are discarded). It is called
// from one goroutine per sending member, so messages of one sender arrive
// in order; it must not block for long.
func (n *Node) SetBroadcastHandler(fn func(payload []byte)) {
	if fn == nil {
		n.bc.handler.Store(nil)
		return
	}
	n.bc.handler.Store(&fn)
}

// Broadcast sends payload to every other member of the region as this
// node's Raft configuration lists them, best effort, without blocking. It
// returns for how many members it was queued and for how many it was
// dropped at once; a queued message may still be lost with its connection.
func (n *Node) Broadcast(payload []byte) (sent, dropped int) {
	if n.raft == nil || n.closing.Load() {
		return 0, 0
	}
	f := n.raft.GetConfiguration()
	if f.Error() != nil {
		return 0, 0
	}
	frame, err := appendFrame(nil, &pb.Broadcast{Payload: payload})
	if err != nil {
		return 0, 0
	}
	for _, s := range f.Configuration().Servers {
		if string(s.ID) == n.id {
			continue
		}
		if n.bc.conn(string(s.Address)).push(frame) {
			sent++
		} else {
			dropped++
		}
	}
	n.bc.dropped.Add(uint64(dropped))
	return sent, dropped
}

// BroadcastCounts returns the node's broadcast counters, per member
// message (a Broadcast that reaches two members counts 2 sent): sent were
// written to a member's connection; dropped were not (member unreachable,
// its queue full, or its connection lost); received were handed to this
// node's handler.
func (n *Node) BroadcastCounts() (sent, dropped, received uint64) {
	return n.bc.sent.Load(), n.bc.dropped.Load(), n.bc.received.Load()
}

// conn returns the connection to addr, starting one if there is none or
// the previous one died (and its redial pause is over).
func (b *broadcaster) conn(addr string) *bcConn {
	b.mu.Lock()
	defer b.mu.Unlock()
	c := b.conns[addr]
	if c != nil {
		select {
		case <-c.dead:
			if time.Since(c.failed) < broadcastRedial || b.closed {
				return c // dead: push drops
			}
		default:
			return c
		}
	}
	c = &bcConn{b: b, addr: addr, signal: make(chan struct{}, 1), dead: make(chan struct{})}
	if b.closed {
		c.kill(time.Now())
		return c
	}
	b.conns[addr] = c
	go c.run()
	return c
}

func (b *broadcaster) close() {
	b.mu.Lock()
	b.closed = true
	conns := b.conns
	b.conns = map[string]*bcConn{}
	b.mu.Unlock()
	for _, c := range conns {
		c.kill(time.Time{})
	}
}

// push queues a frame; false if it is dropped.
func (c *bcConn) push(frame []byte) bool {
	c.mu.Lock()
	select {
	case <-c.dead:
		c.mu.Unlock()
		return false
	default:
	}
	if c.bytes+len(frame) > broadcastQueueBytes {
		c.mu.Unlock()
		return false
	}
	c.queue = append(c.queue, frame)
	c.bytes += len(frame)
	c.mu.Unlock()
	select {
	case c.signal <- struct{}{}:
	default:
	}
	return true
}

// kill ends the connection; what is still queued is dropped (counted).
func (c *bcConn) kill(at time.Time) {
	c.once.Do(func() {
		c.mu.Lock()
		c.failed = at
		lost := len(c.queue)
		c.queue, c.bytes = nil, 0
		close(c.dead)
		c.mu.Unlock()
		c.b.dropped.Add(uint64(lost))
	})
}

// run dials the member and writes what is queued until the connection or
// the node ends.
func (c *bcConn) run() {
	n := c.b.n
	conn, err := n.mux.dialPeer(c.addr, time.Second)
	if err == nil {
		_, err = conn.Write([]byte{broadcastMagic})
	}
	if err != nil {
		if conn != nil {
			conn.Close()
		}
		n.log.Debug("broadcast: member unreachable", "addr", c.addr, "err", err)
		c.kill(time.Now())
		return
	}
	defer conn.Close()
	var out []byte
	for {
		select {
		case <-c.signal:
		case <-c.dead:
			return
		case <-n.stop:
			c.kill(time.Now())
			return
		}
		c.mu.Lock()
		out = out[:0]
		for _, f := range c.queue {
			out = append(out, f...)
		}
		frames := len(c.queue)
		c.queue, c.bytes = c.queue[:0], 0
		c.mu.Unlock()
		if frames == 0 {
			continue
		}
		conn.SetWriteDeadline(time.Now().Add(5 * time.Second))
		if _, err := conn.Write(out); err != nil {
			n.log.Debug("broadcast: connection lost", "addr", c.addr, "err", err)
			c.b.dropped.Add(uint64(frames))
			c.kill(time.Now())
			return
		}
		c.b.sent.Add(uint64(frames))
	}
}

// serveBroadcast reads a member's broadcast connection.
func (n *Node) serveBroadcast(c net.Conn) {
	defer c.Close()
	br := bufio.NewReaderSize(c, 64<<10)
	for {
		var m pb.Broadcast
		if err := readFrame(br, &m); err != nil {
			return
		}
		if h := n.bc.handler.Load(); h != nil {
			(*h)(m.Payload)
		}
		n.bc.received.Add(1) // after the handler: counted means delivered
	}
}
