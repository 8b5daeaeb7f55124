package crdt

import (
	"encoding/binary"
	"math"
	"math/bits"
)

// Bitmap and bitfield commands on strings, with Redis 7.0's replies, errors
// and argument checks in Redis's order.
//
// A bitmap is a plain string, so every write here (SETBIT, BITFIELD with a
// SET or INCRBY, BITOP's destination) computes the whole new value locally
// and ships it as one EffStrSet, like APPEND and SETRANGE: the string is an
// LWW register, and two regions setting different bits of one key at the
// same time keep only the later writer's string (docs/bitmaps-geo.md).
// BITOP is a whole-key write of its destination (TTL dropped, as SET).
//
// Offsets are limited as Redis limits them with its default
// proto-max-bulk-len (512 MB): the engine does not see the server's
// configuration, so a raised proto-max-bulk-len does not raise this limit.

func init() {
	k1 := func(s *CommandSpec) *CommandSpec { s.FirstKey, s.LastKey, s.Step = 1, 1, 1; return s }
	register(
		k1(&CommandSpec{Name: "setbit", Arity: 4, Flags: []string{"denyoom"},
			Categories: []string{"write", "bitmap", "slow"}, Write: true, Run: cmdSetBit}),
		k1(&CommandSpec{Name: "getbit", Arity: 3, Flags: []string{"fast"},
			Categories: []string{"read", "bitmap", "fast"}, Run: cmdGetBit}),
		k1(&CommandSpec{Name: "bitcount", Arity: -2,
			Categories: []string{"read", "bitmap", "slow"}, Run: cmdBitCount}),
		k1(&CommandSpec{Name: "bitpos", Arity: -3,
			Categories: []string{"read", "bitmap", "slow"}, Run: cmdBitPos}),
		&CommandSpec{Name: "bitop", Arity: -4, Flags: []string{"denyoom"}, FirstKey: 2, LastKey: -1, Step: 1,
			Categories: []string{"write", "bitmap", "slow"}, Write: true, Run: cmdBitOp},
		k1(&CommandSpec{Name: "bitfield", Arity: -2, Flags: []string{"denyoom"},
			Categories: []string{"write", "bitmap", "slow"}, Write: true,
			Run: func(tx *Tx, a [][]byte) Reply { return bitfieldGeneric(tx, a, false) }}),
		k1(&CommandSpec{Name: "bitfield_ro", Arity: -2, Flags: []string{"fast"},
			Categories: []string{"read", "bitmap", "fast"},
			Run:        func(tx *Tx, a [][]byte) Reply { return bitfieldGeneric(tx, a, true) }}),
	)
}

var (
	errBitOffset = Err("ERR bit offset is not an integer or out of range")
	errBitValue  = Err("ERR bit is not an integer or out of range")
	errBitArg    = Err("ERR The bit argument must be 1 or 0.")
	errBFType    = Err("ERR Invalid bitfield type. Use something like i16 u8. Note that u64 is not supported but i64 is.")
)

// bitOffset parses a bit offset as Redis's getBitOffsetFromArgument: an
// integer (string2ll), or with hash "#n" meaning n*width, not negative and
// addressing a byte below the 512 MB string limit.
func bitOffset(b []byte, hash bool, width int) (uint64, bool) {
	use := hash && width > 0 && len(b) > 0 && b[0] == '#'
	if use {
		b = b[1:]
	}
	off, ok := parseInt64(b)
	if !ok {
		return 0, false
	}
	if use {
		off *= int64(width) // wraps like Redis's long long multiply
	}
	if off < 0 || off>>3 >= maxStringLen {
		return 0, false
	}
	return uint64(off), true
}

// getBitAt reads bit off of s (bits past the end are 0).
func getBitAt(s []byte, off uint64) uint64 {
	if off>>3 >= uint64(len(s)) {
		return 0
	}
	return uint64(s[off>>3]>>(7-off&7)) & 1
}

