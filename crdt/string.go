package crdt

import (
	"bytes"
	"math"
	"math/big"
	"strconv"
)

// delta is one increment: an integer, or (float) the text of a float
// increment as the client sent it. Keeping the text rather than a parsed
// value makes the effect exact and lets every replica parse it the same way.
type delta struct {
	float bool
	i     int64
	text  []byte
}

func deltaOf(f *Effect) delta {
	if f.Flags&FlagFloat != 0 {
		return delta{float: true, text: bytes.Clone(f.Value)}
	}
	return delta{i: f.Int}
}

// numeric is the content of a string value or of one hash field: an LWW
// register of byte strings (the overwrites) plus the increments no overwrite
// has observed. Both plain strings and counters live here, because Redis
// lets any string be incremented once it parses as a number.
//
// The visible value is
//   - the register's winner, verbatim, when there are no increments;
//   - otherwise the winner (or "0" if the register is empty) with every
//     increment folded onto it in tag order, one step at a time exactly as
//     Redis would apply them one command after another (see foldStep).
//
// A fold op (fold.go) may have replaced a causally stable prefix of these
// pieces by one fold group, which then takes part in the register as a
// base value (usually the only one).
//
// With increments, it is cached in ext.vis and recomputed whenever the
// content changes, never on read, so concurrent readers see immutable
// state. Plain strings (no increments ever) carry no ext at all: strings are
// the most common keys, and every byte per key counts.
type numeric struct {
	base mvreg[[]byte]
	ext  *numericIncs // nil until the first increment or fold
}

// numericIncs holds a counter's pending increments, its fold group and the
// folded value.
type numericIncs struct {
	incs incList[delta]
	vis  []byte
	grp  *foldGroup[[]byte] // nil unless a fold op left one
}

func (n *numeric) incs() incList[delta] {
	if n.ext == nil {
		return nil
	}
	return n.ext.incs
}

// group returns the fold group (nil if none).
func (n *numeric) group() *foldGroup[[]byte] {
	if n.ext == nil {
		return nil
	}
	return n.ext.grp
}

func (n *numeric) setGroup(g *foldGroup[[]byte]) {
	if g == nil && n.ext == nil {
		return
	}
	if n.ext == nil {
		n.ext = &numericIncs{}
	}
	n.ext.grp = g
}

// empty reports whether no content is left.
func (n *numeric) empty() bool { return len(n.base) == 0 && len(n.incs()) == 0 && n.group() == nil }

// pieces counts the base values, the fold group and the increments.
func (n *numeric) pieces() int {
	c := len(n.base) + len(n.incs())
	if n.group() != nil {
		c++
	}
	return c
}

// baseValue returns the register's winner: the greatest tag among the base
// values and the fold group.
func (n *numeric) baseValue() ([]byte, bool) {
	w, ok := n.base.winner()
	if g := n.group(); g != nil && (!ok || g.Tag.After(w.Tag)) {
		return g.Val, true
	}
	return w.Val, ok
}

// value returns the visible value (nil if empty).
func (n *numeric) value() []byte {
	if n.ext != nil && len(n.ext.incs) > 0 {
		return n.ext.vis
	}
	v, _ := n.baseValue()
	return v
}

// dropGroup removes the fold group if c observed every piece it stands for.
func (n *numeric) dropGroup(c Context) {
	if g := n.group(); g != nil && g.removedBy(c) {
		n.ext.grp = nil
	}
}

// set overwrites: the observed base values and increments go, v is written.
// v is copied: an effect's bytes may alias a client's request buffer.
func (n *numeric) set(t Tag, v []byte, c Context) {
	n.dropGroup(c)
	n.base = n.base.write(t, bytes.Clone(v), c)
	if n.ext != nil {
		n.ext.incs = n.ext.incs.remove(c)
	}
	n.refresh()
}

// incr adds one increment.
func (n *numeric) incr(t Tag, d delta) {
	if n.ext == nil {
		n.ext = &numericIncs{}
	}
	x := n.ext
	last := len(x.incs) == 0 || t.After(x.incs[len(x.incs)-1].Tag)
	wasEmpty := n.empty()
	cur := n.value()
	x.incs = x.incs.add(t, d)
	if last && !wasEmpty {
		// The fold is a left fold in tag order, so an increment that sorts
		// last (every local one does) continues it from the current value:
		// no refold needed.
		x.vis = foldStep(cur, d)
		return
	}
	n.refresh()
}

// removeObserved drops the base values and increments c covers, and the
// fold group if c observed all of it.
func (n *numeric) removeObserved(c Context) {
	n.dropGroup(c)
	n.base = n.base.remove(c)
	if n.ext != nil {
		n.ext.incs = n.ext.incs.remove(c)
	}
	n.refresh()
}

