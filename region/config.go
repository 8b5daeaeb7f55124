package region

import (
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"time"

	"concord/crdt"
)

// Durability says when a write is acknowledged.
type Durability int

const (
	// DurabilityFsync acknowledges a write once a quorum of the region's
	// nodes has its log entry on disk (fsync). The default.
	DurabilityFsync Durability = iota
	// DurabilityCache writes the log without fsync: a write is acknowledged
	// once a quorum holds it in the page cache. A node restarted in this
	// mode discards its disk and rejoins as a new, empty member. For pure
	// caches only.
	DurabilityCache
)

// String returns the name used in configuration files and INFO.
func (d Durability) String() string {
	switch d {
	case DurabilityFsync:
		return "fsync"
	case DurabilityCache:
		return "cache"
	}
	return fmt.Sprintf("Durability(%d)", int(d))
}

// ParseDurability parses "fsync" or "cache".
func ParseDurability(s string) (Durability, error) {
	switch s {
	case "fsync":
		return DurabilityFsync, nil
	case "cache":
		return DurabilityCache, nil
	}
	return 0, fmt.Errorf("unknown durability %q (want fsync or cache)", s)
}

// Peer is one voting member of a region, as configured.
type Peer struct {
	ID   string // node id, unique within the region
	Addr string // its Raft address, host:port
}

// Timing holds the Raft timeouts. Failover takes about one HeartbeatTimeout
// (followers notice the silence) plus one election round.
type Timing struct {
	// HeartbeatTimeout is how long a follower waits without hearing from
	// the leader before it campaigns (hashicorp/raft randomises it up to
	// twice this). It also bounds the leader's read lease.
	HeartbeatTimeout time.Duration
	// ElectionTimeout bounds one election round.
	ElectionTimeout time.Duration
	// LeaderLeaseTimeout is how long a leader keeps leading without
	// hearing from a quorum; must not exceed HeartbeatTimeout.
	LeaderLeaseTimeout time.Duration
	// CommitTimeout is the longest a follower waits to learn a commit
	// index when nothing else is sent.
	CommitTimeout time.Duration
}

// DefaultTiming is tuned for sub-second failover on a LAN: each follower
// notices a dead leader after 300-600 ms and the election takes a round trip
// or two. LeaderLeaseTimeout only decides how soon a leader cut off from a
// quorum steps down (reads do not depend on it: see read.go); at 150 ms a
// leader starved of CPU on a loaded machine stepped down for nothing.
var DefaultTiming = Timing{
	HeartbeatTimeout:   300 * time.Millisecond,
	ElectionTimeout:    300 * time.Millisecond,
	LeaderLeaseTimeout: 300 * time.Millisecond,
	CommitTimeout:      5 * time.Millisecond,
}

// Config configures one node of a region.
type Config struct {
	// NodeID names this node within its region; it must stay the same
	// across restarts.
	NodeID string
	// RaftAddr is the address this node listens on for Raft traffic and
	// for writes forwarded by other nodes, and the address peers use to
	// reach it.
	RaftAddr string
	// RESPAddr is the address clients reach this node's Redis server at;
	// it is shown to other nodes (ROLE, REGION NODES).
	RESPAddr string
	// Listener, if set, is used instead of listening on RaftAddr (tests
	// pass one bound to port 0 and set RaftAddr to its address).
	Listener net.Listener
	// Dial, if set, replaces net.DialTimeout for connections to other nodes
	// (tests use it to cut links). It is used for plain TCP; TLS, if
	// configured, runs over the connection it returns.
	Dial func(addr string, timeout time.Duration) (net.Conn, error)
	// DataDir holds the Raft log, stable store and snapshots.
	DataDir string
	// Peers are the region's initial voters. A node whose id is among them
	// bootstraps the region the first time it starts with an empty data
	// dir; a node that is not (one added later) waits to be added.
	Peers []Peer
	// Durability chooses fsync (default) or cache mode.
	Durability Durability
	// Origin tags this region's writes; Solo declares that no other region
	// exists (see crdt.Options).
	Origin crdt.Origin
	Solo   bool
	// ReplLog bounds the replication log: the batches this region applied
	// (its own writes unless Solo, and those merged from other regions),
	// kept in apply order for shipping to other regions. Zero fields take
	// crdt's defaults (crdt.DefaultLogBytes, crdt.DefaultLogRecords). The
	// log is part of every Raft snapshot, so it adds up to MaxBytes to each.
	// Configure every node of a region alike: the bound decides which
	// records are kept, so nodes configured differently hold different log
	// tails (this changes only when a peer region needs a state transfer,
	// never what is applied).
	ReplLog crdt.LogLimits
	// Timing holds the Raft timeouts; the zero value means DefaultTiming.
	Timing Timing
	// SnapshotThreshold is how many log entries since the last snapshot
	// trigger a new one; 0 means 8192.
	SnapshotThreshold uint64
	// SnapshotRetain is how many snapshots to keep on disk; 0 means 2.
	SnapshotRetain int
	// TrailingLogs is how many log entries a snapshot leaves behind, so a
	// follower that lags by fewer catches up from the log instead of
	// receiving the whole snapshot; 0 means 10240.
	TrailingLogs uint64
	// walSegmentSize is the size of raft-wal's segment files; 0 means
	// raft-wal's default (64 MiB). Compaction frees whole segments only, and
	// entries of a partly compacted segment stay readable, so tests shrink
	// it to make a snapshot really remove old entries.
	walSegmentSize int
	// TLS, if set, secures Raft and forwarding traffic. It must hold this
	// node's certificate and the CA that signs peers' certificates; both
	// sides verify each other (mutual TLS).
	TLS *tls.Config
	// Clock is the leader's wall clock for stamps; nil means time.Now.
	Clock func() time.Time
	// Logger receives structured logs; nil discards them.
	Logger *slog.Logger
	// Metrics receives the node's measurements; nil keeps none.
	Metrics *Metrics
}

func (c *Config) validate() error {
	if c.NodeID == "" {
		return errors.New("region: NodeID is required")
	}
	if c.RaftAddr == "" {
		return errors.New("region: RaftAddr is required")
	}
	if c.DataDir == "" {
		return errors.New("region: DataDir is required")
	}
	seen := map[string]bool{}
	for _, p := range c.Peers {
		if p.ID == "" || p.Addr == "" {
			return fmt.Errorf("region: peer %q has an empty id or address", p.ID+" "+p.Addr)
		}
		if seen[p.ID] {
			return fmt.Errorf("region: peer id %q listed twice", p.ID)
		}
		seen[p.ID] = true
	}
	if c.Timing == (Timing{}) {
		c.Timing = DefaultTiming
	}
	if c.Timing.LeaderLeaseTimeout > c.Timing.HeartbeatTimeout {
		return errors.New("region: LeaderLeaseTimeout must not exceed HeartbeatTimeout")
	}
	if c.SnapshotThreshold == 0 {
		c.SnapshotThreshold = 8192
	}
	if c.SnapshotRetain == 0 {
		c.SnapshotRetain = 2
	}
	if c.TrailingLogs == 0 {
		c.TrailingLogs = 10240
	}
	if c.Clock == nil {
		c.Clock = time.Now
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return nil
}
