package replication

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"sync/atomic"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	gproto "google.golang.org/protobuf/proto"

	pb "concord/proto"
)

// Pub/sub across regions. PUBLISH is not state: it is not written to the
// Raft log nor the replication log, and it is delivered best effort to
// the subscribers of every node of every region.
//
//   - Every node (leader or not) keeps one Publish stream to each peer
//     region, to one of its nodes, and sends there what is published on
//     it. Publications are never relayed through a third region, so in the
//     normal case each reaches each region once; while the link to a
//     region is down, what is published for it is dropped (counted), and
//     nothing is resent when it returns.
//   - The node a publication reaches (locally, or by a Publish stream)
//     delivers it to its own subscribers and fans it out to the other
//     nodes of its region over the region's broadcast channel
//     (Broadcaster), which never fans out further: one copy per node.
//   - Nothing blocks a publisher: each peer has a bounded queue, and what
//     does not fit is dropped and counted. The Publish stream is separate
//     from the effects Stream, so a burst of publishes does not hold up
//     replication, nor the reverse.
//
// The Publish RPC exists from protocol version 2 (PublishProtocol); a
// peer of version 1 answers Unimplemented and gets no publishes (counted
// as dropped) until it is upgraded.

// PublishProtocol is the first protocol version that serves Publish.
const PublishProtocol = 2

// PublishQueue is how many publications may wait for one peer region's
// stream; more are dropped.
const PublishQueue = 4096

// Broadcaster is what in-region fan-out needs from the local region;
// region.Node implements it. Broadcast must not block.
type Broadcaster interface {
	// Broadcast sends payload to every other node of the region, best
	// effort; it returns for how many it was queued and dropped.
	Broadcast(payload []byte) (sent, dropped int)
	// SetBroadcastHandler sets what receives other nodes' broadcasts.
	SetBroadcastHandler(fn func(payload []byte))
	// BroadcastCounts returns messages written to other nodes, dropped,
	// and received from them.
	BroadcastCounts() (sent, dropped, received uint64)
}

// PublishHandler delivers a publication to this node's subscribers and
// returns how many it reached. It must not block for long: it is called
// from PUBLISH on this node and from the streams that bring other nodes'
// publications, one goroutine per stream.
type PublishHandler func(channel, message []byte) int

// PublishStats count one peer region's publications at this node.
type PublishStats struct {
	Sent     uint64 // written to this node's Publish stream to the peer
	Dropped  uint64 // meant for the peer, not written: no stream, queue full, or the peer too old
	Received uint64 // received from the peer on Publish streams to this node (and delivered)
	// Up: this node's Publish stream to the peer is open (otherwise what
	// is published here is dropped for that peer).
	Up bool
}

// SetPublishHandler sets the function that delivers publications to this
// node's subscribers (nil: none are delivered).
func (m *Manager) SetPublishHandler(fn PublishHandler) {
	if fn == nil {
		m.onPublish.Store(nil)
		return
	}
	m.onPublish.Store(&fn)
}

// Publish delivers a PUBLISH made on this node: to this node's
// subscribers (the count is what the handler returns), to the other nodes
// of the region, and to every peer region. It never blocks on the
// network.
func (m *Manager) Publish(channel, message []byte) int {
	p := &pb.Publication{Channel: channel, Message: message, OriginRegion: m.cfg.Region.Origin().Region}
	n := m.deliver(p)
	m.fanout(p)
	for _, pu := range m.publishers {
		pu.enqueue(p)
	}
	return n
}

// PublishStats returns, per peer region, this node's publication counters.
func (m *Manager) PublishStats() map[uint32]PublishStats {
	out := map[uint32]PublishStats{}
	recv := m.service.publishesReceived()
	for _, pu := range m.publishers {
		out[pu.peer.Region] = PublishStats{Sent: pu.sent.Load(), Dropped: pu.dropped.Load(), Received: recv[pu.peer.Region], Up: pu.up.Load()}
	}
	return out
}

