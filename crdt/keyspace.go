package crdt

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"sort"
	"sync/atomic"
)

// entry is one key's state: its content (one value per type, usually one)
// and its TTL register.
type entry struct {
	key  string
	vals []value // non-empty values, at most one per type, sorted by type
	// one backs vals for the usual single-type key, saving an allocation
	// and a pointer hop on every lookup; a second type moves vals to the heap.
	one  [1]value
	ttlp *mvreg[int64] // expiry in Unix ms, 0 = persistent; nil for most keys
	// atime is the node-local last access (OBJECT IDLETIME), see expire.go.
	// Not replicated state: never encoded, digested or joined.
	atime atomic.Uint32
	// unf is how many of its items hold unfolded pieces, as last counted
	// by trackUnfolded (fold.go). Derived, node-local state.
	unf uint32
	// ver is the keyspace modification counter at the entry's latest
	// change (watch.go). Region-replicated: in snapshots, not in digests.
	ver uint64
}

// Type returns the visible type: the only one, or on a cross-region type
// conflict the one whose newest surviving write is latest.
func (e *entry) Type() ValueType {
	if len(e.vals) == 1 {
		return e.vals[0].Type()
	}
	var best value
	var bt Tag
	for _, v := range e.vals {
		if t := v.maxTag(); best == nil || t.After(bt) {
			best, bt = v, t
		}
	}
	if best == nil {
		return TypeNone
	}
	return best.Type()
}

// visible returns the value of the visible type.
func (e *entry) visible() value {
	t := e.Type()
	for _, v := range e.vals {
		if v.Type() == t {
			return v
		}
	}
	return nil
}

func (e *entry) value(t ValueType) value {
	for _, v := range e.vals {
		if v.Type() == t {
			return v
		}
	}
	return nil
}

func (e *entry) valueOrNew(t ValueType) value {
	if v := e.value(t); v != nil {
		return v
	}
	v := codecs[t].new()
	e.addValue(v)
	return v
}

// addValue adds a value of a type the entry does not hold yet.
func (e *entry) addValue(v value) {
	if len(e.vals) == 0 {
		e.one[0] = v
		e.vals = e.one[:1:1]
		return
	}
	e.vals = append(e.vals, v)
	sort.Slice(e.vals, func(i, j int) bool { return e.vals[i].Type() < e.vals[j].Type() })
}

// prune drops empty values.
func (e *entry) prune() {
	out := e.vals[:0]
	for _, v := range e.vals {
		if !v.empty() {
			out = append(out, v)
		}
	}
	e.vals = out
}

// ttl returns the TTL register (nil if the key never had one).
func (e *entry) ttl() mvreg[int64] {
	if e.ttlp == nil {
		return nil
	}
	return *e.ttlp
}

// setTTL stores the TTL register; keys without one pay a nil pointer only.
func (e *entry) setTTL(r mvreg[int64]) {
	switch {
	case len(r) == 0:
		e.ttlp = nil
	case e.ttlp == nil:
		e.ttlp = &r
	default:
		*e.ttlp = r
	}
}

// ExpireAt returns the visible expiry (Unix ms), 0 if the key is persistent.
func (e *entry) ExpireAt() int64 {
	if w, ok := e.ttl().winner(); ok {
		return w.Val
	}
	return 0
}

func (e *entry) expired(nowMs int64) bool {
	at := e.ExpireAt()
	return at > 0 && at <= nowMs
}

// db is one logical database. keys holds keys with content; ghosts holds TTL
// registers of keys whose content was removed concurrently with a TTL write:
// that TTL must be kept (it applies if content comes back through a write
// that had seen it) until it is causally stable.
type db struct {
	keys   dict[*entry]
	ghosts map[string]mvreg[int64]
	// expires indexes the keys of keys that have a TTL (active expiry
	// samples it; INFO reports its size). Derived, node-local state.
	expires dict[*entry]
	// unfolded holds the keys whose content a fold op could shrink (see
	// fold.go); not maintained in solo mode. Derived, node-local state.
	unfolded map[string]struct{}
	// hllDels holds the tombstones of HLL removals (hlldel.go), sorted
	// by dot per key.
	hllDels map[string][]hllTomb
}

