package crdt

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand"
	"runtime"
	"strconv"
	"strings"
	"testing"
)

func TestListCommands(t *testing.T) {
	runSteps(t, []step{
		rs(":3", "RPUSH", "l", "a", "b", "c"),
		rs(":5", "LPUSH", "l", "y", "x"),
		rs("[\"x\" \"y\" \"a\" \"b\" \"c\"]", "LRANGE", "l", "0", "-1"),
		rs(":5", "LLEN", "l"),
		rs(":0", "LLEN", "nokey"),
		rs("-ERR wrong number of arguments for 'lpush' command", "LPUSH", "l"),
		rs(":0", "LPUSHX", "nokey", "a"),
		rs(":0", "RPUSHX", "nokey", "a"),
		rs(":0", "EXISTS", "nokey"),
		rs(":6", "RPUSHX", "l", "d"),
		rs(":7", "LPUSHX", "l", "w"),
		rs("\"w\"", "LINDEX", "l", "0"),
		rs("\"d\"", "LINDEX", "l", "-1"),
		rs("\"x\"", "LINDEX", "l", "-6"),
		rs("nil", "LINDEX", "l", "7"),
		rs("nil", "LINDEX", "l", "-8"),
		rs("nil", "LINDEX", "nokey", "x"),
		rs("-ERR value is not an integer or out of range", "LINDEX", "l", "x"),
		rs("[\"y\" \"a\"]", "LRANGE", "l", "2", "3"),
		rs("[\"c\" \"d\"]", "LRANGE", "l", "-2", "100"),
		rs("[]", "LRANGE", "l", "5", "2"),
		rs("[]", "LRANGE", "l", "7", "9"),
		rs("[\"w\"]", "LRANGE", "l", "-100", "0"),
		rs("[]", "LRANGE", "nokey", "0", "-1"),
		rs("-ERR value is not an integer or out of range", "LRANGE", "nokey", "a", "1"),
		rs("-ERR value is not an integer or out of range", "LRANGE", "l", "0", "1.5"),

		// Pops.
		rs("\"w\"", "LPOP", "l"),
		rs("\"d\"", "RPOP", "l"),
		rs("[\"x\" \"y\"]", "LPOP", "l", "2"),
		rs("[\"c\" \"b\"]", "RPOP", "l", "2"),
		rs("[]", "LPOP", "l", "0"),
		rs("nil", "LPOP", "nokey"),
		rs("nil", "LPOP", "nokey", "2"),
		rs("nil", "LPOP", "nokey", "0"),
		rs("-ERR value is out of range, must be positive", "LPOP", "l", "-1"),
		rs("-ERR value is out of range, must be positive", "RPOP", "nokey", "x"),
		rs("-ERR wrong number of arguments for 'lpop' command", "LPOP", "l", "1", "2"),
		rs("[\"a\"]", "RPOP", "l", "5"), // the last element: the key goes
		rs(":0", "EXISTS", "l"),

		// LSET.
		rs("-ERR no such key", "LSET", "nokey", "0", "x"),
		rs("-ERR no such key", "LSET", "nokey", "x", "x"),
		rs(":3", "RPUSH", "m", "a", "b", "c"),
		rs("+OK", "LSET", "m", "-1", "C"),
		rs("+OK", "LSET", "m", "0", "A"),
		rs("-ERR index out of range", "LSET", "m", "3", "x"),
		rs("-ERR index out of range", "LSET", "m", "-4", "x"),
		rs("-ERR value is not an integer or out of range", "LSET", "m", "x", "x"),
		rs("[\"A\" \"b\" \"C\"]", "LRANGE", "m", "0", "-1"),

		// LINSERT.
		rs(":4", "LINSERT", "m", "BEFORE", "b", "x"),
		rs(":5", "LINSERT", "m", "after", "b", "y"),
		rs(":6", "LINSERT", "m", "AFTER", "C", "z"),
		rs(":7", "LINSERT", "m", "before", "A", "0"),
		rs(":-1", "LINSERT", "m", "before", "nope", "0"),
		rs(":0", "LINSERT", "nokey", "before", "a", "0"),
		rs("-ERR syntax error", "LINSERT", "m", "middle", "a", "0"),
		rs("-ERR syntax error", "LINSERT", "nokey", "middle", "a", "0"),
		rs("[\"0\" \"A\" \"x\" \"b\" \"y\" \"C\" \"z\"]", "LRANGE", "m", "0", "-1"),

		// LREM.
		rs(":0", "DEL", "r"),
		rs(":8", "RPUSH", "r", "a", "b", "a", "c", "a", "b", "a", "d"),
		rs(":2", "LREM", "r", "2", "a"),
		rs("[\"b\" \"c\" \"a\" \"b\" \"a\" \"d\"]", "LRANGE", "r", "0", "-1"),
		rs(":1", "LREM", "r", "-1", "a"),
		rs("[\"b\" \"c\" \"a\" \"b\" \"d\"]", "LRANGE", "r", "0", "-1"),
		rs(":2", "LREM", "r", "0", "b"),
		rs(":0", "LREM", "r", "0", "zz"),
		rs(":0", "LREM", "nokey", "0", "zz"),
		rs("-ERR value is not an integer or out of range", "LREM", "nokey", "x", "zz"),
		rs(":1", "LREM", "r", "-9223372036854775808", "a"),
		rs(":1", "LREM", "r", "0", "c"),
		rs(":1", "LREM", "r", "1", "d"), // the last element: the key goes
		rs(":0", "EXISTS", "r"),
	})
}

