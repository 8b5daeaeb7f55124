package crdt

// List commands. Pushes insert elements at fresh positions (list.go), so
// concurrent pushes from several regions are all kept, in one order every
// region agrees on; pops, LREM and LTRIM remove the elements they saw, by
// position; LSET is a last-writer-wins write of one element's value.
// Replies, errors and the order of argument and type checks follow Redis
// 7.0's t_list.c.

func init() {
	w := func(extra ...string) []string { return append([]string{"write", "list"}, extra...) }
	r := func(extra ...string) []string { return append([]string{"read", "list"}, extra...) }
	k1 := func(s *CommandSpec) *CommandSpec { s.FirstKey, s.LastKey, s.Step = 1, 1, 1; return s }
	k2 := func(s *CommandSpec) *CommandSpec { s.FirstKey, s.LastKey, s.Step = 1, 2, 1; return s }
	register(
		k1(&CommandSpec{Name: "lpush", Arity: -3, Flags: []string{"denyoom", "fast"}, Categories: w("fast"), Write: true,
			Run: func(tx *Tx, a [][]byte) Reply { return listPush(tx, a, true, false) }}),
		k1(&CommandSpec{Name: "rpush", Arity: -3, Flags: []string{"denyoom", "fast"}, Categories: w("fast"), Write: true,
			Run: func(tx *Tx, a [][]byte) Reply { return listPush(tx, a, false, false) }}),
		k1(&CommandSpec{Name: "lpushx", Arity: -3, Flags: []string{"denyoom", "fast"}, Categories: w("fast"), Write: true,
			Run: func(tx *Tx, a [][]byte) Reply { return listPush(tx, a, true, true) }}),
		k1(&CommandSpec{Name: "rpushx", Arity: -3, Flags: []string{"denyoom", "fast"}, Categories: w("fast"), Write: true,
			Run: func(tx *Tx, a [][]byte) Reply { return listPush(tx, a, false, true) }}),
		k1(&CommandSpec{Name: "lpop", Arity: -2, Flags: []string{"fast"}, Categories: w("fast"), Write: true,
			Run: func(tx *Tx, a [][]byte) Reply { return listPopCmd(tx, a, true) }}),
		k1(&CommandSpec{Name: "rpop", Arity: -2, Flags: []string{"fast"}, Categories: w("fast"), Write: true,
			Run: func(tx *Tx, a [][]byte) Reply { return listPopCmd(tx, a, false) }}),
		k1(&CommandSpec{Name: "llen", Arity: 2, Flags: []string{"fast"}, Categories: r("fast"), Run: cmdLLen}),
		k1(&CommandSpec{Name: "lrange", Arity: 4, Categories: r("slow"), Run: cmdLRange}),
		k1(&CommandSpec{Name: "lindex", Arity: 3, Categories: r("slow"), Run: cmdLIndex}),
		k1(&CommandSpec{Name: "lset", Arity: 4, Flags: []string{"denyoom"}, Categories: w("slow"), Write: true, Run: cmdLSet}),
		k1(&CommandSpec{Name: "linsert", Arity: 5, Flags: []string{"denyoom"}, Categories: w("slow"), Write: true, Run: cmdLInsert}),
		k1(&CommandSpec{Name: "lrem", Arity: 4, Categories: w("slow"), Write: true, Run: cmdLRem}),
		k1(&CommandSpec{Name: "ltrim", Arity: 4, Categories: w("slow"), Write: true, Run: cmdLTrim}),
		k1(&CommandSpec{Name: "lpos", Arity: -3, Categories: r("slow"), Run: cmdLPos}),
		k2(&CommandSpec{Name: "lmove", Arity: 5, Flags: []string{"denyoom"}, Categories: w("slow"), Write: true, Run: cmdLMove}),
		k2(&CommandSpec{Name: "rpoplpush", Arity: 3, Flags: []string{"denyoom"}, Categories: w("slow"), Write: true,
			Run: func(tx *Tx, a [][]byte) Reply { return listMove(tx, a[1], a[2], false, true) }}),
		// LMPOP's keys follow numkeys (movablekeys): Redis reports 0 0 0.
		&CommandSpec{Name: "lmpop", Arity: -4, Flags: []string{"movablekeys"}, Categories: w("slow"), Write: true, Run: cmdLMPop},
	)
}

