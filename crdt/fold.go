package crdt

import (
	"bytes"
	"math"
	"sort"
)

// Garbage collection of counter metadata across regions: the fold op.
//
// With several regions every increment (INCR, HINCRBY, ZINCRBY, ...) stays
// a piece of its own, with its tag, until an overwrite observes it, and
// concurrent overwrites stay as losing register values; a long-lived
// counter grows without bound. Solo mode compacts at once (compact), but
// that is unsound across regions: a compacted state joined with one still
// holding the pieces loses data, and regions compacting different sets at
// different times diverge. Here folding is an op like any other.
//
// Issuing. The replication layer computes a version vector S that is
// causally stable at the issuing region X: every region has applied S, and
// X has applied every op any region issued before that region had seen S.
// So every op X has not applied (anywhere, now or later) has a context that
// dominates S, and — because an op's HLC time exceeds that of every op its
// region had applied — a tag greater than every op in S. X then runs
// Keyspace.Fold, which picks items (a string value, a hash field, a zset
// member) and, for each, a threshold tag tau: the greatest tag of a
// stable piece (one S covers) below every piece X holds that S does not
// cover. The pieces with tags up to tau (L) are therefore a prefix, in tag
// order, of every set of pieces the item will hold anywhere: pieces X holds
// beyond S sort after tau by the choice of tau, and pieces X has not seen
// sort after everything in S. The op g carries, per item, an EffFold with
// tau (and S), and is shipped and merged in causal order like any write.
// (So a region whose state goes back in time, restored from a backup under
// a new incarnation, must catch up to every vector it had reported as
// applied before it writes again: its writes would not dominate S.)
//
// Applying g (on X and wherever g arrives, through applyEffect) replaces
// the live pieces with tags <= tau by one fold group: its value is what
// those pieces produce (the register's winner, then the increments in tag
// order), its Tag is the greatest of their tags (so the visible type of a
// key never moves), and its Cover is the dot-wise maximum of their dots.
// Increments are folded in tag order (register.go), so every later sum
// starts from the group's value and adds the rest exactly as it would have
// from the pieces, digit for digit, integers and long-double floats alike.
//
// Why every replica folds the same pieces: when g applies anywhere, every
// op in g's causal past has been applied, so the pieces with tags <= tau
// that X held are there, unless an op X had not seen removed them; such an
// op dominates S, so as an overwrite or remove (SET, HDEL, ZADD, DEL,
// FLUSH...) it removed all of them, and as an increment it sorts after tau.
// A concurrent fold op with a smaller threshold may already have grouped
// part of L; that group's tag is below tau and it is folded in again, and a
// concurrent fold with a greater threshold leaves nothing at or below tau.
// So concurrent folds commute, and a fold meets either L (possibly part-
// grouped) or nothing.
//
// A fold is refused for an item (deterministically: the reason lies in g's
// causal past) when some base value or group sorts after tau: that write
// did not observe every piece of L, would win over the group and drop the
// increments folded into it. It is folded later, once it is stable itself.
//
// Removal: an observed-remove with context C removes a group iff C covers
// every piece it stands for (C dominates Cover). Any op applied after the
// group exists either follows g (so it has seen everything g had) or is
// concurrent with g (so it dominates S): either way it observed all or none
// of the pieces, as it would have without the fold.
//
// Join (state transfer): a group on one side survives iff the other side
// holds the same group (equal tags), or holds no group with a greater tag
// and either has not seen all of the group's pieces (it cannot have removed
// them) or still holds one of them individually (it did not remove them:
// any removal of one removed all). Individual pieces follow the usual rule,
// so the ones a group stands for are dropped: the side holding the group
// has seen them and lacks them. A state that applied g and lacks the group
// removed it; a state that
// never applied g but removed the pieces (an overwrite concurrent with g)
// is recognised by its version vector covering Cover while holding none of
// them. Judging the group by the fold op's dot alone would keep it there.
//
// What is folded: string values, hash fields and zset members, visible or
// hidden by a type conflict, as soon as they hold two pieces or an
// increment. What is not: the tags of a set member's concurrent adds, TTL
// registers and ghost TTLs, and hidden types' content as such (it stays
// until a write removes it).

