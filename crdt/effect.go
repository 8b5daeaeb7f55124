package crdt

import (
	"errors"
	"fmt"
)

// EffectKind identifies what an Effect does. Values are part of the wire and
// log format: never renumber, only append.
type EffectKind uint8

const (
	// EffDelKey observed-removes a key's content of every type, and its TTL
	// unless FlagKeepTTL is set.
	EffDelKey EffectKind = iota + 1
	// EffStrSet overwrites a string: observed-remove of the string's value
	// and increments, then Value written with the op's tag.
	EffStrSet
	// EffStrIncr adds an increment to a string counter: Int, or with
	// FlagFloat the float increment text in Value.
	EffStrIncr
	// EffExpire writes the key's TTL register: Int is the absolute expiry in
	// Unix milliseconds, 0 means persistent.
	EffExpire
	// EffHashSet writes hash field Field := Value (observed-remove of the
	// field's previous value and increments).
	EffHashSet
	// EffHashIncr adds an increment to hash field Field (Int, or FlagFloat
	// with the increment text in Value).
	EffHashIncr
	// EffHashDel observed-removes hash field Field.
	EffHashDel
	// EffSetAdd adds member Field to a set (add-wins).
	EffSetAdd
	// EffSetRem observed-removes member Field from a set.
	EffSetRem
	// EffZAdd adds member Field with score Float (the score is an LWW write
	// that removes observed increments).
	EffZAdd
	// EffZIncr adds Float to member Field's score (creating it if needed).
	EffZIncr
	// EffZRem observed-removes member Field from a sorted set.
	EffZRem
	// EffFlushDB observed-removes every key of database DB.
	EffFlushDB
	// EffFlushAll observed-removes every key of every database.
	EffFlushAll
	// EffFold replaces a causally stable prefix of one item's pieces (base
	// values, increments and an earlier fold group) by one fold group,
	// without changing what reads return (fold.go). Int is the value type
	// (TypeString, TypeHash with the hash field in Field, TypeZSet with the
	// member in Field); Value holds the fold's threshold tag and the
	// stable vector it was computed from (encodeFoldValue).
	EffFold

	// List effects (list.go). A position is a component count and the
	// components (n, dot, sub).
	//
	// EffListInsert inserts the elements packed in Value at positions
	// prefix + (n, op dot, i*Int) for the i-th element; Field holds the
	// prefix and n, Int is the direction (1 or -1).
	EffListInsert EffectKind = 16
	// EffListRem removes the elements at the positions packed in Value
	// (LREM, LTRIM).
	EffListRem EffectKind = 17
	// EffListPop is EffListRem for elements a pop returned to a client:
	// finding one already gone reveals a concurrent pop (Stats).
	EffListPop EffectKind = 18
	// EffListSet writes Value as the element at position Field (LWW).
	EffListSet EffectKind = 19

	// Kinds 20-23 are streams (stream.go).
	// EffXAdd adds stream entry Field (a 16-byte ID) with the field list
	// in Value (encodeStreamFields).
	EffXAdd EffectKind = 20
	// EffXDel observed-removes stream entry Field.
	EffXDel EffectKind = 21
	// EffXTrim observed-removes every stream entry with an ID up to Field.
	EffXTrim EffectKind = 22
	// EffXMeta writes the op's origin's stream metadata record (Value:
	// encodeStreamMeta); with Int 1 (XSETID) it first removes the records
	// of every origin the op had seen.
	EffXMeta EffectKind = 23

	// EffHLLAdd (24) is one PFADD, PFMERGE or cache-filling PFCOUNT on a
	// HyperLogLog: Value holds the register raises it made (3 bytes each:
	// register little endian, count), Int its hllFlag* bits.
	EffHLLAdd EffectKind = 24
	// EffHLLSet (25) writes a HyperLogLog's whole bytes (Value, a valid
	// HLL): observed-remove of its previous history, then Value as base.
	EffHLLSet EffectKind = 25

	effKindEnd EffectKind = 26 // first unused value
)

// Effect flags.
const (
	FlagKeepTTL uint8 = 1 << iota // EffDelKey: leave the TTL register alone
	FlagFloat                     // *Incr: the increment is a float in Value
	// FlagHLLDel (EffDelKey): the removing op held HLL content under the
	// key, so the removal wins over concurrent HLL writes (hlldel.go).
	FlagHLLDel
)

// NumDBs is the number of logical databases, as in Redis.
const NumDBs = 16

// Effect is one CRDT delta on one key (or database). It is applied with the
// Tag and Context of the op that produced it.
type Effect struct {
	Kind  EffectKind
	Flags uint8
	DB    uint8
	Key   []byte
	Field []byte // hash field or set/zset member
	Value []byte
	Int   int64
	Float float64
}

func (e *Effect) String() string {
	return fmt.Sprintf("{%d db=%d key=%q field=%q value=%q int=%d float=%g flags=%d}",
		e.Kind, e.DB, e.Key, e.Field, e.Value, e.Int, e.Float, e.Flags)
}

