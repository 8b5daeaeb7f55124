package crdt

import (
	"math"
	"sort"
)

// Sorted sets.
//
// CRDT model. Each member has a record made of a base score register (an
// mvreg written by ZADD) and a list of increments (ZINCRBY). The member is
// present while either holds anything, which makes membership add-wins: a
// ZREM (EffZRem) or DEL observed-removes exactly the writes it had seen, so
// a concurrent ZADD or ZINCRBY elsewhere keeps the member alive.
//
// The visible score is the base winner (the latest ZADD by tag) with the
// surviving increments added in tag order (time, then origin and
// sequence). With one origin that is the order Redis applied them in, so a
// chain of ZINCRBYs gives the same double, bit for bit. Concurrent
// increments from several origins all count (they add up) and are added in
// the same fixed order on every replica. A fold op (fold.go) may replace a
// causally stable prefix of a record by one fold group, which acts as its
// base value. A ZADD removes the increments it observed (the counter
// rule of DESIGN §4): ZADD 10 concurrent with ZINCRBY 5 gives 15.
//
// When a member has no base, the fold starts from its first increment
// rather than from 0 + first increment; the two only differ for -0, and
// starting from the increment is what Redis stores for ZINCRBY on a new
// member.
//
// Infinite scores. inf + x is not invertible, and +inf and -inf increments
// meeting in a fold would give NaN. So increments are always finite: a
// ZINCRBY whose current or resulting score is infinite is shipped as a ZADD
// (EffZAdd) of the resulting score. A fold of finite increments on top of
// any base never produces NaN (once a partial sum overflows to ±inf it
// stays there). Effects carrying NaN, or infinite increments, can only come
// from a corrupt or hostile peer; apply ignores them so the index stays
// well-ordered.
//
// The ordered index (a skiplist with spans) holds every present member at
// its visible score and is updated whenever a visible score changes, so
// rank queries and ranges are O(log n) like Redis.

// zmember is one member's CRDT record.
type zmember struct {
	base  mvreg[float64]
	incs  incList[float64]
	score float64             // visible score, kept in sync with base and incs
	grp   *foldGroup[float64] // nil unless a fold op left one
}

func (m *zmember) present() bool { return len(m.base) > 0 || len(m.incs) > 0 || m.grp != nil }

// unfolded reports whether the record holds more than one piece or an
// increment: what compaction or a fold op could reduce.
func (m *zmember) unfolded() bool {
	n := len(m.base)
	if m.grp != nil {
		n++
	}
	return len(m.incs) > 0 || n > 1
}

// baseWinner returns the greatest-tagged of the base values and the fold
// group.
func (m *zmember) baseWinner() (regVal[float64], bool) {
	w, ok := m.base.winner()
	if g := m.grp; g != nil && (!ok || g.Tag.After(w.Tag)) {
		return regVal[float64]{Tag: g.Tag, Val: g.Val}, true
	}
	return w, ok
}

// dropGroup removes the fold group if c observed every piece it stands for.
func (m *zmember) dropGroup(c Context) {
	if m.grp != nil && m.grp.removedBy(c) {
		m.grp = nil
	}
}

// holdsCovered reports whether an individual piece (a base value or an
// increment) has a dot v covers.
func (m *zmember) holdsCovered(v VersionVector) bool {
	for _, x := range m.base {
		if v.Covers(x.Tag.Dot) {
			return true
		}
	}
	for _, x := range m.incs {
		if v.Covers(x.Tag.Dot) {
			return true
		}
	}
	return false
}

// fold computes the visible score (see the comment at the top of this
// file).
func (m *zmember) fold() float64 {
	var s float64
	started := false
	if w, ok := m.baseWinner(); ok {
		s, started = w.Val, true
	}
	for _, x := range m.incs {
		if !started {
			s, started = x.Delta, true
			continue
		}
		s += x.Delta
	}
	return s
}

func (m *zmember) maxTag() Tag {
	t := m.base.maxTag()
	if u := m.incs.maxTag(); u.After(t) {
		t = u
	}
	if m.grp != nil && m.grp.Tag.After(t) {
		t = m.grp.Tag
	}
	return t
}