func TestListCommandsMore(t *testing.T) {
	runSteps(t, []step{
		// LTRIM.
		rs(":6", "RPUSH", "t", "a", "b", "c", "d", "e", "f"),
		rs("+OK", "LTRIM", "t", "1", "-2"),
		rs("[\"b\" \"c\" \"d\" \"e\"]", "LRANGE", "t", "0", "-1"),
		rs("+OK", "LTRIM", "t", "-100", "100"),
		rs(":4", "LLEN", "t"),
		rs("+OK", "LTRIM", "t", "0", "0"),
		rs("[\"b\"]", "LRANGE", "t", "0", "-1"),
		rs("+OK", "LTRIM", "t", "2", "1"), // empty range: the key goes
		rs(":0", "EXISTS", "t"),
		rs("+OK", "LTRIM", "nokey", "0", "1"),
		rs("-ERR value is not an integer or out of range", "LTRIM", "nokey", "a", "1"),

		// LPOS.
		rs(":5", "RPUSH", "p", "a", "b", "a", "c", "a"),
		rs(":0", "LPOS", "p", "a"),
		rs(":2", "LPOS", "p", "a", "RANK", "2"),
		rs(":4", "LPOS", "p", "a", "RANK", "-1"),
		rs(":2", "LPOS", "p", "a", "RANK", "-2"),
		rs("nil", "LPOS", "p", "a", "RANK", "4"),
		rs("[:0 :2 :4]", "LPOS", "p", "a", "COUNT", "0"),
		rs("[:2 :4]", "LPOS", "p", "a", "RANK", "2", "COUNT", "5"),
		rs("[:4 :2]", "LPOS", "p", "a", "RANK", "-1", "COUNT", "2", "MAXLEN", "3"),
		rs("[:0]", "LPOS", "p", "a", "MAXLEN", "2", "COUNT", "0"),
		rs("nil", "LPOS", "p", "c", "MAXLEN", "3"),
		rs("[:4 :2 :0]", "LPOS", "p", "a", "RANK", "-9223372036854775808", "COUNT", "2"),
		rs("[]", "LPOS", "p", "zz", "COUNT", "1"),
		rs("nil", "LPOS", "nokey", "a"),
		rs("[]", "LPOS", "nokey", "a", "COUNT", "0"),
		rs("-ERR RANK can't be zero: use 1 to start from the first match, 2 from the second ... or use negative to start from the end of the list", "LPOS", "nokey", "a", "RANK", "0"),
		rs("-ERR COUNT can't be negative", "LPOS", "p", "a", "COUNT", "-1"),
		rs("-ERR MAXLEN can't be negative", "LPOS", "p", "a", "MAXLEN", "-1"),
		rs("-ERR value is not an integer or out of range", "LPOS", "p", "a", "RANK", "x"),
		rs("-ERR syntax error", "LPOS", "p", "a", "RANK"),
		rs("-ERR syntax error", "LPOS", "p", "a", "FOO", "1"),

		// LMOVE / RPOPLPUSH.
		rs(":3", "RPUSH", "src", "a", "b", "c"),
		rs("\"c\"", "RPOPLPUSH", "src", "dst"),
		rs("\"a\"", "LMOVE", "src", "dst", "LEFT", "RIGHT"),
		rs("[\"c\" \"a\"]", "LRANGE", "dst", "0", "-1"),
		rs("\"c\"", "LMOVE", "dst", "dst", "left", "right"), // rotation
		rs("[\"a\" \"c\"]", "LRANGE", "dst", "0", "-1"),
		rs(":1", "EXPIRE", "src", "100"),
		rs("\"b\"", "LMOVE", "src", "src", "LEFT", "LEFT"), // one element onto itself: TTL kept
		rs(":1", "EXISTS", "src"),
		rs(":100", "TTL", "src"),
		rs("\"b\"", "LMOVE", "src", "dst", "RIGHT", "LEFT"), // last element: src goes
		rs(":0", "EXISTS", "src"),
		rs("nil", "LMOVE", "nokey", "dst", "LEFT", "LEFT"),
		rs("nil", "RPOPLPUSH", "nokey", "dst"),
		rs("-ERR syntax error", "LMOVE", "dst", "x", "UP", "LEFT"),
		rs("-ERR syntax error", "LMOVE", "nokey", "x", "LEFT", "DOWN"),
		rs("+OK", "SET", "str", "v"),
		rs("-WRONGTYPE Operation against a key holding the wrong kind of value", "LMOVE", "dst", "str", "LEFT", "LEFT"),
		rs("-WRONGTYPE Operation against a key holding the wrong kind of value", "RPOPLPUSH", "str", "dst"),
		rs("nil", "RPOPLPUSH", "nokey", "str"), // an empty source is not checked against dst
		rs(":3", "LLEN", "dst"),

		// LMPOP.
		rs("[\"dst\" [\"b\"]]", "LMPOP", "2", "nokey", "dst", "LEFT"),
		rs("[\"dst\" [\"c\" \"a\"]]", "LMPOP", "1", "dst", "RIGHT", "COUNT", "10"),
		rs(":0", "EXISTS", "dst"),
		rs("nil", "LMPOP", "1", "dst", "LEFT"),
		rs(":3", "RPUSH", "mp", "1", "2", "3"),
		rs("[\"mp\" [\"1\" \"2\"]]", "LMPOP", "1", "mp", "left", "count", "2"),
		rs("-WRONGTYPE Operation against a key holding the wrong kind of value", "LMPOP", "2", "str", "mp", "LEFT"),
		rs("[\"mp\" [\"3\"]]", "LMPOP", "2", "mp", "str", "LEFT"),
		rs("-ERR numkeys should be greater than 0", "LMPOP", "0", "mp", "LEFT"),
		rs("-ERR numkeys should be greater than 0", "LMPOP", "x", "mp", "LEFT"),
		rs("-ERR syntax error", "LMPOP", "2", "mp", "LEFT"),
		rs("-ERR syntax error", "LMPOP", "9223372036854775807", "mp", "LEFT"),
		rs("-ERR syntax error", "LMPOP", "1", "mp", "MIDDLE"),
		rs("-ERR count should be greater than 0", "LMPOP", "1", "mp", "LEFT", "COUNT", "0"),
		rs("-ERR count should be greater than 0", "LMPOP", "1", "mp", "LEFT", "COUNT", "x"),
		rs("-ERR syntax error", "LMPOP", "1", "mp", "LEFT", "COUNT", "1", "COUNT", "1"),
		rs("-ERR syntax error", "LMPOP", "1", "mp", "LEFT", "COUNT"),
		rs("-ERR wrong number of arguments for 'lmpop' command", "LMPOP", "1", "mp"),

		// Wrong types.
		rs("-WRONGTYPE Operation against a key holding the wrong kind of value", "LPUSH", "str", "a"),
		rs("-WRONGTYPE Operation against a key holding the wrong kind of value", "RPUSHX", "str", "a"),
		rs("-WRONGTYPE Operation against a key holding the wrong kind of value", "LPOP", "str"),
		rs("-ERR value is out of range, must be positive", "LPOP", "str", "x"),
		rs("-WRONGTYPE Operation against a key holding the wrong kind of value", "LLEN", "str"),
		rs("-WRONGTYPE Operation against a key holding the wrong kind of value", "LRANGE", "str", "0", "1"),
		rs("-WRONGTYPE Operation against a key holding the wrong kind of value", "LINDEX", "str", "x"),
		rs("-WRONGTYPE Operation against a key holding the wrong kind of value", "LSET", "str", "x", "y"),
		rs("-WRONGTYPE Operation against a key holding the wrong kind of value", "LINSERT", "str", "before", "a", "b"),
		rs("-WRONGTYPE Operation against a key holding the wrong kind of value", "LREM", "str", "0", "a"),
		rs("-WRONGTYPE Operation against a key holding the wrong kind of value", "LTRIM", "str", "0", "1"),
		rs("-WRONGTYPE Operation against a key holding the wrong kind of value", "LPOS", "str", "a"),
		rs(":1", "RPUSH", "mp2", "a"),
		rs("-WRONGTYPE Operation against a key holding the wrong kind of value", "GET", "mp2"),

		// Whole-key commands.
		rs(":3", "RPUSH", "w", "x", "y", "z"),
		rs("+list", "TYPE", "w"),
		rs("\"quicklist\"", "OBJECT", "ENCODING", "w"),
		rs(":1", "COPY", "w", "w2"),
		rs("+OK", "RENAME", "w", "w3"),
		rs("[\"x\" \"y\" \"z\"]", "LRANGE", "w3", "0", "-1"),
		rs("[\"x\" \"y\" \"z\"]", "LRANGE", "w2", "0", "-1"),
		rs(":1", "MOVE", "w3", "1"),
		rsDB(1, "[\"x\" \"y\" \"z\"]", "LRANGE", "w3", "0", "-1"),
		rs(":2", "DEL", "p", "mp2"),
		rs("[\"0\" [\"w2\"]]", "SCAN", "0", "TYPE", "list"),
		rs(":1", "DEL", "w2"),
		rs(":0", "EXISTS", "w2"),
	})
}

