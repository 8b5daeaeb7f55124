package crdt

import (
	"bytes"
	"math"
	"sort"
)

// SORT and SORT_RO with Redis 7.0's options, replies and errors: numeric or
// ALPHA order, ASC/DESC, LIMIT, BY and GET with key patterns (including
// hash fields, "->", and GET #).
//
// BY and GET read other keys. That is deterministic in apply: the keys are
// read from the replicated state at the op's position in the log, like any
// other read a write does, so every node of a region computes the same
// result. Across regions SORT is a read of the local state.
//
// SORT sorts lists, sets and sorted sets (a missing key is empty). SORT ...
// STORE is a whole-key write of the destination (its observed content and
// TTL go, the result is pushed as fresh elements), as RENAME and the *STORE
// commands are; an empty result deletes it.

func init() {
	register(
		&CommandSpec{Name: "sort", Arity: -2, Flags: []string{"denyoom", "movablekeys"}, FirstKey: 1, LastKey: 1, Step: 1,
			Categories: []string{"write", "set", "sortedset", "list", "slow", "dangerous"}, Write: true,
			Run: func(tx *Tx, a [][]byte) Reply { return sortGeneric(tx, a, false) }},
		&CommandSpec{Name: "sort_ro", Arity: -2, Flags: []string{"movablekeys"}, FirstKey: 1, LastKey: 1, Step: 1,
			Categories: []string{"read", "set", "sortedset", "list", "slow", "dangerous"},
			Run:        func(tx *Tx, a [][]byte) Reply { return sortGeneric(tx, a, true) }},
	)
}

// cstr cuts b at its first NUL, as C string functions see it.
func cstr(b []byte) []byte {
	if i := bytes.IndexByte(b, 0); i >= 0 {
		return b[:i]
	}
	return b
}

// sortLookup is lookupKeyByPattern: the value pattern names for element
// elem ("#" is elem itself; the first '*' is replaced by elem; "key->field"
// reads a hash field). Keys of another type read as missing.
func sortLookup(tx *Tx, pattern, elem []byte) ([]byte, bool) {
	if len(pattern) > 0 && pattern[0] == '#' && (len(pattern) == 1 || pattern[1] == 0) {
		return elem, true
	}
	cp := cstr(pattern)
	star := bytes.IndexByte(cp, '*')
	if star < 0 {
		return nil, false
	}
	var field []byte
	fieldLen := 0
	if f := bytes.Index(cp[star+1:], []byte("->")); f >= 0 {
		at := star + 1 + f
		if at+2 < len(cp) {
			field = pattern[at+2:]
			fieldLen = len(field)
		}
	}
	post := len(pattern) - (star + 1)
	if fieldLen > 0 {
		post -= fieldLen + 2
	}
	key := make([]byte, 0, star+len(elem)+post)
	key = append(append(append(key, pattern[:star]...), elem...), pattern[star+1:star+1+post]...)
	e := tx.entry(key)
	if e == nil {
		return nil, false
	}
	if field == nil {
		if e.Type() != TypeString {
			return nil, false
		}
		return e.visible().(*strValue).value(), true
	}
	if e.Type() != TypeHash {
		return nil, false
	}
	return e.visible().(*hashValue).get(field)
}

type sortItem struct {
	elem  []byte
	score float64
	cmp   []byte // ALPHA with BY: the value compared (nil if missing)
}

