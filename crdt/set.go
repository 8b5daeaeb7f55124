package crdt

import (
	"sort"
	"strconv"
)

// setValue is an add-wins OR-set: each member maps to the tags of the adds
// no remove has observed yet. A member is present while it has a tag.
//
// Members live in a dict so that SSCAN cursors are stable slot numbers and
// SPOP/SRANDMEMBER can pick a slot at random. The slot layout is a pure
// function of the order effects were applied in, which every node of a
// region shares; snapshots carry it (encodeLayout) so a node restored from
// one keeps popping the same members as its peers. The layout never reaches
// the canonical encoding, which differs only when the content does.
type setValue struct {
	items dict[tagSet]
	// nonInt counts members that are not canonical int64 text: with none
	// (and few enough members) Redis would store the set as an intset.
	nonInt int
	// hashtable records that Redis would have converted this set to a
	// hash table by now. Redis never converts back, so OBJECT ENCODING
	// depends on history, not only on content. Node-local: not part of the
	// canonical encoding, carried in snapshot layouts.
	hashtable bool
}

// setMaxIntsetEntries is Redis's set-max-intset-entries default.
const setMaxIntsetEntries = 512

func init() {
	registerType(TypeSet, valueCodec{
		new:    func() value { return &setValue{} },
		decode: decodeSet,
	})
}

func (s *setValue) Type() ValueType { return TypeSet }

func (s *setValue) apply(f *Effect, t Tag, c Context) {
	i, ok := s.slot(f.Field)
	switch f.Kind {
	case EffSetAdd:
		if !ok {
			s.insert(string(f.Field), tagSet{t})
			return
		}
		sl := &s.items.slots[i]
		if len(sl.val) == 1 && c.covers(sl.val[0]) {
			// The usual re-add: it saw the only add, so it replaces it.
			sl.val[0] = t
			return
		}
		s.items.Set(sl.key, sl.val.add(t, c)) // Set keeps the index's copy in step
	case EffSetRem:
		if ok {
			s.update(s.items.slots[i].key, s.items.slots[i].val.remove(c))
		}
	default:
		panic("crdt: set cannot apply effect " + f.String())
	}
}

// slot finds member m's slot. Indexing the map with string(m) directly
// lets the compiler skip allocating the string.
func (s *setValue) slot(m []byte) (int32, bool) {
	r, ok := s.items.index[string(m)]
	return r.slot, ok
}

// insert adds a member that is not present yet.
func (s *setValue) insert(m string, ts tagSet) {
	s.items.Set(m, ts)
	if !isCanonicalInt(m) {
		s.nonInt++
	}
	s.noteEncoding()
}

// update stores a member's new tags, dropping the member when none are left.
func (s *setValue) update(m string, ts tagSet) {
	if len(ts) > 0 {
		s.items.Set(m, ts)
		return
	}
	s.items.Delete(m)
	if !isCanonicalInt(m) {
		s.nonInt--
	}
}

// noteEncoding flips the set to "hashtable" once Redis would have.
func (s *setValue) noteEncoding() {
	if s.nonInt > 0 || s.items.Len() > setMaxIntsetEntries {
		s.hashtable = true
	}
}

func (s *setValue) removeObserved(c Context) {
	var gone []string
	s.items.Each(func(m string, ts tagSet) bool {
		if ts = ts.remove(c); len(ts) == 0 {
			gone = append(gone, m)
		} else {
			s.items.Set(m, ts)
		}
		return true
	})
	for _, m := range gone {
		s.update(m, nil)
	}
}

func (s *setValue) empty() bool { return s.items.Len() == 0 }

// maxTag walks every member; it only matters on a cross-type conflict.
func (s *setValue) maxTag() Tag {
	var max Tag
	s.items.Each(func(_ string, ts tagSet) bool {
		if t := ts.maxTag(); t.After(max) {
			max = t
		}
		return true
	})
	return max
}

