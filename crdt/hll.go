package crdt

import "math"

// This file is Redis 7.0's HyperLogLog (hyperloglog.c) over the very bytes
// Redis stores: the same hash, the same sparse and dense encodings, the
// same in-place sparse edits and the same estimator, so that a sequence of
// PFADD/PFMERGE/PFCOUNT produces the value Redis would hold byte for byte.
// The sparse encoding is history dependent (how runs of equal registers
// are cut into opcodes depends on the order they were set in), which is
// why the CRDT value (hllvalue.go) replays register updates in a fixed
// order instead of rebuilding bytes from the registers.

const (
	hllP         = 14
	hllQ         = 64 - hllP
	hllRegisters = 1 << hllP
	hllPMask     = hllRegisters - 1
	hllBits      = 6
	hllRegMax    = 1<<hllBits - 1
	hllHdrSize   = 16
	hllDenseSize = hllHdrSize + (hllRegisters*hllBits+7)/8
	hllDense     = 0
	hllSparse    = 1
	hllRaw       = 255 // internal only: one byte per register (PFCOUNT of several keys)

	hllSparseValMaxValue = 32
	hllSparseValMaxLen   = 4
	hllSparseZeroMaxLen  = 64
	hllSparseXZeroMaxLen = 16384

	// hllSparseMaxBytes is Redis's hll-sparse-max-bytes default.
	hllSparseMaxBytes = 3000
	hllAlphaInf       = 0.721347520444481703680 // 0.5/ln(2)
)

// murmurHash64A is Redis's MurmurHash64A (little-endian reads).
func murmurHash64A(key []byte, seed uint64) uint64 {
	const m = 0xc6a4a7935bd1e995
	const r = 47
	h := seed ^ uint64(len(key))*m
	n := len(key) &^ 7
	for i := 0; i < n; i += 8 {
		k := uint64(key[i]) | uint64(key[i+1])<<8 | uint64(key[i+2])<<16 | uint64(key[i+3])<<24 |
			uint64(key[i+4])<<32 | uint64(key[i+5])<<40 | uint64(key[i+6])<<48 | uint64(key[i+7])<<56
		k *= m
		k ^= k >> r
		k *= m
		h ^= k
		h *= m
	}
	tail := key[n:]
	switch len(tail) {
	case 7:
		h ^= uint64(tail[6]) << 48
		fallthrough
	case 6:
		h ^= uint64(tail[5]) << 40
		fallthrough
	case 5:
		h ^= uint64(tail[4]) << 32
		fallthrough
	case 4:
		h ^= uint64(tail[3]) << 24
		fallthrough
	case 3:
		h ^= uint64(tail[2]) << 16
		fallthrough
	case 2:
		h ^= uint64(tail[1]) << 8
		fallthrough
	case 1:
		h ^= uint64(tail[0])
		h *= m
	}
	h ^= h >> r
	h *= m
	h ^= h >> r
	return h
}

// hllPatLen returns the register an element maps to and the length of the
// 000..1 pattern that register would take (1..hllQ+1).
func hllPatLen(ele []byte) (int, uint8) {
	hash := murmurHash64A(ele, 0xadc83b19)
	index := int(hash & hllPMask)
	hash >>= hllP
	hash |= 1 << hllQ
	count := uint8(1)
	for bit := uint64(1); hash&bit == 0; bit <<= 1 {
		count++
	}
	return index, count
}

// hllNewSparse is createHLLObject: an empty sparse HLL with a valid cached
// cardinality of 0.
func hllNewSparse() []byte {
	b := make([]byte, hllHdrSize+2, hllHdrSize+64)
	copy(b, "HYLL")
	b[4] = hllSparse
	b[hllHdrSize] = 0x40 | byte((hllSparseXZeroMaxLen-1)>>8)
	b[hllHdrSize+1] = byte((hllSparseXZeroMaxLen - 1) & 0xff)
	return b
}

// hllValid is isHLLObjectOrReply's test of a string's bytes.
func hllValid(b []byte) bool {
	if len(b) < hllHdrSize || string(b[:4]) != "HYLL" || b[4] > hllSparse {
		return false
	}
	return b[4] != hllDense || len(b) == hllDenseSize
}

