package replication

import (
	"errors"
	"fmt"

	"concord/crdt"
	pb "concord/proto"
)

// Log is the sender's read-only view of its own region's replicated state:
// the replication log and the version vector of the state it belongs to.
// Calls are made from the sender's goroutine only; an implementation reads
// the region's state under its read lock.
type Log interface {
	// Version returns the region's applied version vector.
	Version() crdt.VersionVector
	// Start returns the position from which a peer holding peer must be
	// streamed (crdt.EffectLog.Start against Version); ok is false if the
	// peer needs a state transfer first.
	Start(peer crdt.VersionVector) (pos uint64, ok bool)
	// Read returns records from pos on (crdt.EffectLog.Read).
	Read(dst []crdt.LogRecord, pos uint64, maxRecords, maxBytes int) ([]crdt.LogRecord, error)
	// Next returns the position the next record will get, First the
	// position of the oldest record kept.
	Next() uint64
	First() uint64
}

// SenderConfig tunes a Sender. Zero fields take the defaults.
type SenderConfig struct {
	// MaxInFlight is how many messages may await an acknowledgement, and
	// MaxInFlightBytes how many bytes of payload they may hold together
	// (one message may pass it, so a record bigger than it still goes).
	MaxInFlight      int
	MaxInFlightBytes int
	// BatchRecords and BatchBytes bound one Batches message.
	BatchRecords int
	BatchBytes   int
	// ChunkBytes is the size of a state-transfer chunk.
	ChunkBytes int
	// HelloTimeout and AckTimeout (milliseconds of the clock Tick is fed)
	// bound how long the sender waits for a Welcome, and for the oldest
	// message in flight to be acknowledged, before it asks for the stream
	// to be reset.
	HelloTimeout int64
	AckTimeout   int64
	// DeflateMin is the payload size from which Batches are compressed;
	// negative disables compression.
	DeflateMin int
	// PingInterval is how long a stream may stay idle before the sender
	// pings, so the peer's version vector, the round trip and the clock
	// offset stay fresh.
	PingInterval int64
	// Keepalive is how long a stream may go without any message from the
	// peer (an ack, or the answer to a ping, which the sender sends every
	// PingInterval while idle) before the sender asks for a reset. It
	// notices a dead link long before AckTimeout or gRPC's keepalive,
	// which gRPC holds at 10 s or more (twice that before it acts).
	Keepalive int64
	// TailBytes bounds the log records a sender keeps aside, from the
	// position its snapshot was taken at, while a state transfer runs and
	// until the stream after it has caught up with the log (see keepTail).
	// Negative disables keeping them.
	TailBytes int
}

// Defaults. Batches of about 64 effects with several messages in flight
// reached 1.6M effects/s over a loopback gRPC stream on our machines
// (MEASURED.md); acknowledgements per message keep the window honest.
// The window is mostly a byte budget: the shipper sends a message as soon
// as a record is logged, so at a steady write rate messages are small and
// many, and a window of few messages held records back a whole round trip
// once the round trip exceeded the time it took to fill it (8 messages
// gave 90 ms of lag p50 over a 50 ms link at 20k writes/s; docs/bench.md).
const (
	DefaultMaxInFlight      = 256
	DefaultMaxInFlightBytes = 8 << 20
	DefaultBatchRecords     = 256
	DefaultBatchBytes       = 256 << 10
	DefaultChunkBytes       = 1 << 20
	DefaultHelloTimeout     = 10_000
	DefaultAckTimeout       = 30_000
	DefaultDeflateMin       = 4 << 10
	DefaultPingInterval     = 1_000
	DefaultKeepalive        = 5_000
	DefaultTailBytes        = 64 << 20 // the default replication log size
)

