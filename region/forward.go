package region

import (
	"bufio"
	"context"
	"net"
	"sync"
	"time"

	"concord/crdt"
	pb "concord/proto"
)

// The forwarding channel: a follower keeps one connection to its leader
// (on the leader's Raft port, first byte forwardMagic) and sends it writes,
// read-index requests and admin commands; replies come back in any order,
// matched by id. Writes of one follower are sent, and proposed by the
// leader, in the order the follower's batcher saw them.

// remoteCall is a forwarded write on the leader: how to answer the
// follower.
type remoteCall struct {
	conn *remoteConn
	id   uint64
}

func (c *remoteCall) reply(r *pb.ForwardReply) {
	r.Id = c.id
	c.conn.send(r)
}

func (c *remoteCall) notLeader() {
	addr, id := c.conn.n.raft.LeaderWithID()
	c.reply(&pb.ForwardReply{Status: pb.ForwardReply_STATUS_NOT_LEADER, LeaderId: string(id), LeaderAddr: string(addr)})
}

func (c *remoteCall) inDoubt(index uint64) {
	c.reply(&pb.ForwardReply{Status: pb.ForwardReply_STATUS_IN_DOUBT, Index: index})
}

func (c *remoteCall) fail(err error) {
	c.reply(&pb.ForwardReply{Status: pb.ForwardReply_STATUS_FAILED, Error: errText(err)})
}

// remoteConn is the leader's end of a follower's forwarding connection.
type remoteConn struct {
	n    *Node
	c    net.Conn
	out  *frameQueue
	done chan struct{}
}

func (rc *remoteConn) send(r *pb.ForwardReply) { rc.out.push(r) }

func (rc *remoteConn) writeLoop() {
	if rc.out.writeTo(rc.c, 10*time.Second, rc.done) != nil {
		rc.c.Close()
	}
}

// serveForward runs the leader's end of a forwarding connection.
func (n *Node) serveForward(c net.Conn) {
	<-n.raftUp
	if n.raft == nil { // Open failed
		c.Close()
		return
	}
	rc := &remoteConn{n: n, c: c, out: newFrameQueue(), done: make(chan struct{})}
	defer close(rc.done)
	defer c.Close()
	go rc.writeLoop()
	br := bufio.NewReaderSize(c, 64<<10)
	for {
		var m pb.Forward
		if err := readFrame(br, &m); err != nil {
			return
		}
		call := &remoteCall{conn: rc, id: m.Id}
		switch m.Op {
		case pb.Forward_OP_HELLO:
			if m.NodeId != "" {
				n.peerInfo.Store(m.NodeId, peerInfo{resp: m.RespAddr, applied: m.Applied, seen: time.Now()})
			}
			call.reply(&pb.ForwardReply{Status: pb.ForwardReply_STATUS_OK, NodeId: n.id, RespAddr: n.cfg.RESPAddr})
		case pb.Forward_OP_WRITE:
			if n.closing.Load() || (m.Term != 0 && m.Term != n.raft.CurrentTerm()) {
				call.notLeader() // the follower tries the next leader
				continue
			}
			now := time.Now()
			s := &submission{units: m.Units, start: now, deadline: now.Add(inDoubtWait), remote: call, remoteTerm: m.Term}
			s.done = func(r []crdt.Result) {
				call.reply(&pb.ForwardReply{Status: pb.ForwardReply_STATUS_OK, Results: resultsToPB(r)})
			}
			n.reg.add(s)
			n.submit(s)
		case pb.Forward_OP_READ_INDEX:
			go func() {
				ctx, cancel := context.WithTimeout(context.Background(), noLeaderWait)
				defer cancel()
				idx, err := n.leaderReadIndex(ctx)
				switch {
				case err == errNotLeader:
					call.notLeader()
				case err != nil:
					call.fail(err)
				default:
					call.reply(&pb.ForwardReply{Status: pb.ForwardReply_STATUS_OK, Index: idx})
				}
			}()
		case pb.Forward_OP_ADMIN:
			go func() {
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				defer cancel()
				if !n.Leader() {
					call.notLeader()
					return
				}
				r := n.adminLocal(ctx, m.Args)
				call.reply(&pb.ForwardReply{Status: pb.ForwardReply_STATUS_OK, Reply: replyToPB(r)})
			}()
		case pb.Forward_OP_QUERY:
			go func() {
				if !n.Leader() {
					call.notLeader()
					return
				}
				call.reply(&pb.ForwardReply{Status: pb.ForwardReply_STATUS_OK, Reply: replyToPB(n.runQuery(m.Args))})
			}()
		default:
			call.fail(&Error{"ERR unknown forwarding operation"})
		}
	}
}

// forwarder is a follower's end: one connection to the current leader.
type forwarder struct {
	n      *Node
	mu     sync.Mutex
	conn   *fwdConn
	closed bool
}

type fwdConn struct {
	f        *forwarder
	addr     string
	c        net.Conn
	mu       sync.Mutex
	nextID   uint64
	pending  map[uint64]*fwdCall
	out      *frameQueue
	dead     chan struct{}
	deadOnce sync.Once
	retired  bool // guarded by mu: takes no new requests
}

// fwdCall is a request waiting for its reply: a write (sub) or a call
// answered on ch.
type fwdCall struct {
	sub *submission
	ch  chan *pb.ForwardReply
}

func newForwarder(n *Node) *forwarder { return &forwarder{n: n} }

// leaderChanged retires the connection to a former leader.
func (f *forwarder) leaderChanged() {
	addr, _ := f.n.raft.LeaderWithID()
	f.mu.Lock()
	c := f.conn
	if c != nil && c.addr != string(addr) {
		f.conn = nil
	} else {
		c = nil
	}
	f.mu.Unlock()
	if c != nil {
		c.retire()
	}
}

