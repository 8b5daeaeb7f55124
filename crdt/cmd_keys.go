package crdt

import (
	"bytes"
	"math"
	"strconv"
	"strings"
)

// Keyspace commands. Deletes are observed-removes (a concurrent write the
// deleting region had not seen survives); whole-key moves (RENAME, COPY,
// MOVE) re-create the source's visible content under the destination as
// fresh writes after removing what the destination held. Replies, errors
// and argument checks follow Redis 7.0.

func init() {
	register(
		&CommandSpec{Name: "del", Arity: -2, FirstKey: 1, LastKey: -1, Step: 1,
			Categories: []string{"keyspace", "write", "slow"}, Write: true, Run: cmdDel},
		&CommandSpec{Name: "unlink", Arity: -2, Flags: []string{"fast"}, FirstKey: 1, LastKey: -1, Step: 1,
			Categories: []string{"keyspace", "write", "fast"}, Write: true, Run: cmdDel},
		&CommandSpec{Name: "exists", Arity: -2, Flags: []string{"fast"}, FirstKey: 1, LastKey: -1, Step: 1,
			Categories: []string{"keyspace", "read", "fast"}, Run: cmdExists},
		&CommandSpec{Name: "type", Arity: 2, Flags: []string{"fast"}, FirstKey: 1, LastKey: 1, Step: 1,
			Categories: []string{"keyspace", "read", "fast"}, Run: cmdType},
		&CommandSpec{Name: "rename", Arity: 3, FirstKey: 1, LastKey: 2, Step: 1,
			Categories: []string{"keyspace", "write", "slow"}, Write: true,
			Run: func(tx *Tx, a [][]byte) Reply { return renameGeneric(tx, a, false) }},
		&CommandSpec{Name: "renamenx", Arity: 3, Flags: []string{"fast"}, FirstKey: 1, LastKey: 2, Step: 1,
			Categories: []string{"keyspace", "write", "fast"}, Write: true,
			Run: func(tx *Tx, a [][]byte) Reply { return renameGeneric(tx, a, true) }},
		&CommandSpec{Name: "copy", Arity: -3, Flags: []string{"denyoom"}, FirstKey: 1, LastKey: 2, Step: 1,
			Categories: []string{"keyspace", "write", "slow"}, Write: true, Run: cmdCopy},
		&CommandSpec{Name: "move", Arity: 3, Flags: []string{"fast"}, FirstKey: 1, LastKey: 1, Step: 1,
			Categories: []string{"keyspace", "write", "fast"}, Write: true, Run: cmdMove},
		&CommandSpec{Name: "touch", Arity: -2, Flags: []string{"fast"}, FirstKey: 1, LastKey: -1, Step: 1,
			Categories: []string{"keyspace", "read", "fast"}, Run: cmdTouch},
		&CommandSpec{Name: "keys", Arity: 2,
			Categories: []string{"keyspace", "read", "slow", "dangerous"}, Run: cmdKeys},
		&CommandSpec{Name: "scan", Arity: -2,
			Categories: []string{"keyspace", "read", "slow"}, Run: cmdScan},
		&CommandSpec{Name: "randomkey", Arity: 1,
			Categories: []string{"keyspace", "read", "slow"}, Run: cmdRandomKey},
		&CommandSpec{Name: "dbsize", Arity: 1, Flags: []string{"fast"},
			Categories: []string{"keyspace", "read", "fast"}, Run: cmdDBSize},
		&CommandSpec{Name: "flushdb", Arity: -1,
			Categories: []string{"keyspace", "write", "slow", "dangerous"}, Write: true,
			Run: func(tx *Tx, a [][]byte) Reply { return flushGeneric(tx, a, EffFlushDB) }},
		&CommandSpec{Name: "flushall", Arity: -1,
			Categories: []string{"keyspace", "write", "slow", "dangerous"}, Write: true,
			Run: func(tx *Tx, a [][]byte) Reply { return flushGeneric(tx, a, EffFlushAll) }},
		// OBJECT is a container command in Redis (its subcommands carry
		// the key specs); the key is argument 2 for every subcommand that
		// takes one.
		&CommandSpec{Name: "object", Arity: -2, FirstKey: 2, LastKey: 2, Step: 1,
			Categories: []string{"keyspace", "read", "slow"}, Run: cmdObject},
	)
}

var (
	errInvalidCursor = Err("ERR invalid cursor")
	errSameObject    = Err("ERR source and destination objects are the same")
)

// errText renders user-supplied text inside an error line as Redis's
// addReplyErrorFormat does: the C "%s" stops at a NUL byte and newlines
// become spaces. Other bytes pass through (they need not be UTF-8).
func errText(b []byte) string {
	if i := bytes.IndexByte(b, 0); i >= 0 {
		b = b[:i]
	}
	out := []byte(string(b))
	for i, c := range out {
		if c == '\r' || c == '\n' {
			out[i] = ' '
		}
	}
	return string(out)
}

