package main

import (
	"context"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"concord/replication"
)

// PUBLISH across regions: best effort, every node of every region, once.

// pubCount is how many times node n's handler was given channel/msg.
func (n *mrNode) pubCount(key string) int {
	n.pubMu.Lock()
	defer n.pubMu.Unlock()
	return n.pubs[key]
}

// pubTotal is how many publications node n's handler was given.
func (n *mrNode) pubTotal() int {
	n.pubMu.Lock()
	defer n.pubMu.Unlock()
	t := 0
	for _, c := range n.pubs {
		t += c
	}
	return t
}

func (d *mrDeployment) mgr(r, i int) *replication.Manager {
	_, m := d.regions[r].nodes[i].running()
	return m
}

// waitPublishUp waits until every node's Publish stream to every peer is
// open (what is published before is dropped for the peers not yet up).
func (d *mrDeployment) waitPublishUp(t *testing.T) {
	t.Helper()
	waitUntil(t, 30*time.Second, "every Publish stream up", func() bool {
		for r, reg := range d.regions {
			for i := range reg.nodes {
				for _, ps := range d.mgr(r, i).PublishStats() {
					if !ps.Up {
						return false
					}
				}
			}
		}
		return true
	})
}

// pubFigures sums, per sending and receiving region, the Publish
// counters: sent[from][to] by from's nodes, received[from][to] by to's.
func (d *mrDeployment) pubFigures() (sent, dropped, received [][]uint64) {
	R := len(d.regions)
	mk := func() [][]uint64 {
		m := make([][]uint64, R)
		for i := range m {
			m[i] = make([]uint64, R)
		}
		return m
	}
	sent, dropped, received = mk(), mk(), mk()
	for r, reg := range d.regions {
		for i := range reg.nodes {
			for peer, ps := range d.mgr(r, i).PublishStats() {
				p := int(peer) - 1
				sent[r][p] += ps.Sent
				dropped[r][p] += ps.Dropped
				received[p][r] += ps.Received
			}
		}
	}
	return sent, dropped, received
}

// fanoutSettled reports whether every region's fan-out messages written
// have all been received (delivered), none dropped.
func (d *mrDeployment) fanoutSettled(t *testing.T) bool {
	for _, reg := range d.regions {
		var sent, received uint64
		for _, n := range reg.nodes {
			rn, _ := n.running()
			s, dr, rc := rn.BroadcastCounts()
			if dr != 0 {
				t.Fatalf("%s dropped %d fan-out messages", n, dr)
			}
			sent += s
			received += rc
		}
		if sent != received {
			return false
		}
	}
	return true
}

func TestPublishAcrossRegions(t *testing.T) {
	for _, nodes := range []int{1, 3} {
		t.Run(fmt.Sprintf("nodes=%d", nodes), func(t *testing.T) {
			d := newDeployment(t, mrOptions{regions: 3, nodes: nodes})
			d.waitPublishUp(t)
			// Every node of every region publishes.
			var keys []string
			perNode := 5
			for r, reg := range d.regions {
				for i := range reg.nodes {
					for k := range perNode {
						msg := fmt.Sprintf("m%d.%d.%d", r, i, k)
						d.mgr(r, i).Publish([]byte("ch"), []byte(msg))
						keys = append(keys, "ch/"+msg)
					}
				}
			}
			want := uint64(nodes * perNode) // published per region
			waitUntil(t, 30*time.Second, "every publication counted received", func() bool {
				_, _, received := d.pubFigures()
				for from := range d.regions {
					for to := range d.regions {
						if from != to && received[from][to] != want {
							return false
						}
					}
				}
				return d.fanoutSettled(t)
			})
			sent, dropped, received := d.pubFigures()
			for from := range d.regions {
				for to := range d.regions {
					if from != to && (sent[from][to] != want || dropped[from][to] != 0 || received[from][to] != want) {
						t.Errorf("%d->%d: sent %d dropped %d received %d, want %d sent and received",
							from+1, to+1, sent[from][to], dropped[from][to], received[from][to], want)
					}
				}
			}
			// Everything in flight has arrived: each node delivered each
			// publication exactly once.
			for _, reg := range d.regions {
				for _, n := range reg.nodes {
					for _, k := range keys {
						if c := n.pubCount(k); c != 1 {
							t.Errorf("%s delivered %s %d times", n, k, c)
						}
					}
					if got := n.pubTotal(); got != len(keys) {
						t.Errorf("%s delivered %d publications, want %d", n, got, len(keys))
					}
				}
			}
			info := mrInfo(t, d, 0, 0)
			if !strings.Contains(info, fmt.Sprintf("publish_up=1,publishes_sent=%d,publishes_dropped=0,publishes_received=%d", perNode, want)) {
				t.Errorf("INFO replication does not show the publication counters:\n%s", info)
			}
		})
	}
}

