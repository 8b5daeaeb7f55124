package region

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"log/slog"
	"math"
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
	vt   *voteTransport // tr as Raft sees it (vote.go)

	in     chan *submission // to the batcher
	slots  chan struct{}    // entries in flight
	unitID atomic.Uint64    // next unit id (random base)
	rngMu  sync.Mutex
	rng    *crdt.Rand // seeds for entries

	fwd   *forwarder
	bc    *broadcaster
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

	// startedTerm is the latest term whose first entry establish has
	// proposed; startedCh is closed and replaced when it advances. The
	// batcher proposes nothing of a term before that entry (awaitStarted).
	startMu     sync.Mutex
	startedTerm uint64
	startedCh   chan struct{}

	query atomic.Pointer[QueryHandler] // leader queries (query.go)

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
		startedCh: make(chan struct{}),

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
	n.bc = newBroadcaster(n)
	n.mux = newMux(ln, cfg.TLS, cfg.Dial, n.serveForward, n.serveBroadcast)
	n.tr = raft.NewNetworkTransportWithConfig(&raft.NetworkTransportConfig{
		Stream:  &raftLayer{m: n.mux, advertise: tcpAddr(cfg.RaftAddr)},
		MaxPool: 4,
		// 1 disables hashicorp/raft's pipelined replication. With the
		// default (2) its channels are unbuffered, and once a follower
		// answers with a newer term or a failure the pipeline can deadlock
		// (decodeResponses blocked on doneCh, the sender on inprogressCh):
		// the leader stops sending that follower entries while heartbeats
		// keep it from campaigning, and Raft.Shutdown (Close) never
		// returns. Seen in cmd/concord's TestMultiRegionLeaderChanges.
		MaxRPCsInFlight: 1,
		Timeout:         5 * time.Second,
		Logger:          hlog,
	})
	n.vt = newVoteTransport(n, n.tr)

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
	n.raft, err = raft.NewRaft(rc, n.fsm, logs, n.wal, snaps, n.vt)
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
	n.vt.close()
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

// establish makes a new leader ready to serve reads. It commits an entry
// of its own first: once that is applied, the local view holds every entry
// of earlier terms (so every write an earlier leader acknowledged), and the
// commit index from then on always names an entry the FSM sees (raft keeps
// its election no-op from the FSM, so a read index pointing at it would
// never be reached). If the region's origin is not fixed yet (a region
// that started from empty state), or its incarnation is below the
// configured floor, that entry carries the incarnation unit that fixes or
// renews it, ahead of every write of the term; should that not have
// happened once it is applied, the leader proposes the unit again until
// it has.
func (n *Node) establish(term uint64) {
	if err := n.startTerm(term).Error(); err != nil {
		n.log.Warn("leader could not commit its first entry", "term", term, "err", err)
		return
	}
	if n.raft.State() == raft.Leader && n.raft.CurrentTerm() == term {
		n.lease.setReady(term)
		n.renewLease()
		n.ensureOrigin(term)
	}
}

// startTerm proposes the first entry of term: empty, or holding the
// incarnation unit originUnit asks for. A leader whose state is behind may
// propose a unit that an earlier entry made pointless; apply then refuses
// it (or, for a renewal, finds the incarnation it meant to leave left
// already), harmlessly.
func (n *Node) startTerm(term uint64) raft.ApplyFuture {
	n.startMu.Lock()
	defer n.startMu.Unlock()
	e := &pb.Entry{Format: entryFormatV1, Term: term, Gated: true}
	if u := n.originUnit(); u != nil {
		e.Units = []*pb.Unit{u}
		e.Format = entryFormat(e.Units)
	}
	data, _ := gproto.Marshal(e)
	f := n.raft.Apply(data, 10*time.Second)
	if term > n.startedTerm {
		n.startedTerm = term
		close(n.startedCh)
		n.startedCh = make(chan struct{})
	}
	return f
}

// awaitStarted holds the batcher of a node that has just become leader
// until establish has proposed the term's first entry, so the entries the
// batcher proposes come after it in the log: in a region that started from
// empty state, the unit fixing the origin then precedes every write and no
// write meets apply's refusal (ErrOriginNotFixed). It waits at most a
// second: the order is what spares clients a retry, apply's refusal is
// what keeps the region safe whatever the order.
func (n *Node) awaitStarted() {
	var timeout <-chan time.Time
	for n.raft.State() == raft.Leader {
		term := n.raft.CurrentTerm()
		n.startMu.Lock()
		started, ch := n.startedTerm >= term, n.startedCh
		n.startMu.Unlock()
		if started {
			return
		}
		if timeout == nil {
			timeout = time.After(time.Second)
		}
		select {
		case <-ch:
		case <-time.After(5 * time.Millisecond): // leadership may have moved on
		case <-timeout:
			return
		case <-n.stop:
			return
		}
	}
}

