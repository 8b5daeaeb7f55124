package replication

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/keepalive"

	"concord/crdt"
	pb "concord/proto"
)

// Config configures a node's replication: the service it serves and the
// shippers it runs while it leads its region.
type Config struct {
	Region Region
	// Name is the local region's name, shown to peers.
	Name string
	// Listener accepts replication streams from other regions (every node
	// serves them). Nil serves nothing: the node only ships.
	Listener net.Listener
	// Peers are the other regions.
	Peers []Peer
	// TLS, if set, secures replication both ways with mutual TLS: it must
	// hold this node's certificate and the CA that signs the peers'. Every
	// certificate must then name its region (URI SAN
	// concord://region/<id>, see CertRegion): a stream whose Hello claims
	// another region than its client certificate names is refused with
	// PermissionDenied, and a shipper refuses a server whose certificate
	// does not name the region it meant to reach.
	TLS *tls.Config
	// TLSAnyRegion turns that identity check off: any certificate the CA
	// signed may claim any region. Only for CA-only setups whose
	// certificates name no region; the CA is then trusted to sign only
	// honest nodes.
	TLSAnyRegion bool
	// Sender tunes every shipper.
	Sender SenderConfig
	// Dial, if set, replaces the TCP dialer (tests route links through a
	// fault-injecting proxy this way).
	Dial func(ctx context.Context, addr string) (net.Conn, error)
	// Keepalive is how long a stream may stay silent: a shipper that hears
	// nothing (no ack, no answer to its 1 s pings) from its peer for this
	// long breaks the stream and reconnects, and the service drops a
	// stream that sent nothing for this long while nothing of it was
	// pending. It also sets gRPC's keepalive, which gRPC raises to at
	// least 10 s on the client. 0 means 5 s; Sender.Keepalive, if set,
	// overrides it for the shippers.
	Keepalive time.Duration
	// GCInterval is how often the leader folds causally stable counter
	// increments (0 means 2 s; negative disables collection).
	GCInterval time.Duration
	Logger     *slog.Logger
	Clock      func() time.Time
}

// flowWindow is the HTTP/2 flow-control window of replication streams and
// connections. gRPC's default starts at 64 KiB and grows only as its
// bandwidth estimate catches up, which caps a stream at 64 KiB per round
// trip meanwhile: at 20k writes/s over a 100 ms round trip the log backed
// up behind the window and lag doubled (docs/bench.md). The sender's own
// window (MaxInFlight messages of at most 256 KiB) is the real
// backpressure; this only has to stay out of its way.
const flowWindow = 16 << 20

// Manager runs a node's replication.
type Manager struct {
	cfg      Config
	service  *Service
	server   *grpc.Server
	shippers []*Shipper
	cancel   context.CancelFunc
	wg       sync.WaitGroup
	serveErr chan error

	publishers []*publisher
	onPublish  atomic.Pointer[PublishHandler]

	gcEvery  time.Duration
	folded   atomic.Uint64 // items folded by units this node proposed
	gcRounds atomic.Uint64 // fold units this node proposed
}