// foldGroup is what a fold op leaves of a stable prefix of one item's
// pieces. It takes part in the item's register as a base value. Groups are
// immutable once made: a new fold or join makes a new group, so they may be
// shared between states (Join) and their Cover slices are never modified.
type foldGroup[V any] struct {
	Tag   Tag           // greatest tag of the pieces it stands for
	Val   V             // the value those pieces produced
	Cover VersionVector // dot-wise maximum of those pieces' dots
}

// removedBy reports whether an observed-remove with context c removes g:
// c saw every piece g stands for.
func (g *foldGroup[V]) removedBy(c Context) bool {
	if testFault == faultRemoveWins {
		return true
	}
	return ctxDominates(c, g.Cover)
}

// ctxDominates reports whether c covers every dot v covers.
func ctxDominates(c Context, v VersionVector) bool {
	for _, e := range v {
		if !c.Covers(Dot{Origin: e.Origin, Seq: e.Seq}) {
			return false
		}
	}
	return true
}

// joinGroups is the state-based merge of two sides' fold groups for one
// item (see the comment at the top of the file). aHolds and bHolds report
// whether a side holds an individual piece with a dot the vector covers;
// they must look at the sides before the join changes them.
func joinGroups[V any](a *foldGroup[V], mine VersionVector, aHolds func(VersionVector) bool,
	b *foldGroup[V], theirs VersionVector, bHolds func(VersionVector) bool) *foldGroup[V] {
	if a != nil && b != nil && a.Tag == b.Tag {
		// The same pieces folded on both sides: the same group (two
		// different ones only from a hostile peer; pick one canonically).
		if groupLess(b, a) {
			return b
		}
		return a
	}
	if a != nil && (b == nil || b.Tag.Compare(a.Tag) < 0) && groupSurvives(a, theirs, bHolds) {
		return a
	}
	if b != nil && (a == nil || a.Tag.Compare(b.Tag) < 0) && groupSurvives(b, mine, aHolds) {
		return b
	}
	return nil
}

// groupSurvives: the side lacking g (version vector other) did not remove
// g's pieces.
func groupSurvives[V any](g *foldGroup[V], other VersionVector, otherHolds func(VersionVector) bool) bool {
	if testFault == faultFoldJoinByCover {
		return !other.Dominates(g.Cover)
	}
	return !other.Dominates(g.Cover) || otherHolds(g.Cover)
}

// groupLess orders groups with equal tags canonically.
func groupLess[V any](x, y *foldGroup[V]) bool {
	if c := vvCompare(x.Cover, y.Cover); c != 0 {
		return c < 0
	}
	switch xv := any(x.Val).(type) {
	case []byte:
		return bytes.Compare(xv, any(y.Val).([]byte)) < 0
	case float64:
		return math.Float64bits(xv) < math.Float64bits(any(y.Val).(float64))
	}
	return false
}

func vvCompare(a, b VersionVector) int {
	for i := 0; i < len(a) && i < len(b); i++ {
		if c := a[i].Origin.Compare(b[i].Origin); c != 0 {
			return c
		}
		switch {
		case a[i].Seq < b[i].Seq:
			return -1
		case a[i].Seq > b[i].Seq:
			return 1
		}
	}
	return len(a) - len(b)
}

// foldTau picks the fold threshold for one item at the issuing replica:
// the greatest tag of a piece stable covers that is below every piece it
// does not cover. ok is false if there is none.
func foldTau[V, D any](base mvreg[V], incs incList[D], grp *foldGroup[V], stable VersionVector) (tau Tag, ok bool) {
	isStable := func(d Dot) bool { return testFault == faultFoldIgnoresStable || stable.Covers(d) }
	var limit Tag
	limited := false
	note := func(t Tag) {
		if !limited || t.Compare(limit) < 0 {
			limit, limited = t, true
		}
	}
	for _, x := range base {
		if !isStable(x.Tag.Dot) {
			note(x.Tag)
		}
	}
	for _, x := range incs {
		if !isStable(x.Tag.Dot) {
			note(x.Tag)
		}
	}
	grpStable := grp != nil && (testFault == faultFoldIgnoresStable || stable.Dominates(grp.Cover))
	if grp != nil && !grpStable {
		note(grp.Tag)
	}
	consider := func(t Tag) {
		if (!limited || t.Compare(limit) < 0) && (!ok || t.After(tau)) {
			tau, ok = t, true
		}
	}
	for _, x := range base {
		if isStable(x.Tag.Dot) {
			consider(x.Tag)
		}
	}
	for _, x := range incs {
		if isStable(x.Tag.Dot) {
			consider(x.Tag)
		}
	}
	if grpStable {
		consider(grp.Tag)
	}
	return tau, ok
}

