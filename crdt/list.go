package crdt

import (
	"math"
	"strconv"
)

// listValue is a list as a sequence CRDT with dense, immutable positions
// (the Logoot/LSEQ family rather than RGA; docs/lists.md says why). Every
// element carries a position that is totally ordered against every other
// position on its own, without reference to neighbours: a sequence of
// components (n, dot, sub), compared lexicographically with a proper prefix
// ordering first. The last component holds the dot of the op that inserted
// the element and the element's index within that op, so no two elements
// ever share a position, and the position doubles as the element's identity.
//
// Because order never depends on other elements, a removed element leaves
// nothing behind: there are no tombstones to collect, the list is an
// observed-remove set of positioned elements, and join is an OR-set join.
// Pushes at either end take one component whose n is one step past the
// current end, so job queues (LPUSH + RPOP) keep one-component positions
// forever; only LINSERT between two adjacent positions may add components.
//
// Elements live in a treap ordered by position with subtree sizes, so
// pushes, pops, access by index and LRANGE offsets are O(log n). Treap
// priorities are a hash of the position's last component: the shape is a
// function of the content, and nothing observable depends on it anyway.
type listValue struct {
	root *lnode
}

// lcomp is one component of a position.
type lcomp struct {
	n   int64
	dot Dot
	sub int32
}

func (a lcomp) cmp(b lcomp) int {
	switch {
	case a.n < b.n:
		return -1
	case a.n > b.n:
		return 1
	}
	if c := a.dot.Origin.Compare(b.dot.Origin); c != 0 {
		return c
	}
	switch {
	case a.dot.Seq < b.dot.Seq:
		return -1
	case a.dot.Seq > b.dot.Seq:
		return 1
	case a.sub < b.sub:
		return -1
	case a.sub > b.sub:
		return 1
	}
	return 0
}

// lpos is a position: head is its first component, rest the others (nil
// for every element a push made). rest is a pointer so that a node with a
// one-component position, the common case, fits a 96-byte size class.
type lpos struct {
	head lcomp
	rest *[]lcomp
}

func (p *lpos) tail() []lcomp {
	if p.rest == nil {
		return nil
	}
	return *p.rest
}

func (p *lpos) len() int { return 1 + len(p.tail()) }

func (p *lpos) at(i int) lcomp {
	if i == 0 {
		return p.head
	}
	return p.tail()[i-1]
}

func (p *lpos) last() lcomp { return p.at(p.len() - 1) }

func (p *lpos) comps() []lcomp {
	out := make([]lcomp, 0, p.len())
	out = append(out, p.head)
	return append(out, p.tail()...)
}

func posFromComps(cs []lcomp) lpos {
	p := lpos{head: cs[0]}
	if len(cs) > 1 {
		r := append([]lcomp(nil), cs[1:]...)
		p.rest = &r
	}
	return p
}

func comparePos(a, b *lpos) int {
	if c := a.head.cmp(b.head); c != 0 {
		return c
	}
	ar, br := a.tail(), b.tail()
	n := len(ar)
	if len(br) < n {
		n = len(br)
	}
	for i := 0; i < n; i++ {
		if c := ar[i].cmp(br[i]); c != 0 {
			return c
		}
	}
	switch {
	case len(ar) < len(br):
		return -1
	case len(ar) > len(br):
		return 1
	}
	return 0
}

// lnode is one element and its treap links.
type lnode struct {
	l, r *lnode
	size int32
	prio uint32
	pos  lpos
	val  string
	// itime is the inserting op's time: with the last component's dot it
	// is the element's insertion tag.
	itime HLC
	// set is the tag of the LSET whose value is shown, nil while the
	// inserted value stands (most elements are never LSET).
	set *Tag
}

// valTag is the last-writer-wins tag of the element's value.
func (n *lnode) valTag() Tag {
	if n.set != nil {
		return *n.set
	}
	return n.insTag()
}

func (n *lnode) insTag() Tag { return Tag{Time: n.itime, Dot: n.pos.last().dot} }

func newLnode(p lpos, val string, itime HLC) *lnode {
	c := p.last()
	x := c.dot.Seq*0x9e3779b97f4a7c15 ^ uint64(c.dot.Origin.Region)<<32 ^ uint64(c.dot.Origin.Incarnation) ^
		uint64(uint32(c.sub))*0xbf58476d1ce4e5b9 ^ uint64(c.n)
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	x ^= x >> 31
	return &lnode{size: 1, prio: uint32(x), pos: p, val: val, itime: itime}
}

