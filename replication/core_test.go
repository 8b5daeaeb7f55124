package replication

// Unit tests of the Sender and Receiver cores, driven by hand: every
// message is passed between them (or altered, or withheld) by the test.

import (
	"bytes"
	"compress/flate"
	"errors"
	"fmt"
	"google.golang.org/protobuf/proto"
	"math/rand/v2"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"concord/crdt"
	pb "concord/proto"
)

var (
	originA = crdt.Origin{Region: 1, Incarnation: 1}
	originB = crdt.Origin{Region: 2, Incarnation: 1}
	originC = crdt.Origin{Region: 3, Incarnation: 1}
)

func newTestReplica(o crdt.Origin, limits crdt.LogLimits) *crdt.Replica {
	return crdt.NewReplica(crdt.NewKeyspace(o, crdt.Options{}), limits)
}

func viewOf(rep **crdt.Replica) Viewer { return func(fn func(*crdt.Replica)) { fn(*rep) } }

// rig is one stream from src (region A) to dst (region B).
type rig struct {
	t        *testing.T
	src, dst *crdt.Replica
	s        *Sender
	r        *Receiver
	now      int64 // both regions' clock, ms
	stamp    int64
}

func newRig(t *testing.T, cfg SenderConfig, srcLimits crdt.LogLimits) *rig {
	g := &rig{t: t, src: newTestReplica(originA, srcLimits), dst: newTestReplica(originB, crdt.LogLimits{}),
		now: testEpoch, stamp: testEpoch}
	g.s = NewSender(cfg, viewOf(&g.src), originA, "a", originB.Region)
	g.s.Tick(g.now)
	return g
}

// write applies a local write to rep.
func (g *rig) write(rep *crdt.Replica, args ...string) {
	g.t.Helper()
	g.stamp++
	rs := rep.Apply(crdt.Stamp{Time: crdt.HLCFromMillis(g.stamp), Seed: uint64(g.stamp)}, []crdt.Command{{Args: testArgs(args...)}})
	if rs[0].Kind == crdt.KindError {
		g.t.Fatalf("%q: %s", args, rs[0].Str)
	}
}

func (g *rig) writes(rep *crdt.Replica, n int, key string) {
	for i := 0; i < n; i++ {
		g.write(rep, "INCRBY", key, "1")
	}
}

func (g *rig) tick(ms int64) {
	g.now += ms
	g.s.Tick(g.now)
}

// ready returns the sender's messages, failing on a reset.
func (g *rig) ready() []*pb.Push {
	g.t.Helper()
	if g.s.NeedsSnapshot() {
		data, vv, next := viewOf(&g.src).Snapshot()
		g.s.SetSnapshot(data, vv, next)
	}
	msgs, reset := g.s.Ready()
	if reset {
		g.t.Fatalf("unexpected reset (state %s)", g.s.State())
	}
	return msgs
}

// connect opens a stream and completes the handshake.
func (g *rig) connect() {
	g.t.Helper()
	g.s.Connected()
	msgs := g.ready()
	if len(msgs) != 1 || msgs[0].GetHello() == nil {
		g.t.Fatalf("Connected: got %v, want one Hello", msgs)
	}
	g.r = NewReceiver(originB, "b", viewOf(&g.dst))
	w, err := g.r.Hello(msgs[0].GetHello(), g.now)
	if err != nil {
		g.t.Fatal(err)
	}
	if err := g.s.Step(w); err != nil {
		g.t.Fatal(err)
	}
}

// deliver hands one message to the receiver, applies its proposal to dst
// and returns the acknowledgement.
func (g *rig) deliver(m *pb.Push) *pb.Pull {
	g.t.Helper()
	p, err := g.r.Step(m)
	if err != nil {
		g.t.Fatal(err)
	}
	ack, err := g.r.Done(applyProposal(g.dst, p), g.now)
	if err != nil {
		g.t.Fatal(err)
	}
	return ack
}

func applyProposal(rep *crdt.Replica, p Proposal) Applied {
	var a Applied
	if p.Chunk != nil {
		a.Staged, a.Joined, a.Err = rep.StageChunk(*p.Chunk)
		return a
	}
	for _, b := range p.Batches {
		out, err := rep.Merge(b)
		a.Outcomes = append(a.Outcomes, out)
		var reason crdt.RejectReason
		var detail string
		if out == crdt.Rejected {
			reason, detail = crdt.ReasonOf(err), err.Error()
		}
		a.Reasons, a.Details = append(a.Reasons, reason), append(a.Details, detail)
	}
	return a
}

// pump runs the stream until the sender has nothing more to send.
func (g *rig) pump() (msgs int) {
	g.t.Helper()
	for i := 0; i < 10_000; i++ {
		batch := g.ready()
		if len(batch) == 0 {
			return msgs
		}
		for _, m := range batch {
			msgs++
			if err := g.s.Step(g.deliver(m)); err != nil {
				g.t.Fatal(err)
			}
		}
	}
	g.t.Fatal("pump: no end")
	return msgs
}

func (g *rig) requireConverged() {
	g.t.Helper()
	if a, b := g.src.Keyspace().Digest(), g.dst.Keyspace().Digest(); a != b {
		g.t.Fatalf("digests differ: src vv %v, dst vv %v", g.src.Keyspace().Version(), g.dst.Keyspace().Version())
	}
}

func hello(mut func(h *pb.Hello)) *pb.Hello {
	h := &pb.Hello{MinProtocol: MinProtocol, MaxProtocol: MaxProtocol, Region: originA.Region,
		Incarnation: 1, Name: "a", ToRegion: originB.Region, WallMs: testEpoch}
	if mut != nil {
		mut(h)
	}
	return h
}

