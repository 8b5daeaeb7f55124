package crdt

// dict is a map with stable slot numbers, used for a database's keys and for
// large collections. A slot number stays with its key until the key is
// deleted, which gives SCAN-style cursors Redis's guarantee: an element
// present for the whole iteration is returned. Freed slots are reused; only
// trailing free slots are released, because moving an element to a lower
// slot could hide it from a cursor that already passed that slot.
type dict[V any] struct {
	// index holds the value itself as well as the slot, so a lookup is one
	// map probe with no further pointer to chase.
	index map[string]dictRef[V]
	slots []dictSlot[V]
	free  []int32
}

type dictRef[V any] struct {
	val  V
	slot int32
}

type dictSlot[V any] struct {
	key  string
	val  V
	used bool
}

func (d *dict[V]) Len() int { return len(d.index) }

func (d *dict[V]) Get(key string) (V, bool) {
	r, ok := d.index[key]
	return r.val, ok
}

// slotOf returns key's slot.
func (d *dict[V]) slotOf(key string) (int32, bool) {
	r, ok := d.index[key]
	return r.slot, ok
}

// Set stores val under key, keeping the key's slot if it has one, and
// returns the slot.
func (d *dict[V]) Set(key string, val V) int32 {
	if r, ok := d.index[key]; ok {
		d.slots[r.slot].val = val
		d.index[key] = dictRef[V]{val: val, slot: r.slot}
		return r.slot
	}
	if d.index == nil {
		d.index = make(map[string]dictRef[V])
	}
	var i int32
	if n := len(d.free); n > 0 {
		i = d.free[n-1]
		d.free = d.free[:n-1]
	} else {
		i = int32(len(d.slots))
		d.slots = append(d.slots, dictSlot[V]{})
	}
	d.slots[i] = dictSlot[V]{key: key, val: val, used: true}
	d.index[key] = dictRef[V]{val: val, slot: i}
	return i
}

// Delete removes key; it reports whether the key was present.
func (d *dict[V]) Delete(key string) bool {
	r, ok := d.index[key]
	if !ok {
		return false
	}
	i := r.slot
	delete(d.index, key)
	d.slots[i] = dictSlot[V]{}
	d.free = append(d.free, i)
	// Release trailing free slots so an emptied dict gives its memory back.
	for n := len(d.slots); n > 0 && !d.slots[n-1].used; n = len(d.slots) {
		d.slots = d.slots[:n-1]
		d.dropFree(int32(n - 1))
	}
	if len(d.index) == 0 {
		*d = dict[V]{}
	}
	return true
}

func (d *dict[V]) dropFree(i int32) {
	for j, f := range d.free {
		if f == i {
			d.free[j] = d.free[len(d.free)-1]
			d.free = d.free[:len(d.free)-1]
			return
		}
	}
}

// Scan visits up to count slots from cursor on and returns the cursor to
// continue from (0 when the end is reached).
func (d *dict[V]) Scan(cursor uint64, count int, fn func(key string, val V)) uint64 {
	if count < 1 {
		count = 1
	}
	i := cursor
	for visited := 0; i < uint64(len(d.slots)) && visited < count; i++ {
		if s := &d.slots[i]; s.used {
			fn(s.key, s.val)
			visited++
		}
	}
	if i >= uint64(len(d.slots)) {
		return 0
	}
	return i
}

// Each visits every element in slot order. fn must not modify d.
func (d *dict[V]) Each(fn func(key string, val V) bool) {
	for i := range d.slots {
		if s := &d.slots[i]; s.used {
			if !fn(s.key, s.val) {
				return
			}
		}
	}
}

// Random returns a uniformly chosen element using r, or false if empty.
// The choice depends only on r and the slot layout, which deterministic
// apply makes identical on every node of a region.
func (d *dict[V]) Random(r *Rand) (string, V, bool) {
	var z V
	if len(d.index) == 0 {
		return "", z, false
	}
	// Slots are at least half full most of the time; fall back to a
	// counted walk if sampling keeps hitting holes.
	for try := 0; try < 64; try++ {
		if s := &d.slots[r.Intn(len(d.slots))]; s.used {
			return s.key, s.val, true
		}
	}
	n := r.Intn(len(d.index))
	for i := range d.slots {
		if d.slots[i].used {
			if n == 0 {
				return d.slots[i].key, d.slots[i].val, true
			}
			n--
		}
	}
	return "", z, false
}
