package crdt

import (
	"bytes"
	"sort"
)

// hllValue is a HyperLogLog: a string (TYPE says "string") whose bytes are
// Redis's HLL encoding. Its CRDT state is not the bytes but what made them:
//
//   - bases: whole values written at once (a string holding a valid HLL
//     that PFADD/PFMERGE/PFCOUNT took over, or the copy RENAME/COPY make),
//     an LWW register;
//   - events: one per PFADD, PFMERGE or cache-filling PFCOUNT, holding the
//     register raises it made (register, new count) in the order it made
//     them, sorted by tag.
//
// The visible bytes are a pure function of that state: start from the
// winning base (or an empty sparse HLL), then replay every event in tag
// order with Redis's own in-place algorithm (hll.go). Register raises
// commute under max, so the registers are the max over everything any
// region added (the union's HLL); the byte layout of a sparse HLL and the
// cached cardinality depend on order, and tag order is the one order every
// replica agrees on. With one region, tag order is the order the commands
// ran in, so the bytes are exactly Redis's.
//
// Only raises that changed a register where they were made are kept: an
// event's origin had seen every event that sorts before it causally, and
// replay only adds to that, so a raise that was a no-op there is a no-op
// in every replay.
//
// With several regions the history is collected by fold ops (fold.go):
// a causally stable prefix of it, in tag order, becomes one fold group
// holding the bytes that prefix replays to, which then acts as a base.
type hllValue struct {
	bases  mvreg[[]byte]
	events []hllEvent
	grp    *foldGroup[[]byte] // nil unless a fold op left one
	cur    []byte             // derived: the replayed bytes, never modified in place
}

// hllEvent is one op's part of an HLL's history.
type hllEvent struct {
	Tag   Tag
	Flags uint8
	Regs  []byte // 3 bytes per raise: register (little endian), count
}

// Event flags (the Int of an EffHLLAdd).
const (
	// hllFlagInvalidate invalidates the cached cardinality even if no
	// register changed (PFMERGE always does; PFADD does when it creates
	// the key).
	hllFlagInvalidate = 1 << iota
	// hllFlagDense converts to the dense encoding first (PFMERGE with a
	// dense source).
	hllFlagDense
	// hllFlagCount fills an invalid cache with the cardinality (PFCOUNT).
	hllFlagCount

	hllFlagsAll = hllFlagInvalidate | hllFlagDense | hllFlagCount
)

func init() {
	registerType(TypeHLL, valueCodec{
		new:    func() value { return &hllValue{} },
		decode: decodeHLL,
	})
}

func (h *hllValue) Type() ValueType { return TypeHLL }

func (h *hllValue) apply(f *Effect, t Tag, c Context) {
	switch f.Kind {
	case EffHLLSet:
		h.dropGroup(c)
		h.bases = h.bases.write(t, bytes.Clone(f.Value), c)
		h.events = removeEvents(h.events, c)
		h.events = removeDot(h.events, t.Dot) // one piece per dot (only a hostile op has both)
		h.rebuild()
	case EffHLLAdd:
		if h.bases.has(t.Dot) {
			return // the op wrote the whole value too (only a hostile one does)
		}
		ev := hllEvent{Tag: t, Flags: uint8(f.Int), Regs: bytes.Clone(f.Value)}
		if h.empty() || t.After(h.maxTag()) {
			// Sorts last (every local op does): continue the replay.
			h.events = append(h.events, ev)
			h.cur = replayEvent(bytes.Clone(h.current()), &ev)
			return
		}
		n := len(h.events)
		i := sort.Search(n, func(i int) bool { return h.events[i].Tag.Compare(t) >= 0 })
		if i < n && h.events[i].Tag.Dot == t.Dot {
			return // a duplicate
		}
		h.events = append(h.events, hllEvent{})
		copy(h.events[i+1:], h.events[i:])
		h.events[i] = ev
		h.rebuild()
	default:
		panic("crdt: hll cannot apply effect " + f.String())
	}
}

// current returns the visible bytes; an HLL with no state yet is the
// empty sparse HLL Redis creates.
func (h *hllValue) current() []byte {
	if h.cur == nil {
		return hllNewSparse()
	}
	return h.cur
}

// bytes returns the visible value (what GET returns).
func (h *hllValue) bytes() []byte { return h.current() }

// rebuild replays the whole history.
func (h *hllValue) rebuild() {
	if h.empty() {
		h.cur = nil
		return
	}
	b := h.start()
	for i := range h.events {
		b = replayEvent(b, &h.events[i])
	}
	h.cur = b
}

// start returns a copy of the bytes the replay starts from: the greatest
// tag's among the bases and the fold group, else an empty sparse HLL.
func (h *hllValue) start() []byte {
	w, ok := h.bases.winner()
	if h.grp != nil && (!ok || h.grp.Tag.After(w.Tag)) {
		return bytes.Clone(h.grp.Val)
	}
	if ok {
		return bytes.Clone(w.Val)
	}
	return hllNewSparse()
}