// listSim is a multi-region run of random list commands: replicas apply
// local writes and receive each other's batches (encoded, so the effect
// codec is exercised) in random order, with duplicates and batches that
// arrive too early (refused and retried later).
type listSim struct {
	t    *testing.T
	rnd  *rand.Rand
	rs   []*replica
	out  [][][]byte // encoded batches per origin
	keys []string
	tok  int
	// Accounting by element token (every pushed or LSET value is unique;
	// LMOVE carries a token to its destination).
	created  map[string]bool // tokens pushed or written by LSET
	setNew   map[string]bool // tokens written by LSET (lost if the element was removed concurrently)
	removed  map[string]int  // LREM, LTRIM and LSET (old value) removals
	popped   map[string]int  // tokens a pop returned to a client
	moved    map[string]bool // tokens LMOVE gave a new position
	observed [][]string      // orders seen by local LRANGEs
}

func newListSim(t *testing.T, seed int64, n int) *listSim {
	s := &listSim{t: t, rnd: rand.New(rand.NewSource(seed)), rs: newReplicas(t, n), out: make([][][]byte, n),
		keys: []string{"q", "w", "e"}, created: map[string]bool{}, setNew: map[string]bool{},
		removed: map[string]int{}, popped: map[string]int{}, moved: map[string]bool{}}
	for i, r := range s.rs {
		r.clk.ms += int64(s.rnd.Intn(50)) - 25 + int64(i) // skewed clocks
	}
	return s
}

func (s *listSim) token(i int) string {
	s.tok++
	return fmt.Sprintf("r%dt%d", i, s.tok)
}

func (s *listSim) key() string { return s.keys[s.rnd.Intn(len(s.keys))] }

func (s *listSim) write(i int, args ...string) Reply {
	r := s.rs[i]
	before := len(r.out)
	rep := r.do(s.t, args...)
	for _, b := range r.out[before:] {
		s.out[i] = append(s.out[i], b.Encode(nil))
	}
	return rep
}

func (s *listSim) lrange(i int, key string) []string {
	rep := s.rs[i].do(s.t, "LRANGE", key, "0", "-1")
	var out []string
	for _, e := range rep.Elems {
		out = append(out, string(e.Str))
	}
	return out
}

func (s *listSim) pops(rep Reply) {
	switch rep.Kind {
	case KindBulk:
		s.popped[string(rep.Str)]++
	case KindArray:
		for _, e := range rep.Elems {
			s.pops(e)
		}
	}
}