// Start serves the replication service on cfg.Listener and starts one
// shipper per peer.
func Start(cfg Config) (*Manager, error) {
	if cfg.Region == nil {
		return nil, errors.New("replication: Region is required")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Clock == nil {
		cfg.Clock = time.Now
	}
	if cfg.Keepalive == 0 {
		cfg.Keepalive = 5 * time.Second
	}
	if cfg.Sender.Keepalive == 0 {
		cfg.Sender.Keepalive = cfg.Keepalive.Milliseconds()
	}
	self := cfg.Region.Origin().Region
	allowed := map[uint32]bool{}
	for _, p := range cfg.Peers {
		if p.Region == self {
			return nil, fmt.Errorf("replication: peer %q has this region's own id %d", p.Name, self)
		}
		if allowed[p.Region] {
			return nil, fmt.Errorf("replication: peer region %d listed twice", p.Region)
		}
		if len(p.Addrs) == 0 {
			return nil, fmt.Errorf("replication: peer region %d has no address", p.Region)
		}
		allowed[p.Region] = true
	}
	m := &Manager{cfg: cfg, serveErr: make(chan error, 1), gcEvery: gcInterval}
	if cfg.GCInterval > 0 {
		m.gcEvery = cfg.GCInterval
	}
	m.service = NewService(cfg.Region, cfg.Name, func(r uint32) bool { return allowed[r] }, cfg.Logger, cfg.Clock)
	m.service.keepalive = cfg.Keepalive
	m.service.identity = cfg.TLS != nil && !cfg.TLSAnyRegion
	m.service.onPublication = m.fromPeer
	if b, ok := cfg.Region.(Broadcaster); ok {
		b.SetBroadcastHandler(m.fannedIn)
	}
	if cfg.Listener != nil {
		opts := []grpc.ServerOption{
			grpc.MaxRecvMsgSize(MaxMessageBytes), grpc.MaxSendMsgSize(MaxMessageBytes),
			grpc.InitialWindowSize(flowWindow), grpc.InitialConnWindowSize(flowWindow),
			grpc.KeepaliveParams(keepalive.ServerParameters{Time: cfg.Keepalive, Timeout: cfg.Keepalive}),
			grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: cfg.Keepalive / 2, PermitWithoutStream: true}),
		}
		if cfg.TLS != nil {
			sc := cfg.TLS.Clone()
			sc.ClientAuth = tls.RequireAndVerifyClientCert
			if sc.ClientCAs == nil {
				sc.ClientCAs = sc.RootCAs
			}
			opts = append(opts, grpc.Creds(credentials.NewTLS(sc)))
		}
		m.server = grpc.NewServer(opts...)
		pb.RegisterReplicationServer(m.server, m.service)
		go func() { m.serveErr <- m.server.Serve(cfg.Listener) }()
	}
	ctx, cancel := context.WithCancel(context.Background())
	m.cancel = cancel
	for _, p := range cfg.Peers {
		dial := func(addr string) (*grpc.ClientConn, error) { return m.dial(p.Region, addr) }
		sh := newShipper(cfg.Region, cfg.Name, p, cfg.Sender, dial, cfg.Logger, cfg.Clock)
		m.shippers = append(m.shippers, sh)
		m.wg.Add(1)
		go func() {
			defer m.wg.Done()
			sh.run(ctx)
		}()
	}
	for _, p := range cfg.Peers {
		pu := newPublisher(m, p)
		m.publishers = append(m.publishers, pu)
		m.wg.Add(1)
		go func() {
			defer m.wg.Done()
			pu.run(ctx)
		}()
	}
	if f, ok := cfg.Region.(Folder); ok && cfg.GCInterval >= 0 {
		m.wg.Add(1)
		go m.gcLoop(ctx, f)
	}
	return m, nil
}

// dial opens a connection to a node of region to at addr.
func (m *Manager) dial(to uint32, addr string) (*grpc.ClientConn, error) {
	creds := insecure.NewCredentials()
	if m.cfg.TLS != nil {
		c := m.cfg.TLS.Clone()
		if !m.cfg.TLSAnyRegion {
			c = serverRegionTLS(c, to, func(err error) {
				m.cfg.Logger.Error("replication peer refused", "peer_region", to, "addr", addr, "err", err)
			})
		}
		creds = credentials.NewTLS(c)
	}
	opts := []grpc.DialOption{
		grpc.WithTransportCredentials(creds),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(MaxMessageBytes), grpc.MaxCallSendMsgSize(MaxMessageBytes)),
		grpc.WithInitialWindowSize(flowWindow), grpc.WithInitialConnWindowSize(flowWindow),
		grpc.WithKeepaliveParams(keepalive.ClientParameters{Time: m.cfg.Keepalive, Timeout: m.cfg.Keepalive, PermitWithoutStream: true}),
		// gRPC's defaults (a 20 s minimum connect attempt, backoff up to
		// 120 s) suit a client of a flaky service, not a peer region coming
		// back from a partition: a connect attempt started while the link
		// was cut sits in SYN retransmission for up to 20 s after the heal.
		// Short attempts, retried with a small capped backoff, reconnect
		// within a few seconds of the link returning.
		grpc.WithConnectParams(grpc.ConnectParams{
			Backoff:           backoff.Config{BaseDelay: 200 * time.Millisecond, Multiplier: 1.6, Jitter: 0.2, MaxDelay: 3 * time.Second},
			MinConnectTimeout: 3 * time.Second,
		}),
	}
	if m.cfg.Dial != nil {
		opts = append(opts, grpc.WithContextDialer(m.cfg.Dial))
	}
	return grpc.NewClient("passthrough:///"+addr, opts...)
}

