package crdt

import (
	"bytes"
	"math"
	"sort"
	"strconv"
	"strings"
)

// Sorted-set commands with Redis 7.0's replies, errors, arity and flags.
// Argument checks run in Redis's order (which error a malformed command
// gets depends on it). Writes change state only through effects:
//
//	ZADD / ZRANGESTORE / *STORE members -> EffZAdd (score LWW, clears
//	                                       observed increments)
//	ZINCRBY, ZADD INCR                  -> EffZIncr (also when the score
//	                                       does not change), or EffZAdd of
//	                                       the result when it or the
//	                                       current score is infinite
//	ZREM, ZPOP*, ZREMRANGEBY*           -> EffZRem per member, EffDelKey
//	                                       when the last member goes
//	*STORE destination                  -> EffDelKey, then EffZAdd each
//
// GT/LT/NX/XX are evaluated against the local state when the command runs;
// across regions a ZADD GT is a plain LWW score write (DESIGN §4).

func init() {
	w, r := []string{"write", "sortedset"}, []string{"read", "sortedset"}
	fast := func(c []string) []string { return append(append([]string{}, c...), "fast") }
	slow := func(c []string) []string { return append(append([]string{}, c...), "slow") }
	k1 := func(s *CommandSpec) *CommandSpec { s.FirstKey, s.LastKey, s.Step = 1, 1, 1; return s }
	register(
		k1(&CommandSpec{Name: "zadd", Arity: -4, Flags: []string{"denyoom", "fast"}, Categories: fast(w), Write: true,
			Run: func(tx *Tx, a [][]byte) Reply { return zaddGeneric(tx, a, false) }}),
		k1(&CommandSpec{Name: "zincrby", Arity: 4, Flags: []string{"denyoom", "fast"}, Categories: fast(w), Write: true,
			Run: func(tx *Tx, a [][]byte) Reply { return zaddGeneric(tx, a, true) }}),
		k1(&CommandSpec{Name: "zrem", Arity: -3, Flags: []string{"fast"}, Categories: fast(w), Write: true, Run: zremCmd}),
		k1(&CommandSpec{Name: "zscore", Arity: 3, Flags: []string{"fast"}, Categories: fast(r), Run: zscoreCmd}),
		k1(&CommandSpec{Name: "zmscore", Arity: -3, Flags: []string{"fast"}, Categories: fast(r), Run: zmscoreCmd}),
		k1(&CommandSpec{Name: "zcard", Arity: 2, Flags: []string{"fast"}, Categories: fast(r), Run: zcardCmd}),
		k1(&CommandSpec{Name: "zcount", Arity: 4, Flags: []string{"fast"}, Categories: fast(r), Run: zcountCmd}),
		k1(&CommandSpec{Name: "zlexcount", Arity: 4, Flags: []string{"fast"}, Categories: fast(r), Run: zlexcountCmd}),
		k1(&CommandSpec{Name: "zrank", Arity: 3, Flags: []string{"fast"}, Categories: fast(r),
			Run: func(tx *Tx, a [][]byte) Reply { return zrankGeneric(tx, a, false) }}),
		k1(&CommandSpec{Name: "zrevrank", Arity: 3, Flags: []string{"fast"}, Categories: fast(r),
			Run: func(tx *Tx, a [][]byte) Reply { return zrankGeneric(tx, a, true) }}),
		k1(&CommandSpec{Name: "zrange", Arity: -4, Categories: slow(r),
			Run: func(tx *Tx, a [][]byte) Reply { return zrangeGeneric(tx, a, false, zrAuto, zdirAuto) }}),
		k1(&CommandSpec{Name: "zrevrange", Arity: -4, Categories: slow(r),
			Run: func(tx *Tx, a [][]byte) Reply { return zrangeGeneric(tx, a, false, zrRank, zdirRev) }}),
		k1(&CommandSpec{Name: "zrangebyscore", Arity: -4, Categories: slow(r),
			Run: func(tx *Tx, a [][]byte) Reply { return zrangeGeneric(tx, a, false, zrScore, zdirFwd) }}),
		k1(&CommandSpec{Name: "zrevrangebyscore", Arity: -4, Categories: slow(r),
			Run: func(tx *Tx, a [][]byte) Reply { return zrangeGeneric(tx, a, false, zrScore, zdirRev) }}),
		k1(&CommandSpec{Name: "zrangebylex", Arity: -4, Categories: slow(r),
			Run: func(tx *Tx, a [][]byte) Reply { return zrangeGeneric(tx, a, false, zrLex, zdirFwd) }}),
		k1(&CommandSpec{Name: "zrevrangebylex", Arity: -4, Categories: slow(r),
			Run: func(tx *Tx, a [][]byte) Reply { return zrangeGeneric(tx, a, false, zrLex, zdirRev) }}),
		&CommandSpec{Name: "zrangestore", Arity: -5, Flags: []string{"denyoom"}, FirstKey: 1, LastKey: 2, Step: 1,
			Categories: slow(w), Write: true,
			Run: func(tx *Tx, a [][]byte) Reply { return zrangeGeneric(tx, a, true, zrAuto, zdirAuto) }},
		k1(&CommandSpec{Name: "zpopmin", Arity: -2, Flags: []string{"fast"}, Categories: fast(w), Write: true,
			Run: func(tx *Tx, a [][]byte) Reply { return zpopGeneric(tx, a, false) }}),
		k1(&CommandSpec{Name: "zpopmax", Arity: -2, Flags: []string{"fast"}, Categories: fast(w), Write: true,
			Run: func(tx *Tx, a [][]byte) Reply { return zpopGeneric(tx, a, true) }}),
		k1(&CommandSpec{Name: "zremrangebyrank", Arity: 4, Categories: slow(w), Write: true,
			Run: func(tx *Tx, a [][]byte) Reply { return zremrangeGeneric(tx, a, zrRank) }}),
		k1(&CommandSpec{Name: "zremrangebyscore", Arity: 4, Categories: slow(w), Write: true,
			Run: func(tx *Tx, a [][]byte) Reply { return zremrangeGeneric(tx, a, zrScore) }}),
		k1(&CommandSpec{Name: "zremrangebylex", Arity: 4, Categories: slow(w), Write: true,
			Run: func(tx *Tx, a [][]byte) Reply { return zremrangeGeneric(tx, a, zrLex) }}),
		// The numkeys commands have movable keys: COMMAND reports 0 0 0
		// (or the destination only) and key specs find the rest.
		&CommandSpec{Name: "zunion", Arity: -3, Flags: []string{"movablekeys"}, Categories: slow(r),
			Run: func(tx *Tx, a [][]byte) Reply { return zsetOpGeneric(tx, a, nil, 1, zopUnion, false) }},
		&CommandSpec{Name: "zinter", Arity: -3, Flags: []string{"movablekeys"}, Categories: slow(r),
			Run: func(tx *Tx, a [][]byte) Reply { return zsetOpGeneric(tx, a, nil, 1, zopInter, false) }},
		&CommandSpec{Name: "zdiff", Arity: -3, Flags: []string{"movablekeys"}, Categories: slow(r),
			Run: func(tx *Tx, a [][]byte) Reply { return zsetOpGeneric(tx, a, nil, 1, zopDiff, false) }},
		&CommandSpec{Name: "zintercard", Arity: -3, Flags: []string{"movablekeys"}, Categories: slow(r),
			Run: func(tx *Tx, a [][]byte) Reply { return zsetOpGeneric(tx, a, nil, 1, zopInter, true) }},
		k1(&CommandSpec{Name: "zunionstore", Arity: -4, Flags: []string{"denyoom", "movablekeys"}, Categories: slow(w), Write: true,
			Run: func(tx *Tx, a [][]byte) Reply { return zsetOpGeneric(tx, a, a[1], 2, zopUnion, false) }}),
		k1(&CommandSpec{Name: "zinterstore", Arity: -4, Flags: []string{"denyoom", "movablekeys"}, Categories: slow(w), Write: true,
			Run: func(tx *Tx, a [][]byte) Reply { return zsetOpGeneric(tx, a, a[1], 2, zopInter, false) }}),
		k1(&CommandSpec{Name: "zdiffstore", Arity: -4, Flags: []string{"denyoom", "movablekeys"}, Categories: slow(w), Write: true,
			Run: func(tx *Tx, a [][]byte) Reply { return zsetOpGeneric(tx, a, a[1], 2, zopDiff, false) }}),
		k1(&CommandSpec{Name: "zrandmember", Arity: -2, Categories: slow(r), Run: zrandmemberCmd}),
		k1(&CommandSpec{Name: "zscan", Arity: -3, Categories: slow(r), Run: zscanCmd}),
	)
}

