package crdt

import "strconv"

// Set commands. Membership is add-wins: SADD always emits an add, even for
// a member already present, so a re-add wins over a remove issued
// concurrently in another region; SREM, SPOP and SMOVE remove only the adds
// they observed. Replies, errors and argument checks follow Redis 7.0.

func init() {
	register(
		&CommandSpec{Name: "sadd", Arity: -3, Flags: []string{"denyoom", "fast"}, FirstKey: 1, LastKey: 1, Step: 1,
			Categories: []string{"write", "set", "fast"}, Write: true, Run: cmdSAdd},
		&CommandSpec{Name: "srem", Arity: -3, Flags: []string{"fast"}, FirstKey: 1, LastKey: 1, Step: 1,
			Categories: []string{"write", "set", "fast"}, Write: true, Run: cmdSRem},
		&CommandSpec{Name: "scard", Arity: 2, Flags: []string{"fast"}, FirstKey: 1, LastKey: 1, Step: 1,
			Categories: []string{"read", "set", "fast"}, Run: cmdSCard},
		&CommandSpec{Name: "sismember", Arity: 3, Flags: []string{"fast"}, FirstKey: 1, LastKey: 1, Step: 1,
			Categories: []string{"read", "set", "fast"}, Run: cmdSIsMember},
		&CommandSpec{Name: "smismember", Arity: -3, Flags: []string{"fast"}, FirstKey: 1, LastKey: 1, Step: 1,
			Categories: []string{"read", "set", "fast"}, Run: cmdSMIsMember},
		&CommandSpec{Name: "smembers", Arity: 2, FirstKey: 1, LastKey: 1, Step: 1,
			Categories: []string{"read", "set", "slow"}, Run: cmdSMembers},
		&CommandSpec{Name: "spop", Arity: -2, Flags: []string{"fast"}, FirstKey: 1, LastKey: 1, Step: 1,
			Categories: []string{"write", "set", "fast"}, Write: true, Run: cmdSPop},
		&CommandSpec{Name: "srandmember", Arity: -2, FirstKey: 1, LastKey: 1, Step: 1,
			Categories: []string{"read", "set", "slow"}, Run: cmdSRandMember},
		&CommandSpec{Name: "smove", Arity: 4, Flags: []string{"fast"}, FirstKey: 1, LastKey: 2, Step: 1,
			Categories: []string{"write", "set", "fast"}, Write: true, Run: cmdSMove},
		&CommandSpec{Name: "sinter", Arity: -2, FirstKey: 1, LastKey: -1, Step: 1,
			Categories: []string{"read", "set", "slow"}, Run: func(tx *Tx, a [][]byte) Reply { return setAlgebra(tx, a[1:], setInter) }},
		&CommandSpec{Name: "sunion", Arity: -2, FirstKey: 1, LastKey: -1, Step: 1,
			Categories: []string{"read", "set", "slow"}, Run: func(tx *Tx, a [][]byte) Reply { return setAlgebra(tx, a[1:], setUnion) }},
		&CommandSpec{Name: "sdiff", Arity: -2, FirstKey: 1, LastKey: -1, Step: 1,
			Categories: []string{"read", "set", "slow"}, Run: func(tx *Tx, a [][]byte) Reply { return setAlgebra(tx, a[1:], setDiff) }},
		&CommandSpec{Name: "sinterstore", Arity: -3, Flags: []string{"denyoom"}, FirstKey: 1, LastKey: -1, Step: 1,
			Categories: []string{"write", "set", "slow"}, Write: true, Run: func(tx *Tx, a [][]byte) Reply { return setStore(tx, a, setInter) }},
		&CommandSpec{Name: "sunionstore", Arity: -3, Flags: []string{"denyoom"}, FirstKey: 1, LastKey: -1, Step: 1,
			Categories: []string{"write", "set", "slow"}, Write: true, Run: func(tx *Tx, a [][]byte) Reply { return setStore(tx, a, setUnion) }},
		&CommandSpec{Name: "sdiffstore", Arity: -3, Flags: []string{"denyoom"}, FirstKey: 1, LastKey: -1, Step: 1,
			Categories: []string{"write", "set", "slow"}, Write: true, Run: func(tx *Tx, a [][]byte) Reply { return setStore(tx, a, setDiff) }},
		// SINTERCARD's keys follow a numkeys argument (movablekeys), which
		// FirstKey/LastKey cannot describe; Redis reports 0 0 0 too.
		&CommandSpec{Name: "sintercard", Arity: -3, Flags: []string{"movablekeys"},
			Categories: []string{"read", "set", "slow"}, Run: cmdSInterCard},
		&CommandSpec{Name: "sscan", Arity: -3, FirstKey: 1, LastKey: 1, Step: 1,
			Categories: []string{"read", "set", "slow"}, Run: cmdSScan},
	)
}