func sortGeneric(tx *Tx, args [][]byte, ro bool) Reply {
	desc, alpha, dontSort := false, false, false
	limitStart, limitCount := int64(0), int64(-1)
	var sortBy, storeKey []byte
	var gets [][]byte
	for j := 2; j < len(args); j++ {
		left := len(args) - j - 1
		switch opt := cstrLower(args[j]); {
		case opt == "asc":
			desc = false
		case opt == "desc":
			desc = true
		case opt == "alpha":
			alpha = true
		case opt == "limit" && left >= 2:
			var ok1, ok2 bool
			limitStart, ok1 = parseInt64(args[j+1])
			if !ok1 {
				return ErrNotInt
			}
			if limitCount, ok2 = parseInt64(args[j+2]); !ok2 {
				return ErrNotInt
			}
			j += 2
		case !ro && opt == "store" && left >= 1:
			storeKey = args[j+1]
			j++
		case opt == "by" && left >= 1:
			sortBy = args[j+1]
			// BY a constant (no '*') means "do not sort".
			dontSort = bytes.IndexByte(cstr(sortBy), '*') < 0
			j++
		case opt == "get" && left >= 1:
			gets = append(gets, args[j+1])
			j++
		default:
			return ErrSyntax
		}
	}
	e := tx.entry(args[1])
	var set *setValue
	var zs *zsetValue
	var lst *listValue
	if e != nil {
		switch v := e.visible().(type) {
		case *setValue:
			set = v
		case *zsetValue:
			zs = v
		case *listValue:
			lst = v
		default:
			return ErrWrongType
		}
	}
	if storeKey != nil && dontSort && set != nil {
		// Redis sorts a set ALPHA when storing it unsorted, so that the
		// stored list does not depend on hash-table order.
		dontSort, alpha, sortBy = false, true, nil
	}
	n := int64(0)
	switch {
	case set != nil:
		n = int64(set.card())
	case zs != nil:
		n = int64(zs.card())
	case lst != nil:
		n = int64(lst.length())
	}
	start := max(limitStart, 0)
	end := n - 1
	if limitCount >= 0 {
		end = start + limitCount - 1
	}
	if start >= n {
		start, end = n-1, n-2
	}
	if end >= n {
		end = n - 1
	}

	var items []sortItem
	switch {
	case zs != nil && dontSort:
		// The sorted set's own order (reversed by DESC), only the range.
		count := end - start + 1
		if start == 0 && end == n-1 {
			count = n
		}
		if count > 0 {
			for _, el := range zs.rankRange(start, start+count-1, desc) {
				items = append(items, sortItem{elem: []byte(el.member)})
			}
		}
		end -= start
		start = 0
	case zs != nil:
		zs.members.Each(func(m string, _ *zmember) bool {
			items = append(items, sortItem{elem: []byte(m)})
			return true
		})
	case set != nil:
		for _, m := range set.list() {
			items = append(items, sortItem{elem: []byte(m)})
		}
	case lst != nil:
		lst.walk(0, func(nd *lnode) bool {
			items = append(items, sortItem{elem: []byte(nd.val)})
			return true
		})
	}

	if !dontSort {
		badScore := false
		for i := range items {
			it := &items[i]
			by := it.elem
			if sortBy != nil {
				v, ok := sortLookup(tx, sortBy, it.elem)
				if !ok {
					continue
				}
				by = v
			}
			if alpha {
				if sortBy != nil {
					it.cmp = by
				}
				continue
			}
			s, ok := sortScore(by)
			if !ok {
				badScore = true
			}
			it.score = s
		}
		if badScore {
			return Err("ERR One or more scores can't be converted into double")
		}
		cmp := func(a, b *sortItem) int {
			var c int
			switch {
			case !alpha:
				switch {
				case a.score > b.score:
					c = 1
				case a.score < b.score:
					c = -1
				default:
					c = bytes.Compare(a.elem, b.elem)
				}
			case sortBy != nil:
				switch {
				case a.cmp == nil && b.cmp == nil:
					c = 0
				case a.cmp == nil:
					c = -1
				case b.cmp == nil:
					c = 1
				default:
					c = bytes.Compare(cstr(a.cmp), cstr(b.cmp))
				}
			default:
				// strcoll in Redis's C.UTF-8 collation: byte order of the
				// C strings.
				c = bytes.Compare(cstr(a.elem), cstr(b.elem))
			}
			if desc {
				c = -c
			}
			return c
		}
		if sortBy != nil && (start != 0 || end != int64(len(items))-1) {
			pqsort(items, cmp, int(start), int(end))
		} else {
			sort.SliceStable(items, func(i, j int) bool { return cmp(&items[i], &items[j]) < 0 })
		}
	}

	if storeKey != nil {
		// Missing GET values are stored as empty strings, as Redis does.
		var vals [][]byte
		for j := start; j <= end && j >= 0; j++ {
			it := items[j]
			if len(gets) == 0 {
				vals = append(vals, it.elem)
			}
			for _, g := range gets {
				v, _ := sortLookup(tx, g, it.elem)
				vals = append(vals, append([]byte{}, v...))
			}
		}
		clearKey(tx, tx.DB, storeKey)
		if len(vals) > 0 {
			f, ok := pushEffect(storeKey, nil, false, vals)
			if !ok {
				return errListFull
			}
			tx.Emit(f)
		}
		return Int(int64(len(vals)))
	}
	var out []Reply
	for j := start; j <= end && j >= 0; j++ {
		it := items[j]
		if len(gets) == 0 {
			out = append(out, Bulk(it.elem))
		}
		for _, g := range gets {
			if v, ok := sortLookup(tx, g, it.elem); ok {
				out = append(out, Bulk(v))
			} else {
				out = append(out, Nil)
			}
		}
	}
	return Array(out...)
}

// sortScore parses a sort weight as Redis's strtod check: the C string
// must be one number (leading space allowed, an empty string is 0), not
// NaN, and not overflowing or underflowing.
func sortScore(b []byte) (float64, bool) {
	v, erange, ok := zStrtod(cstr(b))
	// glibc also flags a subnormal result with ERANGE.
	erange = erange || v != 0 && math.Abs(v) < 0x1p-1022
	if !ok || erange || math.IsNaN(v) {
		return 0, false
	}
	return v, true
}