func TestReceiverHandshake(t *testing.T) {
	for _, tc := range []struct {
		name  string
		hello *pb.Hello
		err   error
		proto uint32
	}{
		{"same version", hello(nil), nil, MaxProtocol},
		{"older sender 1..1", hello(func(h *pb.Hello) { h.MaxProtocol = 1 }), nil, 1},
		{"newer sender 1..3", hello(func(h *pb.Hello) { h.MaxProtocol = 3 }), nil, MaxProtocol},
		{"much newer sender 1..9", hello(func(h *pb.Hello) { h.MaxProtocol = 9 }), nil, MaxProtocol},
		{"sender 3..4: no overlap", hello(func(h *pb.Hello) { h.MinProtocol, h.MaxProtocol = 3, 4 }), ErrVersion, 0},
		{"sender 0..0: too old", hello(func(h *pb.Hello) { h.MinProtocol, h.MaxProtocol = 0, 0 }), ErrVersion, 0},
		{"wrong to_region", hello(func(h *pb.Hello) { h.ToRegion = 7 }), ErrProtocol, 0},
		{"sender claims our region", hello(func(h *pb.Hello) { h.Region = originB.Region }), ErrProtocol, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dst := newTestReplica(originB, crdt.LogLimits{})
			r := NewReceiver(originB, "b", viewOf(&dst))
			w, err := r.Hello(tc.hello, testEpoch)
			if !errors.Is(err, tc.err) {
				t.Fatalf("Hello: err %v, want %v", err, tc.err)
			}
			if err != nil {
				return
			}
			if got := w.GetWelcome().Protocol; got != tc.proto {
				t.Fatalf("Welcome protocol %d, want %d", got, tc.proto)
			}
			if _, err := r.Hello(tc.hello, testEpoch); !errors.Is(err, ErrProtocol) {
				t.Fatalf("second Hello: %v", err)
			}
		})
	}
}

// A newer sender (speaking 1..MaxProtocol+1) talks to this receiver: the
// stream runs at this build's version and carries everything.
func TestNewerSenderStreams(t *testing.T) {
	g := newRig(t, SenderConfig{}, crdt.LogLimits{})
	g.writes(g.src, 5, "k")
	g.s.Connected()
	h := g.ready()[0].GetHello()
	h.MaxProtocol = MaxProtocol + 1 // what a newer build would offer
	g.r = NewReceiver(originB, "b", viewOf(&g.dst))
	w, err := g.r.Hello(h, g.now)
	if err != nil {
		t.Fatal(err)
	}
	if err := g.s.Step(w); err != nil {
		t.Fatal(err)
	}
	g.pump()
	g.requireConverged()
}

func TestReceiverRefusesBeforeHello(t *testing.T) {
	dst := newTestReplica(originB, crdt.LogLimits{})
	r := NewReceiver(originB, "b", viewOf(&dst))
	_, err := r.Step(&pb.Push{Msg: &pb.Push_Batches{Batches: &pb.Batches{FirstPos: 1, LastPos: 1}}})
	if !errors.Is(err, ErrProtocol) {
		t.Fatalf("Batches before Hello: %v", err)
	}
}

func TestSenderWelcomeChecks(t *testing.T) {
	welcome := func(mut func(w *pb.Welcome)) *pb.Pull {
		w := &pb.Welcome{Protocol: 1, Region: originB.Region, Incarnation: 1, Name: "b", Vv: &pb.VersionVector{}}
		if mut != nil {
			mut(w)
		}
		return &pb.Pull{Msg: &pb.Pull_Welcome{Welcome: w}}
	}
	for _, tc := range []struct {
		name string
		msg  *pb.Pull
		err  error
	}{
		{"ok", welcome(nil), nil},
		{"a protocol newer than this build", welcome(func(w *pb.Welcome) { w.Protocol = MaxProtocol + 1 }), ErrVersion},
		{"protocol 0", welcome(func(w *pb.Welcome) { w.Protocol = 0 }), ErrVersion},
		{"reached another region", welcome(func(w *pb.Welcome) { w.Region = 3 }), ErrProtocol},
		{"unsorted version vector", welcome(func(w *pb.Welcome) {
			w.Vv = &pb.VersionVector{Entries: []*pb.VVEntry{{Region: 3, Incarnation: 1, Seq: 1}, {Region: 1, Incarnation: 1, Seq: 1}}}
		}), ErrProtocol},
		{"ack instead of welcome", &pb.Pull{Msg: &pb.Pull_Ack{Ack: &pb.Ack{Pos: 1}}}, ErrProtocol},
		{"empty message", &pb.Pull{}, ErrProtocol},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := newRig(t, SenderConfig{}, crdt.LogLimits{})
			g.s.Connected()
			g.ready()
			err := g.s.Step(tc.msg)
			if !errors.Is(err, tc.err) {
				t.Fatalf("Step: %v, want %v", err, tc.err)
			}
			if err != nil {
				if g.s.State() != Disconnected {
					t.Fatalf("after an error the sender is %s, want disconnected", g.s.State())
				}
				return
			}
			if g.s.State() != Streaming {
				t.Fatalf("state %s", g.s.State())
			}
			if err := g.s.Step(welcome(nil)); !errors.Is(err, ErrProtocol) {
				t.Fatalf("second Welcome: %v", err)
			}
		})
	}
}

func TestSenderAckChecks(t *testing.T) {
	for _, tc := range []struct {
		name string
		mut  func(a *pb.Ack)
	}{
		{"position ahead", func(a *pb.Ack) { a.Pos++ }},
		{"position behind", func(a *pb.Ack) { a.Pos-- }},
		{"unsorted vv", func(a *pb.Ack) {
			a.Vv = &pb.VersionVector{Entries: []*pb.VVEntry{{Region: 2, Incarnation: 1, Seq: 1}, {Region: 2, Incarnation: 1, Seq: 2}}}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := newRig(t, SenderConfig{BatchRecords: 2}, crdt.LogLimits{})
			g.writes(g.src, 4, "k")
			g.connect()
			msgs := g.ready()
			if len(msgs) != 2 {
				t.Fatalf("%d messages", len(msgs))
			}
			ack := g.deliver(msgs[0])
			tc.mut(ack.GetAck())
			if err := g.s.Step(ack); !errors.Is(err, ErrProtocol) {
				t.Fatalf("Step: %v, want ErrProtocol", err)
			}
			if g.s.State() != Disconnected {
				t.Fatalf("state %s", g.s.State())
			}
		})
	}
	t.Run("nothing in flight", func(t *testing.T) {
		g := newRig(t, SenderConfig{}, crdt.LogLimits{})
		g.writes(g.src, 2, "k")
		g.connect()
		ack := g.deliver(g.ready()[0])
		if err := g.s.Step(ack); err != nil {
			t.Fatal(err)
		}
		if err := g.s.Step(ack); !errors.Is(err, ErrProtocol) {
			t.Fatalf("repeated Ack: %v", err)
		}
	})
	t.Run("while handshaking", func(t *testing.T) {
		g := newRig(t, SenderConfig{}, crdt.LogLimits{})
		g.s.Connected()
		if err := g.s.Step(&pb.Pull{Msg: &pb.Pull_Ack{Ack: &pb.Ack{}}}); !errors.Is(err, ErrProtocol) {
			t.Fatalf("Ack before Welcome: %v", err)
		}
	})
	t.Run("chunk ack for another transfer", func(t *testing.T) {
		g := newRig(t, SenderConfig{ChunkBytes: 64}, crdt.LogLimits{MaxRecords: 2})
		g.writes(g.src, 10, "k")
		g.connect()
		msgs := g.ready()
		if msgs[0].GetChunk() == nil {
			t.Fatalf("want a chunk, got %v", msgs[0])
		}
		ack := g.deliver(msgs[0])
		ack.GetAck().TransferId++
		if err := g.s.Step(ack); !errors.Is(err, ErrProtocol) {
			t.Fatalf("Step: %v, want ErrProtocol", err)
		}
	})
}