// Stats counts events where a conflict rule fired. They are not replicated
// state: each node counts what its own applies saw.
type Stats struct {
	TypeConflicts uint64 // a key came to hold content of two types
	// LWWConflicts counts writes to a last-writer-wins register (a string
	// SET, a hash field's value, a sorted-set score, a TTL) that met a
	// value the write had not observed: concurrent writes, one of which
	// wins. Sequential overwrites are not counted.
	LWWConflicts uint64
	// AddWinsConflicts counts observed-removes (DEL, HDEL, SREM, ZREM)
	// that left content they had not observed: a concurrent add or write
	// saved the key or element. Counted where the remove is applied after
	// that add (a replica that applies the remove first sees nothing to
	// save), so regions may count differently.
	AddWinsConflicts uint64
	// DeleteWinsConflicts counts HyperLogLog writes a removal beat
	// without having seen them (hlldel.go): a PFADD dropped on arrival
	// because a concurrent DEL came first, or HLL content a concurrent
	// DEL cleared.
	DeleteWinsConflicts uint64
	ExpiredKeys         uint64 // keys removed because their TTL passed
	// ListConcurrentPops counts list elements a merged pop (LPOP, RPOP,
	// LMPOP, LMOVE, RPOPLPUSH) found already removed by a concurrent op:
	// the element was returned by more than one region (at-least-once).
	// Each region counts the pops it merges, so one double pop is
	// typically counted once in each of the two regions.
	ListConcurrentPops uint64
	BatchesMerged      uint64
	BatchesSkip        uint64 // duplicates skipped
}

// Keyspace is the state machine of one replica: 16 databases of CRDT
// values, the version vector of what it has applied and the HLC of its
// latest op. It is not safe for concurrent use; callers serialise Apply,
// Merge and Join and may run reads concurrently with each other only.
type Keyspace struct {
	self Origin
	solo bool
	vv   VersionVector
	last HLC
	dbs  [NumDBs]db

	Stats Stats

	applyTx Tx // scratch for Apply, reused to keep allocations off the write path

	// aw is the key whose element-level remove the current op counted as
	// an add-wins conflict (conflict.go). Stats only, not state.
	aw awMark

	// unfolded counts the items (string values, hash fields, zset members)
	// holding unfolded pieces: the fold backlog, see Unfolded.
	unfolded int

	// scripts is the region's script cache, sha1 hex -> body (script.go).
	scripts     map[string][]byte
	scriptBytes int64
	// w holds the key versions WATCH relies on (watch.go); quiet makes
	// applyEffect leave them alone for an effect Redis would not count as
	// a modification (Tx.EmitQuiet).
	w     watchState
	quiet bool
	// onWrite is the WriteHook (nil: none). Node-local, not state.
	onWrite func(db int, key string)
}

// SetWriteHook registers fn to be told, inside Apply, Merge and Join, about
// keys that writes gave content to: local and merged effects alike, so a
// node learns of data that became available whoever wrote it (blocked
// clients wait for that). fn(db, key) follows every effect that added to a
// key's content; fn(-1, "") means any key may have changed (a state
// transfer joined). fn runs under the caller's write serialisation: it must
// be quick, must not block and must not call back into the keyspace. It is
// not replicated state: set it again on a restored keyspace.
func (ks *Keyspace) SetWriteHook(fn func(db int, key string)) { ks.onWrite = fn }

// Options configures a Keyspace.
type Options struct {
	// Solo declares that no other origin exists (a single region). Every
	// write is then causally stable at once, and counters fold their
	// increments into their value as they go instead of keeping them.
	Solo bool
}

// NewKeyspace returns an empty keyspace whose local writes carry origin self.
func NewKeyspace(self Origin, opts Options) *Keyspace {
	return &Keyspace{self: self, solo: opts.Solo}
}

// SetSolo changes whether the keyspace is the only origin. A region that
// gains peer regions must stop folding increments (they are no longer
// stable at once); folded values simply act as plain writes afterwards. A
// snapshot records the flag, so a restored keyspace needs it set again from
// configuration.
func (ks *Keyspace) SetSolo(solo bool) {
	if ks.solo && !solo {
		ks.rebuildUnfolded() // solo mode does not keep the fold candidates
	}
	ks.solo = solo
}

// Solo reports whether the keyspace is the only origin.
func (ks *Keyspace) Solo() bool { return ks.solo }

