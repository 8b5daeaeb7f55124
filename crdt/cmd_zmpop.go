package crdt

import "strings"

// ZMPOP pops from the first non-empty sorted set among its keys, in
// argument order, in one command. BZPOPMIN, BZPOPMAX and BZMPOP run as it
// whenever they do not block (the server's blocking layer proposes it on a
// blocked client's behalf, and MULTI runs it in their place), so its reply
// shapes are the ones those commands build on: [key, [[member, score],
// ...]] in RESP2 and RESP3 alike, a null array when every key is empty.

func init() {
	register(&CommandSpec{Name: "zmpop", Arity: -4, Flags: []string{"movablekeys"},
		Categories: []string{"write", "sortedset", "slow"}, Write: true, Run: zmpopCmd})
}

// MPopArgs is a parsed "numkeys key [key ...] <where> [COUNT count]" tail
// shared by ZMPOP, LMPOP and their blocking forms.
type MPopArgs struct {
	Keys  [][]byte
	Where int   // index in the where list given to ParseMPop
	Count int64 // 1 when COUNT is absent
}

// ParseMPop parses args[numIdx:] as Redis 7.0's mpop commands do, in its
// order: numkeys (1 or more), the where word (one of wheres, any case),
// then an optional COUNT (1 or more, once).
func ParseMPop(args [][]byte, numIdx int, wheres ...string) (MPopArgs, Reply, bool) {
	var m MPopArgs
	n, ok := parseInt64(args[numIdx])
	if !ok || n < 1 {
		return m, Err("ERR numkeys should be greater than 0"), false
	}
	whereIdx := numIdx + 1 + int(min(n, int64(len(args))))
	if whereIdx >= len(args) {
		return m, ErrSyntax, false
	}
	m.Where = -1
	for i, w := range wheres {
		if strings.EqualFold(string(args[whereIdx]), w) {
			m.Where = i
		}
	}
	if m.Where < 0 {
		return m, ErrSyntax, false
	}
	m.Count = -1
	for j := whereIdx + 1; j < len(args); j++ {
		if m.Count == -1 && strings.EqualFold(string(args[j]), "count") && j+1 < len(args) {
			j++
			c, ok := parseInt64(args[j])
			if !ok || c < 1 {
				return m, Err("ERR count should be greater than 0"), false
			}
			m.Count = c
			continue
		}
		return m, ErrSyntax, false
	}
	if m.Count == -1 {
		m.Count = 1
	}
	m.Keys = args[numIdx+1 : whereIdx]
	return m, Reply{}, true
}

func zmpopCmd(tx *Tx, args [][]byte) Reply {
	m, r, ok := ParseMPop(args, 1, "min", "max")
	if !ok {
		return r
	}
	for _, key := range m.Keys {
		z, errReply, ok := zsetLookup(tx, key)
		if !ok {
			return errReply
		}
		if zsetCard(z) == 0 {
			continue
		}
		fromMax := m.Where == 1
		n := int(min(m.Count, int64(z.card())))
		names := make([]string, 0, n)
		pairs := make([]Reply, 0, n)
		nd := z.index.first()
		if fromMax {
			nd = z.index.tail
		}
		for ; len(names) < n; nd = zStep(nd, fromMax) {
			names = append(names, nd.member)
			pairs = append(pairs, Array(BulkString(nd.member), Double(nd.score)))
		}
		zRemoveMembers(tx, key, names)
		return Array(Bulk(key), Array(pairs...))
	}
	return NilArray
}