// Ack positions only grow: a repeated or reordered Batches message is a
// protocol error at the receiver.
func TestReceiverRefusesOutOfOrderPositions(t *testing.T) {
	g := newRig(t, SenderConfig{BatchRecords: 1}, crdt.LogLimits{})
	g.writes(g.src, 4, "k")
	g.connect()
	msgs := g.ready()
	g.deliver(msgs[0])
	g.deliver(msgs[1])
	for _, m := range []*pb.Push{msgs[0], msgs[1]} {
		r := *g.r // each refusal on a copy: the error ends the stream
		if _, err := r.Step(m); !errors.Is(err, ErrProtocol) {
			t.Fatalf("positions %d after %d: %v", m.GetBatches().FirstPos, msgs[1].GetBatches().LastPos, err)
		}
	}
	// A lost message is not detected by position; the gap it leaves is
	// refused when merged, and Done ends the stream.
	p, err := g.r.Step(msgs[3])
	if err != nil {
		t.Fatal(err)
	}
	a := applyProposal(g.dst, p)
	if a.Outcomes[0] != crdt.Rejected {
		t.Fatalf("outcome %v", a.Outcomes)
	}
	if _, err := g.r.Done(a, g.now); err == nil {
		t.Fatal("Done accepted a refused batch")
	}
}

func TestTimeouts(t *testing.T) {
	cfg := SenderConfig{HelloTimeout: 100, AckTimeout: 300}
	t.Run("hello", func(t *testing.T) {
		g := newRig(t, cfg, crdt.LogLimits{})
		g.s.Connected()
		g.ready()
		g.tick(100)
		if _, reset := g.s.Ready(); reset {
			t.Fatal("reset at exactly the timeout")
		}
		g.tick(1)
		if _, reset := g.s.Ready(); !reset {
			t.Fatal("no reset after the hello timeout")
		}
		if g.s.State() != Disconnected || g.s.Stats().Resets != 1 {
			t.Fatalf("state %s, resets %d", g.s.State(), g.s.Stats().Resets)
		}
	})
	t.Run("ack", func(t *testing.T) {
		g := newRig(t, cfg, crdt.LogLimits{})
		g.writes(g.src, 3, "k")
		g.connect()
		if len(g.ready()) == 0 {
			t.Fatal("nothing sent")
		}
		g.tick(300)
		if _, reset := g.s.Ready(); reset {
			t.Fatal("reset at exactly the timeout")
		}
		g.tick(1)
		if _, reset := g.s.Ready(); !reset {
			t.Fatal("no reset after the ack timeout")
		}
		if g.s.State() != Disconnected {
			t.Fatalf("state %s", g.s.State())
		}
		// A new stream resends what was never acknowledged.
		g.connect()
		g.pump()
		g.requireConverged()
	})
	t.Run("idle stream pings and does not time out", func(t *testing.T) {
		g := newRig(t, cfg, crdt.LogLimits{})
		g.connect()
		g.tick(1_000)
		msgs, reset := g.s.Ready()
		if reset || len(msgs) != 1 || msgs[0].GetPing() == nil {
			t.Fatalf("idle stream: %v, reset %v", msgs, reset)
		}
		// Nothing more until the ping is answered.
		g.tick(100)
		if msgs, reset := g.s.Ready(); reset || len(msgs) != 0 {
			t.Fatalf("second ping while one is in flight: %v, reset %v", msgs, reset)
		}
	})
}

// TestKeepalive: a stream on which the peer says nothing for Keepalive,
// not even the answer to a ping, is reset (a blackholed link); one whose
// pings are answered lives on however long it stays idle.
func TestKeepalive(t *testing.T) {
	cfg := SenderConfig{Keepalive: 3_000, AckTimeout: 60_000}
	t.Run("silent peer", func(t *testing.T) {
		g := newRig(t, cfg, crdt.LogLimits{})
		g.connect()
		pings := 0
		for i := 0; i < 3; i++ {
			g.tick(1_000)
			msgs, reset := g.s.Ready()
			if reset {
				t.Fatalf("reset after %d ms", (i+1)*1000)
			}
			pings += len(msgs)
		}
		if pings != 1 {
			t.Fatalf("%d pings while idle, want 1 (the next waits for its answer)", pings)
		}
		g.tick(1)
		if _, reset := g.s.Ready(); !reset {
			t.Fatal("no reset after Keepalive without a word from the peer")
		}
		if st := g.s.Stats(); g.s.State() != Disconnected || st.Silent != 1 || st.Resets != 1 {
			t.Fatalf("state %s, stats %+v", g.s.State(), st)
		}
	})
	t.Run("answered pings", func(t *testing.T) {
		g := newRig(t, cfg, crdt.LogLimits{})
		g.connect()
		for i := 0; i < 30; i++ {
			g.tick(1_000)
			msgs, reset := g.s.Ready()
			if reset {
				t.Fatalf("reset after %d ms of answered pings", (i+1)*1000)
			}
			for _, m := range msgs {
				if err := g.s.Step(g.deliver(m)); err != nil {
					t.Fatal(err)
				}
			}
		}
		if g.s.State() != Streaming {
			t.Fatalf("state %s", g.s.State())
		}
	})
}