// Origin returns the origin local writes are tagged with.
func (ks *Keyspace) Origin() Origin { return ks.self }

// Version returns a copy of the version vector.
func (ks *Keyspace) Version() VersionVector { return ks.vv.Clone() }

// LastTime returns the HLC time of the latest applied op. A new leader
// stamps above it so last-writer-wins never goes backwards.
func (ks *Keyspace) LastTime() HLC { return ks.last }

// DBSize returns the number of keys with content in database i (keys whose
// TTL passed count until removed, as in Redis).
func (ks *Keyspace) DBSize(i int) int { return ks.dbs[i].keys.Len() }

// KeysWithTTL counts keys in database i that have an expiry.
func (ks *Keyspace) KeysWithTTL(i int) int {
	n := 0
	ks.dbs[i].keys.Each(func(_ string, e *entry) bool {
		if e.ExpireAt() > 0 {
			n++
		}
		return true
	})
	return n
}

// Command is one client command as the server received it.
type Command struct {
	DB   int
	Args [][]byte
}

// Apply runs commands as one atomic unit with the leader's stamp and returns
// a reply per command plus the effects they produced (nil if none). It is
// deterministic: a pure function of the keyspace and its arguments.
// The batch's effects may alias the commands' argument memory: encode it
// (Batch.Encode) before the caller reuses those buffers.
// If the first command is a guard (GuardCommand) that fails, Apply stops
// there: the guard's reply is a null array, the other replies are zero and
// there is no batch.
func (ks *Keyspace) Apply(st Stamp, cmds []Command) ([]Reply, *Batch) {
	replies := make([]Reply, len(cmds))
	var b *Batch
	tx := &ks.applyTx // Apply is serialised, so one Tx is reused
	for i, cmd := range cmds {
		t := st.Time
		if t <= ks.last {
			t = ks.last + 1
		}
		ks.last = t
		*tx = Tx{ks: ks, DB: cmd.DB, Now: t.Millis(), write: true, time: t,
			rand: Rand{s: st.Seed ^ uint64(i)*0x9e3779b97f4a7c15}, batch: b,
			touched: tx.touched[:0]}
		replies[i] = tx.run(cmd.Args)
		b = tx.batch
		if i == 0 && GuardFailed(replies[0]) && isGuard(cmd.Args) {
			// A watched key changed: the transaction does nothing. The
			// guard emits no effect, so there is nothing to undo.
			return replies, nil
		}
		if ks.solo && tx.opOpen {
			for _, e := range tx.touched {
				for _, v := range e.vals {
					if c, ok := v.(compacter); ok {
						c.compact(ks.vv)
					}
				}
				ks.recountUnfolded(e)
			}
		}
		clear(tx.touched) // drop references to entries
	}
	return replies, b
}

// Read runs a read-only command at wall-clock time nowMs (used only to hide
// expired keys) with seed for commands that pick at random.
func (ks *Keyspace) Read(dbi int, nowMs int64, seed uint64, args [][]byte) Reply {
	tx := Tx{ks: ks, DB: dbi, Now: nowMs, rand: Rand{s: seed}}
	return tx.run(args)
}

// Merge errors.
var (
	ErrGap      = errors.New("crdt: batch does not follow the origin's last applied op")
	ErrNotReady = errors.New("crdt: batch depends on ops not applied yet")
	ErrOwnBatch = errors.New("crdt: batch from this replica's own origin")
)

// Merge applies a batch produced by another origin. A batch already covered
// by the version vector is skipped (nil error); one that skips ahead returns
// ErrGap and one whose dependencies are missing returns ErrNotReady; neither
// changes state.
func (ks *Keyspace) Merge(b *Batch) error {
	if b.Origin == ks.self {
		return ErrOwnBatch
	}
	have := ks.vv.Get(b.Origin)
	if b.LastSeq() <= have && testFault != faultNonIdempotent {
		ks.Stats.BatchesSkip++
		return nil
	}
	if b.FirstSeq != have+1 && b.LastSeq() > have {
		return fmt.Errorf("%w: origin %s at %d, batch starts at %d", ErrGap, b.Origin, have, b.FirstSeq)
	}
	for _, d := range b.Deps {
		if d.Origin != b.Origin && ks.vv.Get(d.Origin) < d.Seq {
			return fmt.Errorf("%w: needs %s:%d, have %d", ErrNotReady, d.Origin, d.Seq, ks.vv.Get(d.Origin))
		}
	}
	for i := range b.Ops {
		t, c := b.Tag(i), b.Context(i)
		ks.aw = awMark{}
		for j := range b.Ops[i].Effects {
			ks.applyEffect(&b.Ops[i].Effects[j], t, c)
		}
		if t.Time > ks.last {
			ks.last = t.Time
		}
	}
	if b.LastSeq() > have { // always, unless testFault re-applied a duplicate
		ks.vv = ks.vv.Set(b.Origin, b.LastSeq())
	}
	ks.Stats.BatchesMerged++
	return nil
}

