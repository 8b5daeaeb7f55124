package crdt

import (
	"errors"
	"math"
)

// DUMP and RESTORE, with Redis 7.0's payloads (rdb.go). DUMP is a read.
// RESTORE is a whole-key write (DESIGN §4): with REPLACE it observed-removes
// what the destination held, then writes the payload's content as fresh
// adds, exactly as COPY writes its destination, so concurrent writes to the
// key elsewhere merge by the usual rules of the restored type.

func init() {
	register(
		&CommandSpec{Name: "dump", Arity: 2, FirstKey: 1, LastKey: 1, Step: 1,
			Categories: []string{"keyspace", "read", "slow"}, Run: cmdDump},
		&CommandSpec{Name: "restore", Arity: -4, Flags: []string{"denyoom"}, FirstKey: 1, LastKey: 1, Step: 1,
			Categories: []string{"keyspace", "write", "slow", "dangerous"}, Write: true, Run: cmdRestore},
	)
}

var (
	errBusyKey     = Err("BUSYKEY Target key name already exists.")
	errDumpPayload = Err("ERR DUMP payload version or checksum are wrong")
	errBadFormat   = Err("ERR Bad data format")
)

func cmdDump(tx *Tx, args [][]byte) Reply {
	e := tx.entry(args[1])
	if e == nil {
		return Nil
	}
	p, err := rdbEncode(e.visible())
	if err != nil {
		return Err("ERR DUMP of " + err.Error())
	}
	return Reply{Kind: KindBulk, Str: p}
}

func cmdRestore(tx *Tx, args [][]byte) Reply {
	key := args[1]
	replace, absTTL := false, false
	idle, freq := int64(-1), int64(-1)
	// Options first, then the key, the TTL and the payload: the order in
	// which Redis 7.0 reports problems.
	for j := 4; j < len(args); j++ {
		more := j+1 < len(args)
		switch opt := lower(args[j]); {
		case opt == "replace":
			replace = true
		case opt == "absttl":
			absTTL = true
		case opt == "idletime" && more && freq == -1:
			v, ok := parseInt64(args[j+1])
			if !ok {
				return ErrNotInt
			}
			if v < 0 {
				return Err("ERR Invalid IDLETIME value, must be >= 0")
			}
			idle = v
			j++
		case opt == "freq" && more && idle == -1:
			v, ok := parseInt64(args[j+1])
			if !ok {
				return ErrNotInt
			}
			if v < 0 || v > 255 {
				return Err("ERR Invalid FREQ value, must be >= 0 and <= 255")
			}
			// Concord does not evict, so it keeps no LFU counter: FREQ is
			// validated and then ignored, as Redis ignores it under an LRU
			// or no-eviction policy.
			freq = v
			j++
		default:
			return ErrSyntax
		}
	}
	if !replace && tx.entry(key) != nil {
		return errBusyKey
	}
	ttl, ok := parseInt64(args[2])
	if !ok {
		return ErrNotInt
	}
	if ttl < 0 {
		return Err("ERR Invalid TTL value, must be >= 0")
	}
	o, err := rdbDecode(args[3])
	if err != nil {
		var u rdbUnsupported
		switch {
		case errors.Is(err, errRDBChecksum):
			return errDumpPayload
		case errors.As(err, &u):
			return Err("ERR Bad data format: " + u.Error() + " by Concord")
		}
		return errBadFormat
	}
	var effs []Effect
	if r, ok := o.effects(key, func(f Effect) { effs = append(effs, f) }); !ok {
		return r
	}
	if ttl > 0 && !absTTL {
		// Redis adds the relative TTL to the clock in C's wrapping
		// arithmetic; a sum past int64 is an expiry in the past.
		if ttl > math.MaxInt64-tx.Now {
			ttl = -1
		} else {
			ttl += tx.Now
		}
	}
	if replace {
		clearKey(tx, tx.DB, key)
	}
	if ttl != 0 && ttl <= tx.Now {
		// Already expired: Redis stores nothing (a REPLACE still deleted
		// the old key) and answers OK.
		return OK
	}
	for _, f := range effs {
		tx.Emit(f)
	}
	if ttl > 0 {
		tx.Emit(Effect{Kind: EffExpire, Key: key, Int: ttl})
	}
	if idle >= 0 {
		if e, ok := tx.ks.dbs[tx.DB].keys.Get(string(key)); ok {
			// Node-local access time, like every touch: OBJECT IDLETIME
			// then counts from the restored idle time.
			at := tx.Now - idle*1000
			if idle > (tx.Now-accessEpochMs)/1000 {
				at = accessEpochMs
			}
			e.atime.Store(accessSecs(at))
		}
	}
	return OK
}

// effects calls emit with the fresh writes that create o under key, or
// returns an error reply if Concord cannot hold o's type.
func (o *rdbObject) effects(key []byte, emit func(Effect)) (Reply, bool) {
	switch o.kind {
	case rdbString:
		emit(Effect{Kind: EffStrSet, Key: key, Value: o.str})
	case rdbSet:
		for _, m := range o.elems {
			emit(Effect{Kind: EffSetAdd, Key: key, Field: m})
		}
	case rdbHash:
		for i := 0; i+1 < len(o.pairs); i += 2 {
			emit(Effect{Kind: EffHashSet, Key: key, Field: o.pairs[i], Value: o.pairs[i+1]})
		}
	case rdbZSet:
		for i, m := range o.elems {
			emit(Effect{Kind: EffZAdd, Key: key, Field: m, Float: o.scores[i]})
		}
	case rdbList:
		f, ok := pushEffect(key, nil, false, o.elems)
		if !ok {
			return errListFull, false
		}
		emit(f)
	default:
		return Err("ERR Bad data format: " + o.kindName() + " values are not supported by Concord"), false
	}
	return Reply{}, true
}

func (o *rdbObject) kindName() string {
	return [...]string{"", "string", "set", "zset", "hash", "list"}[o.kind]
}
