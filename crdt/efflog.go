package crdt

import (
	"errors"
	"sort"
)

// EffectLog is a region's replication log: the encoded batches the region
// applied, its own and those merged from other regions, in apply order. Each
// record has a position, numbered from 1 in apply order, that never changes.
// The log is bounded: appending beyond MaxBytes (or MaxRecords) drops the
// oldest records.
//
// It is replicated state. Every node of a region appends the same records
// in the same order (they come out of deterministic apply), so any node can
// ship the log after a failover, and a node restored from a snapshot holds
// the same log as the node that took it.
//
// Streaming a peer the log from the first record it lacks gives it every
// batch in an order that respects causality (apply order does), including
// batches relayed from third regions. Start says where that is, or that the
// peer must first catch up by state transfer because what it lacks is no
// longer (or never was) in the log.
type EffectLog struct {
	max    LogLimits
	first  uint64 // position of recs[0]; 1 in an empty, never-trimmed log
	recs   []LogRecord
	bytes  int
	origin map[Origin]*originRuns
}

// LogLimits bound an EffectLog. Zero fields take the defaults.
type LogLimits struct {
	MaxBytes   int // total encoded batch bytes kept; default 64 MiB
	MaxRecords int // records kept; default 1,000,000
}

// Default log limits.
const (
	DefaultLogBytes   = 64 << 20
	DefaultLogRecords = 1_000_000
)

func (l LogLimits) withDefaults() LogLimits {
	if l.MaxBytes <= 0 {
		l.MaxBytes = DefaultLogBytes
	}
	if l.MaxRecords <= 0 {
		l.MaxRecords = DefaultLogRecords
	}
	return l
}

// LogRecord is one batch in the log.
type LogRecord struct {
	Pos      uint64
	Origin   Origin
	FirstSeq uint64
	LastSeq  uint64
	Time     HLC    // HLC time of the batch's last op
	Data     []byte // Batch.Encode output; never modified
}

// originRuns indexes one origin's records. seqs[i] is the FirstSeq of the
// record at position pos[i]; both grow at the end and shrink at the front.
// contigFrom is the smallest seq from which every batch of the origin up to
// last is in the log: a join (state transfer) can advance the state past
// what the log holds, and the log must not claim it can serve that gap.
type originRuns struct {
	seqs       []uint64
	pos        []uint64
	last       uint64 // LastSeq of the newest record
	contigFrom uint64 // first seq of the run that ends at last (0: none)
}

// NewEffectLog returns an empty log.
func NewEffectLog(limits LogLimits) *EffectLog {
	return &EffectLog{max: limits.withDefaults(), first: 1, origin: map[Origin]*originRuns{}}
}

// SetLimits changes the bounds; a lower bound trims at the next append.
// Limits are configuration, not replicated state: every node of a region
// must be configured alike or their logs will hold different tails (which
// only changes when a peer needs a state transfer, never what is applied).
func (l *EffectLog) SetLimits(limits LogLimits) { l.max = limits.withDefaults() }

// Limits returns the bounds in force.
func (l *EffectLog) Limits() LogLimits { return l.max }

// First returns the position of the oldest record kept (Next if empty).
func (l *EffectLog) First() uint64 { return l.first }

// Next returns the position the next record will get.
func (l *EffectLog) Next() uint64 { return l.first + uint64(len(l.recs)) }

// Len returns the number of records kept.
func (l *EffectLog) Len() int { return len(l.recs) }

// Bytes returns the encoded size of the records kept.
func (l *EffectLog) Bytes() int { return l.bytes }

// Append adds a batch (its header and encoding) at position Next and trims
// the oldest records if the log is over its bounds. data is kept, not
// copied: the caller must not modify it afterwards.
func (l *EffectLog) Append(origin Origin, firstSeq, lastSeq uint64, t HLC, data []byte) uint64 {
	pos := l.Next()
	l.recs = append(l.recs, LogRecord{Pos: pos, Origin: origin, FirstSeq: firstSeq, LastSeq: lastSeq, Time: t, Data: data})
	l.bytes += len(data)
	r := l.origin[origin]
	if r == nil {
		r = &originRuns{}
		l.origin[origin] = r
	}
	if r.contigFrom == 0 || firstSeq != r.last+1 {
		r.contigFrom = firstSeq
	}
	r.seqs = append(r.seqs, firstSeq)
	r.pos = append(r.pos, pos)
	r.last = lastSeq
	for len(l.recs) > 1 && (l.bytes > l.max.MaxBytes || len(l.recs) > l.max.MaxRecords) {
		l.trimOne()
	}
	return pos
}

func (l *EffectLog) trimOne() {
	rec := l.recs[0]
	l.recs[0] = LogRecord{}
	l.recs = l.recs[1:]
	l.first++
	l.bytes -= len(rec.Data)
	r := l.origin[rec.Origin]
	r.seqs, r.pos = r.seqs[1:], r.pos[1:]
	if len(r.seqs) == 0 {
		r.contigFrom = r.last + 1 // nothing of this origin left to serve
	} else if r.seqs[0] > r.contigFrom {
		r.contigFrom = r.seqs[0]
	}
	// Slices resliced from the front keep their dropped prefix alive until
	// they are reallocated; copy down once the live part is small.
	if cap(l.recs) > 1024 && len(l.recs) < cap(l.recs)/4 {
		l.recs = append(make([]LogRecord, 0, 2*len(l.recs)), l.recs...)
	}
	if cap(r.seqs) > 1024 && len(r.seqs) < cap(r.seqs)/4 {
		r.seqs = append(make([]uint64, 0, 2*len(r.seqs)), r.seqs...)
		r.pos = append(make([]uint64, 0, 2*len(r.pos)), r.pos...)
	}
}

