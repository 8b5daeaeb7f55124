package crdt

import "bytes"

// HyperLogLog commands, as Redis 7.0's hyperloglog.c runs them. A key
// holding an HLL is either an hllValue (made by these commands) or a plain
// string whose bytes happen to be a valid HLL (SET of a GET result): both
// are strings to every other command, and the first HLL write to the
// latter turns it into an hllValue.

func init() {
	register(
		&CommandSpec{Name: "pfadd", Arity: -2, Flags: []string{"denyoom", "fast"}, FirstKey: 1, LastKey: 1, Step: 1,
			Categories: []string{"write", "hyperloglog", "fast"}, Write: true, Run: cmdPFAdd},
		// Redis flags PFCOUNT readonly/may_replicate; here it must run in
		// apply because filling the cache is a write.
		&CommandSpec{Name: "pfcount", Arity: -2, Flags: []string{"may_replicate"}, FirstKey: 1, LastKey: -1, Step: 1,
			Categories: []string{"read", "hyperloglog", "slow"}, Write: true, Run: cmdPFCount},
		&CommandSpec{Name: "pfmerge", Arity: -2, Flags: []string{"denyoom"}, FirstKey: 1, LastKey: -1, Step: 1,
			Categories: []string{"write", "hyperloglog", "slow"}, Write: true, Run: cmdPFMerge},
		&CommandSpec{Name: "pfdebug", Arity: 3, Flags: []string{"denyoom", "admin"}, FirstKey: 2, LastKey: 2, Step: 1,
			Categories: []string{"write", "hyperloglog", "admin", "slow", "dangerous"}, Write: true, Run: cmdPFUnsupported},
		&CommandSpec{Name: "pfselftest", Arity: 1, Flags: []string{"admin"},
			Categories: []string{"hyperloglog", "admin", "slow", "dangerous"}, Run: cmdPFUnsupported},
	)
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

// cmdPFUnsupported answers PFDEBUG and PFSELFTEST, Redis's internal
// testing commands, which Concord does not provide.
func cmdPFUnsupported(tx *Tx, args [][]byte) Reply {
	return Err("ERR " + lower(args[0]) + " is not supported by Concord")
}