// ---- argument parsing ----

// zIsSpace is C's isspace in the C locale.
func zIsSpace(c byte) bool { return c == ' ' || (c >= '\t' && c <= '\r') }

func zIsDigit(c byte) bool { return c >= '0' && c <= '9' }

func zIsHex(c byte) bool {
	return zIsDigit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')
}

// zDigits scans digits (hex if hex) with an optional point from s[i:]; it
// returns the end and how many digits were seen and whether one was
// nonzero.
func zDigits(s string, i int, hex bool) (end, n int, nonzero bool) {
	isd := zIsDigit
	if hex {
		isd = zIsHex
	}
	for pass := 0; pass < 2; pass++ {
		for i < len(s) && isd(s[i]) {
			nonzero = nonzero || s[i] != '0'
			i, n = i+1, n+1
		}
		if pass == 0 && i < len(s) && s[i] == '.' {
			i++
			continue
		}
		break
	}
	return i, n, nonzero
}

// zExponent scans an exponent marker e (or p) with optional sign and at
// least one digit at s[i:]; strtod reads no exponent otherwise.
func zExponent(s string, i int, marker byte) int {
	if i >= len(s) || s[i] != marker {
		return i
	}
	k := i + 1
	if k < len(s) && (s[k] == '+' || s[k] == '-') {
		k++
	}
	e := k
	for k < len(s) && zIsDigit(s[k]) {
		k++
	}
	if k == e {
		return i
	}
	return k
}

// zStrtod emulates glibc's strtod applied to the whole of s: ok is false
// unless the longest number strtod reads ends exactly at the end of s
// (strtod reading nothing leaves its end at the start, so "" is 0).
// Leading whitespace is skipped as strtod does. erange reports what strtod
// flags with ERANGE: overflow to ±inf, or a nonzero number underflowing to
// zero. Hex floats ("0x1p3", "0x10") and inf/infinity are accepted; NaN
// comes back as NaN for the caller to reject.
func zStrtod(s []byte) (v float64, erange, ok bool) {
	i := 0
	for i < len(s) && zIsSpace(s[i]) {
		i++
	}
	sign := 1.0
	if i < len(s) && (s[i] == '+' || s[i] == '-') {
		if s[i] == '-' {
			sign = -1
		}
		i++
	}
	rest := strings.ToLower(string(s[i:]))
	switch {
	case rest == "inf" || rest == "infinity":
		return math.Inf(int(sign)), false, true
	case rest == "nan" || (strings.HasPrefix(rest, "nan(") && strings.HasSuffix(rest, ")") &&
		strings.Trim(rest[4:len(rest)-1], "abcdefghijklmnopqrstuvwxyz0123456789_") == ""):
		return math.NaN(), false, true
	}
	if strings.HasPrefix(rest, "0x") {
		end, n, nonzero := zDigits(rest, 2, true)
		if n == 0 {
			return 0, false, false // strtod reads just the "0"
		}
		text := rest[:end]
		if e := zExponent(rest, end, 'p'); e > end {
			text, end = rest[:e], e
		} else {
			text += "p0" // Go wants an exponent on hex floats
		}
		if end != len(rest) {
			return 0, false, false
		}
		return zFinishStrtod(text, sign, nonzero)
	}
	end, n, nonzero := zDigits(rest, 0, false)
	if n == 0 {
		// Nothing converted: the end pointer stays at the very start.
		return 0, false, len(s) == 0
	}
	end = zExponent(rest, end, 'e')
	if end != len(rest) {
		return 0, false, false
	}
	return zFinishStrtod(rest, sign, nonzero)
}