// parseDBArg parses a database number as Redis's getIntFromObjectOrReply
// followed by selectDb does.
func parseDBArg(b []byte) (int, Reply, bool) {
	v, ok := parseStrictInt(b)
	if !ok {
		return 0, ErrNotInt, false
	}
	if v < math.MinInt32 || v > math.MaxInt32 {
		return 0, Err("ERR value is out of range, value must between -2147483648 and 2147483647"), false
	}
	if v < 0 || v >= NumDBs {
		return 0, ErrDBIndex, false
	}
	return int(v), Reply{}, true
}

// hasGhostTTL reports whether (dbi, key) has no content but a TTL register
// kept from a concurrent removal.
func hasGhostTTL(tx *Tx, dbi int, key []byte) bool {
	_, ok := tx.ks.dbs[dbi].ghosts[string(key)]
	return ok
}

// clearKey starts a whole-key overwrite of (dbi, key): an observed remove
// of whatever the key holds, of any type, and its TTL. A TTL register kept
// for a key without content is cleared too, or the fresh content would
// pick it up.
func clearKey(tx *Tx, dbi int, key []byte) {
	if tx.entryIn(dbi, key) != nil || hasGhostTTL(tx, dbi, key) {
		tx.EmitIn(dbi, Effect{Kind: EffDelKey, Key: key})
	}
}

// copyWhole writes the visible content and TTL of entry e to (dbi, dst)
// as a whole-key overwrite. (The destination's access time is the op's,
// as in Redis, where looking the source up touches it.)
func copyWhole(tx *Tx, e *entry, dbi int, dst []byte) {
	src := e.visible()
	var effs []Effect
	src.replay(func(f Effect) {
		f.Key = dst
		effs = append(effs, f)
	})
	at := e.ExpireAt()
	clearKey(tx, dbi, dst)
	for _, f := range effs {
		tx.EmitIn(dbi, f)
	}
	if at > 0 {
		tx.EmitIn(dbi, Effect{Kind: EffExpire, Key: dst, Int: at})
	}
	if d, ok := tx.ks.dbs[dbi].keys.Get(string(dst)); ok {
		// Redis moves or duplicates the object itself, encoding included.
		if h, ok := d.visible().(interface{ inheritEncoding(value) }); ok {
			h.inheritEncoding(src)
		}
	}
}

func cmdDel(tx *Tx, args [][]byte) Reply {
	n := 0
	for _, k := range args[1:] {
		if tx.entry(k) != nil {
			tx.Emit(Effect{Kind: EffDelKey, Key: k})
			n++
		}
	}
	return Int(int64(n))
}

func cmdExists(tx *Tx, args [][]byte) Reply {
	n := 0
	for _, k := range args[1:] {
		if tx.peekIn(tx.DB, k) != nil {
			n++
		}
	}
	return Int(int64(n))
}

func cmdTouch(tx *Tx, args [][]byte) Reply {
	n := 0
	for _, k := range args[1:] {
		if tx.entry(k) != nil {
			n++
		}
	}
	return Int(int64(n))
}

func cmdType(tx *Tx, args [][]byte) Reply {
	if e := tx.peekIn(tx.DB, args[1]); e != nil {
		return Status(e.Type().String())
	}
	return Status("none")
}

func renameGeneric(tx *Tx, args [][]byte, nx bool) Reply {
	src, dst := args[1], args[2]
	e := tx.entry(src)
	if e == nil {
		return ErrNoSuchKey
	}
	if bytes.Equal(src, dst) {
		if nx {
			return Int(0)
		}
		return OK
	}
	if nx && tx.entry(dst) != nil {
		return Int(0)
	}
	copyWhole(tx, e, tx.DB, dst)
	tx.Emit(Effect{Kind: EffDelKey, Key: src})
	if nx {
		return Int(1)
	}
	return OK
}

func cmdCopy(tx *Tx, args [][]byte) Reply {
	src, dst := args[1], args[2]
	dbi := tx.DB
	replace := false
	for i := 3; i < len(args); i++ {
		switch opt := lower(args[i]); {
		case opt == "replace":
			replace = true
		case opt == "db" && i+1 < len(args):
			i++
			d, r, ok := parseDBArg(args[i])
			if !ok {
				return r
			}
			dbi = d
		default:
			return ErrSyntax
		}
	}
	if dbi == tx.DB && bytes.Equal(src, dst) {
		return errSameObject
	}
	e := tx.entry(src)
	if e == nil {
		return Int(0)
	}
	if !replace && tx.entryIn(dbi, dst) != nil {
		return Int(0)
	}
	copyWhole(tx, e, dbi, dst)
	return Int(1)
}