func hllValidCache(b []byte) bool { return b[15]&0x80 == 0 }
func hllInvalidate(b []byte)      { b[15] |= 0x80 }

func hllCachedCard(b []byte) uint64 {
	var c uint64
	for i := 7; i >= 0; i-- {
		c = c<<8 | uint64(b[8+i])
	}
	return c
}

func hllSetCard(b []byte, c uint64) {
	for i := 0; i < 8; i++ {
		b[8+i] = byte(c >> (8 * i))
	}
}

// at reads b[i], or 0 past the end: Redis's sds strings carry a NUL
// terminator that its macros read when an opcode is cut short.
func at(b []byte, i int) byte {
	if i < len(b) {
		return b[i]
	}
	return 0
}

func sparseIsZero(c byte) bool  { return c&0xc0 == 0 }
func sparseIsXZero(c byte) bool { return c&0xc0 == 0x40 }
func sparseIsVal(c byte) bool   { return c&0x80 != 0 }
func sparseZeroLen(c byte) int  { return int(c&0x3f) + 1 }
func sparseXZeroLen(c, d byte) int {
	return (int(c&0x3f)<<8 | int(d)) + 1
}
func sparseValValue(c byte) int      { return int(c>>2&0x1f) + 1 }
func sparseValLen(c byte) int        { return int(c&0x3) + 1 }
func sparseVal(val, n int) byte      { return byte((val-1)<<2|(n-1)) | 0x80 }
func sparseXZero(n int) (byte, byte) { return byte((n-1)>>8) | 0x40, byte((n - 1) & 0xff) }
func sparseZero(n int) byte          { return byte(n - 1) }

func hllDenseGet(regs []byte, i int) uint8 {
	byt := i * hllBits / 8
	fb := uint(i * hllBits & 7)
	b0 := uint(at(regs, byt))
	b1 := uint(at(regs, byt+1))
	return uint8((b0>>fb | b1<<(8-fb)) & hllRegMax)
}

func hllDenseSetReg(regs []byte, i int, v uint8) {
	byt := i * hllBits / 8
	fb := uint(i * hllBits & 7)
	regs[byt] &^= byte(hllRegMax << fb)
	regs[byt] |= byte(uint(v) << fb)
	if byt+1 < len(regs) {
		regs[byt+1] &^= byte(hllRegMax >> (8 - fb))
		regs[byt+1] |= byte(uint(v) >> (8 - fb))
	}
}