// step runs one random command on replica i.
func (s *listSim) step(i int) {
	k := s.key()
	cur := s.lrange(i, k)
	if len(cur) > 1 {
		s.observed = append(s.observed, cur)
	}
	switch op := s.rnd.Intn(14); op {
	case 0, 1, 2, 3:
		cmd := []string{"LPUSH", "RPUSH", "LPUSHX", "RPUSHX"}[op]
		args := []string{cmd, k}
		for n := 1 + s.rnd.Intn(3); n > 0; n-- {
			args = append(args, s.token(i))
		}
		rep := s.write(i, args...)
		if rep.Int > 0 {
			for _, tk := range args[2:] {
				s.created[tk] = true
			}
		}
	case 4, 5:
		args := []string{[]string{"LPOP", "RPOP"}[op-4], k}
		if s.rnd.Intn(2) == 0 {
			args = append(args, strconv.Itoa(s.rnd.Intn(3)))
		}
		s.pops(s.write(i, args...))
	case 6:
		s.pops(s.write(i, "LMPOP", "2", k, s.key(), []string{"LEFT", "RIGHT"}[s.rnd.Intn(2)], "COUNT", strconv.Itoa(1+s.rnd.Intn(2))))
	case 7:
		dst := s.key()
		// The moved token is still alive (in dst): not counted as popped.
		rep := s.write(i, "LMOVE", k, dst, []string{"LEFT", "RIGHT"}[s.rnd.Intn(2)], []string{"LEFT", "RIGHT"}[s.rnd.Intn(2)])
		if rep.Kind == KindBulk {
			s.moved[string(rep.Str)] = true
		}
	case 8:
		if len(cur) == 0 {
			return
		}
		tk := s.token(i)
		if s.write(i, "LINSERT", k, []string{"BEFORE", "AFTER"}[s.rnd.Intn(2)], cur[s.rnd.Intn(len(cur))], tk).Int > 0 {
			s.created[tk] = true
		}
	case 9:
		if len(cur) == 0 {
			return
		}
		j := s.rnd.Intn(len(cur))
		tk := s.token(i)
		if show(s.write(i, "LSET", k, strconv.Itoa(j), tk)) == "+OK" {
			s.created[tk] = true
			s.setNew[tk] = true
			s.removed[cur[j]]++
		}
	case 10:
		if len(cur) == 0 {
			return
		}
		tk := cur[s.rnd.Intn(len(cur))]
		n := s.write(i, "LREM", k, "0", tk).Int
		s.removed[tk] += int(n)
	case 11:
		if len(cur) == 0 {
			return
		}
		if s.rnd.Intn(6) == 0 {
			s.write(i, "DEL", k)
			for _, x := range cur {
				s.removed[x]++
			}
			return
		}
		a, b := s.rnd.Intn(len(cur)+1)-1, s.rnd.Intn(len(cur)+2)-1
		s.write(i, "LTRIM", k, strconv.Itoa(a), strconv.Itoa(b))
		after := map[string]int{}
		for _, x := range s.lrange(i, k) {
			after[x]++
		}
		for _, x := range cur {
			if after[x] > 0 {
				after[x]--
			} else {
				s.removed[x]++
			}
		}
	case 12:
		s.deliver()
	case 13:
		if s.rnd.Intn(8) > 0 {
			s.deliver()
			return
		}
		// State transfer: replica i catches up by joining a peer's state.
		j := s.rnd.Intn(len(s.rs))
		if j == i {
			return
		}
		o, err := Restore(s.rs[j].ks.Snapshot())
		if err != nil {
			s.t.Fatal(err)
		}
		s.rs[i].ks.Join(o)
	}
}

// deliver hands one random batch of one origin to another replica: often
// the next one it needs, sometimes an old one (a duplicate) or a later one
// (refused: a gap).
func (s *listSim) deliver() {
	i, j := s.rnd.Intn(len(s.rs)), s.rnd.Intn(len(s.rs))
	if i == j || len(s.out[i]) == 0 {
		return
	}
	have := int(s.rs[j].ks.Version().Get(s.rs[i].ks.Origin()))
	idx := have
	switch s.rnd.Intn(5) {
	case 0:
		idx = s.rnd.Intn(len(s.out[i])) // anything: duplicate, next or gap
	}
	if idx >= len(s.out[i]) {
		return
	}
	b, err := DecodeBatch(s.out[i][idx])
	if err != nil {
		s.t.Fatal(err)
	}
	if err := s.rs[j].ks.Merge(b); err != nil && !retryable(err) {
		s.t.Fatalf("merge: %v", err)
	}
}

// settle delivers everything everywhere.
func (s *listSim) settle() {
	for progress := true; progress; {
		progress = false
		for i := range s.rs {
			for j := range s.rs {
				if i == j {
					continue
				}
				for {
					have := int(s.rs[j].ks.Version().Get(s.rs[i].ks.Origin()))
					if have >= len(s.out[i]) {
						break
					}
					b, _ := DecodeBatch(s.out[i][have])
					if err := s.rs[j].ks.Merge(b); err != nil {
						if retryable(err) {
							break
						}
						s.t.Fatal(err)
					}
					progress = true
				}
			}
		}
	}
}

func (s *listSim) check(snaps [][]byte) {
	t := s.t
	converged(t, s.rs, []string{"LRANGE", "q", "0", "-1"}, []string{"LRANGE", "w", "0", "-1"},
		[]string{"LRANGE", "e", "0", "-1"})
	final := map[string]int{}
	var lists [][]string
	for _, k := range s.keys {
		l := s.lrange(0, k)
		lists = append(lists, l)
		for _, x := range l {
			final[x]++
		}
	}
	// Order: two elements seen in some order keep it.
	posIn := map[string]int{}
	listOf := map[string]int{}
	for li, l := range lists {
		for p, x := range l {
			posIn[x], listOf[x] = p, li
		}
	}
	for _, obs := range s.observed {
		for a := 0; a < len(obs); a++ {
			for b := a + 1; b < len(obs); b++ {
				x, y := obs[a], obs[b]
				if final[x] == 1 && final[y] == 1 && !s.moved[x] && !s.moved[y] && listOf[x] == listOf[y] && posIn[x] > posIn[y] {
					t.Fatalf("order of %s before %s not kept: %v", x, y, lists[listOf[x]])
				}
			}
		}
	}
	// Conservation: nothing vanishes unless something removed it, and
	// deliveries beyond one per token are concurrent pops, all counted.
	var dups uint64
	for tk := range s.created {
		n := final[tk] + s.popped[tk]
		if n == 0 && s.removed[tk] == 0 && !s.setNew[tk] {
			t.Errorf("element %s lost", tk)
		}
		if n > 1 {
			dups += uint64(n - 1)
		}
	}
	var counted uint64
	for _, r := range s.rs {
		counted += r.ks.Stats.ListConcurrentPops
	}
	if dups > counted {
		t.Errorf("%d duplicate deliveries, only %d concurrent pops counted", dups, counted)
	}
	// State transfer: joining the replicas' snapshots taken before they
	// settled, in any order, gives the settled state.
	d := s.rs[0].ks.Digest()
	for trial := 0; trial < 3; trial++ {
		order := s.rnd.Perm(len(s.rs))
		ks, err := Restore(snaps[order[0]])
		if err != nil {
			t.Fatal(err)
		}
		for _, o := range order[1:] {
			ko, err := Restore(snaps[o])
			if err != nil {
				t.Fatal(err)
			}
			ks.Join(ko)
			ks.Join(ko) // idempotent
		}
		if ks.Digest() != d {
			t.Fatalf("join in order %v differs from merged state", order)
		}
	}
}

