package region

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	wal "github.com/hashicorp/raft-wal"
	"github.com/hashicorp/raft-wal/metadb"

	"concord/crdt"
	pb "concord/proto"

	gproto "google.golang.org/protobuf/proto"
)

// Node is one member of a region. It implements server.Store,
// server.Pipeliner, server.ReadFencer and server.Replica.
type Node struct {
	cfg  Config
	id   string
	log  *slog.Logger
	raft *raft.Raft
	fsm  *fsm
	reg  *registry
	mux  *mux
	wal  *wal.WAL
	meta *metadb.BoltMetaDB
	tr   *raft.NetworkTransport

	in     chan *submission // to the batcher
	slots  chan struct{}    // entries in flight
	unitID atomic.Uint64    // next unit id (random base)
	rngMu  sync.Mutex
	rng    *crdt.Rand // seeds for entries

	fwd   *forwarder
	lease *leaseState

	parkMu sync.Mutex
	parked []*submission
	wake   chan struct{} // leadership changed: retry parked work

	// leading is whether this node leads, as raft last notified (false
	// once the node is stopping); leadingCh is closed and replaced at each
	// change (LeaderWatch).
	leadingMu sync.Mutex
	leading   bool
	leadingCh chan struct{}

	peerInfo   sync.Map // leader: follower id -> peerInfo, from HELLO
	leaderRESP sync.Map // follower: leader id -> RESP address, from HELLO

	closing atomic.Bool
	stop    chan struct{}
	wg      sync.WaitGroup

	// raftUp is closed once n.raft is set, or Open failed. The listener
	// opens before Raft can be built, so forwarded requests wait for it.
	raftUp chan struct{}

	// unsafeSkipReadFence makes ReadFence return at once, so reads are
	// served from whatever this node has applied. Set only by tests, to
	// show that the linearizability checker catches stale reads.
	unsafeSkipReadFence atomic.Bool
}

// Timeouts of the write and read paths.
const (
	// noLeaderWait is how long a write or read waits for a leader before
	// the client gets TRYAGAIN: longer than an election.
	noLeaderWait = 3 * time.Second
	// inDoubtWait bounds how long a proposed write waits to learn its
	// outcome after its leader was lost.
	inDoubtWait = 10 * time.Second
	// maxEntryUnits and maxEntryBytes bound one log entry (group commit).
	maxEntryUnits = 1024
	maxEntryBytes = 4 << 20
	// maxInFlight is how many entries the leader keeps in flight.
	maxInFlight = 8
)

