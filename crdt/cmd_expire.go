package crdt

import "math"

// TTL commands. A key's TTL is an LWW register that is part of its content:
// EXPIRE and PERSIST write it, DEL removes it with the rest of the key.
// Expiry itself is a deterministic function of the register and the op
// time; removal happens through a stamped write (the first write that meets
// the expired key, or the server's concord-expire sweep), never in a read.

func init() {
	register(
		&CommandSpec{Name: "expire", Arity: -3, Flags: []string{"fast"}, FirstKey: 1, LastKey: 1, Step: 1,
			Categories: []string{"keyspace", "write", "fast"}, Write: true,
			Run: func(tx *Tx, a [][]byte) Reply { return expireGeneric(tx, a, "expire", tx.Now, 1000) }},
		&CommandSpec{Name: "pexpire", Arity: -3, Flags: []string{"fast"}, FirstKey: 1, LastKey: 1, Step: 1,
			Categories: []string{"keyspace", "write", "fast"}, Write: true,
			Run: func(tx *Tx, a [][]byte) Reply { return expireGeneric(tx, a, "pexpire", tx.Now, 1) }},
		&CommandSpec{Name: "expireat", Arity: -3, Flags: []string{"fast"}, FirstKey: 1, LastKey: 1, Step: 1,
			Categories: []string{"keyspace", "write", "fast"}, Write: true,
			Run: func(tx *Tx, a [][]byte) Reply { return expireGeneric(tx, a, "expireat", 0, 1000) }},
		&CommandSpec{Name: "pexpireat", Arity: -3, Flags: []string{"fast"}, FirstKey: 1, LastKey: 1, Step: 1,
			Categories: []string{"keyspace", "write", "fast"}, Write: true,
			Run: func(tx *Tx, a [][]byte) Reply { return expireGeneric(tx, a, "pexpireat", 0, 1) }},
		&CommandSpec{Name: "ttl", Arity: 2, Flags: []string{"fast"}, FirstKey: 1, LastKey: 1, Step: 1,
			Categories: []string{"keyspace", "read", "fast"},
			Run:        func(tx *Tx, a [][]byte) Reply { return ttlGeneric(tx, a[1], false, false) }},
		&CommandSpec{Name: "pttl", Arity: 2, Flags: []string{"fast"}, FirstKey: 1, LastKey: 1, Step: 1,
			Categories: []string{"keyspace", "read", "fast"},
			Run:        func(tx *Tx, a [][]byte) Reply { return ttlGeneric(tx, a[1], true, false) }},
		&CommandSpec{Name: "expiretime", Arity: 2, Flags: []string{"fast"}, FirstKey: 1, LastKey: 1, Step: 1,
			Categories: []string{"keyspace", "read", "fast"},
			Run:        func(tx *Tx, a [][]byte) Reply { return ttlGeneric(tx, a[1], false, true) }},
		&CommandSpec{Name: "pexpiretime", Arity: 2, Flags: []string{"fast"}, FirstKey: 1, LastKey: 1, Step: 1,
			Categories: []string{"keyspace", "read", "fast"},
			Run:        func(tx *Tx, a [][]byte) Reply { return ttlGeneric(tx, a[1], true, true) }},
		&CommandSpec{Name: "persist", Arity: 2, Flags: []string{"fast"}, FirstKey: 1, LastKey: 1, Step: 1,
			Categories: []string{"keyspace", "write", "fast"}, Write: true, Run: cmdPersist},
		// The active-expiry sweep: the server proposes it with keys found
		// by Keyspace.SampleExpired. Clients cannot call it.
		&CommandSpec{Name: "concord-expire", Arity: -1, FirstKey: 1, LastKey: -1, Step: 1,
			Categories: []string{"keyspace", "write"}, Write: true, Internal: true, Run: cmdConcordExpire},
	)
}

// Option bits of EXPIRE and friends.
const (
	expireNX = 1 << iota
	expireXX
	expireGT
	expireLT
)