// Gap records that the state advanced to vv by other means than appending
// (a state transfer was joined): for each origin the state now holds beyond
// the log's newest record, the log can no longer serve a contiguous run.
func (l *EffectLog) Gap(vv VersionVector) {
	for _, e := range vv {
		r := l.origin[e.Origin]
		if r == nil {
			r = &originRuns{}
			l.origin[e.Origin] = r
		}
		if e.Seq > r.last {
			r.last = e.Seq
			r.contigFrom = e.Seq + 1
		}
	}
}

// Start returns the position from which a peer whose state is peer must be
// streamed to receive everything a state with version have holds (have is
// the log owner's version vector). ok is false when some of it is not in
// the log: the peer must catch up by state transfer first. When the peer
// lacks nothing, Start returns Next.
func (l *EffectLog) Start(peer, have VersionVector) (pos uint64, ok bool) {
	pos = l.Next()
	for _, e := range have {
		need := peer.Get(e.Origin) + 1
		if need > e.Seq {
			continue
		}
		r := l.origin[e.Origin]
		if r == nil || r.contigFrom == 0 || need < r.contigFrom || r.last < e.Seq || len(r.seqs) == 0 {
			return 0, false
		}
		// The record holding seq need: the last one starting at or before it.
		i := sort.Search(len(r.seqs), func(i int) bool { return r.seqs[i] > need }) - 1
		if i < 0 {
			return 0, false
		}
		if r.pos[i] < pos {
			pos = r.pos[i]
		}
	}
	return pos, true
}

// ErrTrimmed is returned by Read for a position older than the log keeps.
var ErrTrimmed = errors.New("crdt: log position already trimmed")

// Read appends to dst the records from position pos on, stopping after
// maxBytes of data (at least one record is returned if any is there) or
// maxRecords records. The records share memory with the log; their Data
// must not be modified.
func (l *EffectLog) Read(dst []LogRecord, pos uint64, maxRecords, maxBytes int) ([]LogRecord, error) {
	if pos < l.first {
		return dst, ErrTrimmed
	}
	size := 0
	for i := int(pos - l.first); i < len(l.recs) && maxRecords > 0; i++ {
		if size > 0 && size+len(l.recs[i].Data) > maxBytes {
			break
		}
		size += len(l.recs[i].Data)
		dst = append(dst, l.recs[i])
		maxRecords--
	}
	return dst, nil
}

// Record returns the record at pos, if the log holds it.
func (l *EffectLog) Record(pos uint64) (LogRecord, bool) {
	if pos < l.first || pos >= l.Next() {
		return LogRecord{}, false
	}
	return l.recs[pos-l.first], true
}

// effectLogFormat versions the log's encoding inside replica snapshots.
const effectLogFormat = 1

func (l *EffectLog) encode(e *encoder) {
	e.byte1(effectLogFormat)
	e.uvarint(l.first)
	e.uvarint(uint64(len(l.recs)))
	for i := range l.recs {
		r := &l.recs[i]
		e.origin(r.Origin)
		e.uvarint(r.FirstSeq)
		e.uvarint(r.LastSeq - r.FirstSeq)
		e.uvarint(uint64(r.Time))
		e.bytes(r.Data)
	}
	// Origins whose run state is not implied by the records (joined past
	// them, or trimmed away), sorted for a canonical encoding.
	origins := make([]Origin, 0, len(l.origin))
	for o := range l.origin {
		origins = append(origins, o)
	}
	sort.Slice(origins, func(i, j int) bool { return origins[i].Compare(origins[j]) < 0 })
	e.uvarint(uint64(len(origins)))
	for _, o := range origins {
		r := l.origin[o]
		e.origin(o)
		e.uvarint(r.last)
		e.uvarint(r.contigFrom)
	}
}

func decodeEffectLog(d *decoder, limits LogLimits) *EffectLog {
	l := NewEffectLog(limits)
	if v := d.byte1(); d.err == nil && v != effectLogFormat {
		d.fail()
		return nil
	}
	l.first = d.uvarint()
	if d.err == nil && l.first == 0 {
		d.fail()
	}
	n := d.count(5)
	l.recs = make([]LogRecord, 0, n)
	for i := 0; i < n && d.err == nil; i++ {
		r := LogRecord{Pos: l.first + uint64(i), Origin: d.origin(), FirstSeq: d.uvarint()}
		span := d.uvarint()
		r.LastSeq = r.FirstSeq + span
		r.Time = HLC(d.uvarint())
		r.Data = d.bytes()
		if r.FirstSeq == 0 || r.LastSeq < r.FirstSeq {
			d.fail()
			break
		}
		runs := l.origin[r.Origin]
		if runs == nil {
			runs = &originRuns{}
			l.origin[r.Origin] = runs
		}
		if len(runs.seqs) > 0 && r.FirstSeq <= runs.last {
			d.fail() // an origin's batches are logged in sequence order
			break
		}
		runs.seqs = append(runs.seqs, r.FirstSeq)
		runs.pos = append(runs.pos, r.Pos)
		runs.last = r.LastSeq
		l.recs = append(l.recs, r)
		l.bytes += len(r.Data)
	}
	m := d.count(3)
	for i := 0; i < m && d.err == nil; i++ {
		o := d.origin()
		last, from := d.uvarint(), d.uvarint()
		runs := l.origin[o]
		if runs == nil {
			runs = &originRuns{}
			l.origin[o] = runs
		}
		if last < runs.last {
			d.fail()
			break
		}
		runs.last, runs.contigFrom = last, from
	}
	if d.err != nil {
		return nil
	}
	return l
}