func (c SenderConfig) withDefaults() SenderConfig {
	if c.MaxInFlight <= 0 {
		c.MaxInFlight = DefaultMaxInFlight
	}
	if c.MaxInFlightBytes <= 0 {
		c.MaxInFlightBytes = DefaultMaxInFlightBytes
	}
	if c.BatchRecords <= 0 {
		c.BatchRecords = DefaultBatchRecords
	}
	if c.BatchBytes <= 0 {
		c.BatchBytes = DefaultBatchBytes
	}
	if c.ChunkBytes <= 0 {
		c.ChunkBytes = DefaultChunkBytes
	}
	if c.HelloTimeout <= 0 {
		c.HelloTimeout = DefaultHelloTimeout
	}
	if c.AckTimeout <= 0 {
		c.AckTimeout = DefaultAckTimeout
	}
	if c.DeflateMin == 0 {
		c.DeflateMin = DefaultDeflateMin
	}
	if c.PingInterval <= 0 {
		c.PingInterval = DefaultPingInterval
	}
	if c.Keepalive <= 0 {
		c.Keepalive = DefaultKeepalive
	}
	if c.TailBytes == 0 {
		c.TailBytes = DefaultTailBytes
	}
	return c
}

// SenderState is where a Sender's stream stands.
type SenderState int

// Sender states.
const (
	Disconnected SenderState = iota // no stream
	Handshaking                     // Hello sent, waiting for Welcome
	Streaming                       // shipping log records
	Transferring                    // shipping a state snapshot
)

func (s SenderState) String() string {
	switch s {
	case Disconnected:
		return "disconnected"
	case Handshaking:
		return "handshaking"
	case Streaming:
		return "streaming"
	case Transferring:
		return "transferring"
	}
	return fmt.Sprintf("state(%d)", int(s))
}

// Sender is the deterministic core of shipping one region's log to one
// peer region, in the style of etcd-io/raft: the caller feeds it events
// (Connected, Step with each received message, Tick with its clock, and
// Disconnected) and then calls Ready to collect the messages to send. It
// reads the log through Log and never blocks, sleeps, reads a clock or
// does I/O, so a simulation drives it exactly as the gRPC adapter does.
//
// A Sender is not safe for concurrent use.
type Sender struct {
	cfg  SenderConfig
	log  Log
	self crdt.Origin
	name string
	peer uint32 // the peer's region id

	state SenderState
	now   int64 // latest Tick, milliseconds
	since int64 // when the current state began

	protocol uint32
	peerVV   crdt.VersionVector // what the peer is known to hold
	peerInc  uint32             // the peer's incarnation, from Welcome
	next     uint64             // next log position to look at
	acked    uint64             // every position up to here is at the peer
	inflight []flight

	xfer         *transfer
	wantSnapshot bool
	xferSeq      uint64

	// tail holds the log records from the position a transfer's snapshot
	// reached (tail[0] onwards, contiguous, up to tailNext), copied aside
	// as the log grows so that the stream after the transfer can start
	// there even if the log has meanwhile trimmed them (see keepTail).
	tail      []crdt.LogRecord
	tailOn    bool // keeping a tail
	tailNext  uint64
	tailBytes int

	out       []*pb.Push
	scratch   []crdt.LogRecord
	lastSent  int64 // when the latest message was sent
	lastHeard int64 // when the latest message from the peer arrived (or the stream began)

	// reports are version vectors the peer reported, at most one per
	// reportSpacing ms, oldest first: causal-stability GC needs one the
	// local region has caught up with, which the newest rarely is while
	// writes flow.
	reports []report

	stats SenderStats
}

// flight is a message awaiting its Ack.
type flight struct {
	lastPos uint64 // the message's last_pos (what the Ack names)
	coverTo uint64 // positions known held once it is acked (skips after it)
	sentMs  int64
	timeMs  int64 // HLC milliseconds of its newest batch (0: none)
	chunk   bool
	ping    bool
	offset  uint64 // chunk: end offset
	bytes   int    // payload carried
}

// windowOpen reports whether another message may be sent.
func (s *Sender) windowOpen() bool {
	if len(s.inflight) >= s.cfg.MaxInFlight {
		return false
	}
	n := 0
	for i := range s.inflight {
		n += s.inflight[i].bytes
	}
	return n < s.cfg.MaxInFlightBytes
}

type report struct {
	ms int64
	vv crdt.VersionVector
}

// Bounds of the report history: 64 reports 250 ms apart cover 16 s of
// replication lag.
const (
	reportSpacing = 250
	maxReports    = 64
)

// noteReport records a version vector the peer reported as applied.
func (s *Sender) noteReport(vv crdt.VersionVector) {
	if n := len(s.reports); n > 0 && (s.now-s.reports[n-1].ms < reportSpacing || s.reports[n-1].vv.Equal(vv)) {
		return
	}
	if len(s.reports) == maxReports {
		copy(s.reports, s.reports[1:])
		s.reports = s.reports[:maxReports-1]
	}
	s.reports = append(s.reports, report{ms: s.now, vv: vv.Clone()})
}