// maxRandomCount bounds SRANDMEMBER with a negative count (members may
// repeat, so the reply is not bounded by the set's size). Redis 7.0 builds
// any reply asked for and can be made to run out of memory that way; we
// refuse instead.
const maxRandomCount = 1 << 22

// lookupSet returns key's set (nil if the key is missing), or false with a
// WRONGTYPE reply.
func lookupSet(tx *Tx, key []byte) (*setValue, Reply, bool) {
	v, r, ok := tx.lookup(key, TypeSet)
	if !ok {
		return nil, r, false
	}
	if v == nil {
		return nil, Reply{}, true
	}
	return v.(*setValue), Reply{}, true
}

// liveSet returns the set stored under key in tx.DB right now, without
// expiry checks: used inside a write after this op created it.
func liveSet(tx *Tx, key []byte) *setValue {
	if e, ok := tx.ks.dbs[tx.DB].keys.Get(string(key)); ok {
		if v := e.value(TypeSet); v != nil {
			return v.(*setValue)
		}
	}
	return nil
}

// setReply is a RESP3 set (RESP2 array) of members.
func setReply(ms []string) Reply {
	elems := make([]Reply, len(ms))
	for i, m := range ms {
		elems[i] = BulkString(m)
	}
	return Reply{Kind: KindSet, Elems: elems}
}

func cmdSAdd(tx *Tx, args [][]byte) Reply {
	key := args[1]
	s, r, ok := lookupSet(tx, key)
	if !ok {
		return r
	}
	added := 0
	for _, m := range args[2:] {
		// Emitted for existing members too: the fresh tag is what lets
		// this add win over a concurrent remove elsewhere. Redis does not
		// count such an add as a modification (WATCH), so it is quiet.
		if s == nil || !s.has(m) {
			added++
			tx.Emit(Effect{Kind: EffSetAdd, Key: key, Field: m})
		} else {
			tx.EmitQuiet(Effect{Kind: EffSetAdd, Key: key, Field: m})
		}
		if s == nil {
			s = liveSet(tx, key)
		}
	}
	return Int(int64(added))
}

func cmdSRem(tx *Tx, args [][]byte) Reply {
	key := args[1]
	s, r, ok := lookupSet(tx, key)
	if !ok {
		return r
	}
	if s == nil {
		return Int(0)
	}
	removed := 0
	for _, m := range args[2:] {
		if s.has(m) {
			tx.Emit(Effect{Kind: EffSetRem, Key: key, Field: m})
			removed++
		}
	}
	if removed > 0 && s.empty() {
		// The key goes with its last member, TTL included.
		tx.Emit(Effect{Kind: EffDelKey, Key: key})
	}
	return Int(int64(removed))
}

func cmdSCard(tx *Tx, args [][]byte) Reply {
	s, r, ok := lookupSet(tx, args[1])
	if !ok {
		return r
	}
	if s == nil {
		return Int(0)
	}
	return Int(int64(s.card()))
}

func cmdSIsMember(tx *Tx, args [][]byte) Reply {
	s, r, ok := lookupSet(tx, args[1])
	if !ok {
		return r
	}
	if s != nil && s.has(args[2]) {
		return Int(1)
	}
	return Int(0)
}

func cmdSMIsMember(tx *Tx, args [][]byte) Reply {
	s, r, ok := lookupSet(tx, args[1])
	if !ok {
		return r
	}
	out := make([]Reply, 0, len(args)-2)
	for _, m := range args[2:] {
		if s != nil && s.has(m) {
			out = append(out, Int(1))
		} else {
			out = append(out, Int(0))
		}
	}
	return Array(out...)
}

func cmdSMembers(tx *Tx, args [][]byte) Reply {
	s, r, ok := lookupSet(tx, args[1])
	if !ok {
		return r
	}
	if s == nil {
		return setReply(nil)
	}
	return setReply(s.list())
}

func cmdSPop(tx *Tx, args [][]byte) Reply {
	key := args[1]
	if len(args) > 3 {
		return ErrSyntax
	}
	if len(args) == 2 {
		s, r, ok := lookupSet(tx, key)
		if !ok {
			return r
		}
		if s == nil {
			return Nil
		}
		m, _, _ := s.items.Random(tx.Rand())
		spopRemove(tx, key, s, []string{m})
		return BulkString(m)
	}
	count, ok := parseStrictInt(args[2])
	if !ok || count < 0 {
		return ErrNotPositive
	}
	s, r, ok := lookupSet(tx, key)
	if !ok {
		return r
	}
	if s == nil || count == 0 {
		return setReply(nil)
	}
	if count >= int64(s.card()) {
		all := s.list()
		// Popping everything is deleting the key (and its TTL).
		tx.Emit(Effect{Kind: EffDelKey, Key: key})
		return setReply(all)
	}
	picked := pickDistinct(s, int(count), tx.Rand())
	spopRemove(tx, key, s, picked)
	return setReply(picked)
}