// Open starts a node: its stores, transport, Raft and the write path. If
// the node's own id is among cfg.Peers and its data dir holds no Raft
// state, it bootstraps the region with those peers as voters.
func Open(cfg Config) (*Node, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if err := prepareDataDir(&cfg); err != nil {
		return nil, err
	}
	n := &Node{
		cfg:   cfg,
		id:    cfg.NodeID,
		log:   cfg.Logger.With("node", cfg.NodeID),
		reg:   newRegistry(),
		in:    make(chan *submission, 4096),
		slots: make(chan struct{}, maxInFlight),
		wake:  make(chan struct{}, 1),
		stop:  make(chan struct{}),

		leadingCh: make(chan struct{}),

		raftUp: make(chan struct{}),
	}
	var seed [16]byte
	rand.Read(seed[:])
	n.unitID.Store(binary.LittleEndian.Uint64(seed[:8]) >> 1)
	n.rng = crdt.NewRand(binary.LittleEndian.Uint64(seed[8:]) | 1)

	var err error
	// The node owns raft-wal's metadata store and closes it after the log
	// (raft-wal v0.4.0's Close left it open and locked; closing it twice is
	// harmless).
	n.meta = &metadb.BoltMetaDB{}
	walDir := filepath.Join(cfg.DataDir, "wal")
	segSize := wal.WithSegmentSize(wal.DefaultSegmentSize)
	if cfg.walSegmentSize > 0 {
		segSize = wal.WithSegmentSize(cfg.walSegmentSize)
	}
	if cfg.Durability == DurabilityCache {
		n.wal, err = wal.Open(walDir, wal.WithMetaStore(n.meta), segSize, wal.WithSegmentFiler(nosyncFiler(walDir)))
	} else {
		n.wal, err = wal.Open(walDir, wal.WithMetaStore(n.meta), segSize)
	}
	if err != nil {
		n.meta.Close()
		return nil, fmt.Errorf("region: opening log: %w", err)
	}
	hlog := hclogAdapter(n.log)
	snaps, err := raft.NewFileSnapshotStoreWithLogger(cfg.DataDir, cfg.SnapshotRetain, hlog)
	if err != nil {
		n.closeLog()
		return nil, err
	}
	has, err := raft.HasExistingState(n.wal, n.wal, snaps)
	if err != nil {
		n.closeLog()
		return nil, err
	}
	if has {
		// The leader's read lease (read.go) counts on a follower that
		// answered its heartbeat refusing votes for HeartbeatTimeout. A
		// restarted node has forgotten that it heard from a leader and would
		// vote at once, letting a new leader commit writes while the old
		// one still serves reads from its lease. So it keeps out of the
		// region for that long: a full HeartbeatTimeout, twice the lease,
		// the margin the lease itself keeps for clock-rate drift; and
		// before it listens, so peers are refused at once rather than left
		// waiting on a node that cannot answer yet.
		time.Sleep(cfg.Timing.HeartbeatTimeout)
	}

	ln := cfg.Listener
	if ln == nil {
		if ln, err = net.Listen("tcp", cfg.RaftAddr); err != nil {
			n.closeLog()
			return nil, err
		}
	}
	n.mux = newMux(ln, cfg.TLS, cfg.Dial, n.serveForward)
	n.tr = raft.NewNetworkTransportWithConfig(&raft.NetworkTransportConfig{
		Stream:  &raftLayer{m: n.mux, advertise: tcpAddr(cfg.RaftAddr)},
		MaxPool: 4,
		Timeout: 5 * time.Second,
		Logger:  hlog,
	})

	ks := crdt.NewKeyspace(cfg.Origin, crdt.Options{Solo: cfg.Solo})
	n.fsm = newFSM(ks, cfg.ReplLog, n.reg, cfg.Metrics)
	n.lease = newLeaseState()
	n.fwd = newForwarder(n)

	rc := raft.DefaultConfig()
	rc.LocalID = raft.ServerID(cfg.NodeID)
	rc.HeartbeatTimeout = cfg.Timing.HeartbeatTimeout
	rc.ElectionTimeout = cfg.Timing.ElectionTimeout
	rc.LeaderLeaseTimeout = cfg.Timing.LeaderLeaseTimeout
	rc.CommitTimeout = cfg.Timing.CommitTimeout
	rc.SnapshotThreshold = cfg.SnapshotThreshold
	rc.SnapshotInterval = 10 * time.Second
	rc.TrailingLogs = cfg.TrailingLogs
	rc.MaxAppendEntries = 256
	rc.BatchApplyCh = true
	rc.Logger = hlog
	notify := make(chan bool, 16)
	rc.NotifyCh = notify

	if !has && n.selfInPeers() {
		var servers []raft.Server
		for _, p := range cfg.Peers {
			servers = append(servers, raft.Server{Suffrage: raft.Voter, ID: raft.ServerID(p.ID), Address: raft.ServerAddress(p.Addr)})
		}
		if err := raft.BootstrapCluster(rc, n.wal, n.wal, snaps, n.tr, raft.Configuration{Servers: servers}); err != nil {
			n.closeStores()
			return nil, fmt.Errorf("region: bootstrap: %w", err)
		}
		n.log.Info("bootstrapped region", "peers", len(servers))
	}
	// Raft reads each entry back from the log store to send it to the
	// followers; a cache of the latest entries serves those reads from
	// memory instead of raft-wal's segment files.
	logs, err := raft.NewLogCache(256, n.wal)
	if err != nil {
		n.closeStores()
		return nil, err
	}
	n.raft, err = raft.NewRaft(rc, n.fsm, logs, n.wal, snaps, n.tr)
	if err != nil {
		n.closeStores()
		return nil, err
	}
	close(n.raftUp)
	obs := make(chan raft.Observation, 64)
	n.raft.RegisterObserver(raft.NewObserver(obs, false, func(o *raft.Observation) bool {
		_, ok := o.Data.(raft.LeaderObservation)
		return ok
	}))

	n.wg.Add(5)
	go n.batchLoop()
	go n.watchLeadership(notify, obs)
	go n.parkLoop()
	go n.leaseLoop()
	go n.housekeeping()
	return n, nil
}