// Applied returns the newest version vector the peer reported as applied
// in its region that local dominates, and false if none does. Every op the
// peer issued before it reached that vector is then applied locally too:
// the condition causal-stability garbage collection needs of each peer.
func (s *Sender) Applied(local crdt.VersionVector) (crdt.VersionVector, bool) {
	for i := len(s.reports) - 1; i >= 0; i-- {
		if local.Dominates(s.reports[i].vv) {
			return s.reports[i].vv.Clone(), true
		}
	}
	return nil, false
}

// transfer is a state snapshot being shipped.
type transfer struct {
	id      uint64
	data    []byte
	vv      crdt.VersionVector
	sent    uint64 // bytes sent in this stream
	acked   uint64 // bytes the peer has staged
	takenMs int64
	pin     uint64 // log position the snapshot reached: records from here on are not in it
}

// SenderStats describe a Sender for metrics and INFO. Times are in the
// clock Tick is fed.
type SenderStats struct {
	State          SenderState
	PeerVV         crdt.VersionVector
	AckedPos       uint64 // every log position up to here is at the peer
	NextPos        uint64 // the log's next position
	InFlight       int
	LagRecords     uint64 // log records not yet known to be at the peer
	OldestUnacked  int64  // HLC ms of the oldest batch sent and not acked (0: none)
	LastAckMs      int64
	RTTMs          int64 // round trip of the latest acknowledged message
	ClockOffsetMs  int64 // peer's clock minus ours, from the latest ack
	BatchesSent    uint64
	BytesSent      uint64
	RecordsSkipped uint64 // records the peer already held
	Transfers      uint64 // state transfers completed
	TransferBytes  uint64 // snapshot bytes sent
	TransferSize   uint64 // size of the transfer in progress (0: none)
	TransferAcked  uint64 // bytes of it staged at the peer
	Resets         uint64 // streams the sender asked to reset
	Streams        uint64 // streams established (Welcome accepted); all but the first are resyncs
	OwnAhead       uint64 // streams ended by an OwnAheadError
	Silent         uint64 // streams reset because the peer was silent for Keepalive
	TailRecords    int    // log records kept aside for the stream after a transfer
	TailLost       uint64 // tails given up (over TailBytes, or trimmed before kept)
}

// NewSender returns a sender of self's log to the region peer.
func NewSender(cfg SenderConfig, log Log, self crdt.Origin, name string, peer uint32) *Sender {
	return &Sender{cfg: cfg.withDefaults(), log: log, self: self, name: name, peer: peer}
}

// SetOrigin changes the origin the sender's region writes under (it moves
// when the region renews its incarnation). The caller sets it before each
// Connected from the region's current origin: Hello announces it, and
// the peer's vectors are checked against it (OwnAheadError).
func (s *Sender) SetOrigin(o crdt.Origin) { s.self = o }

// Origin returns the origin set by NewSender or SetOrigin.
func (s *Sender) Origin() crdt.Origin { return s.self }

// State returns the stream's state.
func (s *Sender) State() SenderState { return s.state }

// Stats returns the sender's figures.
func (s *Sender) Stats() SenderStats {
	st := s.stats
	st.State = s.state
	st.PeerVV = s.peerVV.Clone()
	st.AckedPos = s.acked
	st.NextPos = s.log.Next()
	st.InFlight = len(s.inflight)
	if st.NextPos > s.acked+1 {
		st.LagRecords = st.NextPos - s.acked - 1
	}
	for _, f := range s.inflight {
		if f.timeMs != 0 {
			st.OldestUnacked = f.timeMs
			break
		}
	}
	if s.xfer != nil {
		st.TransferSize = uint64(len(s.xfer.data))
		st.TransferAcked = s.xfer.acked
	}
	st.TailRecords = len(s.tail)
	return st
}

// Tick advances the sender's clock (milliseconds, monotonic).
func (s *Sender) Tick(nowMs int64) {
	if nowMs > s.now {
		s.now = nowMs
	}
}

