package server

import (
	"context"
	"fmt"
	"net"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"concord/crdt"
)

// regionStore is a test double for the server's side of a region: a real
// LocalStore plus ReadFencer and Replica methods whose answers the test
// sets. The region's own implementation is tested in package region.
type regionStore struct {
	*LocalStore

	leader atomic.Bool
	fences atomic.Int64 // ReadFence calls
	sweeps atomic.Int64 // concord-expire proposals

	mu       sync.Mutex
	fenceErr error
	fenceTTL time.Duration // time left before the deadline of the latest fence
	role     crdt.Reply
	fields   map[string][][2]string
	admin    [][]string // args of each Admin call
}

var (
	_ ReadFencer = (*regionStore)(nil)
	_ Replica    = (*regionStore)(nil)
	_ Pipeliner  = (*regionStore)(nil)
)

func newRegionStore(t testing.TB) *regionStore {
	return &regionStore{LocalStore: newTestLocalStore(t), fields: map[string][][2]string{}}
}

// redisErr is an error as the region returns them.
type redisErr string

func (e redisErr) Error() string      { return "region: " + string(e) }
func (e redisErr) RedisError() string { return string(e) }

func (s *regionStore) setFence(err error) {
	s.mu.Lock()
	s.fenceErr = err
	s.mu.Unlock()
}

func (s *regionStore) ReadFence(ctx context.Context) error {
	s.fences.Add(1)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.fenceTTL = 0
	if d, ok := ctx.Deadline(); ok {
		s.fenceTTL = time.Until(d)
	}
	return s.fenceErr
}

func (s *regionStore) Propose(ctx context.Context, cmds []crdt.Command) ([]crdt.Reply, error) {
	for _, c := range cmds {
		if string(c.Args[0]) == expireCmd {
			s.sweeps.Add(1)
		}
	}
	return s.LocalStore.Propose(ctx, cmds)
}

func (s *regionStore) Leader() bool { return s.leader.Load() }

func (s *regionStore) Role() crdt.Reply {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.role
}

func (s *regionStore) InfoFields(section string) [][2]string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.fields[section]
}

func (s *regionStore) Admin(ctx context.Context, args [][]byte) crdt.Reply {
	var a []string
	for _, b := range args {
		a = append(a, string(b))
	}
	s.mu.Lock()
	s.admin = append(s.admin, a)
	s.mu.Unlock()
	return crdt.Array(crdt.BulkString("admin"), crdt.Int(int64(len(args))))
}

// TestReadFence: every client data read on a region's node waits for the
// fence and fails with the fence's error; writes and INFO do not; READONLY
// skips the fence until READWRITE or RESET.
func TestReadFence(t *testing.T) {
	store := newRegionStore(t)
	_, addr := serveStore(t, store, Options{NoActiveExpiry: true})
	c := dial(t, addr)

	c.expect("+OK\r\n", "SET", "a", "1")
	c.expect("$1\r\n1\r\n", "GET", "a")
	if n := store.fences.Load(); n != 1 {
		t.Errorf("fences after one read = %d, want 1 (writes are not fenced)", n)
	}
	store.mu.Lock()
	ttl := store.fenceTTL
	store.mu.Unlock()
	if ttl <= 0 || ttl > readFenceTimeout {
		t.Errorf("fence context deadline %v away, want within (0, %v]", ttl, readFenceTimeout)
	}

	const noLeader = "-TRYAGAIN no leader\r\n"
	store.setFence(redisErr("TRYAGAIN no leader"))
	c.expect(noLeader, "GET", "a")
	c.expect(noLeader, "MGET", "a", "b")
	for _, cmd := range [][]string{{"DBSIZE"}, {"KEYS", "*"}, {"SCAN", "0"}, {"RANDOMKEY"}, {"EXISTS", "a"}, {"TTL", "a"}} {
		c.expect(noLeader, cmd...)
	}
	c.expect("+OK\r\n", "SET", "b", "2") // the write path is the region's business
	if info := c.do("INFO", "keyspace"); !strings.Contains(info, "db0:keys=2,") {
		t.Errorf("INFO keyspace (not fenced) = %q", info)
	}

	// A pipeline: each read of each run gets the error, writes still apply.
	c.send(encode("GET", "a") + encode("MGET", "a", "b") + encode("SET", "c", "3") + encode("GET", "c") + encode("PING"))
	for i, want := range []string{noLeader, noLeader, "+OK\r\n", noLeader, "+PONG\r\n"} {
		if got := c.read(); got != want {
			t.Errorf("pipeline reply %d = %q, want %q", i, got, want)
		}
	}

	// READONLY reads the local view without asking.
	c.expect("+OK\r\n", "READONLY")
	before := store.fences.Load()
	c.expect("*2\r\n$1\r\n1\r\n$1\r\n2\r\n", "MGET", "a", "b")
	c.send(encode("GET", "c") + encode("GET", "a"))
	for i, want := range []string{"$1\r\n3\r\n", "$1\r\n1\r\n"} {
		if got := c.read(); got != want {
			t.Errorf("READONLY pipeline reply %d = %q, want %q", i, got, want)
		}
	}
	if n := store.fences.Load(); n != before {
		t.Errorf("READONLY connection called ReadFence %d times", n-before)
	}
	if info := c.do("CLIENT", "INFO"); !strings.Contains(info, " flags=r ") {
		t.Errorf("CLIENT INFO after READONLY: %q", info)
	}
	other := dial(t, addr)
	other.expect(noLeader, "GET", "a") // the flag is per connection
	if list := other.do("CLIENT", "LIST"); !strings.Contains(list, " flags=r ") || !strings.Contains(list, " flags=N ") {
		t.Errorf("CLIENT LIST: %q", list)
	}

	c.expect("+OK\r\n", "READWRITE")
	c.expect(noLeader, "GET", "a")
	if info := c.do("CLIENT", "INFO"); !strings.Contains(info, " flags=N ") {
		t.Errorf("CLIENT INFO after READWRITE: %q", info)
	}
	c.expect("+OK\r\n", "READONLY")
	c.expect("+RESET\r\n", "RESET")
	c.expect(noLeader, "GET", "a")
	c.expect("-ERR wrong number of arguments for 'readonly' command\r\n", "READONLY", "x")

	// Once the fence passes again, reads are served.
	store.setFence(nil)
	c.expect("$1\r\n1\r\n", "GET", "a")
}