// With the link from one region to another cut, what it publishes is
// dropped (and counted) for that region and still delivered to the others.
func TestPublishLinkCut(t *testing.T) {
	d := newDeployment(t, mrOptions{regions: 3, nodes: 3})
	d.waitPublishUp(t)
	d.cut(0, 1)
	waitUntil(t, 30*time.Second, "region 1's Publish streams to region 2 down", func() bool {
		for i := range d.regions[0].nodes {
			if d.mgr(0, i).PublishStats()[2].Up {
				return false
			}
		}
		return true
	})
	const n = 20
	for k := range n {
		d.mgr(0, k%3).Publish([]byte("ch"), []byte(fmt.Sprint("cut", k)))
	}
	waitUntil(t, 30*time.Second, "region 3 to receive every publication", func() bool {
		_, _, received := d.pubFigures()
		return received[0][2] == n && d.fanoutSettled(t)
	})
	sent, dropped, received := d.pubFigures()
	if sent[0][1] != 0 || dropped[0][1] != n || received[0][1] != 0 {
		t.Errorf("to the cut region: sent %d dropped %d received %d, want 0, %d, 0", sent[0][1], dropped[0][1], received[0][1], n)
	}
	if sent[0][2] != n || dropped[0][2] != 0 {
		t.Errorf("to region 3: sent %d dropped %d, want %d, 0", sent[0][2], dropped[0][2], n)
	}
	for k := range n {
		key := fmt.Sprint("ch/cut", k)
		for r, want := range []int{1, 0, 1} {
			for _, node := range d.regions[r].nodes {
				if c := node.pubCount(key); c != want {
					t.Errorf("%s delivered %s %d times, want %d", node, key, c, want)
				}
			}
		}
	}
}

// A burst larger than the queue, towards a region whose node stopped
// reading (its subscriber delivery stalls, so the Publish stream's flow
// control window fills and sending blocks), never blocks the publisher:
// what does not fit is dropped and counted, and the effects stream to that
// region is not held up by it.
func TestPublishBurstNeverBlocks(t *testing.T) {
	d := newDeployment(t, mrOptions{regions: 3, nodes: 1})
	d.waitPublishUp(t)
	stalled := d.regions[1].nodes[0]
	gate := make(chan struct{})
	stalled.pubMu.Lock()
	stalled.pubGate = gate
	stalled.pubMu.Unlock()
	defer func() {
		select {
		case <-gate:
		default:
			close(gate)
		}
	}()
	total := 3 * replication.PublishQueue
	// Large enough that the burst outgrows the queue plus the stream's
	// flow-control window (16 MiB), however fast the sender drains: some
	// must be dropped towards the stalled region.
	payload := []byte(strings.Repeat("x", 8<<10))
	done := make(chan struct{})
	go func() {
		defer close(done)
		m := d.mgr(0, 0)
		for range total {
			m.Publish([]byte("burst"), payload)
		}
	}()
	select {
	case <-done:
	case <-time.After(60 * time.Second):
		t.Fatal("Publish blocked")
	}
	ps := d.mgr(0, 0).PublishStats()
	if ps[2].Dropped == 0 || !ps[2].Up {
		t.Errorf("towards the stalled region: %+v, want an open stream and drops", ps[2])
	}
	// Effects still flow to the stalled region.
	d.mustDo(0, "SET", "after-burst", "1")
	d.waitValue(1, "after-burst", "1", 30*time.Second)

	// Once the subscriber resumes, every publication is accounted for:
	// sent (and then delivered) or dropped.
	close(gate)
	waitUntil(t, 60*time.Second, "every publication sent or dropped, and what was sent delivered", func() bool {
		ps := d.mgr(0, 0).PublishStats()
		return ps[2].Sent+ps[2].Dropped == uint64(total) && ps[3].Sent+ps[3].Dropped == uint64(total) &&
			d.mgr(1, 0).PublishStats()[1].Received == ps[2].Sent &&
			d.mgr(2, 0).PublishStats()[1].Received == ps[3].Sent
	})
	ps = d.mgr(0, 0).PublishStats()
	for r, sent := range []uint64{ps[2].Sent, ps[3].Sent} {
		if got := d.regions[r+1].nodes[0].pubCount("burst/" + string(payload)); got != int(sent) {
			t.Errorf("region %d delivered %d, region 1 sent it %d", r+2, got, sent)
		}
	}
	t.Logf("towards the stalled region: %+v; the other: %+v", ps[2], ps[3])
}