// zsetValue is the CRDT state of a sorted set.
type zsetValue struct {
	// members maps member -> record. Its stable slots give ZSCAN cursors
	// Redis's guarantee and ZRANDMEMBER a uniform choice.
	members dict[*zmember]
	// index orders present members by (visible score, member).
	index *zskiplist
	// longMembers counts members longer than zsetListpackValue bytes
	// (OBJECT ENCODING reports skiplist while any exists).
	longMembers int
	// unfolded holds exactly the members whose record has increments or
	// several pieces (zmember.unfolded): the only ones compact or a fold
	// op has work to do on, so that solo mode, which compacts after every
	// write, stays O(1) per member written. Compaction of one member does
	// not depend on another, so the map's iteration order cannot show.
	unfolded map[string]struct{}
}

// Redis 7.0's zset-max-listpack-entries and zset-max-listpack-value
// defaults. They decide what OBJECT ENCODING reports and where Redis's
// listpack representation shows through replies (-0 stored as 0, ZSCAN
// returning everything at once).
const (
	zsetListpackEntries = 128
	zsetListpackValue   = 64
)

func newZsetValue() *zsetValue { return &zsetValue{index: newZskiplist()} }

func init() {
	registerType(TypeZSet, valueCodec{
		new:    func() value { return newZsetValue() },
		decode: decodeZset,
	})
}

// Type implements value.
func (z *zsetValue) Type() ValueType { return TypeZSet }

// card returns the number of members.
func (z *zsetValue) card() int { return z.members.Len() }

// score returns a member's visible score.
func (z *zsetValue) score(member []byte) (float64, bool) {
	m, ok := z.members.Get(string(member))
	if !ok {
		return 0, false
	}
	return m.score, true
}

// listpack reports whether Redis 7.0 would hold a set of this size in a
// listpack (it converts to a skiplist beyond 128 members or when a member
// is longer than 64 bytes).
func (z *zsetValue) listpack() bool {
	return z.card() <= zsetListpackEntries && z.longMembers == 0
}

// objectEncoding is what OBJECT ENCODING reports. Unlike Redis, which never
// converts a skiplist back, it is a function of the current contents only,
// so it is the same on every replica.
func (z *zsetValue) objectEncoding() string {
	if z.listpack() {
		return "listpack"
	}
	return "skiplist"
}

// apply implements value.
func (z *zsetValue) apply(f *Effect, t Tag, c Context) {
	key := string(f.Field)
	m, ok := z.members.Get(key)
	switch f.Kind {
	case EffZAdd:
		if math.IsNaN(f.Float) {
			return
		}
		if !ok {
			m = &zmember{}
		}
		m.dropGroup(c)
		m.incs = m.incs.remove(c)
		m.base = m.base.write(t, f.Float, c)
	case EffZIncr:
		if math.IsNaN(f.Float) || math.IsInf(f.Float, 0) {
			return
		}
		if !ok {
			m = &zmember{}
		}
		m.incs = m.incs.add(t, f.Float)
	case EffZRem:
		if !ok {
			return
		}
		m.dropGroup(c)
		m.base = m.base.remove(c)
		m.incs = m.incs.remove(c)
	default:
		return
	}
	z.update(key, m, ok)
}

// update brings the dict and the index in line with m's new content; had
// says whether key was present before.
func (z *zsetValue) update(key string, m *zmember, had bool) {
	if !m.present() {
		if had {
			delete(z.unfolded, key)
			z.index.delete(m.score, key)
			z.members.Delete(key)
			if len(key) > zsetListpackValue {
				z.longMembers--
			}
		}
		return
	}
	if m.unfolded() {
		if z.unfolded == nil {
			z.unfolded = make(map[string]struct{})
		}
		z.unfolded[key] = struct{}{}
	} else if z.unfolded != nil {
		delete(z.unfolded, key)
	}
	s := m.fold()
	if had {
		// Compare bits, not values: -0 and 0 are equal but print apart.
		if math.Float64bits(s) == math.Float64bits(m.score) {
			return
		}
		z.index.delete(m.score, key)
	} else {
		z.members.Set(key, m)
		if len(key) > zsetListpackValue {
			z.longMembers++
		}
	}
	m.score = s
	z.index.insert(s, key)
}