// spopRemove emits the removal of popped members, and of the key if none
// are left.
func spopRemove(tx *Tx, key []byte, s *setValue, ms []string) {
	for _, m := range ms {
		tx.Emit(Effect{Kind: EffSetRem, Key: key, Field: []byte(m)})
	}
	if s.empty() {
		tx.Emit(Effect{Kind: EffDelKey, Key: key})
	}
}

// pickDistinct chooses k distinct members (0 < k < card) with r. The
// choice depends only on r and the set's slot layout, which is identical
// on every node of a region, so SPOP removes the same members everywhere.
func pickDistinct(s *setValue, k int, r *Rand) []string {
	n := s.card()
	if k*4 > n {
		// Many of the members: shuffle a list of all of them rather than
		// sample slots until enough distinct ones turned up.
		all := s.slotOrder()
		for i := 0; i < k; i++ {
			j := i + r.Intn(n-i)
			all[i], all[j] = all[j], all[i]
		}
		return all[:k]
	}
	out := make([]string, 0, k)
	seen := make(map[string]bool, k)
	for len(out) < k {
		m, _, _ := s.items.Random(r)
		if !seen[m] {
			seen[m] = true
			out = append(out, m)
		}
	}
	return out
}

func cmdSRandMember(tx *Tx, args [][]byte) Reply {
	key := args[1]
	if len(args) > 3 {
		return ErrSyntax
	}
	if len(args) == 2 {
		s, r, ok := lookupSet(tx, key)
		if !ok {
			return r
		}
		if s == nil {
			return Nil
		}
		m, _, _ := s.items.Random(tx.Rand())
		return BulkString(m)
	}
	count, ok := parseStrictInt(args[2])
	if !ok {
		return ErrNotInt
	}
	if count == -1<<63 {
		return Err("ERR value is out of range, value must between -9223372036854775807 and 9223372036854775807")
	}
	s, r, ok := lookupSet(tx, key)
	if !ok {
		return r
	}
	if s == nil || count == 0 {
		return Array()
	}
	n := s.card()
	var ms []string
	switch {
	case count < 0:
		// A negative count allows repeats: -count independent picks.
		k := -count
		if k > maxRandomCount {
			return Err("ERR value is out of range, value must between -" + strconv.Itoa(maxRandomCount) + " and 9223372036854775807")
		}
		ms = make([]string, 0, k)
		if k*4 > int64(n) {
			all := s.slotOrder()
			for i := int64(0); i < k; i++ {
				ms = append(ms, all[tx.Rand().Intn(n)])
			}
		} else {
			for i := int64(0); i < k; i++ {
				m, _, _ := s.items.Random(tx.Rand())
				ms = append(ms, m)
			}
		}
	case count >= int64(n):
		ms = s.list()
	default:
		ms = pickDistinct(s, int(count), tx.Rand())
	}
	out := make([]Reply, len(ms))
	for i, m := range ms {
		out[i] = BulkString(m)
	}
	return Array(out...)
}

func cmdSMove(tx *Tx, args [][]byte) Reply {
	src, dst, m := args[1], args[2], args[3]
	ss, r, ok := lookupSet(tx, src)
	if !ok {
		return r
	}
	if ss == nil {
		return Int(0) // before dst's type is checked, as in Redis
	}
	ds, r, ok := lookupSet(tx, dst)
	if !ok {
		return r
	}
	if string(src) == string(dst) {
		if ss.has(m) {
			return Int(1)
		}
		return Int(0)
	}
	if !ss.has(m) {
		return Int(0)
	}
	tx.Emit(Effect{Kind: EffSetRem, Key: src, Field: m})
	if ss.empty() {
		tx.Emit(Effect{Kind: EffDelKey, Key: src})
	}
	// Added even if dst already has it, like SADD: a fresh tag, which
	// Redis does not count as modifying dst (WATCH).
	if ds != nil && ds.has(m) {
		tx.EmitQuiet(Effect{Kind: EffSetAdd, Key: dst, Field: m})
	} else {
		tx.Emit(Effect{Kind: EffSetAdd, Key: dst, Field: m})
	}
	return Int(1)
}

