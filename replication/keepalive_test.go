package replication

import (
	"context"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"concord/crdt"
	pb "concord/proto"
	"concord/replication/linkfault"
)

// memRegion is a Region over one crdt.Replica that applies proposals at
// once: enough to run the gRPC Service and Shipper without Raft.
type memRegion struct {
	mu       sync.RWMutex
	rep      *crdt.Replica
	changed  chan struct{}
	applied  uint64
	neverChg chan struct{}
}

func newMemRegion(o crdt.Origin) *memRegion {
	return &memRegion{rep: newTestReplica(o, crdt.LogLimits{}), changed: make(chan struct{}), neverChg: make(chan struct{})}
}

func (m *memRegion) Origin() crdt.Origin { return m.rep.Keyspace().Origin() }

func (m *memRegion) ReplView(fn func(r *crdt.Replica)) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	fn(m.rep)
}

func (m *memRegion) advance() {
	m.applied++
	close(m.changed)
	m.changed = make(chan struct{})
}

func (m *memRegion) ProposeRemote(batches [][]byte) <-chan crdt.Result {
	m.mu.Lock()
	defer m.mu.Unlock()
	var rs []crdt.Reply
	for _, b := range batches {
		out, _ := m.rep.Merge(b)
		rs = append(rs, crdt.Int(int64(out)))
	}
	m.advance()
	res := make(chan crdt.Result, 1)
	res <- crdt.Result{Replies: rs}
	return res
}

func (m *memRegion) ProposeChunk(c crdt.Chunk) <-chan crdt.Result {
	m.mu.Lock()
	defer m.mu.Unlock()
	res := make(chan crdt.Result, 1)
	n, joined, err := m.rep.StageChunk(c)
	if err != nil {
		res <- crdt.Result{Replies: []crdt.Reply{crdt.Err("ERR " + err.Error())}}
		return res
	}
	j := int64(0)
	if joined {
		j = 1
	}
	m.advance()
	res <- crdt.Result{Replies: []crdt.Reply{crdt.Int(int64(n)), crdt.Int(j)}}
	return res
}

func (m *memRegion) write(args ...string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.rep.Apply(crdt.Stamp{Time: crdt.HLCFromMillis(time.Now().UnixMilli())}, []crdt.Command{{Args: testArgs(args...)}})
	m.advance()
}

func (m *memRegion) ReadFence(ctx context.Context) error { return nil }

func (m *memRegion) Progress() (uint64, <-chan struct{}) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return m.applied, m.changed
}

func (m *memRegion) LeaderWatch() (bool, <-chan struct{}) { return true, m.neverChg }

// TestKeepaliveNoticesBlackhole: with a blackholed link (connections stay
// open, nothing passes) the shipper leaves the streaming state within a
// few keepalives, not after gRPC's 20 s or more, and the receiving
// service drops its silent stream. Keepalive is small for the test; the
// bounds asserted are generous.
func TestKeepaliveNoticesBlackhole(t *testing.T) {
	a, b := newMemRegion(originA), newMemRegion(originB)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	proxy, err := linkfault.New("127.0.0.1:0", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer proxy.Close()
	const keepalive = 300 * time.Millisecond
	mb, err := Start(Config{Region: b, Name: "b", Listener: ln, Keepalive: keepalive,
		Peers: []Peer{{Region: originA.Region, Name: "a", Addrs: []string{"127.0.0.1:1"}}}})
	if err != nil {
		t.Fatal(err)
	}
	defer mb.Close()
	ma, err := Start(Config{Region: a, Name: "a", Keepalive: keepalive,
		Sender: SenderConfig{PingInterval: 50},
		Peers:  []Peer{{Region: originB.Region, Name: "b", Addrs: []string{proxy.Addr()}}}})
	if err != nil {
		t.Fatal(err)
	}
	defer ma.Close()

	state := func() SenderState { return ma.Peers()[0].State }
	waitFor := func(what string, within time.Duration, cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(within)
		for !cond() {
			if time.Now().After(deadline) {
				t.Fatalf("%s: not within %v (state %s)", what, within, state())
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	a.write("SET", "k", "1")
	waitFor("streaming", 10*time.Second, func() bool { return state() == Streaming })
	waitFor("first write replicated", 10*time.Second, func() bool {
		var n int
		b.ReplView(func(r *crdt.Replica) { n = r.Keyspace().DBSize(0) })
		return n == 1
	})
	open := func() int {
		mb.service.mu.Lock()
		defer mb.service.mu.Unlock()
		return len(mb.service.streams)
	}
	if open() != 1 {
		t.Fatalf("%d streams open at the receiver", open())
	}

	proxy.Blackhole(true)
	// gRPC alone takes 20 s or more; the keepalive is 0.3 s.
	waitFor("shipper notices the dead link", 5*time.Second, func() bool { return state() != Streaming })
	if st := ma.Peers()[0]; st.Silent == 0 {
		t.Fatalf("left streaming without a keepalive reset: %+v", st)
	}
	waitFor("receiver drops the stream", 5*time.Second, func() bool { return open() == 0 })

	proxy.Heal()
	a.write("SET", "k", "2")
	waitFor("streaming again after heal", 20*time.Second, func() bool { return state() == Streaming })
	waitFor("write after heal replicated", 20*time.Second, func() bool {
		var v string
		b.ReplView(func(r *crdt.Replica) { v = string(r.Keyspace().Read(0, 0, 0, testArgs("GET", "k")).Str) })
		return v == "2"
	})
}

// TestServiceDropsSilentStream: a sender that says Hello and then nothing
// (no batch, no ping) has its stream dropped by the service after the
// keepalive, with an error that says why.
func TestServiceDropsSilentStream(t *testing.T) {
	b := newMemRegion(originB)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	mb, err := Start(Config{Region: b, Name: "b", Listener: ln, Keepalive: 200 * time.Millisecond,
		Peers: []Peer{{Region: originA.Region, Name: "a", Addrs: []string{"127.0.0.1:1"}}}})
	if err != nil {
		t.Fatal(err)
	}
	defer mb.Close()
	conn, err := grpc.NewClient("passthrough:///"+ln.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	st, err := pb.NewReplicationClient(conn).Stream(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Send(&pb.Push{Msg: &pb.Push_Hello{Hello: hello(nil)}}); err != nil {
		t.Fatal(err)
	}
	if m, err := st.Recv(); err != nil || m.GetWelcome() == nil {
		t.Fatalf("handshake: %v %v", m, err)
	}
	_, err = st.Recv()
	if err == nil || !strings.Contains(err.Error(), "silent") || mb.service.silent.Load() != 1 {
		t.Fatalf("silent stream ended with %v (silent drops %d)", err, mb.service.silent.Load())
	}
}