// foldCheck reports whether the pieces with tags <= tau (L) can be folded
// into one group, and how many increments they include (a prefix of incs,
// which is sorted by tag). It refuses when L is a single base value or
// group (nothing to fold), when a base value or group sorts after tau (it
// would win over the group and drop L's increments), and when a piece of L
// is not covered by the fold op's context c and by stable (never for an
// honest fold; this keeps a hostile one from folding concurrent writes).
func foldCheck[V, D any](base mvreg[V], incs incList[D], grp *foldGroup[V], tau Tag, stable VersionVector, c Context) (ni int, ok bool) {
	if len(base) > 0 && base[len(base)-1].Tag.After(tau) || grp != nil && grp.Tag.After(tau) {
		return 0, false
	}
	ni = sort.Search(len(incs), func(i int) bool { return incs[i].Tag.After(tau) })
	n := len(base) + ni
	if grp != nil {
		n++
	}
	if n < 2 && ni == 0 {
		return 0, false
	}
	covered := func(d Dot) bool {
		return c.Covers(d) && (testFault == faultFoldIgnoresStable || stable.Covers(d))
	}
	for _, x := range base {
		if !covered(x.Tag.Dot) {
			return 0, false
		}
	}
	for _, x := range incs[:ni] {
		if !covered(x.Tag.Dot) {
			return 0, false
		}
	}
	if grp != nil && (!ctxDominates(c, grp.Cover) || testFault != faultFoldIgnoresStable && !stable.Dominates(grp.Cover)) {
		return 0, false
	}
	return ni, true
}

// foldMeta returns the tag and cover of the group made of every base
// value, incs and grp (the pieces foldCheck accepted).
func foldMeta[V, D any](base mvreg[V], incs incList[D], grp *foldGroup[V]) (Tag, VersionVector) {
	var top Tag
	var cover VersionVector
	if grp != nil {
		top, cover = grp.Tag, grp.Cover.Clone()
	}
	add := func(t Tag) {
		if t.After(top) {
			top = t
		}
		if cover.Get(t.Dot.Origin) < t.Dot.Seq {
			cover = cover.Set(t.Dot.Origin, t.Dot.Seq)
		}
	}
	for _, x := range base {
		add(x.Tag)
	}
	for _, x := range incs {
		add(x.Tag)
	}
	if testFault == faultFoldWinnerTag {
		if w, ok := base.winner(); ok {
			top = w.Tag
		} else if grp != nil {
			top = grp.Tag
		} else if len(incs) > 0 {
			top = incs[0].Tag
		}
	}
	return top, cover
}

// foldPlan returns the threshold to fold this value at, if any.
func (n *numeric) foldPlan(stable VersionVector, c Context) (Tag, bool) {
	if !n.needsCompact() {
		return Tag{}, false
	}
	tau, ok := foldTau(n.base, n.incs(), n.group(), stable)
	if !ok {
		return Tag{}, false
	}
	if _, ok := foldCheck(n.base, n.incs(), n.group(), tau, stable, c); !ok {
		return Tag{}, false
	}
	return tau, true
}

// foldAt applies a fold with threshold tau; it reports whether it folded.
func (n *numeric) foldAt(tau Tag, stable VersionVector, c Context) bool {
	incs, grp := n.incs(), n.group()
	ni, ok := foldCheck(n.base, incs, grp, tau, stable, c)
	if !ok {
		return false
	}
	cur, have := n.baseValue()
	if !have {
		cur = []byte("0")
	}
	for _, x := range incs[:ni] {
		cur = foldStep(cur, x.Delta)
	}
	top, cover := foldMeta(n.base, incs[:ni], grp)
	n.base = nil
	if n.ext == nil {
		n.ext = &numericIncs{}
	}
	if rest := incs[ni:]; len(rest) > 0 {
		n.ext.incs = append(incList[delta](nil), rest...) // let the folded ones go
	} else {
		n.ext.incs = nil
	}
	n.ext.grp = &foldGroup[[]byte]{Tag: top, Val: cur, Cover: cover}
	n.refresh()
	return true
}

