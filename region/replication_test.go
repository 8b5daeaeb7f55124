package region

import (
	"context"
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	"github.com/prometheus/client_golang/prometheus"

	"concord/crdt"
)

// Cross-region replication on a region's side: remote batches and state
// transfer chunks proposed through the write path, and the replication log
// every node builds from them.

// newReplRegion is a non-solo region (its local writes are logged) whose
// nodes each record metrics in a registry of their own.
func newReplRegion(t *testing.T, size int, mod func(*Config)) (*testRegion, func(id string) *prometheus.Registry) {
	var mu sync.Mutex
	regs := map[string]*prometheus.Registry{}
	r := newTestRegionWith(t, size, func(c *Config) {
		c.Solo = false
		reg := prometheus.NewRegistry()
		c.Metrics = NewMetrics(reg)
		mu.Lock()
		regs[c.NodeID] = reg
		mu.Unlock()
		if mod != nil {
			mod(c)
		}
	})
	return r, func(id string) *prometheus.Registry {
		mu.Lock()
		defer mu.Unlock()
		return regs[id]
	}
}

// metricValue reads a gauge or counter (with label value, if any) from reg.
func metricValue(t *testing.T, reg *prometheus.Registry, name, label string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			if label != "" && (len(m.GetLabel()) == 0 || m.GetLabel()[0].GetValue() != label) {
				continue
			}
			if c := m.GetCounter(); c != nil {
				return c.GetValue()
			}
			return m.GetGauge().GetValue()
		}
	}
	return 0
}

func wait[T any](t *testing.T, ch <-chan T) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(30 * time.Second):
		t.Fatal("no result within 30s")
		panic("unreachable")
	}
}

func remote(t *testing.T, n *Node, batches ...[]byte) []int64 {
	t.Helper()
	r := wait(t, n.ProposeRemote(batches))
	if r.Err != nil {
		t.Fatalf("ProposeRemote via %s: %v", n.id, r.Err)
	}
	return ints(r.Replies)
}

func chunk(t *testing.T, n *Node, c crdt.Chunk) []crdt.Reply {
	t.Helper()
	r := wait(t, n.ProposeChunk(c))
	if r.Err != nil {
		t.Fatalf("ProposeChunk via %s: %v", n.id, r.Err)
	}
	return r.Replies
}

func outcomes(o ...crdt.MergeOutcome) []int64 {
	out := make([]int64, len(o))
	for i, x := range o {
		out[i] = int64(x)
	}
	return out
}

func nodeLog(n *Node) []crdt.LogRecord {
	var recs []crdt.LogRecord
	n.ReplView(func(r *crdt.Replica) { recs = logRecords(r) }) // Data may be kept
	return recs
}

// waitSameLogs waits until every running node holds the same replication
// log, of want records if want >= 0, and the same state; it returns it.
func waitSameLogs(t *testing.T, r *testRegion, want int) []crdt.LogRecord {
	t.Helper()
	nodes := r.live()
	var recs []crdt.LogRecord
	waitFor(t, 20*time.Second, "identical replication logs and states", func() bool {
		recs = nodeLog(nodes[0])
		if want >= 0 && len(recs) != want {
			return false
		}
		d := digest(nodes[0])
		for _, n := range nodes[1:] {
			if !reflect.DeepEqual(nodeLog(n), recs) || digest(n) != d {
				return false
			}
		}
		return true
	})
	return recs
}

// readVal reads a command's reply through n after a read fence.
func readVal(t *testing.T, n *Node, args ...string) crdt.Reply {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := n.ReadFence(ctx); err != nil {
		t.Fatalf("read fence on %s: %v", n.id, err)
	}
	var rep crdt.Reply
	n.Read(func(ks *crdt.Keyspace) {
		rep = ks.Read(0, time.Now().UnixMilli(), 1, cmd(args...).Args)
	})
	return rep
}

func regionSizes(t *testing.T, fn func(t *testing.T, size int)) {
	for _, size := range []int{1, 3} {
		t.Run(fmt.Sprintf("%d-node", size), func(t *testing.T) { fn(t, size) })
	}
}

