package crdt

import "sort"

// Delete wins over a concurrent PFADD (DESIGN §4).
//
// Observed-remove, the rule for every other type, would keep the register
// raises of a PFADD the DEL had not seen. For an HLL that leaves a
// meaningless remnant: only the raises that happened to change a register
// survive, not the elements the concurrent PFADD named (an element whose
// register was already high enough raised nothing), so the "survivor" is
// not the HLL of any set of elements. Delete-wins keeps the HLL
// meaningful: after a DEL, the key's HLL holds exactly the elements added
// by writes that had seen the DEL.
//
// So a removal (EffDelKey) whose origin held HLL content under the key
// carries FlagHLLDel, and every replica then
//
//   - drops all HLL content present (with causal delivery nothing present
//     can be causally after the removal), and
//   - keeps a tombstone (the removal's dot and context) so that an HLL
//     write that arrives later and had not seen the removal (its context
//     does not cover the tombstone's dot) is dropped too. A state transfer
//     applies the same test to the side that had not seen a tombstone.
//
// A tombstone whose dot another tombstone's context covers is redundant
// (whatever had not seen the older removal had not seen the newer one
// either) and is pruned, so each key keeps only the latest removals, one
// unless removals were concurrent, and every replica keeps the same set.
// A fold op (fold.go) drops the tombstones its causally stable vector
// covers: every write applied after it has seen them. State transfer
// joins tombstones by observed-remove, so one collected on one side stays
// collected. Solo mode keeps none: nothing can be concurrent there.
//
// FLUSHDB and FLUSHALL stay observed-removes, and the rule covers only
// HLL content: other types under the key (a type conflict) follow their
// own rules.

// hllTomb is one HLL removal: its dot and what it had seen.
type hllTomb struct {
	Dot  Dot
	Seen VersionVector
}

// contextVV turns a context into the version vector of what it had seen.
func contextVV(c Context) VersionVector {
	v := c.Deps.Clone()
	if c.Upto > 0 {
		v = v.Set(c.Origin, c.Upto)
	}
	return v
}

// hllCancelled reports whether an HLL write with tag t and context c had
// not seen one of the tombstones (a write in the same op as the removal,
// RENAME's fresh content, counts as after it).
func hllCancelled(ts []hllTomb, t Tag, c Context) bool {
	for _, x := range ts {
		if x.Dot != t.Dot && !c.Covers(x.Dot) {
			return true
		}
	}
	return false
}

// hllUnseen reports whether a replica at version v had not seen one of
// the tombstones: its HLL content then predates or is concurrent with it.
func hllUnseen(ts []hllTomb, v VersionVector) bool {
	for _, x := range ts {
		if !v.Covers(x.Dot) {
			return true
		}
	}
	return false
}

// pruneTombs keeps the tombstones no other one's context covers, sorted
// by dot: the canonical set every replica agrees on.
func pruneTombs(ts []hllTomb) []hllTomb {
	var out []hllTomb
	for i, x := range ts {
		keep := true
		for j, y := range ts {
			if i != j && (y.Seen.Covers(x.Dot) || y.Dot == x.Dot && j < i) {
				keep = false
				break
			}
		}
		if keep {
			out = append(out, x)
		}
	}
	sort.Slice(out, func(i, j int) bool { return dotLess(out[i].Dot, out[j].Dot) })
	return out
}

// addHLLTomb records a removal of key's HLL content.
func (d *db) addHLLTomb(key string, t Tag, c Context) {
	ts := append(d.hllDels[key][:len(d.hllDels[key]):len(d.hllDels[key])], hllTomb{Dot: t.Dot, Seen: contextVV(c)})
	if d.hllDels == nil {
		d.hllDels = make(map[string][]hllTomb)
	}
	d.hllDels[key] = pruneTombs(ts)
}