func zFinishStrtod(text string, sign float64, nonzero bool) (float64, bool, bool) {
	f, err := strconv.ParseFloat(text, 64)
	if err != nil && !math.IsInf(f, 0) {
		return 0, false, false // not expected for text the grammar accepted
	}
	erange := math.IsInf(f, 0) || (f == 0 && nonzero)
	return sign * f, erange, true
}

// zParseScore parses a score or weight as Redis's string2d does: the
// whole argument, no leading space, no NaN, no overflow and no underflow
// to zero ("1e-310" is a valid denormal, "1e-400" is not).
func zParseScore(b []byte) (float64, bool) {
	if len(b) == 0 || zIsSpace(b[0]) {
		return 0, false
	}
	v, erange, ok := zStrtod(b)
	if !ok || math.IsNaN(v) || (erange && (math.IsInf(v, 0) || v == 0)) {
		return 0, false
	}
	return v, true
}

// zParseBound parses one end of a score range as zslParseRange does: an
// optional '(' for an exclusive bound, then strtod over the rest (leading
// space, overflow to inf and even an empty string pass; NaN does not).
// Redis hands strtod the C string, so a bound ends at its first NUL byte.
func zParseBound(b []byte) (v float64, ex bool, ok bool) {
	if i := bytes.IndexByte(b, 0); i >= 0 {
		b = b[:i]
	}
	if len(b) > 0 && b[0] == '(' {
		b, ex = b[1:], true
	}
	v, _, ok = zStrtod(b)
	if !ok || math.IsNaN(v) {
		return 0, false, false
	}
	return v, ex, true
}

func zParseScoreRange(min, max []byte) (zScoreRange, bool) {
	var r zScoreRange
	var ok1, ok2 bool
	r.min, r.minex, ok1 = zParseBound(min)
	r.max, r.maxex, ok2 = zParseBound(max)
	return r, ok1 && ok2
}

func zParseLexBound(b []byte) (zLexBound, bool) {
	if len(b) == 0 {
		return zLexBound{}, false
	}
	switch b[0] {
	case '+':
		return zLexBound{inf: 1, ex: true}, len(b) == 1
	case '-':
		return zLexBound{inf: -1, ex: true}, len(b) == 1
	case '(':
		return zLexBound{s: string(b[1:]), ex: true}, true
	case '[':
		return zLexBound{s: string(b[1:])}, true
	}
	return zLexBound{}, false
}

func zParseLexRange(min, max []byte) (zLexRange, bool) {
	a, ok1 := zParseLexBound(min)
	b, ok2 := zParseLexBound(max)
	return zLexRange{min: a, max: b}, ok1 && ok2
}

// zParseInt parses an integer exactly as Redis's string2ll: optional '-',
// no '+', no leading zeros or spaces, within int64.
func zParseInt(b []byte) (int64, bool) {
	if len(b) == 1 && b[0] == '0' {
		return 0, true
	}
	neg := len(b) > 0 && b[0] == '-'
	if neg {
		b = b[1:]
	}
	if len(b) == 0 || b[0] < '1' || b[0] > '9' {
		return 0, false
	}
	v, ok := zParseUint(b)
	switch {
	case !ok:
		return 0, false
	case neg && v <= 1<<63:
		return int64(-v), true // 1<<63 wraps to math.MinInt64, as wanted
	case !neg && v <= math.MaxInt64:
		return int64(v), true
	}
	return 0, false
}

// zParseUint parses decimal digits into a uint64 (no sign, no overflow).
func zParseUint(b []byte) (uint64, bool) {
	var v uint64
	for _, c := range b {
		if !zIsDigit(c) || v > math.MaxUint64/10 {
			return 0, false
		}
		v *= 10
		if v > math.MaxUint64-uint64(c-'0') {
			return 0, false
		}
		v += uint64(c - '0')
	}
	return v, len(b) > 0
}

var (
	errZNotFloat = Err("ERR min or max is not a float")
	errZNotLex   = Err("ERR min or max not valid string range item")
	errZNaN      = Err("ERR resulting score is not a number (NaN)")
)

// ---- state access and shared pieces ----

// zsetLookup returns the sorted set at key (nil if missing), or a
// WRONGTYPE reply.
func zsetLookup(tx *Tx, key []byte) (*zsetValue, Reply, bool) {
	v, r, ok := tx.lookup(key, TypeZSet)
	if !ok || v == nil {
		return nil, r, ok
	}
	return v.(*zsetValue), Reply{}, true
}

// zsetAt returns the sorted set now held at key, without expiry checks:
// used right after Emit to read the state the effect produced.
func zsetAt(tx *Tx, key []byte) *zsetValue {
	e, ok := tx.ks.dbs[tx.DB].keys.Get(string(key))
	if !ok {
		return nil
	}
	if v := e.value(TypeZSet); v != nil {
		return v.(*zsetValue)
	}
	return nil
}

// zsetCard is the member count of a possibly nil set.
func zsetCard(z *zsetValue) int {
	if z == nil {
		return 0
	}
	return z.card()
}

// zPosZero turns -0 into 0 when Redis would store the score in a listpack:
// a listpack keeps integral scores as integers, so -0 reads back as 0.
// Deciding this when the effect is made keeps the state a function of the
// effects alone.
func zPosZero(f float64, listpack bool) float64 {
	if listpack && f == 0 {
		return 0
	}
	return f
}

// zListpackAfterAdd reports whether z is still a listpack once member is
// added (Redis converts before inserting a 129th or a too-long member).
func zListpackAfterAdd(z *zsetValue, member []byte) bool {
	if len(member) > zsetListpackValue {
		return false
	}
	return z == nil || (z.longMembers == 0 && z.card()+1 <= zsetListpackEntries)
}