// TestRemoteBatchesMergeEverywhere: batches of another region proposed on
// a follower and on the leader merge on every node (Merged, then Duplicate
// when sent again, Rejected when their predecessor is missing), and every
// node's replication log holds the same records in apply order, local
// writes included.
func TestRemoteBatchesMergeEverywhere(t *testing.T) {
	regionSizes(t, func(t *testing.T, size int) {
		r, metrics := newReplRegion(t, size, nil)
		l := r.leader()
		f := r.others(l)
		fol := r.nodes[l]
		if len(f) > 0 {
			fol = r.nodes[f[0]]
		}
		lead := r.nodes[l]
		if o := lead.Origin(); o.Region != 1 || o.Incarnation <= 1 || !lead.OriginFixed() {
			t.Fatalf("Origin() = %v (fixed %v), want region 1 at an incarnation taken above the configured 1", o, lead.OriginFixed())
		}
		if leading, _ := lead.LeaderWatch(); !leading {
			t.Fatal("the leader's LeaderWatch reports false")
		}
		src := newRemoteSource(crdt.Origin{Region: 2, Incarnation: 1})
		b1 := src.batch(t, "SET", "a", "1")
		b2 := src.batch(t, "INCRBY", "c", "5")
		b3 := src.batch(t, "SADD", "s", "x", "y")
		src.batch(t, "SET", "lost", "1") // never sent
		b5 := src.batch(t, "INCRBY", "c", "1")

		mustWrite(t, fol, "SET", "local1", "x")
		if got := remote(t, fol, b1); !reflect.DeepEqual(got, outcomes(crdt.Merged)) {
			t.Fatalf("b1 via follower: %v", got)
		}
		if got := remote(t, lead, b2, b3); !reflect.DeepEqual(got, outcomes(crdt.Merged, crdt.Merged)) {
			t.Fatalf("b2, b3 via leader: %v", got)
		}
		if got := remote(t, fol, b1, b2); !reflect.DeepEqual(got, outcomes(crdt.Duplicate, crdt.Duplicate)) {
			t.Fatalf("b1, b2 again: %v", got)
		}
		if got := remote(t, lead, b3, b5); !reflect.DeepEqual(got, outcomes(crdt.Duplicate, crdt.Rejected)) {
			t.Fatalf("b3 again, b5 after a gap: %v", got)
		}
		mustWrite(t, lead, "INCR", "local2")

		for _, n := range r.nodes {
			if v := readVal(t, n, "GET", "a"); string(v.Str) != "1" {
				t.Fatalf("%s: a=%q", n.id, v.Str)
			}
			if v := readVal(t, n, "GET", "c"); string(v.Str) != "5" {
				t.Fatalf("%s: c=%q", n.id, v.Str)
			}
			if v := readVal(t, n, "SCARD", "s"); v.Int != 2 {
				t.Fatalf("%s: SCARD s=%d", n.id, v.Int)
			}
			if v := readVal(t, n, "EXISTS", "lost"); v.Int != 0 {
				t.Fatal("a batch after a gap was applied")
			}
		}
		recs := waitSameLogs(t, r, 5)
		var got []string
		for _, rec := range recs {
			got = append(got, fmt.Sprintf("%d:%d", rec.Origin.Region, rec.FirstSeq))
		}
		if want := []string{"1:1", "2:1", "2:2", "2:3", "1:2"}; !reflect.DeepEqual(got, want) {
			t.Fatalf("log records %v, want %v (origin:seq in apply order)", got, want)
		}
		if recs[0].Pos != 1 || string(recs[1].Data) != string(b1) || string(recs[3].Data) != string(b3) {
			t.Fatalf("log positions or data: first pos %d", recs[0].Pos)
		}

		for _, n := range r.nodes {
			var st crdt.ReplicaStats
			n.ReplView(func(rp *crdt.Replica) { st = rp.Stats })
			if st.Merged != 3 || st.Duplicates != 3 || st.Rejected != 1 {
				t.Fatalf("%s: stats %+v", n.id, st)
			}
			reg := metrics(n.id)
			for _, c := range []struct {
				name, label string
				want        float64
			}{
				{"concord_repl_remote_batches_total", "merged", 3},
				{"concord_repl_remote_batches_total", "duplicate", 3},
				{"concord_repl_remote_batches_total", "rejected", 1},
				{"concord_repl_log_records", "", 5},
				{"concord_repl_log_first_pos", "", 1},
				{"concord_repl_log_next_pos", "", 6},
			} {
				if v := metricValue(t, reg, c.name, c.label); v != c.want {
					t.Errorf("%s: %s{%s} = %v, want %v", n.id, c.name, c.label, v, c.want)
				}
			}
			if v := metricValue(t, reg, "concord_repl_log_bytes", ""); v <= 0 {
				t.Errorf("%s: concord_repl_log_bytes = %v", n.id, v)
			}
			info := map[string]string{}
			for _, kv := range n.InfoFields("replication") {
				info[kv[0]] = kv[1]
			}
			if info["repl_log_records"] != "5" || info["repl_log_first_pos"] != "1" || info["repl_log_next_pos"] != "6" || info["repl_log_bytes"] == "0" {
				t.Errorf("%s: INFO replication log fields %v", n.id, info)
			}
		}
	})
}