func sizeOf(n *lnode) int32 {
	if n == nil {
		return 0
	}
	return n.size
}

func (n *lnode) fix() { n.size = 1 + sizeOf(n.l) + sizeOf(n.r) }

// split cuts t into the nodes before p and those at or after it.
func split(t *lnode, p *lpos) (*lnode, *lnode) {
	if t == nil {
		return nil, nil
	}
	if comparePos(&t.pos, p) < 0 {
		a, b := split(t.r, p)
		t.r = a
		t.fix()
		return t, b
	}
	a, b := split(t.l, p)
	t.l = b
	t.fix()
	return a, t
}

// merge joins two treaps, every node of a before every node of b.
func merge(a, b *lnode) *lnode {
	switch {
	case a == nil:
		return b
	case b == nil:
		return a
	case a.prio >= b.prio:
		a.r = merge(a.r, b)
		a.fix()
		return a
	default:
		b.l = merge(a, b.l)
		b.fix()
		return b
	}
}

func tinsert(t, n *lnode) *lnode {
	if t == nil {
		return n
	}
	if n.prio > t.prio {
		n.l, n.r = split(t, &n.pos)
		n.fix()
		return n
	}
	if comparePos(&n.pos, &t.pos) < 0 {
		t.l = tinsert(t.l, n)
	} else {
		t.r = tinsert(t.r, n)
	}
	t.fix()
	return t
}

// tdelete removes the node at p; ok is false if there is none.
func tdelete(t *lnode, p *lpos) (*lnode, bool) {
	if t == nil {
		return nil, false
	}
	c := comparePos(p, &t.pos)
	if c == 0 {
		return merge(t.l, t.r), true
	}
	var ok bool
	if c < 0 {
		t.l, ok = tdelete(t.l, p)
	} else {
		t.r, ok = tdelete(t.r, p)
	}
	if ok {
		t.fix()
	}
	return t, ok
}

func (l *listValue) find(p *lpos) *lnode {
	t := l.root
	for t != nil {
		switch c := comparePos(p, &t.pos); {
		case c == 0:
			return t
		case c < 0:
			t = t.l
		default:
			t = t.r
		}
	}
	return nil
}

// at returns the element at index i (0-based, in range).
func (l *listValue) at(i int) *lnode {
	t := l.root
	for t != nil {
		ls := int(sizeOf(t.l))
		switch {
		case i < ls:
			t = t.l
		case i == ls:
			return t
		default:
			i -= ls + 1
			t = t.r
		}
	}
	return nil
}

func (l *listValue) length() int { return int(sizeOf(l.root)) }

// walk calls fn on the elements from index from on, in order, until fn
// returns false: O(log n) to reach from, then O(1) amortised per element.
func (l *listValue) walk(from int, fn func(*lnode) bool) {
	var stack []*lnode
	t := l.root
	// Descend to from, keeping the ancestors still to be visited.
	for t != nil {
		ls := int(sizeOf(t.l))
		if from < ls {
			stack = append(stack, t)
			t = t.l
		} else if from == ls {
			stack = append(stack, t)
			break
		} else {
			from -= ls + 1
			t = t.r
		}
	}
	for len(stack) > 0 {
		n := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if !fn(n) {
			return
		}
		for c := n.r; c != nil; c = c.l {
			stack = append(stack, c)
		}
	}
}

// walkBack is walk from index from towards the head.
func (l *listValue) walkBack(from int, fn func(*lnode) bool) {
	var stack []*lnode
	t := l.root
	for t != nil {
		ls := int(sizeOf(t.l))
		if from < ls {
			t = t.l
		} else if from == ls {
			stack = append(stack, t)
			break
		} else {
			stack = append(stack, t)
			from -= ls + 1
			t = t.r
		}
	}
	for len(stack) > 0 {
		n := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if !fn(n) {
			return
		}
		for c := n.l; c != nil; c = c.r {
			stack = append(stack, c)
		}
	}
}

// nodes returns every element in order.
func (l *listValue) nodes() []*lnode {
	out := make([]*lnode, 0, l.length())
	l.walk(0, func(n *lnode) bool { out = append(out, n); return true })
	return out
}