func (m *Manager) deliver(p *pb.Publication) int {
	if h := m.onPublish.Load(); h != nil {
		return (*h)(p.Channel, p.Message)
	}
	return 0
}

// fanout sends p to the other nodes of the region.
func (m *Manager) fanout(p *pb.Publication) {
	b, ok := m.cfg.Region.(Broadcaster)
	if !ok {
		return
	}
	payload, err := gproto.Marshal(p)
	if err != nil {
		return
	}
	b.Broadcast(payload)
}

// fannedIn delivers a publication another node of the region fanned out;
// it goes no further.
func (m *Manager) fannedIn(payload []byte) {
	var p pb.Publication
	if err := gproto.Unmarshal(payload, &p); err != nil {
		m.cfg.Logger.Warn("bad publication from a region member", "err", err)
		return
	}
	m.deliver(&p)
}

// fromPeer handles a publication a peer region sent this node.
func (m *Manager) fromPeer(p *pb.Publication) {
	m.deliver(p)
	m.fanout(p)
}

// publisher keeps this node's Publish stream to one peer region.
type publisher struct {
	m     *Manager
	peer  Peer
	queue chan *pb.Publication
	up    atomic.Bool // a stream is accepted: publications are queued

	sent, dropped atomic.Uint64
}

func newPublisher(m *Manager, p Peer) *publisher {
	return &publisher{m: m, peer: p, queue: make(chan *pb.Publication, PublishQueue)}
}

// enqueue queues p for the peer, or drops it.
func (pu *publisher) enqueue(p *pb.Publication) {
	if !pu.up.Load() {
		pu.dropped.Add(1)
		return
	}
	select {
	case pu.queue <- p:
	default:
		pu.dropped.Add(1)
	}
}

// oldPeerRetry is how long a peer too old for Publish is left alone.
const oldPeerRetry = 30 * time.Second

func (pu *publisher) run(ctx context.Context) {
	log := pu.m.cfg.Logger.With("peer", pu.peer.Name, "peer_region", pu.peer.Region)
	backoff := 50 * time.Millisecond
	next := 0
	for ctx.Err() == nil {
		addr := pu.peer.Addrs[next%len(pu.peer.Addrs)]
		start := time.Now()
		err := pu.session(ctx, addr)
		if ctx.Err() != nil {
			return
		}
		wait := backoff/2 + rand.N(backoff)
		if c := status.Code(err); c == codes.Unimplemented || c == codes.FailedPrecondition {
			log.Info("peer region takes no publishes (older protocol)", "addr", addr, "err", err)
			wait = oldPeerRetry
		} else {
			log.Debug("publish stream ended", "addr", addr, "err", err)
			next++
		}
		if time.Since(start) > 10*time.Second {
			backoff = 50 * time.Millisecond
		} else if backoff < 2*time.Second {
			backoff *= 2
		}
		select {
		case <-time.After(wait):
		case <-ctx.Done():
			return
		}
	}
}

