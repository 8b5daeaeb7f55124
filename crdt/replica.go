package crdt

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// Replica is the whole replicated state of one region: its keyspace, its
// replication log (EffectLog) and the state transfers it is receiving. A
// region's Raft FSM applies every committed entry to it, and simulations
// drive it directly without Raft; both get the same state from the same
// inputs.
//
// Like Keyspace it is deterministic and not safe for concurrent use: the
// caller serialises Apply, Merge, StageChunk and Restore, and may read
// concurrently with other readers only.
type Replica struct {
	ks     *Keyspace
	log    *EffectLog
	staged []*staging // transfers being received, least recently advanced first
	fixed  bool       // the origin has been decided (see origin.go); replicated

	Stats ReplicaStats
}

// ReplicaStats counts what happened to remote input. They are per node (not
// replicated state), but every node of a region applies the same entries, so
// they agree unless a node was restored from a snapshot.
type ReplicaStats struct {
	Merged      uint64 // remote batches merged
	Duplicates  uint64 // remote batches already covered by the version vector
	Rejected    uint64 // remote batches refused (corrupt, gap, missing deps)
	OwnAhead    uint64 // batches of this region's own origin that it had not applied: its state is behind its own writes (it needs a new incarnation)
	Chunks      uint64 // state-transfer chunks staged
	Transfers   uint64 // state transfers joined
	TransferErr uint64 // state transfers dropped (corrupt, out of order, superseded)
}

// Staging slots. A replica stages at most one transfer per sending region
// (Chunk.From): a sender's new transfer replaces its old one, so transfers
// from different regions, however many rejoin at once, never evict each
// other. MaxStagingSenders bounds the slots as a backstop against senders
// that come and go (a region removed mid-transfer keeps its slot until it
// is needed): a new sender beyond it evicts the slot that advanced least
// recently. Chunks that do not name their sender (From 0: entries written
// before chunks did) keep the earlier rule: at most MaxStagedTransfers of
// them, a new one evicting the oldest.
const (
	MaxStagingSenders  = 32
	MaxStagedTransfers = 4
)

type staging struct {
	from uint32 // sending region; 0 for a legacy (unnamed) transfer
	id   uint64
	data []byte
}

// NewReplica wraps ks with an empty replication log.
func NewReplica(ks *Keyspace, limits LogLimits) *Replica {
	return &Replica{ks: ks, log: NewEffectLog(limits)}
}

// Keyspace returns the replica's keyspace. It is replaced by Restore and
// changed by every write; callers hold the same lock they hold for Apply or
// for reads.
func (r *Replica) Keyspace() *Keyspace { return r.ks }

// Log returns the replication log.
func (r *Replica) Log() *EffectLog { return r.log }

// Apply runs a local write (Keyspace.Apply) and logs the batch it produced.
// A solo keyspace (one region, nobody to ship to) logs nothing.
func (r *Replica) Apply(st Stamp, cmds []Command) []Reply {
	replies, b := r.ks.Apply(st, cmds)
	if b != nil && !r.ks.solo {
		r.log.Append(b.Origin, b.FirstSeq, b.LastSeq(), b.Ops[len(b.Ops)-1].Time, b.Encode(nil))
	}
	return replies
}

// MergeOutcome says what Merge did with a remote batch.
type MergeOutcome uint8

// Merge outcomes.
const (
	Merged    MergeOutcome = iota + 1 // applied and logged
	Duplicate                         // already covered: nothing changed
	Rejected                          // refused: nothing changed, Err says why
)

// RejectReason says why Merge refused a batch, for logs and metrics.
type RejectReason string

// Reject reasons, in the order RejectReasons lists them.
const (
	RejectCorrupt     RejectReason = "corrupt"            // does not decode, or holds an invalid effect
	RejectGap         RejectReason = "gap"                // skips ahead of the origin's last applied op
	RejectMissingDeps RejectReason = "missing_dependency" // depends on ops of other origins not applied yet
	RejectOwnOrigin   RejectReason = "own_origin"         // this region's own writes it does not hold (see OwnAhead)
	RejectOther       RejectReason = "other"
)

// RejectReasons lists every reason, for metrics that report each.
var RejectReasons = [...]RejectReason{RejectCorrupt, RejectGap, RejectMissingDeps, RejectOwnOrigin, RejectOther}

// ReasonOf classifies an error Merge returned.
func ReasonOf(err error) RejectReason {
	switch {
	case errors.Is(err, ErrGap):
		return RejectGap
	case errors.Is(err, ErrNotReady):
		return RejectMissingDeps
	case errors.Is(err, ErrOwnBatch):
		return RejectOwnOrigin
	case errors.Is(err, ErrCorrupt), errors.Is(err, ErrFormat), errors.Is(err, ErrEffect):
		return RejectCorrupt
	}
	return RejectOther
}