// TestReadFenceErrors: how fence failures that are not RedisErrors reach
// the client. A read that timed out changed nothing: it may be retried.
func TestReadFenceErrors(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want string
	}{
		{redisErr("TRYAGAIN no leader"), "TRYAGAIN no leader"},
		{fmt.Errorf("fence: %w", context.DeadlineExceeded), "TRYAGAIN timed out confirming this node's view is current; retry, or send READONLY to read possibly stale data"},
		{context.Canceled, "ERR server is shutting down"},
		{ErrClosed, "ERR server is shutting down"},
		{fmt.Errorf("boom"), "ERR boom"},
	} {
		if got := readErrReply(tc.err); got.Kind != crdt.KindError || string(got.Str) != tc.want {
			t.Errorf("readErrReply(%v) = %q, want %q", tc.err, got.Str, tc.want)
		}
	}
}

// TestReadFenceLocal: a store without a fence serves reads directly, and
// READONLY/READWRITE are accepted on it too.
func TestReadFenceLocal(t *testing.T) {
	_, addr := startServer(t, Options{NoActiveExpiry: true})
	c := dial(t, addr)
	c.expect("+OK\r\n", "SET", "a", "1")
	c.expect("+OK\r\n", "READONLY")
	c.expect("$1\r\n1\r\n", "GET", "a")
	c.expect("+OK\r\n", "READWRITE")
	c.expect("$1\r\n1\r\n", "GET", "a")
}

// Recorded from redis-server 7.0.15 (and compared live by TestRoleRedis).
const (
	standaloneRoleReply = "*3\r\n$6\r\nmaster\r\n:0\r\n*0\r\n"
	commandInfoRegion   = "*3\r\n" +
		"*10\r\n$8\r\nreadonly\r\n:1\r\n*3\r\n+loading\r\n+stale\r\n+fast\r\n:0\r\n:0\r\n:0\r\n*2\r\n+@fast\r\n+@connection\r\n*0\r\n*0\r\n*0\r\n" +
		"*10\r\n$9\r\nreadwrite\r\n:1\r\n*3\r\n+loading\r\n+stale\r\n+fast\r\n:0\r\n:0\r\n:0\r\n*2\r\n+@fast\r\n+@connection\r\n*0\r\n*0\r\n*0\r\n" +
		"*10\r\n$4\r\nrole\r\n:1\r\n*4\r\n+noscript\r\n+loading\r\n+stale\r\n+fast\r\n:0\r\n:0\r\n:0\r\n*3\r\n+@admin\r\n+@fast\r\n+@dangerous\r\n*0\r\n*0\r\n*0\r\n"
)

