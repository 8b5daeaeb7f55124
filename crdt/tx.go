package crdt

import "strings"

// Tx is the context one command runs in: the database, the time, a
// deterministic random source and, for writes, the op being built. Command
// implementations read state through Tx and change it only through Emit, so
// a local write changes state by exactly the effects it ships.
type Tx struct {
	ks *Keyspace
	// DB is the database the command addresses.
	DB int
	// Now is the time in Unix ms that expiry is judged against: the op's
	// stamp for writes, the node's clock for reads.
	Now int64

	write  bool
	time   HLC
	rand   Rand
	batch  *Batch
	opOpen bool
	ctx    Context
	tag    Tag

	touched []*entry // entries written, for solo-mode compaction
}

// Keyspace returns the keyspace the command runs against.
func (tx *Tx) Keyspace() *Keyspace { return tx.ks }

// Writable reports whether the command runs in apply (and may Emit).
func (tx *Tx) Writable() bool { return tx.write }

// Rand returns the command's deterministic random source.
func (tx *Tx) Rand() *Rand { return &tx.rand }

// Time returns the op's HLC time (writes only).
func (tx *Tx) Time() HLC { return tx.time }

func (tx *Tx) run(args [][]byte) Reply {
	if len(args) == 0 {
		return Err("ERR empty command")
	}
	spec := Lookup(args[0])
	if spec == nil {
		return Err("ERR unknown command '" + string(args[0]) + "'")
	}
	if !spec.ArityOK(len(args)) {
		return ErrArity(spec.Name)
	}
	if spec.Write && !tx.write {
		return Err("ERR write command '" + spec.Name + "' outside apply")
	}
	if tx.DB < 0 || tx.DB >= NumDBs {
		return ErrDBIndex
	}
	return spec.Run(tx, args)
}

// Exec runs another command in the same op (SET inside GETSET-like helpers,
// or commands composed by a transaction).
func (tx *Tx) Exec(args ...[]byte) Reply { return tx.run(args) }

// entry returns the key's entry in database dbi, or nil if it is missing
// or, judged at tx.Now, expired. In a write, an expired key met on the way is
// removed first by an observed-remove effect, so every replica removes the
// same content.
func (tx *Tx) entryIn(dbi int, key []byte) *entry {
	e := tx.peekIn(dbi, key)
	if e != nil {
		e.touch(tx.Now)
	}
	return e
}

// peekIn is entryIn without recording an access (Redis's LOOKUP_NOTOUCH:
// TYPE, TTL, EXISTS and OBJECT leave OBJECT IDLETIME alone).
func (tx *Tx) peekIn(dbi int, key []byte) *entry {
	e, ok := tx.ks.dbs[dbi].keys.Get(string(key))
	if !ok {
		return nil
	}
	if e.expired(tx.Now) {
		if tx.write {
			tx.emitIn(dbi, Effect{Kind: EffDelKey, Key: key})
			tx.ks.Stats.ExpiredKeys++
		}
		return nil
	}
	return e
}

func (tx *Tx) entry(key []byte) *entry { return tx.entryIn(tx.DB, key) }

// Exists reports whether key holds content.
func (tx *Tx) Exists(key []byte) bool { return tx.entry(key) != nil }

// TypeOf returns the visible type of key (TypeNone if missing).
func (tx *Tx) TypeOf(key []byte) ValueType {
	if e := tx.entry(key); e != nil {
		return e.Type()
	}
	return TypeNone
}

// ExpireAt returns key's expiry in Unix ms (0 if persistent or missing).
func (tx *Tx) ExpireAt(key []byte) int64 {
	if e := tx.entry(key); e != nil {
		return e.ExpireAt()
	}
	return 0
}

// lookup returns the visible value of key if it has type t. ok is false
// (with a WRONGTYPE reply) if the key holds another type; v is nil if the
// key is missing.
func (tx *Tx) lookup(key []byte, t ValueType) (v value, errReply Reply, ok bool) {
	e := tx.entry(key)
	if e == nil {
		return nil, Reply{}, true
	}
	if e.Type() != t {
		return nil, ErrWrongType, false
	}
	return e.visible(), Reply{}, true
}

// Emit applies an effect to database tx.DB as part of this command's op
// and records it for replication. Effect.DB is overwritten.
func (tx *Tx) Emit(f Effect) { tx.emitIn(tx.DB, f) }