// joinHLLTombs merges the other replica's tombstones for key into d. A
// tombstone one side lacks although it saw its removal was collected or
// pruned there, and goes: the observed-remove rule.
func (d *db) joinHLLTombs(key string, mine VersionVector, theirs []hllTomb, theirVV VersionVector) {
	ours := d.hllDels[key]
	if len(ours) == 0 && len(theirs) == 0 {
		return
	}
	has := func(ts []hllTomb, x Dot) bool {
		for _, y := range ts {
			if y.Dot == x {
				return true
			}
		}
		return false
	}
	var ts []hllTomb
	for _, x := range ours {
		if has(theirs, x.Dot) || !theirVV.Covers(x.Dot) {
			ts = append(ts, x)
		}
	}
	for _, x := range theirs {
		if !has(ours, x.Dot) && !mine.Covers(x.Dot) {
			ts = append(ts, x)
		}
	}
	if ts = pruneTombs(ts); len(ts) == 0 {
		delete(d.hllDels, key)
		return
	}
	if d.hllDels == nil {
		d.hllDels = make(map[string][]hllTomb)
	}
	d.hllDels[key] = ts
}

// foldHLLTombs drops key's tombstones that stable covers, as a fold op
// that carries stable does: once it applies, every write not applied yet
// here dominates stable (fold.go), so it has seen those removals.
func (d *db) foldHLLTombs(key string, stable VersionVector) {
	ts := d.hllDels[key]
	out := ts[:0:0]
	for _, x := range ts {
		if !stable.Covers(x.Dot) {
			out = append(out, x)
		}
	}
	if len(out) == len(ts) {
		return
	}
	if len(out) == 0 {
		delete(d.hllDels, key)
		return
	}
	d.hllDels[key] = out
}

// tombKeys returns up to max keys of m, in byte order from a position
// drawn from r (deterministic: r comes from the fold op's stamp).
func tombKeys(m map[string][]hllTomb, r *Rand, max int) []string {
	if len(m) == 0 {
		return nil
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	off := r.Intn(len(keys))
	keys = append(keys[off:], keys[:off]...)
	if len(keys) > max {
		keys = keys[:max]
	}
	return keys
}

// unobserved reports whether c had not seen some of the content.
func (h *hllValue) unobserved(c Context) bool {
	for _, x := range h.bases {
		if !c.covers(x.Tag) {
			return true
		}
	}
	for _, ev := range h.events {
		if !c.covers(ev.Tag) {
			return true
		}
	}
	return h.grp != nil && !ctxDominates(c, h.grp.Cover)
}

// HLLTombstones counts the HLL removal tombstones kept in every database:
// the backlog delete-wins holds until fold ops collect it.
func (ks *Keyspace) HLLTombstones() int {
	n := 0
	for i := range ks.dbs {
		for _, ts := range ks.dbs[i].hllDels {
			n += len(ts)
		}
	}
	return n
}

// clear drops all content (a delete-wins removal).
func (h *hllValue) clear() {
	h.bases, h.events, h.grp, h.cur = nil, nil, nil, nil
}

func (e *encoder) hllTombs(ts []hllTomb) {
	e.uvarint(uint64(len(ts)))
	for _, x := range ts {
		e.dot(x.Dot)
		e.vv(x.Seen)
	}
}

// decodeHLLTombs reads one key's tombstones and checks they are canonical.
func decodeHLLTombs(d *decoder) []hllTomb {
	n := d.count(3)
	var ts []hllTomb
	for i := 0; i < n && d.err == nil; i++ {
		ts = append(ts, hllTomb{Dot: d.dot(), Seen: d.vv()})
	}
	if d.err != nil {
		return nil
	}
	if n == 0 || len(pruneTombs(ts)) != n {
		d.fail()
		return nil
	}
	for i := 1; i < n; i++ {
		if !dotLess(ts[i-1].Dot, ts[i].Dot) {
			d.fail()
			return nil
		}
	}
	return ts
}