// originUnit is the incarnation unit this node's state calls for, nil if
// none: one fixing the origin if it is not fixed, or one renewing it if
// its incarnation is below the configured floor (an operator raised the
// floor, as after restoring the region from a backup: see docs/region.md).
func (n *Node) originUnit() *pb.Unit {
	n.fsm.mu.RLock()
	fixed, cur := n.fsm.rep.OriginFixed(), n.fsm.rep.Keyspace().Origin()
	n.fsm.mu.RUnlock()
	switch {
	case !fixed:
		return n.incarnationUnit(false)
	case cur.Incarnation < n.cfg.Origin.Incarnation:
		u := n.incarnationUnit(true)
		u.RenewFrom = cur.Incarnation
		return u
	}
	return nil
}

// ensureOrigin proposes incarnation units while this node leads in term
// and its state still calls for one (the first entry's unit was refused or
// made no change, which takes a state holding every incarnation up to the
// limit, or a leader whose view was behind).
func (n *Node) ensureOrigin(term uint64) {
	backoff := 100 * time.Millisecond
	for n.raft.State() == raft.Leader && n.raft.CurrentTerm() == term {
		u := n.originUnit()
		if u == nil {
			return
		}
		var r crdt.Result
		select {
		case r = <-n.proposeOne(u):
		case <-n.stop:
			return
		}
		if n.originUnit() == nil {
			return
		}
		n.log.Warn("could not fix or renew the region's origin; retrying", "term", term, "err", r.Err, "replies", r.Replies)
		select {
		case <-time.After(backoff):
		case <-n.stop:
			return
		}
		backoff = min(2*backoff, 5*time.Second)
	}
}

// incarnationEpoch is where incarnations taken from the clock count from.
var incarnationEpoch = time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)

// clockIncarnation is the incarnation the clock reading t suggests: seconds
// since 2020-01-01 UTC, which grows from one start of the region to the
// next (uint32 seconds last until 2156).
func clockIncarnation(t time.Time) uint32 {
	s := t.Sub(incarnationEpoch) / time.Second
	switch {
	case s < 1:
		return 1
	case s > math.MaxUint32:
		return math.MaxUint32
	}
	return uint32(s)
}

// incarnationUnit is the unit that fixes the origin (or, with renew, moves
// it) at the incarnation this node suggests: the configured one (a floor)
// or its clock's, whichever is higher. Apply raises it above every
// incarnation the state holds ops of and above the current one.
func (n *Node) incarnationUnit(renew bool) *pb.Unit {
	inc := max(n.cfg.Origin.Incarnation, clockIncarnation(n.cfg.Clock()))
	return &pb.Unit{Incarnation: inc, Renew: renew}
}