// errListFull is returned when a push finds an end of the position space
// used up (2^47 pushes at one end of one list): unreachable in practice.
var errListFull = Err("ERR list position space exhausted at this end of the list")

// lookupList returns key's list (nil if the key is missing), or false with
// a WRONGTYPE reply.
func lookupList(tx *Tx, key []byte) (*listValue, Reply, bool) {
	v, r, ok := tx.lookup(key, TypeList)
	if !ok {
		return nil, r, false
	}
	if v == nil {
		return nil, Reply{}, true
	}
	return v.(*listValue), Reply{}, true
}

func (l *listValue) lenOrZero() int {
	if l == nil {
		return 0
	}
	return l.length()
}

// pushEffect builds the insert of vals at the head (left) or tail of l
// (nil: a new list). LPUSH a b c gives c b a: subs 0, -1, -2 at the head.
func pushEffect(key []byte, l *listValue, left bool, vals [][]byte) (Effect, bool) {
	var p, q *lpos
	if n := l.lenOrZero(); n > 0 {
		if left {
			q = &l.at(0).pos
		} else {
			p = &l.at(n - 1).pos
		}
	}
	prefix, n, ok := between(p, q)
	if !ok {
		return Effect{}, false
	}
	dir := int64(1)
	if left {
		dir = -1
	}
	return listInsertEffect(key, prefix, n, dir, vals), true
}

func listPush(tx *Tx, args [][]byte, left, xx bool) Reply {
	key := args[1]
	l, r, ok := lookupList(tx, key)
	if !ok {
		return r
	}
	if l == nil && xx {
		return Int(0)
	}
	f, ok := pushEffect(key, l, left, args[2:])
	if !ok {
		return errListFull
	}
	before := l.lenOrZero()
	tx.Emit(f)
	return Int(int64(before + len(args) - 2))
}

// takeEnds returns the k elements a pop of k takes, in the order Redis
// replies with them: head first for the left end, tail first for the right.
func takeEnds(l *listValue, left bool, k int) []*lnode {
	n := l.length()
	if k > n {
		k = n
	}
	out := make([]*lnode, 0, k)
	if left {
		l.walk(0, func(x *lnode) bool { out = append(out, x); return len(out) < k })
	} else {
		l.walkBack(n-1, func(x *lnode) bool { out = append(out, x); return len(out) < k })
	}
	return out
}

// removeNodes emits the removal of ns (kind EffListPop or EffListRem) and,
// if nothing is left, of the key with its TTL, as Redis deletes an emptied
// list.
func removeNodes(tx *Tx, key []byte, l *listValue, kind EffectKind, ns []*lnode) {
	if len(ns) == 0 {
		return
	}
	tx.Emit(Effect{Kind: kind, Key: key, Value: encodeListPositions(ns)})
	if l.empty() {
		tx.Emit(Effect{Kind: EffDelKey, Key: key})
	}
}

func nodeValues(ns []*lnode) Reply {
	out := make([]Reply, len(ns))
	for i, n := range ns {
		out[i] = BulkString(n.val)
	}
	return Array(out...)
}

