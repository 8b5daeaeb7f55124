package crdt

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math"
	"sort"
	"strconv"
)

// The DUMP/RESTORE payload: one value in Redis's RDB encoding, then the
// RDB version (2 bytes, little-endian) and a CRC64 (Jones polynomial, as
// Redis's crc64.c, little-endian) over everything before it. Concord
// writes and reads Redis 7.0's format (RDB version 10) so payloads move
// between Concord and Redis in both directions.
//
// Decoding is defensive: every length is checked against the bytes left
// before anything is allocated, LZF output is bounded by what its input can
// expand to, and every failure is errBadRDB; a hostile payload costs at most
// memory proportional to its own size.

// rdbVersion is the RDB version Redis 7.0 writes and the newest it reads.
const rdbVersion = 10

// RDB object type bytes (Redis's rdb.h).
const (
	rdbTypeString          = 0
	rdbTypeList            = 1
	rdbTypeSet             = 2
	rdbTypeZSet            = 3
	rdbTypeHash            = 4
	rdbTypeZSet2           = 5
	rdbTypeModule          = 6
	rdbTypeModule2         = 7
	rdbTypeHashZipmap      = 9
	rdbTypeListZiplist     = 10
	rdbTypeSetIntset       = 11
	rdbTypeZSetZiplist     = 12
	rdbTypeHashZiplist     = 13
	rdbTypeListQuicklist   = 14
	rdbTypeStreamListpacks = 15
	rdbTypeHashListpack    = 16
	rdbTypeZSetListpack    = 17
	rdbTypeListQuicklist2  = 18
	rdbTypeStreamListpack2 = 19
)

// rdbMaxValue bounds one decoded string (Redis's proto-max-bulk-len
// default): a payload cannot claim more than a client could have sent.
const rdbMaxValue = 512 << 20

var (
	// errBadRDB is any malformed payload body (Redis: "Bad data format").
	errBadRDB = errors.New("bad data format")
	// errRDBChecksum is a wrong footer (Redis: "DUMP payload version or
	// checksum are wrong").
	errRDBChecksum = errors.New("payload version or checksum are wrong")
)

// rdbUnsupported is a well-formed payload of a type Concord cannot hold.
type rdbUnsupported string

func (u rdbUnsupported) Error() string { return string(u) + " values are not supported" }

// rdbKind is what a payload decodes to. It is kept apart from ValueType so
// that kinds Concord may not store yet (lists) still decode.
type rdbKind uint8

const (
	rdbString rdbKind = iota + 1
	rdbSet
	rdbZSet
	rdbHash
	rdbList
)

// rdbObject is one decoded value. Which fields are used depends on kind:
// str (string), elems (set members, list elements in order), pairs (hash:
// field, value, field, value, ...), elems+scores (sorted set).
type rdbObject struct {
	kind   rdbKind
	str    []byte
	elems  [][]byte
	pairs  [][]byte
	scores []float64
}

// ---- CRC64 (Jones, reflected, init 0, no final xor: Redis's crc64.c) ----

var crc64Table = func() (t [256]uint64) {
	const poly = 0x95ac9329ac4bc9b5 // 0xad93d23594c935a9 bit-reflected
	for i := range t {
		c := uint64(i)
		for k := 0; k < 8; k++ {
			if c&1 == 1 {
				c = c>>1 ^ poly
			} else {
				c >>= 1
			}
		}
		t[i] = c
	}
	return
}()

func crc64Jones(crc uint64, p []byte) uint64 {
	for _, b := range p {
		crc = crc64Table[byte(crc)^b] ^ crc>>8
	}
	return crc
}

// rdbSeal appends the version and checksum footer.
func rdbSeal(b []byte) []byte {
	b = binary.LittleEndian.AppendUint16(b, rdbVersion)
	return binary.LittleEndian.AppendUint64(b, crc64Jones(0, b))
}

// rdbVerify checks the footer as Redis's verifyDumpPayload does (any
// version up to ours is accepted) and returns the body.
func rdbVerify(p []byte) ([]byte, error) {
	if len(p) < 10 {
		return nil, errRDBChecksum
	}
	n := len(p) - 10
	if binary.LittleEndian.Uint16(p[n:]) > rdbVersion {
		return nil, errRDBChecksum
	}
	if crc64Jones(0, p[:n+2]) != binary.LittleEndian.Uint64(p[n+2:]) {
		return nil, errRDBChecksum
	}
	return p[:n], nil
}

