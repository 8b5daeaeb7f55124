package crdt

import (
	"bytes"
	"math"
)

// String and counter commands, with Redis 7.0's replies, errors and checks
// in Redis's order (which argument error wins matters to clients that
// compare error texts).

func init() {
	register(
		&CommandSpec{Name: "set", Arity: -3, Flags: []string{"denyoom"}, FirstKey: 1, LastKey: 1, Step: 1,
			Categories: []string{"write", "string", "slow"}, Write: true, Run: cmdSet},
		&CommandSpec{Name: "get", Arity: 2, Flags: []string{"fast"}, FirstKey: 1, LastKey: 1, Step: 1,
			Categories: []string{"read", "string", "fast"}, Run: cmdGet},
		&CommandSpec{Name: "getset", Arity: 3, Flags: []string{"denyoom", "fast"}, FirstKey: 1, LastKey: 1, Step: 1,
			Categories: []string{"write", "string", "fast"}, Write: true, Run: cmdGetSet},
		&CommandSpec{Name: "getdel", Arity: 2, Flags: []string{"fast"}, FirstKey: 1, LastKey: 1, Step: 1,
			Categories: []string{"write", "string", "fast"}, Write: true, Run: cmdGetDel},
		&CommandSpec{Name: "getex", Arity: -2, Flags: []string{"fast"}, FirstKey: 1, LastKey: 1, Step: 1,
			Categories: []string{"write", "string", "fast"}, Write: true, Run: cmdGetEx},
		&CommandSpec{Name: "mset", Arity: -3, Flags: []string{"denyoom"}, FirstKey: 1, LastKey: -1, Step: 2,
			Categories: []string{"write", "string", "slow"}, Write: true, Run: cmdMSet},
		&CommandSpec{Name: "msetnx", Arity: -3, Flags: []string{"denyoom"}, FirstKey: 1, LastKey: -1, Step: 2,
			Categories: []string{"write", "string", "slow"}, Write: true, Run: cmdMSetNX},
		&CommandSpec{Name: "mget", Arity: -2, Flags: []string{"fast"}, FirstKey: 1, LastKey: -1, Step: 1,
			Categories: []string{"read", "string", "fast"}, Run: cmdMGet},
		&CommandSpec{Name: "append", Arity: 3, Flags: []string{"denyoom", "fast"}, FirstKey: 1, LastKey: 1, Step: 1,
			Categories: []string{"write", "string", "fast"}, Write: true, Run: cmdAppend},
		&CommandSpec{Name: "strlen", Arity: 2, Flags: []string{"fast"}, FirstKey: 1, LastKey: 1, Step: 1,
			Categories: []string{"read", "string", "fast"}, Run: cmdStrlen},
		&CommandSpec{Name: "setrange", Arity: 4, Flags: []string{"denyoom"}, FirstKey: 1, LastKey: 1, Step: 1,
			Categories: []string{"write", "string", "slow"}, Write: true, Run: cmdSetRange},
		&CommandSpec{Name: "getrange", Arity: 4, FirstKey: 1, LastKey: 1, Step: 1,
			Categories: []string{"read", "string", "slow"}, Run: cmdGetRange},
		&CommandSpec{Name: "substr", Arity: 4, FirstKey: 1, LastKey: 1, Step: 1,
			Categories: []string{"read", "string", "slow"}, Run: cmdGetRange},
		&CommandSpec{Name: "setnx", Arity: 3, Flags: []string{"denyoom", "fast"}, FirstKey: 1, LastKey: 1, Step: 1,
			Categories: []string{"write", "string", "fast"}, Write: true, Run: cmdSetNX},
		&CommandSpec{Name: "setex", Arity: 4, Flags: []string{"denyoom"}, FirstKey: 1, LastKey: 1, Step: 1,
			Categories: []string{"write", "string", "slow"}, Write: true, Run: cmdSetEx},
		&CommandSpec{Name: "psetex", Arity: 4, Flags: []string{"denyoom"}, FirstKey: 1, LastKey: 1, Step: 1,
			Categories: []string{"write", "string", "slow"}, Write: true, Run: cmdSetEx},
		&CommandSpec{Name: "incr", Arity: 2, Flags: []string{"denyoom", "fast"}, FirstKey: 1, LastKey: 1, Step: 1,
			Categories: []string{"write", "string", "fast"}, Write: true, Run: cmdIncrDecr},
		&CommandSpec{Name: "decr", Arity: 2, Flags: []string{"denyoom", "fast"}, FirstKey: 1, LastKey: 1, Step: 1,
			Categories: []string{"write", "string", "fast"}, Write: true, Run: cmdIncrDecr},
		&CommandSpec{Name: "incrby", Arity: 3, Flags: []string{"denyoom", "fast"}, FirstKey: 1, LastKey: 1, Step: 1,
			Categories: []string{"write", "string", "fast"}, Write: true, Run: cmdIncrDecr},
		&CommandSpec{Name: "decrby", Arity: 3, Flags: []string{"denyoom", "fast"}, FirstKey: 1, LastKey: 1, Step: 1,
			Categories: []string{"write", "string", "fast"}, Write: true, Run: cmdIncrDecr},
		&CommandSpec{Name: "incrbyfloat", Arity: 3, Flags: []string{"denyoom", "fast"}, FirstKey: 1, LastKey: 1, Step: 1,
			Categories: []string{"write", "string", "fast"}, Write: true, Run: cmdIncrByFloat},
	)
}