func (n *Node) selfInPeers() bool {
	for _, p := range n.cfg.Peers {
		if p.ID == n.id {
			return true
		}
	}
	return false
}

// closeStores undoes a failed Open once the listener is up.
func (n *Node) closeStores() {
	close(n.raftUp) // n.raft is nil: waiting forwarded requests give up
	n.mux.Close()
	n.closeLog()
}

func (n *Node) closeLog() error {
	err := n.wal.Close()
	if merr := n.meta.Close(); err == nil {
		err = merr
	}
	return err
}

// prepareDataDir creates the data dir. In cache mode a non-empty dir is the
// remains of an earlier run whose log was never fsynced: it is wiped, and
// the node waits out two election timeouts before joining so that any vote
// it cast before the crash (and forgot with the dir) can no longer count.
func prepareDataDir(cfg *Config) error {
	if cfg.Durability == DurabilityCache {
		entries, err := os.ReadDir(cfg.DataDir)
		if err == nil && len(entries) > 0 {
			cfg.Logger.Warn("cache durability: discarding the data dir of the previous run", "dir", cfg.DataDir)
			for _, e := range entries {
				if err := os.RemoveAll(filepath.Join(cfg.DataDir, e.Name())); err != nil {
					return err
				}
			}
			time.Sleep(2 * (cfg.Timing.HeartbeatTimeout + cfg.Timing.ElectionTimeout))
		}
	}
	if err := os.MkdirAll(filepath.Join(cfg.DataDir, "wal"), 0o755); err != nil {
		return fmt.Errorf("region: data dir: %w", err)
	}
	return nil
}

// watchLeadership follows this node's leadership (NotifyCh, which raft
// requires to be drained) and who leads (observations).
func (n *Node) watchLeadership(notify <-chan bool, obs <-chan raft.Observation) {
	defer n.wg.Done()
	for {
		select {
		case <-n.stop:
			return
		case isLeader := <-notify:
			n.lease.reset()
			n.setLeading(isLeader)
			term := n.raft.CurrentTerm()
			n.cfg.Metrics.setState(n.raft.State().String(), term)
			if isLeader {
				n.log.Info("became leader", "term", term)
				go n.establish(term)
			} else {
				n.log.Info("lost leadership", "term", term)
			}
			n.kick()
		case o := <-obs:
			lo := o.Data.(raft.LeaderObservation)
			n.log.Info("leader changed", "leader", string(lo.LeaderID), "addr", string(lo.LeaderAddr))
			n.cfg.Metrics.setState(n.raft.State().String(), n.raft.CurrentTerm())
			n.fwd.leaderChanged()
			n.kick()
		}
	}
}

// establish makes a new leader ready to serve reads. It commits an empty
// entry of its own: once that is applied, the local view holds every entry
// of earlier terms (so every write an earlier leader acknowledged), and the
// commit index from then on always names an entry the FSM sees (raft keeps
// its election no-op from the FSM, so a read index pointing at it would
// never be reached).
func (n *Node) establish(term uint64) {
	data, _ := gproto.Marshal(&pb.Entry{Format: entryFormatV1, Term: term})
	if err := n.raft.Apply(data, 10*time.Second).Error(); err != nil {
		n.log.Warn("leader could not commit its first entry", "term", term, "err", err)
		return
	}
	if n.raft.State() == raft.Leader && n.raft.CurrentTerm() == term {
		n.lease.setReady(term)
		n.renewLease()
	}
}