// Connected starts a stream: the sender says Hello.
func (s *Sender) Connected() {
	s.reset()
	s.state, s.since = Handshaking, s.now
	s.lastHeard = s.now
	s.out = append(s.out, &pb.Push{Msg: &pb.Push_Hello{Hello: &pb.Hello{
		MinProtocol: MinProtocol, MaxProtocol: MaxProtocol,
		Region: s.self.Region, Incarnation: s.self.Incarnation, Name: s.name,
		ToRegion: s.peer, WallMs: s.now, TransferId: s.heldTransfer(),
	}}})
}

// heldTransfer names the snapshot the sender still holds, so the peer can
// say how much of it it staged.
func (s *Sender) heldTransfer() uint64 {
	if s.xfer != nil {
		return s.xfer.id
	}
	return 0
}

// Disconnected ends the stream. What the peer acknowledged is kept; what
// was in flight will be sent again from the peer's version vector.
func (s *Sender) Disconnected() {
	s.reset()
	s.state, s.since = Disconnected, s.now
}

func (s *Sender) reset() {
	s.inflight = s.inflight[:0]
	s.out = s.out[:0]
	if s.xfer != nil {
		s.xfer.sent = s.xfer.acked
	}
}

// Protocol errors: the stream must be reset.
var (
	ErrProtocol = errors.New("replication: protocol violation")
	ErrVersion  = errors.New("replication: no protocol version in common")
)

// OwnAheadError ends a stream whose peer reported (in its Welcome or an
// Ack) a vector holding the sender's own current origin at a sequence
// beyond the one the sender's log has applied: the peer holds writes of
// this origin that this region lost (its state was restored from an older
// copy). Writing on under that origin would reissue sequence numbers the
// peer holds for other writes, and the peer would skip the new writes as
// duplicates. The region must take a new incarnation (after making sure
// its view is current: a leader just elected may not have applied its
// predecessor's last writes yet) before streaming again.
type OwnAheadError struct {
	Origin crdt.Origin // the origin the check was made against
	Peer   uint64      // the peer's sequence for Origin
	Local  uint64      // the sender's log's sequence for Origin
}

func (e *OwnAheadError) Error() string {
	return fmt.Sprintf("replication: the peer holds writes of this region's origin %s up to %d, this region only up to %d: it lost writes and needs a new incarnation",
		e.Origin, e.Peer, e.Local)
}

// checkOwn returns an OwnAheadError if vv holds the sender's own origin
// beyond the local vector.
func (s *Sender) checkOwn(vv crdt.VersionVector) error {
	peer := vv.Get(s.self)
	if peer == 0 {
		return nil
	}
	if local := s.log.Version().Get(s.self); peer > local {
		s.stats.OwnAhead++
		return &OwnAheadError{Origin: s.self, Peer: peer, Local: local}
	}
	return nil
}

// Step handles a message from the receiver. An error means the stream is
// unusable (the caller resets it); the sender's state is then as after
// Disconnected.
func (s *Sender) Step(m *pb.Pull) error {
	s.lastHeard = s.now
	var err error
	switch msg := m.GetMsg().(type) {
	case *pb.Pull_Welcome:
		err = s.welcome(msg.Welcome)
	case *pb.Pull_Ack:
		err = s.ack(msg.Ack)
	default:
		err = fmt.Errorf("%w: unknown message", ErrProtocol)
	}
	if err != nil {
		s.Disconnected()
	}
	return err
}

func (s *Sender) welcome(w *pb.Welcome) error {
	if s.state != Handshaking {
		return fmt.Errorf("%w: Welcome while %s", ErrProtocol, s.state)
	}
	if w.Protocol < MinProtocol || w.Protocol > MaxProtocol {
		return fmt.Errorf("%w: peer chose %d, we speak %d..%d", ErrVersion, w.Protocol, MinProtocol, MaxProtocol)
	}
	if w.Region != s.peer {
		return fmt.Errorf("%w: expected region %d, reached region %d", ErrProtocol, s.peer, w.Region)
	}
	vv, err := VVFromPB(w.Vv)
	if err != nil {
		return err
	}
	if err := s.checkOwn(vv); err != nil {
		return err
	}
	s.protocol = w.Protocol
	s.peerInc = w.Incarnation
	s.peerVV = vv
	s.noteReport(vv)
	s.stats.ClockOffsetMs = w.WallMs - s.now // includes the one-way delay; refined by acks
	if s.xfer != nil && w.TransferId == s.xfer.id && w.TransferOffset > 0 && w.TransferOffset <= uint64(len(s.xfer.data)) {
		// The peer staged part of this transfer: resume it.
		s.xfer.acked, s.xfer.sent = w.TransferOffset, w.TransferOffset
		s.state, s.since = Transferring, s.now
		s.stats.Streams++
		return nil
	}
	s.startFromVV()
	s.stats.Streams++
	return nil
}