// zRemoveMembers emits the removal of members from key and, when that
// empties the set, the removal of the key and its TTL, as Redis deletes an
// emptied key.
func zRemoveMembers(tx *Tx, key []byte, members []string) {
	for _, m := range members {
		tx.Emit(Effect{Kind: EffZRem, Key: key, Field: []byte(m)})
	}
	if len(members) > 0 && zsetCard(zsetAt(tx, key)) == 0 {
		tx.Emit(Effect{Kind: EffDelKey, Key: key})
	}
}

// zStore overwrites dst with elems (in index order) as a whole-key write:
// the observed content and TTL go, the result is written as fresh adds. An
// empty result deletes dst. listpackAt reports whether Redis holds the
// destination in a listpack when it inserts element i (so -0 turns to 0).
func zStore(tx *Tx, dst []byte, elems []zelem, listpackAt func(i int) bool) Reply {
	if len(elems) == 0 {
		if tx.Exists(dst) {
			tx.Emit(Effect{Kind: EffDelKey, Key: dst})
		}
		return Int(0)
	}
	tx.Emit(Effect{Kind: EffDelKey, Key: dst})
	for i, e := range elems {
		tx.Emit(Effect{Kind: EffZAdd, Key: dst, Field: []byte(e.member), Float: zPosZero(e.score, listpackAt(i))})
	}
	return Int(int64(len(elems)))
}

// zPairs builds a WITHSCORES reply: [member, score] pairs in RESP3, a flat
// array in RESP2.
func zPairs(elems []zelem) Reply {
	out := make([]Reply, 0, 2*len(elems))
	for _, e := range elems {
		out = append(out, BulkString(e.member), Double(e.score))
	}
	return Reply{Kind: KindPairs, Elems: out}
}

// zReply builds a range reply with or without scores.
func zReply(elems []zelem, withScores bool) Reply {
	if withScores {
		return zPairs(elems)
	}
	out := make([]Reply, len(elems))
	for i, e := range elems {
		out[i] = BulkString(e.member)
	}
	return Array(out...)
}

// ---- ZADD / ZINCRBY ----

type zaddFlags struct{ nx, xx, gt, lt, ch, incr bool }

// zaddParseFlags reads ZADD's options up to the first other argument.
// ZINCRBY goes through the same loop in Redis, so "ZINCRBY k nx m" is a
// syntax error there too.
func zaddParseFlags(args [][]byte, f *zaddFlags) int {
	idx := 2
	for ; idx < len(args); idx++ {
		switch lower(args[idx]) {
		case "nx":
			f.nx = true
		case "xx":
			f.xx = true
		case "ch":
			f.ch = true
		case "incr":
			f.incr = true
		case "gt":
			f.gt = true
		case "lt":
			f.lt = true
		default:
			return idx
		}
	}
	return idx
}

func zaddGeneric(tx *Tx, args [][]byte, incrCmd bool) Reply {
	key := args[1]
	f := zaddFlags{incr: incrCmd}
	idx := zaddParseFlags(args, &f)
	n := len(args) - idx
	if n == 0 || n%2 != 0 {
		return ErrSyntax
	}
	n /= 2
	if f.nx && f.xx {
		return Err("ERR XX and NX options at the same time are not compatible")
	}
	if (f.gt && f.nx) || (f.lt && f.nx) || (f.gt && f.lt) {
		return Err("ERR GT, LT, and/or NX options at the same time are not compatible")
	}
	if f.incr && n > 1 {
		return Err("ERR INCR option supports a single increment-element pair")
	}
	scores := make([]float64, n)
	for j := range scores {
		s, ok := zParseScore(args[idx+2*j])
		if !ok {
			return ErrNotFloat
		}
		scores[j] = s
	}
	z, errReply, ok := zsetLookup(tx, key)
	if !ok {
		return errReply
	}

	added, updated, processed := 0, 0, 0
	var score float64
	for j := 0; j < n; j++ {
		member := args[idx+2*j+1]
		s := scores[j]
		cur, exists := 0.0, false
		if z != nil {
			cur, exists = z.score(member)
		}
		switch {
		case exists:
			if f.nx {
				continue
			}
			ns := s
			if f.incr {
				if ns = cur + s; math.IsNaN(ns) {
					return errZNaN
				}
			}
			if (f.lt && ns >= cur) || (f.gt && ns <= cur) {
				continue
			}
			processed++
			score = ns
			if ns == cur {
				// Redis leaves the member alone, and so does the visible
				// state; the write still ships so that, as with SADD, a
				// member re-added here wins over a concurrent ZREM in
				// another region. An increment (of 0, or one absorbed by a
				// large score) ships as an increment: an overwrite of the
				// current score would cancel the increments it observed,
				// and a concurrent increment elsewhere would no longer add
				// up. EffZIncr creates the member too.
				if f.incr && !math.IsInf(cur, 0) {
					d := s
					if d == 0 && cur == 0 && math.Signbit(cur) {
						// -0 + 0 is +0: add -0 so the score keeps the
						// sign Redis keeps (cur is -0 only in a skiplist).
						d = math.Copysign(0, -1)
					}
					tx.EmitQuiet(Effect{Kind: EffZIncr, Key: key, Field: member, Float: d})
				} else {
					tx.EmitQuiet(Effect{Kind: EffZAdd, Key: key, Field: member, Float: cur})
				}
				continue
			}
			lp := z.listpack()
			if f.incr && !math.IsInf(cur, 0) && !math.IsInf(ns, 0) {
				tx.Emit(Effect{Kind: EffZIncr, Key: key, Field: member, Float: zPosZero(s, lp)})
			} else {
				tx.Emit(Effect{Kind: EffZAdd, Key: key, Field: member, Float: zPosZero(ns, lp)})
			}
			updated++
		case !f.xx:
			lp := zListpackAfterAdd(z, member)
			if f.incr && !math.IsInf(s, 0) {
				tx.Emit(Effect{Kind: EffZIncr, Key: key, Field: member, Float: zPosZero(s, lp)})
			} else {
				tx.Emit(Effect{Kind: EffZAdd, Key: key, Field: member, Float: zPosZero(s, lp)})
			}
			added++
			processed++
			score = s
		default:
			continue
		}
		// Read back what the effect produced. With concurrent increments
		// of other origins the fold may differ from cur+s in the last bit;
		// the reply is then what ZSCORE says next. Otherwise it is Redis's
		// computed score (which may be -0 where the set stores 0).
		z = zsetAt(tx, key)
		if v, _ := z.score(member); v != score {
			score = v
		}
	}
	if f.incr {
		if processed == 0 {
			return Nil
		}
		return Double(score)
	}
	if f.ch {
		return Int(int64(added + updated))
	}
	return Int(int64(added))
}