// Merge decodes a remote batch, merges it into the keyspace and logs it (the
// same bytes, so relays ship exactly what the origin produced). data is kept
// by the log: the caller must not modify it afterwards.
func (r *Replica) Merge(data []byte) (MergeOutcome, error) {
	b, err := DecodeBatch(data)
	if err != nil {
		r.Stats.Rejected++
		if ReasonOf(err) != RejectCorrupt {
			err = fmt.Errorf("%w: %w", ErrCorrupt, err)
		}
		return Rejected, err
	}
	if b.LastSeq() <= r.ks.vv.Get(b.Origin) {
		r.Stats.Duplicates++
		r.ks.Stats.BatchesSkip++
		return Duplicate, nil
	}
	if b.Origin == r.ks.self {
		// Another region holds writes of ours that this state lacks: it was
		// restored from an older copy, or lost its disks, under the same
		// incarnation. Merging them would collide with the dots it is about
		// to reissue.
		r.Stats.OwnAhead++
		r.Stats.Rejected++
		return Rejected, ErrOwnBatch
	}
	if err := r.ks.Merge(b); err != nil {
		r.Stats.Rejected++
		return Rejected, err
	}
	r.Stats.Merged++
	r.log.Append(b.Origin, b.FirstSeq, b.LastSeq(), b.Ops[len(b.Ops)-1].Time, data)
	return Merged, nil
}

// Chunk is one piece of a state transfer: bytes [Offset, Offset+len(Data))
// of another region's Keyspace.Snapshot, sent under the transfer's ID by
// region From (the receiver sets it from the stream's handshake, so a
// sender cannot claim another's slot).
type Chunk struct {
	From   uint32
	ID     uint64
	Offset uint64
	Data   []byte
	Final  bool // the last chunk: join the staged state now
}

// Transfer errors.
var (
	ErrChunkOrder = errors.New("crdt: state-transfer chunk out of order")
)

// StageChunk adds a state-transfer chunk. Chunks of one transfer must come
// in order from offset 0; a chunk at offset 0 (re)starts its transfer and,
// with From set, replaces whatever that sender had staged. On the
// final chunk the staged state is decoded and joined into the keyspace in
// one step, so readers see the state before the transfer or after it, never
// a mix. It returns the number of bytes now staged for the transfer (0 once
// joined) and whether it was joined.
func (r *Replica) StageChunk(c Chunk) (staged uint64, joined bool, err error) {
	s := r.stagingOf(c.From, c.ID)
	switch {
	case c.Offset == 0:
		if c.From != 0 {
			// The sender's previous transfer, if any, is superseded.
			if old := r.slotOf(c.From); old != nil {
				if old.id != c.ID {
					r.Stats.TransferErr++
				}
				r.drop(old)
			}
			if r.count(func(x *staging) bool { return x.from != 0 }) >= MaxStagingSenders {
				r.Stats.TransferErr++
				r.drop(r.first(func(x *staging) bool { return x.from != 0 }))
			}
		} else {
			if s != nil {
				r.drop(s)
			}
			if r.count(func(x *staging) bool { return x.from == 0 }) >= MaxStagedTransfers {
				r.Stats.TransferErr++
				r.drop(r.first(func(x *staging) bool { return x.from == 0 }))
			}
		}
		s = &staging{from: c.From, id: c.ID}
		r.staged = append(r.staged, s)
	case s == nil || uint64(len(s.data)) != c.Offset:
		have := uint64(0)
		if s != nil {
			have = uint64(len(s.data))
		}
		return have, false, fmt.Errorf("%w: transfer %x has %d bytes, chunk starts at %d", ErrChunkOrder, c.ID, have, c.Offset)
	}
	s.data = append(s.data, c.Data...)
	r.Stats.Chunks++
	if c.From != 0 {
		// Least recently advanced first: that is the slot a new sender
		// beyond MaxStagingSenders evicts. (Legacy transfers keep their
		// start order, as before.)
		r.drop(s)
		r.staged = append(r.staged, s)
	}
	if !c.Final {
		return uint64(len(s.data)), false, nil
	}
	r.drop(s)
	other, err := Restore(s.data)
	if err != nil {
		r.Stats.TransferErr++
		return 0, false, fmt.Errorf("crdt: state transfer %x: %w", c.ID, err)
	}
	r.ks.Join(other)
	// The join advanced the state past what the log holds: peers lacking
	// that part need a state transfer themselves.
	r.log.Gap(r.ks.vv)
	r.Stats.Transfers++
	return 0, true, nil
}

// Staged returns how many bytes of transfer id from region from are
// staged (false if none; from 0 for a legacy transfer).
func (r *Replica) Staged(from uint32, id uint64) (uint64, bool) {
	if s := r.stagingOf(from, id); s != nil {
		return uint64(len(s.data)), true
	}
	return 0, false
}

