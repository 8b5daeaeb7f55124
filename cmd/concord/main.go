// Command concord runs a Concord node, a Redis-compatible server whose
// writes are CRDT effects, and the tools to operate one.
//
// Usage:
//
//	concord [server] [--config file] [flags]   run a node
//	concord healthcheck [--addr a] [--password p] [--ready] [--timeout 2s]
//	concord region nodes|status|add <id> <raft-addr>|remove <id>|transfer [<id>]|snapshot [--addr a] [--password p]
//	concord local [--nodes 3] [--port 6379] [--data-dir .concord]   a whole region in one process
//	concord version
//
// Without region settings the node is a single in-memory process. With
// node-id, data-dir and peer (see docs/configuration.md) it is a member of a
// region's Raft group. Settings come from defaults, then the configuration
// file, then CONCORD_* environment variables, then flags.
//
// Exit status: 0 success; 1 failure (for healthcheck: unhealthy); 2 usage.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"concord/crdt"
	"concord/region"
	"concord/replication"
	"concord/server"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

const usageText = `usage:
  concord [server] [--config file] [flags]   run a node
  concord healthcheck [--addr host:port] [--password p] [--ready] [--timeout 2s]
  concord region nodes|status|add <id> <raft-addr>|remove <id>|transfer [<id>]|snapshot [--addr host:port] [--password p]
  concord local [--nodes 1|3|5] [--port 6379] [--raft-port 7379] [--data-dir .concord] [--durability fsync|cache]
  concord version
`

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// run dispatches a subcommand and returns the exit status.
func run(args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		switch args[0] {
		case "server":
			args = args[1:]
		case "version":
			fmt.Fprintln(stdout, "concord", version, "(redis", server.Version+")")
			return exitOK
		case "healthcheck":
			return healthcheck(args[1:], stdout, stderr)
		case "region":
			return regionCmd(args[1:], stdout, stderr)
		case "local":
			return localCmd(args[1:], stdout, stderr)
		case "help":
			fmt.Fprint(stdout, usageText)
			return exitOK
		default:
			fmt.Fprintf(stderr, "concord: unknown subcommand %q\n%s", args[0], usageText)
			return exitUsage
		}
	}
	c, err := loadConfig(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return exitOK
	}
	if err != nil {
		fmt.Fprintln(stderr, "concord:", err)
		return exitUsage
	}
	if err := serve(c, stdout, stderr); err != nil {
		fmt.Fprintln(stderr, "concord:", err)
		return exitFail
	}
	return exitOK
}

// node is the store the server runs on, with what the process needs to
// watch and stop it.
type node struct {
	store    server.Store
	ready    func() bool
	shutdown func(ctx context.Context) error
	// stop stops the node without handing leadership over (when its
	// whole region is stopping).
	stop     func() error
	describe string // for the startup line
}

// openNode opens the single-node store or the region node c asks for.
// reg, if not nil, receives the region's metrics; respAddr is where clients
// reach this node.
func openNode(c *config, log *slog.Logger, reg prometheus.Registerer, respAddr string) (*node, error) {
	origin := crdt.Origin{Region: c.region, Incarnation: c.incarnation}
	if !c.regionMode() {
		store := server.NewLocalStore(crdt.NewKeyspace(origin, crdt.Options{Solo: true}), server.LocalOptions{})
		return &node{
			store:    store,
			ready:    func() bool { return true },
			shutdown: func(context.Context) error { store.Close(); return nil },
			stop:     store.Close,
			describe: fmt.Sprintf("region %d, incarnation %d, single node", origin.Region, origin.Incarnation),
		}, nil
	}
	rc, err := regionConfig(c, log, reg)
	if err != nil {
		return nil, err
	}
	rc.RESPAddr = respAddr
	if !c.inPeers() {
		// Not an error (a member added later starts this way), but a
		// one-node region that forgot to list itself would wait forever.
		log.Info("this node is not among the configured peers: unless its data dir already holds "+
			"the region, it waits to be added by running, against a member: concord region add "+
			c.nodeID+" "+c.raftAddr+" --addr <member's RESP address>", "node", c.nodeID)
	}
	rn, err := region.Open(rc)
	if err != nil {
		return nil, err
	}
	n := &node{
		store:    newBroadcastNode(rn),
		ready:    rn.Ready,
		shutdown: rn.Shutdown,
		stop:     rn.Close,
		describe: fmt.Sprintf("region %d (%s), incarnation %s, node %s, raft %s, durability %s",
			c.region, c.name(), incarnationText(rn, c.incarnation), c.nodeID, c.raftAddr, c.durability),
	}
	if !c.replicates() {
		return n, nil
	}
	repl, err := startReplication(c, rn, log, reg)
	if err != nil {
		rn.Close()
		return nil, err
	}
	n.store = newReplicatedNode(rn, repl)
	n.shutdown = func(ctx context.Context) error {
		repl.Close()
		return rn.Shutdown(ctx)
	}
	n.stop = func() error {
		repl.Close()
		return rn.Close()
	}
	n.describe += fmt.Sprintf(", replication %s with %d peer region(s)", c.replAddr, len(c.peerRegions))
	return n, nil
}