func listPopCmd(tx *Tx, args [][]byte, left bool) Reply {
	key := args[1]
	if len(args) > 3 {
		return ErrArity(lower(args[0]))
	}
	hasCount := len(args) == 3
	count := int64(0)
	if hasCount {
		c, ok := parseStrictInt(args[2])
		if !ok || c < 0 {
			return ErrNotPositive
		}
		count = c
	}
	l, r, ok := lookupList(tx, key)
	if !ok {
		return r
	}
	if l == nil {
		if hasCount {
			return NilArray
		}
		return Nil
	}
	if hasCount && count == 0 {
		return Array()
	}
	if !hasCount {
		ns := takeEnds(l, left, 1)
		v := ns[0].val
		removeNodes(tx, key, l, EffListPop, ns)
		return BulkString(v)
	}
	k := count
	if k > int64(l.length()) {
		k = int64(l.length())
	}
	ns := takeEnds(l, left, int(k))
	rep := nodeValues(ns)
	removeNodes(tx, key, l, EffListPop, ns)
	return rep
}

func cmdLLen(tx *Tx, args [][]byte) Reply {
	l, r, ok := lookupList(tx, args[1])
	if !ok {
		return r
	}
	return Int(int64(l.lenOrZero()))
}

// listRange clamps [start, end] (negative from the end) to l's length as
// Redis's addListRangeReply does; ok is false for an empty range.
func listRange(start, end int64, n int) (int, int, bool) {
	ln := int64(n)
	if start < 0 {
		start += ln
	}
	if end < 0 {
		end += ln
	}
	if start < 0 {
		start = 0
	}
	if start > end || start >= ln {
		return 0, 0, false
	}
	if end >= ln {
		end = ln - 1
	}
	return int(start), int(end), true
}

func cmdLRange(tx *Tx, args [][]byte) Reply {
	start, ok1 := parseStrictInt(args[2])
	end, ok2 := parseStrictInt(args[3])
	if !ok1 || !ok2 {
		return ErrNotInt
	}
	l, r, ok := lookupList(tx, args[1])
	if !ok {
		return r
	}
	if l == nil {
		return Array()
	}
	s, e, ok := listRange(start, end, l.length())
	if !ok {
		return Array()
	}
	out := make([]Reply, 0, e-s+1)
	l.walk(s, func(n *lnode) bool {
		out = append(out, BulkString(n.val))
		return len(out) < e-s+1
	})
	return Array(out...)
}

// listIndex resolves a possibly negative index; ok is false out of range.
func listIndex(idx int64, n int) (int, bool) {
	if idx < 0 {
		idx += int64(n)
	}
	if idx < 0 || idx >= int64(n) {
		return 0, false
	}
	return int(idx), true
}

func cmdLIndex(tx *Tx, args [][]byte) Reply {
	l, r, ok := lookupList(tx, args[1])
	if !ok {
		return r
	}
	if l == nil {
		return Nil
	}
	idx, ok := parseStrictInt(args[2])
	if !ok {
		return ErrNotInt
	}
	i, ok := listIndex(idx, l.length())
	if !ok {
		return Nil
	}
	return BulkString(l.at(i).val)
}

func cmdLSet(tx *Tx, args [][]byte) Reply {
	key := args[1]
	l, r, ok := lookupList(tx, key)
	if !ok {
		return r
	}
	if l == nil {
		return ErrNoSuchKey
	}
	idx, ok := parseStrictInt(args[2])
	if !ok {
		return ErrNotInt
	}
	i, ok := listIndex(idx, l.length())
	if !ok {
		return ErrIndexRange
	}
	e := &encoder{}
	encodeListPos(e, &l.at(i).pos)
	tx.Emit(Effect{Kind: EffListSet, Key: key, Field: e.b, Value: args[3]})
	return OK
}