func setBitAt(s []byte, off uint64, on uint64) {
	mask := byte(1) << (7 - off&7)
	if on != 0 {
		s[off>>3] |= mask
	} else {
		s[off>>3] &^= mask
	}
}

// grownCopy returns a copy of s zero-padded to at least n bytes.
func grownCopy(s []byte, n uint64) []byte {
	size := max(uint64(len(s)), n)
	out := make([]byte, size)
	copy(out, s)
	return out
}

func cmdSetBit(tx *Tx, args [][]byte) Reply {
	off, ok := bitOffset(args[2], false, 0)
	if !ok {
		return errBitOffset
	}
	on, ok := parseInt64(args[3])
	if !ok || on&^1 != 0 {
		return errBitValue
	}
	key := args[1]
	old, found, r, ok := getString(tx, key)
	if !ok {
		return r
	}
	prev := getBitAt(old, off)
	grows := off>>3 >= uint64(len(old))
	if !found || grows || prev != uint64(on) {
		nv := grownCopy(old, off>>3+1)
		setBitAt(nv, off, uint64(on))
		writeString(tx, key, nv, found)
	}
	return Int(int64(prev))
}

func cmdGetBit(tx *Tx, args [][]byte) Reply {
	off, ok := bitOffset(args[2], false, 0)
	if !ok {
		return errBitOffset
	}
	v, _, r, ok := getString(tx, args[1])
	if !ok {
		return r
	}
	return Int(int64(getBitAt(v, off)))
}

// bitRange turns BITCOUNT/BITPOS start/end (in bytes, or in bits when isBit)
// into an inclusive bit range over a string of n bytes, as Redis clamps
// them. empty is true when the range holds nothing.
func bitRange(start, end int64, isBit bool, n int64) (from, to int64, empty bool) {
	total := n
	if isBit {
		total <<= 3
	}
	if start < 0 {
		start += total
	}
	if end < 0 {
		end += total
	}
	start, end = max(start, 0), max(end, 0)
	if end >= total {
		end = total - 1
	}
	if start > end {
		return 0, 0, true
	}
	if !isBit {
		return start << 3, end<<3 | 7, false
	}
	return start, end, false
}

// rangeUnit parses BYTE or BIT (case-insensitive).
func rangeUnit(b []byte) (isBit bool, ok bool) {
	switch lower(b) {
	case "bit":
		return true, true
	case "byte":
		return false, true
	}
	return false, false
}

// popcountBits counts the set bits of s in the inclusive bit range.
func popcountBits(s []byte, from, to int64) int64 {
	fb, lb := from>>3, to>>3
	first := s[fb] & (0xff >> (from & 7))
	if fb == lb {
		return int64(bits.OnesCount8(first & (0xff << (7 - to&7))))
	}
	n := int64(bits.OnesCount8(first)) + int64(bits.OnesCount8(s[lb]&(0xff<<(7-to&7))))
	mid := s[fb+1 : lb]
	for len(mid) >= 8 {
		n += int64(bits.OnesCount64(binary.LittleEndian.Uint64(mid)))
		mid = mid[8:]
	}
	for _, b := range mid {
		n += int64(bits.OnesCount8(b))
	}
	return n
}

// firstBit returns the position of the first bit equal to bit in the
// inclusive bit range of s, or -1. Whole bytes that cannot hold it are
// skipped at once: a bitmap can be 512 MB.
func firstBit(s []byte, from, to int64, bit uint64) int64 {
	skip := byte(0)
	if bit == 0 {
		skip = 0xff
	}
	skip64 := uint64(0)
	if bit == 0 {
		skip64 = math.MaxUint64
	}
	for i := from; i <= to; {
		if i&63 == 0 && i+63 <= to && binary.LittleEndian.Uint64(s[i>>3:]) == skip64 {
			i += 64
			continue
		}
		if i&7 == 0 && i+7 <= to && s[i>>3] == skip {
			i += 8
			continue
		}
		if getBitAt(s, uint64(i)) == bit {
			return i
		}
		i++
	}
	return -1
}

