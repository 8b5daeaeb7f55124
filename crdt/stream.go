package crdt

import (
	"encoding/binary"
	"sort"
	"strconv"
)

// streamValue is a Redis stream as a CRDT (docs/streams.md has the rules):
//
//   - Entries are add-only by ID. Each entry holds a multi-value register
//     of field lists: one value normally, two or more when regions added
//     the same explicit ID concurrently; the greatest tag's fields are what
//     reads return (last writer wins, counted as an LWW conflict).
//   - XDEL and XTRIM are observed-removes: they drop the register values
//     their op had seen, so an entry another region added concurrently
//     (possibly below a trim point) survives.
//   - The stream's metadata (entries-added, last-generated-id,
//     max-deleted-entry-id) is kept as one record per origin, written only
//     by that origin and carrying its absolute figures. Reads combine them:
//     entries-added is the sum, the two IDs are the maximum. A key-level
//     remove (DEL, overwrite, FLUSHDB) drops the records it observed, so a
//     recreated stream starts from zero as in Redis. The records are also
//     what keeps an empty stream in existence.
//
// Entries sit in a skiplist ordered by ID: XADD, XDEL and range seeks are
// O(log n), trimming from the head is O(1) per entry.
type streamValue struct {
	list xskiplist
	meta []streamMeta // sorted by origin, at most one per origin
}

// streamID is a stream entry ID, ms-seq.
type streamID struct{ ms, seq uint64 }

func (a streamID) less(b streamID) bool {
	return a.ms < b.ms || a.ms == b.ms && a.seq < b.seq
}

func (a streamID) String() string {
	return strconv.FormatUint(a.ms, 10) + "-" + strconv.FormatUint(a.seq, 10)
}

// bytes is the 16-byte big-endian form carried in effects (byte order is ID
// order).
func (a streamID) bytes() []byte {
	var b [16]byte
	binary.BigEndian.PutUint64(b[:8], a.ms)
	binary.BigEndian.PutUint64(b[8:], a.seq)
	return b[:]
}

func streamIDFrom(b []byte) (streamID, bool) {
	if len(b) != 16 {
		return streamID{}, false
	}
	return streamID{binary.BigEndian.Uint64(b[:8]), binary.BigEndian.Uint64(b[8:])}, true
}

var maxStreamID = streamID{^uint64(0), ^uint64(0)}

// streamMeta is one origin's metadata record.
type streamMeta struct {
	Tag    Tag
	Added  uint64   // XADDs by this origin (since the last observed removal)
	Last   streamID // greatest ID this origin generated or saw as last
	MaxDel streamID // greatest ID this origin deleted with XDEL
}

func init() {
	registerType(TypeStream, valueCodec{
		new:    func() value { return &streamValue{} },
		decode: decodeStream,
	})
}

func (s *streamValue) Type() ValueType { return TypeStream }

func (s *streamValue) apply(f *Effect, t Tag, c Context) {
	switch f.Kind {
	case EffXAdd:
		id, _ := streamIDFrom(f.Field)
		fields, _ := decodeStreamFields(f.Value)
		n := s.list.find(id)
		if n == nil {
			n = s.list.insert(id)
		}
		n.vals = n.vals.write(t, fields, c)
	case EffXDel:
		id, _ := streamIDFrom(f.Field)
		if n := s.list.find(id); n != nil {
			if n.vals = n.vals.remove(c); len(n.vals) == 0 {
				s.list.delete(n)
			}
		}
	case EffXTrim:
		bound, _ := streamIDFrom(f.Field)
		for n := s.list.first(); n != nil && !bound.less(n.id); {
			next := n.next()
			if n.vals = n.vals.remove(c); len(n.vals) == 0 {
				s.list.delete(n)
			}
			n = next
		}
	case EffXMeta:
		m, _ := decodeStreamMeta(f.Value)
		m.Tag = t
		if f.Int == 1 { // XSETID: overwrite the records the op had seen
			s.dropMeta(c)
		}
		s.setMeta(m)
	default:
		panic("crdt: stream cannot apply effect " + f.String())
	}
}

// setMeta stores m as its origin's record unless a later one is there.
func (s *streamValue) setMeta(m streamMeta) {
	o := m.Tag.Dot.Origin
	i := sort.Search(len(s.meta), func(i int) bool { return s.meta[i].Tag.Dot.Origin.Compare(o) >= 0 })
	if i < len(s.meta) && s.meta[i].Tag.Dot.Origin == o {
		if m.Tag.After(s.meta[i].Tag) {
			s.meta[i] = m
		}
		return
	}
	s.meta = append(s.meta, streamMeta{})
	copy(s.meta[i+1:], s.meta[i:])
	s.meta[i] = m
}