func (s *setValue) join(mine VersionVector, other value, theirs VersionVector) {
	o := other.(*setValue)
	// Members both sides know (or only we know) are updated in place, so
	// their slots, and any SSCAN cursor over them, survive the join.
	var dropped []string
	s.items.Each(func(m string, ts tagSet) bool {
		ots, _ := o.items.Get(m)
		j := ts.join(mine, ots, theirs)
		if len(j) == 0 {
			dropped = append(dropped, m)
		} else {
			s.items.Set(m, j)
		}
		return true
	})
	for _, m := range dropped {
		s.update(m, nil)
	}
	// Members only the other side holds get new slots in sorted order, so
	// every node applying the same join builds the same layout.
	for _, m := range o.sortedMembers() {
		if _, ok := s.items.Get(m); ok {
			continue
		}
		ots, _ := o.items.Get(m)
		if j := (tagSet(nil)).join(mine, ots, theirs); len(j) > 0 {
			s.insert(m, j)
		}
	}
}

// sortedMembers returns the members in byte order (canonical order).
func (s *setValue) sortedMembers() []string {
	out := make([]string, 0, s.items.Len())
	s.items.Each(func(m string, _ tagSet) bool { out = append(out, m); return true })
	sort.Strings(out)
	return out
}

// encode writes members in byte order with their tags: equal states give
// equal bytes whatever order effects were applied in.
func (s *setValue) encode(e *encoder) {
	ms := s.sortedMembers()
	e.uvarint(uint64(len(ms)))
	for _, m := range ms {
		ts, _ := s.items.Get(m)
		e.str(m)
		e.uvarint(uint64(len(ts)))
		for _, t := range ts {
			e.tag(t)
		}
	}
}

func decodeSet(d *decoder) value {
	s := &setValue{}
	n := d.count(2)
	prev := ""
	for i := 0; i < n && d.err == nil; i++ {
		m := d.str()
		if i > 0 && m <= prev {
			d.fail() // not canonical: unsorted or duplicate member
			break
		}
		prev = m
		k := d.count(4)
		if k == 0 {
			d.fail() // a member without tags is not present
			break
		}
		ts := make(tagSet, 0, k)
		for j := 0; j < k && d.err == nil; j++ {
			t := d.tag()
			if j > 0 && !t.After(ts[j-1]) {
				d.fail()
				break
			}
			ts = append(ts, t)
		}
		if d.err == nil {
			s.insert(m, ts)
		}
	}
	// A decoded set has no history: derive the encoding from content, as
	// Redis does when it loads an RDB file.
	s.hashtable = false
	s.noteEncoding()
	return s
}

// replay re-adds every member as a fresh write, in slot order (the same on
// every node of a region).
func (s *setValue) replay(emit func(Effect)) {
	s.items.Each(func(m string, _ tagSet) bool {
		emit(Effect{Kind: EffSetAdd, Field: []byte(m)})
		return true
	})
}

// objectEncoding is what Redis 7.0's OBJECT ENCODING reports: "intset"
// while every member is a canonical int64 and there are at most 512 of
// them, and "hashtable" from the first time that stopped being true
// (Redis 7.0 has no listpack sets; 7.2 added them).
func (s *setValue) objectEncoding() string {
	if s.isIntset() {
		return "intset"
	}
	return "hashtable"
}

func (s *setValue) isIntset() bool {
	return !s.hashtable && s.nonInt == 0 && s.items.Len() <= setMaxIntsetEntries
}

// inheritEncoding gives a whole-key copy (RENAME, COPY, MOVE) the source's
// encoding, as Redis moves or duplicates the object itself.
func (s *setValue) inheritEncoding(from value) {
	if f, ok := from.(*setValue); ok && f.hashtable {
		s.hashtable = true
	}
}

// has reports whether m is a member.
func (s *setValue) has(m []byte) bool {
	_, ok := s.slot(m)
	return ok
}

func (s *setValue) card() int { return s.items.Len() }

// list returns the members in the order Redis would: ascending numbers for
// an intset, slot order otherwise.
func (s *setValue) list() []string {
	out := s.slotOrder()
	if s.isIntset() {
		sortInts(out)
	}
	return out
}

// sortInts sorts canonical integer strings numerically.
func sortInts(ms []string) {
	sort.Slice(ms, func(i, j int) bool {
		a, _ := strconv.ParseInt(ms[i], 10, 64)
		b, _ := strconv.ParseInt(ms[j], 10, 64)
		return a < b
	})
}

// isCanonicalInt reports whether s is the canonical text of an int64, the
// test Redis applies before storing a member in an intset (no sign '+', no
// leading zeros, no "-0", no spaces).
func isCanonicalInt(s string) bool {
	_, ok := parseStrictInt([]byte(s))
	return ok
}