// ---- ZREM, ZPOPMIN/MAX, ZREMRANGEBY* ----

func zremCmd(tx *Tx, args [][]byte) Reply {
	key := args[1]
	z, errReply, ok := zsetLookup(tx, key)
	if !ok {
		return errReply
	}
	if z == nil {
		return Int(0)
	}
	var gone []string
	seen := map[string]bool{}
	for _, m := range args[2:] {
		if _, ok := z.score(m); ok && !seen[string(m)] {
			seen[string(m)] = true
			gone = append(gone, string(m))
		}
	}
	zRemoveMembers(tx, key, gone)
	return Int(int64(len(gone)))
}

func zpopGeneric(tx *Tx, args [][]byte, fromMax bool) Reply {
	if len(args) > 3 {
		return ErrSyntax
	}
	count := int64(-1)
	if len(args) == 3 {
		c, ok := zParseInt(args[2])
		if !ok || c < 0 {
			return Err("ERR value is out of range, must be positive")
		}
		count = c
	}
	key := args[1]
	z, errReply, ok := zsetLookup(tx, key)
	if !ok {
		return errReply
	}
	if z == nil || count == 0 {
		return Array()
	}
	n := 1
	if count > 0 {
		n = int(min(count, int64(z.card())))
	}
	elems := make([]zelem, 0, n)
	names := make([]string, 0, n)
	nd := z.index.first()
	if fromMax {
		nd = z.index.tail
	}
	for ; len(elems) < n; nd = zStep(nd, fromMax) {
		elems = append(elems, zelem{nd.member, nd.score})
		names = append(names, nd.member)
	}
	zRemoveMembers(tx, key, names)
	if count < 0 {
		// Without COUNT the reply is flat in RESP3 as well.
		return Array(BulkString(elems[0].member), Double(elems[0].score))
	}
	return zPairs(elems)
}

// zStep moves one node forward, or backward if rev.
func zStep(n *zslNode, rev bool) *zslNode {
	if rev {
		return n.backward
	}
	return n.next()
}

func zremrangeGeneric(tx *Tx, args [][]byte, kind int) Reply {
	key := args[1]
	var start, end int64
	var sr zScoreRange
	var lr zLexRange
	switch kind {
	case zrRank:
		var ok1, ok2 bool
		start, ok1 = zParseInt(args[2])
		end, ok2 = zParseInt(args[3])
		if !ok1 || !ok2 {
			return ErrNotInt
		}
	case zrScore:
		var ok bool
		if sr, ok = zParseScoreRange(args[2], args[3]); !ok {
			return errZNotFloat
		}
	case zrLex:
		var ok bool
		if lr, ok = zParseLexRange(args[2], args[3]); !ok {
			return errZNotLex
		}
	}
	z, errReply, ok := zsetLookup(tx, key)
	if !ok {
		return errReply
	}
	if z == nil {
		return Int(0)
	}
	var gone []string
	switch kind {
	case zrRank:
		for _, e := range z.rankRange(start, end, false) {
			gone = append(gone, e.member)
		}
	case zrScore:
		for n := z.firstInScore(&sr); n != nil && sr.lteMax(n.score); n = n.next() {
			gone = append(gone, n.member)
		}
	case zrLex:
		for n := z.firstInLex(&lr); n != nil && lr.lteMax(n.member); n = n.next() {
			gone = append(gone, n.member)
		}
	}
	zRemoveMembers(tx, key, gone)
	return Int(int64(len(gone)))
}

// ---- ZSCORE, ZMSCORE, ZCARD, ZCOUNT, ZLEXCOUNT, ZRANK ----

func zscoreCmd(tx *Tx, args [][]byte) Reply {
	z, errReply, ok := zsetLookup(tx, args[1])
	if !ok {
		return errReply
	}
	if z != nil {
		if s, ok := z.score(args[2]); ok {
			return Double(s)
		}
	}
	return Nil
}

func zmscoreCmd(tx *Tx, args [][]byte) Reply {
	z, errReply, ok := zsetLookup(tx, args[1])
	if !ok {
		return errReply
	}
	out := make([]Reply, 0, len(args)-2)
	for _, m := range args[2:] {
		if z != nil {
			if s, ok := z.score(m); ok {
				out = append(out, Double(s))
				continue
			}
		}
		out = append(out, Nil)
	}
	return Array(out...)
}

func zcardCmd(tx *Tx, args [][]byte) Reply {
	z, errReply, ok := zsetLookup(tx, args[1])
	if !ok {
		return errReply
	}
	return Int(int64(zsetCard(z)))
}

func zcountCmd(tx *Tx, args [][]byte) Reply {
	r, ok := zParseScoreRange(args[2], args[3])
	if !ok {
		return errZNotFloat
	}
	z, errReply, ok := zsetLookup(tx, args[1])
	if !ok {
		return errReply
	}
	if z == nil {
		return Int(0)
	}
	first := z.firstInScore(&r)
	if first == nil {
		return Int(0)
	}
	return Int(int64(z.rankOf(z.lastInScore(&r)) - z.rankOf(first) + 1))
}

func zlexcountCmd(tx *Tx, args [][]byte) Reply {
	r, ok := zParseLexRange(args[2], args[3])
	if !ok {
		return errZNotLex
	}
	z, errReply, ok := zsetLookup(tx, args[1])
	if !ok {
		return errReply
	}
	if z == nil {
		return Int(0)
	}
	first, last := z.firstInLex(&r), z.lastInLex(&r)
	if first == nil || last == nil {
		return Int(0)
	}
	// With mixed scores (undefined in Redis) the two ends may cross.
	return Int(int64(max(z.rankOf(last)-z.rankOf(first)+1, 0)))
}