func TestWindow(t *testing.T) {
	g := newRig(t, SenderConfig{MaxInFlight: 3, BatchRecords: 2}, crdt.LogLimits{})
	g.writes(g.src, 20, "k")
	g.connect()
	msgs := g.ready()
	if len(msgs) != 3 {
		t.Fatalf("first Ready: %d messages, want MaxInFlight=3", len(msgs))
	}
	for i, m := range msgs {
		b := m.GetBatches()
		if n := len(b.Batches); n != 2 || b.FirstPos != uint64(2*i+1) || b.LastPos != uint64(2*i+2) {
			t.Fatalf("message %d: positions %d..%d with %d batches", i, b.FirstPos, b.LastPos, n)
		}
	}
	if more := g.ready(); len(more) != 0 {
		t.Fatalf("window full, yet %d more messages", len(more))
	}
	if st := g.s.Stats(); st.InFlight != 3 || st.LagRecords != 20 {
		t.Fatalf("stats %+v", st)
	}
	if err := g.s.Step(g.deliver(msgs[0])); err != nil {
		t.Fatal(err)
	}
	if more := g.ready(); len(more) != 1 || more[0].GetBatches().FirstPos != 7 {
		t.Fatalf("after one ack: %v", more)
	}
	if st := g.s.Stats(); st.AckedPos != 2 || st.InFlight != 3 {
		t.Fatalf("stats %+v", st)
	}
}

// TestWindowBytes: the byte budget closes the window before the message
// count does, and an acknowledgement reopens it.
func TestWindowBytes(t *testing.T) {
	g := newRig(t, SenderConfig{MaxInFlight: 100, MaxInFlightBytes: 250, BatchRecords: 1, DeflateMin: -1}, crdt.LogLimits{})
	for i := 0; i < 10; i++ {
		g.write(g.src, "SET", fmt.Sprintf("k%d", i), strings.Repeat("v", 60))
	}
	g.connect()
	msgs := g.ready()
	size := 0
	for _, m := range msgs[:len(msgs)-1] {
		size += len(m.GetBatches().Batches[0])
	}
	if len(msgs) < 2 || len(msgs) >= 10 || size >= 250 {
		t.Fatalf("%d messages sent, %d bytes before the last: the budget of 250 did not bind", len(msgs), size)
	}
	if more := g.ready(); len(more) != 0 {
		t.Fatalf("budget spent, yet %d more messages", len(more))
	}
	if err := g.s.Step(g.deliver(msgs[0])); err != nil {
		t.Fatal(err)
	}
	if more := g.ready(); len(more) == 0 {
		t.Fatal("an acknowledgement did not reopen the window")
	}
}

func TestBatchBytesBound(t *testing.T) {
	g := newRig(t, SenderConfig{BatchBytes: 100, DeflateMin: -1}, crdt.LogLimits{})
	for i := 0; i < 10; i++ {
		g.write(g.src, "SET", fmt.Sprintf("k%d", i), strings.Repeat("v", 40))
	}
	g.connect()
	for _, m := range g.ready() {
		size := 0
		for _, b := range m.GetBatches().Batches {
			size += len(b)
		}
		if len(m.GetBatches().Batches) > 1 && size > 100 {
			t.Fatalf("message of %d bytes in %d batches, bound 100", size, len(m.GetBatches().Batches))
		}
	}
}

func TestDeflateRoundTrip(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, n := range []int{1, 2, 17, 300} {
		var batches [][]byte
		size := 0
		for i := 0; i < n; i++ {
			b := bytes.Repeat([]byte{byte(i)}, rng.IntN(200))
			b = append(b, []byte(fmt.Sprintf("batch %d", i))...)
			batches = append(batches, b)
			size += len(b)
		}
		z, ok := deflateBatches(batches, size)
		if !ok {
			t.Fatalf("%d batches did not compress", n)
		}
		got, err := inflateBatches(z, MaxMessageBytes)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != n {
			t.Fatalf("%d batches back, want %d", len(got), n)
		}
		for i := range got {
			if !bytes.Equal(got[i], batches[i]) {
				t.Fatalf("batch %d differs", i)
			}
		}
	}
	// Incompressible data is sent as is.
	noise := make([]byte, 4096)
	for i := range noise {
		noise[i] = byte(rng.Uint32())
	}
	if _, ok := deflateBatches([][]byte{noise}, len(noise)); ok {
		t.Fatal("random bytes were deflated")
	}
}

func TestInflateRefusesBombsAndGarbage(t *testing.T) {
	// 8 MiB of zeros compress to about 8 KiB.
	var z bytes.Buffer
	w, _ := flate.NewWriter(&z, flate.BestCompression)
	zeros := make([]byte, 1<<20)
	for i := 0; i < 8; i++ {
		w.Write(zeros)
	}
	w.Close()
	if _, err := inflateBatches(z.Bytes(), 1<<20); !errors.Is(err, errInflate) {
		t.Fatalf("bomb: %v", err)
	}
	// Exactly at the limit is fine.
	one, _ := deflateBatches([][]byte{bytes.Repeat([]byte("x"), 1000)}, 1000)
	if _, err := inflateBatches(one, 1002); err != nil {
		t.Fatalf("at the limit: %v", err)
	}
	if _, err := inflateBatches(one, 1001); !errors.Is(err, errInflate) {
		t.Fatalf("one byte over: %v", err)
	}
	for name, bad := range map[string][]byte{
		"not deflate":   []byte("definitely not deflate"),
		"length beyond": mustDeflate(append(appendUvarint(nil, 100), "short"...)),
		"bad uvarint":   mustDeflate([]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}),
	} {
		if _, err := inflateBatches(bad, 1<<20); !errors.Is(err, errInflate) {
			t.Fatalf("%s: %v", name, err)
		}
	}
	// Through the receiver: the stream is refused.
	g := newRig(t, SenderConfig{}, crdt.LogLimits{})
	g.connect()
	_, err := g.r.Step(&pb.Push{Msg: &pb.Push_Batches{Batches: &pb.Batches{FirstPos: 1, LastPos: 1, Deflated: []byte("junk")}}})
	if !errors.Is(err, errInflate) {
		t.Fatalf("receiver: %v", err)
	}
}

func appendUvarint(b []byte, v uint64) []byte {
	for v >= 0x80 {
		b = append(b, byte(v)|0x80)
		v >>= 7
	}
	return append(b, byte(v))
}

func mustDeflate(raw []byte) []byte {
	var z bytes.Buffer
	w, _ := flate.NewWriter(&z, flate.BestSpeed)
	w.Write(raw)
	w.Close()
	return z.Bytes()
}