func TestRole(t *testing.T) {
	t.Run("standalone", func(t *testing.T) {
		_, addr := startServer(t, Options{NoActiveExpiry: true})
		c := dial(t, addr)
		c.expect(standaloneRoleReply, "ROLE")
		c.expect("-ERR wrong number of arguments for 'role' command\r\n", "ROLE", "x")
		c.expect(commandInfoRegion, "COMMAND", "INFO", "readonly", "readwrite", "role")
		if r := c.do("HELLO", "3"); !strings.Contains(r, "$4\r\nrole\r\n$6\r\nmaster\r\n") {
			t.Errorf("HELLO: %q", r)
		}
		c.expect(standaloneRoleReply, "ROLE") // RESP3: the same bytes
	})
	t.Run("region", func(t *testing.T) {
		store := newRegionStore(t)
		store.role = crdt.Array(crdt.BulkString("slave"), crdt.BulkString("127.0.0.1"), crdt.Int(7000),
			crdt.BulkString("connected"), crdt.Int(42))
		_, addr := serveStore(t, store, Options{NoActiveExpiry: true})
		c := dial(t, addr)
		c.expect("*5\r\n$5\r\nslave\r\n$9\r\n127.0.0.1\r\n:7000\r\n$9\r\nconnected\r\n:42\r\n", "ROLE")
		// HELLO agrees: a follower is a replica, the leader a master.
		if r := c.do("HELLO"); !strings.Contains(r, "$4\r\nrole\r\n$7\r\nreplica\r\n") {
			t.Errorf("HELLO on a follower: %q", r)
		}
		store.leader.Store(true)
		if r := c.do("HELLO"); !strings.Contains(r, "$4\r\nrole\r\n$6\r\nmaster\r\n") {
			t.Errorf("HELLO on the leader: %q", r)
		}
	})
}

// TestRoleRedis compares ROLE and the new commands' COMMAND INFO with a
// live redis-server, when one is installed.
func TestRoleRedis(t *testing.T) {
	ref := startRedis(t)
	_, addr := startServer(t, Options{NoActiveExpiry: true})
	r, c := dial(t, ref), dial(t, addr)
	for _, cmd := range [][]string{
		{"ROLE"},
		{"ROLE", "x"},
		{"COMMAND", "INFO", "readonly", "readwrite", "role"},
		{"HELLO", "3"}, // from here on RESP3
		{"ROLE"},
		{"COMMAND", "INFO", "readonly", "readwrite", "role"},
	} {
		want, got := r.do(cmd...), c.do(cmd...)
		if cmd[0] == "HELLO" {
			continue // ids differ
		}
		if got != want {
			t.Errorf("%q:\n got %q\nwant %q", cmd, got, want)
		}
	}
}