// Op is one write operation's effects. Its dot is (Batch.Origin,
// Batch.FirstSeq + index) and its tag carries Time.
type Op struct {
	Time    HLC
	Effects []Effect
}

// Batch is what one stamped command (or one transaction) produced at its
// origin: the unit of replication, applied atomically everywhere.
type Batch struct {
	Origin   Origin
	FirstSeq uint64
	// Deps is the origin's version vector before the batch, without the
	// origin's own entry; a receiver may apply the batch only once it has
	// seen all of Deps (causal delivery).
	Deps VersionVector
	Ops  []Op

	ops  [1]Op     // backing for the common one-op batch
	effs [2]Effect // backing for its first effects
}

// LastSeq is the sequence number of the batch's last op.
func (b *Batch) LastSeq() uint64 { return b.FirstSeq + uint64(len(b.Ops)) - 1 }

// Tag returns the tag of op i.
func (b *Batch) Tag(i int) Tag {
	return Tag{Time: b.Ops[i].Time, Dot: Dot{Origin: b.Origin, Seq: b.FirstSeq + uint64(i)}}
}

// Context returns the causal context of op i: what its origin had seen.
func (b *Batch) Context(i int) Context {
	return Context{Deps: b.Deps, Origin: b.Origin, Upto: b.FirstSeq + uint64(i) - 1}
}

// batchFormat versions the batch encoding. Decoders accept every version
// they know; encoders write the newest.
const batchFormat = 1

// Encode appends the batch's binary form to dst.
func (b *Batch) Encode(dst []byte) []byte {
	e := encoder{b: dst}
	e.byte1(batchFormat)
	e.origin(b.Origin)
	e.uvarint(b.FirstSeq)
	e.vv(b.Deps)
	e.uvarint(uint64(len(b.Ops)))
	var prev HLC
	for _, op := range b.Ops {
		e.uvarint(uint64(op.Time - prev)) // times strictly increase within a batch
		prev = op.Time
		e.uvarint(uint64(len(op.Effects)))
		for i := range op.Effects {
			encodeEffect(&e, &op.Effects[i])
		}
	}
	return e.b
}

func encodeEffect(e *encoder, f *Effect) {
	e.byte1(byte(f.Kind))
	e.byte1(f.Flags)
	e.byte1(f.DB)
	switch f.Kind {
	case EffFlushAll:
		return
	case EffFlushDB:
		return
	}
	e.bytes(f.Key)
	switch f.Kind {
	case EffDelKey:
	case EffStrSet:
		e.bytes(f.Value)
	case EffStrIncr:
		if f.Flags&FlagFloat != 0 {
			e.bytes(f.Value)
		} else {
			e.varint(f.Int)
		}
	case EffExpire:
		e.varint(f.Int)
	case EffHashSet:
		e.bytes(f.Field)
		e.bytes(f.Value)
	case EffHashIncr:
		e.bytes(f.Field)
		if f.Flags&FlagFloat != 0 {
			e.bytes(f.Value)
		} else {
			e.varint(f.Int)
		}
	case EffHashDel, EffSetAdd, EffSetRem, EffZRem:
		e.bytes(f.Field)
	case EffZAdd, EffZIncr:
		e.bytes(f.Field)
		e.float(f.Float)
	case EffFold:
		e.bytes(f.Field)
		e.varint(f.Int)
		e.bytes(f.Value)
	case EffListInsert:
		e.bytes(f.Field)
		e.varint(f.Int)
		e.bytes(f.Value)
	case EffListRem, EffListPop:
		e.bytes(f.Value)
	case EffListSet:
		e.bytes(f.Field)
		e.bytes(f.Value)
	case EffXAdd, EffXDel, EffXTrim:
		e.bytes(f.Field)
		e.bytes(f.Value)
	case EffXMeta:
		e.bytes(f.Value)
		e.varint(f.Int)
	case EffHLLAdd:
		e.varint(f.Int)
		e.bytes(f.Value)
	case EffHLLSet:
		e.bytes(f.Value)
	default:
		panic(fmt.Sprintf("crdt: encoding unknown effect kind %d", f.Kind))
	}
}

// Decoding errors.
var (
	ErrFormat = errors.New("crdt: unknown batch format version")
	ErrEffect = errors.New("crdt: invalid effect")
)