// setOperands looks up every key first, as Redis does: a WRONGTYPE key is
// an error even when an earlier key is missing. Missing keys are nil.
func setOperands(tx *Tx, keys [][]byte) ([]*setValue, Reply, bool) {
	sets := make([]*setValue, len(keys))
	for i, k := range keys {
		s, r, ok := lookupSet(tx, k)
		if !ok {
			return nil, r, false
		}
		sets[i] = s
	}
	return sets, Reply{}, true
}

// setInter intersects sets (nil = empty), stopping after limit members
// when limit > 0. It walks the smallest set, as Redis does.
func setInter(sets []*setValue, limit int) []string {
	small := -1
	for i, s := range sets {
		if s == nil {
			return nil
		}
		if small < 0 || s.card() < sets[small].card() {
			small = i
		}
	}
	var out []string
	sets[small].items.Each(func(m string, _ tagSet) bool {
		for i, s := range sets {
			if i == small {
				continue
			}
			if _, ok := s.items.Get(m); !ok {
				return true
			}
		}
		out = append(out, m)
		return limit <= 0 || len(out) < limit
	})
	return out
}

func setUnion(sets []*setValue, _ int) []string {
	var out []string
	seen := map[string]bool{}
	for _, s := range sets {
		if s == nil {
			continue
		}
		s.items.Each(func(m string, _ tagSet) bool {
			if !seen[m] {
				seen[m] = true
				out = append(out, m)
			}
			return true
		})
	}
	return out
}

func setDiff(sets []*setValue, _ int) []string {
	if sets[0] == nil {
		return nil
	}
	var out []string
	sets[0].items.Each(func(m string, _ tagSet) bool {
		for _, s := range sets[1:] {
			if s != nil {
				if _, ok := s.items.Get(m); ok {
					return true
				}
			}
		}
		out = append(out, m)
		return true
	})
	return out
}

func setAlgebra(tx *Tx, keys [][]byte, op func([]*setValue, int) []string) Reply {
	sets, r, ok := setOperands(tx, keys)
	if !ok {
		return r
	}
	return setReply(op(sets, 0))
}

// setStore writes the result to the destination as a whole-key overwrite:
// an observed remove of what was there (any type, and its TTL), then a
// fresh add per member. An empty result leaves no key.
func setStore(tx *Tx, args [][]byte, op func([]*setValue, int) []string) Reply {
	dst := args[1]
	sets, r, ok := setOperands(tx, args[2:])
	if !ok {
		return r
	}
	ms := op(sets, 0) // computed before dst changes: it may be a source
	clearKey(tx, tx.DB, dst)
	for _, m := range ms {
		tx.Emit(Effect{Kind: EffSetAdd, Key: dst, Field: []byte(m)})
	}
	return Int(int64(len(ms)))
}

func cmdSInterCard(tx *Tx, args [][]byte) Reply {
	numkeys, ok := parseStrictInt(args[1])
	if !ok || numkeys < 1 {
		return Err("ERR numkeys should be greater than 0")
	}
	if numkeys > int64(len(args)-2) {
		return Err("ERR Number of keys can't be greater than number of args")
	}
	keys := args[2 : 2+numkeys]
	limit := int64(0)
	for i := 2 + int(numkeys); i < len(args); i++ {
		if lower(args[i]) == "limit" && i+1 < len(args) {
			i++
			l, ok := parseStrictInt(args[i])
			if !ok || l < 0 {
				return Err("ERR LIMIT can't be negative")
			}
			limit = l
			continue
		}
		return ErrSyntax
	}
	sets, r, ok := setOperands(tx, keys)
	if !ok {
		return r
	}
	if limit > 1<<31 {
		limit = 1 << 31 // beyond any set's size: no limit in effect
	}
	return Int(int64(len(setInter(sets, int(limit)))))
}

func cmdSScan(tx *Tx, args [][]byte) Reply {
	cursor, ok := parseScanCursor(args[2])
	if !ok {
		return errInvalidCursor
	}
	// Redis looks the key up before it parses the options: a missing key
	// answers an empty scan whatever the options say.
	s, r, ok := lookupSet(tx, args[1])
	if !ok {
		return r
	}
	if s == nil {
		return scanReply(0, nil)
	}
	opt, r, ok := parseScanOptions(args[3:], false)
	if !ok {
		return r
	}
	var ms []string
	if s.isIntset() {
		// Redis returns a compact (intset) set whole, with cursor 0.
		for _, m := range s.list() {
			if opt.match(m) {
				ms = append(ms, m)
			}
		}
		return scanReply(0, ms)
	}
	next := scanDict(&s.items, cursor, opt.count, func(m string, _ tagSet) {
		if opt.match(m) {
			ms = append(ms, m)
		}
	})
	return scanReply(next, ms)
}