func (n *Node) kick() {
	select {
	case n.wake <- struct{}{}:
	default:
	}
}

// housekeeping expires writes whose outcome never arrived and refreshes
// gauges.
func (n *Node) housekeeping() {
	defer n.wg.Done()
	t := time.NewTicker(250 * time.Millisecond)
	defer t.Stop()
	tick := 0
	for {
		select {
		case <-n.stop:
			return
		case now := <-t.C:
			n.reg.expire(now)
			if tick++; tick%4 == 0 {
				go n.hello()
			}
			n.cfg.Metrics.setIndexes(n.raft.CommitIndex(), n.fsm.applied.Load())
		}
	}
}

// Read implements server.Store: fn sees this node's applied state.
func (n *Node) Read(fn func(ks *crdt.Keyspace)) {
	n.fsm.mu.RLock()
	defer n.fsm.mu.RUnlock()
	fn(n.fsm.rep.Keyspace())
}

// Leader implements server.Replica.
func (n *Node) Leader() bool { return n.raft.State() == raft.Leader }

// Status is a node's view of its region.
type Status struct {
	ID, State            string
	Term                 uint64
	LeaderID, LeaderAddr string
	CommitIndex          uint64
	AppliedIndex         uint64
	LastContact          time.Time // followers: when the leader was last heard
	Servers              []Server
	Durability           Durability
}

// Server is one member in the region's configuration.
type Server struct {
	ID, Addr string
	Voter    bool
}

// Status returns the node's view of the region.
func (n *Node) Status() Status {
	addr, lid := n.raft.LeaderWithID()
	st := Status{
		ID:           n.id,
		State:        n.raft.State().String(),
		Term:         n.raft.CurrentTerm(),
		LeaderID:     string(lid),
		LeaderAddr:   string(addr),
		CommitIndex:  n.raft.CommitIndex(),
		AppliedIndex: n.fsm.applied.Load(),
		LastContact:  n.raft.LastContact(),
		Durability:   n.cfg.Durability,
	}
	if f := n.raft.GetConfiguration(); f.Error() == nil {
		for _, s := range f.Configuration().Servers {
			st.Servers = append(st.Servers, Server{ID: string(s.ID), Addr: string(s.Address), Voter: s.Suffrage == raft.Voter})
		}
	}
	return st
}

// Ready reports whether the node can serve: a leader is known, and this
// node has applied what it knows to be committed (a leader: has applied
// every earlier term's entries).
func (n *Node) Ready() bool {
	if n.closing.Load() {
		return false
	}
	if n.raft.State() == raft.Leader {
		return n.lease.readyFor(n.raft.CurrentTerm())
	}
	addr, _ := n.raft.LeaderWithID()
	return addr != "" && n.fsm.applied.Load()+1000 >= n.raft.CommitIndex()
}

// AddVoter adds a voting member (run on the leader; forwarded otherwise
// through Admin).
func (n *Node) AddVoter(ctx context.Context, id, addr string) error {
	return n.raft.AddVoter(raft.ServerID(id), raft.ServerAddress(addr), 0, timeoutOf(ctx)).Error()
}

// RemoveServer removes a member.
func (n *Node) RemoveServer(ctx context.Context, id string) error {
	if id == n.id {
		n.lease.reset() // a leader removing itself steps down
	}
	return n.raft.RemoveServer(raft.ServerID(id), 0, timeoutOf(ctx)).Error()
}

// TransferLeadership hands leadership to the most up-to-date follower.
func (n *Node) TransferLeadership(ctx context.Context) error {
	n.lease.reset()
	n.lease.pause(true)
	defer n.lease.pause(false)
	return n.raft.LeadershipTransfer().Error()
}

func (n *Node) transferTo(id string) error {
	n.lease.reset()
	n.lease.pause(true)
	defer n.lease.pause(false)
	for _, s := range n.Status().Servers {
		if s.ID == id {
			return n.raft.LeadershipTransferToServer(raft.ServerID(id), raft.ServerAddress(s.Addr)).Error()
		}
	}
	return fmt.Errorf("no member %q", id)
}