func cmdBitCount(tx *Tx, args [][]byte) Reply {
	v, found, r, ok := getString(tx, args[1])
	if !ok {
		return r
	}
	if !found {
		return Int(0) // before any argument check, as Redis
	}
	var from, to int64
	switch len(args) {
	case 2:
		if len(v) == 0 {
			return Int(0)
		}
		from, to = 0, int64(len(v))*8-1
	case 4, 5:
		start, ok1 := parseInt64(args[2])
		if !ok1 {
			return ErrNotInt
		}
		end, ok2 := parseInt64(args[3])
		if !ok2 {
			return ErrNotInt
		}
		if start < 0 && end < 0 && start > end {
			return Int(0)
		}
		isBit := false
		if len(args) == 5 {
			if isBit, ok = rangeUnit(args[4]); !ok {
				return ErrSyntax
			}
		}
		var empty bool
		if from, to, empty = bitRange(start, end, isBit, int64(len(v))); empty {
			return Int(0)
		}
	default:
		return ErrSyntax
	}
	return Int(popcountBits(v, from, to))
}

func cmdBitPos(tx *Tx, args [][]byte) Reply {
	bit, ok := parseInt64(args[2])
	if !ok {
		return ErrNotInt
	}
	if bit != 0 && bit != 1 {
		return errBitArg
	}
	v, found, r, ok := getString(tx, args[1])
	if !ok {
		return r
	}
	if !found {
		// A missing key is an endless run of zeros.
		if bit == 1 {
			return Int(-1)
		}
		return Int(0)
	}
	n := int64(len(v))
	endGiven := false
	var from, to int64
	switch len(args) {
	case 3:
		if n == 0 {
			return Int(-1)
		}
		from, to = 0, n*8-1
	case 4, 5, 6:
		start, ok := parseInt64(args[3])
		if !ok {
			return ErrNotInt
		}
		isBit := false
		if len(args) == 6 {
			if isBit, ok = rangeUnit(args[5]); !ok {
				return ErrSyntax
			}
		}
		var end int64
		if len(args) >= 5 {
			if end, ok = parseInt64(args[4]); !ok {
				return ErrNotInt
			}
			endGiven = true
		} else if isBit {
			end = n<<3 + 7
		} else {
			end = n - 1
		}
		var empty bool
		if from, to, empty = bitRange(start, end, isBit, n); empty {
			return Int(-1)
		}
	default:
		return ErrSyntax
	}
	if i := firstBit(v, from, to, uint64(bit)); i >= 0 {
		return Int(i)
	}
	if bit == 1 || endGiven {
		return Int(-1)
	}
	// Looking for a clear bit with no end given: the string continues
	// with zeros past its end.
	return Int(to + 1)
}

func cmdBitOp(tx *Tx, args [][]byte) Reply {
	op := cstrLower(args[1])
	switch op {
	case "and", "or", "xor", "not":
	default:
		return ErrSyntax
	}
	if op == "not" && len(args) != 4 {
		return Err("ERR BITOP NOT must be called with a single source key.")
	}
	dst := args[2]
	srcs := make([][]byte, 0, len(args)-3)
	maxLen := 0
	for _, k := range args[3:] {
		v, _, r, ok := getString(tx, k)
		if !ok {
			return r
		}
		srcs = append(srcs, v)
		maxLen = max(maxLen, len(v))
	}
	if maxLen == 0 {
		if tx.Exists(dst) {
			tx.Emit(Effect{Kind: EffDelKey, Key: dst})
		}
		return Int(0)
	}
	res := make([]byte, maxLen)
	at := func(s []byte, i int) byte {
		if i < len(s) {
			return s[i]
		}
		return 0
	}
	for i := range res {
		b := at(srcs[0], i)
		switch op {
		case "not":
			b = ^b
		case "and":
			for _, s := range srcs[1:] {
				b &= at(s, i)
			}
		case "or":
			for _, s := range srcs[1:] {
				b |= at(s, i)
			}
		case "xor":
			for _, s := range srcs[1:] {
				b ^= at(s, i)
			}
		}
		res[i] = b
	}
	overwriteString(tx, dst, res, false)
	return Int(int64(maxLen))
}

