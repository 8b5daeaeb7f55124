package crdt

import "strconv"

// Key versions for WATCH.
//
// Redis aborts an EXEC when a key its connection WATCHed was modified since
// the WATCH, by anyone (the connection itself included). Concord must decide
// this in apply, identically on every node of the region, so the decision
// rests on replicated state: a modification counter (mod) that every content
// change bumps, local or merged, deletion and expiry included. Each entry
// records the counter value of its latest change (entry.ver). A WATCH reads
// the counter (Keyspace.ModCount) in its read view, and the EXEC's unit
// starts with a guard (GuardCommand) that Apply evaluates first: a watched
// key changed after that value fails the guard, and the whole unit then
// produces no effect and EXEC answers a null array.
//
// An absent key has no entry to hold a version, yet a watched absent key
// that is created and deleted again before EXEC must abort, as in Redis. So
// removals of entries are remembered: the latest removal of each key, for
// the last removalCap removals. A removal that fell out of that window
// raises removalFloor; a key with no record is judged by the floor, which
// can only abort more often (never miss a change). In practice the window
// spans far more removals than a transaction lives through.
//
// Connections that never WATCH pay nothing beyond the counter bump on each
// change and a record per key removal; the guard costs one lookup per
// watched key.

// removalCap bounds the removal records kept (FIFO).
const removalCap = 4096

// wkey names a key of one database.
type wkey struct {
	db  uint8
	key string
}

// removal records the latest removal of a key's entry.
type removal struct {
	ver uint64 // counter value of the removal
	// prev is the entry's version just before the removal, and expired says
	// the entry had expired when it was removed: the removal was only the
	// expiry of content already invisible (see checkWatch).
	prev    uint64
	expired bool
}

type removalRing struct {
	key wkey
	ver uint64
}

// watchState is the replicated state behind key versions.
type watchState struct {
	mod     uint64
	removed map[wkey]removal
	ring    []removalRing // removals in order; head is the oldest
	head    int
	floor   uint64 // greatest version of a removal dropped from the ring
}

// ModCount returns the keyspace's modification counter: a WATCH records it,
// and GuardCommand compares watched keys' versions against it.
func (ks *Keyspace) ModCount() uint64 { return ks.w.mod }

// bumpEntry marks e as changed now. removed says the change removed the
// entry's content (the entry left the database); then prev and expired
// describe the entry before the change.
func (ks *Keyspace) bumpEntry(db uint8, e *entry, removed bool, prev uint64, expired bool) {
	ks.w.mod++
	e.ver = ks.w.mod
	if removed {
		ks.recordRemoval(wkey{db, e.key}, removal{ver: ks.w.mod, prev: prev, expired: expired})
	}
}

func (ks *Keyspace) recordRemoval(k wkey, r removal) {
	w := &ks.w
	if w.removed == nil {
		w.removed = make(map[wkey]removal)
	}
	w.removed[k] = r
	if len(w.ring) < removalCap {
		w.ring = append(w.ring, removalRing{k, r.ver})
		return
	}
	old := w.ring[w.head]
	if cur, ok := w.removed[old.key]; ok && cur.ver == old.ver {
		delete(w.removed, old.key)
	}
	if old.ver > w.floor {
		w.floor = old.ver
	}
	w.ring[w.head] = removalRing{k, r.ver}
	w.head = (w.head + 1) % removalCap
}

// Watch is one key a connection watches: the database, the key, the
// counter value its WATCH read (Keyspace.ModCount) and whether the key had
// expired (but was not removed yet) at that moment.
type Watch struct {
	DB      int
	Key     []byte
	Ver     uint64
	Expired bool
}

// WatchKey returns the Watch for key in database dbi read at nowMs, in the
// read view the WATCH runs in.
func (ks *Keyspace) WatchKey(dbi int, key []byte, nowMs int64) Watch {
	w := Watch{DB: dbi, Key: key, Ver: ks.w.mod}
	if e, ok := ks.dbs[dbi].keys.Get(string(key)); ok && e.expired(nowMs) {
		w.Expired = true
	}
	return w
}