// build makes a treap of nodes already in position order, in O(n).
func build(ns []*lnode) *lnode {
	var stack []*lnode
	for _, n := range ns {
		n.l, n.r = nil, nil
		var last *lnode
		for len(stack) > 0 && stack[len(stack)-1].prio < n.prio {
			last = stack[len(stack)-1]
			stack = stack[:len(stack)-1]
		}
		n.l = last
		if len(stack) > 0 {
			stack[len(stack)-1].r = n
		}
		stack = append(stack, n)
	}
	if len(stack) == 0 {
		return nil
	}
	var fixAll func(*lnode)
	fixAll = func(t *lnode) {
		if t == nil {
			return
		}
		fixAll(t.l)
		fixAll(t.r)
		t.fix()
	}
	root := stack[0]
	fixAll(root)
	return root
}

// listStep is the gap pushes leave between one end and the next element,
// so LINSERT can bisect it sixteen times before a position needs a second
// component. Each end has room for 2^47 pushes.
const listStep = 1 << 16

// between returns the prefix and n of a position strictly between p and q
// (p nil: before q; q nil: after p; both nil: an empty list). The new
// element's position is prefix + (n, op dot, sub). ok is false only when an
// end of the int64 range is reached.
func between(p, q *lpos) (prefix []lcomp, n int64, ok bool) {
	var pl, ql []lcomp
	if p != nil {
		pl = p.comps()
	}
	hasQ := q != nil
	if hasQ {
		ql = q.comps()
	}
	for {
		hasLo, hasHi := len(pl) > 0, hasQ && len(ql) > 0
		switch {
		case !hasLo && !hasHi:
			return prefix, 0, true
		case !hasLo:
			hi := ql[0].n
			if hi < math.MinInt64+listStep {
				return nil, 0, false
			}
			return prefix, hi - listStep, true
		case !hasHi:
			lo := pl[0].n
			if lo > math.MaxInt64-listStep {
				return nil, 0, false
			}
			return prefix, lo + listStep, true
		}
		lo, hi := pl[0].n, ql[0].n
		if gap := uint64(hi) - uint64(lo); hi > lo && gap > 1 {
			return prefix, lo + int64(gap/2), true
		}
		// No integer between the first components: extend p's.
		prefix = append(prefix, pl[0])
		if pl[0].cmp(ql[0]) == 0 {
			ql = ql[1:]
		} else {
			hasQ = false // everything under pl[0] is before q
		}
		pl = pl[1:]
	}
}

func init() {
	registerType(TypeList, valueCodec{
		new:    func() value { return &listValue{} },
		decode: decodeList,
	})
}

func (l *listValue) Type() ValueType { return TypeList }

func (l *listValue) apply(f *Effect, t Tag, c Context) {
	switch f.Kind {
	case EffListInsert:
		prefix, n, vals, ok := parseListInsert(f)
		if !ok {
			panic("crdt: invalid list insert " + f.String())
		}
		for i, v := range vals {
			cs := append(append(make([]lcomp, 0, len(prefix)+1), prefix...),
				lcomp{n: n, dot: t.Dot, sub: int32(int64(i) * f.Int)})
			p := posFromComps(cs)
			if l.find(&p) != nil {
				continue // a position is inserted once
			}
			l.root = tinsert(l.root, newLnode(p, string(v), t.Time))
		}
	case EffListRem, EffListPop:
		ps, ok := parseListPositions(f.Value)
		if !ok {
			panic("crdt: invalid list removal " + f.String())
		}
		for i := range ps {
			l.root, _ = tdelete(l.root, &ps[i])
		}
	case EffListSet:
		p, ok := parseListPos(f.Field)
		if !ok {
			panic("crdt: invalid list set " + f.String())
		}
		// A removed element stays removed: LSET concurrent with its
		// removal is lost (documented).
		if n := l.find(&p); n != nil && t.After(n.valTag()) {
			n.val = string(f.Value)
			tt := t
			n.set = &tt
		}
	default:
		panic("crdt: list cannot apply effect " + f.String())
	}
}

// missingPops counts the elements a pop effect names that are gone
// already: popped (or removed) concurrently elsewhere, so the element was
// returned by more than one region.
func (l *listValue) missingPops(f *Effect) uint64 {
	ps, ok := parseListPositions(f.Value)
	if !ok {
		return 0
	}
	var n uint64
	for i := range ps {
		if l == nil || l.find(&ps[i]) == nil {
			n++
		}
	}
	return n
}