// metaOf returns origin o's record (zero if none).
func (s *streamValue) metaOf(o Origin) streamMeta {
	for _, m := range s.meta {
		if m.Tag.Dot.Origin == o {
			return m
		}
	}
	return streamMeta{}
}

// added, lastID and maxDeleted are the figures Redis reports, combined
// from the per-origin records.
func (s *streamValue) added() uint64 {
	var n uint64
	for _, m := range s.meta {
		n += m.Added
	}
	return n
}

func (s *streamValue) lastID() streamID {
	var l streamID
	for _, m := range s.meta {
		if l.less(m.Last) {
			l = m.Last
		}
	}
	// Entries always come with their origin's record, but a record can
	// name a lower Last than an entry merged from a state transfer whose
	// origin record was removed: the top entry bounds it from below.
	if n := s.list.last(); n != nil && l.less(n.id) {
		l = n.id
	}
	return l
}

func (s *streamValue) maxDeleted() streamID {
	var l streamID
	for _, m := range s.meta {
		if l.less(m.MaxDel) {
			l = m.MaxDel
		}
	}
	return l
}

func (s *streamValue) removeObserved(c Context) {
	for n := s.list.first(); n != nil; {
		next := n.next()
		if n.vals = n.vals.remove(c); len(n.vals) == 0 {
			s.list.delete(n)
		}
		n = next
	}
	s.dropMeta(c)
}

// dropMeta removes the metadata records c covers.
func (s *streamValue) dropMeta(c Context) {
	out := s.meta[:0]
	for _, m := range s.meta {
		if !c.covers(m.Tag) {
			out = append(out, m)
		}
	}
	s.meta = out
}

func (s *streamValue) empty() bool { return s.list.length == 0 && len(s.meta) == 0 }

func (s *streamValue) maxTag() Tag {
	var max Tag
	for _, m := range s.meta {
		if m.Tag.After(max) {
			max = m.Tag
		}
	}
	if len(s.meta) == 0 {
		for n := s.list.first(); n != nil; n = n.next() {
			if t := n.vals.maxTag(); t.After(max) {
				max = t
			}
		}
	}
	return max
}

func (s *streamValue) join(mine VersionVector, other value, theirs VersionVector) {
	o := other.(*streamValue)
	// Entries: walk both lists in ID order and join each register.
	var out xskiplist
	a, b := s.list.first(), o.list.first()
	for a != nil || b != nil {
		var id streamID
		var av, bv mvreg[[]string]
		switch {
		case b == nil || a != nil && a.id.less(b.id):
			id, av = a.id, a.vals
			a = a.next()
		case a == nil || b.id.less(a.id):
			id, bv = b.id, b.vals
			b = b.next()
		default:
			id, av, bv = a.id, a.vals, b.vals
			a, b = a.next(), b.next()
		}
		if j := av.join(mine, bv, theirs); len(j) > 0 {
			out.insert(id).vals = j
		}
	}
	s.list = out
	// Metadata records follow the register rule, keyed by their dots.
	var meta []streamMeta
	has := func(ms []streamMeta, d Dot) bool {
		for _, m := range ms {
			if m.Tag.Dot == d {
				return true
			}
		}
		return false
	}
	for _, m := range s.meta {
		if has(o.meta, m.Tag.Dot) || !theirs.Covers(m.Tag.Dot) {
			meta = append(meta, m)
		}
	}
	for _, m := range o.meta {
		if !has(s.meta, m.Tag.Dot) && !mine.Covers(m.Tag.Dot) {
			meta = append(meta, m)
		}
	}
	s.meta = nil
	for _, m := range meta {
		s.setMeta(m)
	}
}

// encode writes the metadata records (by origin) and the entries (by ID)
// with every register value: equal states give equal bytes.
func (s *streamValue) encode(e *encoder) {
	e.uvarint(uint64(len(s.meta)))
	for _, m := range s.meta {
		e.tag(m.Tag)
		e.b = append(e.b, encodeStreamMeta(m)...)
	}
	e.uvarint(uint64(s.list.length))
	for n := s.list.first(); n != nil; n = n.next() {
		e.uvarint(n.id.ms)
		e.uvarint(n.id.seq)
		e.uvarint(uint64(len(n.vals)))
		for _, v := range n.vals {
			e.tag(v.Tag)
			e.uvarint(uint64(len(v.Val)))
			for _, x := range v.Val {
				e.str(x)
			}
		}
	}
}

