package replication

import (
	"context"
	"errors"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"

	"google.golang.org/grpc"

	pb "concord/proto"
)

// Peer is another region this one replicates with.
type Peer struct {
	Region uint32
	Name   string
	// Addrs are the replication addresses of the peer region's nodes; the
	// shipper tries them in turn. Any node accepts a stream.
	Addrs []string
}

// Shipper streams the local region's log to one peer region while this
// node leads its region, reconnecting with backoff whenever the stream
// breaks. It is the thin gRPC adapter around a Sender.
type Shipper struct {
	region Region
	peer   Peer
	name   string
	dial   func(addr string) (*grpc.ClientConn, error)
	log    *slog.Logger
	clock  func() time.Time
	tick   time.Duration

	mu      sync.Mutex // guards snd (Stats is read by metrics)
	snd     *Sender
	addr    string // address of the current or latest stream
	lastErr string
}

func newShipper(region Region, name string, peer Peer, cfg SenderConfig, dial func(string) (*grpc.ClientConn, error), log *slog.Logger, clock func() time.Time) *Shipper {
	return &Shipper{
		region: region, peer: peer, name: name, dial: dial, clock: clock, tick: 20 * time.Millisecond,
		log: log.With("peer", peer.Name, "peer_region", peer.Region),
		snd: NewSender(cfg, Viewer(region.ReplView), region.Origin(), name, peer.Region),
	}
}

// PeerStatus describes one peer as this node's shipper sees it.
type PeerStatus struct {
	Peer    Peer
	Addr    string // address of the current (or latest) stream
	LastErr string // why the latest stream ended, if it did
	SenderStats
}

// Status returns the shipper's view of its peer.
func (sh *Shipper) Status() PeerStatus {
	sh.mu.Lock()
	defer sh.mu.Unlock()
	return PeerStatus{Peer: sh.peer, Addr: sh.addr, LastErr: sh.lastErr, SenderStats: sh.snd.Stats()}
}

// run ships while ctx lasts.
func (sh *Shipper) run(ctx context.Context) {
	backoff := 50 * time.Millisecond
	next := 0
	for ctx.Err() == nil {
		leader, changed := sh.region.LeaderWatch()
		if !leader {
			select {
			case <-changed:
				continue
			case <-ctx.Done():
				return
			}
		}
		addr := sh.peer.Addrs[next%len(sh.peer.Addrs)]
		start := time.Now()
		err := sh.session(ctx, addr, changed)
		if ctx.Err() != nil {
			return
		}
		sh.mu.Lock()
		if err != nil {
			sh.lastErr = err.Error()
		}
		sh.mu.Unlock()
		var own *OwnAheadError
		switch {
		case errors.As(err, &own):
			sh.renew(ctx, own)
		case err != nil:
			sh.log.Debug("replication stream ended", "addr", addr, "err", err)
			next++ // try the peer's next node
		}
		if time.Since(start) > 10*time.Second {
			backoff = 50 * time.Millisecond
		}
		// Jitter keeps the regions' reconnects from marching in step.
		wait := backoff/2 + rand.N(backoff)
		if backoff < 2*time.Second {
			backoff *= 2
		}
		select {
		case <-time.After(wait):
		case <-ctx.Done():
			return
		}
	}
}

// Renewer is implemented by a Region that can move to a new incarnation
// (region.Node.RenewIncarnation): it returns once this node has applied an
// incarnation above the one it had when called.
type Renewer interface {
	RenewIncarnation(ctx context.Context) error
}

