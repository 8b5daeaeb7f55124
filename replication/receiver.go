package replication

import (
	"errors"
	"fmt"

	"concord/crdt"
	pb "concord/proto"
)

// State is the receiver's read-only view of its own region.
type State interface {
	// Version returns the region's applied version vector.
	Version() crdt.VersionVector
	// Staged returns how many bytes of state transfer id from region from
	// are staged.
	Staged(from uint32, id uint64) (uint64, bool)
}

// Proposal is what the receiver asks its region to apply, in order: remote
// batches (crdt.Replica.Merge each), or one state-transfer chunk. A
// proposal with neither needs no write; it is acknowledged in its turn.
type Proposal struct {
	Batches [][]byte
	Chunk   *crdt.Chunk
}

// Applied is the outcome of a Proposal.
type Applied struct {
	// Outcomes has one entry per batch (crdt.MergeOutcome); Reasons, if
	// set, says for each rejected one why (crdt.ReasonOf), and Details
	// the region's error text.
	Outcomes []crdt.MergeOutcome
	Reasons  []crdt.RejectReason
	Details  []string
	// Staged and Joined answer a chunk.
	Staged uint64
	Joined bool
	// Err is set if the proposal was not applied (or its outcome is
	// unknown): the stream must end, and the sender resumes from the
	// version vector.
	Err error
}

// ReceiverStats describe a Receiver.
type ReceiverStats struct {
	Peer     crdt.Origin
	PeerName string
	Batches  uint64 // batches received
	// Bytes is the payload of the batches received, as encoded batches
	// (after inflating a deflated message): what the sender counts in
	// SenderStats.BytesSent, so the two compare.
	Bytes      uint64
	Skipped    uint64 // batches already held, not proposed
	Merged     uint64
	Duplicates uint64 // proposed but already held by apply time
	Chunks     uint64
	Joined     uint64
	// Rejected counts batches refused, by reason (indexed as
	// crdt.RejectReasons): by the region, or here when the batch header
	// does not decode (corrupt).
	Rejected [len(crdt.RejectReasons)]uint64
	// LastTimeMs is the HLC time (ms) of the newest batch applied and
	// LastWallMs the sender's clock when it sent it: lag is measured from
	// them.
	LastTimeMs int64
	LastWallMs int64
}

// Receiver is the deterministic core of the receiving end of one stream:
// it validates the handshake and every message, drops batches its region
// already holds, turns the rest into Proposals and, as proposals are
// applied in order, produces the acknowledgements. Like Sender it does no
// I/O: the caller feeds it messages and outcomes and sends what it returns.
//
// A Receiver is not safe for concurrent use.
type Receiver struct {
	self  crdt.Origin
	name  string
	state State

	open     bool
	protocol uint32
	peer     crdt.Origin
	lastPos  uint64 // last_pos of the latest message: positions only grow
	pending  []pendingAck

	stats ReceiverStats
}

type pendingAck struct {
	pos    uint64
	echo   int64
	timeMs int64
	chunk  *crdt.Chunk
	// held are the (origin, last seq) of the batches proposed: once the
	// region applied them (merged or duplicate), it holds each origin up
	// to there.
	held []crdt.VVEntry
}

// NewReceiver returns the receiving end of a stream into region self.
func NewReceiver(self crdt.Origin, name string, state State) *Receiver {
	return &Receiver{self: self, name: name, state: state}
}

// Stats returns the receiver's figures.
func (r *Receiver) Stats() ReceiverStats { return r.stats }

