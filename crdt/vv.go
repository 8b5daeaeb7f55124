package crdt

import "sort"

// VersionVector maps each origin to the highest sequence number applied from
// it. Because each origin's ops are applied contiguously, it describes
// exactly which dots a state has seen. It is kept sorted by origin so that
// iteration and encoding are deterministic; the number of origins is small.
type VersionVector []VVEntry

// VVEntry is one origin's position in a VersionVector.
type VVEntry struct {
	Origin Origin
	Seq    uint64
}

// Get returns the sequence number applied from o (0 if none).
func (v VersionVector) Get(o Origin) uint64 {
	for _, e := range v {
		if e.Origin == o {
			return e.Seq
		}
	}
	return 0
}

// Covers reports whether the dot d has been seen.
func (v VersionVector) Covers(d Dot) bool { return d.Seq != 0 && v.Get(d.Origin) >= d.Seq }

// Set returns v with o's position set to seq.
func (v VersionVector) Set(o Origin, seq uint64) VersionVector {
	i := sort.Search(len(v), func(i int) bool { return v[i].Origin.Compare(o) >= 0 })
	if i < len(v) && v[i].Origin == o {
		v[i].Seq = seq
		return v
	}
	v = append(v, VVEntry{})
	copy(v[i+1:], v[i:])
	v[i] = VVEntry{Origin: o, Seq: seq}
	return v
}

// Clone returns a copy that shares no memory with v.
func (v VersionVector) Clone() VersionVector {
	if v == nil {
		return nil
	}
	return append(VersionVector(nil), v...)
}

// Merge returns the pointwise maximum of v and w (v is modified).
func (v VersionVector) Merge(w VersionVector) VersionVector {
	for _, e := range w {
		if e.Seq > v.Get(e.Origin) {
			v = v.Set(e.Origin, e.Seq)
		}
	}
	return v
}

// Dominates reports whether v has seen everything w has.
func (v VersionVector) Dominates(w VersionVector) bool {
	for _, e := range w {
		if v.Get(e.Origin) < e.Seq {
			return false
		}
	}
	return true
}

// Equal reports whether v and w hold the same positions (zeros ignored).
func (v VersionVector) Equal(w VersionVector) bool { return v.Dominates(w) && w.Dominates(v) }

// Context is the causal context of one op: what its origin had seen when it
// ran. An observed-remove issued by the op drops exactly the tags the context
// covers. For op number seq of origin o, the context is the batch's deps plus
// o's own earlier ops.
type Context struct {
	Deps   VersionVector
	Origin Origin
	Upto   uint64 // ops of Origin seen: those with Seq <= Upto
}

// Covers reports whether the op that owns c had seen the dot d.
func (c Context) Covers(d Dot) bool {
	if d.Origin == c.Origin {
		return d.Seq <= c.Upto
	}
	return c.Deps.Covers(d)
}

// covers is a tag-level shorthand.
func (c Context) covers(t Tag) bool { return c.Covers(t.Dot) }

// vvContext views a whole state's version vector as a context (used by Join).
func vvContext(v VersionVector) Context { return Context{Deps: v} }
