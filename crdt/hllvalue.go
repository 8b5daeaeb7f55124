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
type hllValue struct {
	bases  mvreg[[]byte]
	events []hllEvent
	cur    []byte // derived: the replayed bytes, never modified in place
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
		h.bases = h.bases.write(t, bytes.Clone(f.Value), c)
		h.events = removeEvents(h.events, c)
		h.rebuild()
	case EffHLLAdd:
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
	var b []byte
	if w, ok := h.bases.winner(); ok {
		b = bytes.Clone(w.Val)
	} else {
		b = hllNewSparse()
	}
	for i := range h.events {
		b = replayEvent(b, &h.events[i])
	}
	h.cur = b
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

func (h *hllValue) removeObserved(c Context) {
	nb, ne := len(h.bases), len(h.events)
	h.bases = h.bases.remove(c)
	h.events = removeEvents(h.events, c)
	if len(h.bases) != nb || len(h.events) != ne {
		h.rebuild()
	}
}

func (h *hllValue) empty() bool { return len(h.bases) == 0 && len(h.events) == 0 }

func (h *hllValue) maxTag() Tag {
	t := h.bases.maxTag()
	if n := len(h.events); n > 0 && h.events[n-1].Tag.After(t) {
		t = h.events[n-1].Tag
	}
	return t
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
	e.uvarint(uint64(len(h.bases)))
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
}

// decodeHLL reads what encode wrote and checks it is canonical: sorted by
// tag, no duplicate dots, valid HLL bases and well-formed raises.
func decodeHLL(d *decoder) value {
	h := &hllValue{}
	nb := d.count(5)
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
	if len(h.events) == 0 && len(h.bases) <= 1 {
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
}

// objectEncoding: Redis builds HLLs as raw strings.
func (h *hllValue) objectEncoding() string { return "raw" }

// hllRaise appends one register raise to an event's Regs.
func hllRaise(regs []byte, reg int, count uint8) []byte {
	return append(regs, byte(reg), byte(reg>>8), count)
}