// With compression on for every message, the receiver gets the same
// batches.
func TestDeflatedStream(t *testing.T) {
	g := newRig(t, SenderConfig{DeflateMin: 1, BatchRecords: 16}, crdt.LogLimits{})
	for i := 0; i < 50; i++ {
		g.write(g.src, "SET", fmt.Sprintf("key:%d", i%7), strings.Repeat("value ", 20))
	}
	g.connect()
	deflated := 0
	for {
		msgs := g.ready()
		if len(msgs) == 0 {
			break
		}
		for _, m := range msgs {
			if m.GetBatches().Deflated != nil {
				deflated++
				if m.GetBatches().Batches != nil {
					t.Fatal("both deflated and plain batches")
				}
			}
			if err := g.s.Step(g.deliver(m)); err != nil {
				t.Fatal(err)
			}
		}
	}
	if deflated == 0 {
		t.Fatal("nothing was deflated")
	}
	g.requireConverged()
	// Bytes received count the inflated batches, as the sender counts
	// them: the two figures compare.
	if sent, got := g.s.Stats().BytesSent, g.r.Stats().Bytes; got == 0 || got != sent {
		t.Fatalf("receiver counted %d bytes, sender %d", got, sent)
	}
}

// Records the peer holds are left out; a read of nothing but held records
// sends nothing and counts as acknowledged.
func TestSkipsHeldRecords(t *testing.T) {
	g := newRig(t, SenderConfig{BatchRecords: 4}, crdt.LogLimits{})
	c := newTestReplica(originC, crdt.LogLimits{})
	// A holds 4 of its own, then 4 of C's (merged), then 4 of its own.
	g.writes(g.src, 4, "a")
	var cBatches [][]byte
	for i := 0; i < 4; i++ {
		g.write(c, "INCRBY", "c", "1")
		rec, _ := c.Log().Record(c.Log().Next() - 1)
		cBatches = append(cBatches, rec.Data)
		if out, err := g.src.Merge(rec.Data); out != crdt.Merged {
			t.Fatal(out, err)
		}
	}
	g.writes(g.src, 4, "a")
	// B already holds C's batches.
	for _, b := range cBatches {
		g.dst.Merge(b)
	}
	g.connect()
	var sent []uint64
	for {
		msgs := g.ready()
		if len(msgs) == 0 {
			break
		}
		for _, m := range msgs {
			b := m.GetBatches()
			for _, data := range b.Batches {
				o, first, _, _ := crdt.BatchHeader(data)
				if o == originC {
					t.Fatalf("sent C's batch %d, which the peer holds", first)
				}
			}
			sent = append(sent, b.FirstPos, b.LastPos)
			if err := g.s.Step(g.deliver(m)); err != nil {
				t.Fatal(err)
			}
		}
	}
	if fmt.Sprint(sent) != "[1 4 9 12]" {
		t.Fatalf("sent positions %v, want [1 4 9 12] (5..8 held)", sent)
	}
	st := g.s.Stats()
	if st.RecordsSkipped != 4 || st.AckedPos != 12 || st.LagRecords != 0 {
		t.Fatalf("stats %+v", st)
	}
	g.requireConverged()

	// The receiver also drops what its region holds by the time it reads
	// the message (another stream brought it).
	g.writes(g.src, 2, "a")
	msgs := g.ready()
	for i := 1; i <= 2; i++ {
		rec, _ := g.src.Log().Record(g.src.Log().Next() - uint64(3-i))
		g.dst.Merge(rec.Data)
	}
	p, err := g.r.Step(msgs[0])
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Batches) != 0 || g.r.Stats().Skipped != 2 {
		t.Fatalf("proposal %d batches, receiver stats %+v", len(p.Batches), g.r.Stats())
	}
}

// A peer lacking records the log trimmed gets a state transfer in chunks,
// joins it, and streaming resumes from there.
func TestTrimmedLogTransfers(t *testing.T) {
	g := newRig(t, SenderConfig{ChunkBytes: 64, MaxInFlight: 4}, crdt.LogLimits{MaxRecords: 5})
	for i := 0; i < 30; i++ {
		g.write(g.src, "SADD", "s", fmt.Sprintf("m%d", i))
	}
	g.connect()
	if g.s.State() != Transferring || !g.s.NeedsSnapshot() {
		t.Fatalf("state %s, needs snapshot %v", g.s.State(), g.s.NeedsSnapshot())
	}
	n := g.pump()
	st := g.s.Stats()
	if st.Transfers != 1 || g.s.State() != Streaming || n < 5 {
		t.Fatalf("after %d messages: state %s, stats %+v", n, g.s.State(), st)
	}
	g.requireConverged()
	if g.dst.Stats.Chunks < 5 || g.dst.Stats.Transfers != 1 {
		t.Fatalf("receiver %+v", g.dst.Stats)
	}
	// Streaming resumes: new writes arrive as batches.
	g.writes(g.src, 3, "after")
	msgs := g.ready()
	if len(msgs) != 1 || len(msgs[0].GetBatches().GetBatches()) != 3 {
		t.Fatalf("after the transfer: %v", msgs)
	}
	g.s.Step(g.deliver(msgs[0]))
	g.requireConverged()
}

// A transfer interrupted mid-way resumes: the Hello names the transfer,
// the Welcome says how much is staged, the sender continues from there.
func TestTransferResumes(t *testing.T) {
	g := newRig(t, SenderConfig{ChunkBytes: 32, MaxInFlight: 2}, crdt.LogLimits{MaxRecords: 3})
	for i := 0; i < 20; i++ {
		g.write(g.src, "HSET", "h", fmt.Sprintf("f%d", i), "v")
	}
	g.connect()
	msgs := g.ready()
	if len(msgs) != 2 {
		t.Fatalf("%d chunks", len(msgs))
	}
	if err := g.s.Step(g.deliver(msgs[0])); err != nil {
		t.Fatal(err)
	}
	g.deliver(msgs[1]) // staged, but its ack is lost with the stream
	id := msgs[0].GetChunk().TransferId
	if n, ok := g.dst.Staged(g.src.Keyspace().Origin().Region, id); !ok || n != 64 {
		t.Fatalf("staged %d %v", n, ok)
	}
	g.s.Disconnected()

	g.s.Connected()
	h := g.ready()[0].GetHello()
	if h.TransferId != id {
		t.Fatalf("Hello names transfer %x, want %x", h.TransferId, id)
	}
	g.r = NewReceiver(originB, "b", viewOf(&g.dst))
	w, err := g.r.Hello(h, g.now)
	if err != nil {
		t.Fatal(err)
	}
	if wl := w.GetWelcome(); wl.TransferId != id || wl.TransferOffset != 64 {
		t.Fatalf("Welcome names %x at %d", wl.TransferId, wl.TransferOffset)
	}
	if err := g.s.Step(w); err != nil {
		t.Fatal(err)
	}
	if next := g.ready(); next[0].GetChunk().Offset != 64 {
		t.Fatalf("resumed at %d, want 64", next[0].GetChunk().Offset)
	} else {
		for _, m := range next {
			if err := g.s.Step(g.deliver(m)); err != nil {
				t.Fatal(err)
			}
		}
	}
	g.pump()
	g.requireConverged()
	// The resumed stream is the second established: one resync.
	if st := g.s.Stats(); st.Transfers != 1 || st.Streams != 2 {
		t.Fatalf("stats %+v", st)
	}
}