// removeObserved implements value.
func (z *zsetValue) removeObserved(c Context) {
	// Collect first: update deletes from the dict being walked. Slot order
	// keeps the dict's free list, and so later slot choices, deterministic.
	var keys []string
	var recs []*zmember
	z.members.Each(func(k string, m *zmember) bool {
		keys = append(keys, k)
		recs = append(recs, m)
		return true
	})
	for i, m := range recs {
		m.dropGroup(c)
		m.base = m.base.remove(c)
		m.incs = m.incs.remove(c)
		z.update(keys[i], m, true)
	}
}

// empty implements value.
func (z *zsetValue) empty() bool { return z.members.Len() == 0 }

// maxTag implements value. It is O(n); the keyspace only asks for it when
// a key holds content of two types.
func (z *zsetValue) maxTag() Tag {
	var t Tag
	z.members.Each(func(_ string, m *zmember) bool {
		if u := m.maxTag(); u.After(t) {
			t = u
		}
		return true
	})
	return t
}

// sortedMembers returns the member names in byte order (canonical order
// for encodings and joins).
func (z *zsetValue) sortedMembers() []string {
	out := make([]string, 0, z.members.Len())
	z.members.Each(func(k string, _ *zmember) bool { out = append(out, k); return true })
	sort.Strings(out)
	return out
}

// join implements value.
func (z *zsetValue) join(mine VersionVector, other value, theirs VersionVector) {
	o := other.(*zsetValue)
	// Members of ours first (in slot order), then members only they hold
	// in byte order, so new slots are assigned deterministically.
	var keys []string
	z.members.Each(func(k string, _ *zmember) bool { keys = append(keys, k); return true })
	for _, k := range o.sortedMembers() {
		if _, ok := z.members.Get(k); !ok {
			keys = append(keys, k)
		}
	}
	for _, k := range keys {
		a, had := z.members.Get(k)
		if !had {
			a = &zmember{}
		}
		b, ok := o.members.Get(k)
		if !ok {
			b = &zmember{}
		}
		// Fold groups first: their rule looks at the individual pieces
		// each side holds before the join.
		a.grp = joinGroups(a.grp, mine, a.holdsCovered, b.grp, theirs, b.holdsCovered)
		a.base = a.base.join(mine, b.base, theirs)
		a.incs = a.incs.join(mine, b.incs, theirs)
		z.update(k, a, had)
	}
}

// encode implements value: members in byte order, each with its base
// register and increments (already in canonical order).
func (z *zsetValue) encode(e *encoder) {
	keys := z.sortedMembers()
	e.uvarint(uint64(len(keys)))
	for _, k := range keys {
		m, _ := z.members.Get(k)
		e.str(k)
		e.uvarint(uint64(len(m.base))<<1 | boolBit(m.grp != nil))
		for _, x := range m.base {
			e.tag(x.Tag)
			e.float(x.Val)
		}
		e.uvarint(uint64(len(m.incs)))
		for _, x := range m.incs {
			e.tag(x.Tag)
			e.float(x.Delta)
		}
		if m.grp != nil {
			encodeGroupHead(e, m.grp.Tag, m.grp.Cover)
			e.float(m.grp.Val)
		}
	}
}