// countListPops adds the concurrent pops effect f reveals to st: f is
// applied to l (nil when the key holds no list here any more).
func countListPops(st *Stats, f *Effect, v value) {
	if f.Kind != EffListPop {
		return
	}
	l, _ := v.(*listValue)
	st.ListConcurrentPops += l.missingPops(f)
}

func (l *listValue) removeObserved(c Context) {
	ns := l.nodes()
	out := ns[:0]
	for _, n := range ns {
		if !c.Covers(n.pos.last().dot) {
			out = append(out, n)
		}
	}
	if len(out) != len(ns) {
		l.root = build(out)
	}
}

func (l *listValue) empty() bool { return l.root == nil }

func (l *listValue) maxTag() Tag {
	var max Tag
	l.walk(0, func(n *lnode) bool {
		if t := n.valTag(); t.After(max) {
			max = t
		}
		return true
	})
	return max
}

// join is the OR-set join over positions: an element survives if both
// sides hold it or the side lacking it never saw its dot (so it was not
// removed there); a value is the later of the two LWW writes.
func (l *listValue) join(mine VersionVector, other value, theirs VersionVector) {
	a, b := l.nodes(), other.(*listValue).nodes()
	out := make([]*lnode, 0, len(a)+len(b))
	i, j := 0, 0
	for i < len(a) || j < len(b) {
		var c int
		switch {
		case i == len(a):
			c = 1
		case j == len(b):
			c = -1
		default:
			c = comparePos(&a[i].pos, &b[j].pos)
		}
		switch {
		case c == 0:
			if b[j].valTag().After(a[i].valTag()) {
				a[i].val = b[j].val
				t := b[j].valTag()
				a[i].set = &t
			}
			out = append(out, a[i])
			i++
			j++
		case c < 0:
			if !theirs.Covers(a[i].pos.last().dot) {
				out = append(out, a[i])
			}
			i++
		default:
			if !mine.Covers(b[j].pos.last().dot) {
				n := *b[j]
				if n.set != nil {
					t := *n.set
					n.set = &t
				}
				out = append(out, &n)
			}
			j++
		}
	}
	l.root = build(out)
}

// encode writes the elements in position order: the canonical order, so
// equal states give equal bytes whatever order effects came in.
func (l *listValue) encode(e *encoder) {
	e.uvarint(uint64(l.length()))
	l.walk(0, func(n *lnode) bool {
		encodeListPos(e, &n.pos)
		e.str(n.val)
		e.uvarint(uint64(n.itime))
		if n.set != nil {
			e.byte1(1)
			e.tag(*n.set)
		} else {
			e.byte1(0)
		}
		return true
	})
}

func decodeList(d *decoder) value {
	l := &listValue{}
	n := d.count(8)
	ns := make([]*lnode, 0, n)
	for i := 0; i < n && d.err == nil; i++ {
		p, ok := decodeListPos(d)
		if !ok {
			d.fail()
			break
		}
		if i > 0 && comparePos(&ns[i-1].pos, &p) >= 0 {
			d.fail() // not canonical: unsorted or duplicate position
			break
		}
		nd := newLnode(p, d.str(), HLC(d.uvarint()))
		switch d.byte1() {
		case 0:
		case 1:
			t := d.tag()
			nd.set = &t
		default:
			d.fail()
		}
		ns = append(ns, nd)
	}
	if d.err == nil {
		l.root = build(ns)
	}
	return l
}

// replay recreates the list, in order, as one fresh push.
func (l *listValue) replay(emit func(Effect)) {
	vals := make([][]byte, 0, l.length())
	l.walk(0, func(n *lnode) bool { vals = append(vals, []byte(n.val)); return true })
	if len(vals) > 0 {
		emit(listInsertEffect(nil, nil, 0, 1, vals))
	}
}

// objectEncoding: Redis 7.0 stores every list as a quicklist (listpack
// lists came with 7.2), whatever its size.
func (l *listValue) objectEncoding() string { return "quicklist" }

func (l *listValue) lwwConcurrent(f *Effect, c Context) bool {
	if f.Kind != EffListSet {
		return false
	}
	p, ok := parseListPos(f.Field)
	if !ok {
		return false
	}
	n := l.find(&p)
	return n != nil && !c.covers(n.valTag())
}

func (l *listValue) removeSurvived(f *Effect, c Context) bool { return false }

// Effect payloads. A position is written as its component count followed
// by each component (n, dot, sub).