func (n *numeric) join(mine VersionVector, o *numeric, theirs VersionVector) {
	// The fold groups first: their rule looks at the individual pieces
	// each side holds before the join.
	g := joinGroups(n.group(), mine, n.holdsCovered, o.group(), theirs, o.holdsCovered)
	n.base = n.base.join(mine, o.base, theirs)
	if incs := n.incs().join(mine, o.incs(), theirs); len(incs) > 0 {
		if n.ext == nil {
			n.ext = &numericIncs{}
		}
		n.ext.incs = incs
	} else if n.ext != nil {
		n.ext.incs = nil
	}
	n.setGroup(g)
	n.refresh()
}

// holdsCovered reports whether an individual piece (a base value or an
// increment) has a dot v covers.
func (n *numeric) holdsCovered(v VersionVector) bool {
	for _, x := range n.base {
		if v.Covers(x.Tag.Dot) {
			return true
		}
	}
	for _, x := range n.incs() {
		if v.Covers(x.Tag.Dot) {
			return true
		}
	}
	return false
}

func (n *numeric) maxTag() Tag {
	t := n.base.maxTag()
	if u := n.incs().maxTag(); u.After(t) {
		t = u
	}
	if g := n.group(); g != nil && g.Tag.After(t) {
		t = g.Tag
	}
	return t
}

// compact folds the increments into the base once the whole content is
// causally stable: every replica has seen every piece, so no remove can
// arrive that observed only part of it. The folded value takes the greatest
// tag so the key's position in the type-conflict rule does not move.
//
// This is only sound when no other replica exists (solo mode): a state that
// still holds the pieces must not be joined with one that compacted them,
// since the join would treat the folded value and the pieces as distinct
// writes each side had already removed. With several regions, the fold op
// (fold.go) does this job.
func (n *numeric) compact(stable VersionVector) {
	if !n.needsCompact() {
		return
	}
	for _, x := range n.base {
		if !stable.Covers(x.Tag.Dot) {
			return
		}
	}
	for _, x := range n.incs() {
		if !stable.Covers(x.Tag.Dot) {
			return
		}
	}
	if g := n.group(); g != nil && !stable.Dominates(g.Cover) {
		return
	}
	t, v := n.maxTag(), n.value()
	// Reuse the slices (ext stays allocated: a key incremented once is
	// likely a counter): in solo mode every INCR comes through here.
	n.base = append(n.base[:0], regVal[[]byte]{Tag: t, Val: v})
	if n.ext != nil {
		n.ext.incs = n.ext.incs[:0]
		n.ext.vis = nil
		n.ext.grp = nil
	}
}

// needsCompact reports whether compact (or a fold op) could fold anything:
// the content is more than one piece, or holds an increment.
func (n *numeric) needsCompact() bool { return len(n.incs()) > 0 || n.pieces() > 1 }

// refresh recomputes the cached visible value from scratch.
func (n *numeric) refresh() {
	if n.ext == nil {
		return
	}
	if len(n.ext.incs) == 0 {
		n.ext.vis = nil
		return
	}
	cur, ok := n.baseValue()
	if !ok {
		cur = []byte("0")
	}
	for _, x := range n.ext.incs {
		cur = foldStep(cur, x.Delta)
	}
	n.ext.vis = cur
}

// foldStep applies one increment to the value cur as Redis would apply the
// command that made it, and returns the new value (cur itself is never
// modified):
//
//   - an integer increment on a canonical integer adds exactly. Within one
//     origin Redis's overflow check keeps results inside int64, but
//     increments from different origins can add up past it; the sum is then
//     kept exactly (as decimal text) and INCR on it answers Redis's range
//     error, as Redis would for such a value;
//   - a float increment, or an integer increment on a value that is
//     numeric but not an integer (a concurrent SET of "1.5"), adds in x87
//     long double and prints as INCRBYFLOAT does;
//   - on a value that is not a number, or a sum that would be infinite, the
//     increment is skipped. A local INCR on such a value is refused, so this
//     happens only when a concurrent overwrite replaced a counter with text.
//     Skipping is deterministic (every replica folds the same list in the
//     same order) and temporary: the next overwrite that observes the
//     increment removes it.
func foldStep(cur []byte, d delta) []byte {
	if !d.float {
		if v, ok := parseInt64(cur); ok {
			if s, ok := addInt64(v, d.i); ok {
				return strconv.AppendInt(nil, s, 10)
			}
		}
		if canonicalInt(cur) {
			z, _ := new(big.Int).SetString(string(cur), 10)
			return z.Add(z, big.NewInt(d.i)).Append(nil, 10)
		}
	}
	x, st := parseLongDouble(cur)
	if st != ldOK {
		return cur
	}
	var y *big.Float
	if d.float {
		if y, st = parseLongDouble(d.text); st != ldOK {
			return cur // rejected when decoded; kept for safety
		}
	} else {
		y = new(big.Float).SetPrec(ldPrec).SetInt64(d.i)
	}
	z := addLongDouble(x, y)
	if z == nil {
		return cur
	}
	return formatLongDouble(z)
}