func decodeStream(d *decoder) value {
	s := &streamValue{}
	nm := d.count(4)
	for i := 0; i < nm && d.err == nil; i++ {
		t := d.tag()
		m := streamMeta{Tag: t, Added: d.uvarint()}
		m.Last = streamID{d.uvarint(), d.uvarint()}
		m.MaxDel = streamID{d.uvarint(), d.uvarint()}
		if i > 0 && t.Dot.Origin.Compare(s.meta[i-1].Tag.Dot.Origin) <= 0 || t.Dot.Seq == 0 {
			d.fail() // not canonical: one record per origin, sorted
			break
		}
		s.meta = append(s.meta, m)
	}
	n := d.count(4)
	var prev streamID
	for i := 0; i < n && d.err == nil; i++ {
		id := streamID{d.uvarint(), d.uvarint()}
		if i > 0 && !prev.less(id) {
			d.fail()
			break
		}
		prev = id
		k := d.count(4)
		if k == 0 {
			d.fail() // an entry without values is not present
			break
		}
		var vals mvreg[[]string]
		for j := 0; j < k && d.err == nil; j++ {
			t := d.tag()
			if j > 0 && !t.After(vals[j-1].Tag) {
				d.fail()
				break
			}
			nf := d.count(1)
			if d.err == nil && (nf < 2 || nf%2 != 0) {
				d.fail()
				break
			}
			fs := make([]string, 0, nf)
			for x := 0; x < nf && d.err == nil; x++ {
				fs = append(fs, d.str())
			}
			vals = append(vals, regVal[[]string]{Tag: t, Val: fs})
		}
		if d.err == nil {
			s.list.insert(id).vals = vals
		}
	}
	return s
}

// replay recreates the stream as fresh writes: every entry with its
// visible fields, then one record holding the combined metadata (RENAME
// and COPY keep entries-added and the IDs, as Redis moves the object).
func (s *streamValue) replay(emit func(Effect)) {
	for n := s.list.first(); n != nil; n = n.next() {
		w, _ := n.vals.winner()
		emit(Effect{Kind: EffXAdd, Field: n.id.bytes(), Value: encodeStreamFields(w.Val)})
	}
	emit(Effect{Kind: EffXMeta, Value: encodeStreamMeta(streamMeta{
		Added: s.added(), Last: s.lastID(), MaxDel: s.maxDeleted()})})
}

func (s *streamValue) objectEncoding() string { return "stream" }

// lwwConcurrent: an XADD meeting a value for its ID that it had not seen is
// two regions adding the same explicit ID.
func (s *streamValue) lwwConcurrent(f *Effect, c Context) bool {
	if f.Kind != EffXAdd {
		return false
	}
	id, _ := streamIDFrom(f.Field)
	n := s.list.find(id)
	return n != nil && regUnobserved(n.vals, c)
}

// removeSurvived: an XDEL that leaves a value it had not seen.
func (s *streamValue) removeSurvived(f *Effect, c Context) bool {
	if f.Kind != EffXDel {
		return false
	}
	id, _ := streamIDFrom(f.Field)
	n := s.list.find(id)
	return n != nil && regUnobserved(n.vals, c)
}

// encodeStreamFields is EffXAdd's Value: the field/value list.
func encodeStreamFields(fs []string) []byte {
	e := encoder{}
	e.uvarint(uint64(len(fs)))
	for _, x := range fs {
		e.str(x)
	}
	return e.b
}

func decodeStreamFields(b []byte) ([]string, bool) {
	d := decoder{b: b}
	n := d.count(1)
	if d.err != nil || n < 2 || n%2 != 0 {
		return nil, false
	}
	fs := make([]string, 0, n)
	for i := 0; i < n && d.err == nil; i++ {
		fs = append(fs, d.str())
	}
	return fs, d.err == nil && len(d.b) == 0
}

// encodeStreamMeta is EffXMeta's Value (the record without its tag).
func encodeStreamMeta(m streamMeta) []byte {
	e := encoder{}
	e.uvarint(m.Added)
	e.uvarint(m.Last.ms)
	e.uvarint(m.Last.seq)
	e.uvarint(m.MaxDel.ms)
	e.uvarint(m.MaxDel.seq)
	return e.b
}