// ---- encoding ----

// rdbAppendLen appends an RDB length.
func rdbAppendLen(b []byte, n uint64) []byte {
	switch {
	case n < 1<<6:
		return append(b, byte(n))
	case n < 1<<14:
		return append(b, byte(n>>8)|0x40, byte(n))
	case n <= math.MaxUint32:
		return binary.BigEndian.AppendUint32(append(b, 0x80), uint32(n))
	}
	return binary.BigEndian.AppendUint64(append(b, 0x81), n)
}

// rdbAppendString appends a string as Redis's rdbSaveRawString does, minus
// LZF compression (optional for readers): short canonical integers that fit
// 32 bits take the integer encodings.
func rdbAppendString(b, s []byte) []byte {
	if len(s) <= 11 {
		if v, ok := parseStrictInt(s); ok {
			switch {
			case v >= math.MinInt8 && v <= math.MaxInt8:
				return append(b, 0xc0, byte(v))
			case v >= math.MinInt16 && v <= math.MaxInt16:
				return binary.LittleEndian.AppendUint16(append(b, 0xc1), uint16(v))
			case v >= math.MinInt32 && v <= math.MaxInt32:
				return binary.LittleEndian.AppendUint32(append(b, 0xc2), uint32(v))
			}
		}
	}
	return append(rdbAppendLen(b, uint64(len(s))), s...)
}

// listpack builds a listpack blob (Redis's listpack.c) entry by entry.
type listpack struct {
	b []byte
	n int
}

func newListpack() *listpack { return &listpack{b: make([]byte, 6, 64)} }

func (l *listpack) add(s []byte) {
	start := len(l.b)
	if v, ok := parseStrictInt(s); ok {
		l.addInt(v)
	} else {
		switch n := len(s); {
		case n < 64:
			l.b = append(l.b, 0x80|byte(n))
		case n < 4096:
			l.b = append(l.b, 0xe0|byte(n>>8), byte(n))
		default:
			l.b = binary.LittleEndian.AppendUint32(append(l.b, 0xf0), uint32(n))
		}
		l.b = append(l.b, s...)
	}
	l.b = appendBacklen(l.b, uint64(len(l.b)-start))
	l.n++
}

func (l *listpack) addInt(v int64) {
	switch {
	case v >= 0 && v <= 127:
		l.b = append(l.b, byte(v))
	case v >= -4096 && v <= 4095:
		u := uint64(v) & (1<<13 - 1)
		l.b = append(l.b, 0xc0|byte(u>>8), byte(u))
	case v >= math.MinInt16 && v <= math.MaxInt16:
		l.b = binary.LittleEndian.AppendUint16(append(l.b, 0xf1), uint16(v))
	case v >= -1<<23 && v < 1<<23:
		u := uint32(v)
		l.b = append(l.b, 0xf2, byte(u), byte(u>>8), byte(u>>16))
	case v >= math.MinInt32 && v <= math.MaxInt32:
		l.b = binary.LittleEndian.AppendUint32(append(l.b, 0xf3), uint32(v))
	default:
		l.b = binary.LittleEndian.AppendUint64(append(l.b, 0xf4), uint64(v))
	}
}

// appendBacklen appends an entry's length in the reversed varint form
// listpacks are walked backwards with.
func appendBacklen(b []byte, l uint64) []byte {
	switch {
	case l <= 127:
		return append(b, byte(l))
	case l < 16383:
		return append(b, byte(l>>7), byte(l&127)|128)
	case l < 2097151:
		return append(b, byte(l>>14), byte(l>>7&127)|128, byte(l&127)|128)
	case l < 268435455:
		return append(b, byte(l>>21), byte(l>>14&127)|128, byte(l>>7&127)|128, byte(l&127)|128)
	}
	return append(b, byte(l>>28), byte(l>>21&127)|128, byte(l>>14&127)|128, byte(l>>7&127)|128, byte(l&127)|128)
}

func (l *listpack) bytes() []byte {
	l.b = append(l.b, 0xff)
	binary.LittleEndian.PutUint32(l.b, uint32(len(l.b)))
	n := l.n
	if n > 65535 {
		n = 65535 // "unknown": readers count the entries
	}
	binary.LittleEndian.PutUint16(l.b[4:], uint16(n))
	return l.b
}