// Close stops the shippers and the service.
func (m *Manager) Close() error {
	m.cancel()
	if m.server != nil {
		// Streams never end on their own: stop them rather than wait.
		m.server.Stop()
	}
	m.wg.Wait()
	return nil
}

// Peers returns every peer's status as this node sees it, by region id.
func (m *Manager) Peers() []PeerStatus {
	out := make([]PeerStatus, 0, len(m.shippers))
	for _, sh := range m.shippers {
		out = append(out, sh.Status())
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Peer.Region < out[j].Peer.Region })
	return out
}

// Received returns, per sending region, what this node received.
func (m *Manager) Received() map[uint32]ReceiverStats { return m.service.ReceiverTotals() }

// InfoFields returns the fields replication adds to INFO's replication
// section, shipping figures as this node sees them (a follower ships
// nothing: its peers show state=follower).
func (m *Manager) InfoFields(leader bool) [][2]string {
	now := m.cfg.Clock().UnixMilli()
	fields := [][2]string{{"concord_peer_regions", strconv.Itoa(len(m.shippers))},
		{"concord_gc_backlog", strconv.Itoa(m.backlog())},
		{"concord_gc_folded", strconv.FormatUint(m.folded.Load(), 10)}}
	if b, ok := m.cfg.Region.(Broadcaster); ok {
		sent, dropped, received := b.BroadcastCounts()
		fields = append(fields, [2]string{"concord_publish_fanout_sent", strconv.FormatUint(sent, 10)},
			[2]string{"concord_publish_fanout_dropped", strconv.FormatUint(dropped, 10)},
			[2]string{"concord_publish_fanout_received", strconv.FormatUint(received, 10)})
	}
	recv := m.Received()
	pubs := m.PublishStats()
	for i, p := range m.Peers() {
		state := p.State.String()
		if !leader {
			state = "follower"
		}
		var b strings.Builder
		fmt.Fprintf(&b, "region=%d,name=%s,addr=%s,state=%s,acked_pos=%d,lag_records=%d,lag_ms=%d",
			p.Peer.Region, p.Peer.Name, p.Addr, state, p.AckedPos, p.LagRecords, lagMs(now, p.OldestUnacked))
		if p.LastAckMs != 0 { // never acked: no figure to give
			fmt.Fprintf(&b, ",last_ack_ms_ago=%d", max(now-p.LastAckMs, 0))
		}
		fmt.Fprintf(&b, ",rtt_ms=%d,clock_offset_ms=%d,batches_sent=%d,bytes_sent=%d,transfers=%d",
			p.RTTMs, p.ClockOffsetMs, p.BatchesSent, p.BytesSent, p.Transfers)
		fmt.Fprintf(&b, ",resyncs=%d,resets=%d,silent_resets=%d,own_ahead=%d",
			resyncs(p.Streams), p.Resets, p.Silent, p.OwnAhead)
		if r, ok := recv[p.Peer.Region]; ok {
			fmt.Fprintf(&b, ",batches_received=%d,bytes_received=%d,batches_merged=%d", r.Batches, r.Bytes, r.Merged)
			var total uint64
			for _, n := range r.Rejected {
				total += n
			}
			fmt.Fprintf(&b, ",batches_rejected=%d", total)
			for i, reason := range crdt.RejectReasons {
				fmt.Fprintf(&b, ",rejected_%s=%d", reason, r.Rejected[i])
			}
		}
		ps := pubs[p.Peer.Region]
		fmt.Fprintf(&b, ",publish_up=%d,publishes_sent=%d,publishes_dropped=%d,publishes_received=%d", b2i(ps.Up), ps.Sent, ps.Dropped, ps.Received)
		fields = append(fields, [2]string{"peer_region" + strconv.Itoa(i), b.String()})
	}
	return fields
}

// lagMs is how long ago the oldest unacknowledged batch was written.
func lagMs(now, oldest int64) int64 {
	if oldest == 0 || oldest > now {
		return 0
	}
	return now - oldest
}

// resyncs is how many of the streams established to a peer came after
// the first: each is a restart of shipping, from the peer's vector.
func resyncs(streams uint64) uint64 {
	if streams == 0 {
		return 0
	}
	return streams - 1
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}