// TestListConverges: 3-5 regions running random list commands with random
// delivery end identical, keep every order they observed, lose no element
// and duplicate none beyond the concurrent pops they count.
func TestListConverges(t *testing.T) {
	seeds := 60
	if testing.Short() {
		seeds = 15
	}
	var pops uint64
	for seed := int64(1); seed <= int64(seeds); seed++ {
		s := newListSim(t, seed, 3+int(seed%3))
		for n := 0; n < 400; n++ {
			s.step(s.rnd.Intn(len(s.rs)))
		}
		snaps := make([][]byte, len(s.rs))
		for i, r := range s.rs {
			snaps[i] = r.ks.Snapshot()
			ks, err := Restore(snaps[i])
			if err != nil || ks.Digest() != r.ks.Digest() {
				t.Fatalf("seed %d: snapshot round trip: %v", seed, err)
			}
		}
		s.settle()
		s.check(snaps)
		if t.Failed() {
			t.Fatalf("seed %d failed", seed)
		}
		for _, r := range s.rs {
			pops += r.ks.Stats.ListConcurrentPops
		}
	}
	if pops == 0 {
		t.Error("no concurrent pop in any run: the workload does not exercise the rule")
	}
	t.Logf("concurrent pops counted: %d", pops)
}

// TestListConcurrentRules pins the documented cross-region rules down on
// small cases.
func TestListConcurrentRules(t *testing.T) {
	lr := []string{"LRANGE", "l", "0", "-1"}

	// Concurrent pushes at one end are all kept, each op's elements
	// together, in the same order everywhere.
	rs := newReplicas(t, 3)
	rs[0].do(t, "RPUSH", "l", "base")
	syncAll(t, rs)
	rs[0].do(t, "RPUSH", "l", "a1", "a2")
	rs[1].do(t, "RPUSH", "l", "b1", "b2")
	rs[2].do(t, "LPUSH", "l", "c1", "c2")
	syncAll(t, rs)
	converged(t, rs, lr)
	expectR(t, rs[2], `["c2" "c1" "base" "a1" "a2" "b1" "b2"]`, lr...)

	// Concurrent LINSERTs at the same spot are both kept.
	rs[0].do(t, "LINSERT", "l", "AFTER", "base", "x")
	rs[1].do(t, "LINSERT", "l", "AFTER", "base", "y")
	syncAll(t, rs)
	converged(t, rs, lr)
	expectR(t, rs[0], `["c2" "c1" "base" "x" "y" "a1" "a2" "b1" "b2"]`, lr...)

	// Two regions pop the same element: both get it, each counts it.
	rs[0].do(t, "DEL", "l")
	rs[0].do(t, "RPUSH", "l", "job1", "job2")
	syncAll(t, rs)
	expectR(t, rs[0], `"job2"`, "RPOP", "l")
	expectR(t, rs[1], `"job2"`, "RPOP", "l")
	syncAll(t, rs)
	converged(t, rs, lr)
	expectR(t, rs[2], `["job1"]`, lr...)
	if a, b, c := rs[0].ks.Stats.ListConcurrentPops, rs[1].ks.Stats.ListConcurrentPops, rs[2].ks.Stats.ListConcurrentPops; a != 1 || b != 1 || c != 1 {
		t.Errorf("concurrent pops counted %d %d %d, want 1 in each region", a, b, c)
	}
	// Popping the last element concurrently: the key goes in both and
	// the second pop still counts where the key is gone already.
	expectR(t, rs[0], `"job1"`, "LPOP", "l")
	expectR(t, rs[1], `["job1"]`, "LPOP", "l", "5")
	syncAll(t, rs)
	converged(t, rs, []string{"EXISTS", "l"})
	expectR(t, rs[2], ":0", "EXISTS", "l")
	if got := rs[0].ks.Stats.ListConcurrentPops; got != 2 {
		t.Errorf("region 1 counted %d concurrent pops, want 2", got)
	}

	// A pop removes only what it saw: a push concurrent with popping
	// the last element survives, and so does the key.
	rs[0].do(t, "RPUSH", "l", "old")
	syncAll(t, rs)
	expectR(t, rs[0], `"old"`, "LPOP", "l")
	rs[1].do(t, "RPUSH", "l", "new")
	syncAll(t, rs)
	converged(t, rs, lr)
	expectR(t, rs[0], `["new"]`, lr...)

	// LSET is LWW per element; LSET of an element removed concurrently
	// is lost; LSET of one element leaves concurrent pushes alone.
	rs[0].do(t, "RPUSH", "l", "e2")
	syncAll(t, rs)
	rs[0].clk.ms += 10 // region 1 writes later
	rs[0].do(t, "LSET", "l", "0", "from1")
	rs[1].do(t, "LSET", "l", "0", "from2")
	rs[2].do(t, "RPUSH", "l", "e3")
	syncAll(t, rs)
	converged(t, rs, lr)
	expectR(t, rs[1], `["from1" "e2" "e3"]`, lr...)
	rs[0].do(t, "LSET", "l", "1", "lost")
	rs[1].do(t, "LREM", "l", "0", "e2")
	syncAll(t, rs)
	converged(t, rs, lr)
	expectR(t, rs[0], `["from1" "e3"]`, lr...)

	// A capped list (LPUSH + LTRIM 0 1) can exceed its cap until the
	// next trim: each region trims only what it saw.
	rs[0].do(t, "DEL", "l")
	syncAll(t, rs)
	for i, r := range rs {
		r.do(t, "LPUSH", "l", fmt.Sprintf("r%d", i))
		r.do(t, "LTRIM", "l", "0", "1")
	}
	syncAll(t, rs)
	converged(t, rs, []string{"LLEN", "l"})
	expectR(t, rs[0], ":3", "LLEN", "l")
	rs[0].do(t, "LPUSH", "l", "next")
	rs[0].do(t, "LTRIM", "l", "0", "1")
	syncAll(t, rs)
	converged(t, rs, lr)
	expectR(t, rs[2], ":2", "LLEN", "l")

	// DEL removes what it observed; a concurrent push survives alone.
	rs[0].do(t, "DEL", "l")
	rs[1].do(t, "RPUSH", "l", "unseen")
	syncAll(t, rs)
	converged(t, rs, lr)
	expectR(t, rs[0], `["unseen"]`, lr...)

	// Two concurrent LMOVEs of one element deliver it twice (counted).
	rs[0].do(t, "DEL", "l")
	rs[0].do(t, "RPUSH", "l", "m")
	syncAll(t, rs)
	before := rs[0].ks.Stats.ListConcurrentPops
	expectR(t, rs[0], `"m"`, "LMOVE", "l", "d1", "LEFT", "LEFT")
	expectR(t, rs[1], `"m"`, "LMOVE", "l", "d2", "LEFT", "LEFT")
	syncAll(t, rs)
	converged(t, rs, []string{"LRANGE", "d1", "0", "-1"}, []string{"LRANGE", "d2", "0", "-1"}, []string{"EXISTS", "l"})
	expectR(t, rs[2], `["m"]`, "LRANGE", "d2", "0", "-1")
	if rs[0].ks.Stats.ListConcurrentPops != before+1 {
		t.Error("a concurrent LMOVE of one element was not counted")
	}
}