// StagedTransfers returns how many transfers are staged.
func (r *Replica) StagedTransfers() int { return len(r.staged) }

func (r *Replica) stagingOf(from uint32, id uint64) *staging {
	for _, s := range r.staged {
		if s.from == from && s.id == id {
			return s
		}
	}
	return nil
}

// slotOf returns the transfer staged for sender from (not 0).
func (r *Replica) slotOf(from uint32) *staging {
	return r.first(func(s *staging) bool { return s.from == from })
}

func (r *Replica) first(pred func(*staging) bool) *staging {
	for _, s := range r.staged {
		if pred(s) {
			return s
		}
	}
	return nil
}

func (r *Replica) count(pred func(*staging) bool) int {
	n := 0
	for _, s := range r.staged {
		if pred(s) {
			n++
		}
	}
	return n
}

// drop removes staging d, keeping the others' order.
func (r *Replica) drop(d *staging) {
	kept := r.staged[:0]
	for _, s := range r.staged {
		if s != d {
			kept = append(kept, s)
		}
	}
	// Clear the slots past the kept ones: the backing array would otherwise
	// keep a dropped (or just joined) transfer's whole data alive.
	clear(r.staged[len(kept):])
	r.staged = kept
}

// replicaFormat versions the replica snapshot's header. Format 2 adds a
// flags byte after the format (bit 0: the origin is fixed); format 3 adds
// each staged transfer's sending region. Formats 1 and 2 are still read
// (see legacyFixed; their staged transfers are legacy ones), and format 2
// is still written while no staged transfer names its sender, so a node
// of the previous version can restore such a snapshot.
const (
	replicaFormat   = 3
	replicaFormatV2 = 2
	replicaFormatV1 = 1
)

// Snapshot returns the replica's encoding as parts to be written one after
// the other: a header holding the log and the staged transfers, then the
// keyspace snapshot (kept separate so it is not copied).
func (r *Replica) Snapshot() [][]byte {
	v := byte(replicaFormatV2)
	if r.count(func(s *staging) bool { return s.from != 0 }) > 0 {
		v = replicaFormat
	}
	e := &encoder{}
	e.byte1(v)
	e.byte1(r.flags())
	r.log.encode(e)
	e.uvarint(uint64(len(r.staged)))
	for _, s := range r.staged {
		if v == replicaFormat {
			e.uvarint(uint64(s.from))
		}
		e.uvarint(s.id)
		e.bytes(s.data)
	}
	hdr := make([]byte, 0, len(e.b)+10)
	hdr = binary.AppendUvarint(hdr, uint64(len(e.b)))
	hdr = append(hdr, e.b...)
	return [][]byte{hdr, r.ks.Snapshot()}
}

// RestoreReplica decodes the concatenation of Snapshot's parts.
func RestoreReplica(src []byte, limits LogLimits) (*Replica, error) {
	d := &decoder{b: src}
	n := d.uvarint()
	if d.err != nil || n > uint64(len(d.b)) {
		return nil, ErrCorrupt
	}
	hd := &decoder{b: d.b[:n]}
	rest := d.b[n:]
	v := hd.byte1()
	if hd.err == nil && v != replicaFormat && v != replicaFormatV2 && v != replicaFormatV1 {
		return nil, ErrFormat
	}
	var flags byte
	if v >= replicaFormatV2 {
		if flags = hd.byte1(); flags&^replicaFlagsKnown != 0 {
			return nil, ErrCorrupt
		}
	}
	log := decodeEffectLog(hd, limits)
	r := &Replica{log: log}
	m := hd.count(2)
	for i := 0; i < m && hd.err == nil; i++ {
		s := &staging{}
		if v == replicaFormat {
			from := hd.uvarint()
			if from > 1<<32-1 {
				return nil, ErrCorrupt
			}
			s.from = uint32(from)
		}
		s.id, s.data = hd.uvarint(), hd.bytes()
		if s.from != 0 && r.slotOf(s.from) != nil {
			return nil, ErrCorrupt // one slot per sender
		}
		r.staged = append(r.staged, s)
	}
	if hd.err != nil {
		return nil, hd.err
	}
	if v == replicaFormat && r.count(func(s *staging) bool { return s.from != 0 }) == 0 {
		return nil, ErrCorrupt // written as format 2
	}
	if len(hd.b) != 0 {
		return nil, ErrCorrupt
	}
	ks, err := Restore(rest)
	if err != nil {
		return nil, err
	}
	r.ks = ks
	if v >= replicaFormatV2 {
		r.fixed = flags&flagOriginFixed != 0
	} else {
		r.fixed = legacyFixed(ks)
	}
	return r, nil
}