// applyEffect is the single place where content changes, for local and
// remote writes alike.
// It returns the entry the effect wrote (nil if none).
func (ks *Keyspace) applyEffect(f *Effect, t Tag, c Context) *entry {
	switch f.Kind {
	case EffFold:
		return ks.applyFold(f, c)
	case EffFlushAll:
		for i := range ks.dbs {
			ks.flushDB(i, c, t.Time.Millis())
		}
		return nil
	case EffFlushDB:
		ks.flushDB(int(f.DB), c, t.Time.Millis())
		return nil
	}
	d := &ks.dbs[f.DB]
	if (f.Kind == EffHLLAdd || f.Kind == EffHLLSet) && len(d.hllDels) > 0 &&
		hllCancelled(d.hllDels[string(f.Key)], t, c) {
		ks.Stats.DeleteWinsConflicts++
		return nil // delete wins (hlldel.go)
	}
	if f.Kind == EffDelKey && f.Flags&FlagHLLDel != 0 && !ks.solo { // solo: nothing can be concurrent
		d.addHLLTomb(string(f.Key), t, c)
	}
	e, ok := d.keys.Get(string(f.Key))
	var prevVer uint64
	wasExpired := false
	if ok {
		prevVer = e.ver
		wasExpired = e.ttlp != nil && e.expired(t.Time.Millis())
	}
	if !ok {
		key := string(f.Key)
		if removalOnly(f.Kind) {
			countListPops(&ks.Stats, f, nil)
			if f.Kind == EffDelKey && f.Flags&FlagKeepTTL == 0 {
				ks.removeGhostTTL(d, key, c)
			}
			return nil
		}
		if f.Kind == EffExpire {
			// The content this TTL was written for is gone here (removed
			// concurrently); keep the register so every replica holds it.
			g := d.ghosts[key].write(t, f.Int, c)
			if d.ghosts == nil {
				d.ghosts = make(map[string]mvreg[int64])
			}
			d.ghosts[key] = g
			return nil
		}
		e = &entry{key: key}
		e.touch(t.Time.Millis())
		if g, ok := d.ghosts[key]; ok {
			e.setTTL(g)
			delete(d.ghosts, key)
		}
	}
	added := false // a content effect: blocked clients may be served
	switch f.Kind {
	case EffDelKey:
		survived := false
		for _, v := range e.vals {
			if h, ok := v.(*hllValue); ok && f.Flags&FlagHLLDel != 0 {
				if h.unobserved(c) {
					ks.Stats.DeleteWinsConflicts++
				}
				h.clear()
				continue
			}
			v.removeObserved(c)
			survived = survived || !v.empty()
		}
		// SREM/HDEL/ZREM of the last element also deletes the key: one
		// conflict, already counted for the element.
		if survived && !ks.awCounted(f) {
			ks.Stats.AddWinsConflicts++
		}
		if f.Flags&FlagKeepTTL == 0 {
			e.setTTL(e.ttl().remove(c))
		}
	case EffExpire:
		if regUnobserved(e.ttl(), c) {
			ks.Stats.LWWConflicts++
		}
		e.setTTL(e.ttl().write(t, f.Int, c))
	default:
		var typ ValueType
		if f.Kind < effKindEnd {
			typ = effectTypes[f.Kind]
		}
		if typ == TypeNone {
			panic(fmt.Sprintf("crdt: effect kind %d has no value type", f.Kind))
		}
		before := len(e.vals)
		v := e.valueOrNew(typ)
		countListPops(&ks.Stats, f, v)
		if cc, ok := v.(conflictChecker); ok {
			if cc.lwwConcurrent(f, c) {
				ks.Stats.LWWConflicts++
			} else if cc.removeSurvived(f, c) {
				ks.Stats.AddWinsConflicts++
				ks.aw = awMark{set: true, db: f.DB, key: string(f.Key)}
			}
		}
		v.apply(f, t, c)
		if before > 0 && len(e.vals) > before {
			e.prune()
			if len(e.vals) > 1 {
				ks.Stats.TypeConflicts++
			}
		}
		added = true
	}
	e.prune()
	ks.store(d, e)
	if removed := len(e.vals) == 0; !ks.quiet || !ok || removed {
		ks.bumpEntry(f.DB, e, removed && ok, prevVer, wasExpired)
	}
	if added && ks.onWrite != nil && len(e.vals) > 0 {
		ks.onWrite(int(f.DB), e.key)
	}
	return e
}