// TestListDecodeRejectsGarbage: list effects and snapshots that could not
// have been produced are refused with an error, never a panic.
func TestListDecodeRejectsGarbage(t *testing.T) {
	o := Origin{Region: 2, Incarnation: 1}
	good := listInsertEffect([]byte("l"), nil, 0, 1, [][]byte{[]byte("a")})
	bad := []Effect{
		func() Effect { f := good; f.Int = 2; return f }(),                                               // direction
		func() Effect { f := good; f.Value = []byte{0}; return f }(),                                     // no elements
		func() Effect { f := good; f.Value = []byte{2, 1, 'a'}; return f }(),                             // truncated
		func() Effect { f := good; f.Field = append(f.Field, 0); return f }(),                            // trailing bytes
		{Kind: EffListRem, Key: []byte("l"), Value: []byte{0}},                                           // nothing removed
		{Kind: EffListPop, Key: []byte("l"), Value: []byte{1, 1, 0, 2, 1, 0, 0}},                         // seq 0
		{Kind: EffListSet, Key: []byte("l"), Field: []byte{0}, Value: []byte("v")},                       // empty position
		{Kind: EffListSet, Key: []byte("l"), Field: []byte{1, 0, 2, 1, 1, 0x80, 0x80, 0x80, 0x80, 0x40}}, // sub beyond int32
	}
	for i, f := range bad {
		raw := encodeBadEffect(o, f)
		if _, err := DecodeBatch(raw); !errors.Is(err, ErrEffect) && !errors.Is(err, ErrCorrupt) {
			t.Errorf("case %d: decoded %v, want an error", i, err)
		}
	}
	b := &Batch{Origin: o, FirstSeq: 1, Ops: []Op{{Time: 1, Effects: []Effect{good}}}}
	if _, err := DecodeBatch(b.Encode(nil)); err != nil {
		t.Fatalf("a valid insert is refused: %v", err)
	}

	// Snapshots: unsorted and duplicate positions are not canonical.
	enc := func(ns ...*lnode) []byte {
		l := &listValue{root: nil}
		for _, n := range ns {
			l.root = tinsert(l.root, n)
		}
		e := &encoder{}
		e.uvarint(uint64(len(ns)))
		for _, n := range ns { // in the order given, sorted or not
			encodeListPos(e, &n.pos)
			e.str(n.val)
			e.uvarint(uint64(n.itime))
			if n.set != nil {
				e.byte1(1)
				e.tag(*n.set)
			} else {
				e.byte1(0)
			}
		}
		return e.b
	}
	p := func(n int64, seq uint64) lpos { return lpos{head: lcomp{n: n, dot: Dot{o, seq}}} }
	a, b2 := newLnode(p(1, 1), "a", 5), newLnode(p(2, 2), "b", 6)
	for name, raw := range map[string][]byte{
		"unsorted":  enc(newLnode(p(2, 2), "b", 6), newLnode(p(1, 1), "a", 5)),
		"duplicate": enc(newLnode(p(1, 1), "a", 5), newLnode(p(1, 1), "a", 5)),
		"bad flag":  append(enc(newLnode(p(1, 1), "a", 5))[:len(enc(newLnode(p(1, 1), "a", 5)))-1], 2),
	} {
		d := &decoder{b: raw}
		decodeList(d)
		if d.err == nil {
			t.Errorf("%s: decoded", name)
		}
	}
	d := &decoder{b: enc(a, b2)}
	if v := decodeList(d); d.err != nil || v.(*listValue).length() != 2 {
		t.Fatalf("a valid list is refused: %v", d.err)
	}
}

// encodeBadEffect writes a one-effect batch without the encoder's checks.
func encodeBadEffect(o Origin, f Effect) []byte {
	e := encoder{}
	e.byte1(batchFormat)
	e.origin(o)
	e.uvarint(1)
	e.vv(nil)
	e.uvarint(1)
	e.uvarint(1)
	e.uvarint(1)
	encodeEffect(&e, &f)
	return e.b
}