// Hello validates the sender's handshake and returns the Welcome. The
// caller must make the region's state current first (a read fence), so the
// version vector the Welcome carries covers everything applied.
func (r *Receiver) Hello(h *pb.Hello, nowMs int64) (*pb.Pull, error) {
	if r.open {
		return nil, fmt.Errorf("%w: second Hello", ErrProtocol)
	}
	if h.ToRegion != r.self.Region {
		return nil, fmt.Errorf("%w: sender meant region %d, this is region %d", ErrProtocol, h.ToRegion, r.self.Region)
	}
	if h.Region == r.self.Region {
		return nil, fmt.Errorf("%w: sender claims this region's id %d", ErrProtocol, h.Region)
	}
	proto := uint32(MaxProtocol)
	if h.MaxProtocol < proto {
		proto = h.MaxProtocol
	}
	if proto < MinProtocol || proto < h.MinProtocol {
		return nil, fmt.Errorf("%w: sender speaks %d..%d, this region %d..%d", ErrVersion, h.MinProtocol, h.MaxProtocol, MinProtocol, MaxProtocol)
	}
	r.open, r.protocol = true, proto
	r.peer = crdt.Origin{Region: h.Region, Incarnation: h.Incarnation}
	r.stats.Peer, r.stats.PeerName = r.peer, h.Name
	w := &pb.Welcome{Protocol: proto, Region: r.self.Region, Incarnation: r.self.Incarnation,
		Name: r.name, Vv: VVToPB(r.state.Version()), WallMs: nowMs}
	if h.TransferId != 0 {
		if n, ok := r.state.Staged(r.peer.Region, h.TransferId); ok {
			w.TransferId, w.TransferOffset = h.TransferId, n
		}
	}
	return &pb.Pull{Msg: &pb.Pull_Welcome{Welcome: w}}, nil
}

// Step handles a Batches or Chunk message and returns what to propose.
// Every returned Proposal must be applied, in order, and its outcome given
// to Done; an error means the stream must end.
func (r *Receiver) Step(m *pb.Push) (Proposal, error) {
	if !r.open {
		return Proposal{}, fmt.Errorf("%w: message before Hello", ErrProtocol)
	}
	switch msg := m.GetMsg().(type) {
	case *pb.Push_Batches:
		return r.batches(msg.Batches)
	case *pb.Push_Chunk:
		c := msg.Chunk
		r.stats.Chunks++
		// The handshake named the sender: its chunks stage in its slot.
		ch := &crdt.Chunk{From: r.peer.Region, ID: c.TransferId, Offset: c.Offset, Data: c.Data, Final: c.Final}
		r.pending = append(r.pending, pendingAck{echo: c.WallMs, chunk: ch})
		return Proposal{Chunk: ch}, nil
	case *pb.Push_Ping:
		// Nothing to apply: acknowledged in its turn with the vector then.
		r.pending = append(r.pending, pendingAck{pos: msg.Ping.Pos, echo: msg.Ping.WallMs})
		return Proposal{}, nil
	case *pb.Push_Hello:
		return Proposal{}, fmt.Errorf("%w: second Hello", ErrProtocol)
	}
	return Proposal{}, fmt.Errorf("%w: unknown message", ErrProtocol)
}

func (r *Receiver) batches(b *pb.Batches) (Proposal, error) {
	if b.FirstPos == 0 || b.LastPos < b.FirstPos || b.FirstPos <= r.lastPos {
		// Positions only grow within a stream: a repeated or reordered
		// message means the transport is not what the stream assumes.
		return Proposal{}, fmt.Errorf("%w: positions %d..%d after %d", ErrProtocol, b.FirstPos, b.LastPos, r.lastPos)
	}
	r.lastPos = b.LastPos
	batches := b.Batches
	if b.Deflated != nil {
		var err error
		if batches, err = inflateBatches(b.Deflated, MaxMessageBytes); err != nil {
			return Proposal{}, err
		}
	}
	for _, data := range batches {
		r.stats.Bytes += uint64(len(data))
	}
	have := r.state.Version()
	kept := batches[:0:0]
	var held []crdt.VVEntry
	for _, data := range batches {
		origin, _, last, err := crdt.BatchHeader(data)
		if err != nil {
			r.reject(crdt.RejectCorrupt)
			return Proposal{}, &RejectError{Peer: r.peer, Reason: crdt.RejectCorrupt, Detail: err.Error()}
		}
		r.stats.Batches++
		// Held already (including this region's own writes relayed back).
		// An own batch not held is proposed and refused by the region: it
		// means this region lost writes another region has (see
		// crdt.ReplicaStats.OwnAhead).
		if last <= have.Get(origin) {
			r.stats.Skipped++
			continue
		}
		kept = append(kept, data)
		held = append(held, crdt.VVEntry{Origin: origin, Seq: last})
	}
	r.pending = append(r.pending, pendingAck{pos: b.LastPos, echo: b.WallMs, timeMs: b.TimeMs, held: held})
	return Proposal{Batches: kept}, nil
}