// store puts e back in d, or moves it out if it has no content left.
func (ks *Keyspace) store(d *db, e *entry) {
	d.trackExpire(e)
	ks.trackUnfolded(d, e)
	if len(e.vals) > 0 {
		if _, ok := d.keys.Get(e.key); !ok {
			d.keys.Set(e.key, e)
		}
		return
	}
	d.keys.Delete(e.key)
	if len(e.ttl()) > 0 {
		if d.ghosts == nil {
			d.ghosts = make(map[string]mvreg[int64])
		}
		d.ghosts[e.key] = e.ttl()
	}
}

func (ks *Keyspace) removeGhostTTL(d *db, key string, c Context) {
	if g, ok := d.ghosts[key]; ok {
		if g = g.remove(c); len(g) == 0 {
			delete(d.ghosts, key)
		} else {
			d.ghosts[key] = g
		}
	}
}

// flushDB removes database i's observed content; nowMs (the op's time)
// tells which keys were expired already, for WATCH (watch.go).
func (ks *Keyspace) flushDB(i int, c Context, nowMs int64) {
	d := &ks.dbs[i]
	var all []*entry
	d.keys.Each(func(_ string, e *entry) bool { all = append(all, e); return true })
	for _, e := range all {
		prev, expired := e.ver, e.ttlp != nil && e.expired(nowMs)
		for _, v := range e.vals {
			v.removeObserved(c)
		}
		e.setTTL(e.ttl().remove(c))
		e.prune()
		ks.store(d, e)
		ks.bumpEntry(uint8(i), e, len(e.vals) == 0, prev, expired)
	}
	for k := range d.ghosts {
		ks.removeGhostTTL(d, k, c)
	}
}

// Join merges another replica's whole state into ks (state transfer). It is
// commutative, associative and idempotent over states.
func (ks *Keyspace) Join(o *Keyspace) {
	mine, theirs := ks.vv.Clone(), o.vv
	for i := range ks.dbs {
		d, od := &ks.dbs[i], &o.dbs[i]
		keys := map[string]bool{}
		d.keys.Each(func(k string, _ *entry) bool { keys[k] = true; return true })
		od.keys.Each(func(k string, _ *entry) bool { keys[k] = true; return true })
		for k := range d.ghosts {
			keys[k] = true
		}
		for k := range od.ghosts {
			keys[k] = true
		}
		for k := range d.hllDels {
			keys[k] = true
		}
		for k := range od.hllDels {
			keys[k] = true
		}
		names := make([]string, 0, len(keys))
		for k := range keys {
			names = append(names, k)
		}
		sort.Strings(names) // deterministic slot assignment for new keys
		for _, k := range names {
			_, existed := d.keys.Get(k)
			a := ks.takeEntry(d, k)
			prev := a.ver
			b := o.peekEntry(od, k)
			a.setTTL(a.ttl().join(mine, b.ttl(), theirs))
			// Delete wins: HLL content of a side that had not seen a
			// removal the other side holds goes.
			if h, ok := a.value(TypeHLL).(*hllValue); ok && hllUnseen(od.hllDels[k], mine) {
				h.clear()
				ks.Stats.DeleteWinsConflicts++
			}
			bHLLGone := hllUnseen(d.hllDels[k], theirs)
			if bHLLGone && b.value(TypeHLL) != nil {
				ks.Stats.DeleteWinsConflicts++
			}
			d.joinHLLTombs(k, mine, od.hllDels[k], theirs)
			for t := TypeString; t < typeEnd; t++ {
				av, bv := a.value(t), b.value(t)
				if t == TypeHLL && bHLLGone {
					bv = nil
				}
				if av == nil && bv == nil {
					continue
				}
				if av == nil {
					av = a.valueOrNew(t)
				}
				if bv == nil {
					bv = codecs[t].new()
				}
				av.join(mine, bv, theirs)
			}
			a.prune()
			if len(a.vals) > 1 {
				ks.Stats.TypeConflicts++
			}
			// Every key the transfer visits counts as changed for WATCH:
			// telling which ones really changed would cost a comparison of
			// their contents, and a transfer is rare.
			if len(a.vals) == 0 && len(a.ttl()) == 0 {
				ks.trackUnfolded(d, a)
				d.keys.Delete(k)
				d.expires.Delete(k)
				delete(d.ghosts, k)
				if existed {
					ks.bumpEntry(uint8(i), a, true, prev, false)
				}
				continue
			}
			delete(d.ghosts, k)
			ks.store(d, a)
			if existed || len(a.vals) > 0 {
				ks.bumpEntry(uint8(i), a, existed && len(a.vals) == 0, prev, false)
			}
		}
	}
	ks.vv = ks.vv.Merge(theirs)
	if o.last > ks.last {
		ks.last = o.last
	}
	if ks.onWrite != nil {
		ks.onWrite(-1, "")
	}
}