// TestUnitsOfOneGoroutineApplyInOrder: local writes, remote batches and
// transfer chunks submitted back to back by one goroutine, without waiting
// for each other, apply in submission order (through forwarding and group
// commit on a follower): every batch merges (none overtakes its
// predecessor), every chunk stages, and the log follows submission order.
func TestUnitsOfOneGoroutineApplyInOrder(t *testing.T) {
	r, _ := newReplRegion(t, 3, nil)
	l := r.leader()
	fol := r.nodes[r.others(l)[0]]
	src := newRemoteSource(crdt.Origin{Region: 2, Incarnation: 1})
	other := newRemoteSource(crdt.Origin{Region: 3, Incarnation: 1})
	for i := 0; i < 50; i++ {
		other.batch(t, "SET", fmt.Sprint("t", i), "v")
	}
	cs := chunks(0xc0ffee, other.ks.Snapshot(), 5)

	const rounds = 40
	var (
		want    []string
		locals  []<-chan []crdt.Result
		remotes []<-chan crdt.Result
		chunkCh []<-chan crdt.Result
	)
	for i := 0; i < rounds; i++ {
		locals = append(locals, fol.ProposeUnits([][]crdt.Command{{cmd("INCR", "n")}}))
		want = append(want, "1")
		remotes = append(remotes, fol.ProposeRemote([][]byte{src.batch(t, "INCR", "m")}))
		want = append(want, "2")
		if i < len(cs) {
			chunkCh = append(chunkCh, fol.ProposeChunk(cs[i]))
		}
	}
	for i, ch := range locals {
		if r := wait(t, ch); r[0].Err != nil {
			t.Fatalf("local write %d: %v", i, r[0].Err)
		}
	}
	for i, ch := range remotes {
		if r := wait(t, ch); r.Err != nil || !reflect.DeepEqual(ints(r.Replies), outcomes(crdt.Merged)) {
			t.Fatalf("remote batch %d: %+v", i, r)
		}
	}
	staged := 0
	for i, ch := range chunkCh {
		r := wait(t, ch)
		staged += len(cs[i].Data)
		want := []int64{int64(staged), 0}
		if cs[i].Final {
			want = []int64{0, 1}
		}
		if r.Err != nil || !reflect.DeepEqual(ints(r.Replies), want) {
			t.Fatalf("chunk %d: %+v, want %v", i, r, want)
		}
	}
	recs := waitSameLogs(t, r, 2*rounds)
	var got []string
	for _, rec := range recs {
		got = append(got, strconv.Itoa(int(rec.Origin.Region)))
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("log order by origin %v, want %v", got, want)
	}
	if v := readVal(t, fol, "GET", "t7"); string(v.Str) != "v" {
		t.Fatalf("transfer not joined: t7=%q", v.Str)
	}
}