// foldPlan returns the threshold to fold this member at, if any.
func (m *zmember) foldPlan(stable VersionVector, c Context) (Tag, bool) {
	if !m.unfolded() {
		return Tag{}, false
	}
	tau, ok := foldTau(m.base, m.incs, m.grp, stable)
	if !ok {
		return Tag{}, false
	}
	if _, ok := foldCheck(m.base, m.incs, m.grp, tau, stable, c); !ok {
		return Tag{}, false
	}
	return tau, true
}

// foldAt applies a fold with threshold tau; it reports whether it folded.
// The caller updates the set's index (the score does not change).
func (m *zmember) foldAt(tau Tag, stable VersionVector, c Context) bool {
	ni, ok := foldCheck(m.base, m.incs, m.grp, tau, stable, c)
	if !ok {
		return false
	}
	// The same fold as zmember.fold, over the folded pieces only.
	var s float64
	started := false
	if w, ok := m.baseWinner(); ok {
		s, started = w.Val, true
	}
	for _, x := range m.incs[:ni] {
		if !started {
			s, started = x.Delta, true
			continue
		}
		s += x.Delta
	}
	top, cover := foldMeta(m.base, m.incs[:ni], m.grp)
	m.base = nil
	if rest := m.incs[ni:]; len(rest) > 0 {
		m.incs = append(incList[float64](nil), rest...)
	} else {
		m.incs = nil
	}
	m.grp = &foldGroup[float64]{Tag: top, Val: s, Cover: cover}
	return true
}

// applyFold applies one EffFold (see the comment at the top of the file);
// it returns the entry it folded, nil if it changed nothing.
func (ks *Keyspace) applyFold(f *Effect, c Context) *entry {
	tau, stable, ok := parseFoldValue(f.Value)
	if !ok || f.DB >= NumDBs || f.Int < 0 || f.Int >= int64(typeEnd) {
		return nil
	}
	d := &ks.dbs[f.DB]
	if ValueType(f.Int) == TypeHLL {
		d.foldHLLTombs(string(f.Key), stable)
	}
	e, ok := d.keys.Get(string(f.Key))
	if !ok {
		return nil
	}
	done := false
	switch v := e.value(ValueType(f.Int)).(type) {
	case *hllValue:
		done = len(f.Field) == 0 && v.foldAt(tau, stable, c)
	case *strValue:
		done = len(f.Field) == 0 && v.foldAt(tau, stable, c)
	case *hashValue:
		name := string(f.Field)
		if n, ok := v.fields.Get(name); ok && n.foldAt(tau, stable, c) {
			v.settle(name, n)
			done = true
		}
	case *zsetValue:
		name := string(f.Field)
		if m, ok := v.members.Get(name); ok && m.foldAt(tau, stable, c) {
			v.update(name, m, true)
			done = true
		}
	}
	if !done {
		return nil
	}
	ks.store(d, e)
	return e
}

// encodeFoldValue is EffFold's Value: the threshold tag, then the stable
// vector.
func encodeFoldValue(tau Tag, stable VersionVector) []byte {
	e := encoder{}
	e.tag(tau)
	e.vv(stable)
	return e.b
}

// parseFoldValue reads encodeFoldValue's output, and only its canonical
// form: a tag with a real dot that the vector covers, and a strictly
// sorted vector without zero entries.
func parseFoldValue(v []byte) (Tag, VersionVector, bool) {
	d := decoder{b: v}
	t := d.tag()
	s := d.vv()
	if d.err != nil || len(d.b) != 0 || t.Dot.Seq == 0 || !s.Covers(t.Dot) && testFault != faultFoldIgnoresStable {
		return Tag{}, nil, false
	}
	for _, x := range s {
		if x.Seq == 0 {
			return Tag{}, nil, false
		}
	}
	if !bytes.Equal(encodeFoldValue(t, s), v) {
		return Tag{}, nil, false // overlong varints
	}
	return t, s, true
}

