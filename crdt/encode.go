package crdt

import (
	"encoding/binary"
	"errors"
	"math"
)

// ErrCorrupt is returned by every decoder for input it cannot parse. Decoders
// never panic on hostile input and never allocate more than the input could
// describe.
var ErrCorrupt = errors.New("crdt: corrupt encoding")

// encoder appends a compact binary form; all integers are varints.
type encoder struct{ b []byte }

func (e *encoder) uvarint(v uint64) { e.b = binary.AppendUvarint(e.b, v) }
func (e *encoder) varint(v int64)   { e.b = binary.AppendVarint(e.b, v) }
func (e *encoder) byte1(v byte)     { e.b = append(e.b, v) }
func (e *encoder) bytes(v []byte)   { e.uvarint(uint64(len(v))); e.b = append(e.b, v...) }
func (e *encoder) str(v string)     { e.uvarint(uint64(len(v))); e.b = append(e.b, v...) }
func (e *encoder) float(v float64)  { e.b = binary.LittleEndian.AppendUint64(e.b, math.Float64bits(v)) }
func (e *encoder) origin(o Origin)  { e.uvarint(uint64(o.Region)); e.uvarint(uint64(o.Incarnation)) }
func (e *encoder) dot(d Dot)        { e.origin(d.Origin); e.uvarint(d.Seq) }
func (e *encoder) tag(t Tag)        { e.uvarint(uint64(t.Time)); e.dot(t.Dot) }
func (e *encoder) vv(v VersionVector) {
	e.uvarint(uint64(len(v)))
	for _, x := range v {
		e.origin(x.Origin)
		e.uvarint(x.Seq)
	}
}

// decoder reads what encoder wrote. The first error sticks; later reads
// return zero values, so callers check err once at the end.
type decoder struct {
	b   []byte
	err error
	// legacy is set while reading a format-1 snapshot: increments were
	// sorted by dot then, and no value held a fold group (fold.go).
	legacy bool
}

func (d *decoder) fail() {
	if d.err == nil {
		d.err = ErrCorrupt
	}
	d.b = nil
}

func (d *decoder) uvarint() uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.fail()
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) varint() int64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.fail()
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) byte1() byte {
	if d.err != nil || len(d.b) < 1 {
		d.fail()
		return 0
	}
	v := d.b[0]
	d.b = d.b[1:]
	return v
}

// count reads a length and checks that at least min bytes per item remain,
// so a hostile length cannot make the caller allocate unbounded memory.
func (d *decoder) count(min int) int {
	n := d.uvarint()
	if d.err != nil {
		return 0
	}
	if min < 1 {
		min = 1
	}
	if n > uint64(len(d.b)/min) {
		d.fail()
		return 0
	}
	return int(n)
}

func (d *decoder) bytes() []byte {
	n := d.uvarint()
	if d.err != nil {
		return nil
	}
	if n > uint64(len(d.b)) {
		d.fail()
		return nil
	}
	v := make([]byte, n)
	copy(v, d.b[:n])
	d.b = d.b[n:]
	return v
}

func (d *decoder) str() string { return string(d.bytes()) }

func (d *decoder) float() float64 {
	if d.err != nil || len(d.b) < 8 {
		d.fail()
		return 0
	}
	v := math.Float64frombits(binary.LittleEndian.Uint64(d.b))
	d.b = d.b[8:]
	return v
}

func (d *decoder) u32() uint32 {
	v := d.uvarint()
	if v > math.MaxUint32 {
		d.fail()
		return 0
	}
	return uint32(v)
}

func (d *decoder) origin() Origin { return Origin{Region: d.u32(), Incarnation: d.u32()} }
func (d *decoder) dot() Dot       { return Dot{Origin: d.origin(), Seq: d.uvarint()} }
func (d *decoder) tag() Tag       { return Tag{Time: HLC(d.uvarint()), Dot: d.dot()} }

func (d *decoder) vv() VersionVector {
	n := d.count(3)
	var v VersionVector
	for i := 0; i < n && d.err == nil; i++ {
		o := d.origin()
		seq := d.uvarint()
		if len(v) > 0 && v[len(v)-1].Origin.Compare(o) >= 0 {
			d.fail() // must be strictly sorted: canonical and duplicate-free
			return nil
		}
		v = append(v, VVEntry{Origin: o, Seq: seq})
	}
	return v
}