// takeEntry returns ks's entry for key (from keys or ghosts), creating an
// empty one; the caller stores it back.
func (ks *Keyspace) takeEntry(d *db, key string) *entry {
	if e, ok := d.keys.Get(key); ok {
		return e
	}
	e := &entry{key: key}
	e.setTTL(d.ghosts[key])
	return e
}

// peekEntry returns o's entry for key without modifying o (a fresh empty
// entry if o has none).
func (ks *Keyspace) peekEntry(d *db, key string) *entry {
	if e, ok := d.keys.Get(key); ok {
		return e
	}
	e := &entry{key: key}
	e.setTTL(d.ghosts[key])
	return e
}

// snapshotFormat versions the snapshot encoding. Format 2 added fold groups
// (fold.go) and sorts increments by tag; format 3 adds key versions for
// WATCH; format 4 adds HLL tombstones (hlldel.go) after each database's
// ghosts. Restore still reads formats 1 to 3.
const (
	snapshotFormat       = 4
	snapshotFormatLegacy = 1
	// snapshotFormatNoVer is format 2, before key versions (watch.go):
	// format 3 adds each entry's version and the watch state.
	snapshotFormatNoVer = 2
	// snapshotFormatNoHLL is format 3, before HLL tombstones.
	snapshotFormatNoHLL = 3
)

// Snapshot returns the whole state's encoding. Keys are written in slot
// order with their slot numbers, so a restored node keeps SCAN cursors and
// random choices identical to the node it came from.
func (ks *Keyspace) Snapshot() []byte {
	n := 0
	for i := range ks.dbs {
		n += ks.dbs[i].keys.Len()
	}
	// Growing the buffer by doubling copies it over and over; start near
	// the final size (small keys take about 90 bytes).
	e := &encoder{b: make([]byte, 0, 128*n+1024)}
	e.byte1(snapshotFormat)
	e.origin(ks.self)
	if ks.solo {
		e.byte1(1)
	} else {
		e.byte1(0)
	}
	ks.encodeState(e, true)
	ks.encodeScripts(e)
	return e.b
}

// Digest returns a hash of the replicated state: every key's content and
// causal metadata and the version vector. Replicas that applied the same
// effects have equal digests whatever their origin or apply order. The HLC
// high-water mark is left out: it is a per-region clock (a write that
// changed nothing still advances it) and not part of what converges.
func (ks *Keyspace) Digest() [32]byte {
	e := &encoder{}
	ks.encodeState(e, false)
	return sha256.Sum256(e.b)
}

// DBDigest returns a hash of database i's replicated state: its keys'
// content and causal metadata and its ghost TTLs, without the version
// vector (which belongs to the whole keyspace). Replicas that applied the
// same effects have equal digests for every database; effects that touched
// only database i change only its digest. It walks and sorts the
// database's keys: O(keys) time and a copy of the key names.
func (ks *Keyspace) DBDigest(i int) [32]byte {
	e := &encoder{}
	ks.encodeDB(e, i, false)
	return sha256.Sum256(e.b)
}