func timeoutOf(ctx context.Context) time.Duration {
	if d, ok := ctx.Deadline(); ok {
		return time.Until(d)
	}
	return 10 * time.Second
}

// Shutdown leaves the region cleanly: new writes are refused, a leader
// hands leadership to a follower first (so the region does not wait out an
// election), then Raft and the stores stop. Writes still waiting get
// ErrShutdown or, if in flight, their outcome when known.
func (n *Node) Shutdown(ctx context.Context) error {
	if n.closing.Swap(true) {
		return nil
	}
	n.setLeading(false)
	if n.raft.State() == raft.Leader && len(n.Status().Servers) > 1 {
		if err := n.TransferLeadership(ctx); err != nil {
			n.log.Warn("leadership transfer before shutdown failed", "err", err)
		} else {
			n.log.Info("leadership transferred before shutdown")
		}
	}
	return n.stopAll()
}

// Close stops the node without a leadership transfer (as a crash would,
// but with the stores closed properly): tests kill nodes with it, and
// `concord local` stops a whole region with it, where handing leadership to
// a node that is stopping too would only fail.
func (n *Node) Close() error {
	if n.closing.Swap(true) {
		return nil
	}
	n.setLeading(false)
	return n.stopAll()
}

// stopAll stops Raft, the node's goroutines and stores; writes still
// waiting get ErrShutdown or, if in flight, their outcome when known.
func (n *Node) stopAll() error {
	err := n.raft.Shutdown().Error()
	close(n.stop)
	n.wg.Wait()
	n.fwd.close()
	n.failAllPending()
	n.mux.Close()
	n.tr.Close()
	if cerr := n.closeLog(); err == nil {
		err = cerr
	}
	return err
}

func (n *Node) failAllPending() {
	n.parkMu.Lock()
	parked := n.parked
	n.parked = nil
	n.parkMu.Unlock()
	for _, s := range parked {
		n.finish(s, ErrShutdown)
	}
	for {
		select {
		case s := <-n.in:
			n.finish(s, ErrShutdown)
		default:
			n.reg.expire(time.Now().Add(time.Hour))
			return
		}
	}
}

// hclogAdapter routes hashicorp/raft's logs into slog.
func hclogAdapter(l *slog.Logger) hclog.Logger {
	level := hclog.Info
	ctx := context.Background()
	switch {
	case l.Enabled(ctx, slog.LevelDebug):
		level = hclog.Debug
	case l.Enabled(ctx, slog.LevelInfo):
		level = hclog.Info
	case l.Enabled(ctx, slog.LevelWarn):
		level = hclog.Warn
	default:
		level = hclog.Error
	}
	return hclog.New(&hclog.LoggerOptions{
		Name:        "raft",
		Level:       level,
		Output:      &slogWriter{l: l},
		JSONFormat:  false,
		TimeFn:      func() time.Time { return time.Time{} },
		DisableTime: true,
	})
}

// slogWriter turns each hclog line into one slog record.
type slogWriter struct{ l *slog.Logger }

func (w *slogWriter) Write(p []byte) (int, error) {
	msg := strings.TrimRight(string(p), "\r\n")
	lvl := slog.LevelInfo
	// hclog writes "[LEVEL] raft: message"; the level becomes slog's and
	// the prefix goes, so records read like the node's own.
	for _, l := range []struct {
		tag string
		lvl slog.Level
	}{{"[ERROR]", slog.LevelError}, {"[WARN]", slog.LevelWarn}, {"[INFO]", slog.LevelInfo},
		{"[DEBUG]", slog.LevelDebug}, {"[TRACE]", slog.LevelDebug}} {
		if rest, ok := strings.CutPrefix(msg, l.tag); ok {
			lvl = l.lvl
			msg = strings.TrimPrefix(strings.TrimLeft(rest, " "), "raft: ")
			break
		}
	}
	w.l.Log(context.Background(), lvl, msg, "lib", "raft")
	return len(p), nil
}