// changed reports whether w's key changed since its WATCH, judged at nowMs
// as Redis 7.0 judges it: any write or removal after the WATCH counts, and
// so does a key that expired since (isWatchedKeyExpired); a key that had
// expired already at WATCH time does not count its own expiry (removing it
// is "no logical change"), only what comes after.
func (ks *Keyspace) changed(w Watch, nowMs int64) bool {
	if w.DB < 0 || w.DB >= NumDBs {
		return true
	}
	if e, ok := ks.dbs[w.DB].keys.Get(string(w.Key)); ok {
		if e.ver > w.Ver {
			return true
		}
		return !w.Expired && e.expired(nowMs)
	}
	r, ok := ks.w.removed[wkey{uint8(w.DB), string(w.Key)}]
	if !ok {
		return ks.w.floor > w.Ver
	}
	if r.ver <= w.Ver {
		return false
	}
	return !(w.Expired && r.expired && r.prev <= w.Ver)
}

// GuardName is the internal command a transaction's unit starts with when
// its connection WATCHes keys. Clients cannot send it (it is Internal).
const GuardName = "exec-guard"

// GuardCommand builds the guard for watches: Apply runs it first, and if a
// watched key changed, the unit's first reply is a null array and nothing
// else in the unit runs. Args: name, then db, key, version, expired (0/1)
// per watch.
func GuardCommand(ws []Watch) Command {
	args := make([][]byte, 0, 1+4*len(ws))
	args = append(args, []byte(GuardName))
	for _, w := range ws {
		exp := "0"
		if w.Expired {
			exp = "1"
		}
		args = append(args, []byte(strconv.Itoa(w.DB)), w.Key,
			[]byte(strconv.FormatUint(w.Ver, 10)), []byte(exp))
	}
	return Command{Args: args}
}

// GuardFailed reports whether a guard's reply says the unit was aborted.
func GuardFailed(r Reply) bool { return r.Kind == KindNilArray }

// cmdGuard evaluates a guard. It reads entries directly (not through the
// Tx) so that judging a watched key never removes it as a side effect.
func cmdGuard(tx *Tx, args [][]byte) Reply {
	if (len(args)-1)%4 != 0 {
		return ErrArity(GuardName)
	}
	for i := 1; i+3 < len(args); i += 4 {
		db, err1 := strconv.Atoi(string(args[i]))
		ver, err2 := strconv.ParseUint(string(args[i+2]), 10, 64)
		if err1 != nil || err2 != nil {
			return ErrSyntax
		}
		w := Watch{DB: db, Key: args[i+1], Ver: ver, Expired: string(args[i+3]) == "1"}
		if tx.ks.changed(w, tx.Now) {
			return NilArray
		}
	}
	return OK
}

func init() {
	register(&CommandSpec{Name: GuardName, Arity: -1, Flags: []string{"fast"},
		Categories: []string{"transaction"}, Write: true, Internal: true, Run: cmdGuard})
}

// encodeWatch appends the watch state (snapshots only: it is node-region
// state, not content, so digests leave it out).
func (ks *Keyspace) encodeWatch(e *encoder) {
	w := &ks.w
	e.uvarint(w.mod)
	e.uvarint(w.floor)
	e.uvarint(uint64(len(w.ring)))
	// Oldest first, so the restored ring evicts in the same order.
	for i := range w.ring {
		r := w.ring[(w.head+i)%len(w.ring)]
		cur, live := w.removed[r.key]
		e.byte1(r.key.db)
		e.str(r.key.key)
		e.uvarint(r.ver)
		if live && cur.ver == r.ver {
			e.byte1(1)
			e.uvarint(cur.prev)
			if cur.expired {
				e.byte1(1)
			} else {
				e.byte1(0)
			}
		} else {
			e.byte1(0) // superseded by a later removal of the same key
		}
	}
}

func (ks *Keyspace) decodeWatch(d *decoder) {
	w := &ks.w
	w.mod = d.uvarint()
	w.floor = d.uvarint()
	n := d.count(4)
	if n > removalCap {
		d.fail()
		return
	}
	for i := 0; i < n && d.err == nil; i++ {
		db := d.byte1()
		k := wkey{db, d.str()}
		ver := d.uvarint()
		if db >= NumDBs || ver > w.mod {
			d.fail()
			return
		}
		w.ring = append(w.ring, removalRing{k, ver})
		if d.byte1() == 1 {
			r := removal{ver: ver, prev: d.uvarint(), expired: d.byte1() == 1}
			if w.removed == nil {
				w.removed = make(map[wkey]removal)
			}
			w.removed[k] = r
		}
	}
}

// isGuard reports whether args are a guard command's.
func isGuard(args [][]byte) bool { return len(args) > 0 && string(args[0]) == GuardName }