// TestReplicationLogSurvivesSnapshotsAndRestarts: a follower that missed
// entries compacted away installs the leader's snapshot and gets the same
// log and staged transfer; then every node snapshots, the whole region
// restarts, and the logs, staged transfer and states come back identical.
func TestReplicationLogSurvivesSnapshotsAndRestarts(t *testing.T) {
	r, _ := newReplRegion(t, 3, func(c *Config) {
		c.SnapshotThreshold = 64
		c.TrailingLogs = 8
		c.walSegmentSize = 4 << 10
	})
	l := r.leader()
	f := r.others(l)[0]
	src := newRemoteSource(crdt.Origin{Region: 2, Incarnation: 1})
	other := newRemoteSource(crdt.Origin{Region: 3, Incarnation: 1})
	for i := 0; i < 30; i++ {
		other.batch(t, "HSET", "h", fmt.Sprint("f", i), "v")
	}
	cs := chunks(0x5eed, other.ks.Snapshot(), 3)

	for i := 0; i < 10; i++ {
		mustWrite(t, r.nodes[l], "SET", fmt.Sprint("k", i), fmt.Sprint(i))
		remote(t, r.nodes[l], src.batch(t, "INCR", "remote"))
	}
	chunk(t, r.nodes[l], cs[0])
	waitSameLogs(t, r, 20)
	fLast := r.nodes[f].raft.LastIndex()
	r.kill(f)
	for i := 10; i < 100; i++ {
		mustWrite(t, r.nodes[l], "SET", fmt.Sprint("k", i), fmt.Sprint(i))
		if i%3 == 0 {
			remote(t, r.nodes[l], src.batch(t, "SADD", "rs", fmt.Sprint(i)))
		}
	}
	ln := r.nodes[l]
	if rep := admin(ln, 10*time.Second, "SNAPSHOT"); rep.IsError() {
		t.Fatalf("REGION SNAPSHOT: %s", rep.Str)
	}
	if err := ln.wal.GetLog(fLast+1, new(raft.Log)); err == nil {
		t.Fatalf("leader still holds entry %d after the snapshot", fLast+1)
	}
	r.start(f)
	wantRecs := 20 + 90 + 30
	waitSameLogs(t, r, wantRecs)
	if s, _ := strconv.ParseUint(r.nodes[f].raft.Stats()["last_snapshot_index"], 10, 64); s == 0 {
		t.Fatal("the restarted follower did not install a snapshot")
	}
	stagedOf := func(n *Node) (uint64, bool) {
		var s uint64
		var ok bool
		n.ReplView(func(rp *crdt.Replica) { s, ok = rp.Staged(chunkSender, 0x5eed) })
		return s, ok
	}
	for _, n := range r.nodes {
		if s, ok := stagedOf(n); !ok || s != uint64(len(cs[0].Data)) {
			t.Fatalf("%s: staged %d %v after the snapshot install", n.id, s, ok)
		}
	}

	// Every node snapshots, writes go on past the snapshot, then the whole
	// region restarts: each node restores its snapshot and replays the rest.
	for _, n := range r.nodes {
		if rep := admin(n, 10*time.Second, "SNAPSHOT"); rep.IsError() && !isNothingNew(rep) {
			t.Fatalf("REGION SNAPSHOT on %s: %s", n.id, rep.Str)
		}
	}
	l = r.leader()
	mustWrite(t, r.nodes[l], "SET", "after", "1")
	remote(t, r.nodes[l], src.batch(t, "SET", "after-remote", "1"))
	before := waitSameLogs(t, r, wantRecs+2)
	want := digest(r.nodes[l])
	for i := range r.nodes {
		r.kill(i)
	}
	for i := range r.nodes {
		r.start(i)
	}
	l = r.leader()
	readVal(t, r.nodes[l], "GET", "after")
	after := waitSameLogs(t, r, len(before))
	if !reflect.DeepEqual(after, before) {
		t.Fatal("the replication log changed across the restart")
	}
	for _, n := range r.nodes {
		if digest(n) != want {
			t.Fatalf("%s: state changed across the restart", n.id)
		}
		if s, ok := stagedOf(n); !ok || s != uint64(len(cs[0].Data)) {
			t.Fatalf("%s: staged %d %v after the restart", n.id, s, ok)
		}
	}
	// The transfer completes after all that.
	chunk(t, r.nodes[l], cs[1])
	if rep := ints(chunk(t, r.nodes[r.others(l)[0]], cs[2])); !reflect.DeepEqual(rep, []int64{0, 1}) {
		t.Fatalf("final chunk after the restart: %v", rep)
	}
	for _, n := range r.nodes {
		if v := readVal(t, n, "HLEN", "h"); v.Int != 30 {
			t.Fatalf("%s: HLEN h=%d after the transfer", n.id, v.Int)
		}
	}
	waitSameLogs(t, r, len(before)) // a join adds no record
}