// maxStringLen is Redis's default proto-max-bulk-len: no command may build
// a string longer than this.
const maxStringLen = 512 << 20

// getString returns key's visible string value. found is false if the key
// is missing; ok is false (with a WRONGTYPE reply) if it holds another type.
func getString(tx *Tx, key []byte) (v []byte, found bool, errReply Reply, ok bool) {
	e := tx.entry(key)
	if e == nil {
		return nil, false, Reply{}, true
	}
	switch v := e.visible().(type) {
	case *strValue:
		return v.value(), true, Reply{}, true
	case *hllValue:
		return v.bytes(), true, Reply{}, true // an HLL is a string
	}
	return nil, false, ErrWrongType, false
}

// clearGhostTTL removes a TTL left behind by concurrently removed content
// before a write creates the key afresh: in Redis a new key has no TTL.
func clearGhostTTL(tx *Tx, key []byte) {
	if _, ok := tx.ks.dbs[tx.DB].ghosts[string(key)]; ok {
		tx.Emit(Effect{Kind: EffDelKey, Key: key})
	}
}

// overwriteString replaces key's whole content with the string v, as SET
// does: the observed content of every type goes, and the TTL too unless
// keepTTL. Where EffStrSet alone has that effect (a plain string, no TTL
// to remove) no EffDelKey is shipped.
func overwriteString(tx *Tx, key, v []byte, keepTTL bool) {
	e := tx.entry(key)
	switch {
	case e == nil:
		clearGhostTTL(tx, key) // KEEPTTL on a missing key keeps nothing
	case len(e.vals) == 1 && e.vals[0].Type() == TypeString && (keepTTL || len(e.ttl()) == 0):
	default:
		var flags uint8
		if keepTTL {
			flags = FlagKeepTTL
		}
		tx.Emit(Effect{Kind: EffDelKey, Flags: flags, Key: key})
	}
	tx.Emit(Effect{Kind: EffStrSet, Key: key, Value: v})
}

// writeString writes a new value into an existing string (APPEND,
// SETRANGE) or creates it: an LWW write that keeps the TTL.
func writeString(tx *Tx, key, v []byte, existed bool) {
	if !existed {
		clearGhostTTL(tx, key)
	} else if tx.TypeOf(key) == TypeHLL {
		// The bytes become a plain string: its HLL history goes.
		tx.Emit(Effect{Kind: EffDelKey, Flags: FlagKeepTTL, Key: key})
	}
	tx.Emit(Effect{Kind: EffStrSet, Key: key, Value: v})
}

// SET/GETEX option flags, as Redis's parseExtendedStringArgumentsOrReply.
const (
	optNX = 1 << iota
	optXX
	optGet
	optKeepTTL
	optPersist
	optEX
	optPX
	optEXAT
	optPXAT

	optExpire = optEX | optPX | optEXAT | optPXAT
)