// EmitIn is Emit for another database (MOVE, COPY ... DB).
func (tx *Tx) EmitIn(dbi int, f Effect) { tx.emitIn(dbi, f) }

// EmitQuiet is Emit for an effect that changes nothing a Redis client could
// see, so that Redis would not count it as modifying the key (SADD of a
// member already there: the effect is only a fresh tag for add-wins): it
// leaves the key's WATCH version alone. Other regions that merge it do
// count it, as they cannot tell.
func (tx *Tx) EmitQuiet(f Effect) {
	tx.ks.quiet = true
	tx.emitIn(tx.DB, f)
	tx.ks.quiet = false
}

func (tx *Tx) emitIn(dbi int, f Effect) {
	if !tx.write {
		panic("crdt: Emit outside apply")
	}
	ks := tx.ks
	tx.newKeyTTL(dbi, &f)
	if f.Kind == EffDelKey {
		if e, ok := ks.dbs[dbi].keys.Get(string(f.Key)); ok && e.value(TypeHLL) != nil {
			f.Flags |= FlagHLLDel // delete wins over concurrent PFADDs (hlldel.go)
		}
	}
	if !tx.opOpen {
		if tx.batch == nil {
			tx.batch = newBatch(ks)
		}
		seq := ks.vv.Get(ks.self) + 1
		tx.ctx = Context{Deps: tx.batch.Deps, Origin: ks.self, Upto: seq - 1}
		tx.tag = Tag{Time: tx.time, Dot: Dot{Origin: ks.self, Seq: seq}}
		tx.batch.Ops = append(tx.batch.Ops, Op{Time: tx.time})
		ks.vv = ks.vv.Set(ks.self, seq)
		tx.opOpen = true
	}
	f.DB = uint8(dbi)
	op := &tx.batch.Ops[len(tx.batch.Ops)-1]
	if op.Effects == nil && len(tx.batch.Ops) == 1 {
		op.Effects = tx.batch.effs[:0:len(tx.batch.effs)]
	}
	op.Effects = append(op.Effects, f)
	if e := ks.applyEffect(&op.Effects[len(op.Effects)-1], tx.tag, tx.ctx); e != nil && ks.solo {
		tx.touched = append(tx.touched, e)
	}
}

// newBatch starts the batch of a local write. Most commands produce one op
// with one or two effects, so those live in the same allocation.
func newBatch(ks *Keyspace) *Batch {
	b := &Batch{Origin: ks.self, FirstSeq: ks.vv.Get(ks.self) + 1}
	if n := len(ks.vv); n > 1 || n == 1 && ks.vv[0].Origin != ks.self {
		b.Deps = make(VersionVector, 0, n)
		for _, e := range ks.vv {
			if e.Origin != ks.self {
				b.Deps = append(b.Deps, e)
			}
		}
	}
	b.Ops = b.ops[:0:1]
	return b
}

// newKeyTTL: a write that finds its key absent starts a new key, and a new
// Redis key has no TTL. A ghost TTL register left for the key (an EXPIRE
// concurrent with the removal of its content, see db.ghosts) must not attach
// to it, and KEEPTTL has nothing to keep, so the first effect of an op on
// such a key observed-removes the ghost.
func (tx *Tx) newKeyTTL(dbi int, f *Effect) {
	d := &tx.ks.dbs[dbi]
	// Ghosts exist only after concurrent cross-region writes: keep the
	// common path free of lookups and allocations.
	if len(d.ghosts) == 0 || f.Key == nil || f.Kind == EffExpire || (removalOnly(f.Kind) && f.Kind != EffDelKey) {
		return
	}
	if _, ghost := d.ghosts[string(f.Key)]; !ghost {
		return
	}
	key := string(f.Key)
	if _, ok := d.keys.Get(key); ok {
		return
	}
	if tx.opOpen {
		for _, e := range tx.batch.Ops[len(tx.batch.Ops)-1].Effects {
			if int(e.DB) == dbi && string(e.Key) == key {
				return // the op itself removed the content (SET ... KEEPTTL)
			}
		}
	}
	if f.Kind == EffDelKey {
		f.Flags &^= FlagKeepTTL
		return
	}
	tx.emitIn(dbi, Effect{Kind: EffDelKey, Key: f.Key})
}

// lower returns an ASCII-lowercased copy (option parsing).
func lower(b []byte) string { return strings.ToLower(string(b)) }