// validFoldEffect is decodeEffect's check of an EffFold.
func validFoldEffect(f *Effect) bool {
	if f.Flags != 0 {
		return false
	}
	switch f.Int {
	case int64(TypeString), int64(TypeHLL):
		if len(f.Field) != 0 {
			return false
		}
	case int64(TypeHash), int64(TypeZSet):
	default:
		return false
	}
	_, _, ok := parseFoldValue(f.Value)
	return ok
}

// Fold issues a fold op: it picks up to maxItems items (string values,
// hash fields, zset members) whose pieces covered by stable can be folded,
// emits one op with an EffFold for each (tagged and logged like any write:
// this replica's origin, the next sequence number, its version vector as
// dependencies) and applies it through the code Merge runs. It returns the
// batch to ship and how many items it folded; (nil, 0) means nothing was
// foldable and no dot was used.
//
// stable must be causally stable at this replica (see the comment at the
// top of the file); Fold refuses (nil, 0) a vector the replica has not
// applied, and does nothing in solo mode, where writes compact as they go.
// Like Apply it is deterministic: items are taken in key order, per
// database, from a starting point drawn from st.Seed (fields and members
// likewise), so every node of a region, restored from a snapshot or not,
// emits the same op.
func (ks *Keyspace) Fold(st Stamp, stable VersionVector, maxItems int) (*Batch, int) {
	if ks.solo || maxItems <= 0 || !ks.vv.Dominates(stable) {
		return nil, 0
	}
	var s VersionVector // canonical: no zero entries
	for _, x := range stable {
		if x.Seq > 0 {
			s = append(s, x)
		}
	}
	if len(s) == 0 {
		return nil, 0
	}
	b := newBatch(ks)
	ctx := Context{Deps: b.Deps, Origin: ks.self, Upto: b.FirstSeq - 1}
	effs := ks.planFolds(st.Seed, s, ctx, maxItems)
	if len(effs) == 0 {
		return nil, 0
	}
	t := st.Time
	if t <= ks.last {
		t = ks.last + 1
	}
	ks.last = t
	b.Ops = append(b.Ops, Op{Time: t, Effects: effs})
	ks.vv = ks.vv.Set(ks.self, b.FirstSeq)
	tag := b.Tag(0)
	for i := range effs {
		ks.applyEffect(&b.Ops[0].Effects[i], tag, ctx)
	}
	return b, len(effs)
}

// Fold runs Keyspace.Fold and logs the batch for shipping, as Apply does
// for writes. maxKeys bounds the number of items (string keys, hash
// fields, zset members) folded; it returns how many were (0: no batch, no
// dot used). Every node of the issuing region runs it inside deterministic
// apply, with the stamp the leader proposed it with and the same stable
// vector (carried in the proposal).
func (r *Replica) Fold(st Stamp, stable VersionVector, maxKeys int) (folded int) {
	b, n := r.ks.Fold(st, stable, maxKeys)
	if b != nil {
		r.log.Append(b.Origin, b.FirstSeq, b.LastSeq(), b.Ops[0].Time, b.Encode(nil))
	}
	return n
}