// The log trims past the stream while messages are in flight: the sender
// switches to a transfer, and the acknowledgements of what it had already
// sent must not break the stream.
func TestTrimmedWhileInFlight(t *testing.T) {
	g := newRig(t, SenderConfig{MaxInFlight: 2, BatchRecords: 2, ChunkBytes: 64}, crdt.LogLimits{MaxRecords: 6})
	g.writes(g.src, 4, "k")
	g.connect()
	first := g.ready() // positions 1..2 and 3..4 in flight
	if len(first) != 2 {
		t.Fatalf("%d messages", len(first))
	}
	g.writes(g.src, 20, "k") // the log now holds 19..24 only
	var acks []*pb.Pull
	for _, m := range first {
		acks = append(acks, g.deliver(m))
	}
	if err := g.s.Step(acks[0]); err != nil {
		t.Fatal(err)
	}
	// The window has room: the sender reads position 5, finds it trimmed
	// and turns to a state transfer.
	more := g.ready()
	if g.s.State() != Transferring {
		t.Fatalf("state %s after the trim", g.s.State())
	}
	if err := g.s.Step(acks[1]); err != nil {
		t.Fatalf("ack of a message sent before the trim: %v", err)
	}
	for _, m := range more {
		if err := g.s.Step(g.deliver(m)); err != nil {
			t.Fatal(err)
		}
	}
	g.pump()
	g.requireConverged()
}

// The sender's region joins a transfer from C mid-stream, so its log has a
// gap for C (C:1..3 came by state, C:4 as a batch). The live stream ships
// C:4 to a peer lacking C:1..3: the receiver's region refuses it, Done ends
// the stream, and the next stream starts with a transfer.
func TestGapAfterSenderJoinedTransfer(t *testing.T) {
	g := newRig(t, SenderConfig{ChunkBytes: 1 << 20}, crdt.LogLimits{})
	g.writes(g.src, 2, "a")
	g.connect()
	g.pump()
	c := newTestReplica(originC, crdt.LogLimits{})
	g.writes(c, 3, "c")
	data, _, _ := viewOf(&c).Snapshot()
	if _, joined, err := g.src.StageChunk(crdt.Chunk{ID: 9, Data: data, Final: true}); !joined || err != nil {
		t.Fatal(joined, err)
	}
	g.writes(c, 1, "c")
	rec, _ := c.Log().Record(c.Log().Next() - 1)
	if out, _ := g.src.Merge(rec.Data); out != crdt.Merged {
		t.Fatal(out)
	}
	msgs := g.ready()
	if len(msgs) != 1 {
		t.Fatalf("%d messages", len(msgs))
	}
	p, err := g.r.Step(msgs[0])
	if err != nil {
		t.Fatal(err)
	}
	if _, err := g.r.Done(applyProposal(g.dst, p), g.now); err == nil {
		t.Fatal("the receiver acknowledged a batch its region refused")
	}
	g.s.Disconnected()
	g.connect()
	if !g.s.NeedsSnapshot() {
		t.Fatalf("state %s: a peer lacking C:1..3 must get a transfer", g.s.State())
	}
	g.pump()
	g.requireConverged()
}

// TestSenderOwnAhead: a peer whose Welcome, or later an Ack, holds the
// sender's own origin beyond what the sender's state has (the state went
// back: restored from an older copy) ends the stream with an
// OwnAheadError naming the origin and both sequences; under a new origin
// (SetOrigin after a renewal) the handshake succeeds and the new writes
// reach the peer, the old origin's writes included.
func TestSenderOwnAhead(t *testing.T) {
	g := newRig(t, SenderConfig{}, crdt.LogLimits{})
	full := g.src
	g.writes(full, 5, "c")
	g.connect()
	g.pump()
	g.requireConverged()

	// The sender's region goes back to a copy holding 2 of its 5 writes.
	old := newTestReplica(originA, crdt.LogLimits{})
	g.writes(old, 2, "c")
	g.src = old
	g.s.Disconnected()
	g.s.Connected()
	msgs := g.ready()
	g.r = NewReceiver(originB, "b", viewOf(&g.dst))
	w, err := g.r.Hello(msgs[0].GetHello(), g.now)
	if err != nil {
		t.Fatal(err)
	}
	var own *OwnAheadError
	if err := g.s.Step(w); !errors.As(err, &own) || own.Origin != originA || own.Peer != 5 || own.Local != 2 {
		t.Fatalf("Welcome with our origin ahead: Step = %v, want an OwnAheadError for %v at 5 > 2", err, originA)
	}
	if g.s.State() != Disconnected || g.s.Stats().OwnAhead != 1 {
		t.Fatalf("after OwnAheadError: state %s, OwnAhead %d", g.s.State(), g.s.Stats().OwnAhead)
	}

	// Noticed in an Ack: the peer learns of the lost writes mid-stream
	// (here merged straight from the full copy) while the sender ships
	// a write reissuing sequence 3.
	g2 := newRig(t, SenderConfig{}, crdt.LogLimits{})
	g2.writes(g2.src, 2, "c")
	g2.connect()
	g2.pump()
	src5 := newTestReplica(originA, crdt.LogLimits{})
	g2.writes(src5, 5, "c")
	recs, _ := src5.Log().Read(nil, 3, 10, 1<<20)
	for _, r := range recs {
		if out, err := g2.dst.Merge(r.Data); out != crdt.Merged {
			t.Fatalf("merge of lost write: %v %v", out, err)
		}
	}
	g2.write(g2.src, "SET", "k", "reissued") // sequence 3 again: the peer skips it
	batch := g2.ready()
	if len(batch) != 1 {
		t.Fatalf("%d messages, want one batch", len(batch))
	}
	if err := g2.s.Step(g2.deliver(batch[0])); !errors.As(err, &own) || own.Peer != 5 || own.Local != 3 {
		t.Fatalf("Ack with our origin ahead: Step = %v, want an OwnAheadError at 5 > 3", err)
	}

	// Renewed: a new origin, whose writes the peer takes.
	renewed := crdt.Origin{Region: originA.Region, Incarnation: 2}
	if err := g.src.FixOrigin(renewed); err != nil {
		t.Fatal(err)
	}
	g.s.SetOrigin(renewed)
	g.write(g.src, "INCRBY", "c", "10")
	g.connect()
	if h := g.s.Origin(); h != renewed {
		t.Fatalf("sender origin %v", h)
	}
	g.pump()
	if got := g.dst.Keyspace().Version().Get(renewed); got != 1 {
		t.Fatalf("peer holds %d writes of the new origin, want 1", got)
	}
	if v := g.dst.Keyspace().Read(0, testEpoch, 1, testArgs("GET", "c")); string(v.Str) != "15" {
		t.Fatalf("peer's c = %q, want 15 (5 old writes + the new one)", v.Str)
	}
}