// ErrRejected is wrapped by every RejectError.
var ErrRejected = errors.New("replication: batch refused")

// RejectError ends a stream whose batch the region refused (or that did
// not decode): it names the reason.
type RejectError struct {
	Peer   crdt.Origin
	Reason crdt.RejectReason
	Detail string
}

func (e *RejectError) Error() string {
	s := fmt.Sprintf("replication: refused a batch from %s: %s", e.Peer, e.Reason)
	if e.Detail != "" {
		s += " (" + e.Detail + ")"
	}
	return s
}

func (e *RejectError) Unwrap() error { return ErrRejected }

func (r *Receiver) reject(reason crdt.RejectReason) {
	for i, x := range crdt.RejectReasons {
		if x == reason {
			r.stats.Rejected[i]++
			return
		}
	}
	r.stats.Rejected[len(crdt.RejectReasons)-1]++
}

// Done takes the outcome of the oldest proposal not yet done and returns
// its acknowledgement. A rejected batch (a gap or missing dependency: the
// stream skipped something) or a failed proposal ends the stream.
func (r *Receiver) Done(a Applied, nowMs int64) (*pb.Pull, error) {
	if len(r.pending) == 0 {
		return nil, fmt.Errorf("%w: outcome with nothing pending", ErrProtocol)
	}
	p := r.pending[0]
	r.pending = r.pending[1:]
	if a.Err != nil {
		return nil, a.Err
	}
	ack := &pb.Ack{Pos: p.pos, EchoWallMs: p.echo, WallMs: nowMs}
	if p.chunk != nil {
		ack.TransferId, ack.TransferOffset, ack.Joined = p.chunk.ID, a.Staged, a.Joined
		if a.Joined {
			r.stats.Joined++
		}
	} else {
		for i, o := range a.Outcomes {
			switch o {
			case crdt.Merged:
				r.stats.Merged++
			case crdt.Duplicate:
				r.stats.Duplicates++
			default:
				e := &RejectError{Peer: r.peer, Reason: crdt.RejectOther}
				if i < len(a.Reasons) && a.Reasons[i] != "" {
					e.Reason = a.Reasons[i]
				}
				if i < len(a.Details) {
					e.Detail = a.Details[i]
				}
				r.reject(e.Reason)
				return nil, e
			}
		}
		if p.timeMs > 0 {
			r.stats.LastTimeMs, r.stats.LastWallMs = p.timeMs, p.echo
		}
	}
	// The unit's result comes from the region's leader; the node holding
	// the stream may be a follower that has not applied it yet, and its
	// view's vector would then lag by up to a ping (a second) and with it
	// the sender's lag figures and WAITREGIONS. The applied batches prove
	// the region holds their origins up to their last seq (an origin is
	// applied contiguously), so they are added in: the vector stays a
	// lower bound of what the region has applied.
	vv := r.state.Version()
	for i, o := range a.Outcomes {
		if i < len(p.held) && (o == crdt.Merged || o == crdt.Duplicate) && vv.Get(p.held[i].Origin) < p.held[i].Seq {
			vv = vv.Set(p.held[i].Origin, p.held[i].Seq)
		}
	}
	ack.Vv = VVToPB(vv)
	return &pb.Pull{Msg: &pb.Pull_Ack{Ack: ack}}, nil
}