// addInt64 adds with Redis's overflow check.
func addInt64(a, b int64) (int64, bool) {
	if b < 0 && a < 0 && b < math.MinInt64-a || b > 0 && a > 0 && b > math.MaxInt64-a {
		return 0, false
	}
	return a + b, true
}

func (n *numeric) encode(e *encoder) {
	g := n.group()
	e.uvarint(uint64(len(n.base))<<1 | boolBit(g != nil))
	for _, x := range n.base {
		e.tag(x.Tag)
		e.bytes(x.Val)
	}
	e.uvarint(uint64(len(n.incs())))
	for _, x := range n.incs() {
		e.tag(x.Tag)
		if x.Delta.float {
			e.byte1(1)
			e.bytes(x.Delta.text)
		} else {
			e.byte1(0)
			e.varint(x.Delta.i)
		}
	}
	if g != nil {
		encodeGroupHead(e, g.Tag, g.Cover)
		e.bytes(g.Val)
	}
}

// decodeNumeric reads what encode wrote and checks that it is canonical
// (base sorted by tag, increments by tag, no duplicate dots, valid float
// texts, a well-formed fold group) and not empty. A format-1 snapshot
// (d.legacy) sorted increments by dot and had no fold groups.
func decodeNumeric(d *decoder) *numeric {
	n := &numeric{}
	// A base value takes at least 5 bytes, an increment 6.
	nb, hasGroup := d.countFlag(5)
	for i := 0; i < nb && d.err == nil; i++ {
		t := d.tag()
		v := d.bytes()
		if i > 0 && !t.After(n.base[i-1].Tag) || n.base.has(t.Dot) {
			d.fail()
			return nil
		}
		n.base = append(n.base, regVal[[]byte]{Tag: t, Val: v})
	}
	ni := d.count(6)
	for i := 0; i < ni && d.err == nil; i++ {
		t := d.tag()
		var x delta
		switch d.byte1() {
		case 0:
			x.i = d.varint()
		case 1:
			x.float = true
			x.text = d.bytes()
			if d.err == nil && !validFloatIncr(x.text) {
				d.fail()
			}
		default:
			d.fail()
		}
		if n.ext == nil {
			n.ext = &numericIncs{}
		}
		if i > 0 && !incsInOrder(d, n.ext.incs[i-1].Tag, t) {
			d.fail()
		}
		n.ext.incs = append(n.ext.incs, inc[delta]{Tag: t, Delta: x})
	}
	if hasGroup {
		t, cover := decodeGroupHead(d)
		v := d.bytes()
		if d.err == nil {
			n.setGroup(&foldGroup[[]byte]{Tag: t, Val: v, Cover: cover})
		}
	}
	if d.err != nil {
		return nil
	}
	if !finishIncs(d, n.incs()) {
		return nil
	}
	if n.empty() {
		d.fail()
		return nil
	}
	n.refresh()
	return n
}

// strValue is a key of type string (counters included).
type strValue struct{ numeric }

func init() {
	registerType(TypeString, valueCodec{
		new: func() value { return &strValue{} },
		decode: func(d *decoder) value {
			n := decodeNumeric(d)
			if n == nil {
				return &strValue{}
			}
			return &strValue{*n}
		},
	})
}

func (s *strValue) Type() ValueType { return TypeString }

func (s *strValue) apply(f *Effect, t Tag, c Context) {
	switch f.Kind {
	case EffStrSet:
		s.set(t, f.Value, c)
	case EffStrIncr:
		s.incr(t, deltaOf(f))
	}
}

func (s *strValue) join(mine VersionVector, other value, theirs VersionVector) {
	s.numeric.join(mine, &other.(*strValue).numeric, theirs)
}

func (s *strValue) encode(e *encoder) { s.numeric.encode(e) }

func (s *strValue) replay(emit func(Effect)) {
	emit(Effect{Kind: EffStrSet, Value: s.value()})
}

// objectEncoding is what OBJECT ENCODING reports, computed from the value
// as Redis 7.0 encodes a freshly SET string: "int", "embstr" up to 44
// bytes, else "raw". (Redis remembers how a value was built: APPEND and
// SETRANGE leave "raw" strings, INCRBYFLOAT never an "int"; that history is
// not kept.)
func (s *strValue) objectEncoding() string {
	return stringEncoding(s.value())
}

// objectRefcount is what OBJECT REFCOUNT reports: Redis shares the objects
// of the integers 0..9999 (OBJ_SHARED_REFCOUNT), every other value has one
// reference.
func (s *strValue) objectRefcount() int64 {
	if v, ok := parseInt64(s.value()); ok && v >= 0 && v < 10000 {
		return math.MaxInt32
	}
	return 1
}

func stringEncoding(v []byte) string {
	if len(v) <= 20 {
		if _, ok := parseInt64(v); ok {
			return "int"
		}
	}
	if len(v) <= 44 {
		return "embstr"
	}
	return "raw"
}