func cmdLInsert(tx *Tx, args [][]byte) Reply {
	key := args[1]
	var before bool
	switch lower(args[2]) {
	case "before":
		before = true
	case "after":
	default:
		return ErrSyntax
	}
	l, r, ok := lookupList(tx, key)
	if !ok {
		return r
	}
	if l == nil {
		return Int(0)
	}
	pivot := string(args[3])
	idx := -1
	i := 0
	l.walk(0, func(n *lnode) bool {
		if n.val == pivot {
			idx = i
			return false
		}
		i++
		return true
	})
	if idx < 0 {
		return Int(-1)
	}
	n := l.length()
	var p, q *lpos
	if before {
		q = &l.at(idx).pos
		if idx > 0 {
			p = &l.at(idx - 1).pos
		}
	} else {
		p = &l.at(idx).pos
		if idx+1 < n {
			q = &l.at(idx + 1).pos
		}
	}
	prefix, pn, ok := between(p, q)
	if !ok {
		return errListFull
	}
	tx.Emit(listInsertEffect(key, prefix, pn, 1, [][]byte{args[4]}))
	return Int(int64(n + 1))
}

func cmdLRem(tx *Tx, args [][]byte) Reply {
	key := args[1]
	toremove, ok := parseStrictInt(args[2])
	if !ok {
		return ErrNotInt
	}
	l, r, ok := lookupList(tx, key)
	if !ok {
		return r
	}
	if l == nil {
		return Int(0)
	}
	elem := string(args[3])
	var ns []*lnode
	match := func(n *lnode) bool {
		if n.val == elem {
			ns = append(ns, n)
			if toremove != 0 && int64(len(ns)) == toremove {
				return false
			}
		}
		return true
	}
	if toremove < 0 {
		toremove = -toremove // -MinInt64 stays negative: no limit, as in Redis
		l.walkBack(l.length()-1, match)
	} else {
		l.walk(0, match)
	}
	removeNodes(tx, key, l, EffListRem, ns)
	return Int(int64(len(ns)))
}

func cmdLTrim(tx *Tx, args [][]byte) Reply {
	key := args[1]
	start, ok1 := parseStrictInt(args[2])
	end, ok2 := parseStrictInt(args[3])
	if !ok1 || !ok2 {
		return ErrNotInt
	}
	l, r, ok := lookupList(tx, key)
	if !ok {
		return r
	}
	if l == nil {
		return OK
	}
	n := l.length()
	s, e, keep := listRange(start, end, n)
	var ns []*lnode
	if !keep {
		ns = l.nodes()
	} else {
		if s > 0 {
			l.walk(0, func(x *lnode) bool { ns = append(ns, x); return len(ns) < s })
		}
		if e < n-1 {
			l.walk(e+1, func(x *lnode) bool { ns = append(ns, x); return true })
		}
	}
	removeNodes(tx, key, l, EffListRem, ns)
	return OK
}

func cmdLPos(tx *Tx, args [][]byte) Reply {
	rank, count, maxlen := int64(1), int64(-1), int64(0)
	for j := 3; j < len(args); j++ {
		opt := lower(args[j])
		more := len(args) - 1 - j
		switch {
		case opt == "rank" && more > 0:
			j++
			v, ok := parseStrictInt(args[j])
			if !ok {
				return ErrNotInt
			}
			if v == 0 {
				return Err("ERR RANK can't be zero: use 1 to start from the first match, 2 from the second ... or use negative to start from the end of the list")
			}
			rank = v
		case opt == "count" && more > 0:
			j++
			v, ok := parseStrictInt(args[j])
			if !ok || v < 0 {
				return Err("ERR COUNT can't be negative")
			}
			count = v
		case opt == "maxlen" && more > 0:
			j++
			v, ok := parseStrictInt(args[j])
			if !ok || v < 0 {
				return Err("ERR MAXLEN can't be negative")
			}
			maxlen = v
		default:
			return ErrSyntax
		}
	}
	fromTail := false
	if rank < 0 {
		rank = -rank // MinInt64 stays negative, as in Redis: every match counts
		fromTail = true
	}
	l, r, ok := lookupList(tx, args[1])
	if !ok {
		return r
	}
	if l == nil {
		if count != -1 {
			return Array()
		}
		return Nil
	}
	elem := string(args[2])
	n := int64(l.length())
	var out []Reply
	var index, matches int64
	matchIndex := int64(-1)
	visit := func(x *lnode) bool {
		if maxlen != 0 && index >= maxlen {
			return false
		}
		if x.val == elem {
			matches++
			if fromTail {
				matchIndex = n - index - 1
			} else {
				matchIndex = index
			}
			if matches >= rank {
				if count == -1 {
					return false
				}
				out = append(out, Int(matchIndex))
				if count != 0 && matches-rank+1 >= count {
					return false
				}
			}
		}
		index++
		matchIndex = -1
		return true
	}
	if fromTail {
		l.walkBack(int(n-1), visit)
	} else {
		l.walk(0, visit)
	}
	if count != -1 {
		return Array(out...)
	}
	if matchIndex != -1 {
		return Int(matchIndex)
	}
	return Nil
}