// rdbEncode returns the DUMP payload of v, in the encoding Redis 7.0 would
// choose for the same content (intset, listpack or the general one). The
// output is a function of the content and of the value's slot order, which
// every node of a region shares.
func rdbEncode(v value) ([]byte, error) {
	var b []byte
	switch v := v.(type) {
	case *strValue:
		b = rdbAppendString(append(b, rdbTypeString), v.value())
	case *setValue:
		if v.isIntset() {
			b = append(b, rdbTypeSetIntset)
			b = rdbAppendString(b, intsetBlob(v.list()))
		} else {
			ms := v.slotOrder()
			sort.Strings(ms) // canonical: the same bytes in every region
			b = rdbAppendLen(append(b, rdbTypeSet), uint64(len(ms)))
			for _, m := range ms {
				b = rdbAppendString(b, []byte(m))
			}
		}
	case *hashValue:
		if v.isListpack() {
			lp := newListpack()
			v.each(func(f string, val []byte) bool {
				lp.add([]byte(f))
				lp.add(val)
				return true
			})
			b = rdbAppendString(append(b, rdbTypeHashListpack), lp.bytes())
		} else {
			b = rdbAppendLen(append(b, rdbTypeHash), uint64(v.Len()))
			v.each(func(f string, val []byte) bool {
				b = rdbAppendString(b, []byte(f))
				b = rdbAppendString(b, val)
				return true
			})
		}
	case *zsetValue:
		if v.listpack() {
			lp := newListpack()
			for n := v.index.first(); n != nil; n = n.next() {
				lp.add([]byte(n.member))
				lp.add([]byte(FormatDouble(n.score)))
			}
			b = rdbAppendString(append(b, rdbTypeZSetListpack), lp.bytes())
		} else {
			// Redis writes a skiplist from the greatest element down, so
			// loading always inserts at the head.
			var ns []*zslNode
			for n := v.index.first(); n != nil; n = n.next() {
				ns = append(ns, n)
			}
			b = rdbAppendLen(append(b, rdbTypeZSet2), uint64(len(ns)))
			for i := len(ns) - 1; i >= 0; i-- {
				b = rdbAppendString(b, []byte(ns[i].member))
				b = binary.LittleEndian.AppendUint64(b, math.Float64bits(ns[i].score))
			}
		}
	case *listValue:
		// RDB_TYPE_LIST_QUICKLIST_2 of packed nodes, each closed once its
		// listpack passes Redis 7.0's default list-max-listpack-size (-2:
		// 8 KB). Redis's own node boundaries depend on the list's history;
		// any boundaries load the same list.
		var nodes [][]byte
		lp := newListpack()
		v.walk(0, func(nd *lnode) bool {
			if lp.n > 0 && len(lp.b)+len(nd.val)+11 > quicklistNodeBytes {
				nodes = append(nodes, lp.bytes())
				lp = newListpack()
			}
			lp.add([]byte(nd.val))
			return true
		})
		if lp.n > 0 {
			nodes = append(nodes, lp.bytes())
		}
		b = rdbAppendLen(append(b, rdbTypeListQuicklist2), uint64(len(nodes)))
		for _, n := range nodes {
			b = rdbAppendLen(b, quicklistNodePacked)
			b = rdbAppendString(b, n)
		}
	default:
		// A value type without an RDB encoder (each new type adds its case
		// here).
		return nil, rdbUnsupported(v.Type().String())
	}
	return rdbSeal(b), nil
}

// Quicklist node layout in DUMP payloads (Redis 7.0's quicklist.h).
const (
	quicklistNodePacked = 2    // QUICKLIST_NODE_CONTAINER_PACKED: a listpack
	quicklistNodeBytes  = 8192 // list-max-listpack-size -2
)

// intsetBlob encodes ascending canonical integers as Redis's intset: the
// narrowest width that holds them all, little-endian throughout.
func intsetBlob(ms []string) []byte {
	vals := make([]int64, len(ms))
	width := 2
	for i, m := range ms {
		v, _ := strconv.ParseInt(m, 10, 64)
		vals[i] = v
		switch {
		case v < math.MinInt32 || v > math.MaxInt32:
			width = 8
		case (v < math.MinInt16 || v > math.MaxInt16) && width < 4:
			width = 4
		}
	}
	b := binary.LittleEndian.AppendUint32(nil, uint32(width))
	b = binary.LittleEndian.AppendUint32(b, uint32(len(vals)))
	for _, v := range vals {
		switch width {
		case 2:
			b = binary.LittleEndian.AppendUint16(b, uint16(v))
		case 4:
			b = binary.LittleEndian.AppendUint32(b, uint32(v))
		default:
			b = binary.LittleEndian.AppendUint64(b, uint64(v))
		}
	}
	return b
}