// cOpt returns an option argument lowercased and cut at its first NUL:
// Redis compares options as C strings.
func cstrLower(b []byte) string {
	if i := bytes.IndexByte(b, 0); i >= 0 {
		b = b[:i]
	}
	return lower(b)
}

// parseSetOptions parses SET (forSet) or GETEX options starting at args[i],
// accepting exactly the combinations Redis does.
func parseSetOptions(args [][]byte, i int, forSet bool) (flags int, expire []byte, r Reply, ok bool) {
	for ; i < len(args); i++ {
		opt := cstrLower(args[i])
		hasNext := i+1 < len(args)
		switch {
		case opt == "nx" && forSet && flags&optXX == 0:
			flags |= optNX
		case opt == "xx" && forSet && flags&optNX == 0:
			flags |= optXX
		case opt == "get" && forSet:
			flags |= optGet
		case opt == "keepttl" && forSet && flags&(optPersist|optExpire) == 0:
			flags |= optKeepTTL
		case opt == "persist" && !forSet && flags&(optExpire|optKeepTTL) == 0:
			flags |= optPersist
		case opt == "ex" && hasNext && flags&(optKeepTTL|optPersist|optExpire&^optEX) == 0:
			flags |= optEX
			expire = args[i+1]
			i++
		case opt == "px" && hasNext && flags&(optKeepTTL|optPersist|optExpire&^optPX) == 0:
			flags |= optPX
			expire = args[i+1]
			i++
		case opt == "exat" && hasNext && flags&(optKeepTTL|optPersist|optExpire&^optEXAT) == 0:
			flags |= optEXAT
			expire = args[i+1]
			i++
		case opt == "pxat" && hasNext && flags&(optKeepTTL|optPersist|optExpire&^optPXAT) == 0:
			flags |= optPXAT
			expire = args[i+1]
			i++
		default:
			return 0, nil, ErrSyntax, false
		}
	}
	return flags, expire, Reply{}, true
}

// expireMillis turns an EX/PX/EXAT/PXAT argument into an absolute Unix
// time in ms with Redis's checks: positive, and no overflow in the unit
// conversion or in adding the current time.
func expireMillis(tx *Tx, arg []byte, flags int, cmd string) (int64, Reply, bool) {
	ms, ok := parseInt64(arg)
	if !ok {
		return 0, ErrNotInt, false
	}
	seconds := flags&(optEX|optEXAT) != 0
	if ms <= 0 || seconds && ms > math.MaxInt64/1000 {
		return 0, ErrInvalidExpire(cmd), false
	}
	if seconds {
		ms *= 1000
	}
	if flags&(optEX|optPX) != 0 {
		ms += tx.Now // wraps on overflow like Redis, caught below
	}
	if ms <= 0 {
		return 0, ErrInvalidExpire(cmd), false
	}
	return ms, Reply{}, true
}

func cmdSet(tx *Tx, args [][]byte) Reply {
	flags, exp, r, ok := parseSetOptions(args, 3, true)
	if !ok {
		return r
	}
	return setGeneric(tx, "set", flags, args[1], args[2], exp, OK, Nil)
}

// setGeneric is Redis's setGenericCommand: SET and its variants.
func setGeneric(tx *Tx, cmd string, flags int, key, val, exp []byte, okReply, abortReply Reply) Reply {
	var at int64
	if exp != nil {
		var r Reply
		var ok bool
		if at, r, ok = expireMillis(tx, exp, flags, cmd); !ok {
			return r
		}
	}
	var old Reply
	if flags&optGet != 0 {
		v, found, r, ok := getString(tx, key)
		if !ok {
			return r
		}
		old = Nil
		if found {
			old = Bulk(v)
		}
	}
	found := tx.entry(key) != nil
	if flags&optNX != 0 && found || flags&optXX != 0 && !found {
		if flags&optGet != 0 {
			return old
		}
		return abortReply
	}
	overwriteString(tx, key, val, flags&optKeepTTL != 0)
	if exp != nil {
		// An EXAT/PXAT already past still sets the key, as in Redis 7.0; it
		// is then expired, which reads see at once and a sweep removes.
		tx.Emit(Effect{Kind: EffExpire, Key: key, Int: at})
	}
	if flags&optGet != 0 {
		return old
	}
	return okReply
}