// decodeZset reads what encode wrote. It rejects anything encode could not
// have produced (unsorted members or tags, duplicate dots, empty records,
// NaN, infinite increments, malformed fold groups), so a decoded value is
// canonical and its index well-ordered. A format-1 snapshot (d.legacy)
// sorted increments by dot and had no fold groups.
func decodeZset(d *decoder) value {
	z := newZsetValue()
	n := d.count(3)
	prev := ""
	for i := 0; i < n && d.err == nil; i++ {
		k := d.str()
		if i > 0 && k <= prev {
			d.fail()
			break
		}
		prev = k
		m := &zmember{}
		nb, hasGroup := d.countFlag(12)
		for j := 0; j < nb && d.err == nil; j++ {
			t := d.tag()
			v := d.float()
			if math.IsNaN(v) || (j > 0 && !t.After(m.base[j-1].Tag)) {
				d.fail()
				break
			}
			m.base = append(m.base, regVal[float64]{Tag: t, Val: v})
		}
		ni := d.count(12)
		for j := 0; j < ni && d.err == nil; j++ {
			t := d.tag()
			v := d.float()
			if math.IsNaN(v) || math.IsInf(v, 0) || (j > 0 && !incsInOrder(d, m.incs[j-1].Tag, t)) {
				d.fail()
				break
			}
			m.incs = append(m.incs, inc[float64]{Tag: t, Delta: v})
		}
		if hasGroup && d.err == nil {
			t, cover := decodeGroupHead(d)
			if v := d.float(); d.err == nil {
				if math.IsNaN(v) {
					d.fail()
				}
				m.grp = &foldGroup[float64]{Tag: t, Val: v, Cover: cover}
			}
		}
		if d.err == nil && !finishIncs(d, m.incs) {
			break
		}
		if d.err == nil && !m.present() {
			d.fail()
		}
		if d.err != nil {
			break
		}
		z.update(k, m, false)
	}
	return z
}

// replay implements value: one EffZAdd per member with its visible score,
// in index order.
func (z *zsetValue) replay(emit func(Effect)) {
	for n := z.index.first(); n != nil; n = n.next() {
		emit(Effect{Kind: EffZAdd, Field: []byte(n.member), Float: n.score})
	}
}

// compact implements compacter. Once a member's writes are all causally
// stable, its increments are folded into a single base value. The visible
// score does not change, and because later increments are added to the
// folded value in issue order, a solo region keeps matching Redis's double
// arithmetic.
//
// The folded value keeps the base winner's tag (or, without a base, the
// latest increment's). This is sound only where no replica still holds the
// unfolded records — which is how the keyspace uses it (solo mode); with
// several regions the fold op (fold.go) does this job.
func (z *zsetValue) compact(stable VersionVector) {
	for k := range z.unfolded {
		if m, ok := z.members.Get(k); ok && !zFold(m, stable) {
			continue
		}
		delete(z.unfolded, k)
	}
}

// zFold folds m's record into one base value if all of it is stable; it
// reports whether the record is left folded.
func zFold(m *zmember, stable VersionVector) bool {
	for _, x := range m.base {
		if !stable.Covers(x.Tag.Dot) {
			return false
		}
	}
	for _, x := range m.incs {
		if !stable.Covers(x.Tag.Dot) {
			return false
		}
	}
	if m.grp != nil && !stable.Dominates(m.grp.Cover) {
		return false
	}
	if !m.unfolded() {
		return true
	}
	var t Tag
	if w, ok := m.baseWinner(); ok {
		t = w.Tag
	} else {
		t = m.incs.maxTag()
	}
	m.base = mvreg[float64]{{Tag: t, Val: m.score}}
	m.incs = nil
	m.grp = nil
	return true
}

// zelem is one (member, score) pair of a result.
type zelem struct {
	member string
	score  float64
}

// zScoreRange is a score interval as ZRANGEBYSCORE takes it.
type zScoreRange struct {
	min, max     float64
	minex, maxex bool
}

func (r *zScoreRange) gteMin(v float64) bool {
	if r.minex {
		return v > r.min
	}
	return v >= r.min
}

func (r *zScoreRange) lteMax(v float64) bool {
	if r.maxex {
		return v < r.max
	}
	return v <= r.max
}

// emptyRange reports ranges that can hold nothing whatever the set.
func (r *zScoreRange) emptyRange() bool {
	return r.min > r.max || (r.min == r.max && (r.minex || r.maxex))
}