func isNothingNew(rep crdt.Reply) bool {
	return rep.IsError() && strings.Contains(string(rep.Str), "nothing new to snapshot")
}

// TestStateTransferJoinsAtTheFinalChunk: a state transfer's chunks stage
// on every node (across a leader change in the 3-node region) without
// showing anything; the final chunk joins the state everywhere at once,
// and the log then reports it cannot serve what the join brought.
func TestStateTransferJoinsAtTheFinalChunk(t *testing.T) {
	regionSizes(t, func(t *testing.T, size int) {
		r, metrics := newReplRegion(t, size, nil)
		l := r.leader()
		other := newRemoteSource(crdt.Origin{Region: 3, Incarnation: 1})
		for i := 0; i < 200; i++ {
			other.batch(t, "SET", fmt.Sprint("t", i), fmt.Sprint(i))
		}
		other.batch(t, "ZADD", "z", "1", "a", "2", "b")
		cs := chunks(0x7a, other.ks.Snapshot(), 4)
		mustWrite(t, r.nodes[l], "SET", "local", "1")

		invisible := func(stage string) {
			t.Helper()
			for _, n := range r.nodes {
				if v := readVal(t, n, "EXISTS", "t0", "t199", "z"); v.Int != 0 {
					t.Fatalf("%s: %s: transferred keys visible (%d)", n.id, stage, v.Int)
				}
				var vv crdt.VersionVector
				n.Read(func(ks *crdt.Keyspace) { vv = ks.Version() })
				if vv.Get(other.ks.Origin()) != 0 {
					t.Fatalf("%s: %s: version vector already holds the transfer", n.id, stage)
				}
			}
		}
		staged := 0
		send := func(n *Node, i int) {
			t.Helper()
			rep := ints(chunk(t, n, cs[i]))
			staged += len(cs[i].Data)
			if want := []int64{int64(staged), 0}; !reflect.DeepEqual(rep, want) {
				t.Fatalf("chunk %d via %s: %v, want %v", i, n.id, rep, want)
			}
		}
		send(r.nodes[l], 0)
		if size > 1 {
			old := l
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			err := r.nodes[old].TransferLeadership(ctx)
			cancel()
			if err != nil {
				t.Fatalf("leadership transfer: %v", err)
			}
			waitFor(t, 10*time.Second, "a new leader", func() bool {
				for i, n := range r.nodes {
					if i != old && n.Leader() && n.Ready() {
						l = i
						return true
					}
				}
				return false
			})
			send(r.nodes[l], 1)
			send(r.nodes[old], 2) // via a follower, the former leader
		} else {
			send(r.nodes[l], 1)
			send(r.nodes[l], 2)
		}
		invisible("before the final chunk")
		for _, n := range r.nodes {
			var s uint64
			n.ReplView(func(rp *crdt.Replica) { s, _ = rp.Staged(chunkSender, 0x7a) })
			if s != uint64(staged) {
				t.Fatalf("%s: %d bytes staged, want %d", n.id, s, staged)
			}
		}
		// A chunk out of order is refused with an error reply and changes
		// nothing.
		bad := cs[3]
		bad.Offset--
		if rep := chunk(t, r.nodes[l], bad); len(rep) != 1 || rep[0].Kind != crdt.KindError || !strings.Contains(string(rep[0].Str), "out of order") {
			t.Fatalf("chunk out of order: %+v", rep)
		}
		final := r.nodes[l]
		if size > 1 {
			final = r.nodes[r.others(l)[0]]
		}
		if rep := ints(chunk(t, final, cs[3])); !reflect.DeepEqual(rep, []int64{0, 1}) {
			t.Fatalf("final chunk: %v", rep)
		}
		for _, n := range r.nodes {
			if v := readVal(t, n, "GET", "t199"); string(v.Str) != "199" {
				t.Fatalf("%s: t199=%q after the join", n.id, v.Str)
			}
			if v := readVal(t, n, "ZSCORE", "z", "b"); string(v.Str) != "2" {
				t.Fatalf("%s: ZSCORE z b=%q after the join", n.id, v.Str)
			}
			var (
				have     crdt.VersionVector
				ok, okMe bool
				pos      uint64
				next     uint64
				stagedOK bool
			)
			n.ReplView(func(rp *crdt.Replica) {
				have = rp.Keyspace().Version()
				_, ok = rp.Log().Start(crdt.VersionVector{}, have)
				pos, okMe = rp.Log().Start(have, have)
				next = rp.Log().Next()
				_, stagedOK = rp.Staged(chunkSender, 0x7a)
			})
			if have.Get(other.ks.Origin()) != 201 {
				t.Fatalf("%s: version vector %v after the join", n.id, have)
			}
			if ok {
				t.Fatalf("%s: the log claims to serve an empty peer what the join brought", n.id)
			}
			if !okMe || pos != next {
				t.Fatalf("%s: Start for a peer lacking nothing: %d %v, want %d true", n.id, pos, okMe, next)
			}
			if stagedOK {
				t.Fatalf("%s: transfer still staged after the join", n.id)
			}
			reg := metrics(n.id)
			if v := metricValue(t, reg, "concord_repl_transfers_joined_total", ""); v != 1 {
				t.Errorf("%s: transfers joined = %v", n.id, v)
			}
			if v := metricValue(t, reg, "concord_repl_transfer_chunks_total", ""); v != 4 {
				t.Errorf("%s: chunks staged = %v", n.id, v)
			}
		}
		waitSameLogs(t, r, 1)
	})
}

