package crdt

// zskiplist is the ordered index of a sorted set: its visible members sorted
// by (score, member bytes), with Redis's span bookkeeping so that rank
// queries and access by rank are O(log n).
//
// Node levels come from a splitmix64 generator kept in the list itself and
// seeded with a constant. The shape of the list therefore depends on the
// insertion history, but nothing observable does: every query answers from
// the (score, member) order alone, so replicas with different shapes give
// the same replies and encodings.
type zskiplist struct {
	head   *zslNode // sentinel with zslMaxLevel levels, no member
	tail   *zslNode
	length int
	level  int
	rng    uint64
}

const (
	zslMaxLevel = 32
	// A node gets one more level with probability 1/4, as in Redis:
	// (random & 0xFFFF) < 0.25 * 0xFFFF.
	zslLevelCut = 16384
)

type zslNode struct {
	member   string
	score    float64
	backward *zslNode
	levels   []zslLevel
}

type zslLevel struct {
	forward *zslNode
	span    int // number of level-0 steps this link jumps
}

func newZskiplist() *zskiplist {
	return &zskiplist{head: &zslNode{levels: make([]zslLevel, zslMaxLevel)}, level: 1}
}

// zslLess orders (score, member) pairs the way Redis does: by score, ties
// by member bytes (memcmp, then length, which is Go's string order).
func zslLess(s1 float64, m1 string, s2 float64, m2 string) bool {
	return s1 < s2 || (s1 == s2 && m1 < m2)
}

func (z *zskiplist) randomLevel() int {
	lvl := 1
	for lvl < zslMaxLevel {
		z.rng += 0x9e3779b97f4a7c15
		x := z.rng
		x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
		x = (x ^ (x >> 27)) * 0x94d049bb133111eb
		x ^= x >> 31
		if x&0xFFFF >= zslLevelCut {
			break
		}
		lvl++
	}
	return lvl
}

// insert adds (score, member); the pair must not be present.
func (z *zskiplist) insert(score float64, member string) *zslNode {
	var update [zslMaxLevel]*zslNode
	var rank [zslMaxLevel]int
	x := z.head
	for i := z.level - 1; i >= 0; i-- {
		if i < z.level-1 {
			rank[i] = rank[i+1]
		}
		for f := x.levels[i].forward; f != nil && zslLess(f.score, f.member, score, member); f = x.levels[i].forward {
			rank[i] += x.levels[i].span
			x = f
		}
		update[i] = x
	}
	lvl := z.randomLevel()
	if lvl > z.level {
		for i := z.level; i < lvl; i++ {
			rank[i] = 0
			update[i] = z.head
			update[i].levels[i].span = z.length
		}
		z.level = lvl
	}
	n := &zslNode{member: member, score: score, levels: make([]zslLevel, lvl)}
	for i := 0; i < lvl; i++ {
		n.levels[i].forward = update[i].levels[i].forward
		update[i].levels[i].forward = n
		n.levels[i].span = update[i].levels[i].span - (rank[0] - rank[i])
		update[i].levels[i].span = rank[0] - rank[i] + 1
	}
	for i := lvl; i < z.level; i++ {
		update[i].levels[i].span++
	}
	if update[0] != z.head {
		n.backward = update[0]
	}
	if n.levels[0].forward != nil {
		n.levels[0].forward.backward = n
	} else {
		z.tail = n
	}
	z.length++
	return n
}

// delete removes (score, member) and reports whether it was present.
func (z *zskiplist) delete(score float64, member string) bool {
	var update [zslMaxLevel]*zslNode
	x := z.head
	for i := z.level - 1; i >= 0; i-- {
		for f := x.levels[i].forward; f != nil && zslLess(f.score, f.member, score, member); f = x.levels[i].forward {
			x = f
		}
		update[i] = x
	}
	x = x.levels[0].forward
	if x == nil || x.score != score || x.member != member {
		return false
	}
	for i := 0; i < z.level; i++ {
		if update[i].levels[i].forward == x {
			update[i].levels[i].span += x.levels[i].span - 1
			update[i].levels[i].forward = x.levels[i].forward
		} else {
			update[i].levels[i].span--
		}
	}
	if x.levels[0].forward != nil {
		x.levels[0].forward.backward = x.backward
	} else {
		z.tail = x.backward
	}
	for z.level > 1 && z.head.levels[z.level-1].forward == nil {
		z.level--
	}
	z.length--
	return true
}

// rank returns the 1-based rank of (score, member), 0 if absent.
func (z *zskiplist) rank(score float64, member string) int {
	r := 0
	x := z.head
	for i := z.level - 1; i >= 0; i-- {
		for f := x.levels[i].forward; f != nil && !zslLess(score, member, f.score, f.member); f = x.levels[i].forward {
			r += x.levels[i].span
			x = f
		}
		if x != z.head && x.member == member && x.score == score {
			return r
		}
	}
	return 0
}

// byRank returns the node at 1-based rank r, nil if out of range.
func (z *zskiplist) byRank(r int) *zslNode {
	if r < 1 || r > z.length {
		return nil
	}
	t := 0
	x := z.head
	for i := z.level - 1; i >= 0; i-- {
		for x.levels[i].forward != nil && t+x.levels[i].span <= r {
			t += x.levels[i].span
			x = x.levels[i].forward
		}
		if t == r {
			return x
		}
	}
	return nil
}

// first returns the lowest node, nil if empty.
func (z *zskiplist) first() *zslNode { return z.head.levels[0].forward }

// next returns the node after n in (score, member) order.
func (n *zslNode) next() *zslNode { return n.levels[0].forward }

// firstWhere returns the first node for which below is false, given that
// below holds for a prefix of the list (a monotone predicate), or nil.
func (z *zskiplist) firstWhere(below func(*zslNode) bool) *zslNode {
	x := z.head
	for i := z.level - 1; i >= 0; i-- {
		for f := x.levels[i].forward; f != nil && below(f); f = x.levels[i].forward {
			x = f
		}
	}
	return x.levels[0].forward
}

// lastWhere returns the last node for which within is true, given that
// within holds for a prefix of the list, or nil.
func (z *zskiplist) lastWhere(within func(*zslNode) bool) *zslNode {
	x := z.head
	for i := z.level - 1; i >= 0; i-- {
		for f := x.levels[i].forward; f != nil && within(f); f = x.levels[i].forward {
			x = f
		}
	}
	if x == z.head {
		return nil
	}
	return x
}