// startFromVV positions the stream for the peer's version vector, or
// starts a state transfer if the log cannot serve it.
func (s *Sender) startFromVV() {
	s.dropTail()
	pos, ok := s.log.Start(s.peerVV)
	if ok {
		s.xfer = nil
		s.state, s.since = Streaming, s.now
		s.next = pos
		s.acked = pos - 1
		return
	}
	s.state, s.since = Transferring, s.now
	s.xfer = nil
	s.wantSnapshot = true
}

// NeedsSnapshot reports whether the sender waits for SetSnapshot.
func (s *Sender) NeedsSnapshot() bool { return s.wantSnapshot && s.state == Transferring }

// SetSnapshot hands the sender the state to transfer: a keyspace snapshot
// (crdt.Keyspace.Snapshot), the version vector of that state and the log
// position it reaches (Log.Next when it was taken, read with it: every
// record before it is in the state, none from it on). The caller takes it
// when NeedsSnapshot asks; data is not modified.
func (s *Sender) SetSnapshot(data []byte, vv crdt.VersionVector, next uint64) {
	if !s.NeedsSnapshot() {
		return
	}
	s.wantSnapshot = false
	s.xferSeq++
	s.xfer = &transfer{id: transferID(s.self, s.peer, vv, s.xferSeq, s.now), data: data, vv: vv.Clone(), takenMs: s.now, pin: next}
	s.dropTail()
	if s.cfg.TailBytes >= 0 {
		s.tailOn, s.tailNext = true, next
	}
}

// keepTail copies aside the log records appended since the transfer's
// snapshot, before the log can trim them. Once the peer has joined the
// snapshot it holds every record before the snapshot's position and needs
// exactly the ones after it: streaming them from the tail makes the
// transfer converge however long it took, where asking the log (Start
// against the peer's new vector) fails whenever the log turned over
// during the transfer and so would start another transfer, forever under
// steady writes. The tail shares the records' bytes with the log (they
// are never modified) and is bounded by TailBytes; beyond that, or if the
// log trimmed a record before it was kept (the sender was not run for
// that long), the tail is given up and the stream after the transfer
// falls back to the log.
func (s *Sender) keepTail() {
	if !s.tailOn {
		return
	}
	for s.tailNext < s.log.Next() {
		recs, err := s.log.Read(s.scratch[:0], s.tailNext, s.cfg.BatchRecords, s.cfg.BatchBytes)
		if err != nil || len(recs) == 0 {
			s.loseTail()
			return
		}
		s.scratch = recs[:0]
		for _, r := range recs {
			s.tail = append(s.tail, r)
			s.tailBytes += len(r.Data)
		}
		s.tailNext = recs[len(recs)-1].Pos + 1
		if s.tailBytes > s.cfg.TailBytes {
			s.loseTail()
			return
		}
	}
	// Records the peer acknowledged are not needed again.
	i := 0
	for i < len(s.tail) && s.tail[i].Pos <= s.acked && s.state == Streaming {
		s.tailBytes -= len(s.tail[i].Data)
		i++
	}
	if i > 0 {
		clear(s.tail[:i])
		s.tail = s.tail[i:]
	}
	// Streaming, and the log itself holds everything from here on.
	if s.state == Streaming && s.next >= s.log.First() {
		s.dropTail()
	}
}

func (s *Sender) loseTail() {
	s.stats.TailLost++
	s.dropTail()
}

func (s *Sender) dropTail() {
	s.tail, s.tailOn, s.tailNext, s.tailBytes = nil, false, 0, 0
}

// afterTransfer positions the stream once the peer joined x: it holds
// every record before x.pin, so streaming resumes there, from the tail
// (records the peer holds otherwise are skipped as usual). Without a tail
// that reaches back to x.pin, the log must serve the peer's vector.
func (s *Sender) afterTransfer(x *transfer) {
	if !s.tailOn || (len(s.tail) > 0 && s.tail[0].Pos != x.pin) || (len(s.tail) == 0 && s.tailNext != x.pin) {
		s.startFromVV()
		return
	}
	s.state, s.since = Streaming, s.now
	s.next = x.pin
	s.acked = x.pin - 1
}