// mrInfo returns INFO replication of node i of region r.
func mrInfo(t *testing.T, d *mrDeployment, r, i int) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	info, err := d.regions[r].nodes[i].client.Info(ctx, "replication").Result()
	if err != nil {
		t.Fatal(err)
	}
	return info
}

// subscribeAll subscribes one go-redis client per node of every region
// to channel (RESP2 and RESP3 alternately) and waits until each node
// counts its subscriber.
func subscribeAll(t *testing.T, addrs []string, channel string) []*redis.PubSub {
	t.Helper()
	ctx := context.Background()
	var subs []*redis.PubSub
	for i, a := range addrs {
		rdb := redis.NewClient(&redis.Options{Addr: a, Protocol: 2 + i%2})
		t.Cleanup(func() { rdb.Close() })
		ps := rdb.Subscribe(ctx, channel)
		t.Cleanup(func() { ps.Close() })
		if _, err := ps.ReceiveTimeout(ctx, 10*time.Second); err != nil {
			t.Fatalf("subscribe on %s: %v", a, err)
		}
		subs = append(subs, ps)
	}
	return subs
}

// expectMessages reads want from every subscriber and requires exactly
// those messages, in that order: a duplicate or a loss shows as the wrong
// message (callers end with a marker, so a late duplicate shows too).
func expectMessages(t *testing.T, subs []*redis.PubSub, addrs []string, want []string) {
	t.Helper()
	ctx := context.Background()
	for i, ps := range subs {
		for _, w := range want {
			m, err := ps.ReceiveTimeout(ctx, 20*time.Second)
			if err != nil {
				t.Fatalf("subscriber on %s waiting for %q: %v", addrs[i], w, err)
			}
			msg, ok := m.(*redis.Message)
			if !ok || msg.Payload != w {
				t.Fatalf("subscriber on %s: got %#v, want message %q", addrs[i], m, w)
			}
		}
	}
}

// A subscriber on any node of any region receives, once and in order,
// what a client PUBLISHes on region A's first node; PUBLISH answers how
// many subscribers of that node received it.
func TestPubSubClientsAcrossRegions(t *testing.T) {
	d := newDeployment(t, mrOptions{regions: 2, nodes: 3})
	d.waitPublishUp(t)
	var addrs []string
	for _, reg := range d.regions {
		for _, n := range reg.nodes {
			addrs = append(addrs, n.respAddr)
		}
	}
	subs := subscribeAll(t, addrs, "news")
	ctx := context.Background()
	pub := d.regions[0].nodes[0].client
	var want []string
	for i := range 20 {
		msg := fmt.Sprint("m", i)
		n, err := pub.Publish(ctx, "news", msg).Result()
		if err != nil || n != 1 {
			t.Fatalf("PUBLISH = %d, %v; want 1 (this node's subscriber)", n, err)
		}
		want = append(want, msg)
	}
	// The last one doubles as the check that nothing was delivered twice.
	pub.Publish(ctx, "news", "end")
	expectMessages(t, subs, addrs, append(want, "end"))

	// A publication made on region B's second node reaches region A too.
	if n, err := d.regions[1].nodes[1].client.Publish(ctx, "news", "from-b").Result(); err != nil || n != 1 {
		t.Fatalf("PUBLISH in region B = %d, %v", n, err)
	}
	expectMessages(t, subs, addrs, []string{"from-b"})
	// PUBSUB answers for the node asked.
	for i, a := range addrs {
		if got := d.regions[i/3].nodes[i%3].client.PubSubNumSub(ctx, "news").Val()["news"]; got != 1 {
			t.Errorf("PUBSUB NUMSUB news on %s = %d", a, got)
		}
	}
}