// ---- BITFIELD ----

const (
	bfWrap = iota
	bfSat
	bfFail
)

const (
	bfGet = iota
	bfSet
	bfIncrBy
)

type bitfieldOp struct {
	op, overflow int
	signed       bool
	width        int
	off          uint64
	val          int64
}

// bitfieldType parses i1..i64 or u1..u63.
func bitfieldType(b []byte) (signed bool, width int, ok bool) {
	if len(b) == 0 || b[0] != 'i' && b[0] != 'u' {
		return false, 0, false
	}
	signed = b[0] == 'i'
	// Redis reads the rest as a C string.
	rest := b[1:]
	for i, c := range rest {
		if c == 0 {
			rest = rest[:i]
			break
		}
	}
	n, ok := parseInt64(rest)
	if !ok || n < 1 || signed && n > 64 || !signed && n > 63 {
		return false, 0, false
	}
	return signed, int(n), true
}

func getUnsignedField(s []byte, off uint64, width int) uint64 {
	var v uint64
	for i := 0; i < width; i++ {
		v = v<<1 | getBitAt(s, off+uint64(i))
	}
	return v
}

func getSignedField(s []byte, off uint64, width int) int64 {
	v := getUnsignedField(s, off, width)
	if width < 64 && v&(1<<(width-1)) != 0 {
		v |= math.MaxUint64 << width
	}
	return int64(v)
}

func setField(s []byte, off uint64, width int, v uint64) {
	for i := 0; i < width; i++ {
		setBitAt(s, off+uint64(i), v>>(width-1-i)&1)
	}
}

// unsignedOverflow is Redis's checkUnsignedBitfieldOverflow: 0, or ±1 with
// the value to store under WRAP or SAT in limit.
func unsignedOverflow(value uint64, incr int64, width int, ow int) (int, uint64) {
	maxv := uint64(1)<<width - 1
	maxIncr := int64(maxv - value)
	minIncr := -int64(value)
	wrap := func() uint64 { return (value + uint64(incr)) & maxv }
	if value > maxv || incr > 0 && incr > maxIncr {
		switch ow {
		case bfWrap:
			return 1, wrap()
		case bfSat:
			return 1, maxv
		}
		return 1, 0
	}
	if incr < 0 && incr < minIncr {
		switch ow {
		case bfWrap:
			return -1, wrap()
		case bfSat:
			return -1, 0
		}
		return -1, 0
	}
	return 0, 0
}

// signedOverflow is Redis's checkSignedBitfieldOverflow.
func signedOverflow(value, incr int64, width int, ow int) (int, int64) {
	maxv := int64(math.MaxInt64)
	if width < 64 {
		maxv = 1<<(width-1) - 1
	}
	minv := -maxv - 1
	maxIncr := int64(uint64(maxv) - uint64(value))
	minIncr := minv - value
	wrap := func() int64 {
		c := uint64(value) + uint64(incr)
		if width < 64 {
			mask := uint64(math.MaxUint64) << width
			if c&(1<<(width-1)) != 0 {
				c |= mask
			} else {
				c &^= mask
			}
		}
		return int64(c)
	}
	if value > maxv || width != 64 && incr > maxIncr || value >= 0 && incr > 0 && incr > maxIncr {
		switch ow {
		case bfWrap:
			return 1, wrap()
		case bfSat:
			return 1, maxv
		}
		return 1, 0
	}
	if value < minv || width != 64 && incr < minIncr || value < 0 && incr < 0 && incr < minIncr {
		switch ow {
		case bfWrap:
			return -1, wrap()
		case bfSat:
			return -1, minv
		}
		return -1, 0
	}
	return 0, 0
}