// DBEmpty reports whether database i holds no replicated state at all (no
// keys, no TTLs kept for removed content, no HLL tombstones).
func (ks *Keyspace) DBEmpty(i int) bool {
	return ks.dbs[i].keys.Len() == 0 && len(ks.dbs[i].ghosts) == 0 && len(ks.dbs[i].hllDels) == 0
}

func (ks *Keyspace) encodeState(e *encoder, snapshot bool) {
	e.vv(ks.vv)
	if snapshot {
		e.uvarint(uint64(ks.last))
	}
	for i := range ks.dbs {
		ks.encodeDB(e, i, snapshot)
	}
	if snapshot {
		ks.encodeWatch(e)
	}
}

func (ks *Keyspace) encodeDB(e *encoder, i int, snapshot bool) {
	d := &ks.dbs[i]
	e.uvarint(uint64(d.keys.Len()))
	encodeEntry := func(k string, slot int32, ent *entry) {
		e.str(k)
		if snapshot {
			e.uvarint(uint64(slot))
			e.uvarint(ent.ver)
		}
		encodeTTL(e, ent.ttl())
		e.uvarint(uint64(len(ent.vals)))
		for _, v := range ent.vals {
			e.byte1(byte(v.Type()))
			v.encode(e)
			if l, ok := v.(layoutCodec); ok && snapshot {
				l.encodeLayout(e)
			}
		}
	}
	if snapshot {
		// Slot order: no sort and no lookups, which keeps the time
		// apply waits for a snapshot short. Restore places keys by
		// slot, so the order does not matter to it.
		for slot := range d.keys.slots {
			if s := &d.keys.slots[slot]; s.used {
				encodeEntry(s.key, int32(slot), s.val)
			}
		}
	} else {
		names := make([]string, 0, d.keys.Len())
		d.keys.Each(func(k string, _ *entry) bool { names = append(names, k); return true })
		sort.Strings(names)
		for _, k := range names {
			ent, _ := d.keys.Get(k)
			encodeEntry(k, 0, ent)
		}
	}
	if snapshot {
		// The free-slot stack decides where the next keys go; with it
		// a restored node's SCAN cursors and RANDOMKEY picks match.
		e.uvarint(uint64(len(d.keys.free)))
		for _, f := range d.keys.free {
			e.uvarint(uint64(f))
		}
	}
	ghosts := make([]string, 0, len(d.ghosts))
	for k := range d.ghosts {
		ghosts = append(ghosts, k)
	}
	sort.Strings(ghosts)
	e.uvarint(uint64(len(ghosts)))
	for _, k := range ghosts {
		e.str(k)
		encodeTTL(e, d.ghosts[k])
	}
	// HLL tombstones (format 3). Digests of databases without any stay
	// what they were before tombstones existed.
	if snapshot || len(d.hllDels) > 0 {
		tk := make([]string, 0, len(d.hllDels))
		for k := range d.hllDels {
			tk = append(tk, k)
		}
		sort.Strings(tk)
		e.uvarint(uint64(len(tk)))
		for _, k := range tk {
			e.str(k)
			e.hllTombs(d.hllDels[k])
		}
	}
}

func encodeTTL(e *encoder, r mvreg[int64]) {
	e.uvarint(uint64(len(r)))
	for _, x := range r {
		e.tag(x.Tag)
		e.varint(x.Val)
	}
}

func decodeTTL(d *decoder) mvreg[int64] {
	n := d.count(5)
	var r mvreg[int64]
	for i := 0; i < n && d.err == nil; i++ {
		t := d.tag()
		r = append(r, regVal[int64]{Tag: t, Val: d.varint()})
	}
	return r
}