// planFolds lists the EffFold effects of a fold op (Fold): items in a
// deterministic order (foldVisit) from a database, key and field drawn
// from seed.
func (ks *Keyspace) planFolds(seed uint64, stable VersionVector, c Context, max int) []Effect {
	r := NewRand(seed ^ 0x5fd1c0a7e3b94d21)
	budget := 16*max + 64
	sv := (&encoder{}).vvBytes(stable)
	var out []Effect
	planned := map[hllFoldKey]bool{}
	emit := func(db int, key string, typ ValueType, field string, tau Tag) {
		e := encoder{b: make([]byte, 0, 24+len(sv))}
		e.tag(tau)
		e.b = append(e.b, sv...)
		f := Effect{Kind: EffFold, DB: uint8(db), Key: []byte(key), Int: int64(typ), Value: e.b}
		if typ != TypeString {
			f.Field = []byte(field)
		}
		out = append(out, f)
	}
	more := func() bool { return len(out) < max }
	first := r.Intn(NumDBs)
	for k := 0; k < NumDBs && more(); k++ {
		dbi := (first + k) % NumDBs
		d := &ks.dbs[dbi]
		foldVisit(&d.keys, d.unfolded, r, budget, func(key string, e *entry) bool {
			for _, v := range e.vals {
				if !more() {
					return false
				}
				switch v := v.(type) {
				case *strValue:
					if tau, ok := v.foldPlan(stable, c); ok {
						emit(dbi, key, TypeString, "", tau)
					}
				case *hllValue:
					if tau, ok := v.foldPlan(stable, c); ok {
						emit(dbi, key, TypeHLL, "", tau)
						planned[hllFoldKey{dbi, key}] = true
					}
				case *hashValue:
					foldVisit(&v.fields, v.dirty, r, budget, func(name string, n *numeric) bool {
						if !more() {
							return false
						}
						if tau, ok := n.foldPlan(stable, c); ok {
							emit(dbi, key, TypeHash, name, tau)
						}
						return more()
					})
				case *zsetValue:
					foldVisit(&v.members, v.unfolded, r, budget, func(name string, m *zmember) bool {
						if !more() {
							return false
						}
						if tau, ok := m.foldPlan(stable, c); ok {
							emit(dbi, key, TypeZSet, name, tau)
						}
						return more()
					})
				}
			}
			return more()
		})
		// HLL tombstones the stable vector covers can go (hlldel.go);
		// the same EffFold folds the key's HLL if it has one.
		for _, key := range tombKeys(d.hllDels, r, budget) {
			if !more() {
				break
			}
			if planned[hllFoldKey{dbi, key}] {
				continue
			}
			for _, x := range d.hllDels[key] {
				if stable.Covers(x.Dot) {
					tau := Tag{Dot: x.Dot}
					if e, ok := d.keys.Get(key); ok {
						if h, ok := e.value(TypeHLL).(*hllValue); ok {
							if t, ok := h.foldPlan(stable, c); ok {
								tau = t
							}
						}
					}
					emit(dbi, key, TypeHLL, "", tau)
					break
				}
			}
		}
	}
	return out
}

type hllFoldKey struct {
	db  int
	key string
}

func (e *encoder) vvBytes(v VersionVector) []byte {
	e.vv(v)
	return e.b
}

// foldVisit calls fn for the elements of dc named in cands, in an order
// that depends only on replicated state and r, until fn returns false. A
// set of at most budget names is visited in byte order from a position
// drawn from r; a larger one in dc's slot order (which every node of a
// region shares, restored from a snapshot or not) from a slot drawn from
// r, looking at no more than 4*budget slots, so one fold costs the same in
// a huge keyspace as in a small one. Candidates not reached are found by
// later folds.
func foldVisit[V any](dc *dict[V], cands map[string]struct{}, r *Rand, budget int, fn func(name string, v V) bool) {
	if len(cands) == 0 {
		return
	}
	if len(cands) <= budget {
		names := make([]string, 0, len(cands))
		for k := range cands {
			names = append(names, k)
		}
		sort.Strings(names)
		off := r.Intn(len(names))
		for j := range names {
			name := names[(off+j)%len(names)]
			if v, ok := dc.Get(name); ok && !fn(name, v) {
				return
			}
		}
		return
	}
	n := len(dc.slots)
	off := r.Intn(n)
	for j := 0; j < n && j < 4*budget; j++ {
		sl := &dc.slots[(off+j)%n]
		if !sl.used {
			continue
		}
		if _, ok := cands[sl.key]; ok && !fn(sl.key, sl.val) {
			return
		}
	}
}

// Unfolded returns the fold backlog: how many items (string values, hash
// fields, zset members, HLLs) hold more than one piece or an increment,
// plus the keys holding HLL tombstones (hlldel.go). It is exact,
// node-local and O(1).
func (ks *Keyspace) Unfolded() int {
	n := ks.unfolded
	for i := range ks.dbs {
		n += len(ks.dbs[i].hllDels)
	}
	return n
}