// session runs one Publish stream to addr until it breaks.
func (pu *publisher) session(ctx context.Context, addr string) error {
	conn, err := pu.m.dial(pu.peer.Region, addr)
	if err != nil {
		return err
	}
	defer conn.Close()
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stream, err := pb.NewReplicationClient(conn).Publish(sctx)
	if err != nil {
		return err
	}
	self := pu.m.cfg.Region.Origin()
	h := &pb.Hello{MinProtocol: PublishProtocol, MaxProtocol: MaxProtocol, Region: self.Region,
		Incarnation: self.Incarnation, Name: pu.m.cfg.Name, ToRegion: pu.peer.Region, WallMs: pu.m.cfg.Clock().UnixMilli()}
	if err := stream.Send(&pb.PublishPush{Msg: &pb.PublishPush_Hello{Hello: h}}); err != nil {
		_, err = stream.Recv()
		return err
	}
	accepted := time.AfterFunc(helloTimeout, cancel)
	m, err := stream.Recv()
	accepted.Stop()
	if err != nil {
		return err
	}
	if a := m.GetAccepted(); a == nil || a.Region != pu.peer.Region {
		return fmt.Errorf("%w: Publish not accepted by region %d: %v", ErrProtocol, pu.peer.Region, m)
	}
	pu.up.Store(true)
	defer func() {
		pu.up.Store(false)
		for { // what was queued for this stream is lost with it
			select {
			case <-pu.queue:
				pu.dropped.Add(1)
			default:
				return
			}
		}
	}()
	recvErr := make(chan error, 1)
	go func() {
		_, err := stream.Recv() // the receiver sends nothing more: this is the end
		recvErr <- err
	}()
	for {
		select {
		case p := <-pu.queue:
			if err := stream.Send(&pb.PublishPush{Msg: &pb.PublishPush_Publication{Publication: p}}); err != nil {
				pu.dropped.Add(1)
				return err
			}
			pu.sent.Add(1)
		case err := <-recvErr:
			return err
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// Publish implements pb.ReplicationServer: publications from one node of
// a peer region.
func (s *Service) Publish(st pb.Replication_PublishServer) error {
	h, err := awaitHello(st.Recv, "Publish")
	if err != nil {
		return err
	}
	self := s.region.Origin().Region
	if s.allow != nil && !s.allow(h.Region) {
		return status.Errorf(codes.PermissionDenied, "replication: region %d is not a configured peer of region %d", h.Region, self)
	}
	if s.identity {
		if err := clientRegion(st.Context(), h.Region); err != nil {
			s.log.Error("publish stream refused", "from", h.Name, "region", h.Region, "err", err)
			return err
		}
	}
	if h.ToRegion != self || h.Region == self {
		return status.Errorf(codes.InvalidArgument, "replication: Publish from region %d meant for region %d reached region %d", h.Region, h.ToRegion, self)
	}
	proto := uint32(MaxProtocol)
	if h.MaxProtocol < proto {
		proto = h.MaxProtocol
	}
	if proto < PublishProtocol || proto < h.MinProtocol {
		return status.Errorf(codes.FailedPrecondition, "%v: Publish from a sender speaking %d..%d, this region %d..%d",
			ErrVersion, h.MinProtocol, h.MaxProtocol, PublishProtocol, MaxProtocol)
	}
	if err := st.Send(&pb.PublishPull{Msg: &pb.PublishPull_Accepted{Accepted: &pb.PublishAccepted{Protocol: proto, Region: self, Name: s.name}}}); err != nil {
		return err
	}
	count := s.publishCounter(h.Region)
	for {
		m, err := st.Recv()
		if err != nil {
			if errors.Is(err, io.EOF) || errors.Is(err, context.Canceled) {
				return nil // the sender closed it
			}
			return err
		}
		p := m.GetPublication()
		if p == nil || p.OriginRegion != h.Region {
			// Publications are never relayed: one from elsewhere is a
			// sender's bug, which would break exactly-once delivery.
			return status.Errorf(codes.InvalidArgument, "replication: Publish stream from region %d carried %v", h.Region, m)
		}
		if s.onPublication != nil {
			s.onPublication(p)
		}
		count.Add(1)
	}
}

// publishCounter returns the received counter of region r.
func (s *Service) publishCounter(r uint32) *atomic.Uint64 {
	s.pubMu.Lock()
	defer s.pubMu.Unlock()
	if s.pubRecv == nil {
		s.pubRecv = map[uint32]*atomic.Uint64{}
	}
	c := s.pubRecv[r]
	if c == nil {
		c = new(atomic.Uint64)
		s.pubRecv[r] = c
	}
	return c
}

func (s *Service) publishesReceived() map[uint32]uint64 {
	s.pubMu.Lock()
	defer s.pubMu.Unlock()
	out := map[uint32]uint64{}
	for r, c := range s.pubRecv {
		out[r] = c.Load()
	}
	return out
}