// incarnationText describes a region node's incarnation at startup: the
// one its restored state holds, or, until the node has applied the entry
// that fixed it (a region starting from empty state takes one with its
// leader's first entry), the configured floor; INFO shows the current one.
func incarnationText(rn *region.Node, floor uint32) string {
	if rn.OriginFixed() {
		return strconv.FormatUint(uint64(rn.Origin().Incarnation), 10)
	}
	return fmt.Sprintf("floor %d", floor)
}

// startReplication serves this node's replication address and ships the
// region's log to the peer regions while the node leads.
func startReplication(c *config, rn *region.Node, log *slog.Logger, reg prometheus.Registerer) (*replication.Manager, error) {
	tlsConf, err := c.loadTLS()
	if err != nil {
		return nil, err
	}
	var ln net.Listener
	if c.replAddr != "" {
		if ln, err = net.Listen("tcp", c.replAddr); err != nil {
			return nil, fmt.Errorf("repl-addr: %w", err)
		}
	}
	m, err := replication.Start(replication.Config{
		Region:   rn,
		Name:     c.name(),
		Listener: ln,
		Peers:    c.peerRegions,
		TLS:      tlsConf,
		// The secure default: a certificate names its region.
		TLSAnyRegion: c.tlsRegionIdentity == "off",
		Logger:       log.With("component", "replication"),
	})
	if err != nil {
		if ln != nil {
			ln.Close()
		}
		return nil, err
	}
	if reg != nil {
		if err := m.Register(reg); err != nil {
			m.Close()
			return nil, err
		}
	}
	return m, nil
}

// replication.Start finds garbage collection and incarnation renewal by
// type assertion on the Region it is given (the *region.Node itself, not
// replicatedNode): keep them there.
var (
	_ replication.Region  = (*region.Node)(nil)
	_ replication.Folder  = (*region.Node)(nil)
	_ replication.Renewer = (*region.Node)(nil)
)

// replicatedNode is a region node that also replicates with other
// regions: INFO's replication section gains the peer regions, and
// WAITREGIONS learns what the peers applied from the region's leader.
type replicatedNode struct {
	*region.Node
	repl *replication.Manager
}

// newReplicatedNode wraps rn and registers the leader query a follower's
// WAITREGIONS asks (queryPeerVV).
func newReplicatedNode(rn *region.Node, repl *replication.Manager) *replicatedNode {
	r := &replicatedNode{Node: rn, repl: repl}
	rn.SetQueryHandler(r.query)
	return r
}

// Publish implements server.Publisher: this node's subscribers, the
// region's other nodes and every peer region.
func (r *replicatedNode) Publish(channel, message []byte) int {
	return r.repl.Publish(channel, message)
}

// SetPublishHandler implements server.Publisher.
func (r *replicatedNode) SetPublishHandler(deliver func(channel, message []byte) int) {
	r.repl.SetPublishHandler(deliver)
}

// InfoFields implements server.Replica.
func (r *replicatedNode) InfoFields(section string) [][2]string {
	fields := r.Node.InfoFields(section)
	if section == "replication" {
		fields = append(fields, r.repl.InfoFields(r.Node.Leader())...)
	}
	return fields
}

// queryPeerVV asks the leader for its peers' applied vectors. The answer
// is an array with one array per peer region: the region id, then
// (region, incarnation, seq) for each origin of its vector.
const queryPeerVV = "PEERVV"

// query answers leader queries (it runs on the leader).
func (r *replicatedNode) query(args [][]byte) crdt.Reply {
	if len(args) != 1 || string(args[0]) != queryPeerVV {
		return crdt.Err("ERR unknown leader query")
	}
	peers := r.repl.Peers()
	out := make([]crdt.Reply, 0, len(peers))
	for _, p := range peers {
		e := []crdt.Reply{crdt.Int(int64(p.Peer.Region))}
		for _, v := range p.PeerVV {
			e = append(e, crdt.Int(int64(v.Origin.Region)), crdt.Int(int64(v.Origin.Incarnation)), crdt.Int(int64(v.Seq)))
		}
		out = append(out, crdt.Array(e...))
	}
	return crdt.Array(out...)
}