// DecodeBatch parses a batch. It rejects unknown versions, unknown effect
// kinds, invalid databases and trailing bytes; it never panics.
func DecodeBatch(src []byte) (*Batch, error) {
	d := decoder{b: src}
	if v := d.byte1(); d.err == nil && v != batchFormat {
		return nil, ErrFormat
	}
	b := &Batch{}
	b.Origin = d.origin()
	b.FirstSeq = d.uvarint()
	b.Deps = d.vv()
	n := d.count(2)
	if d.err == nil && (n == 0 || b.FirstSeq == 0 || b.FirstSeq+uint64(n) < b.FirstSeq) {
		return nil, ErrCorrupt
	}
	b.Ops = make([]Op, 0, n)
	var t HLC
	for i := 0; i < n && d.err == nil; i++ {
		dt := d.uvarint()
		if i > 0 && dt == 0 || HLC(dt)+t < t {
			return nil, ErrCorrupt
		}
		t += HLC(dt)
		m := d.count(3)
		op := Op{Time: t, Effects: make([]Effect, 0, m)}
		for j := 0; j < m && d.err == nil; j++ {
			f, err := decodeEffect(&d)
			if err != nil {
				return nil, err
			}
			op.Effects = append(op.Effects, f)
		}
		b.Ops = append(b.Ops, op)
	}
	if d.err != nil {
		return nil, d.err
	}
	if len(d.b) != 0 {
		return nil, ErrCorrupt
	}
	for _, e := range b.Deps {
		if e.Origin == b.Origin {
			return nil, ErrCorrupt
		}
	}
	return b, nil
}

func decodeEffect(d *decoder) (Effect, error) {
	var f Effect
	f.Kind = EffectKind(d.byte1())
	f.Flags = d.byte1()
	f.DB = d.byte1()
	if d.err != nil {
		return f, d.err
	}
	if f.Kind == 0 || f.Kind >= effKindEnd || f.DB >= NumDBs || f.Flags&^(FlagKeepTTL|FlagFloat|FlagHLLDel) != 0 {
		return f, ErrEffect
	}
	if f.Kind == EffFlushAll || f.Kind == EffFlushDB {
		return f, nil
	}
	f.Key = d.bytes()
	switch f.Kind {
	case EffDelKey:
	case EffStrSet:
		f.Value = d.bytes()
	case EffStrIncr:
		if f.Flags&FlagFloat != 0 {
			f.Value = d.bytes()
		} else {
			f.Int = d.varint()
		}
	case EffExpire:
		f.Int = d.varint()
	case EffHashSet:
		f.Field = d.bytes()
		f.Value = d.bytes()
	case EffHashIncr:
		f.Field = d.bytes()
		if f.Flags&FlagFloat != 0 {
			f.Value = d.bytes()
		} else {
			f.Int = d.varint()
		}
	case EffHashDel, EffSetAdd, EffSetRem, EffZRem:
		f.Field = d.bytes()
	case EffZAdd, EffZIncr:
		f.Field = d.bytes()
		f.Float = d.float()
	case EffFold:
		f.Field = d.bytes()
		f.Int = d.varint()
		f.Value = d.bytes()
		if d.err == nil && !validFoldEffect(&f) {
			return f, ErrEffect
		}
	case EffListInsert:
		f.Field = d.bytes()
		f.Int = d.varint()
		f.Value = d.bytes()
	case EffListRem, EffListPop:
		f.Value = d.bytes()
	case EffListSet:
		f.Field = d.bytes()
		f.Value = d.bytes()
	case EffXAdd, EffXDel, EffXTrim, EffXMeta:
		if f.Kind == EffXMeta {
			f.Value = d.bytes()
			f.Int = d.varint()
		} else {
			f.Field = d.bytes()
			f.Value = d.bytes()
		}
		if d.err == nil && !validStreamEffect(&f) {
			return f, ErrEffect
		}
	case EffHLLAdd:
		f.Int = d.varint()
		f.Value = d.bytes()
		if d.err == nil && (f.Int&^hllFlagsAll != 0 || !validHLLRegs(f.Value)) {
			return f, ErrEffect
		}
	case EffHLLSet:
		f.Value = d.bytes()
		if d.err == nil && !hllValid(f.Value) {
			return f, ErrEffect
		}
	default:
		// A number below effKindEnd that no case knows is an unassigned
		// one (kinds are allocated in ranges): reject it like an unknown.
		return f, ErrEffect
	}
	if d.err == nil && effectTypes[f.Kind] == TypeList && !validListEffect(&f) {
		return f, ErrEffect
	}
	if d.err == nil && !validEffect(&f) {
		return f, ErrEffect
	}
	return f, d.err
}

// BatchHeader reads a batch encoding's origin and sequence range without
// decoding its effects, so a receiver can skip a batch it already holds
// cheaply. It validates only what it reads.
func BatchHeader(src []byte) (origin Origin, first, last uint64, err error) {
	d := decoder{b: src}
	if v := d.byte1(); d.err == nil && v != batchFormat {
		return Origin{}, 0, 0, ErrFormat
	}
	origin = d.origin()
	first = d.uvarint()
	d.vv()
	n := d.count(2)
	if d.err != nil {
		return Origin{}, 0, 0, d.err
	}
	if n == 0 || first == 0 || first+uint64(n) < first {
		return Origin{}, 0, 0, ErrCorrupt
	}
	return origin, first, first + uint64(n) - 1, nil
}