// parseStrictInt parses an int64 the way Redis's string2ll does: optional
// '-', digits without leading zeros ("0" alone is fine), nothing else.
func parseStrictInt(b []byte) (int64, bool) {
	if len(b) == 0 || len(b) > 20 {
		return 0, false
	}
	if len(b) == 1 && b[0] == '0' {
		return 0, true
	}
	i := 0
	if b[0] == '-' {
		i++
	}
	if i == len(b) || b[i] < '1' || b[i] > '9' {
		return 0, false
	}
	for _, c := range b[i:] {
		if c < '0' || c > '9' {
			return 0, false
		}
	}
	v, err := strconv.ParseInt(string(b), 10, 64)
	return v, err == nil
}

// encodeLayout writes the node-local parts a restored node needs to make
// the same choices as its peers: the slot of each member (in canonical
// member order), the dict's free-slot stack and the encoding flag.
func (s *setValue) encodeLayout(e *encoder) {
	encodeDictLayout(e, &s.items, s.sortedMembers())
	if s.hashtable {
		e.byte1(1)
	} else {
		e.byte1(0)
	}
}

// decodeLayout rebuilds the slots written by encodeLayout around the
// members decode already placed.
func (s *setValue) decodeLayout(d *decoder) {
	decodeDictLayout(d, &s.items, s.sortedMembers())
	switch d.byte1() {
	case 0:
	case 1:
		s.hashtable = true
	default:
		d.fail()
	}
}

// encodeDictLayout writes the slot of each key of names (which must list
// the dict's keys, in an order the decoder can recompute) and the free
// stack, so decodeDictLayout restores the exact layout: where the next
// insertions go and what Random and scan cursors see.
func encodeDictLayout[V any](e *encoder, dc *dict[V], names []string) {
	e.uvarint(uint64(len(dc.slots)))
	for _, k := range names {
		slot, _ := dc.slotOf(k)
		e.uvarint(uint64(slot))
	}
	e.uvarint(uint64(len(dc.free)))
	for _, f := range dc.free {
		e.uvarint(uint64(f))
	}
}

// decodeDictLayout re-slots dc's keys as encodeDictLayout recorded. It
// rejects layouts that are not a permutation of the keys and free slots.
func decodeDictLayout[V any](d *decoder, dc *dict[V], names []string) {
	n := d.uvarint()
	if d.err != nil {
		return
	}
	// Every slot is either used or on the free stack, and both are
	// written out, so a valid length is bounded by the input size.
	if n < uint64(len(names)) || n-uint64(len(names)) > uint64(len(d.b)) {
		d.fail()
		return
	}
	slots := make([]dictSlot[V], n)
	index := make(map[string]dictRef[V], len(names))
	for _, k := range names {
		i := d.uvarint()
		if d.err != nil || i >= n || slots[i].used {
			d.fail()
			return
		}
		v, _ := dc.Get(k)
		slots[i] = dictSlot[V]{key: k, val: v, used: true}
		index[k] = dictRef[V]{val: v, slot: int32(i)}
	}
	nf := d.uvarint()
	if d.err != nil || nf != n-uint64(len(names)) {
		d.fail()
		return
	}
	free := make([]int32, 0, nf)
	seen := make([]bool, n)
	for j := uint64(0); j < nf; j++ {
		f := d.uvarint()
		if d.err != nil || f >= n || slots[f].used || seen[f] {
			d.fail()
			return
		}
		seen[f] = true
		free = append(free, int32(f))
	}
	if len(names) == 0 {
		*dc = dict[V]{}
		return
	}
	*dc = dict[V]{index: index, slots: slots, free: free}
}

// slotOrder returns the members in slot order.
func (s *setValue) slotOrder() []string {
	out := make([]string, 0, s.items.Len())
	s.items.Each(func(m string, _ tagSet) bool { out = append(out, m); return true })
	return out
}

// members lists the members for the sorted-set commands that accept sets
// as inputs (ZUNION, ZINTER, ... count each member with score 1).
func (s *setValue) members() [][]byte {
	ms := s.list()
	out := make([][]byte, len(ms))
	for i, m := range ms {
		out[i] = []byte(m)
	}
	return out
}