// read returns records from pos on: from the tail while it holds pos,
// else from the log.
func (s *Sender) read(pos uint64) ([]crdt.LogRecord, error) {
	if s.tailOn && len(s.tail) > 0 && pos >= s.tail[0].Pos && pos < s.tailNext {
		i := int(pos - s.tail[0].Pos)
		out := s.scratch[:0]
		size := 0
		for ; i < len(s.tail) && len(out) < s.cfg.BatchRecords; i++ {
			if len(out) > 0 && size+len(s.tail[i].Data) > s.cfg.BatchBytes {
				break
			}
			out = append(out, s.tail[i])
			size += len(s.tail[i].Data)
		}
		return out, nil
	}
	return s.log.Read(s.scratch[:0], pos, s.cfg.BatchRecords, s.cfg.BatchBytes)
}

// transferID names a transfer so that a resumed stream can tell it from
// another: the sender, the receiver, the state and a counter.
func transferID(self crdt.Origin, peer uint32, vv crdt.VersionVector, n uint64, now int64) uint64 {
	h := uint64(14695981039346656037)
	mix := func(v uint64) {
		for i := 0; i < 8; i++ {
			h ^= v & 0xff
			h *= 1099511628211
			v >>= 8
		}
	}
	mix(uint64(self.Region)<<32 | uint64(self.Incarnation))
	mix(uint64(peer))
	for _, e := range vv {
		mix(uint64(e.Origin.Region)<<32 | uint64(e.Origin.Incarnation))
		mix(e.Seq)
	}
	mix(n)
	mix(uint64(now))
	if h == 0 {
		h = 1
	}
	return h
}

func (s *Sender) ack(a *pb.Ack) error {
	if s.state != Streaming && s.state != Transferring {
		return fmt.Errorf("%w: Ack while %s", ErrProtocol, s.state)
	}
	if len(s.inflight) == 0 {
		return fmt.Errorf("%w: Ack with nothing in flight", ErrProtocol)
	}
	f := s.inflight[0]
	if f.chunk {
		if a.TransferId != s.xfer.id || a.TransferOffset != f.offset && !a.Joined {
			return fmt.Errorf("%w: chunk Ack for %x at %d, expected %x at %d", ErrProtocol, a.TransferId, a.TransferOffset, s.xfer.id, f.offset)
		}
	} else if a.Pos != f.lastPos {
		return fmt.Errorf("%w: Ack for position %d, expected %d", ErrProtocol, a.Pos, f.lastPos)
	}
	vv, err := VVFromPB(a.Vv)
	if err != nil {
		return err
	}
	if err := s.checkOwn(vv); err != nil {
		return err
	}
	s.inflight = s.inflight[1:]
	s.peerVV = s.peerVV.Merge(vv)
	s.noteReport(vv)
	s.stats.LastAckMs = s.now
	if a.EchoWallMs > 0 && a.EchoWallMs <= s.now {
		rtt := s.now - a.EchoWallMs
		s.stats.RTTMs = rtt
		s.stats.ClockOffsetMs = a.WallMs - (a.EchoWallMs + rtt/2)
	}
	if !f.chunk {
		if f.coverTo > s.acked {
			s.acked = f.coverTo
		}
		return nil
	}
	s.xfer.acked = a.TransferOffset
	if a.Joined {
		s.stats.Transfers++
		x := s.xfer
		s.xfer = nil
		s.inflight = s.inflight[:0]
		s.afterTransfer(x)
	}
	return nil
}