func encodeListComp(e *encoder, c lcomp) {
	e.varint(c.n)
	e.dot(c.dot)
	e.varint(int64(c.sub))
}

func encodeListPos(e *encoder, p *lpos) {
	e.uvarint(uint64(p.len()))
	encodeListComp(e, p.head)
	for _, c := range p.tail() {
		encodeListComp(e, c)
	}
}

func decodeListComp(d *decoder) (lcomp, bool) {
	c := lcomp{n: d.varint(), dot: d.dot()}
	s := d.varint()
	if d.err != nil || c.dot.Seq == 0 || s != int64(int32(s)) {
		return lcomp{}, false
	}
	c.sub = int32(s)
	return c, true
}

func decodeListPos(d *decoder) (lpos, bool) {
	k := d.count(4)
	if d.err != nil || k == 0 {
		return lpos{}, false
	}
	cs := make([]lcomp, k)
	for i := range cs {
		c, ok := decodeListComp(d)
		if !ok {
			return lpos{}, false
		}
		cs[i] = c
	}
	return posFromComps(cs), true
}

func parseListPos(b []byte) (lpos, bool) {
	d := decoder{b: b}
	p, ok := decodeListPos(&d)
	return p, ok && d.err == nil && len(d.b) == 0
}

func encodeListPositions(ns []*lnode) []byte {
	e := &encoder{}
	e.uvarint(uint64(len(ns)))
	for _, n := range ns {
		encodeListPos(e, &n.pos)
	}
	return e.b
}

func parseListPositions(b []byte) ([]lpos, bool) {
	d := decoder{b: b}
	n := d.count(5)
	if d.err != nil || n == 0 {
		return nil, false
	}
	ps := make([]lpos, n)
	for i := range ps {
		p, ok := decodeListPos(&d)
		if !ok {
			return nil, false
		}
		ps[i] = p
	}
	return ps, d.err == nil && len(d.b) == 0
}

// listInsertEffect builds an insert of vals at prefix + (n, dot, i*dir):
// Field holds the prefix and n, Int the direction, Value the elements.
func listInsertEffect(key []byte, prefix []lcomp, n int64, dir int64, vals [][]byte) Effect {
	e := &encoder{}
	e.uvarint(uint64(len(prefix)))
	for _, c := range prefix {
		encodeListComp(e, c)
	}
	e.varint(n)
	v := &encoder{}
	v.uvarint(uint64(len(vals)))
	for _, x := range vals {
		v.bytes(x)
	}
	return Effect{Kind: EffListInsert, Key: key, Field: e.b, Int: dir, Value: v.b}
}

func parseListInsert(f *Effect) (prefix []lcomp, n int64, vals [][]byte, ok bool) {
	if f.Int != 1 && f.Int != -1 {
		return nil, 0, nil, false
	}
	d := decoder{b: f.Field}
	k := d.count(4)
	for i := 0; i < k && d.err == nil; i++ {
		c, ok := decodeListComp(&d)
		if !ok {
			return nil, 0, nil, false
		}
		prefix = append(prefix, c)
	}
	n = d.varint()
	if d.err != nil || len(d.b) != 0 {
		return nil, 0, nil, false
	}
	vd := decoder{b: f.Value}
	m := vd.count(1)
	if vd.err != nil || m == 0 || m > math.MaxInt32 {
		return nil, 0, nil, false
	}
	vals = make([][]byte, m)
	for i := range vals {
		vals[i] = vd.bytes()
	}
	if vd.err != nil || len(vd.b) != 0 {
		return nil, 0, nil, false
	}
	return prefix, n, vals, true
}

// validListEffect checks a decoded list effect's payload, so a hostile
// batch is rejected before apply could panic on it.
func validListEffect(f *Effect) bool {
	switch f.Kind {
	case EffListInsert:
		_, _, _, ok := parseListInsert(f)
		return ok
	case EffListRem, EffListPop:
		_, ok := parseListPositions(f.Value)
		return ok
	case EffListSet:
		_, ok := parseListPos(f.Field)
		return ok
	}
	return false
}

// String renders a position for test failures.
func (p *lpos) String() string {
	s := ""
	for i, c := range p.comps() {
		if i > 0 {
			s += "."
		}
		s += strconv.FormatInt(c.n, 10) + "@" + c.dot.String() + "/" + strconv.Itoa(int(c.sub))
	}
	return s
}