// TestLeaderWatchAndProgress: LeaderWatch follows this node's leadership
// (and reports false once it stops); Progress's channel closes when the
// applied index advances.
func TestLeaderWatchAndProgress(t *testing.T) {
	r, _ := newReplRegion(t, 3, nil)
	l := r.leader()
	old := r.nodes[l]
	if lead, _ := old.LeaderWatch(); !lead {
		t.Fatal("leader's LeaderWatch reports false")
	}
	var followerCh <-chan struct{}
	fi := r.others(l)[0]
	waitFor(t, 5*time.Second, "followers to report not leading", func() bool {
		lead, ch := r.nodes[fi].LeaderWatch()
		followerCh = ch
		return !lead
	})
	_, lostCh := old.LeaderWatch()

	applied, changed := r.nodes[fi].Progress()
	mustWrite(t, old, "SET", "x", "1")
	select {
	case <-changed:
	case <-time.After(10 * time.Second):
		t.Fatal("Progress channel not closed after a write")
	}
	if now, _ := r.nodes[fi].Progress(); now <= applied {
		t.Fatalf("applied index %d after a write, was %d", now, applied)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := old.TransferLeadership(ctx); err != nil {
		t.Fatal(err)
	}
	select {
	case <-lostCh:
	case <-time.After(10 * time.Second):
		t.Fatal("LeaderWatch channel not closed when leadership was lost")
	}
	if lead, _ := old.LeaderWatch(); lead {
		t.Fatal("former leader still reports leading")
	}
	nl := r.leader()
	if lead, _ := r.nodes[nl].LeaderWatch(); !lead {
		t.Fatal("new leader's LeaderWatch reports false")
	}
	if nl == fi {
		select {
		case <-followerCh:
		default:
			t.Fatal("the follower became leader but its LeaderWatch channel is open")
		}
	}
	_, ch := r.nodes[nl].LeaderWatch()
	r.kill(nl)
	select {
	case <-ch:
	default:
		t.Fatal("LeaderWatch channel still open after Close")
	}
}