// startRedis runs a throw-away redis-server on a free loopback port, or
// skips the test when none is installed.
func startRedis(t *testing.T) string {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		t.Skip("redis-server not installed (Debian: apt-get install redis-server)")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	cmd := exec.Command(bin, "--port", strconv.Itoa(port), "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--dir", t.TempDir())
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	deadline := time.Now().Add(10 * time.Second)
	for {
		nc, err := net.Dial("tcp", addr)
		if err == nil {
			nc.Close()
			return addr
		}
		if time.Now().After(deadline) {
			t.Fatalf("redis-server did not listen on %s: %v", addr, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestRegionCommand(t *testing.T) {
	t.Run("standalone", func(t *testing.T) {
		_, addr := startServer(t, Options{NoActiveExpiry: true})
		c := dial(t, addr)
		c.expect("-ERR This instance has no region (single node without Raft)\r\n", "REGION", "NODES")
		c.expect("-ERR wrong number of arguments for 'region' command\r\n", "REGION")
		c.expect("*1\r\n*10\r\n$6\r\nregion\r\n:-2\r\n*4\r\n+admin\r\n+noscript\r\n+loading\r\n+stale\r\n:0\r\n:0\r\n:0\r\n"+
			"*3\r\n+@admin\r\n+@slow\r\n+@dangerous\r\n*0\r\n*0\r\n*0\r\n", "COMMAND", "INFO", "region")
		c.expect("*2\r\n$6\r\nregion\r\n*2\r\n$5\r\ngroup\r\n$7\r\ncluster\r\n", "COMMAND", "DOCS", "region")
		if list := c.do("COMMAND", "LIST", "FILTERBY", "ACLCAT", "admin"); !strings.Contains(list, "$6\r\nregion\r\n") || !strings.Contains(list, "$4\r\nrole\r\n") {
			t.Errorf("COMMAND LIST FILTERBY ACLCAT admin: %q", list)
		}
	})
	t.Run("region", func(t *testing.T) {
		store := newRegionStore(t)
		_, addr := serveStore(t, store, Options{NoActiveExpiry: true})
		c := dial(t, addr)
		c.expect("*2\r\n$5\r\nadmin\r\n:1\r\n", "REGION", "NODES")
		c.expect("*2\r\n$5\r\nadmin\r\n:3\r\n", "region", "ADD", "n2", "127.0.0.1:7002")
		store.mu.Lock()
		got := store.admin
		store.mu.Unlock()
		want := [][]string{{"NODES"}, {"ADD", "n2", "127.0.0.1:7002"}}
		if !slices.EqualFunc(got, want, slices.Equal) {
			t.Errorf("Admin got %q, want %q", got, want)
		}
	})
}

// TestInfoRegion: a region's node shows the store's replication fields
// (role first) and adds its persistence fields.
func TestInfoRegion(t *testing.T) {
	store := newRegionStore(t)
	store.fields["replication"] = [][2]string{
		{"region_state", "Follower"}, {"role", "slave"}, {"region_ready", "1"}, {"region_leader_id", "n1"},
	}
	store.fields["persistence"] = [][2]string{{"region_durability", "fsync"}}
	store.setFence(redisErr("TRYAGAIN no leader")) // INFO is not a data read
	_, addr := serveStore(t, store, Options{NoActiveExpiry: true, Origin: crdt.Origin{Region: 3, Incarnation: 2}})
	c := dial(t, addr)
	info := c.do("INFO")
	for _, want := range []string{
		"# Replication\r\nrole:slave\r\nregion_state:Follower\r\nregion_ready:1\r\nregion_leader_id:n1\r\nconcord_region:3\r\nconcord_incarnation:2\r\n\r\n",
		"\r\naof_rewrite_in_progress:0\r\nregion_durability:fsync\r\n\r\n",
	} {
		if !strings.Contains(info, want) {
			t.Errorf("INFO lacks %q:\n%s", want, info)
		}
	}
	for _, bad := range []string{"connected_slaves:", "role:master", "concord_persistence:none"} {
		if strings.Contains(info, bad) {
			t.Errorf("INFO of a region's node has %q:\n%s", bad, info)
		}
	}
	if f := store.fields["replication"]; f[0][0] != "region_state" {
		t.Errorf("INFO reordered the store's slice: %q", f)
	}

	// A single node keeps the standalone fields.
	_, addr = startServer(t, Options{NoActiveExpiry: true})
	info = dial(t, addr).do("INFO", "replication", "persistence")
	for _, want := range []string{"# Replication\r\nrole:master\r\nconnected_slaves:0\r\nconcord_region:", "\r\nconcord_persistence:none\r\n"} {
		if !strings.Contains(info, want) {
			t.Errorf("single-node INFO lacks %q:\n%s", want, info)
		}
	}
}

// TestExpiryFollower: a follower's sweep proposes nothing; the leader's
// removes the expired keys. The sweep is driven directly, one cycle at a
// time, so nothing depends on the ticker.
func TestExpiryFollower(t *testing.T) {
	store := newRegionStore(t)
	srv, addr := serveStore(t, store, Options{NoActiveExpiry: true})
	c := dial(t, addr)
	for i := 0; i < 30; i++ {
		c.expect("+OK\r\n", "SET", fmt.Sprintf("k%d", i), "v", "PX", "1")
	}
	c.expect("+OK\r\n", "SET", "keep", "v")
	deadline := time.Now().Add(10 * time.Second)
	for c.do("EXISTS", "k29") != ":0\r\n" {
		if time.Now().After(deadline) {
			t.Fatal("k29 never expired")
		}
		time.Sleep(5 * time.Millisecond)
	}
	rng := crdt.NewRand(1)

	srv.expireCycle(rng)
	if n := store.sweeps.Load(); n != 0 {
		t.Errorf("a follower proposed %d sweeps", n)
	}
	c.expect(":31\r\n", "DBSIZE") // expired keys count until removed

	store.leader.Store(true)
	for c.do("DBSIZE") != ":1\r\n" {
		if time.Now().After(deadline) {
			t.Fatalf("DBSIZE on the leader after sweeps: %q", c.do("DBSIZE"))
		}
		srv.expireCycle(rng)
	}
	if store.sweeps.Load() == 0 {
		t.Error("the leader proposed no sweep")
	}
}