// hllSet is hllDenseSet / hllSparseSet: it raises register reg to count
// if that is higher and returns the (possibly reallocated or promoted)
// value and 1 if it changed, 0 if not, -1 if the sparse encoding is
// corrupt. Like Redis, a sparse edit invalidates the cached cardinality
// itself; a dense one leaves that to the caller.
func hllSet(b []byte, reg int, count uint8) ([]byte, int) {
	if b[4] == hllDense {
		regs := b[hllHdrSize:]
		if count > hllDenseGet(regs, reg) {
			hllDenseSetReg(regs, reg, count)
			return b, 1
		}
		return b, 0
	}
	if count > hllSparseValMaxValue {
		return hllPromoteSet(b, reg, count)
	}
	sparse := hllHdrSize
	end := len(b)
	p := sparse
	first, span, prev := 0, 0, -1
	for p < end {
		oplen := 1
		switch c := b[p]; {
		case sparseIsZero(c):
			span = sparseZeroLen(c)
		case sparseIsVal(c):
			span = sparseValLen(c)
		default:
			span = sparseXZeroLen(c, at(b, p+1))
			oplen = 2
		}
		if reg <= first+span-1 {
			break
		}
		prev = p
		p += oplen
		first += span
	}
	if span == 0 || p >= end {
		return b, -1
	}
	next := p + 1
	if sparseIsXZero(b[p]) {
		next = p + 2
	}
	if next >= end {
		next = -1
	}
	c := b[p]
	isZero, isXZero, isVal := sparseIsZero(c), sparseIsXZero(c), sparseIsVal(c)
	var runlen int
	switch {
	case isZero:
		runlen = sparseZeroLen(c)
	case isXZero:
		runlen = sparseXZeroLen(c, at(b, p+1))
	default:
		runlen = sparseValLen(c)
	}
	updatedInPlace := false
	if isVal {
		if sparseValValue(c) >= int(count) {
			return b, 0
		}
		if runlen == 1 {
			b[p] = sparseVal(int(count), 1)
			updatedInPlace = true
		}
	}
	if !updatedInPlace && isZero && runlen == 1 {
		b[p] = sparseVal(int(count), 1)
		updatedInPlace = true
	}
	if !updatedInPlace {
		var seq []byte
		last := first + span - 1
		zeroRun := func(n int) {
			if n > hllSparseZeroMaxLen {
				x, y := sparseXZero(n)
				seq = append(seq, x, y)
			} else {
				seq = append(seq, sparseZero(n))
			}
		}
		if isZero || isXZero {
			if reg != first {
				zeroRun(reg - first)
			}
			seq = append(seq, sparseVal(int(count), 1))
			if reg != last {
				zeroRun(last - reg)
			}
		} else {
			cur := sparseValValue(c)
			if reg != first {
				seq = append(seq, sparseVal(cur, reg-first))
			}
			seq = append(seq, sparseVal(int(count), 1))
			if reg != last {
				seq = append(seq, sparseVal(cur, last-reg))
			}
		}
		oldlen := 1
		if isXZero {
			oldlen = 2
		}
		delta := len(seq) - oldlen
		if delta > 0 && len(b)+delta > hllSparseMaxBytes {
			return hllPromoteSet(b, reg, count)
		}
		// Redis's memmove/memcpy/sdsIncrLen, byte for byte: when the
		// opcode is an XZERO cut short by the end of a corrupt value
		// (next is NULL), nothing moves and the new length cuts the
		// sequence short in turn.
		buf := make([]byte, len(b)+len(seq)+2)
		copy(buf, b)
		if delta != 0 && next >= 0 {
			copy(buf[next+delta:], buf[next:end])
		}
		copy(buf[p:], seq)
		b = buf[:len(b)+delta]
		end = len(b)
	}
	// Merge adjacent VAL opcodes of equal value, scanning up to 5 opcodes
	// from the one before the edit, exactly as Redis does.
	p = sparse
	if prev >= 0 {
		p = prev
	}
	for scan := 5; p < end && scan > 0; scan-- {
		c := b[p]
		if sparseIsXZero(c) {
			p += 2
			continue
		}
		if sparseIsZero(c) {
			p++
			continue
		}
		if p+1 < end && sparseIsVal(b[p+1]) {
			v1, v2 := sparseValValue(c), sparseValValue(b[p+1])
			if v1 == v2 {
				if n := sparseValLen(c) + sparseValLen(b[p+1]); n <= hllSparseValMaxLen {
					b[p+1] = sparseVal(v1, n)
					b = append(b[:p], b[p+1:]...)
					end--
					continue // the post statement spends budget, as Redis's test does
				}
			}
		}
		p++
	}
	hllInvalidate(b)
	return b, 1
}

// hllPromoteSet converts to dense, then sets the register.
func hllPromoteSet(b []byte, reg int, count uint8) ([]byte, int) {
	d, ok := hllSparseToDense(b)
	if !ok {
		return b, -1
	}
	regs := d[hllHdrSize:]
	if count > hllDenseGet(regs, reg) {
		hllDenseSetReg(regs, reg, count)
		return d, 1
	}
	return d, 0
}

// sparseOp decodes the opcode at b[p]: the registers it covers, their
// value (0 for the zero runs) and its length in bytes.
func sparseOp(b []byte, p int) (n, v, oplen int) {
	switch c := b[p]; {
	case sparseIsZero(c):
		return sparseZeroLen(c), 0, 1
	case sparseIsXZero(c):
		return sparseXZeroLen(c, at(b, p+1)), 0, 2
	default:
		return sparseValLen(c), sparseValValue(c), 1
	}
}

