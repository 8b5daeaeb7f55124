package crdt

// Detection of the conflict rules firing, for Stats. Nothing here changes
// state: apply asks before it applies an effect whether the effect meets
// content it did not observe, which is what makes a write concurrent
// rather than sequential (a write that observed a value replaces it with no
// conflict; a local write observes everything this replica holds, so
// conflicts are counted when the concurrent effect is merged).

// conflictChecker is implemented by values with last-writer-wins registers
// or add-wins elements.
type conflictChecker interface {
	// lwwConcurrent reports whether the write f, with context c, meets a
	// value in its register that c did not observe: LWW then picks between
	// concurrent writes (the write replaces it or loses to it).
	lwwConcurrent(f *Effect, c Context) bool
	// removeSurvived reports whether the observed-remove f, with context
	// c, leaves content c did not observe: a concurrent add (or write, or
	// increment) saves the element.
	removeSurvived(f *Effect, c Context) bool
}

// regUnobserved reports whether r holds a value c does not cover.
func regUnobserved[V any](r mvreg[V], c Context) bool {
	for _, x := range r {
		if !c.covers(x.Tag) {
			return true
		}
	}
	return false
}

func incsUnobserved[D any](l incList[D], c Context) bool {
	for _, x := range l {
		if !c.covers(x.Tag) {
			return true
		}
	}
	return false
}

// lwwUnobserved: the base register or the fold group standing for base
// values holds something c did not observe.
func (n *numeric) lwwUnobserved(c Context) bool {
	if regUnobserved(n.base, c) {
		return true
	}
	g := n.group()
	return g != nil && !g.removedBy(c)
}

func (n *numeric) removeSurvives(c Context) bool {
	return n.lwwUnobserved(c) || incsUnobserved(n.incs(), c)
}

func (s *strValue) lwwConcurrent(f *Effect, c Context) bool {
	return f.Kind == EffStrSet && s.numeric.lwwUnobserved(c)
}

func (s *strValue) removeSurvived(f *Effect, c Context) bool { return false }

func (h *hashValue) lwwConcurrent(f *Effect, c Context) bool {
	if f.Kind != EffHashSet {
		return false
	}
	n, ok := h.fields.Get(string(f.Field))
	return ok && n.lwwUnobserved(c)
}

func (h *hashValue) removeSurvived(f *Effect, c Context) bool {
	if f.Kind != EffHashDel {
		return false
	}
	n, ok := h.fields.Get(string(f.Field))
	return ok && n.removeSurvives(c)
}

func (z *zsetValue) lwwConcurrent(f *Effect, c Context) bool {
	if f.Kind != EffZAdd {
		return false
	}
	m, ok := z.members.Get(string(f.Field))
	return ok && (regUnobserved(m.base, c) || m.grp != nil && !m.grp.removedBy(c))
}

func (z *zsetValue) removeSurvived(f *Effect, c Context) bool {
	if f.Kind != EffZRem {
		return false
	}
	m, ok := z.members.Get(string(f.Field))
	return ok && (regUnobserved(m.base, c) || incsUnobserved(m.incs, c) || m.grp != nil && !m.grp.removedBy(c))
}

func (s *setValue) lwwConcurrent(f *Effect, c Context) bool { return false }

func (s *setValue) removeSurvived(f *Effect, c Context) bool {
	if f.Kind != EffSetRem {
		return false
	}
	i, ok := s.slot(f.Field)
	if !ok {
		return false
	}
	for _, t := range s.items.slots[i].val {
		if !c.covers(t) {
			return true
		}
	}
	return false
}

// awMark names a key an op already counted an add-wins conflict for.
type awMark struct {
	set bool
	db  uint8
	key string
}

func (ks *Keyspace) awCounted(f *Effect) bool {
	return ks.aw.set && ks.aw.db == f.DB && ks.aw.key == string(f.Key)
}