func cmdGet(tx *Tx, args [][]byte) Reply {
	v, found, r, ok := getString(tx, args[1])
	if !ok {
		return r
	}
	if !found {
		return Nil
	}
	return Bulk(v)
}

func cmdGetSet(tx *Tx, args [][]byte) Reply {
	return setGeneric(tx, "getset", optGet, args[1], args[2], nil, OK, Nil)
}

func cmdGetDel(tx *Tx, args [][]byte) Reply {
	v, found, r, ok := getString(tx, args[1])
	if !ok {
		return r
	}
	if !found {
		return Nil
	}
	reply := Bulk(v)
	tx.Emit(Effect{Kind: EffDelKey, Key: args[1]})
	return reply
}

func cmdGetEx(tx *Tx, args [][]byte) Reply {
	flags, exp, r, ok := parseSetOptions(args, 2, false)
	if !ok {
		return r
	}
	key := args[1]
	v, found, r, ok := getString(tx, key)
	if !ok {
		return r
	}
	if !found {
		return Nil
	}
	var at int64
	if exp != nil {
		if at, r, ok = expireMillis(tx, exp, flags, "getex"); !ok {
			return r
		}
	}
	reply := Bulk(v)
	switch {
	case flags&(optEXAT|optPXAT) != 0 && at <= tx.Now:
		// Unlike SET, GETEX deletes at once for a time already past.
		tx.Emit(Effect{Kind: EffDelKey, Key: key})
	case exp != nil:
		tx.Emit(Effect{Kind: EffExpire, Key: key, Int: at})
	case flags&optPersist != 0:
		if tx.ExpireAt(key) != 0 {
			tx.Emit(Effect{Kind: EffExpire, Key: key, Int: 0})
		}
	}
	return reply
}

func cmdMSet(tx *Tx, args [][]byte) Reply {
	if len(args)%2 == 0 {
		return ErrArity("mset")
	}
	for i := 1; i < len(args); i += 2 {
		overwriteString(tx, args[i], args[i+1], false)
	}
	return OK
}

func cmdMSetNX(tx *Tx, args [][]byte) Reply {
	if len(args)%2 == 0 {
		return ErrArity("msetnx")
	}
	for i := 1; i < len(args); i += 2 {
		if tx.entry(args[i]) != nil {
			return Int(0)
		}
	}
	for i := 1; i < len(args); i += 2 {
		overwriteString(tx, args[i], args[i+1], false)
	}
	return Int(1)
}

func cmdMGet(tx *Tx, args [][]byte) Reply {
	out := make([]Reply, 0, len(args)-1)
	for _, k := range args[1:] {
		e := tx.entry(k)
		if e == nil || e.Type() != TypeString && e.Type() != TypeHLL {
			out = append(out, Nil)
			continue
		}
		if h, ok := e.visible().(*hllValue); ok {
			out = append(out, Bulk(h.bytes()))
			continue
		}
		out = append(out, Bulk(e.visible().(*strValue).value()))
	}
	return Array(out...)
}

func cmdAppend(tx *Tx, args [][]byte) Reply {
	key, add := args[1], args[2]
	old, found, r, ok := getString(tx, key)
	if !ok {
		return r
	}
	if found && len(old)+len(add) > maxStringLen {
		return ErrStringTooBig
	}
	nv := make([]byte, 0, len(old)+len(add))
	nv = append(append(nv, old...), add...)
	writeString(tx, key, nv, found)
	return Int(int64(len(nv)))
}

func cmdStrlen(tx *Tx, args [][]byte) Reply {
	v, _, r, ok := getString(tx, args[1])
	if !ok {
		return r
	}
	return Int(int64(len(v)))
}