// unfoldedItems counts e's items holding unfolded pieces.
func (e *entry) unfoldedItems() uint32 {
	var n int
	for _, v := range e.vals {
		switch v := v.(type) {
		case *strValue:
			if v.needsCompact() {
				n++
			}
		case *hllValue:
			if v.pieces() > 1 {
				n++
			}
		case *hashValue:
			n += len(v.dirty)
		case *zsetValue:
			n += len(v.unfolded)
		}
	}
	return uint32(n)
}

// trackUnfolded brings the backlog count and d's fold candidates in line
// with e's content; store calls it wherever an entry changes.
func (ks *Keyspace) trackUnfolded(d *db, e *entry) {
	var n uint32
	if len(e.vals) > 0 {
		n = e.unfoldedItems()
	}
	old := e.unf
	if n == old {
		return
	}
	ks.unfolded += int(n) - int(old)
	e.unf = n
	if ks.solo || (old > 0) == (n > 0) {
		return
	}
	if n > 0 {
		if d.unfolded == nil {
			d.unfolded = make(map[string]struct{})
		}
		d.unfolded[e.key] = struct{}{}
	} else {
		delete(d.unfolded, e.key)
	}
}

// recountUnfolded updates the backlog count after solo compaction (solo
// mode keeps no candidates).
func (ks *Keyspace) recountUnfolded(e *entry) {
	n := e.unfoldedItems()
	ks.unfolded += int(n) - int(e.unf)
	e.unf = n
}

// rebuildUnfolded recomputes the backlog and the candidates from content.
func (ks *Keyspace) rebuildUnfolded() {
	ks.unfolded = 0
	for i := range ks.dbs {
		d := &ks.dbs[i]
		d.unfolded = nil
		d.keys.Each(func(k string, e *entry) bool {
			e.unf = e.unfoldedItems()
			ks.unfolded += int(e.unf)
			if e.unf > 0 {
				if d.unfolded == nil {
					d.unfolded = make(map[string]struct{})
				}
				d.unfolded[k] = struct{}{}
			}
			return true
		})
	}
}

// Encoding helpers for fold groups and the format-2 value encodings.

func boolBit(b bool) uint64 {
	if b {
		return 1
	}
	return 0
}

// countFlag reads a count with a flag in its low bit (format 2) or, in a
// format-1 snapshot, a plain count; like count it checks that min bytes
// per item remain.
func (d *decoder) countFlag(min int) (int, bool) {
	if d.legacy {
		return d.count(min), false
	}
	v := d.uvarint()
	if d.err != nil {
		return 0, false
	}
	if v>>1 > uint64(len(d.b)/min) {
		d.fail()
		return 0, false
	}
	return int(v >> 1), v&1 == 1
}

func encodeGroupHead(e *encoder, t Tag, cover VersionVector) {
	e.tag(t)
	e.vv(cover)
}

// decodeGroupHead reads a group's tag and cover: a non-empty vector
// without zero entries that covers the tag's dot (as every group has).
func decodeGroupHead(d *decoder) (Tag, VersionVector) {
	t := d.tag()
	cover := d.vv()
	if d.err != nil {
		return Tag{}, nil
	}
	ok := len(cover) > 0 && cover.Covers(t.Dot)
	for _, x := range cover {
		ok = ok && x.Seq > 0
	}
	if !ok {
		d.fail()
		return Tag{}, nil
	}
	return t, cover
}

// incsInOrder checks consecutive increments' order in a decoded value: by
// tag, or in a format-1 snapshot by dot.
func incsInOrder(d *decoder, prev, t Tag) bool {
	if d.legacy {
		return dotLess(prev.Dot, t.Dot)
	}
	return t.After(prev)
}

// finishIncs completes a decoded increment list: a format-1 one is sorted
// into tag order, a format-2 one must not repeat a dot. It reports false
// (and fails d) on a repeat.
func finishIncs[D any](d *decoder, l incList[D]) bool {
	if d.legacy {
		sort.Slice(l, func(i, j int) bool { return l[i].Tag.Compare(l[j].Tag) < 0 })
		return true
	}
	if len(l) < 2 {
		return true
	}
	seen := make(map[Dot]struct{}, len(l))
	for _, x := range l {
		if _, dup := seen[x.Tag.Dot]; dup {
			d.fail()
			return false
		}
		seen[x.Tag.Dot] = struct{}{}
	}
	return true
}
