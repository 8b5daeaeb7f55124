package crdt

import "sort"

// hashValue is a key of type hash. Each field holds the same content as a
// string key (numeric: LWW overwrites plus unobserved increments), so
// HINCRBY/HINCRBYFLOAT follow the counter rule and HSET the LWW rule. A
// field exists while any of its content survives; HDEL is an observed
// remove, so a concurrent HSET or HINCRBY of the field wins (add-wins).
//
// Fields live in a dict so HSCAN cursors are slot numbers that stay valid
// while the hash changes, and HGETALL/HRANDFIELD see a deterministic order.
type hashValue struct {
	fields dict[*numeric]
	// dirty holds exactly the fields compact or a fold op may fold (more
	// than one piece, or an increment: numeric.needsCompact), so solo-mode
	// compaction after each write costs O(changed fields) instead of O(hash
	// size), and the fold backlog is counted in O(1). It is derived state:
	// not encoded, and rebuilt by decode and join. Iterating it in map order
	// is harmless because each field compacts independently (fold ops sort
	// it).
	dirty map[string]struct{}
}

// Redis keeps a hash in a listpack while it has at most 512 fields and no
// field or value longer than 64 bytes (hash-max-listpack-entries/-value;
// 512 is Redis 7.0's compiled-in default and Debian's redis.conf value,
// unlike the sorted sets' 128).
const (
	hashMaxListpackEntries = 512
	hashMaxListpackValue   = 64
)

func init() {
	registerType(TypeHash, valueCodec{
		new:    func() value { return &hashValue{} },
		decode: decodeHash,
	})
}

func (h *hashValue) Type() ValueType { return TypeHash }

// get returns the visible value of a field.
func (h *hashValue) get(field []byte) ([]byte, bool) {
	if n, ok := h.fields.Get(string(field)); ok {
		return n.value(), true
	}
	return nil, false
}

// Len returns the number of fields.
func (h *hashValue) Len() int { return h.fields.Len() }

// each visits fields in slot order.
func (h *hashValue) each(fn func(field string, val []byte) bool) {
	h.fields.Each(func(k string, n *numeric) bool { return fn(k, n.value()) })
}

func (h *hashValue) apply(f *Effect, t Tag, c Context) {
	name := string(f.Field)
	n, ok := h.fields.Get(name)
	switch f.Kind {
	case EffHashSet, EffHashIncr:
		if !ok {
			n = &numeric{}
			h.fields.Set(name, n)
		}
		if f.Kind == EffHashSet {
			n.set(t, f.Value, c)
		} else {
			n.incr(t, deltaOf(f))
		}
	case EffHashDel:
		if !ok {
			return
		}
		n.removeObserved(c)
	default:
		return
	}
	h.settle(name, n)
}

// settle drops an emptied field and tracks whether it can be compacted.
func (h *hashValue) settle(name string, n *numeric) {
	switch {
	case n.empty():
		h.fields.Delete(name)
		delete(h.dirty, name)
	case n.needsCompact():
		if h.dirty == nil {
			h.dirty = make(map[string]struct{})
		}
		h.dirty[name] = struct{}{}
	default:
		delete(h.dirty, name)
	}
}

func (h *hashValue) removeObserved(c Context) {
	var names []string
	h.fields.Each(func(k string, _ *numeric) bool { names = append(names, k); return true })
	for _, k := range names {
		n, _ := h.fields.Get(k)
		n.removeObserved(c)
		h.settle(k, n)
	}
}

func (h *hashValue) empty() bool { return h.fields.Len() == 0 }

func (h *hashValue) maxTag() Tag {
	var t Tag
	h.fields.Each(func(_ string, n *numeric) bool {
		if u := n.maxTag(); u.After(t) {
			t = u
		}
		return true
	})
	return t
}

func (h *hashValue) join(mine VersionVector, other value, theirs VersionVector) {
	o := other.(*hashValue)
	seen := make(map[string]bool, h.fields.Len()+o.fields.Len())
	var names []string
	add := func(k string, _ *numeric) bool {
		if !seen[k] {
			seen[k] = true
			names = append(names, k)
		}
		return true
	}
	h.fields.Each(add)
	o.fields.Each(add)
	// Sorted, so fields new to h get the same slots on every replica that
	// joins the same states.
	sort.Strings(names)
	for _, k := range names {
		a, ok := h.fields.Get(k)
		if !ok {
			a = &numeric{}
		}
		b, ok := o.fields.Get(k)
		if !ok {
			b = &numeric{}
		}
		a.join(mine, b, theirs)
		if !a.empty() {
			h.fields.Set(k, a)
		}
		h.settle(k, a)
	}
}

func (h *hashValue) compact(stable VersionVector) {
	for k := range h.dirty {
		n, ok := h.fields.Get(k)
		if !ok {
			delete(h.dirty, k)
			continue
		}
		n.compact(stable)
		if !n.needsCompact() {
			delete(h.dirty, k)
		}
	}
}

// encode writes the fields sorted by name: the canonical form, independent
// of slot layout and apply order.
func (h *hashValue) encode(e *encoder) {
	names := make([]string, 0, h.fields.Len())
	h.fields.Each(func(k string, _ *numeric) bool { names = append(names, k); return true })
	sort.Strings(names)
	e.uvarint(uint64(len(names)))
	for _, k := range names {
		n, _ := h.fields.Get(k)
		e.str(k)
		n.encode(e)
	}
}

func decodeHash(d *decoder) value {
	h := &hashValue{}
	// A field takes at least 8 bytes: name length, two counts, one value.
	cnt := d.count(8)
	prev := ""
	for i := 0; i < cnt && d.err == nil; i++ {
		k := d.str()
		if i > 0 && k <= prev {
			d.fail()
			break
		}
		prev = k
		n := decodeNumeric(d)
		if n == nil {
			break
		}
		h.fields.Set(k, n)
		h.settle(k, n)
	}
	if d.err == nil && cnt == 0 {
		d.fail() // an empty hash is never stored
	}
	return h
}

// replay recreates the fields as fresh HSETs, in slot order.
func (h *hashValue) replay(emit func(Effect)) {
	h.fields.Each(func(k string, n *numeric) bool {
		emit(Effect{Kind: EffHashSet, Field: []byte(k), Value: n.value()})
		return true
	})
}

// objectEncoding reports the encoding Redis 7.0 would use for this content.
// (Redis never converts a hashtable back to a listpack when fields are
// deleted, and HINCRBYFLOAT can leave a long value in a listpack; that
// history is not kept.)
func (h *hashValue) objectEncoding() string {
	if h.isListpack() {
		return "listpack"
	}
	return "hashtable"
}

func (h *hashValue) isListpack() bool {
	if h.fields.Len() > hashMaxListpackEntries {
		return false
	}
	small := true
	h.fields.Each(func(k string, n *numeric) bool {
		small = len(k) <= hashMaxListpackValue && len(n.value()) <= hashMaxListpackValue
		return small
	})
	return small
}