func cmdSetRange(tx *Tx, args [][]byte) Reply {
	key, val := args[1], args[3]
	off, ok := parseInt64(args[2])
	if !ok {
		return ErrNotInt
	}
	if off < 0 {
		return Err("ERR offset is out of range")
	}
	old, found, r, ok := getString(tx, key)
	if !ok {
		return r
	}
	if len(val) == 0 {
		return Int(int64(len(old))) // nothing to write; a missing key stays missing
	}
	if off > maxStringLen-int64(len(val)) {
		return ErrStringTooBig
	}
	n := max(int64(len(old)), off+int64(len(val)))
	nv := make([]byte, n)
	copy(nv, old)
	copy(nv[off:], val)
	writeString(tx, key, nv, found)
	return Int(n)
}

func cmdGetRange(tx *Tx, args [][]byte) Reply {
	start, ok1 := parseInt64(args[2])
	end, ok2 := parseInt64(args[3])
	if !ok1 || !ok2 {
		return ErrNotInt
	}
	v, _, r, ok := getString(tx, args[1])
	if !ok {
		return r
	}
	n := int64(len(v))
	if start < 0 && end < 0 && start > end {
		return BulkString("")
	}
	if start < 0 {
		start += n
	}
	if end < 0 {
		end += n
	}
	start, end = max(start, 0), max(end, 0)
	if end >= n {
		end = n - 1
	}
	if start > end || n == 0 {
		return BulkString("")
	}
	return Bulk(v[start : end+1])
}

func cmdSetNX(tx *Tx, args [][]byte) Reply {
	return setGeneric(tx, "setnx", optNX, args[1], args[2], nil, Int(1), Int(0))
}

// cmdSetEx serves SETEX (seconds) and PSETEX (milliseconds).
func cmdSetEx(tx *Tx, args [][]byte) Reply {
	name := lower(args[0])
	flags := optEX
	if name == "psetex" {
		flags = optPX
	}
	return setGeneric(tx, name, flags, args[1], args[3], args[2], OK, Nil)
}

// cmdIncrDecr serves INCR, DECR, INCRBY and DECRBY.
func cmdIncrDecr(tx *Tx, args [][]byte) Reply {
	var by int64 = 1
	switch lower(args[0]) {
	case "decr":
		by = -1
	case "incrby", "decrby":
		n, ok := parseInt64(args[2])
		if !ok {
			return ErrNotInt
		}
		by = n
		if lower(args[0]) == "decrby" {
			if n == math.MinInt64 {
				return Err("ERR decrement would overflow")
			}
			by = -n
		}
	}
	key := args[1]
	v, found, r, ok := getString(tx, key)
	if !ok {
		return r
	}
	var cur int64
	if found {
		if cur, ok = parseInt64(v); !ok {
			return ErrNotInt
		}
	}
	sum, ok := addInt64(cur, by)
	if !ok {
		return ErrOverflow
	}
	if !found {
		clearGhostTTL(tx, key)
	}
	tx.Emit(Effect{Kind: EffStrIncr, Key: key, Int: by})
	return Int(sum)
}

func cmdIncrByFloat(tx *Tx, args [][]byte) Reply {
	key, incr := args[1], args[2]
	v, found, r, ok := getString(tx, key)
	if !ok {
		return r
	}
	cur := []byte("0")
	if found {
		cur = v
	}
	if errR, ok := checkFloatIncr(cur, incr, "ERR value is not a valid float"); !ok {
		return errR
	}
	if !found {
		clearGhostTTL(tx, key)
	}
	tx.Emit(Effect{Kind: EffStrIncr, Flags: FlagFloat, Key: key, Value: incr})
	nv, _, _, _ := getString(tx, key)
	return Bulk(nv)
}

// checkFloatIncr checks that cur + incr is a finite long double, with
// Redis's errors: the current value is parsed first (badCur is its error),
// then the increment.
func checkFloatIncr(cur, incr []byte, badCur string) (Reply, bool) {
	x, st := parseLongDouble(cur)
	if st == ldBad {
		return Err(badCur), false
	}
	y, st2 := parseLongDouble(incr)
	if st2 == ldBad {
		return ErrNotFloat, false
	}
	if st == ldInf || st2 == ldInf || addLongDouble(x, y) == nil {
		return Err("ERR increment would produce NaN or Infinity"), false
	}
	return Reply{}, true
}