// renew handles a peer that holds writes of this region's origin beyond
// what the region applied (OwnAheadError): once the local view is current
// (a leader just elected may still be applying what its predecessor
// shipped), if the origin is still the one checked and still behind, the
// region takes a new incarnation before anything more is shipped: the
// session has ended, and the next one says Hello under the new origin.
// Renewals started by several shippers at once make one (RenewIncarnation
// renews only from the incarnation its caller saw). Failures are logged;
// the next handshake notices again.
func (sh *Shipper) renew(ctx context.Context, e *OwnAheadError) {
	fctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	err := sh.region.ReadFence(fctx)
	cancel()
	if err != nil {
		sh.log.Warn("peer holds writes of this region's origin beyond its state; cannot check it now", "origin", e.Origin, "err", err)
		return
	}
	if cur := sh.region.Origin(); cur != e.Origin {
		return // renewed meanwhile
	}
	local := Viewer(sh.region.ReplView).Version().Get(e.Origin)
	if local >= e.Peer {
		return // this node had not applied its region's latest writes yet
	}
	r, ok := sh.region.(Renewer)
	if !ok {
		sh.log.Error("peer holds writes of this region's origin that the region lost, and the region cannot renew its incarnation",
			"origin", e.Origin, "peer_seq", e.Peer, "local_seq", local)
		return
	}
	sh.log.Warn("peer holds writes of this region's origin that the region lost (restored from an older state?): taking a new incarnation",
		"origin", e.Origin, "peer_seq", e.Peer, "local_seq", local)
	rctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	err = r.RenewIncarnation(rctx)
	cancel()
	if err != nil {
		sh.log.Warn("renewing the incarnation failed; retrying at the next handshake", "origin", e.Origin, "err", err)
		return
	}
	sh.log.Warn("took a new incarnation", "from", e.Origin, "to", sh.region.Origin())
}

// errLostLeadership ends a session when this node stops leading.
var errLostLeadership = errors.New("replication: this node no longer leads its region")

// session runs one stream to addr until it breaks or this node stops
// leading (leaderChanged closes).
func (sh *Shipper) session(ctx context.Context, addr string, leaderChanged <-chan struct{}) error {
	conn, err := sh.dial(addr)
	if err != nil {
		return err
	}
	defer conn.Close()
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stream, err := pb.NewReplicationClient(conn).Stream(sctx)
	if err != nil {
		return err
	}
	// Read per stream: a renewal moves the origin.
	origin := sh.region.Origin()
	sh.mu.Lock()
	sh.snd.SetOrigin(origin)
	sh.addr = addr
	sh.snd.Tick(sh.clock().UnixMilli())
	sh.snd.Connected()
	sh.mu.Unlock()
	defer func() {
		sh.mu.Lock()
		sh.snd.Disconnected()
		sh.mu.Unlock()
	}()

	pulls := make(chan *pb.Pull, 16)
	recvErr := make(chan error, 1)
	go func() {
		for {
			m, err := stream.Recv()
			if err != nil {
				recvErr <- err
				return
			}
			select {
			case pulls <- m:
			case <-sctx.Done():
				return
			}
		}
	}()
	ticker := time.NewTicker(sh.tick)
	defer ticker.Stop()
	_, progress := sh.region.Progress()
	for {
		if err := sh.flush(stream); err != nil {
			return err
		}
		select {
		case m := <-pulls:
			// Re-read for every message: a node that has just become
			// leader may apply the entry fixing its origin only after the
			// Hello, and a renewal may happen mid-stream; the peer's
			// vectors must be checked against the current origin.
			origin := sh.region.Origin()
			sh.mu.Lock()
			sh.snd.SetOrigin(origin)
			sh.snd.Tick(sh.clock().UnixMilli())
			err := sh.snd.Step(m)
			sh.mu.Unlock()
			if err != nil {
				return err
			}
		case <-progress:
			_, progress = sh.region.Progress()
		case <-ticker.C:
			sh.mu.Lock()
			sh.snd.Tick(sh.clock().UnixMilli())
			sh.mu.Unlock()
		case err := <-recvErr:
			return err
		case <-leaderChanged:
			return errLostLeadership
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// errStuck ends a session whose peer stopped answering.
var errStuck = errors.New("replication: peer silent or not acknowledging in time; reconnecting")

// flush sends what the sender has ready, taking a snapshot first if it
// asks for one.
func (sh *Shipper) flush(stream pb.Replication_StreamClient) error {
	sh.mu.Lock()
	if sh.snd.NeedsSnapshot() {
		sh.mu.Unlock()
		data, vv, next := Viewer(sh.region.ReplView).Snapshot()
		sh.log.Info("peer needs a state transfer", "bytes", len(data))
		sh.mu.Lock()
		sh.snd.SetSnapshot(data, vv, next)
	}
	msgs, reset := sh.snd.Ready()
	sh.mu.Unlock()
	if reset {
		return errStuck
	}
	for _, m := range msgs {
		if err := stream.Send(m); err != nil {
			return err
		}
	}
	return nil
}