// Ready returns the messages to send now, in order, and clears them. The
// caller sends them on the stream; if sending fails it calls Disconnected.
// Ready also reports a stuck stream: reset is true when the peer has not
// answered in time, and the caller should end the stream and reconnect.
func (s *Sender) Ready() (msgs []*pb.Push, reset bool) {
	s.keepTail()
	switch s.state {
	case Handshaking:
		if s.now-s.since > s.cfg.HelloTimeout {
			reset = true
		}
	case Streaming:
		s.fillBatches()
		s.maybePing()
	case Transferring:
		s.fillChunks()
	}
	if len(s.out) > 0 {
		s.lastSent = s.now
	}
	if len(s.inflight) > 0 && s.now-s.inflight[0].sentMs > s.cfg.AckTimeout {
		reset = true
	}
	if (s.state == Streaming || s.state == Transferring) && s.now-s.lastHeard > s.cfg.Keepalive {
		// Nothing, not even a ping's answer, for Keepalive: the link is
		// dead or blackholed.
		reset = true
		s.stats.Silent++
	}
	if reset {
		s.stats.Resets++
		s.Disconnected()
		return nil, true
	}
	msgs = s.out
	s.out = nil
	return msgs, false
}

// fillBatches reads log records from next on into Batches messages while
// the window allows, leaving out what the peer is known to hold.
func (s *Sender) fillBatches() {
	for s.windowOpen() && s.next < s.log.Next() {
		recs, err := s.read(s.next)
		if errors.Is(err, crdt.ErrTrimmed) {
			// The log moved past the stream while it was slow: what the peer
			// lacks is gone from the log. Messages already sent stay in
			// flight: the peer applies and acknowledges them in order before
			// anything sent from now on, and each Ack must find its flight.
			s.startFromVV()
			return
		}
		if err != nil || len(recs) == 0 {
			return
		}
		s.scratch = recs[:0]
		first, last := recs[0].Pos, recs[len(recs)-1].Pos
		var batches [][]byte
		var size int
		var timeMs int64
		for i := range recs {
			r := &recs[i]
			if r.LastSeq <= s.peerVV.Get(r.Origin) {
				s.stats.RecordsSkipped++
				continue
			}
			batches = append(batches, r.Data)
			size += len(r.Data)
			timeMs = r.Time.Millis()
		}
		s.next = last + 1
		if len(batches) == 0 {
			// All held already: if nothing is in flight these positions are
			// acknowledged by knowledge; else the last message covers them.
			if n := len(s.inflight); n > 0 {
				s.inflight[n-1].coverTo = last
			} else {
				s.acked = last
			}
			continue
		}
		msg := &pb.Batches{FirstPos: first, LastPos: last, WallMs: s.now, TimeMs: timeMs}
		if s.cfg.DeflateMin >= 0 && size >= s.cfg.DeflateMin {
			if z, ok := deflateBatches(batches, size); ok {
				msg.Deflated = z
			}
		}
		if msg.Deflated == nil {
			msg.Batches = batches
		}
		s.out = append(s.out, &pb.Push{Msg: &pb.Push_Batches{Batches: msg}})
		s.inflight = append(s.inflight, flight{lastPos: last, coverTo: last, sentMs: s.now, timeMs: timeMs, bytes: size})
		s.stats.BatchesSent += uint64(len(batches))
		s.stats.BytesSent += uint64(size)
	}
}

// maybePing pings an idle stream.
func (s *Sender) maybePing() {
	if len(s.inflight) > 0 || len(s.out) > 0 || s.now-s.lastSent < s.cfg.PingInterval {
		return
	}
	s.out = append(s.out, &pb.Push{Msg: &pb.Push_Ping{Ping: &pb.Ping{Pos: s.acked, WallMs: s.now}}})
	s.inflight = append(s.inflight, flight{ping: true, lastPos: s.acked, coverTo: s.acked, sentMs: s.now})
}

// fillChunks ships the snapshot while the window allows.
func (s *Sender) fillChunks() {
	x := s.xfer
	if x == nil {
		return
	}
	for s.windowOpen() && x.sent < uint64(len(x.data)) {
		end := x.sent + uint64(s.cfg.ChunkBytes)
		if end > uint64(len(x.data)) {
			end = uint64(len(x.data))
		}
		final := end == uint64(len(x.data))
		s.out = append(s.out, &pb.Push{Msg: &pb.Push_Chunk{Chunk: &pb.Chunk{
			TransferId: x.id, Offset: x.sent, Data: x.data[x.sent:end], Final: final,
			Total: uint64(len(x.data)), WallMs: s.now,
		}}})
		s.inflight = append(s.inflight, flight{chunk: true, offset: end, sentMs: s.now, bytes: int(end - x.sent)})
		s.stats.TransferBytes += end - x.sent
		x.sent = end
		if final {
			break
		}
	}
}
