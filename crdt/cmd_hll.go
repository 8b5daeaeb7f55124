package crdt

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math"
)

// HyperLogLog commands, as Redis 7.0's hyperloglog.c runs them. A key
// holding an HLL is either an hllValue (made by these commands) or a plain
// string whose bytes happen to be a valid HLL (SET of a GET result): both
// are strings to every other command, and the first HLL write to the
// latter turns it into an hllValue.

func init() {
	register(
		&CommandSpec{Name: "pfadd", Arity: -2, Flags: []string{"denyoom", "fast"}, FirstKey: 1, LastKey: 1, Step: 1,
			Categories: []string{"write", "hyperloglog", "fast"}, Write: true, Run: cmdPFAdd},
		// PFCOUNT runs in apply: filling the cache is a write.
		&CommandSpec{Name: "pfcount", Arity: -2, FirstKey: 1, LastKey: -1, Step: 1,
			Categories: []string{"read", "hyperloglog", "slow"}, Write: true, Run: cmdPFCount},
		&CommandSpec{Name: "pfmerge", Arity: -2, Flags: []string{"denyoom"}, FirstKey: 1, LastKey: -1, Step: 1,
			Categories: []string{"write", "hyperloglog", "slow"}, Write: true, Run: cmdPFMerge},
		&CommandSpec{Name: "pfdebug", Arity: 3, Flags: []string{"denyoom", "admin"}, FirstKey: 2, LastKey: 2, Step: 1,
			Categories: []string{"write", "hyperloglog", "admin", "slow", "dangerous"}, Write: true, Run: cmdPFDebug},
		&CommandSpec{Name: "pfselftest", Arity: 1, Flags: []string{"admin"},
			Categories: []string{"hyperloglog", "admin", "slow", "dangerous"}, Run: cmdPFSelfTest},
	)
	// Redis reports PFCOUNT as readonly (it may replicate a cache fill).
	commands["pfcount"].Flags = []string{"readonly", "may_replicate"}
}

var (
	errHLLWrongType = Err("WRONGTYPE Key is not a valid HyperLogLog string value.")
	errHLLInvalid   = Err("INVALIDOBJ Corrupted HLL object detected")
)

// hllKey is what an HLL command found under a key.
type hllKey struct {
	b      []byte // the HLL's bytes (never to be modified)
	exists bool
	str    bool // a plain string value, not yet an hllValue
}

// lookupHLL is lookupKey + isHLLObjectOrReply.
func lookupHLL(tx *Tx, key []byte) (hllKey, Reply, bool) {
	e := tx.entry(key)
	if e == nil {
		return hllKey{}, Reply{}, true
	}
	switch v := e.visible().(type) {
	case *hllValue:
		return hllKey{b: v.bytes(), exists: true}, Reply{}, true
	case *strValue:
		b := v.value()
		if !hllValid(b) {
			return hllKey{}, errHLLWrongType, false
		}
		return hllKey{b: b, exists: true, str: true}, Reply{}, true
	}
	return hllKey{}, ErrWrongType, false
}

// writeHLL ships an HLL command's change to key: the event (raises and
// flags) on an hllValue or a missing key, or, when the key holds a plain
// string, the whole resulting bytes in its place (keeping its TTL).
func writeHLL(tx *Tx, key []byte, k hllKey, regs []byte, flags int64, result []byte) {
	switch {
	case k.str:
		tx.Emit(Effect{Kind: EffDelKey, Flags: FlagKeepTTL, Key: key})
		tx.Emit(Effect{Kind: EffHLLSet, Key: key, Value: result})
	case !k.exists:
		clearGhostTTL(tx, key)
		fallthrough
	default:
		tx.Emit(Effect{Kind: EffHLLAdd, Key: key, Value: regs, Int: flags})
	}
}