// A ZINCRBY whose result equals the current score (an increment of 0, or
// one lost to float absorption) used to ship as EffZAdd of the current
// score, an overwrite that cancels the increments it observed; of two such
// concurrent writes the later one cancelled increments it never saw (found
// by simulations.TestSimConcurrentWrites/5-hostile, seed 5093). It ships as EffZIncr
// now; crdt's TestZeroIncrementsStillAddUp covers the other counters.
func TestZIncrByZeroAddsUpAcrossRegions(t *testing.T) {
	g := newRig(t, SenderConfig{}, crdt.LogLimits{})
	a, b := g.src, g.dst
	sync := func(from, to *crdt.Replica) {
		l := from.Log()
		recs, _ := l.Read(nil, l.First(), 1<<30, 1<<30)
		for _, r := range recs {
			to.Merge(r.Data)
		}
	}
	g.write(a, "ZINCRBY", "z", "5", "m")
	sync(a, b)
	g.write(b, "ZINCRBY", "z", "3", "m") // a does not see it
	g.write(b, "ZINCRBY", "z", "0", "m")
	g.write(a, "ZINCRBY", "z", "0", "m") // stamped after b's
	sync(a, b)
	sync(b, a)
	for _, rep := range []*crdt.Replica{a, b} {
		if r := rep.Keyspace().Read(0, testEpoch, 0, testArgs("ZSCORE", "z", "m")); r.Float != 8 {
			t.Errorf("region %d: ZSCORE = %v, want 5+3+0+0 = 8", rep.Keyspace().Origin().Region, r.Float)
		}
	}
}

// A state transfer slower than the log's turnover converges: the writes
// made during the transfer are trimmed from the log before the peer joins
// the snapshot, and the stream after the transfer starts where the
// snapshot ends, from the records the sender kept aside. (Asking the log
// for the peer's new vector failed and started another transfer, forever
// under steady writes.)
func TestSlowTransferConvergesUnderSteadyWrites(t *testing.T) {
	g := newRig(t, SenderConfig{ChunkBytes: 48, MaxInFlight: 1}, crdt.LogLimits{MaxRecords: 5})
	for i := 0; i < 30; i++ {
		g.write(g.src, "SADD", "s", fmt.Sprintf("m%d", i))
	}
	g.connect()
	snapshots := 0
	for round := 0; round < 400; round++ {
		if g.s.NeedsSnapshot() {
			snapshots++
		}
		for _, m := range g.ready() {
			if err := g.s.Step(g.deliver(m)); err != nil {
				t.Fatal(err)
			}
		}
		// Two writes per message: the log (5 records) turns over every
		// three chunks, the transfer takes many more.
		g.write(g.src, "INCR", "n")
		g.write(g.src, "SADD", "s", fmt.Sprintf("w%d", round))
	}
	g.pump()
	if snapshots != 1 || g.s.Stats().Transfers != 1 || g.s.State() != Streaming {
		t.Fatalf("%d snapshots, stats %+v, state %s", snapshots, g.s.Stats(), g.s.State())
	}
	if g.dst.Stats.Transfers != 1 || g.dst.Stats.Chunks < 10 {
		t.Fatalf("receiver %+v: the transfer was not slower than the log", g.dst.Stats)
	}
	g.requireConverged()
	if st := g.s.Stats(); st.TailRecords != 0 {
		t.Fatalf("the sender still keeps %d records aside after catching up", st.TailRecords)
	}
}

// The records kept aside are bounded: over TailBytes the tail is given up
// and the stream after the transfer falls back to the log (here: another
// transfer, which converges once writes stop).
func TestTransferTailBounded(t *testing.T) {
	g := newRig(t, SenderConfig{ChunkBytes: 48, MaxInFlight: 1, TailBytes: 200}, crdt.LogLimits{MaxRecords: 5})
	for i := 0; i < 30; i++ {
		g.write(g.src, "SADD", "s", fmt.Sprintf("m%d", i))
	}
	g.connect()
	for round := 0; round < 40; round++ {
		for _, m := range g.ready() {
			if err := g.s.Step(g.deliver(m)); err != nil {
				t.Fatal(err)
			}
		}
		g.write(g.src, "SADD", "s", fmt.Sprintf("w%d", round))
		if st := g.s.Stats(); st.TailLost == 0 && st.TailRecords*8 > 400 {
			t.Fatalf("tail of %d records kept past its bound", st.TailRecords)
		}
	}
	g.pump()
	if st := g.s.Stats(); st.TailLost == 0 || st.Transfers < 2 {
		t.Fatalf("stats %+v: the tail should have been given up", st)
	}
	g.requireConverged()
}

