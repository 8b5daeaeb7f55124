package crdt

import "fmt"

// Origin identifies a source of writes: a region in one incarnation. A region
// whose state is not provably current takes a new incarnation before it
// accepts writes, so it never reissues dots that peers already hold.
type Origin struct {
	Region      uint32
	Incarnation uint32
}

func (o Origin) String() string { return fmt.Sprintf("%d.%d", o.Region, o.Incarnation) }

// Compare orders origins by region, then incarnation.
func (o Origin) Compare(p Origin) int {
	switch {
	case o.Region < p.Region:
		return -1
	case o.Region > p.Region:
		return 1
	case o.Incarnation < p.Incarnation:
		return -1
	case o.Incarnation > p.Incarnation:
		return 1
	}
	return 0
}

// Dot names one write operation: the origin that applied it first and that
// origin's sequence number for it (1-based, contiguous, assigned in apply).
type Dot struct {
	Origin Origin
	Seq    uint64
}

func (d Dot) String() string { return fmt.Sprintf("%s:%d", d.Origin, d.Seq) }

// HLC is a hybrid logical clock reading: milliseconds since the Unix epoch in
// the high 48 bits, a logical counter in the low 16.
type HLC uint64

const hlcLogicalBits = 16

// HLCFromMillis returns the clock reading at the start of millisecond ms.
func HLCFromMillis(ms int64) HLC {
	if ms < 0 {
		ms = 0
	}
	return HLC(uint64(ms) << hlcLogicalBits)
}

// Millis returns the physical part of the reading.
func (h HLC) Millis() int64 { return int64(uint64(h) >> hlcLogicalBits) }

// Tag is the identity and last-writer-wins position of one write: its HLC
// time and its dot. Tags are totally ordered; no two writes share a dot.
type Tag struct {
	Time HLC
	Dot  Dot
}

// Compare orders tags by time, then origin, then sequence number.
func (t Tag) Compare(u Tag) int {
	switch {
	case t.Time < u.Time:
		return -1
	case t.Time > u.Time:
		return 1
	}
	if c := t.Dot.Origin.Compare(u.Dot.Origin); c != 0 {
		return c
	}
	switch {
	case t.Dot.Seq < u.Dot.Seq:
		return -1
	case t.Dot.Seq > u.Dot.Seq:
		return 1
	}
	return 0
}

// After reports whether t wins over u under last-writer-wins.
func (t Tag) After(u Tag) bool { return t.Compare(u) > 0 }

// Stamp is what a region leader attaches to a proposed write: its clock
// reading and a seed for any randomness the command needs. Apply derives the
// op's time as max(Stamp.Time, last applied time + 1), so times strictly
// increase even when a new leader's clock is behind.
type Stamp struct {
	Time HLC
	Seed uint64
}