func cmdMove(tx *Tx, args [][]byte) Reply {
	key := args[1]
	dbi, r, ok := parseDBArg(args[2])
	if !ok {
		return r
	}
	if dbi == tx.DB {
		return errSameObject
	}
	e := tx.entry(key)
	if e == nil {
		return Int(0)
	}
	if tx.entryIn(dbi, key) != nil {
		return Int(0)
	}
	copyWhole(tx, e, dbi, key)
	tx.Emit(Effect{Kind: EffDelKey, Key: key})
	return Int(1)
}

func cmdKeys(tx *Tx, args [][]byte) Reply {
	all := len(args[1]) == 1 && args[1][0] == '*'
	out := []Reply{}
	tx.ks.dbs[tx.DB].keys.Each(func(k string, e *entry) bool {
		if (all || Glob(args[1], []byte(k))) && !e.expired(tx.Now) {
			out = append(out, BulkString(k))
		}
		return true
	})
	return Array(out...)
}

// parseScanCursor parses a SCAN-family cursor the way Redis 7.0 does, with
// strtoul: an optional sign (a negative cursor wraps around), decimal
// digits, nothing after them; no leading space; the empty string is 0.
// Arguments are C strings to strtoul, so a NUL byte ends the number.
func parseScanCursor(b []byte) (uint64, bool) {
	if i := bytes.IndexByte(b, 0); i >= 0 {
		b = b[:i]
	}
	if len(b) == 0 {
		return 0, true
	}
	switch b[0] {
	case ' ', '\t', '\n', '\v', '\f', '\r':
		return 0, false
	}
	neg := false
	if b[0] == '+' || b[0] == '-' {
		neg = b[0] == '-'
		b = b[1:]
		if len(b) == 0 {
			return 0, false
		}
	}
	var v uint64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		d := uint64(c - '0')
		if v > (math.MaxUint64-d)/10 {
			return 0, false // ERANGE
		}
		v = v*10 + d
	}
	if neg {
		v = -v
	}
	return v, true
}

// scanOptions are the COUNT, MATCH and (SCAN only) TYPE options.
type scanOptions struct {
	count   int
	pattern []byte // nil: every element matches
	typ     string // "": any type
}

func (o *scanOptions) match(s string) bool {
	return o.pattern == nil || Glob(o.pattern, []byte(s))
}

// parseScanOptions parses what follows the cursor (and key) of SCAN,
// SSCAN, HSCAN and ZSCAN, with Redis 7.0's errors.
func parseScanOptions(args [][]byte, allowType bool) (scanOptions, Reply, bool) {
	o := scanOptions{count: 10}
	for i := 0; i < len(args); i += 2 {
		more := i+1 < len(args)
		switch opt := lower(args[i]); {
		case opt == "count" && more:
			n, ok := parseStrictInt(args[i+1])
			if !ok {
				return o, ErrNotInt, false
			}
			if n < 1 {
				return o, ErrSyntax, false
			}
			if n > 1<<30 {
				n = 1 << 30 // more than any call can return; avoids overflow below
			}
			o.count = int(n)
		case opt == "match" && more:
			if p := args[i+1]; len(p) == 1 && p[0] == '*' {
				o.pattern = nil // Redis skips matching for "*"
			} else {
				o.pattern = p
			}
		case opt == "type" && allowType && more:
			o.typ = string(args[i+1])
		default:
			return o, ErrSyntax, false
		}
	}
	return o, Reply{}, true
}

// scanDict visits up to count elements of d from slot cursor on, looking
// at no more than 10*count slots (Redis bounds the work of one call the
// same way), and returns the cursor to continue from (0 at the end).
// Because an element keeps its slot for as long as it exists, an element
// present for a whole iteration is returned at least once.
func scanDict[V any](d *dict[V], cursor uint64, count int, fn func(string, V)) uint64 {
	n := uint64(len(d.slots))
	i := cursor
	for seen, budget := 0, 10*count; i < n && seen < count && budget > 0; i++ {
		budget--
		if s := &d.slots[i]; s.used {
			fn(s.key, s.val)
			seen++
		}
	}
	if i >= n {
		return 0
	}
	return i
}

// scanReply is [cursor, [elements...]].
func scanReply(cursor uint64, items []string) Reply {
	elems := make([]Reply, len(items))
	for i, s := range items {
		elems[i] = BulkString(s)
	}
	return Array(BulkString(strconv.FormatUint(cursor, 10)), Array(elems...))
}

