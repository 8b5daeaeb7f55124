package main

// In-process multi-region fault tests: real Raft regions (package region),
// real gRPC replication (package replication) between them, every directed
// link between two regions through its own fault-injecting TCP proxy
// (linkfault), and clients on the real RESP path (package server, go-redis).
//
// Nothing here sleeps as a correctness assumption: every wait polls for a
// condition and fails at a deadline. Set CONCORD_MR_SEED to replay a seed,
// CONCORD_MR_LOG=debug|info|warn to see the nodes' logs.

import (
	"bytes"
	"compress/flate"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"os"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"concord/crdt"
	pb "concord/proto"
	"concord/region"
	"concord/replication"
	"concord/replication/linkfault"
	"concord/server"
)

// ---------------------------------------------------------------------------
// Harness

// mrOptions shape a deployment.
type mrOptions struct {
	regions, nodes int
	replLog        crdt.LogLimits
	sender         replication.SenderConfig
	// skew, if set, gives region r's nodes a clock this far from real time
	// (for stamps and for replication's wall clock).
	skew func(r int) time.Duration
	// gcInterval is replication's GCInterval (0: its default).
	gcInterval time.Duration
	// tls, if set, gives node i of region r its replication TLS
	// configuration.
	tls func(r, i int) *tls.Config
	// late regions (the last ones) are neither started nor known to the
	// others: a test adds them (setPeers, startRegion).
	late int
}

// mrDeployment is R regions of N nodes in this process.
type mrDeployment struct {
	t       *testing.T
	opts    mrOptions
	regions []*mrRegion
	// proxies[from][to][j] carries region from's streams to node j of
	// region to.
	proxies [][][]*linkfault.Proxy
	log     *slog.Logger
	start   time.Time

	evMu   sync.Mutex
	events []string // faults and restarts, printed when a test fails
}

type mrRegion struct {
	d     *mrDeployment
	idx   int
	id    uint32
	name  string
	clock func() time.Time
	peers []region.Peer
	nodes []*mrNode
	// known, if set, are the regions this one is configured with as peers
	// (by index); nil means every other region. Read at node start.
	known map[int]bool
}

type mrNode struct {
	r                            *mrRegion
	idx                          int
	id                           string
	raftAddr, replAddr, respAddr string
	dir                          string
	client                       *redis.Client // stays valid across restarts
	// raftLn, replLn and respLn are the listeners bound when the addresses
	// were chosen, for the first start (closing and rebinding them would
	// let another process take the port meanwhile); restarts rebind.
	raftLn, replLn, respLn net.Listener

	// pubs counts the publications this node's handler was given, by
	// message, across restarts.
	pubMu   sync.Mutex
	pubs    map[string]int
	pubGate chan struct{} // if set, the handler waits for it to close (a stalled subscriber)

	mu   sync.Mutex
	node *region.Node
	mgr  *replication.Manager
	srv  *server.Server
	done chan error
}

func mrLogger() *slog.Logger {
	var lvl slog.Level
	switch os.Getenv("CONCORD_MR_LOG") {
	case "":
		return slog.New(slog.DiscardHandler)
	case "debug":
		lvl = slog.LevelDebug
	case "info":
		lvl = slog.LevelInfo
	case "error":
		lvl = slog.LevelError
	default:
		lvl = slog.LevelWarn
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: lvl}))
}

// mrSeed returns CONCORD_MR_SEED or a fresh seed, and logs it.
func mrSeed(t *testing.T) uint64 {
	t.Helper()
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv("CONCORD_MR_SEED"); s != "" {
		v, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatalf("CONCORD_MR_SEED: %v", err)
		}
		seed = v
	}
	t.Logf("seed %d (replay with CONCORD_MR_SEED=%d)", seed, seed)
	return seed
}

// bindAddr binds a loopback port and returns the listener and its
// address, which a node keeps across restarts.
func bindAddr(t *testing.T) (net.Listener, string) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return l, l.Addr().String()
}

// listenRetry listens on addr, waiting out a port that lingers after a
// close.
func listenRetry(addr string) (net.Listener, error) {
	var err error
	for try := 0; try < 100; try++ {
		var ln net.Listener
		if ln, err = net.Listen("tcp", addr); err == nil {
			return ln, nil
		}
		if !strings.Contains(err.Error(), "address already in use") {
			return nil, err
		}
		time.Sleep(50 * time.Millisecond)
	}
	return nil, err
}

