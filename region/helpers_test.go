package region

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"concord/crdt"
)

// netFault cuts links between in-process nodes: a blocked pair can neither
// dial the other nor keep connections it had.
type netFault struct {
	mu      sync.Mutex
	blocked map[[2]string]bool
	conns   map[[2]string][]net.Conn
}

func newNetFault() *netFault {
	return &netFault{blocked: map[[2]string]bool{}, conns: map[[2]string][]net.Conn{}}
}

func (f *netFault) dialer(from string) func(string, time.Duration) (net.Conn, error) {
	return func(addr string, timeout time.Duration) (net.Conn, error) {
		key := [2]string{from, addr}
		f.mu.Lock()
		if f.blocked[key] {
			f.mu.Unlock()
			return nil, fmt.Errorf("netfault: %s -> %s cut", from, addr)
		}
		f.mu.Unlock()
		c, err := net.DialTimeout("tcp", addr, timeout)
		if err != nil {
			return nil, err
		}
		f.mu.Lock()
		f.conns[key] = append(f.conns[key], c)
		f.mu.Unlock()
		return c, nil
	}
}

// cut blocks both directions between nodes at raft addresses a and b.
func (f *netFault) cut(a, b string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, k := range [][2]string{{a, b}, {b, a}} {
		f.blocked[k] = true
		for _, c := range f.conns[k] {
			c.Close()
		}
		delete(f.conns, k)
	}
}

func (f *netFault) heal() {
	f.mu.Lock()
	f.blocked = map[[2]string]bool{}
	f.mu.Unlock()
}

// testRegion is a region of in-process nodes on loopback.
type testRegion struct {
	t      testing.TB
	net    *netFault
	peers  []Peer
	dirs   []string
	nodes  []*Node
	cfgMod func(*Config)
}

func newTestRegion(t testing.TB, size int) *testRegion {
	t.Helper()
	r := &testRegion{t: t, net: newNetFault()}
	for i := 0; i < size; i++ {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := ln.Addr().String()
		ln.Close() // reopened by start; the port stays ours in practice
		r.peers = append(r.peers, Peer{ID: fmt.Sprintf("n%d", i+1), Addr: addr})
		r.dirs = append(r.dirs, t.TempDir())
	}
	r.nodes = make([]*Node, size)
	for i := range r.peers {
		r.start(i)
	}
	t.Cleanup(func() {
		for _, n := range r.nodes {
			if n != nil {
				n.Close()
			}
		}
	})
	return r
}

func (r *testRegion) config(i int) Config {
	p := r.peers[i]
	cfg := Config{
		NodeID:   p.ID,
		RaftAddr: p.Addr,
		RESPAddr: "127.0.0.1:" + fmt.Sprint(7000+i),
		Dial:     r.net.dialer(p.Addr),
		DataDir:  r.dirs[i],
		Peers:    r.peers,
		Origin:   crdt.Origin{Region: 1, Incarnation: 1},
		Solo:     true,
	}
	if os.Getenv("REGION_TEST_LOG") != "" {
		cfg.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	if r.cfgMod != nil {
		r.cfgMod(&cfg)
	}
	return cfg
}

func (r *testRegion) start(i int) *Node {
	r.t.Helper()
	var n *Node
	var err error
	for try := 0; try < 50; try++ { // the port may linger briefly after a close
		if n, err = Open(r.config(i)); err == nil || !strings.Contains(err.Error(), "address already in use") {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		r.t.Fatalf("open %s: %v", r.peers[i].ID, err)
	}
	r.nodes[i] = n
	return n
}

// kill stops node i abruptly (no leadership transfer).
func (r *testRegion) kill(i int) {
	r.nodes[i].Close()
	r.nodes[i] = nil
}

// leader waits for a leader among the running nodes and returns its index.
func (r *testRegion) leader() int {
	r.t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		for i, n := range r.nodes {
			if n != nil && n.Leader() && n.Ready() {
				return i
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	r.t.Fatal("no leader elected")
	return -1
}

func cmd(args ...string) crdt.Command {
	c := crdt.Command{}
	for _, a := range args {
		c.Args = append(c.Args, []byte(a))
	}
	return c
}

// do proposes one command on node n and returns its reply or error.
func do(n *Node, args ...string) (crdt.Reply, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	rs, err := n.Propose(ctx, []crdt.Command{cmd(args...)})
	if err != nil {
		return crdt.Reply{}, err
	}
	return rs[0], nil
}

// get reads a key linearizably through n.
func get(n *Node, key string) (string, bool, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := n.ReadFence(ctx); err != nil {
		return "", false, err
	}
	var r crdt.Reply
	n.Read(func(ks *crdt.Keyspace) {
		r = ks.Read(0, time.Now().UnixMilli(), 1, [][]byte{[]byte("GET"), []byte(key)})
	})
	if r.Kind == crdt.KindNil {
		return "", false, nil
	}
	return string(r.Str), true, nil
}

func digest(n *Node) [32]byte {
	var d [32]byte
	n.Read(func(ks *crdt.Keyspace) { d = ks.Digest() })
	return d
}