// RenewIncarnation moves the region to a new incarnation, higher than its
// current one, through the log: later writes carry the new origin and
// number their dots from 1, while the ops of the old origin stay what they
// are (to every region, those of another origin).
//
// Call it when the region learns that its state is behind its own origin:
// another region holds dots of the region's current origin beyond what the
// region has applied (a batch of its own origin that it had not applied
// comes back and is refused, crdt.ErrOwnBatch, counted in
// crdt.ReplicaStats.OwnAhead; or a peer's version vector holds a higher
// sequence for this origin than the region's own). That is a region
// restored from an old backup, or one that lost writes it had already
// shipped; without a renewal it would reissue those dots and the other
// regions would skip its new writes as duplicates. A region that starts
// over from empty state does not need it: it takes a new incarnation by
// itself before its first write.
//
// It may be called on any node, and renews the incarnation this node has
// applied: if the region has moved past it meanwhile (another renewal), it
// changes nothing more, so callers that notice the same thing at once
// cause one renewal. It returns nil once this node has applied an
// incarnation above the one it had when called (Origin reports it), or the
// error of the write path (TRYAGAIN ones are retryable, see
// Error.Retryable), or ctx's. Renewals are cheap but not free: each adds
// an origin to every region's version vectors.
func (n *Node) RenewIncarnation(ctx context.Context) error {
	u := n.incarnationUnit(true)
	if n.OriginFixed() {
		u.RenewFrom = n.Origin().Incarnation
	}
	var r crdt.Result
	select {
	case r = <-n.proposeOne(u):
	case <-ctx.Done():
		return ctx.Err()
	}
	if r.Err != nil {
		return r.Err
	}
	if len(r.Replies) != 1 || r.Replies[0].Kind != crdt.KindInt {
		if len(r.Replies) == 1 && r.Replies[0].IsError() {
			return &Error{string(r.Replies[0].Str)}
		}
		return fmt.Errorf("region: renewal answered %d replies", len(r.Replies))
	}
	inc := uint32(r.Replies[0].Int)
	for {
		_, changed := n.Progress()
		if n.Origin().Incarnation >= inc {
			return nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return ctx.Err()
		case <-n.stop:
			return ErrShutdown
		}
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
			// A non-voter being added reports its progress every tick:
			// its promotion waits for that report (AddMember).
			if tick++; tick%4 == 0 || !n.voter() {
				go n.hello()
			}
			n.cfg.Metrics.setIndexes(n.raft.CommitIndex(), n.fsm.applied.Load())
		}
	}
}

// voter reports whether this node is a voter in its latest configuration.
func (n *Node) voter() bool {
	s, ok := n.server(n.id)
	return ok && s.Suffrage == raft.Voter
}

// Read implements server.Store: fn sees this node's applied state.
func (n *Node) Read(fn func(ks *crdt.Keyspace)) {
	n.fsm.mu.RLock()
	defer n.fsm.mu.RUnlock()
	fn(n.fsm.rep.Keyspace())
}

// NotifyWrites implements server.WriteNotifier: fn learns, from inside
// apply on this node, of every key a committed local write or a merged
// remote effect gave content to (fn(-1, "") after a snapshot is restored or
// a state transfer joined: any key). fn must not block or call into the
// node.
func (n *Node) NotifyWrites(fn func(db int, key string)) { n.fsm.setWriteHook(fn) }

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

// AddMember adds a node to the region as hashicorp/raft recommends: first
// as a non-voter, which receives the log but counts in no quorum, then,
// once it has applied every entry the leader had applied when it joined, as
// a voter. Added as a voter at once, an empty node raised the quorum (3 of
// 4 instead of 2 of 3) while it could not yet acknowledge anything, so one
// more failure, or a long catch-up, stopped the region's writes. If the
// node does not catch up in time it stays a non-voter and the error says
// so; ADD again promotes it. A node that is a voter already only has its
// address updated.
func (n *Node) AddMember(ctx context.Context, id, addr string) error {
	if s, ok := n.server(id); ok && s.Suffrage == raft.Voter {
		return n.AddVoter(ctx, id, addr)
	}
	start := time.Now()
	if err := n.raft.AddNonvoter(raft.ServerID(id), raft.ServerAddress(addr), 0, timeoutOf(ctx)).Error(); err != nil {
		return err
	}
	target := n.fsm.applied.Load()
	// Leave the promotion a second of the caller's time.
	wait, cancel := context.WithTimeout(ctx, max(timeoutOf(ctx)-time.Second, 0))
	defer cancel()
	for {
		if v, ok := n.peerInfo.Load(id); ok {
			if pi := v.(peerInfo); pi.seen.After(start) && pi.applied >= target {
				break
			}
		}
		if n.raft.State() != raft.Leader {
			return raft.ErrNotLeader
		}
		select {
		case <-wait.Done():
			return fmt.Errorf("node %q was added as a non-voter and has not caught up yet (it must apply index %d); REGION ADD again makes it a voter", id, target)
		case <-n.stop:
			return raft.ErrRaftShutdown
		case <-time.After(20 * time.Millisecond):
		}
	}
	return n.AddVoter(ctx, id, addr)
}

// server returns the member with this id in the latest configuration.
func (n *Node) server(id string) (raft.Server, bool) {
	f := n.raft.GetConfiguration()
	if f.Error() != nil {
		return raft.Server{}, false
	}
	for _, s := range f.Configuration().Servers {
		if string(s.ID) == id {
			return s, true
		}
	}
	return raft.Server{}, false
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
	n.vt.close()
	close(n.stop)
	n.wg.Wait()
	n.fwd.close()
	n.bc.close()
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