// PeerApplied implements server.PeerRegions: the leader's shippers know
// what each peer acknowledged; a follower asks the leader.
func (r *replicatedNode) PeerApplied(ctx context.Context) ([]crdt.VersionVector, error) {
	if len(r.repl.Peers()) == 0 {
		return nil, nil
	}
	rep, err := r.Node.QueryLeader(ctx, [][]byte{[]byte(queryPeerVV)})
	if err != nil {
		return nil, err
	}
	if rep.Kind == crdt.KindError {
		return nil, errors.New(string(rep.Str))
	}
	out := make([]crdt.VersionVector, 0, len(rep.Elems))
	for _, p := range rep.Elems {
		var vv crdt.VersionVector
		for i := 1; i+2 < len(p.Elems); i += 3 {
			o := crdt.Origin{Region: uint32(p.Elems[i].Int), Incarnation: uint32(p.Elems[i+1].Int)}
			vv = vv.Set(o, uint64(p.Elems[i+2].Int))
		}
		out = append(out, vv)
	}
	return out, nil
}

// regionConfig translates c into the region's configuration.
func regionConfig(c *config, log *slog.Logger, reg prometheus.Registerer) (region.Config, error) {
	tlsConf, err := c.loadTLS()
	if err != nil {
		return region.Config{}, err
	}
	rc := region.Config{
		NodeID:     c.nodeID,
		RaftAddr:   c.raftAddr,
		DataDir:    c.dataDir,
		Peers:      c.peers,
		Durability: c.durability,
		Origin:     crdt.Origin{Region: c.region, Incarnation: c.incarnation},
		// A region without peers folds counter increments as it goes;
		// with peers they stay separate until every region has them.
		Solo:              len(c.peerRegions) == 0,
		ReplLog:           crdt.LogLimits{MaxBytes: int(c.replLogSize)},
		Timing:            c.timing,
		SnapshotThreshold: c.snapshotThreshold,
		TLS:               tlsConf,
		Logger:            log.With("component", "region"),
	}
	if reg != nil {
		rc.Metrics = region.NewMetrics(reg)
	}
	return rc, nil
}

// shutdownTimeout bounds a clean stop: a leader hands leadership over and
// the log is closed within it.
const shutdownTimeout = 10 * time.Second

// serve runs a node until a signal or SHUTDOWN stops it.
func serve(c *config, stdout, stderr io.Writer) error {
	log := c.newLogger(stderr)

	// Bind the client and metrics addresses before opening the node: a
	// taken port fails at once, and the node can advertise the RESP
	// address actually bound.
	ln, err := net.Listen("tcp", c.addr)
	if err != nil {
		return err
	}
	var (
		hl   net.Listener
		reg  *prometheus.Registry
		rreg prometheus.Registerer
	)
	if c.metricsAddr != "" {
		if hl, err = net.Listen("tcp", c.metricsAddr); err != nil {
			ln.Close()
			return fmt.Errorf("metrics-addr: %w", err)
		}
		reg = newRegistry()
		rreg = reg
	}
	n, err := openNode(c, log, rreg, ln.Addr().String())
	if err != nil {
		ln.Close()
		if hl != nil {
			hl.Close()
		}
		return err
	}
	shutdown := make(chan struct{})
	srv := server.New(n.store, server.Options{
		RequirePass:     c.requirePass,
		RefuseFlush:     c.flushCmds == "refuse",
		MaxClients:      c.maxClients,
		ProtoMaxBulkLen: c.maxBulk,
		Timeout:         c.timeout,
		Origin:          crdt.Origin{Region: c.region, Incarnation: c.incarnation},
		ConcordVersion:  version,
		Logger:          log,
		Shutdown:        func() { close(shutdown) },
	})
	var live atomic.Bool
	var ops *opsServer
	if hl != nil {
		ops = startOps(hl, opsHandler(reg, live.Load, n.ready), log)
		log.Info("metrics endpoint", "addr", hl.Addr().String())
	}
	// stop tears down in order: clients first (no new work), then the
	// store (a leader hands over leadership), then the probes, which
	// answer "unavailable" until the end.
	stop := func() error {
		live.Store(false)
		srv.Close()
		ctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
		defer cancel()
		err := n.shutdown(ctx)
		ops.stop(ctx)
		return err
	}

	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	defer signal.Stop(sig)
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	live.Store(true)
	fmt.Fprintf(stdout, "concord %s: serving RESP on %s (%s)\n", version, ln.Addr(), n.describe)

	select {
	case s := <-sig:
		log.Info("shutting down", "signal", s.String())
	case <-shutdown:
		log.Info("shutting down", "reason", "SHUTDOWN command")
	case err := <-served:
		stop()
		return err
	}
	err = stop()
	<-served
	if err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	log.Info("stopped")
	return nil
}
