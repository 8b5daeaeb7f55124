package crdt

import (
	"math"
	"strconv"
)

// Hash commands, with Redis 7.0's replies, errors and check order.

func init() {
	register(
		&CommandSpec{Name: "hset", Arity: -4, Flags: []string{"denyoom", "fast"}, FirstKey: 1, LastKey: 1, Step: 1,
			Categories: []string{"write", "hash", "fast"}, Write: true, Run: cmdHSet},
		&CommandSpec{Name: "hmset", Arity: -4, Flags: []string{"denyoom", "fast"}, FirstKey: 1, LastKey: 1, Step: 1,
			Categories: []string{"write", "hash", "fast"}, Write: true, Run: cmdHSet},
		&CommandSpec{Name: "hsetnx", Arity: 4, Flags: []string{"denyoom", "fast"}, FirstKey: 1, LastKey: 1, Step: 1,
			Categories: []string{"write", "hash", "fast"}, Write: true, Run: cmdHSetNX},
		&CommandSpec{Name: "hget", Arity: 3, Flags: []string{"fast"}, FirstKey: 1, LastKey: 1, Step: 1,
			Categories: []string{"read", "hash", "fast"}, Run: cmdHGet},
		&CommandSpec{Name: "hmget", Arity: -3, Flags: []string{"fast"}, FirstKey: 1, LastKey: 1, Step: 1,
			Categories: []string{"read", "hash", "fast"}, Run: cmdHMGet},
		&CommandSpec{Name: "hdel", Arity: -3, Flags: []string{"fast"}, FirstKey: 1, LastKey: 1, Step: 1,
			Categories: []string{"write", "hash", "fast"}, Write: true, Run: cmdHDel},
		&CommandSpec{Name: "hlen", Arity: 2, Flags: []string{"fast"}, FirstKey: 1, LastKey: 1, Step: 1,
			Categories: []string{"read", "hash", "fast"}, Run: cmdHLen},
		&CommandSpec{Name: "hexists", Arity: 3, Flags: []string{"fast"}, FirstKey: 1, LastKey: 1, Step: 1,
			Categories: []string{"read", "hash", "fast"}, Run: cmdHExists},
		&CommandSpec{Name: "hincrby", Arity: 4, Flags: []string{"denyoom", "fast"}, FirstKey: 1, LastKey: 1, Step: 1,
			Categories: []string{"write", "hash", "fast"}, Write: true, Run: cmdHIncrBy},
		&CommandSpec{Name: "hincrbyfloat", Arity: 4, Flags: []string{"denyoom", "fast"}, FirstKey: 1, LastKey: 1, Step: 1,
			Categories: []string{"write", "hash", "fast"}, Write: true, Run: cmdHIncrByFloat},
		&CommandSpec{Name: "hkeys", Arity: 2, FirstKey: 1, LastKey: 1, Step: 1,
			Categories: []string{"read", "hash", "slow"}, Run: cmdHKeysVals},
		&CommandSpec{Name: "hvals", Arity: 2, FirstKey: 1, LastKey: 1, Step: 1,
			Categories: []string{"read", "hash", "slow"}, Run: cmdHKeysVals},
		&CommandSpec{Name: "hgetall", Arity: 2, FirstKey: 1, LastKey: 1, Step: 1,
			Categories: []string{"read", "hash", "slow"}, Run: cmdHGetAll},
		&CommandSpec{Name: "hstrlen", Arity: 3, Flags: []string{"fast"}, FirstKey: 1, LastKey: 1, Step: 1,
			Categories: []string{"read", "hash", "fast"}, Run: cmdHStrlen},
		&CommandSpec{Name: "hrandfield", Arity: -2, FirstKey: 1, LastKey: 1, Step: 1,
			Categories: []string{"read", "hash", "slow"}, Run: cmdHRandField},
		&CommandSpec{Name: "hscan", Arity: -3, FirstKey: 1, LastKey: 1, Step: 1,
			Categories: []string{"read", "hash", "slow"}, Run: cmdHScan},
	)
}