// ---- decoding ----

// rdbReader reads an RDB body. The first error sticks; later reads return
// zero values, so decoders check r.err once per element.
type rdbReader struct {
	b   []byte
	err error
}

func (r *rdbReader) fail() { r.err, r.b = errBadRDB, nil }

func (r *rdbReader) take(n uint64) []byte {
	if r.err != nil || n > uint64(len(r.b)) {
		r.fail()
		return nil
	}
	p := r.b[:n]
	r.b = r.b[n:]
	return p
}

func (r *rdbReader) byte1() byte {
	p := r.take(1)
	if p == nil {
		return 0
	}
	return p[0]
}

// length reads an RDB length; enc reports the special (integer or LZF)
// string encodings, whose kind is then the returned value.
func (r *rdbReader) length() (n uint64, enc bool) {
	c := r.byte1()
	switch c >> 6 {
	case 0:
		return uint64(c & 0x3f), false
	case 1:
		return uint64(c&0x3f)<<8 | uint64(r.byte1()), false
	case 3:
		return uint64(c & 0x3f), true
	}
	switch c {
	case 0x80:
		if p := r.take(4); p != nil {
			return uint64(binary.BigEndian.Uint32(p)), false
		}
	case 0x81:
		if p := r.take(8); p != nil {
			return binary.BigEndian.Uint64(p), false
		}
	default:
		r.fail()
	}
	return 0, false
}

// count reads an element count. Each element takes at least min bytes,
// so a count beyond what is left is rejected before anything is allocated.
func (r *rdbReader) count(min uint64) int {
	n, enc := r.length()
	if enc || n == 0 || n > uint64(len(r.b))/min {
		r.fail() // Redis refuses empty collections too
		return 0
	}
	return int(n)
}

// str reads a string in any of its encodings.
func (r *rdbReader) str() []byte {
	n, enc := r.length()
	if !enc {
		if n > rdbMaxValue {
			r.fail()
			return nil
		}
		return r.take(n)
	}
	switch n {
	case 0:
		return strconv.AppendInt(nil, int64(int8(r.byte1())), 10)
	case 1:
		if p := r.take(2); p != nil {
			return strconv.AppendInt(nil, int64(int16(binary.LittleEndian.Uint16(p))), 10)
		}
	case 2:
		if p := r.take(4); p != nil {
			return strconv.AppendInt(nil, int64(int32(binary.LittleEndian.Uint32(p))), 10)
		}
	case 3:
		clen, e1 := r.length()
		ulen, e2 := r.length()
		if e1 || e2 || r.err != nil {
			r.fail()
			return nil
		}
		src := r.take(clen)
		if src == nil {
			return nil
		}
		out, ok := lzfDecompress(src, ulen)
		if !ok {
			r.fail()
		}
		return out
	default:
		r.fail()
	}
	return nil
}

// lzfDecompress expands LZF data (liblzf's format, as Redis uses it) that
// must come out at exactly ulen bytes. No input byte yields more than 88
// output bytes (the longest back-reference: 3 bytes copying 264), so a
// claimed ulen beyond 88*len(src) is rejected before allocating.
func lzfDecompress(src []byte, ulen uint64) ([]byte, bool) {
	if ulen == 0 || ulen > rdbMaxValue || ulen > uint64(len(src))*88 {
		return nil, false
	}
	out := make([]byte, 0, ulen)
	for i := 0; i < len(src); {
		ctrl := int(src[i])
		i++
		if ctrl < 32 { // literal run of ctrl+1 bytes
			n := ctrl + 1
			if i+n > len(src) || uint64(len(out)+n) > ulen {
				return nil, false
			}
			out = append(out, src[i:i+n]...)
			i += n
			continue
		}
		n := ctrl >> 5
		if n == 7 {
			if i >= len(src) {
				return nil, false
			}
			n += int(src[i])
			i++
		}
		n += 2
		if i >= len(src) {
			return nil, false
		}
		back := (ctrl&0x1f)<<8 + int(src[i]) + 1
		i++
		if back > len(out) || uint64(len(out)+n) > ulen {
			return nil, false
		}
		for k := 0; k < n; k++ { // may overlap itself: byte by byte
			out = append(out, out[len(out)-back])
		}
	}
	return out, uint64(len(out)) == ulen
}