func decodeStreamMeta(b []byte) (streamMeta, bool) {
	d := decoder{b: b}
	m := streamMeta{Added: d.uvarint()}
	m.Last = streamID{d.uvarint(), d.uvarint()}
	m.MaxDel = streamID{d.uvarint(), d.uvarint()}
	return m, d.err == nil && len(d.b) == 0
}

// validStreamEffect is decodeEffect's check of a stream effect.
func validStreamEffect(f *Effect) bool {
	if f.Flags != 0 {
		return false
	}
	switch f.Kind {
	case EffXAdd:
		_, ok := decodeStreamFields(f.Value)
		_, idOK := streamIDFrom(f.Field)
		return ok && idOK
	case EffXDel, EffXTrim:
		_, ok := streamIDFrom(f.Field)
		return ok
	case EffXMeta:
		_, ok := decodeStreamMeta(f.Value)
		return ok && (f.Int == 0 || f.Int == 1)
	}
	return false
}

// xskiplist orders a stream's entries by ID. Levels come from a splitmix64
// generator seeded with a constant: the shape depends on history, nothing
// observable does.
type xskiplist struct {
	head   xnode
	tail   *xnode
	length int
	level  int
	rng    uint64
}

const xslMaxLevel = 32

type xnode struct {
	id       streamID
	vals     mvreg[[]string]
	backward *xnode
	forward  []*xnode
}

func (n *xnode) next() *xnode { return n.forward[0] }

func (z *xskiplist) init() {
	if z.head.forward == nil {
		z.head.forward = make([]*xnode, xslMaxLevel)
		z.level = 1
	}
}

func (z *xskiplist) randomLevel() int {
	lvl := 1
	for lvl < xslMaxLevel {
		z.rng += 0x9e3779b97f4a7c15
		x := z.rng
		x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
		x = (x ^ (x >> 27)) * 0x94d049bb133111eb
		x ^= x >> 31
		if x&3 != 0 {
			break
		}
		lvl++
	}
	return lvl
}

func (z *xskiplist) first() *xnode {
	if z.head.forward == nil {
		return nil
	}
	return z.head.forward[0]
}

func (z *xskiplist) last() *xnode { return z.tail }

// seekGE returns the first node with ID >= id.
func (z *xskiplist) seekGE(id streamID) *xnode {
	if z.head.forward == nil {
		return nil
	}
	x := &z.head
	for i := z.level - 1; i >= 0; i-- {
		for x.forward[i] != nil && x.forward[i].id.less(id) {
			x = x.forward[i]
		}
	}
	return x.forward[0]
}

// seekLE returns the last node with ID <= id.
func (z *xskiplist) seekLE(id streamID) *xnode {
	if z.head.forward == nil {
		return nil
	}
	x := &z.head
	for i := z.level - 1; i >= 0; i-- {
		for x.forward[i] != nil && !id.less(x.forward[i].id) {
			x = x.forward[i]
		}
	}
	if x == &z.head {
		return nil
	}
	return x
}

func (z *xskiplist) find(id streamID) *xnode {
	if n := z.seekGE(id); n != nil && n.id == id {
		return n
	}
	return nil
}

// insert adds a node for an ID not present.
func (z *xskiplist) insert(id streamID) *xnode {
	z.init()
	var update [xslMaxLevel]*xnode
	x := &z.head
	for i := z.level - 1; i >= 0; i-- {
		for x.forward[i] != nil && x.forward[i].id.less(id) {
			x = x.forward[i]
		}
		update[i] = x
	}
	lvl := z.randomLevel()
	if lvl > z.level {
		for i := z.level; i < lvl; i++ {
			update[i] = &z.head
		}
		z.level = lvl
	}
	n := &xnode{id: id, forward: make([]*xnode, lvl)}
	for i := 0; i < lvl; i++ {
		n.forward[i] = update[i].forward[i]
		update[i].forward[i] = n
	}
	if update[0] != &z.head {
		n.backward = update[0]
	}
	if n.forward[0] != nil {
		n.forward[0].backward = n
	} else {
		z.tail = n
	}
	z.length++
	return n
}

// delete unlinks node n.
func (z *xskiplist) delete(n *xnode) {
	x := &z.head
	for i := z.level - 1; i >= 0; i-- {
		for x.forward[i] != nil && x.forward[i].id.less(n.id) {
			x = x.forward[i]
		}
		if x.forward[i] == n {
			x.forward[i] = n.forward[i]
		}
	}
	if n.forward[0] != nil {
		n.forward[0].backward = n.backward
	} else {
		z.tail = n.backward
	}
	for z.level > 1 && z.head.forward[z.level-1] == nil {
		z.level--
	}
	z.length--
}
