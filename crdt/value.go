package crdt

import (
	"fmt"
	"math"
	"strconv"
)

// ValueType is the Redis type of a key's content.
type ValueType uint8

// Value types. The numbers are part of the snapshot format.
const (
	TypeNone ValueType = iota
	TypeString
	TypeHash
	TypeSet
	TypeZSet
	TypeList   ValueType = 5
	TypeStream ValueType = 6
	// TypeHLL is a HyperLogLog: a sub-type of string (TYPE reports
	// "string") whose state merges register by register (hllvalue.go).
	TypeHLL ValueType = 7
	typeEnd ValueType = 8
)

var typeNames = [...]string{"none", "string", "hash", "set", "zset", "list", "stream"}

func (t ValueType) String() string {
	if t == TypeHLL {
		return "string"
	}
	if int(t) < len(typeNames) {
		return typeNames[t]
	}
	return fmt.Sprintf("type%d", t)
}

// ParseType maps a Redis type name (as SCAN TYPE takes it) to a ValueType.
func ParseType(name string) (ValueType, bool) {
	for i, n := range typeNames {
		if i > 0 && n == name {
			return ValueType(i), true
		}
	}
	return TypeNone, false
}

// value is the CRDT state of one type of content under one key. Each type
// lives in its own file (string.go, hash.go, set.go, zset.go) and registers
// a codec in init.
//
// Implementations must keep a canonical internal order (or canonicalise in
// encode) so equal states encode to equal bytes whatever order effects were
// applied in.
type value interface {
	Type() ValueType
	// apply applies one effect of this type with the op's tag and context.
	apply(f *Effect, t Tag, c Context)
	// removeObserved drops every piece of content c covers.
	removeObserved(c Context)
	// empty reports whether no content is left (the key then has no value
	// of this type).
	empty() bool
	// maxTag is the greatest tag of surviving content: the type-conflict
	// rule shows the type whose latest surviving write is newest.
	maxTag() Tag
	// join merges other (same type) into the receiver: content survives if
	// both hold it or the side lacking it never saw its dot.
	join(mine VersionVector, other value, theirs VersionVector)
	// encode appends the canonical encoding (snapshots and digests).
	encode(e *encoder)
	// replay calls emit with effects that recreate the visible content as
	// fresh writes (RENAME, COPY, MOVE, *STORE destinations). Key and DB
	// are filled in by the caller.
	replay(emit func(Effect))
}

// compacter is implemented by values that can fold metadata once it is
// causally stable (every region has seen it), e.g. a counter's increments
// into its base value. It must not change what reads return.
type compacter interface {
	compact(stable VersionVector)
}

// layoutCodec is implemented by values whose internal slot layout decides
// what a write does (SPOP picks a random slot). Snapshots carry the layout
// right after the value's canonical encoding so a node restored from one
// makes the same picks as its peers; digests leave it out, since replicas
// in different regions legitimately differ in layout.
type layoutCodec interface {
	encodeLayout(e *encoder)
	decodeLayout(d *decoder)
}

type valueCodec struct {
	new    func() value
	decode func(d *decoder) value
}

var codecs [typeEnd]valueCodec

// registerType is called from each value type's init.
func registerType(t ValueType, c valueCodec) { codecs[t] = c }

// effectTypes maps each per-key effect to the value type it acts on
// (TypeNone for effects that are not about one type's content).
var effectTypes = [effKindEnd]ValueType{
	EffStrSet: TypeString, EffStrIncr: TypeString,
	EffHashSet: TypeHash, EffHashIncr: TypeHash, EffHashDel: TypeHash,
	EffSetAdd: TypeSet, EffSetRem: TypeSet,
	EffZAdd: TypeZSet, EffZIncr: TypeZSet, EffZRem: TypeZSet,
	EffListInsert: TypeList, EffListRem: TypeList, EffListPop: TypeList, EffListSet: TypeList,
	EffXAdd: TypeStream, EffXDel: TypeStream, EffXTrim: TypeStream, EffXMeta: TypeStream,
	EffHLLAdd: TypeHLL, EffHLLSet: TypeHLL,
}

// removalOnly reports whether an effect kind only removes content; such an
// effect never creates a key.
func removalOnly(k EffectKind) bool {
	return k == EffHashDel || k == EffSetRem || k == EffZRem || k == EffDelKey ||
		k == EffListRem || k == EffListPop ||
		k == EffXDel || k == EffXTrim
}

// FormatDouble formats a float as Redis 7.0 replies with it (%.17g; inf and
// -inf spelled out).
func FormatDouble(f float64) string {
	switch {
	case math.IsInf(f, 1):
		return "inf"
	case math.IsInf(f, -1):
		return "-inf"
	}
	return strconv.FormatFloat(f, 'g', 17, 64)
}