// getHash returns key's hash (nil if the key is missing), or a WRONGTYPE
// reply with ok false.
func getHash(tx *Tx, key []byte) (h *hashValue, errReply Reply, ok bool) {
	v, r, ok := tx.lookup(key, TypeHash)
	if !ok || v == nil {
		return nil, r, ok
	}
	return v.(*hashValue), Reply{}, true
}

// hasField reports whether key's hash has field; callers have already
// checked the key's type.
func hasField(tx *Tx, key, field []byte) bool {
	h, _, _ := getHash(tx, key)
	if h == nil {
		return false
	}
	_, ok := h.get(field)
	return ok
}

// cmdHSet serves HSET (replies the number of new fields) and HMSET (OK).
func cmdHSet(tx *Tx, args [][]byte) Reply {
	name := lower(args[0])
	if len(args)%2 == 1 {
		return ErrArity(name)
	}
	key := args[1]
	h, r, ok := getHash(tx, key)
	if !ok {
		return r
	}
	if h == nil {
		clearGhostTTL(tx, key)
	}
	created := 0
	for i := 2; i < len(args); i += 2 {
		if !hasField(tx, key, args[i]) {
			created++
		}
		tx.Emit(Effect{Kind: EffHashSet, Key: key, Field: args[i], Value: args[i+1]})
	}
	if name == "hmset" {
		return OK
	}
	return Int(int64(created))
}

func cmdHSetNX(tx *Tx, args [][]byte) Reply {
	key := args[1]
	h, r, ok := getHash(tx, key)
	if !ok {
		return r
	}
	if h != nil {
		if _, ok := h.get(args[2]); ok {
			return Int(0)
		}
	} else {
		clearGhostTTL(tx, key)
	}
	tx.Emit(Effect{Kind: EffHashSet, Key: key, Field: args[2], Value: args[3]})
	return Int(1)
}

func cmdHGet(tx *Tx, args [][]byte) Reply {
	h, r, ok := getHash(tx, args[1])
	if !ok {
		return r
	}
	if h != nil {
		if v, ok := h.get(args[2]); ok {
			return Bulk(v)
		}
	}
	return Nil
}

func cmdHMGet(tx *Tx, args [][]byte) Reply {
	h, r, ok := getHash(tx, args[1])
	if !ok {
		return r
	}
	out := make([]Reply, 0, len(args)-2)
	for _, f := range args[2:] {
		v, ok := []byte(nil), false
		if h != nil {
			v, ok = h.get(f)
		}
		if ok {
			out = append(out, Bulk(v))
		} else {
			out = append(out, Nil)
		}
	}
	return Array(out...)
}

func cmdHDel(tx *Tx, args [][]byte) Reply {
	key := args[1]
	h, r, ok := getHash(tx, key)
	if !ok {
		return r
	}
	if h == nil {
		return Int(0)
	}
	var present [][]byte
	seen := map[string]bool{}
	for _, f := range args[2:] {
		if _, ok := h.get(f); ok && !seen[string(f)] {
			seen[string(f)] = true
			present = append(present, f)
		}
	}
	switch {
	case len(present) == 0:
	case len(present) == h.Len():
		// The last fields go: the key goes, and its TTL with it, as in Redis.
		tx.Emit(Effect{Kind: EffDelKey, Key: key})
	default:
		for _, f := range present {
			tx.Emit(Effect{Kind: EffHashDel, Key: key, Field: f})
		}
	}
	return Int(int64(len(present)))
}

func cmdHLen(tx *Tx, args [][]byte) Reply {
	h, r, ok := getHash(tx, args[1])
	if !ok {
		return r
	}
	if h == nil {
		return Int(0)
	}
	return Int(int64(h.Len()))
}

func cmdHExists(tx *Tx, args [][]byte) Reply {
	h, r, ok := getHash(tx, args[1])
	if !ok {
		return r
	}
	if h != nil {
		if _, ok := h.get(args[2]); ok {
			return Int(1)
		}
	}
	return Int(0)
}