func (f *forwarder) close() {
	f.mu.Lock()
	f.closed = true
	c := f.conn
	f.conn = nil
	f.mu.Unlock()
	if c != nil {
		c.kill()
	}
}

// get returns a connection to the current leader, dialing if needed.
func (f *forwarder) get() (*fwdConn, error) {
	addr, _ := f.n.raft.LeaderWithID()
	if addr == "" {
		return nil, ErrNoLeader
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return nil, ErrShutdown
	}
	if f.conn != nil {
		select {
		case <-f.conn.dead:
			f.conn = nil
		default:
			if f.conn.addr == string(addr) {
				return f.conn, nil
			}
			f.conn.retire()
			f.conn = nil
		}
	}
	c, err := f.n.mux.dialPeer(string(addr), time.Second)
	if err != nil {
		return nil, err
	}
	if _, err := c.Write([]byte{forwardMagic}); err != nil {
		c.Close()
		return nil, err
	}
	fc := &fwdConn{f: f, addr: string(addr), c: c, pending: map[uint64]*fwdCall{},
		out: newFrameQueue(), dead: make(chan struct{})}
	go fc.writeLoop()
	go fc.readLoop()
	fc.request(&pb.Forward{Op: pb.Forward_OP_HELLO, NodeId: f.n.id, RespAddr: f.n.cfg.RESPAddr}, &fwdCall{ch: make(chan *pb.ForwardReply, 1)})
	f.conn = fc
	return fc, nil
}

// send forwards a write. If the leader cannot be reached the write is
// parked and retried: it never left this node.
func (f *forwarder) send(s *submission) {
	c, err := f.get()
	if err != nil {
		f.n.park(s)
		return
	}
	term := f.n.raft.CurrentTerm()
	if !f.n.reg.claim(s, term) {
		return // answered already: never send it
	}
	f.n.cfg.Metrics.addForwarded(len(s.units))
	if !c.request(&pb.Forward{Op: pb.Forward_OP_WRITE, Units: s.units, Term: term}, &fwdCall{sub: s}) {
		f.n.park(s)
	}
}

// call sends a request and waits for its reply.
func (f *forwarder) call(ctx context.Context, m *pb.Forward) (*pb.ForwardReply, error) {
	c, err := f.get()
	if err != nil {
		return nil, err
	}
	call := &fwdCall{ch: make(chan *pb.ForwardReply, 1)}
	if !c.request(m, call) {
		return nil, ErrNoLeader
	}
	select {
	case r := <-call.ch:
		if r == nil {
			return nil, ErrNoLeader
		}
		return r, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// request queues m; false if the connection is already dead (nothing sent).
func (c *fwdConn) request(m *pb.Forward, call *fwdCall) bool {
	c.mu.Lock()
	select {
	case <-c.dead:
		c.mu.Unlock()
		return false
	default:
	}
	if c.retired {
		c.mu.Unlock()
		return false
	}
	c.nextID++
	m.Id = c.nextID
	c.pending[m.Id] = call
	c.out.push(m) // under c.mu: frames go out in id order
	c.mu.Unlock()
	return true
}

func (c *fwdConn) writeLoop() {
	if c.out.writeTo(c.c, 5*time.Second, c.dead) != nil {
		c.kill()
	}
}

func (c *fwdConn) readLoop() {
	defer c.kill()
	br := bufio.NewReaderSize(c.c, 64<<10)
	for {
		var r pb.ForwardReply
		if err := readFrame(br, &r); err != nil {
			return
		}
		c.mu.Lock()
		call := c.pending[r.Id]
		delete(c.pending, r.Id)
		drained := c.retired && len(c.pending) == 0 // close after this reply
		c.mu.Unlock()
		switch {
		case call == nil:
		case call.sub == nil:
			call.ch <- &r
		default:
			c.settle(call.sub, &r)
		}
		if drained {
			return
		}
	}
}

// settle hands a forwarded write the leader's answer.
func (c *fwdConn) settle(s *submission, r *pb.ForwardReply) {
	n := c.f.n
	switch r.Status {
	case pb.ForwardReply_STATUS_OK:
		results := make([]crdt.Result, len(r.Results))
		for i, u := range r.Results {
			results[i] = resultFromPB(u)
		}
		n.reg.settle(s, results)
	case pb.ForwardReply_STATUS_NOT_LEADER:
		n.park(s)
	case pb.ForwardReply_STATUS_IN_DOUBT:
		n.reg.watch(s, r.Index)
	default:
		n.reg.fail(s, &Error{r.Error})
	}
}

// retire stops new requests on a connection to a former leader but keeps
// it open until that leader has answered what was sent on it: it still
// knows whether each write was proposed (NOT_LEADER means it never reached
// the log, so the write is sent to the new leader instead of waiting out
// its deadline in doubt). A leader that does not answer is given up on
// after inDoubtWait.
func (c *fwdConn) retire() {
	c.mu.Lock()
	c.retired = true
	idle := len(c.pending) == 0
	c.mu.Unlock()
	if idle {
		c.kill()
		return
	}
	time.AfterFunc(inDoubtWait, c.kill)
}

// kill closes the connection. Writes sent on it stay registered: the
// leader may have proposed them, so they wait for apply on this node to
// deliver them, or for their deadline (in doubt).
func (c *fwdConn) kill() {
	c.deadOnce.Do(func() {
		c.mu.Lock()
		close(c.dead)
		pending := c.pending
		c.pending = nil
		c.mu.Unlock()
		c.c.Close()
		for _, call := range pending {
			if call.sub == nil {
				call.ch <- nil
			}
		}
	})
}