func newDeployment(t *testing.T, opts mrOptions) *mrDeployment {
	t.Helper()
	if opts.nodes == 0 {
		opts.nodes = 1
	}
	d := &mrDeployment{t: t, opts: opts, log: mrLogger(), start: time.Now()}
	for r := 0; r < opts.regions; r++ {
		reg := &mrRegion{d: d, idx: r, id: uint32(r + 1), name: localRegionName(r), clock: time.Now}
		if opts.skew != nil {
			if off := opts.skew(r); off != 0 {
				reg.clock = func() time.Time { return time.Now().Add(off) }
			}
		}
		for i := 0; i < opts.nodes; i++ {
			n := &mrNode{r: reg, idx: i, id: fmt.Sprintf("n%d", i+1), dir: t.TempDir()}
			n.raftLn, n.raftAddr = bindAddr(t)
			n.replLn, n.replAddr = bindAddr(t)
			n.respLn, n.respAddr = bindAddr(t)
			n.client = redis.NewClient(&redis.Options{
				Addr: n.respAddr, Protocol: 2,
				MaxRetries: -1, DialerRetries: 1, // every attempt's outcome is the test's to record
				DialTimeout: 2 * time.Second,
				// Longer than the region's wait for an in-doubt write, so the
				// client hears the region's verdict rather than its own timeout.
				ReadTimeout: 15 * time.Second, WriteTimeout: 5 * time.Second,
				PoolSize: 8,
			})
			reg.nodes = append(reg.nodes, n)
			reg.peers = append(reg.peers, region.Peer{ID: n.id, Addr: n.raftAddr})
		}
		d.regions = append(d.regions, reg)
	}
	d.proxies = make([][][]*linkfault.Proxy, opts.regions)
	for from := range d.regions {
		d.proxies[from] = make([][]*linkfault.Proxy, opts.regions)
		for to, reg := range d.regions {
			if to == from {
				continue
			}
			for _, n := range reg.nodes {
				p, err := linkfault.New("127.0.0.1:0", n.replAddr)
				if err != nil {
					t.Fatal(err)
				}
				d.proxies[from][to] = append(d.proxies[from][to], p)
			}
		}
	}
	t.Cleanup(d.close)
	var wg sync.WaitGroup
	errs := make(chan error, opts.regions*opts.nodes)
	early := opts.regions - opts.late
	if opts.late > 0 {
		for r, reg := range d.regions {
			reg.known = map[int]bool{}
			for o := 0; o < early; o++ {
				if o != r {
					reg.known[o] = true
				}
			}
		}
	}
	for _, reg := range d.regions[:early] {
		for _, n := range reg.nodes {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if err := n.start(); err != nil {
					errs <- err
				}
			}()
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	for r := range d.regions[:early] {
		d.leader(r)
	}
	return d
}

func (d *mrDeployment) event(format string, args ...any) {
	d.evMu.Lock()
	defer d.evMu.Unlock()
	d.events = append(d.events, fmt.Sprintf("%7.3fs ", time.Since(d.start).Seconds())+fmt.Sprintf(format, args...))
}

func (d *mrDeployment) eventLog() string {
	d.evMu.Lock()
	defer d.evMu.Unlock()
	const keep = 80
	ev := d.events
	prefix := ""
	if len(ev) > keep {
		prefix = fmt.Sprintf("  ... %d earlier events\n", len(ev)-keep)
		ev = ev[len(ev)-keep:]
	}
	return prefix + "  " + strings.Join(ev, "\n  ")
}

func (d *mrDeployment) close() {
	var wg sync.WaitGroup
	for _, reg := range d.regions {
		for _, n := range reg.nodes {
			wg.Add(1)
			go func() {
				defer wg.Done()
				n.stop(false)
				n.client.Close()
				for _, l := range []net.Listener{n.raftLn, n.replLn, n.respLn} {
					if l != nil { // never started
						l.Close()
					}
				}
			}()
		}
	}
	wg.Wait()
	for _, row := range d.proxies {
		for _, ps := range row {
			for _, p := range ps {
				p.Close()
			}
		}
	}
	if d.t.Failed() {
		d.t.Logf("events:\n%s", d.eventLog())
	}
}

func (n *mrNode) String() string { return n.r.name + "/" + n.id }

// start opens the node from its data dir, its replication and its RESP
// server.
func (n *mrNode) start() error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.node != nil {
		return fmt.Errorf("%s already running", n)
	}
	d, reg := n.r.d, n.r
	log := d.log.With("region", reg.name, "node", n.id)
	cfg := region.Config{
		NodeID: n.id, RaftAddr: n.raftAddr, RESPAddr: n.respAddr, DataDir: n.dir,
		Peers:  reg.peers,
		Origin: crdt.Origin{Region: reg.id, Incarnation: 1}, Solo: false,
		ReplLog: d.opts.replLog,
		Clock:   reg.clock,
		Logger:  log.With("component", "region"),
	}
	// The first start uses the listeners bound with the addresses; a
	// restart lets Open bind (it waits before it listens, so that peers are
	// refused meanwhile), retrying while the old socket lingers.
	cfg.Listener, n.raftLn = n.raftLn, nil
	var node *region.Node
	var err error
	for try := 0; try < 100; try++ {
		if node, err = region.Open(cfg); err == nil || !strings.Contains(err.Error(), "address already in use") {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err != nil {
		return fmt.Errorf("open %s: %w", n, err)
	}
	replLn, respLn := n.replLn, n.respLn
	n.replLn, n.respLn = nil, nil
	if replLn == nil {
		if replLn, err = listenRetry(n.replAddr); err != nil {
			node.Close()
			return fmt.Errorf("%s: replication listener: %w", n, err)
		}
	}
	var peers []replication.Peer
	for to, other := range d.regions {
		if other == reg || reg.known != nil && !reg.known[to] {
			continue
		}
		p := replication.Peer{Region: other.id, Name: other.name}
		for _, px := range d.proxies[reg.idx][to] {
			p.Addrs = append(p.Addrs, px.Addr())
		}
		peers = append(peers, p)
	}
	var tlsConf *tls.Config
	if d.opts.tls != nil {
		tlsConf = d.opts.tls(reg.idx, n.idx)
	}
	mgr, err := replication.Start(replication.Config{
		Region: node, Name: reg.name, Listener: replLn, Peers: peers,
		TLS:        tlsConf,
		Sender:     d.opts.sender,
		Keepalive:  500 * time.Millisecond,
		GCInterval: d.opts.gcInterval,
		Logger:     log.With("component", "replication"),
		Clock:      reg.clock,
	})
	if err != nil {
		replLn.Close()
		node.Close()
		return fmt.Errorf("%s: replication: %w", n, err)
	}
	if respLn == nil {
		if respLn, err = listenRetry(n.respAddr); err != nil {
			mgr.Close()
			node.Close()
			return fmt.Errorf("%s: RESP listener: %w", n, err)
		}
	}
	srv := server.New(&mrStore{replicatedNode: newReplicatedNode(node, mgr), n: n}, server.Options{
		Origin: cfg.Origin, ConcordVersion: version, Logger: log.With("component", "server"),
	})
	done := make(chan error, 1)
	go func() { done <- srv.Serve(respLn) }()
	n.node, n.mgr, n.srv, n.done = node, mgr, srv, done
	return nil
}

// mrStore is the node's Store: its publication handler counts what it
// is given (pubs) and may be stalled (pubGate) before the server delivers
// it to the node's subscribers.
type mrStore struct {
	*replicatedNode
	n *mrNode
}

func (s *mrStore) SetPublishHandler(deliver func(channel, message []byte) int) {
	n := s.n
	s.replicatedNode.SetPublishHandler(func(channel, msg []byte) int {
		n.pubMu.Lock()
		gate := n.pubGate
		n.pubMu.Unlock()
		if gate != nil {
			<-gate
		}
		n.pubMu.Lock()
		if n.pubs == nil {
			n.pubs = map[string]int{}
		}
		n.pubs[string(channel)+"/"+string(msg)]++
		n.pubMu.Unlock()
		return deliver(channel, msg)
	})
}

// stop stops the node. abrupt closes Raft first, as a crash would (no
// leadership transfer, replication streams cut mid-flight); otherwise
// clients go first, then replication, then the node.
func (n *mrNode) stop(abrupt bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.node == nil {
		return
	}
	node, mgr, srv, served := n.node, n.mgr, n.srv, n.done
	n.node, n.mgr, n.srv, n.done = nil, nil, nil, nil
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		if abrupt {
			node.Close()
			mgr.Close()
			srv.Close()
		} else {
			srv.Close()
			mgr.Close()
			node.Close()
		}
		<-served
	}()
	// A stop that never returns is a bug to report, not a test timeout.
	select {
	case <-stopped:
	case <-time.After(30 * time.Second):
		n.r.d.t.Errorf("%s: stopping did not return within 30s (abrupt %v); raft goroutines:\n%s", n, abrupt, raftStacks())
	}
}

// raftStacks returns the stacks of the goroutines in hashicorp/raft.
func raftStacks() string {
	buf := make([]byte, 8<<20)
	buf = buf[:runtime.Stack(buf, true)]
	var out []string
	for _, g := range strings.Split(string(buf), "\n\n") {
		if strings.Contains(g, "hashicorp/raft.") && !strings.Contains(g, "netpoll") {
			out = append(out, g)
		}
	}
	return strings.Join(out, "\n\n")
}

// running returns the node's region node and manager, or nils.
func (n *mrNode) running() (*region.Node, *replication.Manager) {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.node, n.mgr
}

func (n *mrNode) up() bool { rn, _ := n.running(); return rn != nil }

// leaderNode returns the region's leader if a running node leads and is
// ready, else nil.
func (reg *mrRegion) leaderNode() *mrNode {
	for _, n := range reg.nodes {
		if rn, _ := n.running(); rn != nil && rn.Leader() && rn.Ready() {
			return n
		}
	}
	return nil
}

func (reg *mrRegion) up() bool {
	for _, n := range reg.nodes {
		if n.up() {
			return true
		}
	}
	return false
}

// leader waits for region r's leader.
func (d *mrDeployment) leader(r int) *mrNode {
	d.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		if n := d.regions[r].leaderNode(); n != nil {
			return n
		}
		if time.Now().After(deadline) {
			d.t.Fatalf("region %s: no leader after 20s\n%s", d.regions[r].name, d.describe())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// follower returns a node of region r other than its current leader.
func (d *mrDeployment) follower(r int) *mrNode {
	d.t.Helper()
	lead := d.leader(r)
	for _, n := range d.regions[r].nodes {
		if n != lead {
			return n
		}
	}
	d.t.Fatalf("region %s has no follower", d.regions[r].name)
	return nil
}

// client returns a client of a running node of region r (its leader if
// known, so reads need no forwarding).
func (d *mrDeployment) client(r int) *redis.Client {
	if n := d.regions[r].leaderNode(); n != nil {
		return n.client
	}
	for _, n := range d.regions[r].nodes {
		if n.up() {
			return n.client
		}
	}
	return d.regions[r].nodes[0].client
}

// --- link faults -----------------------------------------------------------

func (d *mrDeployment) name(r int) string { return d.regions[r].name }

// cut resets region from's streams to region to and refuses new ones.
func (d *mrDeployment) cut(from, to int) {
	d.event("cut %s->%s", d.name(from), d.name(to))
	for _, p := range d.proxies[from][to] {
		p.Cut()
	}
}

// blackhole silently drops region from's streams to region to (both
// directions of those TCP connections), keeping them open.
func (d *mrDeployment) blackhole(from, to int) {
	d.event("blackhole %s->%s", d.name(from), d.name(to))
	for _, p := range d.proxies[from][to] {
		p.Blackhole(true)
	}
}

func (d *mrDeployment) delay(from, to int, delay, jitter time.Duration) {
	d.event("delay %s->%s %v+%v", d.name(from), d.name(to), delay, jitter)
	for _, p := range d.proxies[from][to] {
		p.SetDelay(delay, jitter)
	}
}

// healLink undoes every fault of one directed link, delay included.
func (d *mrDeployment) healLink(from, to int) {
	d.event("heal %s->%s", d.name(from), d.name(to))
	for _, p := range d.proxies[from][to] {
		p.Heal()
		p.SetDelay(0, 0)
	}
}

// partition cuts a and b from each other, both ways.
func (d *mrDeployment) partition(a, b int) {
	d.cut(a, b)
	d.cut(b, a)
}

// isolate cuts every link of region r, both ways.
func (d *mrDeployment) isolate(r int) {
	for o := range d.regions {
		if o != r {
			d.partition(r, o)
		}
	}
}

func (d *mrDeployment) healAll() {
	for from := range d.regions {
		for to := range d.regions {
			if from != to {
				d.healLink(from, to)
			}
		}
	}
}

// --- stops and restarts ------------------------------------------------------

// stopRegion stops every node of region r (data dirs stay).
func (d *mrDeployment) stopRegion(r int) {
	d.event("stop region %s", d.name(r))
	var wg sync.WaitGroup
	for _, n := range d.regions[r].nodes {
		wg.Add(1)
		go func() { defer wg.Done(); n.stop(false) }()
	}
	wg.Wait()
}

// startRegion reopens every node of region r from its data dir.
func (d *mrDeployment) startRegion(r int) {
	d.t.Helper()
	d.event("start region %s", d.name(r))
	var wg sync.WaitGroup
	errs := make(chan error, len(d.regions[r].nodes))
	for _, n := range d.regions[r].nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := n.start(); err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		d.t.Fatal(err)
	}
	d.leader(r)
}

// setPeers configures region r with the given peer regions and restarts
// its running nodes one at a time, as an operator's rolling restart would.
func (d *mrDeployment) setPeers(r int, peers ...int) {
	d.t.Helper()
	reg := d.regions[r]
	known := map[int]bool{}
	for _, p := range peers {
		known[p] = true
	}
	d.event("configure region %s with peers %v", reg.name, peers)
	for _, n := range reg.nodes {
		if !n.up() {
			continue
		}
		n.stop(false)
		n.r.known = known
		d.restartNode(n)
	}
	reg.known = known
	d.leader(r)
}

// killLeader stops region r's leader abruptly and returns it (restart it
// with restartNode).
func (d *mrDeployment) killLeader(r int) *mrNode {
	d.t.Helper()
	n := d.leader(r)
	d.event("kill leader %s", n)
	n.stop(true)
	return n
}

func (d *mrDeployment) restartNode(n *mrNode) {
	d.t.Helper()
	d.event("restart %s", n)
	if err := n.start(); err != nil {
		d.t.Fatal(err)
	}
}

// transferLeader hands region r's leadership to another node.
func (d *mrDeployment) transferLeader(r int) {
	d.t.Helper()
	n := d.leader(r)
	rn, _ := n.running()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err := rn.TransferLeadership(ctx)
	d.event("transfer leadership from %s: %v", n, err)
	if err != nil {
		d.t.Logf("transfer leadership from %s: %v", n, err)
	}
}

// --- convergence -------------------------------------------------------------

type nodeView struct {
	node   *mrNode
	digest [32]byte
	vv     crdt.VersionVector
}

func viewOf(n *mrNode, rn *region.Node) nodeView {
	v := nodeView{node: n}
	rn.ReplView(func(r *crdt.Replica) {
		v.digest = r.Keyspace().Digest()
		v.vv = r.Keyspace().Version()
	})
	return v
}

// converged reports whether every running node of every running region
// holds the same state (digest) and version vector, each region's leader
// having passed a read fence (so it reflects everything its region
// acknowledged); why says what differs.
func (d *mrDeployment) converged() (ok bool, why string) {
	var views []nodeView
	for _, reg := range d.regions {
		if !reg.up() {
			continue
		}
		l := reg.leaderNode()
		if l == nil {
			return false, "region " + reg.name + " has no leader"
		}
		rn, _ := l.running()
		if rn == nil {
			return false, "region " + reg.name + " lost its leader"
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		err := rn.ReadFence(ctx)
		cancel()
		if err != nil {
			return false, fmt.Sprintf("%s: read fence: %v", l, err)
		}
		for _, n := range reg.nodes {
			if rn, _ := n.running(); rn != nil {
				views = append(views, viewOf(n, rn))
			}
		}
	}
	for _, v := range views[1:] {
		if v.digest != views[0].digest || !v.vv.Equal(views[0].vv) {
			return false, fmt.Sprintf("%s has %x %v, %s has %x %v", views[0].node, views[0].digest[:6], views[0].vv,
				v.node, v.digest[:6], v.vv)
		}
	}
	return true, ""
}

// waitConverged waits until converged, or fails the test showing every
// region's vector and replication status.
func (d *mrDeployment) waitConverged(timeout time.Duration) {
	d.t.Helper()
	start := time.Now()
	deadline := start.Add(timeout)
	for {
		ok, why := d.converged()
		if ok {
			d.event("converged after %v", time.Since(start).Round(time.Millisecond))
			return
		}
		if time.Now().After(deadline) {
			d.t.Fatalf("not converged after %v: %s\n%s", timeout, why, d.describe())
		}
		time.Sleep(25 * time.Millisecond)
	}
}

// describe shows every node's state and every leader's replication status.
func (d *mrDeployment) describe() string {
	var b strings.Builder
	for _, reg := range d.regions {
		fmt.Fprintf(&b, "region %d (%s):\n", reg.id, reg.name)
		for _, n := range reg.nodes {
			rn, mgr := n.running()
			if rn == nil {
				fmt.Fprintf(&b, "  %s: down\n", n.id)
				continue
			}
			v := viewOf(n, rn)
			var st crdt.ReplicaStats
			rn.ReplView(func(r *crdt.Replica) { st = r.Stats })
			fmt.Fprintf(&b, "  %s: leader=%v ready=%v digest=%x vv=%v stats=%+v\n", n.id, rn.Leader(), rn.Ready(), v.digest[:6], v.vv, st)
			if !rn.Leader() {
				continue
			}
			for _, p := range mgr.Peers() {
				fmt.Fprintf(&b, "    -> %s: state=%s addr=%s acked=%d next=%d lag=%d inflight=%d peerVV=%v batches=%d transfers=%d resets=%d offset=%dms err=%q\n",
					p.Peer.Name, p.State, p.Addr, p.AckedPos, p.NextPos, p.LagRecords, p.InFlight, p.PeerVV,
					p.BatchesSent, p.Transfers, p.Resets, p.ClockOffsetMs, p.LastErr)
			}
			for from, rs := range mgr.Received() {
				fmt.Fprintf(&b, "    <- region %d: batches=%d skipped=%d merged=%d dup=%d chunks=%d joined=%d\n",
					from, rs.Batches, rs.Skipped, rs.Merged, rs.Duplicates, rs.Chunks, rs.Joined)
			}
		}
	}
	b.WriteString("events:\n" + d.eventLog())
	return b.String()
}

// --- RESP helpers -------------------------------------------------------------

func mrDo(c *redis.Client, args ...any) (any, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	return c.Do(ctx, args...).Result()
}

// mustDo runs a command that must succeed.
func (d *mrDeployment) mustDo(r int, args ...any) any {
	d.t.Helper()
	v, err := mrDo(d.client(r), args...)
	if err != nil {
		d.t.Fatalf("region %s: %v: %v", d.name(r), args, err)
	}
	return v
}

// waitValue polls GET key in region r until it returns want.
func (d *mrDeployment) waitValue(r int, key, want string, timeout time.Duration) {
	d.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		got, err := mrDo(d.client(r), "GET", key)
		if err == nil && got == want {
			return
		}
		if time.Now().After(deadline) {
			d.t.Fatalf("region %s: GET %s = %v (%v), want %q after %v\n%s", d.name(r), key, got, err, want, timeout, d.describe())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func smembers(t *testing.T, c *redis.Client, key string) map[string]bool {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ms, err := c.SMembers(ctx, key).Result()
	if err != nil {
		t.Fatalf("SMEMBERS %s: %v", key, err)
	}
	out := map[string]bool{}
	for _, m := range ms {
		out[m] = true
	}
	return out
}

func getInt(t *testing.T, c *redis.Client, key string) int64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	n, err := c.Get(ctx, key).Int64()
	if errors.Is(err, redis.Nil) {
		return 0
	}
	if err != nil {
		t.Fatalf("GET %s: %v", key, err)
	}
	return n
}

// ---------------------------------------------------------------------------
// Reference model for the convergence test

// refLedger records what clients were told about the keys whose final
// value can be predicted: counters only ever INCRBY'd, sets only ever
// SADD'ed, and one string only ever SET.
type refLedger struct {
	mu       sync.Mutex
	ctrAcked map[string]int64
	ctrDoubt map[string][]int64
	setAcked map[string]map[string]bool
	setDoubt map[string]map[string]bool
	written  map[string]map[string]bool // SET values, acknowledged or not
	ops      int
	refused  int // provably not applied
	errs     map[string]int
}

func newRefLedger() *refLedger {
	return &refLedger{ctrAcked: map[string]int64{}, ctrDoubt: map[string][]int64{},
		setAcked: map[string]map[string]bool{}, setDoubt: map[string]map[string]bool{},
		written: map[string]map[string]bool{}, errs: map[string]int{}}
}

// note classifies err (see outcome) and counts it.
func (l *refLedger) note(err error) (acked, refused bool) {
	l.ops++
	acked, refused = outcome(err)
	if err != nil {
		msg := err.Error()
		if len(msg) > 60 {
			msg = msg[:60]
		}
		l.errs[msg]++
	}
	if refused {
		l.refused++
	}
	return acked, refused
}

func (l *refLedger) incr(key string, delta int64, err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	switch acked, refused := l.note(err); {
	case acked:
		l.ctrAcked[key] += delta
	case !refused:
		l.ctrDoubt[key] = append(l.ctrDoubt[key], delta)
	}
}

func (l *refLedger) sadd(key, member string, err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	m := l.setAcked
	switch acked, refused := l.note(err); {
	case refused:
		return
	case !acked:
		m = l.setDoubt
	}
	if m[key] == nil {
		m[key] = map[string]bool{}
	}
	m[key][member] = true
}

func (l *refLedger) set(key, val string, err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if _, refused := l.note(err); refused {
		return
	}
	if l.written[key] == nil {
		l.written[key] = map[string]bool{}
	}
	l.written[key][val] = true
}

func (l *refLedger) other(err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.ops++
	if err != nil && !isRedisReply(err) {
		msg := err.Error()
		if len(msg) > 60 {
			msg = msg[:60]
		}
		l.errs[msg]++
	}
}

// isRedisReply reports an error reply of the command itself (WRONGTYPE,
// not an integer...), which the model does not care about.
func isRedisReply(err error) bool {
	var rerr redis.Error
	return errors.As(err, &rerr) && !strings.HasPrefix(rerr.Error(), "TRYAGAIN")
}

func (l *refLedger) summary() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var errs []string
	for msg, n := range l.errs {
		errs = append(errs, fmt.Sprintf("%d× %q", n, msg))
	}
	sort.Strings(errs)
	doubt := 0
	for _, ds := range l.ctrDoubt {
		doubt += len(ds)
	}
	return fmt.Sprintf("%d ops, %d refused, %d in-doubt increments; errors: %s", l.ops, l.refused, doubt, strings.Join(errs, ", "))
}

// subsetSums returns every sum of a subset of ds (nil if there are too
// many to enumerate).
func subsetSums(ds []int64) map[int64]bool {
	sums := map[int64]bool{0: true}
	for _, d := range ds {
		next := map[int64]bool{}
		for s := range sums {
			next[s], next[s+d] = true, true
		}
		if len(next) > 1<<16 {
			return nil
		}
		sums = next
	}
	return sums
}

// check verifies region r's view (through RESP) against the ledger.
func (l *refLedger) check(t *testing.T, name string, c *redis.Client) {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	keys := map[string]bool{}
	for k := range l.ctrAcked {
		keys[k] = true
	}
	for k := range l.ctrDoubt {
		keys[k] = true
	}
	for k := range keys {
		got := getInt(t, c, k)
		extra := got - l.ctrAcked[k]
		if sums := subsetSums(l.ctrDoubt[k]); sums != nil {
			if !sums[extra] {
				t.Errorf("%s: counter %s = %d: acknowledged increments sum to %d, and %d is no sum of a subset of the in-doubt ones %v",
					name, k, got, l.ctrAcked[k], extra, l.ctrDoubt[k])
			}
		} else {
			var all int64
			for _, d := range l.ctrDoubt[k] {
				all += d
			}
			if extra < 0 || extra > all {
				t.Errorf("%s: counter %s = %d, want %d plus at most %d in doubt", name, k, got, l.ctrAcked[k], all)
			}
		}
	}
	keys = map[string]bool{}
	for k := range l.setAcked {
		keys[k] = true
	}
	for k := range l.setDoubt {
		keys[k] = true
	}
	for k := range keys {
		got := smembers(t, c, k)
		for m := range l.setAcked[k] {
			if !got[m] {
				t.Errorf("%s: set %s lacks acknowledged member %s", name, k, m)
			}
		}
		for m := range got {
			if !l.setAcked[k][m] && !l.setDoubt[k][m] {
				t.Errorf("%s: set %s has member %s nobody added", name, k, m)
			}
		}
	}
	for k, vals := range l.written {
		got, err := mrDo(c, "GET", k)
		s, _ := got.(string)
		if err != nil || !vals[s] {
			t.Errorf("%s: GET %s = %v (%v), not one of the %d values written", name, k, got, err, len(vals))
		}
	}
}

// ---------------------------------------------------------------------------
// 1. Convergence under partitions

func TestMultiRegionConvergeUnderPartitions(t *testing.T) {
	testConvergeUnderPartitions(t, 3, 4*time.Second)
}

func TestMultiRegionConvergeUnderPartitions5(t *testing.T) {
	if testing.Short() {
		t.Skip("5 regions")
	}
	testConvergeUnderPartitions(t, 5, 3*time.Second)
}

func testConvergeUnderPartitions(t *testing.T, regions int, writeFor time.Duration) {
	seed := mrSeed(t)
	d := newDeployment(t, mrOptions{regions: regions, nodes: 1,
		// A stream whose acks stop (a blackhole) is reset quickly.
		sender: replication.SenderConfig{AckTimeout: 3000, HelloTimeout: 3000}})
	led := newRefLedger()
	ctx, cancel := context.WithTimeout(context.Background(), writeFor)
	defer cancel()
	var wg sync.WaitGroup
	const writersPerRegion = 2
	for r := 0; r < regions; r++ {
		for w := 0; w < writersPerRegion; w++ {
			wg.Add(1)
			rng := rand.New(rand.NewPCG(seed, uint64(r*writersPerRegion+w+1)))
			go func() {
				defer wg.Done()
				mrWriter(ctx, d.regions[r].nodes[0].client, fmt.Sprintf("%s.%d", d.name(r), w), rng, led)
			}()
		}
	}
	// Faults, seeded, until the writers stop.
	frng := rand.New(rand.NewPCG(seed, 0))
	link := func() (int, int) {
		from := frng.IntN(regions)
		return from, (from + 1 + frng.IntN(regions-1)) % regions
	}
	faults := 0
	for ctx.Err() == nil {
		select {
		case <-ctx.Done():
		case <-time.After(time.Duration(80+frng.IntN(250)) * time.Millisecond):
		}
		faults++
		switch p := frng.IntN(100); {
		case p < 25:
			d.cut(link())
		case p < 45:
			d.blackhole(link())
		case p < 65:
			from, to := link()
			d.delay(from, to, time.Duration(frng.IntN(150))*time.Millisecond, time.Duration(frng.IntN(50)+1)*time.Millisecond)
		case p < 85:
			d.healLink(link())
		case p < 93:
			d.isolate(frng.IntN(regions))
		default:
			d.healAll()
		}
	}
	wg.Wait()
	d.healAll()
	t.Logf("%d faults; writers: %s", faults, led.summary())
	d.waitConverged(60 * time.Second)
	t.Logf("events:\n%s", d.eventLog())
	for r := range d.regions {
		led.check(t, d.name(r), d.client(r))
	}
	if led.ops < 100*regions {
		t.Errorf("only %d operations in %v", led.ops, writeFor)
	}
}

// mrWriter runs random writes on a small key set until ctx ends.
func mrWriter(ctx context.Context, c *redis.Client, name string, rng *rand.Rand, led *refLedger) {
	n := 0
	do := func(args ...any) error {
		octx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		return c.Do(octx, args...).Err()
	}
	key := func(pool string, k int) string { return fmt.Sprintf("%s:%d", pool, rng.IntN(k)) }
	for ctx.Err() == nil {
		n++
		switch p := rng.IntN(100); {
		case p < 12: // counters: INCRBY only
			k, delta := key("ctr", 3), int64(1+rng.IntN(100))
			led.incr(k, delta, do("INCRBY", k, delta))
		case p < 20: // sets: SADD only
			k, m := key("uset", 2), fmt.Sprintf("m%d", rng.IntN(60))
			led.sadd(k, m, do("SADD", k, m))
		case p < 25: // one string SET everywhere
			v := fmt.Sprintf("%s-%d", name, n)
			led.set("lww", v, do("SET", "lww", v))
		case p < 38: // strings and counters mixed
			k := key("str", 4)
			switch rng.IntN(5) {
			case 0:
				led.other(do("SET", k, strconv.Itoa(rng.IntN(1000))))
			case 1:
				led.other(do("INCRBY", k, rng.IntN(50)-10))
			case 2:
				led.other(do("INCRBYFLOAT", k, fmt.Sprintf("%.2f", rng.Float64()*10)))
			case 3:
				led.other(do("DEL", k))
			default:
				led.other(do("EXPIRE", k, 3600+rng.IntN(100)))
			}
		case p < 52: // hashes
			k, f := key("h", 3), fmt.Sprintf("f%d", rng.IntN(6))
			switch rng.IntN(5) {
			case 0, 1:
				led.other(do("HSET", k, f, name))
			case 2:
				led.other(do("HINCRBY", k, "n"+f, 1+rng.IntN(9)))
			case 3:
				led.other(do("HDEL", k, f, "n"+f))
			default:
				if rng.IntN(2) == 0 {
					led.other(do("DEL", k))
				} else {
					led.other(do("EXPIRE", k, 3600))
				}
			}
		case p < 66: // sets with removals
			k, m := key("s", 3), fmt.Sprintf("e%d", rng.IntN(8))
			switch rng.IntN(4) {
			case 0, 1:
				led.other(do("SADD", k, m))
			case 2:
				led.other(do("SREM", k, m))
			default:
				led.other(do("DEL", k))
			}
		case p < 82: // sorted sets
			k, m := key("z", 3), fmt.Sprintf("p%d", rng.IntN(8))
			switch rng.IntN(5) {
			case 0, 1:
				led.other(do("ZADD", k, rng.IntN(100), m))
			case 2:
				led.other(do("ZINCRBY", k, rng.IntN(7)+1, m))
			case 3:
				led.other(do("ZREM", k, m))
			default:
				led.other(do("EXPIRE", k, 7200))
			}
		default: // one key written with every type, concurrently
			k := key("mix", 2)
			switch rng.IntN(5) {
			case 0:
				led.other(do("SET", k, name))
			case 1:
				led.other(do("HSET", k, "f", name))
			case 2:
				led.other(do("SADD", k, name))
			case 3:
				led.other(do("ZADD", k, n, name))
			default:
				led.other(do("DEL", k))
			}
		}
	}
}

// ---------------------------------------------------------------------------
// 2. A survivor keeps writing while the other regions are down

func TestMultiRegionSurvivorKeepsWriting(t *testing.T) {
	d := newDeployment(t, mrOptions{regions: 3, nodes: 1})
	for r := range d.regions {
		d.mustDo(r, "INCRBY", "ctr", r+1)
		d.mustDo(r, "SADD", "members", "before-"+d.name(r))
	}
	d.waitConverged(60 * time.Second)
	d.stopRegion(1)
	d.stopRegion(2)

	// The survivor writes throughout: while alone, and while the others
	// come back one by one. It must never refuse a write.
	var (
		acked   atomic.Int64
		incrSum atomic.Int64
		failed  atomic.Int64
		errMu   sync.Mutex
		errText []string
	)
	stop := make(chan struct{})
	done := make(chan struct{})
	c := d.regions[0].nodes[0].client
	go func() {
		defer close(done)
		for i := 1; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			_, err := mrDo(c, "INCRBY", "ctr", 2)
			if err == nil {
				incrSum.Add(2)
				_, err = mrDo(c, "SADD", "members", fmt.Sprintf("m%d", i))
			}
			if err != nil {
				failed.Add(1)
				errMu.Lock()
				errText = append(errText, err.Error())
				errMu.Unlock()
				continue
			}
			acked.Store(int64(i))
		}
	}()
	waitAcked := func(n int64) {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for acked.Load() < n {
			if time.Now().After(deadline) {
				t.Fatalf("survivor acknowledged only %d writes", acked.Load())
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	waitAcked(200)
	d.startRegion(1)
	waitAcked(acked.Load() + 100)
	d.waitConverged(60 * time.Second) // region 2 is down: regions 0 and 1
	d.mustDo(1, "SADD", "members", "after-"+d.name(1))
	d.startRegion(2)
	waitAcked(acked.Load() + 100)
	d.waitConverged(60 * time.Second)
	close(stop)
	<-done
	if f := failed.Load(); f > 0 {
		t.Errorf("the survivor refused %d writes: %v", f, errText[:min(len(errText), 5)])
	}
	d.mustDo(2, "SADD", "members", "after-"+d.name(2))
	d.waitConverged(60 * time.Second)

	n := acked.Load()
	wantCtr := int64(1+2+3) + incrSum.Load()
	want := map[string]bool{"after-" + d.name(1): true, "after-" + d.name(2): true}
	for r := range d.regions {
		want["before-"+d.name(r)] = true
	}
	for i := int64(1); i <= n; i++ {
		want[fmt.Sprintf("m%d", i)] = true
	}
	for r := range d.regions {
		c := d.client(r)
		if got := getInt(t, c, "ctr"); got != wantCtr {
			t.Errorf("region %s: ctr = %d, want %d", d.name(r), got, wantCtr)
		}
		got := smembers(t, c, "members")
		if len(got) != len(want) {
			t.Errorf("region %s: %d members, want %d", d.name(r), len(got), len(want))
		}
		for m := range want {
			if !got[m] {
				t.Errorf("region %s lacks acknowledged member %s", d.name(r), m)
				break
			}
		}
	}
	t.Logf("survivor acknowledged %d write pairs", n)
}

// ---------------------------------------------------------------------------
// 3. Relay: a write reaches a region its origin cannot reach, after the
// origin is gone

func TestMultiRegionRelay(t *testing.T) {
	d := newDeployment(t, mrOptions{regions: 3, nodes: 1})
	const a, b, c = 0, 1, 2
	d.waitConverged(30 * time.Second)
	// B's stream to C is up before the cut, so the one after the heal is a
	// resync.
	d.waitStreaming(b, c, 30*time.Second)
	d.partition(a, c)
	// B holds what it gets from A until A is gone, so C can only get A's
	// writes by relay from a dead origin.
	d.cut(b, c)
	for i := 0; i < 20; i++ {
		d.mustDo(a, "SET", fmt.Sprintf("relay:%d", i), "from-a")
		d.mustDo(a, "INCR", "relay:ctr")
		d.mustDo(a, "SADD", "relay:set", fmt.Sprintf("a%d", i))
	}
	d.mustDo(a, "SET", "relay:last", "done") // A's last write
	d.waitValue(b, "relay:last", "done", 30*time.Second)
	d.stopRegion(a) // for good
	if v, _ := mrDo(d.client(c), "GET", "relay:0"); v != nil {
		t.Fatalf("region c had A's write before any path to it existed: %v", v)
	}
	healed := time.Now()
	d.healLink(b, c)
	d.waitValue(c, "relay:last", "done", 30*time.Second)
	d.waitConverged(30 * time.Second)
	d.waitValue(c, "relay:ctr", "20", time.Second)
	for i := 0; i < 20; i++ {
		d.waitValue(c, fmt.Sprintf("relay:%d", i), "from-a", time.Second)
	}
	if got := smembers(t, d.client(c), "relay:set"); len(got) != 20 {
		t.Errorf("region c: relay:set has %d members, want 20", len(got))
	}
	// And C's own writes still reach B.
	d.mustDo(c, "SET", "relay:back", "from-c")
	d.waitValue(b, "relay:back", "from-c", 30*time.Second)

	// What B and C report of their link: C received A's writes from B
	// (no more than B sent: C is read first), B's stream to C was
	// re-established after the cut and acknowledged since the heal.
	d.waitStreaming(b, c, 30*time.Second)
	_, mgrB := d.leader(b).running()
	_, mgrC := d.leader(c).running()
	cFromB := peerInfo(t, d.client(c), d.name(b))
	promRecv := peerMetric(t, mgrC, "concord_replication_bytes_received_total", d.regions[b].id)
	bToC := peerInfo(t, d.client(b), d.name(c))
	promSent := peerMetric(t, mgrB, "concord_replication_bytes_sent_total", d.regions[c].id)
	promResyncs := peerMetric(t, mgrB, "concord_replication_resyncs_total", d.regions[c].id)
	promAck := peerMetric(t, mgrB, "concord_replication_last_ack_timestamp_seconds", d.regions[c].id)
	sinceHeal := time.Since(healed).Milliseconds()
	t.Logf("C from B: %s\nB to C: %s", cFromB, bToC)
	recv, err1 := strconv.ParseUint(infoSub(cFromB, "bytes_received"), 10, 64)
	sent, err2 := strconv.ParseUint(infoSub(bToC, "bytes_sent"), 10, 64)
	if err1 != nil || err2 != nil || recv == 0 || recv > sent {
		t.Errorf("INFO: C bytes_received from B %q, B bytes_sent to C %q: want 0 < received <= sent", infoSub(cFromB, "bytes_received"), infoSub(bToC, "bytes_sent"))
	}
	if promRecv == nil || *promRecv == 0 || promSent == nil || *promRecv > *promSent {
		t.Errorf("Prometheus: C bytes_received_total from B %s, B bytes_sent_total to C %s: want 0 < received <= sent", fmtMetric(promRecv), fmtMetric(promSent))
	}
	if n, err := strconv.Atoi(infoSub(bToC, "resyncs")); err != nil || n < 1 {
		t.Errorf("INFO: B to C resyncs = %q after a cut and heal, want >= 1", infoSub(bToC, "resyncs"))
	}
	if promResyncs == nil || *promResyncs < 1 {
		t.Errorf("Prometheus: B to C resyncs_total = %s after a cut and heal, want >= 1", fmtMetric(promResyncs))
	}
	if ago, err := strconv.ParseInt(infoSub(bToC, "last_ack_ms_ago"), 10, 64); err != nil || ago < 0 || ago > sinceHeal {
		t.Errorf("INFO: B to C last_ack_ms_ago = %q, want an ack since the heal %d ms ago", infoSub(bToC, "last_ack_ms_ago"), sinceHeal)
	}
	if promAck == nil || *promAck < float64(healed.UnixMilli())/1000 || *promAck > float64(time.Now().UnixMilli())/1000 {
		t.Errorf("Prometheus: B to C last_ack_timestamp_seconds = %s, want between the heal (%.3f) and now", fmtMetric(promAck), float64(healed.UnixMilli())/1000)
	}
	for _, f := range []string{"silent_resets", "own_ahead", "resets"} {
		if _, err := strconv.ParseUint(infoSub(bToC, f), 10, 64); err != nil {
			t.Errorf("INFO: B to C has no %s: %s", f, bToC)
		}
	}
	if v := infoSub(bToC, "own_ahead"); v != "0" {
		t.Errorf("INFO: B to C own_ahead = %s, want 0 (C never held B's writes beyond B)", v)
	}
}

// waitStreaming waits until region from's leader streams to region to.
func (d *mrDeployment) waitStreaming(from, to int, timeout time.Duration) {
	d.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		_, mgr := d.leader(from).running()
		if mgr != nil {
			for _, p := range mgr.Peers() {
				if p.Peer.Region == d.regions[to].id && p.State == replication.Streaming {
					return
				}
			}
		}
		if time.Now().After(deadline) {
			d.t.Fatalf("%s -> %s: not streaming after %v\n%s", d.name(from), d.name(to), timeout, d.describe())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// peerInfo returns the INFO replication peer line naming peer.
func peerInfo(t *testing.T, c *redis.Client, peer string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	info, err := c.Info(ctx, "replication").Result()
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range infoFields(info) {
		if strings.HasPrefix(k, "peer_region") && infoSub(v, "name") == peer {
			return v
		}
	}
	t.Fatalf("INFO replication has no line for peer %s:\n%s", peer, info)
	return ""
}

func fmtMetric(v *float64) string {
	if v == nil {
		return "absent"
	}
	return strconv.FormatFloat(*v, 'f', -1, 64)
}

// peerMetric scrapes mgr's collector for name labelled with peer region
// region; nil if absent.
func peerMetric(t *testing.T, mgr *replication.Manager, name string, region uint32) *float64 {
	t.Helper()
	reg := prometheus.NewRegistry()
	if err := mgr.Register(reg); err != nil {
		t.Fatal(err)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	want := strconv.FormatUint(uint64(region), 10)
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "peer_region" && l.GetValue() == want {
					v := m.GetGauge().GetValue()
					if c := m.GetCounter(); c != nil {
						v = c.GetValue()
					}
					return &v
				}
			}
		}
	}
	return nil
}

// ---------------------------------------------------------------------------
// 4. State transfer: a region away for longer than the log reaches

func TestMultiRegionStateTransfer(t *testing.T) {
	d := newDeployment(t, mrOptions{regions: 3, nodes: 1, replLog: crdt.LogLimits{MaxRecords: 100}})
	const a, b, c = 0, 1, 2
	d.mustDo(c, "SET", "xfer:base", "c")
	d.waitConverged(30 * time.Second)
	d.isolate(c)
	const writes = 250
	for i := 0; i < writes; i++ {
		d.mustDo(a, "INCR", "xfer:ctr")
		d.mustDo(b, "INCR", "xfer:ctr")
		if i%10 == 0 {
			d.mustDo(a, "SET", fmt.Sprintf("xfer:a%d", i), "a")
			d.mustDo(b, "HSET", "xfer:h", fmt.Sprintf("b%d", i), i)
		}
	}
	for i := 0; i < 10; i++ { // C's own writes, during the isolation
		d.mustDo(c, "SADD", "xfer:c", i)
	}
	// A's log holds 100 records: C's position is gone from it. B's writes
	// reach A's log only once A merged them.
	d.waitValue(a, "xfer:ctr", strconv.Itoa(2*writes), 30*time.Second)
	var first uint64
	rnA, _ := d.leader(a).running()
	rnA.ReplView(func(r *crdt.Replica) { first = r.Log().Next() })
	if first < 2*writes {
		t.Fatalf("A's log is at %d, fewer records than written", first)
	}
	d.healAll()
	d.waitConverged(60 * time.Second)

	// Convergence shows once C applied the join; the sender counts the
	// transfer when the acknowledgement reaches it, a moment later.
	senderXfers := func() (n uint64) {
		for _, s := range []int{a, b} {
			_, mgr := d.leader(s).running()
			for _, p := range mgr.Peers() {
				if p.Peer.Region == d.regions[c].id {
					n += p.Transfers
				}
			}
		}
		return n
	}
	cStats := func() (st crdt.ReplicaStats) {
		rn, _ := d.leader(c).running()
		rn.ReplView(func(r *crdt.Replica) { st = r.Stats })
		return st
	}
	deadline := time.Now().Add(10 * time.Second)
	for senderXfers() == 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	xfers, recv := senderXfers(), cStats()
	t.Logf("transfers to C: %d by the senders; C joined %d (%+v)", xfers, recv.Transfers, recv)
	if xfers == 0 || recv.Transfers == 0 {
		t.Fatalf("no state transfer reached C (senders %d, C joined %d)\n%s", xfers, recv.Transfers, d.describe())
	}
	if got := getInt(t, d.client(c), "xfer:ctr"); got != 2*writes {
		t.Errorf("C: xfer:ctr = %d, want %d", got, 2*writes)
	}
	if got := smembers(t, d.client(a), "xfer:c"); len(got) != 10 {
		t.Errorf("A: xfer:c has %d members, want 10", len(got))
	}

	// Both senders end up streaming to C (one may still be reconnecting
	// after the cut when the other's transfer completes, and then need a
	// transfer of its own).
	deadline = time.Now().Add(20 * time.Second)
	for _, s := range []int{a, b} {
		for {
			_, mgr := d.leader(s).running()
			var state replication.SenderState
			for _, p := range mgr.Peers() {
				if p.Peer.Region == d.regions[c].id {
					state = p.State
				}
			}
			if state == replication.Streaming {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s -> C: state %s after the transfer, want streaming\n%s", d.name(s), state, d.describe())
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	// Streaming resumes after the transfer: new writes arrive as batches,
	// with no further transfer.
	before := cStats()
	for i := 0; i < 5; i++ {
		d.mustDo(a, "SET", "xfer:after", fmt.Sprintf("a%d", i))
		d.mustDo(b, "INCR", "xfer:ctr")
	}
	d.waitValue(c, "xfer:after", "a4", 30*time.Second)
	d.waitValue(c, "xfer:ctr", strconv.Itoa(2*writes+5), 30*time.Second)
	d.waitConverged(30 * time.Second)
	after := cStats()
	if after.Merged < before.Merged+10 || after.Transfers != before.Transfers {
		t.Errorf("after the transfer C merged %d batches (want at least 10) and joined %d more transfers (want 0): %+v, was %+v\n%s",
			after.Merged-before.Merged, after.Transfers-before.Transfers, after, before, d.describe())
	}
}

// ---------------------------------------------------------------------------
// 5. Leader changes on both ends of the streams

func TestMultiRegionLeaderChanges(t *testing.T) {
	if testing.Short() {
		t.Skip("9 nodes, leader kills")
	}
	seed := mrSeed(t)
	rng := rand.New(rand.NewPCG(seed, 5))
	const regions = 3
	// Default sender timeouts: a stream that stalls after a leader change
	// (instead of ending and resuming) shows as replication lag below.
	d := newDeployment(t, mrOptions{regions: regions, nodes: 3})
	type tally struct {
		acked, doubt, refused atomic.Int64
		maxReply              atomic.Int64
	}
	var tallies [regions]tally
	var errMu sync.Mutex
	errs := map[string]int{}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for r := 0; r < regions; r++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			nodes := d.regions[r].nodes
			i := 0
			for ctx.Err() == nil {
				c := nodes[i%len(nodes)].client
				v, err := mrDo(c, "INCR", "lc:ctr")
				acked, refused := outcome(err)
				switch {
				case acked:
					tallies[r].acked.Add(1)
					if n, _ := v.(int64); n > tallies[r].maxReply.Load() {
						tallies[r].maxReply.Store(n)
					}
				case refused:
					tallies[r].refused.Add(1)
				default:
					tallies[r].doubt.Add(1)
				}
				if err != nil {
					msg := err.Error()
					if len(msg) > 60 {
						msg = msg[:60]
					}
					errMu.Lock()
					errs[msg]++
					errMu.Unlock()
					i++ // try another node of the region
					time.Sleep(10 * time.Millisecond)
				}
			}
		}()
	}
	stopWriters := func() { cancel(); wg.Wait() }
	t.Cleanup(stopWriters)
	// progress waits until every region acknowledged n more INCRs.
	progress := func(n int64) {
		t.Helper()
		var base [regions]int64
		for r := range base {
			base[r] = tallies[r].acked.Load()
		}
		deadline := time.Now().Add(30 * time.Second)
		for r := 0; r < regions; r++ {
			for tallies[r].acked.Load() < base[r]+n {
				if time.Now().After(deadline) {
					t.Fatalf("region %s acknowledged %d INCRs in 30s, want %d\n%s", d.name(r), tallies[r].acked.Load()-base[r], n, d.describe())
				}
				time.Sleep(10 * time.Millisecond)
			}
		}
	}
	// replicated waits until every region's counter holds at least n: what
	// was acknowledged anywhere reached everywhere, streams resumed.
	replicated := func(n int64, timeout time.Duration) {
		t.Helper()
		deadline := time.Now().Add(timeout)
		for r := 0; r < regions; r++ {
			for {
				v, err := mrDo(d.client(r), "GET", "lc:ctr")
				s, _ := v.(string)
				got, _ := strconv.ParseInt(s, 10, 64)
				if err == nil && got >= n {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("region %s: lc:ctr = %v (%v), want at least %d within %v\n%s", d.name(r), v, err, n, timeout, d.describe())
				}
				time.Sleep(20 * time.Millisecond)
			}
		}
	}
	ackedNow := func() int64 {
		var n int64
		for r := range tallies {
			n += tallies[r].acked.Load()
		}
		return n
	}
	progress(20)
	// Every region in turn loses its leader (killed, or handing over), so
	// each is both a sending and a receiving end of a leader change, and
	// each sees both kinds. The order of the regions is seeded.
	const rounds = 9
	order := rng.Perm(regions)
	for round := 0; round < rounds; round++ {
		r := order[round%regions]
		before := ackedNow()
		start := time.Now()
		if round%2 == 1 {
			d.transferLeader(r)
			d.leader(r)
			progress(20)
		} else {
			killed := d.killLeader(r)
			// The region fails over and both its incoming and outgoing
			// streams resume.
			d.leader(r)
			progress(20)
			d.restartNode(killed)
			progress(10)
		}
		replicated(before, 20*time.Second)
		d.event("round %d (region %s) done in %v", round, d.name(r), time.Since(start).Round(time.Millisecond))
	}
	stopWriters()
	d.waitConverged(60 * time.Second)
	var acked, doubt, refused, maxReply int64
	for r := range tallies {
		acked += tallies[r].acked.Load()
		doubt += tallies[r].doubt.Load()
		refused += tallies[r].refused.Load()
		maxReply = max(maxReply, tallies[r].maxReply.Load())
	}
	errMu.Lock()
	t.Logf("INCRs: %d acknowledged, %d in doubt, %d refused; errors %v\nevents:\n%s", acked, doubt, refused, errs, d.eventLog())
	errMu.Unlock()
	for r := range d.regions {
		for _, n := range d.regions[r].nodes {
			got := getInt(t, n.client, "lc:ctr")
			if got < acked || got > acked+doubt || got < maxReply {
				t.Errorf("%s: lc:ctr = %d, want %d acknowledged (largest reply %d) plus at most %d in doubt",
					n, got, acked, maxReply, doubt)
			}
		}
	}
}

// ---------------------------------------------------------------------------
// 6. Clock skew: the HLC orders causally later writes after earlier ones

func TestMultiRegionClockSkew(t *testing.T) {
	const skew = 5 * time.Second
	d := newDeployment(t, mrOptions{regions: 3, nodes: 1, skew: func(r int) time.Duration {
		return []time.Duration{0, -skew, skew}[r]
	}})
	const a, b, c = 0, 1, 2
	d.mustDo(c, "SET", "skew:k", "from-c")
	d.waitValue(b, "skew:k", "from-c", 30*time.Second)
	d.mustDo(b, "SET", "skew:k", "from-b") // B's clock is 10 s behind C's
	d.waitConverged(30 * time.Second)
	for r := range d.regions {
		d.waitValue(r, "skew:k", "from-b", time.Second)
	}

	// The skew is measured and reported.
	want := map[uint32]int64{d.regions[b].id: -skew.Milliseconds(), d.regions[c].id: skew.Milliseconds()}
	const tolerance = 1500
	deadline := time.Now().Add(20 * time.Second)
	for {
		_, mgr := d.leader(a).running()
		ok := true
		var got []string
		for _, p := range mgr.Peers() {
			got = append(got, fmt.Sprintf("%s: %d ms", p.Peer.Name, p.ClockOffsetMs))
			if w, in := want[p.Peer.Region]; in && (p.ClockOffsetMs < w-tolerance || p.ClockOffsetMs > w+tolerance) {
				ok = false
			}
		}
		if ok && len(got) == 2 {
			t.Logf("clock offsets seen from A: %v", got)
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("clock offsets seen from A: %v, want B %d, C %d (±%d)", got, -skew.Milliseconds(), skew.Milliseconds(), tolerance)
		}
		time.Sleep(50 * time.Millisecond)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	info, err := d.client(a).Info(ctx, "replication").Result()
	if err != nil {
		t.Fatal(err)
	}
	fields := infoFields(info)
	if fields["concord_peer_regions"] != "2" {
		t.Errorf("INFO replication: concord_peer_regions = %q, want 2\n%s", fields["concord_peer_regions"], info)
	}
	for i, name := range []string{d.name(b), d.name(c)} {
		f := fields["peer_region"+strconv.Itoa(i)]
		if !strings.Contains(f, "name="+name) || !strings.Contains(f, "clock_offset_ms=") {
			t.Errorf("INFO replication: peer_region%d = %q, want name=%s and clock_offset_ms", i, f, name)
			continue
		}
		off, err := strconv.ParseInt(infoSub(f, "clock_offset_ms"), 10, 64)
		w := []int64{-skew.Milliseconds(), skew.Milliseconds()}[i]
		if err != nil || off < w-tolerance || off > w+tolerance {
			t.Errorf("INFO replication: peer_region%d clock_offset_ms = %q, want %d ±%d", i, infoSub(f, "clock_offset_ms"), w, tolerance)
		}
	}
}

// infoSub returns the value of name in an INFO field "a=1,b=2".
func infoSub(field, name string) string {
	for _, kv := range strings.Split(field, ",") {
		if k, v, ok := strings.Cut(kv, "="); ok && k == name {
			return v
		}
	}
	return ""
}

// ---------------------------------------------------------------------------
// 7. A hostile peer cannot crash a region or corrupt its data

func TestMultiRegionHostilePeer(t *testing.T) {
	d := newDeployment(t, mrOptions{regions: 2, nodes: 1})
	const a, b = 0, 1
	for i := 0; i < 20; i++ {
		d.mustDo(a, "SET", fmt.Sprintf("hp:%d", i), i)
		d.mustDo(b, "INCR", "hp:ctr")
	}
	d.waitConverged(30 * time.Second)
	// Garbage collection done and its fold ops delivered: from here on
	// only the hostile streams could change B's state.
	d.waitBacklogs(60 * time.Second)
	d.waitConverged(30 * time.Second)
	target := d.regions[b].nodes[0]
	rnB, _ := target.running()
	before := viewOf(target, rnB)

	conn, err := grpc.NewClient("passthrough:///"+target.replAddr,
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.MaxCallSendMsgSize(64<<20)))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	client := pb.NewReplicationClient(conn)
	self := d.regions[a].id // the hostile peer claims to be region A
	hello := func(mod func(h *pb.Hello)) *pb.Push {
		h := &pb.Hello{MinProtocol: replication.MinProtocol, MaxProtocol: replication.MaxProtocol,
			Region: self, Incarnation: 1, Name: "hostile", ToRegion: d.regions[b].id, WallMs: time.Now().UnixMilli()}
		if mod != nil {
			mod(h)
		}
		return &pb.Push{Msg: &pb.Push_Hello{Hello: h}}
	}
	batches := func(m *pb.Batches) *pb.Push { return &pb.Push{Msg: &pb.Push_Batches{Batches: m}} }

	// A batch whose header is valid and new to B (so it is proposed), but
	// whose body is cut short.
	var real []byte
	rnB.ReplView(func(r *crdt.Replica) {
		recs, err := r.Log().Read(nil, r.Log().Next()-1, 1, 1<<20)
		if err == nil && len(recs) == 1 {
			real = append([]byte(nil), recs[0].Data...)
		}
	})
	rb, err := crdt.DecodeBatch(real)
	if err != nil {
		t.Fatalf("decoding a logged batch: %v", err)
	}
	rb.Origin = crdt.Origin{Region: 7, Incarnation: 1} // an origin nobody has
	rb.FirstSeq, rb.Deps = 1, nil
	enc := rb.Encode(nil)
	truncated := enc[:len(enc)-2]
	if _, _, _, err := crdt.BatchHeader(truncated); err != nil {
		t.Fatalf("truncated batch's header: %v", err)
	}

	// Two compression bombs: one inflating past the receiver's limit on a
	// message (MaxMessageBytes), and a small one within it, which must not
	// cost the receiver much more memory than it inflates to.
	bomb := deflateBomb(t, 1<<30)      // 1 GiB of zeros
	smallBomb := deflateBomb(t, 8<<20) // 8 MiB of zeros
	t.Logf("compression bombs: %d bytes deflated for 1 GiB, %d bytes for 8 MiB", len(bomb), len(smallBomb))

	cases := []struct {
		name  string
		msgs  []*pb.Push
		codes []codes.Code
	}{
		{"no Hello", []*pb.Push{batches(&pb.Batches{FirstPos: 1, LastPos: 1, Batches: [][]byte{[]byte("x")}})}, []codes.Code{codes.InvalidArgument}},
		{"wrong to_region", []*pb.Push{hello(func(h *pb.Hello) { h.ToRegion = 9 })}, []codes.Code{codes.InvalidArgument}},
		{"own region id", []*pb.Push{hello(func(h *pb.Hello) { h.Region = d.regions[b].id })}, []codes.Code{codes.InvalidArgument, codes.PermissionDenied}},
		{"unconfigured region", []*pb.Push{hello(func(h *pb.Hello) { h.Region = 42 })}, []codes.Code{codes.PermissionDenied}},
		{"no common protocol", []*pb.Push{hello(func(h *pb.Hello) { h.MinProtocol, h.MaxProtocol = 50, 60 })}, []codes.Code{codes.FailedPrecondition}},
		{"second Hello", []*pb.Push{hello(nil), hello(nil)}, []codes.Code{codes.InvalidArgument}},
		{"garbage batches", []*pb.Push{hello(nil), batches(&pb.Batches{FirstPos: 1, LastPos: 1,
			Batches: [][]byte{[]byte("\xfegarbage that is no batch"), {0xff, 0xff, 0xff}}})}, []codes.Code{codes.InvalidArgument}},
		{"truncated batch", []*pb.Push{hello(nil), batches(&pb.Batches{FirstPos: 1, LastPos: 1, Batches: [][]byte{truncated}})},
			[]codes.Code{codes.InvalidArgument, codes.Aborted}},
		// A bad deflated payload ends the stream as Aborted, not as the
		// protocol violation (InvalidArgument) it is: accepted, reported.
		{"garbage deflated", []*pb.Push{hello(nil), batches(&pb.Batches{FirstPos: 1, LastPos: 1, Deflated: []byte("not deflate at all")})},
			[]codes.Code{codes.InvalidArgument, codes.Aborted}},
		{"positions going back", []*pb.Push{hello(nil), batches(&pb.Batches{FirstPos: 5, LastPos: 5}), batches(&pb.Batches{FirstPos: 3, LastPos: 4})},
			[]codes.Code{codes.InvalidArgument}},
		{"garbage final chunk", []*pb.Push{hello(nil), {Msg: &pb.Push_Chunk{Chunk: &pb.Chunk{TransferId: 99, Offset: 0, Data: []byte("not a snapshot"), Final: true, Total: 14}}}},
			[]codes.Code{codes.InvalidArgument, codes.Aborted}},
		// The receiver reads at most MaxMessageBytes (600 MiB) of it and
		// refuses the rest (which costs it about 1.3 GiB of allocation and
		// seconds of CPU for a 1 MiB message: reported, not asserted).
		{"compression bomb", []*pb.Push{hello(nil), batches(&pb.Batches{FirstPos: 1, LastPos: 1, Deflated: bomb})},
			[]codes.Code{codes.InvalidArgument, codes.Aborted}},
		// 8 MiB of zeros is 8 Mi empty batches: an empty batch is never
		// valid, so the first one should end the stream.
		{"small compression bomb", []*pb.Push{hello(nil), batches(&pb.Batches{FirstPos: 1, LastPos: 1, Deflated: smallBomb})},
			[]codes.Code{codes.InvalidArgument, codes.Aborted}},
	}
	// What the process may allocate while a case runs.
	maxAllocMiB := map[string]uint64{"small compression bomb": 256}
	for _, tc := range cases {
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		alloc0 := ms.TotalAlloc
		start := time.Now()
		err := hostileStream(client, tc.msgs)
		st, _ := status.FromError(err)
		runtime.ReadMemStats(&ms)
		alloc := (ms.TotalAlloc - alloc0) >> 20
		t.Logf("%s: %v in %v (%d MiB allocated meanwhile)", tc.name, err, time.Since(start).Round(time.Millisecond), alloc)
		if err == nil || st == nil || !containsCode(tc.codes, st.Code()) {
			t.Errorf("%s: stream ended with %v, want a status with code %v", tc.name, err, tc.codes)
		}
		if max := maxAllocMiB[tc.name]; max > 0 && alloc > max {
			t.Errorf("%s: the process allocated %d MiB meanwhile, want at most %d MiB for a %d KiB message",
				tc.name, alloc, max, len(tc.msgs[len(tc.msgs)-1].GetBatches().GetDeflated())>>10)
		}
		if !target.up() {
			t.Fatalf("%s: region B is down", tc.name)
		}
	}

	// B's data is intact, and it keeps serving and replicating.
	rnB, _ = target.running()
	if after := viewOf(target, rnB); after.digest != before.digest || !after.vv.Equal(before.vv) {
		t.Fatalf("hostile streams changed B's state: %x %v, was %x %v", after.digest[:6], after.vv, before.digest[:6], before.vv)
	}
	var st crdt.ReplicaStats
	rnB.ReplView(func(r *crdt.Replica) { st = r.Stats })
	t.Logf("B's replica stats after the hostile peer: %+v", st)
	d.mustDo(b, "SET", "hp:after", "b")
	d.mustDo(a, "INCR", "hp:ctr")
	d.waitValue(a, "hp:after", "b", 30*time.Second)
	d.waitValue(b, "hp:ctr", "21", 30*time.Second)
	d.waitConverged(30 * time.Second)
	for i := 0; i < 20; i++ {
		d.waitValue(b, fmt.Sprintf("hp:%d", i), strconv.Itoa(i), time.Second)
	}
}

func containsCode(cs []codes.Code, c codes.Code) bool {
	for _, x := range cs {
		if x == c {
			return true
		}
	}
	return false
}

// hostileStream opens a replication stream, sends msgs and returns how the
// receiver ended it (nil if it did not within 60 s: inflating a bomb takes
// seconds, many under the race detector).
func hostileStream(client pb.ReplicationClient, msgs []*pb.Push) error {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	stream, err := client.Stream(ctx)
	if err != nil {
		return err
	}
	for _, m := range msgs {
		if err := stream.Send(m); err != nil {
			break // the receiver ended the stream: Recv tells why
		}
	}
	for {
		if _, err := stream.Recv(); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
	}
}

// deflateBomb returns a deflate stream of size zero bytes (a multiple of
// 1 MiB) in about size/1000 bytes: one compressed block of a MiB of zeros,
// repeated (each decodes the same, since the window holds only zeros).
func deflateBomb(t *testing.T, size int) []byte {
	t.Helper()
	var buf bytes.Buffer
	w, _ := flate.NewWriter(&buf, flate.BestCompression)
	zeros := make([]byte, 1<<20)
	w.Write(zeros)
	w.Flush()
	n := buf.Len()
	w.Write(zeros)
	w.Flush()
	out := append([]byte(nil), buf.Bytes()...)
	block := append([]byte(nil), buf.Bytes()[n:]...)
	for i := 2; i < size>>20; i++ {
		out = append(out, block...)
	}
	out = append(out, 0x03, 0x00) // an empty final block
	// Check the bomb on a prefix: it inflates to zeros, as intended.
	r := flate.NewReader(bytes.NewReader(out))
	got, err := io.ReadAll(io.LimitReader(r, 8<<20))
	if err != nil || len(got) != 8<<20 || bytes.Count(got, []byte{0}) != len(got) {
		t.Fatalf("bomb does not inflate to zeros: %d bytes, %v", len(got), err)
	}
	return out
}

// ---------------------------------------------------------------------------
// Size limits: a value bigger than the whole replication log still crosses
// (the log keeps its newest record whatever its size, or the peer gets it by
// state transfer), byte for byte, in both directions.

func TestMultiRegionValueLargerThanLog(t *testing.T) {
	d := newDeployment(t, mrOptions{regions: 2, nodes: 1, replLog: crdt.LogLimits{MaxBytes: 1 << 20}})
	big := make([]byte, 24<<20)
	for i := range big {
		big[i] = byte(i*7 + i>>13) // not compressible to nothing, not all one byte
	}
	d.mustDo(0, "SET", "big", string(big))
	d.mustDo(1, "SET", "after-big", "1")
	d.mustDo(1, "APPEND", "big2", string(big[:3<<20]))
	d.waitValue(0, "after-big", "1", 60*time.Second)
	waitUntil(t, 60*time.Second, "both big values in both regions", func() bool {
		for r := 0; r < 2; r++ {
			v, err := mrDo(d.client(r), "GET", "big")
			if s, ok := v.(string); err != nil || !ok || s != string(big) {
				return false
			}
			v, err = mrDo(d.client(r), "GET", "big2")
			if s, ok := v.(string); err != nil || !ok || s != string(big[:3<<20]) {
				return false
			}
		}
		return true
	})
	d.waitConverged(60 * time.Second)
}

// ---------------------------------------------------------------------------
// Membership: a region is added while another is down, and a region is
// removed; writes the others hold from it stay and keep flowing.

func TestMultiRegionAddAndRemoveRegions(t *testing.T) {
	d := newDeployment(t, mrOptions{regions: 4, nodes: 1, late: 1})
	const a, b, c, nd = 0, 1, 2, 3
	for r := a; r <= c; r++ {
		d.mustDo(r, "INCRBY", "m:ctr", 1)
		d.mustDo(r, "SADD", "m:set", d.name(r))
	}
	d.waitConverged(30 * time.Second)

	// C goes down; D is added meanwhile (A and B restarted with it in
	// their peers, D configured with all three).
	d.stopRegion(c)
	d.mustDo(a, "INCRBY", "m:ctr", 10)
	d.regions[nd].known = map[int]bool{a: true, b: true, c: true}
	d.setPeers(a, b, c, nd)
	d.setPeers(b, a, c, nd)
	d.startRegion(nd)
	d.mustDo(nd, "INCRBY", "m:ctr", 100)
	d.mustDo(nd, "SADD", "m:set", d.name(nd))
	d.waitValue(nd, "m:ctr", "113", 30*time.Second)
	d.waitValue(a, "m:ctr", "113", 30*time.Second)

	// C returns still configured without D: D's writes reach it relayed by
	// A and B, and C's reach D the same way.
	d.startRegion(c)
	d.mustDo(c, "INCRBY", "m:ctr", 1000)
	d.waitValue(c, "m:ctr", "1113", 30*time.Second)
	d.waitValue(nd, "m:ctr", "1113", 30*time.Second)
	d.waitConverged(60 * time.Second)
	d.setPeers(c, a, b, nd)
	d.waitConverged(30 * time.Second)

	// B is removed: every other region drops it, then it stops. What it
	// wrote and the others hold stays, and still flows between them.
	d.mustDo(b, "INCRBY", "m:ctr", 10000)
	d.waitValue(a, "m:ctr", "11113", 30*time.Second)
	d.setPeers(a, c, nd)
	d.setPeers(c, a, nd)
	d.setPeers(nd, a, c)
	d.stopRegion(b)
	d.mustDo(nd, "INCRBY", "m:ctr", 100000)
	for _, r := range []int{a, c, nd} {
		d.waitValue(r, "m:ctr", "111113", 30*time.Second)
	}
	d.waitConverged(60 * time.Second)
	for _, r := range []int{a, c, nd} {
		v, err := mrDo(d.client(r), "SCARD", "m:set")
		if err != nil || v != int64(4) {
			t.Fatalf("%s: SCARD m:set = %v %v, want 4 (every region's member, the removed one's included)", d.name(r), v, err)
		}
	}
}