func zrankGeneric(tx *Tx, args [][]byte, rev bool) Reply {
	z, errReply, ok := zsetLookup(tx, args[1])
	if !ok {
		return errReply
	}
	if z == nil {
		return Nil
	}
	r := z.memberRank(args[2])
	if r < 0 {
		return Nil
	}
	if rev {
		r = z.card() - 1 - r
	}
	return Int(int64(r))
}

// ---- ZRANGE family ----

// Range kinds and directions, as Redis's zrangeGenericCommand has them:
// the plain ZRANGE/ZRANGESTORE start at auto and read BYSCORE/BYLEX/REV.
const (
	zrAuto = iota
	zrRank
	zrScore
	zrLex
)

const (
	zdirAuto = iota
	zdirFwd
	zdirRev
)

// rankRange returns the elements with ranks start..end (Redis's index
// rules: negative counts from the end, clamped), reversed if rev.
func (z *zsetValue) rankRange(start, end int64, rev bool) []zelem {
	llen := int64(z.card())
	if start < 0 {
		start += llen
	}
	if end < 0 {
		end += llen
	}
	if start < 0 {
		start = 0
	}
	if start > end || start >= llen {
		return nil
	}
	if end >= llen {
		end = llen - 1
	}
	n := int(end - start + 1)
	out := make([]zelem, 0, n)
	nd := z.index.byRank(int(start + 1))
	if rev {
		nd = z.index.byRank(int(llen - start))
	}
	for ; len(out) < n; nd = zStep(nd, rev) {
		out = append(out, zelem{nd.member, nd.score})
	}
	return out
}

// walkRange collects elements from the range end node from on, skipping
// offset of them and taking at most limit (negative: no limit) while
// inRange holds. Redis skips the offset one node at a time; ranks make it
// O(log n) here.
func (z *zsetValue) walkRange(from *zslNode, offset, limit int64, rev bool, inRange func(*zslNode) bool) []zelem {
	if from == nil || offset < 0 {
		// A negative offset makes Redis's skip loop run off the end.
		return nil
	}
	if offset > 0 {
		r := int64(z.rankOf(from))
		if rev {
			r -= offset
		} else {
			r += offset
		}
		if r < 0 || r >= int64(z.card()) {
			return nil
		}
		from = z.index.byRank(int(r + 1))
	}
	var out []zelem
	for nd := from; nd != nil && limit != 0 && inRange(nd); nd = zStep(nd, rev) {
		out = append(out, zelem{nd.member, nd.score})
		limit--
	}
	return out
}

func zrangeGeneric(tx *Tx, args [][]byte, store bool, kind, dir int) Reply {
	src := 1
	if store {
		src = 2
	}
	minIdx, maxIdx := src+1, src+2
	withScores := false
	offset, limit := int64(0), int64(-1)
	for j := src + 3; j < len(args); j++ {
		left := len(args) - j - 1
		opt := lower(args[j])
		switch {
		case !store && opt == "withscores":
			withScores = true
		case opt == "limit" && left >= 2:
			var ok1, ok2 bool
			if offset, ok1 = zParseInt(args[j+1]); ok1 {
				limit, ok2 = zParseInt(args[j+2])
			}
			if !ok1 || !ok2 {
				return ErrNotInt
			}
			j += 2
		case dir == zdirAuto && opt == "rev":
			dir = zdirRev
		case kind == zrAuto && opt == "bylex":
			kind = zrLex
		case kind == zrAuto && opt == "byscore":
			kind = zrScore
		default:
			return ErrSyntax
		}
	}
	if dir == zdirAuto {
		dir = zdirFwd
	}
	if kind == zrAuto {
		kind = zrRank
	}
	if limit != -1 && kind == zrRank {
		return Err("ERR syntax error, LIMIT is only supported in combination with either BYSCORE or BYLEX")
	}
	if withScores && kind == zrLex {
		return Err("ERR syntax error, WITHSCORES not supported in combination with BYLEX")
	}
	rev := dir == zdirRev
	if rev && kind != zrRank {
		minIdx, maxIdx = maxIdx, minIdx // given as max, min
	}
	var start, end int64
	var sr zScoreRange
	var lr zLexRange
	switch kind {
	case zrRank:
		var ok1, ok2 bool
		start, ok1 = zParseInt(args[minIdx])
		end, ok2 = zParseInt(args[maxIdx])
		if !ok1 || !ok2 {
			return ErrNotInt
		}
	case zrScore:
		var ok bool
		if sr, ok = zParseScoreRange(args[minIdx], args[maxIdx]); !ok {
			return errZNotFloat
		}
	case zrLex:
		var ok bool
		if lr, ok = zParseLexRange(args[minIdx], args[maxIdx]); !ok {
			return errZNotLex
		}
	}
	z, errReply, ok := zsetLookup(tx, args[src])
	if !ok {
		return errReply
	}
	var elems []zelem
	if z != nil {
		switch {
		case kind == zrRank:
			elems = z.rankRange(start, end, rev)
		case kind == zrScore && offset > 0 && offset >= int64(z.card()):
		case kind == zrScore && rev:
			elems = z.walkRange(z.lastInScore(&sr), offset, limit, true, func(n *zslNode) bool { return sr.gteMin(n.score) })
		case kind == zrScore:
			elems = z.walkRange(z.firstInScore(&sr), offset, limit, false, func(n *zslNode) bool { return sr.lteMax(n.score) })
		case rev:
			elems = z.walkRange(z.lastInLex(&lr), offset, limit, true, func(n *zslNode) bool { return lr.gteMin(n.member) })
		default:
			elems = z.walkRange(z.firstInLex(&lr), offset, limit, false, func(n *zslNode) bool { return lr.lteMax(n.member) })
		}
	}
	if !store {
		return zReply(elems, withScores)
	}
	// Redis starts the destination as a listpack unless a rank range is
	// known to be longer than 128, and converts as members are added.
	lpStart := kind != zrRank || len(elems) <= zsetListpackEntries
	maxLen := 0
	return zStore(tx, args[1], elems, func(i int) bool {
		maxLen = max(maxLen, len(elems[i].member))
		return lpStart && i < zsetListpackEntries && maxLen <= zsetListpackValue
	})
}