func cmdHStrlen(tx *Tx, args [][]byte) Reply {
	h, r, ok := getHash(tx, args[1])
	if !ok {
		return r
	}
	if h != nil {
		if v, ok := h.get(args[2]); ok {
			return Int(int64(len(v)))
		}
	}
	return Int(0)
}

func cmdHIncrBy(tx *Tx, args [][]byte) Reply {
	key, field := args[1], args[2]
	by, ok := parseInt64(args[3])
	if !ok {
		return ErrNotInt
	}
	h, r, ok := getHash(tx, key)
	if !ok {
		return r
	}
	var cur int64
	if h != nil {
		if v, ok := h.get(field); ok {
			if cur, ok = parseInt64(v); !ok {
				return Err("ERR hash value is not an integer")
			}
		}
	}
	sum, ok := addInt64(cur, by)
	if !ok {
		return ErrOverflow
	}
	if h == nil {
		clearGhostTTL(tx, key)
	}
	tx.Emit(Effect{Kind: EffHashIncr, Key: key, Field: field, Int: by})
	return Int(sum)
}

func cmdHIncrByFloat(tx *Tx, args [][]byte) Reply {
	key, field, incr := args[1], args[2], args[3]
	// Redis checks the increment before the key, and refuses an infinite
	// one outright (INCRBYFLOAT lets it through to the sum check).
	switch _, st := parseLongDouble(incr); st {
	case ldBad:
		return ErrNotFloat
	case ldInf:
		return Err("ERR value is NaN or Infinity")
	}
	h, r, ok := getHash(tx, key)
	if !ok {
		return r
	}
	cur := []byte("0")
	if h != nil {
		if v, ok := h.get(field); ok {
			cur = v
		}
	}
	if errR, ok := checkFloatIncr(cur, incr, "ERR hash value is not a float"); !ok {
		return errR
	}
	if h == nil {
		clearGhostTTL(tx, key)
	}
	tx.Emit(Effect{Kind: EffHashIncr, Flags: FlagFloat, Key: key, Field: field, Value: incr})
	h, _, _ = getHash(tx, key)
	v, _ := h.get(field)
	return Bulk(v)
}

// cmdHKeysVals serves HKEYS and HVALS.
func cmdHKeysVals(tx *Tx, args [][]byte) Reply {
	h, r, ok := getHash(tx, args[1])
	if !ok {
		return r
	}
	if h == nil {
		return Array()
	}
	keys := lower(args[0]) == "hkeys"
	out := make([]Reply, 0, h.Len())
	h.each(func(k string, v []byte) bool {
		if keys {
			out = append(out, BulkString(k))
		} else {
			out = append(out, Bulk(v))
		}
		return true
	})
	return Array(out...)
}

func cmdHGetAll(tx *Tx, args [][]byte) Reply {
	h, r, ok := getHash(tx, args[1])
	if !ok {
		return r
	}
	out := []Reply{}
	if h != nil {
		out = make([]Reply, 0, 2*h.Len())
		h.each(func(k string, v []byte) bool {
			out = append(out, BulkString(k), Bulk(v))
			return true
		})
	}
	return Reply{Kind: KindMap, Elems: out}
}

// hrandMaxRepeat bounds HRANDFIELD's negative count. Redis 7.0 tries to
// build any reply asked for and runs out of memory on absurd counts; we
// refuse them instead.
const hrandMaxRepeat = 1 << 24

func cmdHRandField(tx *Tx, args [][]byte) Reply {
	key := args[1]
	if len(args) >= 3 {
		l, ok := parseInt64(args[2])
		if !ok {
			return ErrNotInt
		}
		if l == math.MinInt64 {
			return Err("ERR value is out of range, value must between -9223372036854775807 and 9223372036854775807")
		}
		if len(args) > 4 || len(args) == 4 && cstrLower(args[3]) != "withvalues" {
			return ErrSyntax
		}
		withValues := len(args) == 4
		if withValues && (l < -math.MaxInt64/2 || l > math.MaxInt64/2) {
			return Err("ERR value is out of range")
		}
		return hrandWithCount(tx, key, l, withValues)
	}
	h, r, ok := getHash(tx, key)
	if !ok {
		return r
	}
	if h == nil {
		return Nil
	}
	k, _, _ := h.fields.Random(tx.Rand())
	return BulkString(k)
}

