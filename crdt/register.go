package crdt

import "sort"

// This file holds the generic building blocks every value type is made of:
// multi-value registers, tag sets (add-wins presence) and increment lists.
// All three keep a canonical order so encodings and digests are identical
// on every replica whatever order effects arrived in.

// regVal is one value of a register with the tag of the write that made it.
type regVal[V any] struct {
	Tag Tag
	Val V
}

// mvreg is a multi-value register: it keeps every write not yet overwritten
// by a write that observed it, sorted by tag. The visible value is the
// greatest tag's (last writer wins). Keeping the concurrent losers is what
// makes observed-remove converge: a remover that saw only the winner must
// not take the losers with it.
type mvreg[V any] []regVal[V]

// write removes the values c covers (and any value with t's dot) and adds v.
func (r mvreg[V]) write(t Tag, v V, c Context) mvreg[V] {
	r = r.remove(c)
	out := r[:0]
	for _, x := range r {
		if x.Tag.Dot != t.Dot {
			out = append(out, x)
		}
	}
	i := sort.Search(len(out), func(i int) bool { return out[i].Tag.Compare(t) > 0 })
	out = append(out, regVal[V]{})
	copy(out[i+1:], out[i:])
	out[i] = regVal[V]{Tag: t, Val: v}
	return out
}

// remove drops the values c covers.
func (r mvreg[V]) remove(c Context) mvreg[V] {
	if testFault == faultRemoveWins {
		return nil
	}
	out := r[:0]
	for _, x := range r {
		if !c.covers(x.Tag) {
			out = append(out, x)
		}
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

// winner returns the visible value.
func (r mvreg[V]) winner() (regVal[V], bool) {
	if len(r) == 0 {
		var z regVal[V]
		return z, false
	}
	return r[len(r)-1], true
}

// join is the state-based merge: a value survives if both sides hold it or
// if the side lacking it never saw its dot (so did not remove it).
func (r mvreg[V]) join(mine VersionVector, s mvreg[V], theirs VersionVector) mvreg[V] {
	var out mvreg[V]
	for _, x := range r {
		if s.has(x.Tag.Dot) || !theirs.Covers(x.Tag.Dot) {
			out = append(out, x)
		}
	}
	for _, y := range s {
		if !r.has(y.Tag.Dot) && !mine.Covers(y.Tag.Dot) {
			out = append(out, y)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Tag.Compare(out[j].Tag) < 0 })
	return out
}

func (r mvreg[V]) has(d Dot) bool {
	for _, x := range r {
		if x.Tag.Dot == d {
			return true
		}
	}
	return false
}

// maxTag returns the greatest tag held (zero Tag if empty).
func (r mvreg[V]) maxTag() Tag {
	if len(r) == 0 {
		return Tag{}
	}
	return r[len(r)-1].Tag
}

// tagSet is the presence of one element of an add-wins set: the tags of the
// adds not yet removed by a remove that observed them. Sorted by tag.
type tagSet []Tag

// add replaces the tags c covers with t (a re-add refreshes presence, so a
// concurrent remove elsewhere cannot take an element this write re-added).
func (s tagSet) add(t Tag, c Context) tagSet {
	var r mvreg[struct{}]
	for _, x := range s {
		r = append(r, regVal[struct{}]{Tag: x})
	}
	r = r.write(t, struct{}{}, c)
	out := s[:0]
	for _, x := range r {
		out = append(out, x.Tag)
	}
	return out
}

// remove drops the tags c covers.
func (s tagSet) remove(c Context) tagSet {
	if testFault == faultRemoveWins {
		return nil
	}
	out := s[:0]
	for _, x := range s {
		if !c.covers(x) {
			out = append(out, x)
		}
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

func (s tagSet) has(d Dot) bool {
	for _, x := range s {
		if x.Dot == d {
			return true
		}
	}
	return false
}

// join is the add-wins set merge for one element.
func (s tagSet) join(mine VersionVector, o tagSet, theirs VersionVector) tagSet {
	var out tagSet
	for _, x := range s {
		if o.has(x.Dot) || !theirs.Covers(x.Dot) {
			out = append(out, x)
		}
	}
	for _, y := range o {
		if !s.has(y.Dot) && !mine.Covers(y.Dot) {
			out = append(out, y)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Compare(out[j]) < 0 })
	return out
}

func (s tagSet) maxTag() Tag {
	if len(s) == 0 {
		return Tag{}
	}
	return s[len(s)-1]
}

// inc is one increment with the tag of the op that made it.
type inc[D any] struct {
	Tag   Tag
	Delta D
}

// incList holds the increments no overwrite has observed yet, sorted by tag
// (HLC time, then origin, then sequence). Values are folded in this order,
// so every replica adds floating-point increments in the same order, and one
// origin's increments are folded in the order it issued them (as Redis
// would). Tag order extends causality (an op's time exceeds that of every op
// its region had applied), so increments a region has not seen yet always
// sort after every increment that is causally stable: folding a stable
// prefix into one value (fold.go) leaves every later sum unchanged, digit
// for digit.
type incList[D any] []inc[D]

func dotLess(a, b Dot) bool {
	if c := a.Origin.Compare(b.Origin); c != 0 {
		return c < 0
	}
	return a.Seq < b.Seq
}

// add inserts an increment (an increment with the same tag, hence the same
// dot, is replaced).
func (l incList[D]) add(t Tag, d D) incList[D] {
	i := sort.Search(len(l), func(i int) bool { return l[i].Tag.Compare(t) >= 0 })
	if i < len(l) && l[i].Tag == t {
		l[i] = inc[D]{Tag: t, Delta: d}
		return l
	}
	if testFault == faultDropIncrement && i < len(l) {
		return l
	}
	l = append(l, inc[D]{})
	copy(l[i+1:], l[i:])
	l[i] = inc[D]{Tag: t, Delta: d}
	return l
}

// remove drops the increments c covers.
func (l incList[D]) remove(c Context) incList[D] {
	out := l[:0]
	for _, x := range l {
		if !c.covers(x.Tag) {
			out = append(out, x)
		}
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

func (l incList[D]) has(d Dot) bool {
	for _, x := range l {
		if x.Tag.Dot == d {
			return true
		}
	}
	return false
}

// join merges two increment lists: an increment survives if both hold it or
// the side lacking it never saw it.
func (l incList[D]) join(mine VersionVector, o incList[D], theirs VersionVector) incList[D] {
	var out incList[D]
	for _, x := range l {
		if o.has(x.Tag.Dot) || !theirs.Covers(x.Tag.Dot) {
			out = append(out, x)
		}
	}
	for _, y := range o {
		if !l.has(y.Tag.Dot) && !mine.Covers(y.Tag.Dot) {
			out = append(out, y)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Tag.Compare(out[j].Tag) < 0 })
	return out
}

func (l incList[D]) maxTag() Tag {
	if len(l) == 0 {
		return Tag{}
	}
	return l[len(l)-1].Tag
}