// expireGeneric implements EXPIRE, PEXPIRE, EXPIREAT and PEXPIREAT: the
// time argument times unitMs, plus baseMs (the op time for the relative
// forms). Checks run in Redis 7.0's order: options, then the number, then
// overflow, then the key.
func expireGeneric(tx *Tx, args [][]byte, name string, baseMs, unitMs int64) Reply {
	flags := 0
	for _, a := range args[3:] {
		switch lower(a) {
		case "nx":
			flags |= expireNX
		case "xx":
			flags |= expireXX
		case "gt":
			flags |= expireGT
		case "lt":
			flags |= expireLT
		default:
			return Err("ERR Unsupported option " + errText(a))
		}
	}
	if flags&expireNX != 0 && flags&(expireXX|expireGT|expireLT) != 0 {
		return Err("ERR NX and XX, GT or LT options at the same time are not compatible")
	}
	if flags&expireGT != 0 && flags&expireLT != 0 {
		return Err("ERR GT and LT options at the same time are not compatible")
	}
	when, ok := parseStrictInt(args[2])
	if !ok {
		return ErrNotInt
	}
	if unitMs != 1 {
		if when > math.MaxInt64/unitMs || when < math.MinInt64/unitMs {
			return ErrInvalidExpire(name)
		}
		when *= unitMs
	}
	if when > math.MaxInt64-baseMs {
		return ErrInvalidExpire(name)
	}
	when += baseMs

	key := args[1]
	e := tx.entry(key)
	if e == nil {
		return Int(0)
	}
	cur := e.ExpireAt() // 0: no TTL, which GT and LT treat as infinite
	switch {
	case flags&expireNX != 0 && cur != 0,
		flags&expireXX != 0 && cur == 0,
		flags&expireGT != 0 && (cur == 0 || when <= cur),
		flags&expireLT != 0 && cur != 0 && when >= cur:
		return Int(0)
	}
	if when <= tx.Now {
		// A time already past deletes the key at once, as in Redis.
		tx.Emit(Effect{Kind: EffDelKey, Key: key})
		return Int(1)
	}
	tx.Emit(Effect{Kind: EffExpire, Key: key, Int: when})
	return Int(1)
}

// ttlGeneric implements TTL (ms=false, abs=false), PTTL, EXPIRETIME and
// PEXPIRETIME: -2 for a missing key, -1 for one without a TTL; seconds are
// rounded to the nearest, as Redis does. It is not an access (TTL does not
// reset OBJECT IDLETIME in Redis).
func ttlGeneric(tx *Tx, key []byte, ms, abs bool) Reply {
	e := tx.peekIn(tx.DB, key)
	if e == nil {
		return Int(-2)
	}
	at := e.ExpireAt()
	if at == 0 {
		return Int(-1)
	}
	v := at
	if !abs {
		if v -= tx.Now; v < 0 {
			v = 0
		}
	}
	if !ms {
		// v >= 0 here; unsigned arithmetic keeps v+500 from overflowing
		// near the int64 limit (PEXPIREAT k 9223372036854775807), where
		// Redis answers the exact rounded value.
		v = int64((uint64(v) + 500) / 1000)
	}
	return Int(v)
}

func cmdPersist(tx *Tx, args [][]byte) Reply {
	e := tx.entry(args[1])
	if e == nil || e.ExpireAt() == 0 {
		return Int(0)
	}
	tx.Emit(Effect{Kind: EffExpire, Key: args[1], Int: 0})
	return Int(1)
}

// cmdConcordExpire removes each listed key of tx.DB that is expired at the
// op's time, with the same observed remove a write meeting the key would
// issue, and replies with how many it removed. Keys that are missing or
// live (a write gave them a new TTL since they were sampled) are left alone.
func cmdConcordExpire(tx *Tx, args [][]byte) Reply {
	n := 0
	for _, k := range args[1:] {
		if e, ok := tx.ks.dbs[tx.DB].keys.Get(string(k)); ok && e.expired(tx.Now) {
			tx.entry(k) // meets the expired key in a write: emits its removal
			n++
		}
	}
	return Int(int64(n))
}