// hrandWithCount follows Redis's hrandfieldWithCountCommand: a negative
// count samples with repetition, a count at least the size returns the
// whole hash, otherwise count distinct fields. With values, the reply is
// pairs (nested in RESP3, flat in RESP2).
func hrandWithCount(tx *Tx, key []byte, l int64, withValues bool) Reply {
	h, r, ok := getHash(tx, key)
	if !ok {
		return r
	}
	if h == nil || l == 0 {
		return Array()
	}
	var out []Reply
	put := func(k string, n *numeric) {
		out = append(out, BulkString(k))
		if withValues {
			out = append(out, Bulk(n.value()))
		}
	}
	size := int64(h.Len())
	switch {
	case l < 0 || l == 1:
		count := l
		if count < 0 {
			count = -count
		}
		if count > hrandMaxRepeat {
			return Err("ERR value is out of range")
		}
		for ; count > 0; count-- {
			k, n, _ := h.fields.Random(tx.Rand())
			put(k, n)
		}
	case l >= size:
		h.fields.Each(func(k string, n *numeric) bool { put(k, n); return true })
	case l*3 > size:
		// Most of the hash: drop random fields until count remain, then
		// reply in slot order.
		var names []string
		h.fields.Each(func(k string, _ *numeric) bool { names = append(names, k); return true })
		for int64(len(names)) > l {
			i := tx.Rand().Intn(len(names))
			names = append(names[:i], names[i+1:]...)
		}
		for _, k := range names {
			n, _ := h.fields.Get(k)
			put(k, n)
		}
	default:
		// Few of many: sample until count distinct fields are picked.
		picked := make(map[string]bool, l)
		for int64(len(picked)) < l {
			k, n, _ := h.fields.Random(tx.Rand())
			if !picked[k] {
				picked[k] = true
				put(k, n)
			}
		}
	}
	if withValues {
		return Reply{Kind: KindPairs, Elems: out}
	}
	return Array(out...)
}

// hscanDefaultCount is Redis's default COUNT for the SCAN family.
const hscanDefaultCount = 10

func cmdHScan(tx *Tx, args [][]byte) Reply {
	cursor, ok := parseScanCursor(args[2])
	if !ok {
		return Err("ERR invalid cursor")
	}
	h, r, ok := getHash(tx, args[1])
	if !ok {
		return r
	}
	if h == nil {
		// Redis answers a missing key before looking at the options.
		return Array(BulkString("0"), Array())
	}
	count := int64(hscanDefaultCount)
	var pat []byte
	for i := 3; i < len(args); i += 2 {
		opt := cstrLower(args[i])
		switch {
		case opt == "count" && i+1 < len(args):
			n, ok := parseInt64(args[i+1])
			if !ok {
				return ErrNotInt
			}
			if n < 1 {
				return ErrSyntax
			}
			count = n
		case opt == "match" && i+1 < len(args):
			pat = args[i+1]
			if len(pat) == 1 && pat[0] == '*' {
				pat = nil
			}
		default:
			return ErrSyntax
		}
	}
	var out []Reply
	visit := func(k string, n *numeric) {
		if pat == nil || Glob(pat, []byte(k)) {
			out = append(out, BulkString(k), Bulk(n.value()))
		}
	}
	var next uint64
	if h.isListpack() {
		// Redis returns a small (listpack) hash whole, whatever the cursor.
		h.fields.Each(func(k string, n *numeric) bool { visit(k, n); return true })
	} else {
		next = h.fields.Scan(cursor, int(min(count, math.MaxInt32)), visit)
	}
	return Array(BulkString(strconv.FormatUint(next, 10)), Array(out...))
}