// FuzzListDecode: decoding arbitrary bytes as a list never panics, and
// whatever decodes re-encodes to bytes that decode to the same encoding
// again (varints may be overlong in the input, never in the output).
func FuzzListDecode(f *testing.F) {
	o := Origin{Region: 2, Incarnation: 1}
	l := &listValue{}
	for i := 0; i < 5; i++ {
		l.root = tinsert(l.root, newLnode(lpos{head: lcomp{n: int64(i) * listStep, dot: Dot{o, uint64(i + 1)}}}, "v", HLC(i+1)))
	}
	e := &encoder{}
	l.encode(e)
	f.Add(e.b)
	f.Add([]byte{1, 2, 0, 2, 1, 1, 0, 1, 'x', 1, 0})
	f.Fuzz(func(t *testing.T, raw []byte) {
		d := &decoder{b: raw}
		v := decodeList(d)
		parseListPos(raw)
		parseListPositions(raw)
		if d.err != nil {
			return
		}
		e := &encoder{}
		v.encode(e)
		d2 := &decoder{b: e.b}
		v2 := decodeList(d2)
		if d2.err != nil || len(d2.b) != 0 {
			t.Fatalf("re-encoding does not decode: %v", d2.err)
		}
		e2 := &encoder{}
		v2.encode(e2)
		if !bytes.Equal(e.b, e2.b) {
			t.Fatalf("re-encoding differs: %x vs %x", e.b, e2.b)
		}
	})
}

// TestListPositionGrowth: pushes keep one-component positions; repeated
// LINSERTs at one spot stay shallow; only nested bisection deepens, by one
// component per 16 levels of nesting.
func TestListPositionGrowth(t *testing.T) {
	ks, clk := newTestKS(t)
	depth := func(key string) int {
		e, _ := ks.dbs[0].keys.Get(key)
		max := 0
		for _, n := range e.value(TypeList).(*listValue).nodes() {
			if n.pos.len() > max {
				max = n.pos.len()
			}
		}
		return max
	}
	for i := 0; i < 2000; i++ {
		do(t, ks, clk, "LPUSH", "q", "x")
		do(t, ks, clk, "RPUSH", "q", "y")
		if i%2 == 0 {
			do(t, ks, clk, "RPOP", "q")
		}
	}
	if d := depth("q"); d != 1 {
		t.Errorf("queue positions have %d components, want 1", d)
	}
	do(t, ks, clk, "RPUSH", "b", "lo", "hi")
	do(t, ks, clk, "RPUSH", "a", "lo", "hi")
	for i := 0; i < 1000; i++ {
		do(t, ks, clk, "LINSERT", "b", "BEFORE", "hi", strconv.Itoa(i)) // always right before hi
		do(t, ks, clk, "LINSERT", "a", "AFTER", "lo", strconv.Itoa(i))  // always right after lo
	}
	if d1, d2 := depth("b"), depth("a"); d1 > 2 || d2 > 2 {
		t.Errorf("1000 LINSERTs at one spot made positions of %d and %d components", d1, d2)
	}
	do(t, ks, clk, "RPUSH", "n", "lo", "hi")
	lo := "lo"
	for i := 0; i < 320; i++ {
		// Each insert goes right after lo, between lo and the previous
		// insert or the previous insert and hi: a nested bisection.
		m := strconv.Itoa(i)
		do(t, ks, clk, "LINSERT", "n", "AFTER", lo, m)
		if i%2 == 0 {
			lo = m
		}
	}
	if d := depth("n"); d > 320/16+2 {
		t.Errorf("nested bisection: %d components", d)
	}
	t.Logf("depth after 320 nested inserts: %d", depth("n"))
}

// benchList returns a solo keyspace holding list "q" of n 16-byte elements.
func benchList(b *testing.B, n int) (*Keyspace, *testClock) {
	ks, clk := newTestKS(b)
	args := []string{"RPUSH", "q"}
	for i := 0; i < n; i++ {
		args = append(args, fmt.Sprintf("%016d", i))
		if len(args) == 1002 || i == n-1 {
			do(b, ks, clk, args...)
			args = args[:2]
		}
	}
	return ks, clk
}

// BenchmarkListQueue: a job queue (LPUSH + RPOP) on lists of 1k to 1M
// elements; O(log n) per op, so the time grows with the depth only.
func BenchmarkListQueue(b *testing.B) {
	for _, n := range []int{1000, 100000, 1000000} {
		b.Run(strconv.Itoa(n), func(b *testing.B) {
			ks, clk := benchList(b, n)
			push := [][]byte{[]byte("LPUSH"), []byte("q"), []byte("job-0123456789ab")}
			pop := [][]byte{[]byte("RPOP"), []byte("q")}
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				ks.Apply(clk.stamp(), []Command{{Args: push}})
				ks.Apply(clk.stamp(), []Command{{Args: pop}})
			}
		})
	}
}

// BenchmarkListIndex: LINDEX and a 10-element LRANGE in the middle of a
// 100k list, by order statistics.
func BenchmarkListIndex(b *testing.B) {
	ks, clk := benchList(b, 100000)
	idx := [][]byte{[]byte("LINDEX"), []byte("q"), []byte("50000")}
	rng := [][]byte{[]byte("LRANGE"), []byte("q"), []byte("-50000"), []byte("-49991")}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		ks.Read(0, clk.ms, 0, idx)
		ks.Read(0, clk.ms, 0, rng)
	}
}

// BenchmarkListMemory reports the heap bytes one 16-byte element costs in a
// 100k-element list (B/elem); redis-server 7.0 takes about 20 (docs/lists.md).
func BenchmarkListMemory(b *testing.B) {
	for i := 0; i < b.N; i++ {
		var m0, m1 runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&m0)
		ks, _ := benchList(b, 100000)
		runtime.GC()
		runtime.ReadMemStats(&m1)
		b.ReportMetric(float64(m1.HeapAlloc-m0.HeapAlloc)/100000, "B/elem")
		runtime.KeepAlive(ks)
	}
}

// TestListTypeConflict: a list and a string written concurrently under one
// key: the later write's type shows everywhere, and popping the list empty
// while the string is hidden leaves the string.
func TestListTypeConflict(t *testing.T) {
	rs := newReplicas(t, 2)
	rs[0].do(t, "RPUSH", "k", "a", "b")
	rs[1].clk.ms += 100
	rs[1].do(t, "SET", "k", "s")
	syncAll(t, rs)
	converged(t, rs, []string{"TYPE", "k"}, []string{"GET", "k"})
	expectR(t, rs[0], "+string", "TYPE", "k")
	if rs[0].ks.Stats.TypeConflicts == 0 {
		t.Error("type conflict not counted")
	}
	rs[0].do(t, "RPUSH", "k2", "x")
	syncAll(t, rs)
	rs[0].clk.ms += 1000
	rs[0].do(t, "LPUSH", "k2", "newer")
	rs[1].do(t, "SET", "k2", "older")
	syncAll(t, rs)
	converged(t, rs, []string{"TYPE", "k2"}, []string{"LRANGE", "k2", "0", "-1"})
	expectR(t, rs[1], "+list", "TYPE", "k2")
	expectR(t, rs[1], `["newer"]`, "LRANGE", "k2", "0", "-1") // SET removed the list it saw
}