func bitfieldGeneric(tx *Tx, args [][]byte, ro bool) Reply {
	var ops []bitfieldOp
	overflow := bfWrap
	readonly := true
	var highest uint64
	for j := 2; j < len(args); j++ {
		rem := len(args) - j - 1
		var op int
		switch sub := cstrLower(args[j]); {
		case sub == "get" && rem >= 2:
			op = bfGet
		case sub == "set" && rem >= 3:
			op = bfSet
		case sub == "incrby" && rem >= 3:
			op = bfIncrBy
		case sub == "overflow" && rem >= 1:
			j++
			switch cstrLower(args[j]) {
			case "wrap":
				overflow = bfWrap
			case "sat":
				overflow = bfSat
			case "fail":
				overflow = bfFail
			default:
				return Err("ERR Invalid OVERFLOW type specified")
			}
			continue
		default:
			return ErrSyntax
		}
		signed, width, ok := bitfieldType(args[j+1])
		if !ok {
			return errBFType
		}
		off, ok := bitOffset(args[j+2], true, width)
		if !ok {
			return errBitOffset
		}
		o := bitfieldOp{op: op, overflow: overflow, signed: signed, width: width, off: off}
		if op != bfGet {
			readonly = false
			highest = max(highest, off+uint64(width)-1)
			if o.val, ok = parseInt64(args[j+3]); !ok {
				return ErrNotInt
			}
			j++
		}
		ops = append(ops, o)
		j += 2
	}
	key := args[1]
	if !readonly && ro {
		return Err("ERR BITFIELD_RO only supports the GET subcommand")
	}
	cur, found, r, ok := getString(tx, key)
	if !ok {
		return r
	}
	s := cur
	if !readonly {
		// Redis makes room up to the farthest bit written, even when every
		// write then fails its overflow check.
		s = grownCopy(cur, highest>>3+1)
	}
	out := make([]Reply, 0, len(ops))
	for _, o := range ops {
		switch {
		case o.op == bfGet && o.signed:
			out = append(out, Int(getSignedField(s, o.off, o.width)))
		case o.op == bfGet:
			out = append(out, Int(int64(getUnsignedField(s, o.off, o.width))))
		case o.signed:
			old := getSignedField(s, o.off, o.width)
			var nv, ret int64
			var of int
			var lim int64
			if o.op == bfIncrBy {
				of, lim = signedOverflow(old, o.val, o.width, o.overflow)
				nv = old + o.val
				if of != 0 {
					nv = lim
				}
				ret = nv
			} else {
				nv = o.val
				if of, lim = signedOverflow(nv, 0, o.width, o.overflow); of != 0 {
					nv = lim
				}
				ret = old
			}
			if of != 0 && o.overflow == bfFail {
				out = append(out, Nil)
				continue
			}
			out = append(out, Int(ret))
			setField(s, o.off, o.width, uint64(nv))
		default:
			old := getUnsignedField(s, o.off, o.width)
			var nv, ret uint64
			var of int
			var lim uint64
			if o.op == bfIncrBy {
				nv = old + uint64(o.val)
				if of, lim = unsignedOverflow(old, o.val, o.width, o.overflow); of != 0 {
					nv = lim
				}
				ret = nv
			} else {
				nv = uint64(o.val)
				if of, lim = unsignedOverflow(nv, 0, o.width, o.overflow); of != 0 {
					nv = lim
				}
				ret = old
			}
			if of != 0 && o.overflow == bfFail {
				out = append(out, Nil)
				continue
			}
			out = append(out, Int(int64(ret)))
			setField(s, o.off, o.width, nv)
		}
	}
	if !readonly {
		writeString(tx, key, s, found)
	}
	return Array(out...)
}