func parseListEnd(b []byte) (left bool, ok bool) {
	switch lower(b) {
	case "left":
		return true, true
	case "right":
		return false, true
	}
	return false, false
}

func cmdLMove(tx *Tx, args [][]byte) Reply {
	from, ok1 := parseListEnd(args[3])
	to, ok2 := parseListEnd(args[4])
	if !ok1 || !ok2 {
		return ErrSyntax
	}
	return listMove(tx, args[1], args[2], from, to)
}

// listMove pops one element of src at end from and pushes it onto dst at
// end to. The push is an ordinary push, not a whole-key rewrite of dst:
// elements other regions pushed or popped concurrently keep their
// identities (docs/lists.md). Two regions moving the same element
// concurrently both deliver it; each counts it in ListConcurrentPops.
func listMove(tx *Tx, src, dst []byte, from, to bool) Reply {
	sl, r, ok := lookupList(tx, src)
	if !ok {
		return r
	}
	if sl == nil {
		return Nil
	}
	dl, r, ok := lookupList(tx, dst)
	if !ok {
		return r
	}
	ns := takeEnds(sl, from, 1)
	v := ns[0].val
	if string(src) == string(dst) {
		// Push first, so the list never goes empty (and its key and
		// TTL never go) halfway through a rotation.
		f, ok := pushEffect(dst, sl, to, [][]byte{[]byte(v)})
		if !ok {
			return errListFull
		}
		tx.Emit(f)
		removeNodes(tx, src, sl, EffListPop, ns)
		return BulkString(v)
	}
	f, ok := pushEffect(dst, dl, to, [][]byte{[]byte(v)})
	if !ok {
		return errListFull
	}
	removeNodes(tx, src, sl, EffListPop, ns)
	tx.Emit(f)
	return BulkString(v)
}

func cmdLMPop(tx *Tx, args [][]byte) Reply {
	numkeys, ok := parseStrictInt(args[1])
	if !ok || numkeys < 1 {
		return Err("ERR numkeys should be greater than 0")
	}
	if numkeys >= int64(len(args)-2) {
		return ErrSyntax // no room left for LEFT|RIGHT
	}
	wi := 2 + int(numkeys)
	left, ok := parseListEnd(args[wi])
	if !ok {
		return ErrSyntax
	}
	count := int64(-1)
	for j := wi + 1; j < len(args); j++ {
		if count == -1 && lower(args[j]) == "count" && j+1 < len(args) {
			j++
			c, ok := parseStrictInt(args[j])
			if !ok || c < 1 {
				return Err("ERR count should be greater than 0")
			}
			count = c
			continue
		}
		return ErrSyntax
	}
	if count == -1 {
		count = 1
	}
	for _, key := range args[2:wi] {
		l, r, ok := lookupList(tx, key)
		if !ok {
			return r
		}
		if l == nil {
			continue
		}
		k := count
		if k > int64(l.length()) {
			k = int64(l.length())
		}
		ns := takeEnds(l, left, int(k))
		rep := nodeValues(ns)
		removeNodes(tx, key, l, EffListPop, ns)
		return Array(Bulk(key), rep)
	}
	return NilArray
}