// ---- ZUNION, ZINTER, ZDIFF, their STORE forms and ZINTERCARD ----

const (
	zopUnion = iota
	zopInter
	zopDiff
)

const (
	zaggSum = iota
	zaggMin
	zaggMax
)

// zsetSetInput is what a plain set offers so that it can be an input of
// ZUNION/ZINTER/ZDIFF(STORE) and ZINTERCARD, where each of its members
// counts with score 1 as in Redis. The set type (set.go) implements it; a
// set value that does not is read as an empty input.
type zsetSetInput interface{ members() [][]byte }

// zsrc is one input of a set operation.
type zsrc struct {
	z      *zsetValue
	set    [][]byte
	setIdx map[string]struct{} // built on the first lookup
	weight float64
	entry  *entry // the input key, to spot a key given twice
}

func (s *zsrc) card() int {
	if s.z != nil {
		return s.z.card()
	}
	return len(s.set)
}

func (s *zsrc) each(fn func(member string, score float64) bool) {
	if s.z != nil {
		for n := s.z.index.first(); n != nil; n = n.next() {
			if !fn(n.member, n.score) {
				return
			}
		}
		return
	}
	for _, m := range s.set {
		if !fn(string(m), 1) {
			return
		}
	}
}

func (s *zsrc) find(member string) (float64, bool) {
	if s.z != nil {
		return s.z.score([]byte(member))
	}
	if s.setIdx == nil {
		s.setIdx = make(map[string]struct{}, len(s.set))
		for _, m := range s.set {
			s.setIdx[string(m)] = struct{}{}
		}
	}
	_, ok := s.setIdx[member]
	return 1, ok
}

func zAggregate(target *float64, v float64, agg int) {
	switch agg {
	case zaggSum:
		// inf + -inf: Redis's convention is 0.
		if *target += v; math.IsNaN(*target) {
			*target = 0
		}
	case zaggMin:
		if v < *target {
			*target = v
		}
	case zaggMax:
		if v > *target {
			*target = v
		}
	}
}

// zWeighted is weight*score with Redis's convention that NaN (0 * inf)
// counts as 0.
func zWeighted(w, s float64) float64 {
	if v := w * s; !math.IsNaN(v) {
		return v
	}
	return 0
}

// zsetOpParse reads numkeys, looks the inputs up and parses the options,
// in Redis's order (WRONGTYPE comes before option errors).
func zsetOpParse(tx *Tx, args [][]byte, store bool, numIdx int, op int, cardOnly bool) (srcs []zsrc, agg int, withScores bool, limit int64, errReply Reply) {
	setnum, ok := zParseInt(args[numIdx])
	if !ok {
		return nil, 0, false, 0, ErrNotInt
	}
	if setnum < 1 {
		return nil, 0, false, 0, Err("ERR at least 1 input key is needed for '" + lower(args[0]) + "' command")
	}
	if setnum > int64(len(args)-(numIdx+1)) {
		return nil, 0, false, 0, ErrSyntax
	}
	srcs = make([]zsrc, setnum)
	j := numIdx + 1
	for i := range srcs {
		srcs[i].weight = 1
		e := tx.entry(args[j])
		j++
		if e == nil {
			continue
		}
		srcs[i].entry = e
		switch e.Type() {
		case TypeZSet:
			srcs[i].z = e.visible().(*zsetValue)
		case TypeSet:
			if s, ok := e.visible().(zsetSetInput); ok {
				srcs[i].set = s.members()
			}
		default:
			return nil, 0, false, 0, ErrWrongType
		}
	}
	for j < len(args) {
		left := len(args) - j
		opt := lower(args[j])
		switch {
		case op != zopDiff && !cardOnly && left >= len(srcs)+1 && opt == "weights":
			j++
			for i := range srcs {
				w, ok := zParseScore(args[j])
				if !ok {
					return nil, 0, false, 0, Err("ERR weight value is not a float")
				}
				srcs[i].weight = w
				j++
			}
		case op != zopDiff && !cardOnly && left >= 2 && opt == "aggregate":
			switch lower(args[j+1]) {
			case "sum":
				agg = zaggSum
			case "min":
				agg = zaggMin
			case "max":
				agg = zaggMax
			default:
				return nil, 0, false, 0, ErrSyntax
			}
			j += 2
		case !store && !cardOnly && opt == "withscores":
			withScores = true
			j++
		case cardOnly && left >= 2 && opt == "limit":
			l, ok := zParseInt(args[j+1])
			if !ok || l < 0 {
				return nil, 0, false, 0, Err("ERR LIMIT can't be negative")
			}
			limit = l
			j += 2
		default:
			return nil, 0, false, 0, ErrSyntax
		}
	}
	return srcs, agg, withScores, limit, Reply{}
}