// firstInScore returns the lowest node in r, or nil.
func (z *zsetValue) firstInScore(r *zScoreRange) *zslNode {
	if r.emptyRange() {
		return nil
	}
	n := z.index.firstWhere(func(n *zslNode) bool { return !r.gteMin(n.score) })
	if n == nil || !r.lteMax(n.score) {
		return nil
	}
	return n
}

// lastInScore returns the highest node in r, or nil.
func (z *zsetValue) lastInScore(r *zScoreRange) *zslNode {
	if r.emptyRange() {
		return nil
	}
	n := z.index.lastWhere(func(n *zslNode) bool { return r.lteMax(n.score) })
	if n == nil || !r.gteMin(n.score) {
		return nil
	}
	return n
}

// zLexBound is one end of a lex range: -, + or a string, inclusive or not.
type zLexBound struct {
	inf int // -1 for "-", +1 for "+", 0 for a string
	s   string
	ex  bool
}

// zLexRange is a member interval as ZRANGEBYLEX takes it.
type zLexRange struct{ min, max zLexBound }

// zLexCmp compares a member with a bound value (sdscmplex).
func zLexCmp(v string, b *zLexBound) int {
	switch {
	case b.inf < 0:
		return 1
	case b.inf > 0:
		return -1
	case v < b.s:
		return -1
	case v > b.s:
		return 1
	}
	return 0
}

func (r *zLexRange) gteMin(v string) bool {
	c := zLexCmp(v, &r.min)
	if r.min.ex {
		return c > 0
	}
	return c >= 0
}

func (r *zLexRange) lteMax(v string) bool {
	c := zLexCmp(v, &r.max)
	if r.max.ex {
		return c < 0
	}
	return c <= 0
}

// emptyRange mirrors Redis's check of min against max.
func (r *zLexRange) emptyRange() bool {
	var c int
	switch {
	case r.min.inf == r.max.inf && r.min.inf != 0:
		c = 0
	case r.min.inf < 0 || r.max.inf > 0:
		c = -1
	case r.min.inf > 0 || r.max.inf < 0:
		c = 1
	case r.min.s < r.max.s:
		c = -1
	case r.min.s > r.max.s:
		c = 1
	}
	return c > 0 || (c == 0 && (r.min.ex || r.max.ex))
}

// Lex ranges are meant for sets whose scores are all equal (Redis leaves
// other sets undefined). Then the index is in member order, the range
// predicates are monotone along it and a skiplist search finds the ends in
// O(log n). With mixed scores a skiplist search would give answers that
// depend on the list's shape, which differs between replicas and after a
// snapshot restore, so those sets are scanned linearly instead: the answer
// is then a function of the contents alone, as every write must be.

func (z *zsetValue) uniformScores() bool {
	f, l := z.index.first(), z.index.tail
	return f == nil || f.score == l.score
}

func (z *zsetValue) firstInLex(r *zLexRange) *zslNode {
	if r.emptyRange() {
		return nil
	}
	var n *zslNode
	if z.uniformScores() {
		n = z.index.firstWhere(func(n *zslNode) bool { return !r.gteMin(n.member) })
	} else {
		for n = z.index.first(); n != nil && !r.gteMin(n.member); n = n.next() {
		}
	}
	if n == nil || !r.lteMax(n.member) {
		return nil
	}
	return n
}

func (z *zsetValue) lastInLex(r *zLexRange) *zslNode {
	if r.emptyRange() {
		return nil
	}
	var n *zslNode
	if z.uniformScores() {
		n = z.index.lastWhere(func(n *zslNode) bool { return r.lteMax(n.member) })
	} else {
		for n = z.index.tail; n != nil && !r.lteMax(n.member); n = n.backward {
		}
	}
	if n == nil || !r.gteMin(n.member) {
		return nil
	}
	return n
}

// rankOf returns the 0-based rank of node n.
func (z *zsetValue) rankOf(n *zslNode) int { return z.index.rank(n.score, n.member) - 1 }

// memberRank returns a member's 0-based rank, or -1.
func (z *zsetValue) memberRank(member []byte) int {
	m, ok := z.members.Get(string(member))
	if !ok {
		return -1
	}
	return z.index.rank(m.score, string(member)) - 1
}