func cmdPFAdd(tx *Tx, args [][]byte) Reply {
	key := args[1]
	k, r, ok := lookupHLL(tx, key)
	if !ok {
		return r
	}
	var cur []byte
	updated := false
	var flags int64
	if k.exists {
		cur = bytes.Clone(k.b)
	} else {
		cur = hllNewSparse()
		updated = true
		flags = hllFlagInvalidate
	}
	var regs []byte
	corrupt := false
	for _, ele := range args[2:] {
		reg, count := hllPatLen(ele)
		var rv int
		cur, rv = hllSet(cur, reg, count)
		if rv < 0 {
			corrupt = true
			break
		}
		if rv > 0 {
			updated = true
			regs = hllRaise(regs, reg, count)
		}
	}
	if updated && !corrupt {
		hllInvalidate(cur)
	}
	if updated || len(regs) > 0 {
		writeHLL(tx, key, k, regs, flags, cur)
	}
	if corrupt {
		return errHLLInvalid
	}
	if updated {
		return Int(1)
	}
	return Int(0)
}

func cmdPFCount(tx *Tx, args [][]byte) Reply {
	if len(args) > 2 {
		raw := make([]uint8, hllRegisters)
		for _, key := range args[1:] {
			k, r, ok := lookupHLL(tx, key)
			if !ok {
				return r
			}
			if !k.exists {
				continue
			}
			if !hllMergeInto(raw, k.b) {
				return errHLLInvalid
			}
		}
		h, _ := hllHisto(nil, raw)
		return Int(int64(hllEstimate(&h)))
	}
	key := args[1]
	k, r, ok := lookupHLL(tx, key)
	if !ok {
		return r
	}
	if !k.exists {
		return Int(0)
	}
	if hllValidCache(k.b) {
		return Int(int64(hllCachedCard(k.b)))
	}
	card, ok := hllCount(k.b)
	if !ok {
		return errHLLInvalid
	}
	var result []byte
	if k.str {
		result = bytes.Clone(k.b)
		hllSetCard(result, card)
	}
	writeHLL(tx, key, k, nil, hllFlagCount, result)
	return Int(int64(card))
}

func cmdPFMerge(tx *Tx, args [][]byte) Reply {
	max := make([]uint8, hllRegisters)
	useDense := false
	for _, key := range args[1:] {
		k, r, ok := lookupHLL(tx, key)
		if !ok {
			return r
		}
		if !k.exists {
			continue
		}
		if k.b[4] == hllDense {
			useDense = true
		}
		if !hllMergeInto(max, k.b) {
			return errHLLInvalid
		}
	}
	key := args[1]
	k, _, _ := lookupHLL(tx, key) // checked in the loop
	var cur []byte
	if k.exists {
		cur = bytes.Clone(k.b)
	} else {
		cur = hllNewSparse()
	}
	var flags int64 = hllFlagInvalidate
	if useDense && cur[4] != hllDense {
		d, ok := hllSparseToDense(cur)
		if !ok {
			return errHLLInvalid // unreachable: the merge above read it
		}
		cur = d
		flags |= hllFlagDense
	}
	var regs []byte
	for j, m := range max {
		if m == 0 {
			continue
		}
		var rv int
		if cur, rv = hllSet(cur, j, m); rv > 0 {
			regs = hllRaise(regs, j, m)
		}
	}
	hllInvalidate(cur)
	writeHLL(tx, key, k, regs, flags, cur)
	return OK
}