// TestListSequentialModel runs random list commands on one region and on a
// plain slice model of Redis's list semantics, comparing every reply (the
// respdiff group does the same against redis-server; this runs anywhere).
// A second region merging the batches ends with the same digest.
func TestListSequentialModel(t *testing.T) {
	seeds := int64(20)
	if testing.Short() {
		seeds = 4
	}
	for seed := int64(1); seed <= seeds; seed++ {
		rnd := rand.New(rand.NewSource(seed))
		rs := newReplicas(t, 2)
		model := map[string][]string{}
		keys := []string{"a", "b"}
		val := func() string { return strconv.Itoa(rnd.Intn(6)) }
		idx := func(n int) int { return rnd.Intn(2*n+5) - n - 2 }
		for step := 0; step < 1500; step++ {
			k, k2 := keys[rnd.Intn(2)], keys[rnd.Intn(2)]
			l := model[k]
			var args []string
			var want string
			strs := func(xs []string) string {
				out := make([]string, len(xs))
				for i, x := range xs {
					out[i] = strconv.Quote(x)
				}
				return "[" + strings.Join(out, " ") + "]"
			}
			norm := func(i, n int) int {
				if i < 0 {
					i += n
				}
				return i
			}
			switch rnd.Intn(10) {
			case 0:
				v1, v2 := val(), val()
				args = []string{"LPUSH", k, v1, v2}
				model[k] = append([]string{v2, v1}, l...)
				want = ":" + strconv.Itoa(len(l)+2)
			case 1:
				v := val()
				args = []string{"RPUSH", k, v}
				model[k] = append(append([]string(nil), l...), v)
				want = ":" + strconv.Itoa(len(l)+1)
			case 2:
				c := rnd.Intn(4)
				args = []string{"RPOP", k, strconv.Itoa(c)}
				switch {
				case len(l) == 0:
					want = "nil"
				default:
					if c > len(l) {
						c = len(l)
					}
					var got []string
					for i := 0; i < c; i++ {
						got = append(got, l[len(l)-1-i])
					}
					model[k] = l[:len(l)-c]
					want = strs(got)
				}
			case 3:
				args = []string{"LPOP", k}
				if len(l) == 0 {
					want = "nil"
				} else {
					want = strconv.Quote(l[0])
					model[k] = l[1:]
				}
			case 4:
				i := idx(len(l))
				args = []string{"LINDEX", k, strconv.Itoa(i)}
				if j := norm(i, len(l)); j >= 0 && j < len(l) {
					want = strconv.Quote(l[j])
				} else {
					want = "nil"
				}
			case 5:
				i, v := idx(len(l)), val()
				args = []string{"LSET", k, strconv.Itoa(i), v}
				switch j := norm(i, len(l)); {
				case len(l) == 0:
					want = "-ERR no such key"
				case j < 0 || j >= len(l):
					want = "-ERR index out of range"
				default:
					l2 := append([]string(nil), l...)
					l2[j] = v
					model[k] = l2
					want = "+OK"
				}
			case 6:
				pivot, v := val(), val()
				before := rnd.Intn(2) == 0
				args = []string{"LINSERT", k, map[bool]string{true: "BEFORE", false: "AFTER"}[before], pivot, v}
				want = ":0"
				if len(l) > 0 {
					want = ":-1"
					for j, x := range l {
						if x == pivot {
							if !before {
								j++
							}
							l2 := append(append(append([]string(nil), l[:j]...), v), l[j:]...)
							model[k] = l2
							want = ":" + strconv.Itoa(len(l2))
							break
						}
					}
				}
			case 7:
				c, v := rnd.Intn(5)-2, val()
				args = []string{"LREM", k, strconv.Itoa(c), v}
				keep := make([]bool, len(l))
				removed := 0
				for i := range l {
					j := i
					if c < 0 {
						j = len(l) - 1 - i
					}
					if l[j] == v && (c == 0 || removed < listAbs(c)) {
						removed++
						continue
					}
					keep[j] = true
				}
				var l2 []string
				for j, x := range l {
					if keep[j] {
						l2 = append(l2, x)
					}
				}
				model[k] = l2
				want = ":" + strconv.Itoa(removed)
			case 8:
				s, e := idx(len(l)), idx(len(l))
				args = []string{"LTRIM", k, strconv.Itoa(s), strconv.Itoa(e)}
				if a, b, ok := listRange(int64(s), int64(e), len(l)); ok {
					model[k] = append([]string(nil), l[a:b+1]...)
				} else {
					model[k] = nil
				}
				want = "+OK"
			case 9:
				args = []string{"RPOPLPUSH", k, k2}
				if len(l) == 0 {
					want = "nil"
				} else {
					v := l[len(l)-1]
					model[k] = l[:len(l)-1]
					model[k2] = append([]string{v}, model[k2]...)
					want = strconv.Quote(v)
				}
			}
			if got := show(rs[0].do(t, args...)); got != want {
				t.Fatalf("seed %d step %d %v: got %s, model says %s", seed, step, args, got, want)
			}
			for _, kk := range keys {
				if len(model[kk]) == 0 {
					delete(model, kk)
				}
				if got, want := show(rs[0].do(t, "LRANGE", kk, "0", "-1")), strs(model[kk]); got != want {
					t.Fatalf("seed %d step %d after %v: %s holds %s, model %s", seed, step, args, kk, got, want)
				}
			}
		}
		rs[0].sendTo(t, rs[1])
		converged(t, rs, []string{"LRANGE", "a", "0", "-1"}, []string{"LRANGE", "b", "0", "-1"})
	}
}

func listAbs(x int) int {
	if x < 0 {
		return -x
	}
	return x
}