func zsetOpGeneric(tx *Tx, args [][]byte, dst []byte, numIdx int, op int, cardOnly bool) Reply {
	srcs, agg, withScores, limit, errReply := zsetOpParse(tx, args, dst != nil, numIdx, op, cardOnly)
	if srcs == nil {
		return errReply
	}
	if op != zopDiff {
		// Smallest input first, as Redis orders them (stably); the order
		// decides how a sum of three or more scores rounds.
		sort.SliceStable(srcs, func(a, b int) bool { return srcs[a].card() < srcs[b].card() })
	}
	var elems []zelem
	count := int64(0)
	switch op {
	case zopInter:
		srcs[0].each(func(m string, s float64) bool {
			score := zWeighted(srcs[0].weight, s)
			for k := 1; k < len(srcs); k++ {
				v, ok := s, true
				if srcs[k].entry != srcs[0].entry {
					v, ok = srcs[k].find(m)
				}
				if !ok {
					return true
				}
				zAggregate(&score, v*srcs[k].weight, agg)
			}
			if cardOnly {
				count++
				return limit == 0 || count < limit
			}
			elems = append(elems, zelem{m, score})
			return true
		})
	case zopUnion:
		acc := map[string]int{} // member -> index in elems
		for i := range srcs {
			srcs[i].each(func(m string, s float64) bool {
				score := zWeighted(srcs[i].weight, s)
				if k, ok := acc[m]; ok {
					zAggregate(&elems[k].score, score, agg)
				} else {
					acc[m] = len(elems)
					elems = append(elems, zelem{m, score})
				}
				return true
			})
		}
	case zopDiff:
		srcs[0].each(func(m string, s float64) bool {
			for k := 1; k < len(srcs); k++ {
				if _, ok := srcs[k].find(m); ok {
					return true
				}
			}
			elems = append(elems, zelem{m, s})
			return true
		})
	}
	if cardOnly {
		return Int(count)
	}
	sort.Slice(elems, func(a, b int) bool {
		return zslLess(elems[a].score, elems[a].member, elems[b].score, elems[b].member)
	})
	if dst == nil {
		return zReply(elems, withScores)
	}
	// Redis turns a small result into a listpack as a whole.
	lp := len(elems) <= zsetListpackEntries
	for _, e := range elems {
		lp = lp && len(e.member) <= zsetListpackValue
	}
	return zStore(tx, dst, elems, func(int) bool { return lp })
}

// ---- ZRANDMEMBER ----

// zrandMaxCount bounds ZRANDMEMBER with a negative count, whose reply
// (members may repeat) is not bounded by the set. Redis streams such a
// reply; here a reply is built in memory first, so a larger count is
// refused rather than allowed to exhaust memory.
const zrandMaxCount = 1 << 22

func zrandmemberCmd(tx *Tx, args [][]byte) Reply {
	key := args[1]
	if len(args) == 2 {
		z, errReply, ok := zsetLookup(tx, key)
		if !ok {
			return errReply
		}
		if z == nil {
			return Nil
		}
		m, _, _ := z.members.Random(tx.Rand())
		return BulkString(m)
	}
	l, ok := zParseInt(args[2])
	if !ok {
		return ErrNotInt
	}
	if l == math.MinInt64 {
		return Err("ERR value is out of range, value must between -9223372036854775807 and 9223372036854775807")
	}
	if len(args) > 4 || (len(args) == 4 && lower(args[3]) != "withscores") {
		return ErrSyntax
	}
	withScores := len(args) == 4
	if withScores && (l < -math.MaxInt64/2 || l > math.MaxInt64/2) {
		return Err("ERR value is out of range")
	}
	z, errReply, ok := zsetLookup(tx, key)
	if !ok {
		return errReply
	}
	if z == nil || l == 0 {
		return Array()
	}
	r := tx.Rand()
	size := int64(z.card())
	pick := func() zelem {
		m, rec, _ := z.members.Random(r)
		return zelem{m, rec.score}
	}
	var elems []zelem
	switch {
	case l < 0 || l == 1:
		// Repeats allowed (or a single pick): independent draws.
		n := max(-l, 1)
		if n > zrandMaxCount {
			return Err("ERR value is out of range")
		}
		elems = make([]zelem, n)
		for i := range elems {
			elems[i] = pick()
		}
	case l >= size:
		// The whole set, from the highest score down, as Redis's set
		// iterator walks it.
		elems = z.rankRange(0, -1, true)
	case l*3 > size:
		// Most of the set: drop random members until l are left.
		elems = make([]zelem, 0, size)
		z.members.Each(func(k string, m *zmember) bool { elems = append(elems, zelem{k, m.score}); return true })
		for int64(len(elems)) > l {
			i := r.Intn(len(elems))
			elems[i] = elems[len(elems)-1]
			elems = elems[:len(elems)-1]
		}
	default:
		// A small part: draw until l distinct members are found.
		seen := make(map[string]bool, l)
		for int64(len(elems)) < l {
			if e := pick(); !seen[e.member] {
				seen[e.member] = true
				elems = append(elems, e)
			}
		}
	}
	return zReply(elems, withScores)
}

// ---- ZSCAN ----

// zListpackScore formats a score as a listpack stores it, which is what
// ZSCAN returns for small sets: integral values within ±2^62 as integers
// (so -0 is "0"), others as %.17g.
func zListpackScore(f float64) string {
	const lim = float64(math.MaxInt64 / 2)
	if f >= -lim && f <= lim && f == math.Trunc(f) {
		return strconv.FormatInt(int64(f), 10)
	}
	return FormatDouble(f)
}

func zscanCmd(tx *Tx, args [][]byte) Reply {
	cursor, ok := parseScanCursor(args[2])
	if !ok {
		return Err("ERR invalid cursor")
	}
	z, errReply, ok := zsetLookup(tx, args[1])
	if !ok {
		return errReply
	}
	if z == nil {
		// Redis answers a missing key before it reads the options.
		return Array(BulkString("0"), Array())
	}
	count := int64(10)
	var pat []byte
	for i := 3; i < len(args); i += 2 {
		opt := lower(args[i])
		switch {
		case opt == "count" && i+1 < len(args):
			c, ok := zParseInt(args[i+1])
			if !ok {
				return ErrNotInt
			}
			if c < 1 {
				return ErrSyntax
			}
			count = c
		case opt == "match" && i+1 < len(args):
			if pat = args[i+1]; len(pat) == 1 && pat[0] == '*' {
				pat = nil
			}
		default:
			return ErrSyntax
		}
	}
	var out []Reply
	add := func(m, s string) {
		if pat == nil || Glob(pat, []byte(m)) {
			out = append(out, BulkString(m), BulkString(s))
		}
	}
	next := uint64(0)
	if z.listpack() {
		// Redis returns a listpack-encoded set whole and in order,
		// whatever the cursor.
		for n := z.index.first(); n != nil; n = n.next() {
			add(n.member, zListpackScore(n.score))
		}
	} else {
		next = z.members.Scan(cursor, int(min(count, math.MaxInt32)), func(k string, m *zmember) {
			add(k, FormatDouble(m.score))
		})
	}
	return Array(BulkString(strconv.FormatUint(next, 10)), Array(out...))
}