// hllSparseToDense converts a sparse HLL to dense, keeping the header (and
// so the cached cardinality); ok is false if the sparse form is corrupt.
func hllSparseToDense(b []byte) ([]byte, bool) {
	if b[4] == hllDense {
		return b, true
	}
	d := make([]byte, hllDenseSize)
	copy(d, b[:hllHdrSize])
	d[4] = hllDense
	regs := d[hllHdrSize:]
	idx := 0
	for p := hllHdrSize; p < len(b); {
		n, v, op := sparseOp(b, p)
		if idx+n > hllRegisters {
			return b, false // overflow
		}
		for j := 0; j < n && v > 0; j++ {
			hllDenseSetReg(regs, idx+j, uint8(v))
		}
		idx += n
		p += op
	}
	if idx != hllRegisters {
		return b, false
	}
	return d, true
}

// hllMergeInto raises max[i] to each register of b (hllMerge); false if b
// is a corrupt sparse HLL. Like hllSparseToDense it refuses any opcode
// that runs past the last register, as Redis does since the fix for
// CVE-2025-32023 (Debian's 7.0.15 carries it): before it, opcodes after
// the last register went unnoticed.
func hllMergeInto(max []uint8, b []byte) bool {
	if b[4] == hllDense {
		regs := b[hllHdrSize:]
		for i := 0; i < hllRegisters; i++ {
			if v := hllDenseGet(regs, i); v > max[i] {
				max[i] = v
			}
		}
		return true
	}
	i := 0
	for p := hllHdrSize; p < len(b); {
		n, v, op := sparseOp(b, p)
		if i+n > hllRegisters {
			return false // overflow
		}
		for j := 0; j < n; j++ {
			if uint8(v) > max[i+j] {
				max[i+j] = uint8(v)
			}
		}
		i += n
		p += op
	}
	return i == hllRegisters
}

// hllHisto counts registers by value. For a sparse HLL ok is false if the
// opcodes do not cover exactly the registers (Redis's "invalid").
func hllHisto(b []byte, raw []uint8) (h [64]int, ok bool) {
	switch {
	case raw != nil:
		for _, v := range raw {
			h[v&63]++
		}
		return h, true
	case b[4] == hllDense:
		regs := b[hllHdrSize:]
		for i := 0; i < hllRegisters; i++ {
			h[hllDenseGet(regs, i)]++
		}
		return h, true
	}
	idx := 0
	for p := hllHdrSize; p < len(b); {
		c := b[p]
		switch {
		case sparseIsZero(c):
			n := sparseZeroLen(c)
			idx += n
			h[0] += n
			p++
		case sparseIsXZero(c):
			n := sparseXZeroLen(c, at(b, p+1))
			idx += n
			h[0] += n
			p += 2
		default:
			n := sparseValLen(c)
			idx += n
			h[sparseValValue(c)] += n
			p++
		}
	}
	return h, idx == hllRegisters
}

func hllSigma(x float64) float64 {
	if x == 1 {
		return math.Inf(1)
	}
	y, z := 1.0, x
	for {
		x *= x
		zp := z
		z += x * y
		y += y
		if zp == z {
			return z
		}
	}
}

func hllTau(x float64) float64 {
	if x == 0 || x == 1 {
		return 0
	}
	y, z := 1.0, 1-x
	for {
		x = math.Sqrt(x)
		zp := z
		y *= 0.5
		d := 1 - x
		z -= d * d * y
		if zp == z {
			return z / 3
		}
	}
}

// hllEstimate is hllCount's estimator (Ertl's improved raw estimate, as
// in Redis 7.0) over a register histogram.
func hllEstimate(h *[64]int) uint64 {
	m := float64(hllRegisters)
	z := m * hllTau((m-float64(h[hllQ+1]))/m)
	for j := hllQ; j >= 1; j-- {
		z += float64(h[j])
		z *= 0.5
	}
	z += m * hllSigma(float64(h[0])/m)
	return uint64(math.Round(hllAlphaInf * m * m / z))
}

// hllCount computes the cardinality of an HLL's bytes; ok is false if it
// is a corrupt sparse HLL.
func hllCount(b []byte) (uint64, bool) {
	h, ok := hllHisto(b, nil)
	if !ok {
		return 0, false
	}
	return hllEstimate(&h), true
}