// binaryDouble reads an 8-byte little-endian IEEE double (RDB_TYPE_ZSET_2).
func (r *rdbReader) binaryDouble() float64 {
	if p := r.take(8); p != nil {
		return math.Float64frombits(binary.LittleEndian.Uint64(p))
	}
	return 0
}

// textDouble reads the old length-prefixed ASCII double (RDB_TYPE_ZSET).
func (r *rdbReader) textDouble() float64 {
	switch n := r.byte1(); n {
	case 253:
		return math.NaN()
	case 254:
		return math.Inf(1)
	case 255:
		return math.Inf(-1)
	default:
		f, err := strconv.ParseFloat(string(r.take(uint64(n))), 64)
		if err != nil {
			r.fail()
		}
		return f
	}
}

// rdbDecode decodes a DUMP payload (footer included). Like Redis, which
// reads the value from the whole payload buffer, a value may run into the
// footer's bytes, and bytes after the value are ignored.
func rdbDecode(payload []byte) (*rdbObject, error) {
	if _, err := rdbVerify(payload); err != nil {
		return nil, err
	}
	r := &rdbReader{b: payload}
	t := r.byte1()
	o := &rdbObject{}
	switch t {
	case rdbTypeString:
		o.kind, o.str = rdbString, r.str()
	case rdbTypeSet:
		o.kind = rdbSet
		n := r.count(1)
		for i := 0; i < n && r.err == nil; i++ {
			o.elems = append(o.elems, r.str())
		}
	case rdbTypeSetIntset:
		o.kind = rdbSet
		o.elems = parseIntset(r, r.str())
	case rdbTypeZSet, rdbTypeZSet2:
		o.kind = rdbZSet
		n := r.count(2)
		for i := 0; i < n && r.err == nil; i++ {
			o.elems = append(o.elems, r.str())
			if t == rdbTypeZSet2 {
				o.scores = append(o.scores, r.binaryDouble())
			} else {
				o.scores = append(o.scores, r.textDouble())
			}
		}
	case rdbTypeZSetListpack, rdbTypeZSetZiplist:
		o.kind = rdbZSet
		ents := rdbEntries(r, t == rdbTypeZSetZiplist)
		if len(ents)%2 != 0 {
			r.fail()
		}
		for i := 0; i+1 < len(ents) && r.err == nil; i += 2 {
			f, _, ok := zStrtod(ents[i+1])
			if !ok {
				r.fail()
			}
			o.elems = append(o.elems, ents[i])
			o.scores = append(o.scores, f)
		}
	case rdbTypeHash:
		o.kind = rdbHash
		n := r.count(2)
		for i := 0; i < n && r.err == nil; i++ {
			o.pairs = append(o.pairs, r.str(), r.str())
		}
	case rdbTypeHashListpack, rdbTypeHashZiplist:
		o.kind = rdbHash
		o.pairs = rdbEntries(r, t == rdbTypeHashZiplist)
		if len(o.pairs)%2 != 0 {
			r.fail()
		}
	case rdbTypeList:
		o.kind = rdbList
		n := r.count(1)
		for i := 0; i < n && r.err == nil; i++ {
			o.elems = append(o.elems, r.str())
		}
	case rdbTypeListZiplist:
		o.kind = rdbList
		o.elems = rdbEntries(r, true)
	case rdbTypeListQuicklist, rdbTypeListQuicklist2:
		o.kind = rdbList
		n := r.count(1)
		for i := 0; i < n && r.err == nil; i++ {
			container := uint64(2) // quicklist 1 nodes are all ziplists
			if t == rdbTypeListQuicklist2 {
				container, _ = r.length()
			}
			switch container {
			case 1: // a plain node: one element
				o.elems = append(o.elems, r.str())
			case 2:
				ents := rdbEntries(r, t == rdbTypeListQuicklist)
				if len(ents) == 0 {
					r.fail()
				}
				o.elems = append(o.elems, ents...)
			default:
				r.fail()
			}
		}
	case rdbTypeStreamListpacks, rdbTypeStreamListpack2:
		return nil, rdbUnsupported("stream")
	case rdbTypeModule, rdbTypeModule2:
		return nil, rdbUnsupported("module")
	default:
		// RDB_TYPE_HASH_ZIPMAP (pre-2.6 files) and unknown types.
		return nil, errBadRDB
	}
	if r.err != nil {
		return nil, r.err
	}
	if err := o.check(); err != nil {
		return nil, err
	}
	return o, nil
}