func cmdScan(tx *Tx, args [][]byte) Reply {
	cursor, ok := parseScanCursor(args[1])
	if !ok {
		return errInvalidCursor
	}
	opt, r, ok := parseScanOptions(args[2:], true)
	if !ok {
		return r
	}
	var keys []string
	next := scanDict(&tx.ks.dbs[tx.DB].keys, cursor, opt.count, func(k string, e *entry) {
		if !opt.match(k) || e.expired(tx.Now) {
			return
		}
		// Unknown type names match nothing (Redis 7.0 does not reject them).
		if opt.typ != "" && !strings.EqualFold(opt.typ, e.Type().String()) {
			return
		}
		keys = append(keys, k)
	})
	return scanReply(next, keys)
}

func cmdRandomKey(tx *Tx, args [][]byte) Reply {
	d := &tx.ks.dbs[tx.DB].keys
	// Expired keys not yet removed are skipped, as Redis does; a read
	// cannot remove them, so after many misses fall back to a walk.
	for try := 0; try < 100; try++ {
		k, e, ok := d.Random(tx.Rand())
		if !ok {
			return Nil
		}
		if !e.expired(tx.Now) {
			return BulkString(k)
		}
	}
	n := len(d.slots)
	start := tx.Rand().Intn(n)
	for i := 0; i < n; i++ {
		if s := &d.slots[(start+i)%n]; s.used && !s.val.expired(tx.Now) {
			return BulkString(s.key)
		}
	}
	return Nil
}

func cmdDBSize(tx *Tx, args [][]byte) Reply {
	return Int(int64(tx.ks.dbs[tx.DB].keys.Len()))
}

func flushGeneric(tx *Tx, args [][]byte, kind EffectKind) Reply {
	if len(args) > 2 {
		return ErrSyntax
	}
	if len(args) == 2 {
		if m := lower(args[1]); m != "sync" && m != "async" {
			return ErrSyntax
		}
	}
	// An observed remove of every key: what a concurrent writer elsewhere
	// added unseen survives the flush.
	tx.Emit(Effect{Kind: kind})
	return OK
}

// objectHelp is OBJECT HELP's text, line for line as Redis 7.0 sends it.
var objectHelp = []string{
	"OBJECT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
	"ENCODING <key>",
	"    Return the kind of internal representation used in order to store the value",
	"    associated with a <key>.",
	"FREQ <key>",
	"    Return the access frequency index of the <key>. The returned integer is",
	"    proportional to the logarithm of the recent access frequency of the key.",
	"IDLETIME <key>",
	"    Return the idle time of the <key>, that is the approximated number of",
	"    seconds elapsed since the last access to the key.",
	"REFCOUNT <key>",
	"    Return the number of references of the value associated with the specified",
	"    <key>.",
	"HELP",
	"    Prints this help.",
}

// defaultEncodings name a type's encoding when its value does not say
// (the general-purpose encoding Redis falls back to for large values).
var defaultEncodings = map[ValueType]string{
	TypeString: "raw", TypeHash: "hashtable", TypeSet: "hashtable", TypeZSet: "skiplist",
}

func cmdObject(tx *Tx, args [][]byte) Reply {
	sub := lower(args[1])
	arity := map[string]int{"encoding": 3, "freq": 3, "idletime": 3, "refcount": 3, "help": 2}[sub]
	if arity == 0 {
		name := errText(args[1])
		if len(name) > 128 {
			name = name[:128]
		}
		return Err("ERR unknown subcommand '" + name + "'. Try OBJECT HELP.")
	}
	if len(args) != arity {
		return ErrArity("object|" + sub)
	}
	if sub == "help" {
		out := make([]Reply, len(objectHelp))
		for i, l := range objectHelp {
			out[i] = Status(l)
		}
		return Array(out...)
	}
	// OBJECT does not count as an access (Redis's LOOKUP_NOTOUCH), or
	// IDLETIME would always answer 0.
	e := tx.peekIn(tx.DB, args[2])
	if e == nil {
		return Nil
	}
	switch sub {
	case "encoding":
		v := e.visible()
		if enc, ok := v.(interface{ objectEncoding() string }); ok {
			return BulkString(enc.objectEncoding())
		}
		return BulkString(defaultEncodings[v.Type()])
	case "freq":
		// Concord does not evict (maxmemory-policy noeviction), so it
		// tracks no access frequency.
		return Err("ERR An LFU maxmemory policy is not selected, access frequency not tracked. " +
			"Please note that when switching between policies at runtime LRU and LFU data will take some time to adjust.")
	case "idletime":
		return Int(e.idleSeconds(tx.Now))
	default: // refcount
		if rc, ok := e.visible().(interface{ objectRefcount() int64 }); ok {
			return Int(rc.objectRefcount())
		}
		return Int(1)
	}
}