// dropGroup removes the fold group if c observed every piece it stands for.
func (h *hllValue) dropGroup(c Context) {
	if h.grp != nil && h.grp.removedBy(c) {
		h.grp = nil
	}
}

// replayEvent applies one event to b (which it may modify) as the command
// that made it did, and returns the result.
func replayEvent(b []byte, ev *hllEvent) []byte {
	if ev.Flags&hllFlagDense != 0 {
		if d, ok := hllSparseToDense(b); ok {
			b = d
		}
	}
	changed := false
	for i := 0; i+3 <= len(ev.Regs); i += 3 {
		reg := int(ev.Regs[i]) | int(ev.Regs[i+1])<<8
		var r int
		b, r = hllSet(b, reg, ev.Regs[i+2])
		if r < 0 {
			break // a corrupt sparse value: Redis stops there too
		}
		if r > 0 {
			changed = true
		}
	}
	if changed || ev.Flags&hllFlagInvalidate != 0 {
		hllInvalidate(b)
	}
	if ev.Flags&hllFlagCount != 0 && !hllValidCache(b) {
		if c, ok := hllCount(b); ok {
			hllSetCard(b, c)
		}
	}
	return b
}

func removeEvents(evs []hllEvent, c Context) []hllEvent {
	out := evs[:0]
	for _, ev := range evs {
		if !c.covers(ev.Tag) {
			out = append(out, ev)
		}
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

func removeDot(evs []hllEvent, d Dot) []hllEvent {
	out := evs[:0]
	for _, ev := range evs {
		if ev.Tag.Dot != d {
			out = append(out, ev)
		}
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

func (h *hllValue) removeObserved(c Context) {
	nb, ne, g := len(h.bases), len(h.events), h.grp
	h.dropGroup(c)
	h.bases = h.bases.remove(c)
	h.events = removeEvents(h.events, c)
	if len(h.bases) != nb || len(h.events) != ne || h.grp != g {
		h.rebuild()
	}
}

func (h *hllValue) empty() bool { return len(h.bases) == 0 && len(h.events) == 0 && h.grp == nil }

// pieces counts the bases, events and fold group.
func (h *hllValue) pieces() int {
	n := len(h.bases) + len(h.events)
	if h.grp != nil {
		n++
	}
	return n
}

func (h *hllValue) maxTag() Tag {
	t := h.bases.maxTag()
	if n := len(h.events); n > 0 && h.events[n-1].Tag.After(t) {
		t = h.events[n-1].Tag
	}
	if h.grp != nil && h.grp.Tag.After(t) {
		t = h.grp.Tag
	}
	return t
}

// holdsCovered reports whether an individual piece has a dot v covers.
func (h *hllValue) holdsCovered(v VersionVector) bool {
	for _, x := range h.bases {
		if v.Covers(x.Tag.Dot) {
			return true
		}
	}
	for _, ev := range h.events {
		if v.Covers(ev.Tag.Dot) {
			return true
		}
	}
	return false
}

// eventTags lists the events' tags in the shape the fold helpers take.
func (h *hllValue) eventTags() incList[struct{}] {
	l := make(incList[struct{}], len(h.events))
	for i, ev := range h.events {
		l[i].Tag = ev.Tag
	}
	return l
}

// foldPlan returns the threshold to fold this history at, if any.
func (h *hllValue) foldPlan(stable VersionVector, c Context) (Tag, bool) {
	if h.pieces() < 2 {
		return Tag{}, false
	}
	evs := h.eventTags()
	tau, ok := foldTau(h.bases, evs, h.grp, stable)
	if !ok {
		return Tag{}, false
	}
	if _, ok := foldCheck(h.bases, evs, h.grp, tau, stable, c); !ok {
		return Tag{}, false
	}
	return tau, true
}

// foldAt replaces the pieces with tags <= tau (a prefix of the replay
// order: no base sorts after tau, foldCheck makes sure) by one group
// holding the bytes they replay to; it reports whether it folded.
func (h *hllValue) foldAt(tau Tag, stable VersionVector, c Context) bool {
	evs := h.eventTags()
	ni, ok := foldCheck(h.bases, evs, h.grp, tau, stable, c)
	if !ok {
		return false
	}
	b := h.start()
	for i := range h.events[:ni] {
		b = replayEvent(b, &h.events[i])
	}
	top, cover := foldMeta(h.bases, evs[:ni], h.grp)
	h.bases = nil
	h.events = append([]hllEvent(nil), h.events[ni:]...)
	if len(h.events) == 0 {
		h.events = nil
	}
	h.grp = &foldGroup[[]byte]{Tag: top, Val: b, Cover: cover}
	h.rebuild()
	return true
}

func (h *hllValue) hasEvent(d Dot) bool {
	for _, ev := range h.events {
		if ev.Tag.Dot == d {
			return true
		}
	}
	return false
}

func (h *hllValue) join(mine VersionVector, other value, theirs VersionVector) {
	o := other.(*hllValue)
	// The fold groups first: their rule looks at the pieces each side
	// holds before the join.
	h.grp = joinGroups(h.grp, mine, h.holdsCovered, o.grp, theirs, o.holdsCovered)
	h.bases = h.bases.join(mine, o.bases, theirs)
	var out []hllEvent
	for _, ev := range h.events {
		if o.hasEvent(ev.Tag.Dot) || !theirs.Covers(ev.Tag.Dot) {
			out = append(out, ev)
		}
	}
	for _, ev := range o.events {
		if !h.hasEvent(ev.Tag.Dot) && !mine.Covers(ev.Tag.Dot) {
			out = append(out, hllEvent{Tag: ev.Tag, Flags: ev.Flags, Regs: bytes.Clone(ev.Regs)})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Tag.Compare(out[j].Tag) < 0 })
	h.events = out
	h.rebuild()
}

func (h *hllValue) encode(e *encoder) {
	e.uvarint(uint64(len(h.bases))<<1 | boolBit(h.grp != nil))
	for _, x := range h.bases {
		e.tag(x.Tag)
		e.bytes(x.Val)
	}
	e.uvarint(uint64(len(h.events)))
	for _, ev := range h.events {
		e.tag(ev.Tag)
		e.byte1(ev.Flags)
		e.bytes(ev.Regs)
	}
	if h.grp != nil {
		encodeGroupHead(e, h.grp.Tag, h.grp.Cover)
		e.bytes(h.grp.Val)
	}
}

// decodeHLL reads what encode wrote and checks it is canonical: sorted by
// tag, no duplicate dots, valid HLL bases and well-formed raises.
func decodeHLL(d *decoder) value {
	h := &hllValue{}
	nb, hasGroup := d.countFlag(5)
	for i := 0; i < nb && d.err == nil; i++ {
		t := d.tag()
		v := d.bytes()
		if d.err == nil && (!hllValid(v) || i > 0 && !t.After(h.bases[i-1].Tag) || h.bases.has(t.Dot)) {
			d.fail()
		}
		h.bases = append(h.bases, regVal[[]byte]{Tag: t, Val: v})
	}
	ne := d.count(6)
	for i := 0; i < ne && d.err == nil; i++ {
		t := d.tag()
		fl := d.byte1()
		regs := d.bytes()
		if d.err == nil && (fl&^hllFlagsAll != 0 || !validHLLRegs(regs) ||
			i > 0 && !t.After(h.events[i-1].Tag) || h.hasEvent(t.Dot) || h.bases.has(t.Dot)) {
			d.fail()
		}
		h.events = append(h.events, hllEvent{Tag: t, Flags: fl, Regs: regs})
	}
	if hasGroup {
		t, cover := decodeGroupHead(d)
		v := d.bytes()
		if d.err == nil && !hllValid(v) {
			d.fail()
		}
		h.grp = &foldGroup[[]byte]{Tag: t, Val: v, Cover: cover}
	}
	if d.err != nil {
		return &hllValue{}
	}
	if h.empty() {
		d.fail()
		return h
	}
	h.rebuild()
	return h
}

// validHLLRegs checks an event's raises: whole triples, registers in
// range, counts a 6-bit register can hold.
func validHLLRegs(b []byte) bool {
	if len(b)%3 != 0 {
		return false
	}
	for i := 0; i < len(b); i += 3 {
		if int(b[i])|int(b[i+1])<<8 >= hllRegisters || b[i+2] == 0 || b[i+2] > hllRegMax {
			return false
		}
	}
	return true
}

func (h *hllValue) replay(emit func(Effect)) {
	emit(Effect{Kind: EffHLLSet, Value: h.current()})
}

// compact replaces the history by one base once all of it is causally
// stable (solo mode only, see numeric.compact for why): the base is the
// replayed bytes under the greatest tag, so reads and the type-conflict
// order do not change.
func (h *hllValue) compact(stable VersionVector) {
	if h.pieces() <= 1 && h.grp == nil {
		return
	}
	if h.grp != nil && !stable.Dominates(h.grp.Cover) {
		return
	}
	for _, x := range h.bases {
		if !stable.Covers(x.Tag.Dot) {
			return
		}
	}
	for _, ev := range h.events {
		if !stable.Covers(ev.Tag.Dot) {
			return
		}
	}
	t, v := h.maxTag(), h.current()
	h.bases = append(h.bases[:0], regVal[[]byte]{Tag: t, Val: v})
	h.events = nil
	h.grp = nil
}

// objectEncoding: Redis builds HLLs as raw strings.
func (h *hllValue) objectEncoding() string { return "raw" }

// hllRaise appends one register raise to an event's Regs.
func hllRaise(regs []byte, reg int, count uint8) []byte {
	return append(regs, byte(reg), byte(reg>>8), count)
}