// Restore decodes a snapshot made by Snapshot.
func Restore(src []byte) (*Keyspace, error) {
	d := &decoder{b: src}
	v := d.byte1()
	if d.err == nil && v != snapshotFormat && v != snapshotFormatNoHLL && v != snapshotFormatNoVer && v != snapshotFormatLegacy {
		return nil, ErrFormat
	}
	withTombs := v == snapshotFormat
	d.legacy = v == snapshotFormatLegacy
	versions := v == snapshotFormat || v == snapshotFormatNoHLL
	ks := &Keyspace{self: d.origin()}
	ks.solo = d.byte1() == 1
	ks.vv = d.vv()
	ks.last = HLC(d.uvarint())
	for i := range ks.dbs {
		db := &ks.dbs[i]
		n := d.count(4)
		type placed struct {
			slot int
			e    *entry
		}
		var ents []placed
		maxSlot := -1
		for j := 0; j < n && d.err == nil; j++ {
			ent := &entry{key: d.str()}
			slot := int(d.u32())
			if versions {
				ent.ver = d.uvarint()
			}
			ent.setTTL(decodeTTL(d))
			m := d.count(2)
			if m == 0 {
				d.fail() // a key without content is never stored
			}
			for k := 0; k < m && d.err == nil; k++ {
				t := ValueType(d.byte1())
				if t == TypeNone || t >= typeEnd || codecs[t].decode == nil ||
					k > 0 && t <= ent.vals[k-1].Type() {
					d.fail() // values are sorted by type, one per type
					break
				}
				v := codecs[t].decode(d)
				if l, ok := v.(layoutCodec); ok {
					l.decodeLayout(d)
				}
				if d.err == nil && v.empty() {
					d.fail()
				}
				ent.addValue(v)
			}
			if slot > maxSlot {
				maxSlot = slot
			}
			ents = append(ents, placed{slot, ent})
		}
		if d.err != nil {
			return nil, d.err
		}
		if maxSlot >= 4*n+1024 {
			return nil, ErrCorrupt
		}
		// Rebuild the dict with the original slot numbers.
		if n > 0 {
			db.keys.index = make(map[string]dictRef[*entry], n)
			db.keys.slots = make([]dictSlot[*entry], maxSlot+1)
			for _, p := range ents {
				if _, dup := db.keys.index[p.e.key]; dup || db.keys.slots[p.slot].used {
					return nil, ErrCorrupt
				}
				db.keys.slots[p.slot] = dictSlot[*entry]{key: p.e.key, val: p.e, used: true}
				db.keys.index[p.e.key] = dictRef[*entry]{val: p.e, slot: int32(p.slot)}
			}
			db.keys.Each(func(_ string, e *entry) bool {
				db.trackExpire(e)
				ks.trackUnfolded(db, e)
				return true
			})
		}
		// The free stack must name exactly the unused slots.
		nf := d.count(1)
		if d.err == nil && nf != len(db.keys.slots)-n {
			return nil, ErrCorrupt
		}
		seen := make(map[int32]bool, nf)
		for j := 0; j < nf && d.err == nil; j++ {
			f := int32(d.u32())
			if int(f) >= len(db.keys.slots) || db.keys.slots[f].used || seen[f] {
				return nil, ErrCorrupt
			}
			seen[f] = true
			db.keys.free = append(db.keys.free, f)
		}
		g := d.count(2)
		for j := 0; j < g && d.err == nil; j++ {
			k := d.str()
			if db.ghosts == nil {
				db.ghosts = map[string]mvreg[int64]{}
			}
			_, live := db.keys.index[k]
			_, dup := db.ghosts[k]
			if db.ghosts[k] = decodeTTL(d); live || dup || len(db.ghosts[k]) == 0 {
				d.fail() // a ghost is the TTL of a key without content
			}
		}
		if withTombs {
			nt := d.count(2)
			prev := ""
			for j := 0; j < nt && d.err == nil; j++ {
				k := d.str()
				ts := decodeHLLTombs(d)
				if j > 0 && k <= prev {
					d.fail() // sorted, one entry per key
				}
				prev = k
				if db.hllDels == nil {
					db.hllDels = map[string][]hllTomb{}
				}
				db.hllDels[k] = ts
			}
		}
	}
	if versions {
		ks.decodeWatch(d)
		for i := range ks.dbs {
			ks.dbs[i].keys.Each(func(_ string, e *entry) bool {
				if e.ver > ks.w.mod {
					d.fail() // versions are counter values already issued
				}
				return true
			})
		}
	}
	ks.decodeScripts(d)
	if d.err != nil {
		return nil, d.err
	}
	if len(d.b) != 0 {
		return nil, ErrCorrupt
	}
	return ks, nil
}