// TestRejectionsNameTheirReason: a batch the region refuses ends the
// stream with an error naming why (corrupt, gap, missing dependency, own
// origin), counted by reason; a corrupt batch, whether its header or its
// body is broken, is never applied and never crashes the receiver (a
// hostile or broken peer).
func TestRejectionsNameTheirReason(t *testing.T) {
	src := newTestReplica(originA, crdt.LogLimits{})
	third := newTestReplica(originC, crdt.LogLimits{})
	stamp := int64(testEpoch)
	write := func(rep *crdt.Replica, args ...string) []byte {
		stamp++
		rep.Apply(crdt.Stamp{Time: crdt.HLCFromMillis(stamp)}, []crdt.Command{{Args: testArgs(args...)}})
		r, _ := rep.Log().Record(rep.Log().Next() - 1)
		return r.Data
	}
	b1 := write(src, "SET", "a", "1")
	b2 := write(src, "SET", "a", "2")
	c1 := write(third, "SET", "c", "1")
	if _, err := src.Merge(c1); err != nil {
		t.Fatal(err)
	}
	dep := write(src, "SET", "a", "3") // depends on c1
	corruptBody := append([]byte(nil), b1...)
	for i := len(corruptBody) - 4; i < len(corruptBody); i++ {
		corruptBody[i] ^= 0xff
	}
	if _, _, _, err := crdt.BatchHeader(corruptBody); err != nil {
		t.Fatalf("the corrupt-body batch must keep a valid header: %v", err)
	}
	if _, err := crdt.DecodeBatch(corruptBody); err == nil {
		t.Fatal("the corrupt-body batch decodes")
	}
	for _, c := range []struct {
		name    string
		batches [][]byte
		reason  crdt.RejectReason
		atStep  bool // refused by the receiver before proposing
	}{
		{"gap", [][]byte{b2}, crdt.RejectGap, false},
		{"missing dependency", [][]byte{b1, b2, dep}, crdt.RejectMissingDeps, false},
		{"corrupt body", [][]byte{corruptBody}, crdt.RejectCorrupt, false},
		{"corrupt header", [][]byte{{0xff, 0x01, 0x02}}, crdt.RejectCorrupt, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			dst := newTestReplica(originB, crdt.LogLimits{})
			r := NewReceiver(originB, "b", viewOf(&dst))
			if _, err := r.Hello(hello(nil), testEpoch); err != nil {
				t.Fatal(err)
			}
			before := dst.Keyspace().Digest()
			p, err := r.Step(&pb.Push{Msg: &pb.Push_Batches{Batches: &pb.Batches{FirstPos: 1, LastPos: uint64(len(c.batches)), Batches: c.batches}}})
			if err == nil {
				if c.atStep {
					t.Fatal("Step accepted a batch whose header does not decode")
				}
				_, err = r.Done(applyProposal(dst, p), testEpoch)
			}
			var rej *RejectError
			if !errors.As(err, &rej) || rej.Reason != c.reason || !strings.Contains(err.Error(), string(c.reason)) {
				t.Fatalf("error %v, want a RejectError naming %s", err, c.reason)
			}
			idx := -1
			for i, x := range crdt.RejectReasons {
				if x == c.reason {
					idx = i
				}
			}
			var total uint64
			for _, n := range r.Stats().Rejected {
				total += n
			}
			if r.Stats().Rejected[idx] != 1 || total != 1 {
				t.Fatalf("rejections counted %v", r.Stats().Rejected)
			}
			if c.reason == crdt.RejectMissingDeps {
				return // b1 and b2 merged before dep was refused
			}
			if dst.Keyspace().Digest() != before || dst.Log().Len() != 0 {
				t.Fatal("a refused batch changed the state")
			}
		})
	}
	// The gRPC status names the reason; corrupt input is the sender's fault.
	s := NewService(nil, "b", nil, nil, nil)
	st, _ := status.FromError(s.streamError(hello(nil), &RejectError{Peer: originA, Reason: crdt.RejectCorrupt, Detail: "x"}))
	if st.Code() != codes.InvalidArgument || !strings.Contains(st.Message(), "corrupt") {
		t.Fatalf("status %v", st)
	}
	st, _ = status.FromError(s.streamError(hello(nil), &RejectError{Peer: originA, Reason: crdt.RejectGap}))
	if st.Code() != codes.Aborted || !strings.Contains(st.Message(), "gap") {
		t.Fatalf("status %v", st)
	}
}

// The node holding a stream may be a follower of its region: the unit is
// applied by the leader first and the follower's view lags. The Ack must
// still say the batches are applied (else the sender learns it only from
// the next ping, and WAITREGIONS waits that long).
func TestAckCoversAppliedBatchesWhenViewLags(t *testing.T) {
	g := newRig(t, SenderConfig{}, crdt.LogLimits{})
	g.writes(g.src, 3, "k")
	lagging := newTestReplica(originB, crdt.LogLimits{}) // a follower that applied nothing yet
	g.s.Connected()
	g.r = NewReceiver(originB, "b", viewOf(&lagging))
	w, err := g.r.Hello(g.ready()[0].GetHello(), g.now)
	if err != nil {
		t.Fatal(err)
	}
	if err := g.s.Step(w); err != nil {
		t.Fatal(err)
	}
	msgs := g.ready()
	if len(msgs) != 1 {
		t.Fatalf("%d messages, want 1", len(msgs))
	}
	p, err := g.r.Step(msgs[0])
	if err != nil {
		t.Fatal(err)
	}
	ack, err := g.r.Done(applyProposal(g.dst, p), g.now) // applied by the region's leader
	if err != nil {
		t.Fatal(err)
	}
	vv, err := VVFromPB(ack.GetAck().Vv)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := vv.Get(originA), g.src.Keyspace().Version().Get(originA); got != want {
		t.Fatalf("Ack vv[A] = %d, want %d (the batches the region applied)", got, want)
	}
	if err := g.s.Step(ack); err != nil {
		t.Fatal(err)
	}
	if got := g.s.Stats().PeerVV.Get(originA); got != 3 {
		t.Fatalf("sender's peer vv[A] = %d, want 3", got)
	}
}

// TestLargestValueFitsOneMessage: a write of the largest value a client
// may send (proto-max-bulk-len, 512 MiB) becomes one record that the
// sender ships whole, in one message within MaxMessageBytes, and the
// receiver merges it.
func TestLargestValueFitsOneMessage(t *testing.T) {
	if testing.Short() {
		t.Skip("allocates a few GiB")
	}
	const maxBulk = 512 << 20 // server.DefaultProtoMaxBulkLen
	// Uncompressed: the worst case, a value that does not compress.
	g := newRig(t, SenderConfig{DeflateMin: -1}, crdt.LogLimits{MaxBytes: 1 << 20})
	g.write(g.src, "SET", "big", strings.Repeat("v", maxBulk))
	g.connect()
	msgs := g.ready()
	if len(msgs) != 1 || len(msgs[0].GetBatches().GetBatches()) != 1 {
		t.Fatalf("%d messages for one record", len(msgs))
	}
	if n := proto.Size(msgs[0]); n > MaxMessageBytes {
		t.Fatalf("a %d-byte value makes a %d-byte message, over MaxMessageBytes %d", maxBulk, n, MaxMessageBytes)
	}
	if err := g.s.Step(g.deliver(msgs[0])); err != nil {
		t.Fatal(err)
	}
	g.requireConverged()
}

// testEpoch is the wall clock the core tests run at (2026-01-01).
const testEpoch = 1_767_225_600_000

func testArgs(args ...string) [][]byte {
	out := make([][]byte, len(args))
	for i, a := range args {
		out[i] = []byte(a)
	}
	return out
}