// cmdPFDebug is Redis's PFDEBUG GETREG|DECODE|ENCODING|TODENSE key.
// GETREG and TODENSE convert a sparse HLL to dense, a write like any other.
func cmdPFDebug(tx *Tx, args [][]byte) Reply {
	sub := lower(args[1])
	key := args[2]
	k, r, ok := lookupHLL(tx, key)
	if !ok {
		return r
	}
	if !k.exists {
		return Err("ERR The specified key does not exist")
	}
	toDense := func() ([]byte, Reply, bool) {
		if k.b[4] == hllDense {
			return k.b, Reply{}, true
		}
		d, ok := hllSparseToDense(k.b)
		if !ok {
			return nil, errHLLInvalid, false
		}
		writeHLL(tx, key, k, nil, hllFlagDense, d)
		return d, Reply{}, true
	}
	switch sub {
	case "getreg":
		d, r, ok := toDense()
		if !ok {
			return r
		}
		out := make([]Reply, hllRegisters)
		for j := range out {
			out[j] = Int(int64(hllDenseGet(d[hllHdrSize:], j)))
		}
		return Array(out...)
	case "decode":
		if k.b[4] != hllSparse {
			return Err("ERR HLL encoding is not sparse")
		}
		var s []byte
		for p := hllHdrSize; p < len(k.b); {
			c := k.b[p]
			switch {
			case sparseIsZero(c):
				s = fmt.Appendf(s, "z:%d ", sparseZeroLen(c))
				p++
			case sparseIsXZero(c):
				s = fmt.Appendf(s, "Z:%d ", sparseXZeroLen(c, at(k.b, p+1)))
				p += 2
			default:
				s = fmt.Appendf(s, "v:%d,%d ", sparseValValue(c), sparseValLen(c))
				p++
			}
		}
		return Bulk(bytes.TrimRight(s, " "))
	case "encoding":
		if k.b[4] == hllDense {
			return Status("dense")
		}
		return Status("sparse")
	case "todense":
		conv := k.b[4] == hllSparse
		if _, r, ok := toDense(); !ok {
			return r
		}
		if conv {
			return Int(1)
		}
		return Int(0)
	}
	return Err("ERR Unknown PFDEBUG subcommand '" + errText(args[1]) + "'")
}

// hllSelfTestElements is how many elements PFSELFTEST adds. Redis adds
// ten million; a tenth keeps the reads it blocks short and still passes
// through every checkpoint up to a million.
const hllSelfTestElements = 1000000

// cmdPFSelfTest is Redis's PFSELFTEST over Concord's HLL code: register
// access in the dense encoding, then unique elements added to a dense and
// a sparse HLL at once, checking at 1, 10, 100, ... that the sparse one is
// still sparse while small, that both estimate the same and that the error
// stays within six standard errors. Random values come from the command's
// deterministic source.
func cmdPFSelfTest(tx *Tx, args [][]byte) Reply {
	r := tx.Rand()
	regs := make([]byte, hllDenseSize-hllHdrSize)
	want := make([]uint8, hllRegisters)
	for j := 0; j < 1000; j++ {
		for i := range want {
			want[i] = uint8(r.Uint64() & hllRegMax)
			hllDenseSetReg(regs, i, want[i])
		}
		for i, w := range want {
			if v := hllDenseGet(regs, i); v != w {
				return Err(fmt.Sprintf("TESTFAILED Register %d should be %d but is %d", i, w, v))
			}
		}
	}
	dense := make([]byte, hllDenseSize)
	copy(dense, "HYLL")
	sparse := hllNewSparse()
	relerr := 1.04 / math.Sqrt(hllRegisters)
	seed := r.Uint64()
	checkpoint := int64(1)
	var ele [8]byte
	for j := int64(1); j <= hllSelfTestElements; j++ {
		binary.LittleEndian.PutUint64(ele[:], uint64(j)^seed)
		reg, count := hllPatLen(ele[:])
		dense, _ = hllSet(dense, reg, count)
		sparse, _ = hllSet(sparse, reg, count)
		if j != checkpoint {
			continue
		}
		if j < hllSparseMaxBytes/2 && sparse[4] != hllSparse {
			return Err("TESTFAILED sparse encoding not used")
		}
		dc, _ := hllCount(dense)
		sc, _ := hllCount(sparse)
		if dc != sc {
			return Err("TESTFAILED dense/sparse disagree")
		}
		abserr := checkpoint - int64(dc)
		maxerr := int64(math.Ceil(relerr * 6 * float64(checkpoint)))
		if j == 10 {
			maxerr = 1
		}
		if abserr < 0 {
			abserr = -abserr
		}
		if abserr > maxerr {
			return Err(fmt.Sprintf("TESTFAILED Too big error. card:%d abserr:%d", checkpoint, abserr))
		}
		checkpoint *= 10
	}
	return OK
}