// check rejects what Redis refuses to load: empty values, duplicate set
// members, hash fields or sorted-set members, NaN scores.
func (o *rdbObject) check() error {
	seen := map[string]bool{}
	dup := func(s []byte) bool {
		if seen[string(s)] {
			return true
		}
		seen[string(s)] = true
		return false
	}
	switch o.kind {
	case rdbSet, rdbZSet:
		if len(o.elems) == 0 {
			return errBadRDB
		}
		for _, m := range o.elems {
			if dup(m) {
				return errBadRDB
			}
		}
		for _, s := range o.scores {
			if math.IsNaN(s) {
				return errBadRDB
			}
		}
	case rdbHash:
		if len(o.pairs) == 0 {
			return errBadRDB
		}
		for i := 0; i < len(o.pairs); i += 2 {
			if dup(o.pairs[i]) {
				return errBadRDB
			}
		}
	case rdbList:
		if len(o.elems) == 0 {
			return errBadRDB
		}
	}
	return nil
}

// parseIntset decodes an intset blob; its members must ascend strictly.
func parseIntset(r *rdbReader, blob []byte) [][]byte {
	if r.err != nil {
		return nil
	}
	if len(blob) < 8 {
		r.fail()
		return nil
	}
	width := binary.LittleEndian.Uint32(blob)
	n := uint64(binary.LittleEndian.Uint32(blob[4:]))
	if (width != 2 && width != 4 && width != 8) || n == 0 || uint64(len(blob)-8) != n*uint64(width) {
		r.fail()
		return nil
	}
	out := make([][]byte, 0, n)
	var prev int64
	for i := uint64(0); i < n; i++ {
		p := blob[8+i*uint64(width):]
		var v int64
		switch width {
		case 2:
			v = int64(int16(binary.LittleEndian.Uint16(p)))
		case 4:
			v = int64(int32(binary.LittleEndian.Uint32(p)))
		default:
			v = int64(binary.LittleEndian.Uint64(p))
		}
		if i > 0 && v <= prev {
			r.fail()
			return nil
		}
		prev = v
		out = append(out, strconv.AppendInt(nil, v, 10))
	}
	return out
}

// rdbEntries reads a string holding a listpack (or, for older payloads, a
// ziplist) and returns its entries, integers as their decimal text.
func rdbEntries(r *rdbReader, ziplist bool) [][]byte {
	blob := r.str()
	if r.err != nil {
		return nil
	}
	var ents [][]byte
	var ok bool
	if ziplist {
		ents, ok = parseZiplist(blob)
	} else {
		ents, ok = parseListpack(blob)
	}
	if !ok {
		r.fail()
	}
	return ents
}

// parseListpack walks a whole listpack, checking header, every entry's
// encoding and back-length, and the terminator.
func parseListpack(b []byte) ([][]byte, bool) {
	if len(b) < 7 || binary.LittleEndian.Uint32(b) != uint32(len(b)) || b[len(b)-1] != 0xff {
		return nil, false
	}
	count := int(binary.LittleEndian.Uint16(b[4:]))
	var out [][]byte
	p := b[6 : len(b)-1]
	for len(p) > 0 {
		c := p[0]
		var hdr, n int // header bytes, string bytes
		var val []byte
		var iv int64
		isInt := true
		switch {
		case c < 0x80:
			hdr, iv = 1, int64(c)
		case c < 0xc0:
			hdr, n, isInt = 1, int(c&0x3f), false
		case c < 0xe0:
			if len(p) < 2 {
				return nil, false
			}
			u := uint64(c&0x1f)<<8 | uint64(p[1])
			hdr, iv = 2, int64(u<<51)>>51
		case c < 0xf0:
			if len(p) < 2 {
				return nil, false
			}
			hdr, n, isInt = 2, int(c&0x0f)<<8|int(p[1]), false
		default:
			w := map[byte]int{0xf0: 4, 0xf1: 2, 0xf2: 3, 0xf3: 4, 0xf4: 8}[c]
			if w == 0 || len(p) < 1+w {
				return nil, false
			}
			hdr = 1 + w
			q := p[1 : 1+w]
			switch c {
			case 0xf0:
				l := binary.LittleEndian.Uint32(q)
				if uint64(l) > uint64(len(p)) {
					return nil, false
				}
				n, isInt = int(l), false
			case 0xf1:
				iv = int64(int16(binary.LittleEndian.Uint16(q)))
			case 0xf2:
				iv = int64(int32(uint32(q[0])|uint32(q[1])<<8|uint32(q[2])<<16) << 8 >> 8)
			case 0xf3:
				iv = int64(int32(binary.LittleEndian.Uint32(q)))
			default:
				iv = int64(binary.LittleEndian.Uint64(q))
			}
		}
		l := hdr + n
		if l > len(p) {
			return nil, false
		}
		if isInt {
			val = strconv.AppendInt(nil, iv, 10)
		} else {
			val = p[hdr:l]
		}
		bl := appendBacklen(nil, uint64(l))
		if len(p) < l+len(bl) || !bytes.Equal(p[l:l+len(bl)], bl) {
			return nil, false
		}
		out = append(out, val)
		p = p[l+len(bl):]
	}
	if count != 65535 && count != len(out) {
		return nil, false
	}
	return out, true
}