// `concord local --nodes 3` (a region without peer regions): PUBLISH on
// one node reaches the subscribers of the others over the region's
// broadcast channel.
func TestPubSubLocalRegion(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	port, raftPort := freePortRun(t, 3), freePortRun(t, 3)
	_, addrs := startLocal(t, "--nodes", "3", "--port", fmt.Sprint(port), "--raft-port", fmt.Sprint(raftPort), "--data-dir", t.TempDir())
	for _, a := range addrs {
		waitReady(t, a)
	}
	subs := subscribeAll(t, addrs, "ch")
	rdb := redis.NewClient(&redis.Options{Addr: addrs[0]})
	defer rdb.Close()
	ctx := context.Background()
	if n, err := rdb.Publish(ctx, "ch", "hello").Result(); err != nil || n != 1 {
		t.Fatalf("PUBLISH = %d, %v", n, err)
	}
	rdb.Publish(ctx, "ch", "end")
	expectMessages(t, subs, addrs, []string{"hello", "end"})
}

// A subscriber in region B that stops reading is disconnected by its
// node's pubsub output limit; the subscriber next to it and the stream
// from region A are not held up.
func TestPubSubSlowSubscriberAcrossRegions(t *testing.T) {
	d := newDeployment(t, mrOptions{regions: 2, nodes: 1})
	d.waitPublishUp(t)
	ctx := context.Background()
	b := d.regions[1].nodes[0]
	if err := b.client.ConfigSet(ctx, "client-output-buffer-limit", "pubsub 1mb 512kb 60").Err(); err != nil {
		t.Fatal(err)
	}
	slow, err := net.Dial("tcp", b.respAddr)
	if err != nil {
		t.Fatal(err)
	}
	defer slow.Close()
	slow.(*net.TCPConn).SetReadBuffer(4096)
	slow.Write([]byte("*2\r\n$9\r\nSUBSCRIBE\r\n$4\r\nbulk\r\n"))
	subs := subscribeAll(t, []string{b.respAddr}, "bulk")
	waitUntil(t, 10*time.Second, "two subscribers in region B", func() bool {
		return b.client.PubSubNumSub(ctx, "bulk").Val()["bulk"] == 2
	})
	payload := strings.Repeat("z", 64<<10)
	const n = 150
	got := make(chan error, 1)
	go func() { // the other subscriber reads as it goes
		for i := range n {
			m, err := subs[0].ReceiveTimeout(ctx, 20*time.Second)
			if err != nil {
				got <- fmt.Errorf("message %d: %v", i, err)
				return
			}
			if msg, ok := m.(*redis.Message); !ok || msg.Payload != fmt.Sprint(i, ":", payload) {
				got <- fmt.Errorf("message %d: got %.40v", i, m)
				return
			}
		}
		got <- nil
	}()
	pub := d.regions[0].nodes[0].client
	for i := range n {
		pub.Publish(ctx, "bulk", fmt.Sprint(i, ":", payload))
		time.Sleep(2 * time.Millisecond) // within the transport's queues
	}
	if err := <-got; err != nil {
		t.Fatalf("the reading subscriber: %v", err)
	}
	waitUntil(t, 10*time.Second, "the slow subscriber disconnected", func() bool {
		return b.client.PubSubNumSub(ctx, "bulk").Val()["bulk"] == 1
	})
	d.mustDo(0, "SET", "after-slow", "1")
	d.waitValue(1, "after-slow", "1", 30*time.Second)
}