// parseZiplist walks a whole ziplist (the encoding before listpacks),
// checking header, tail offset, every entry's prevlen and the terminator.
func parseZiplist(b []byte) ([][]byte, bool) {
	if len(b) < 11 || binary.LittleEndian.Uint32(b) != uint32(len(b)) || b[len(b)-1] != 0xff {
		return nil, false
	}
	tail := int(binary.LittleEndian.Uint32(b[4:]))
	count := int(binary.LittleEndian.Uint16(b[8:]))
	var out [][]byte
	off, prev, last := 10, 0, 10
	for off < len(b)-1 {
		start := off
		p := b[off : len(b)-1]
		var pl int
		if p[0] < 254 {
			pl, p = int(p[0]), p[1:]
		} else if p[0] == 254 && len(p) >= 5 {
			pl, p = int(binary.LittleEndian.Uint32(p[1:])), p[5:]
		} else {
			return nil, false
		}
		if pl != prev || len(p) == 0 {
			return nil, false
		}
		c := p[0]
		var hdr, n int
		var iv int64
		isInt := true
		switch {
		case c>>6 == 0:
			hdr, n, isInt = 1, int(c&0x3f), false
		case c>>6 == 1:
			if len(p) < 2 {
				return nil, false
			}
			hdr, n, isInt = 2, int(c&0x3f)<<8|int(p[1]), false
		case c == 0x80:
			if len(p) < 5 {
				return nil, false
			}
			l := binary.BigEndian.Uint32(p[1:])
			if uint64(l) > uint64(len(p)) {
				return nil, false
			}
			hdr, n, isInt = 5, int(l), false
		case c == 0xc0, c == 0xd0, c == 0xe0, c == 0xf0, c == 0xfe:
			w := map[byte]int{0xc0: 2, 0xd0: 4, 0xe0: 8, 0xf0: 3, 0xfe: 1}[c]
			if len(p) < 1+w {
				return nil, false
			}
			hdr = 1 + w
			q := p[1 : 1+w]
			switch c {
			case 0xc0:
				iv = int64(int16(binary.LittleEndian.Uint16(q)))
			case 0xd0:
				iv = int64(int32(binary.LittleEndian.Uint32(q)))
			case 0xe0:
				iv = int64(binary.LittleEndian.Uint64(q))
			case 0xf0:
				iv = int64(int32(uint32(q[0])|uint32(q[1])<<8|uint32(q[2])<<16) << 8 >> 8)
			default:
				iv = int64(int8(q[0]))
			}
		case c >= 0xf1 && c <= 0xfd:
			hdr, iv = 1, int64(c&0x0f)-1
		default:
			return nil, false
		}
		if hdr+n > len(p) {
			return nil, false
		}
		if isInt {
			out = append(out, strconv.AppendInt(nil, iv, 10))
		} else {
			out = append(out, p[hdr:hdr+n])
		}
		off = len(b) - 1 - len(p) + hdr + n
		prev, last = off-start, start
	}
	if last != tail || (count != 65535 && count != len(out)) {
		return nil, false
	}
	return out, true
}
