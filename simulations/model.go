package simulations

// The simulation's workload and its reference model. The model is written
// without crdt's merge logic: it folds every acknowledged (applied) local
// write of every region into plain Go maps, and the regions' final state
// must read back as the model says. Keys are split into classes by prefix so
// that each class has a rule simple enough to state independently:
//
//	c:K   INCRBY only                  value = sum of all increments
//	f:K   INCRBYFLOAT (quarters) only  value = sum (exact in binary)
//	s:K   SADD only                    members = union of all adds
//	w:K   SET only                     value = the write with the greatest tag
//	hc:K  HINCRBY only                 field = sum
//	hw:K  HSET only                    field = the write with the greatest tag
//	zi:K  ZINCRBY (integers) only      score = sum
//	zw:K  ZADD only                    score = the write with the greatest tag
//	fl:K  SADD and SREM                members = add-wins: a member is present
//	                                   iff some SADD of it was not observed by
//	                                   any SREM of it (observed: covered by the
//	                                   remover's version vector at its apply)
//	q:K   RPUSH of unique jobs, LPOP   a job queue: every pushed job is
//	                                   still queued or was popped, never both;
//	                                   no job is queued twice; jobs popped more
//	                                   than once (at-least-once under concurrent
//	                                   pops) are at most the concurrent pops the
//	                                   regions counted
//	x:K   XADD with auto IDs           every acknowledged entry is in the
//	                                   stream with its fields, under the ID its
//	                                   XADD returned; no other entry; IDs unique
//	p:K   PFADD                        PFCOUNT within HyperLogLog's error of
//	                                   the number of distinct elements added
//	m:K   every write type, DEL, EXPIRE, removes: checked by digest only
//
// c:K also takes EXPIRE (a rate limiter's window) and w:K also SET ... EX
// (a session), both with TTLs far beyond any run.
//
// A tag is (HLC time, region, incarnation, seq), compared here field by
// field; the time and seq of each write are read back after its apply.

import (
	"bytes"
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"

	"concord/crdt"
)

type simWrite struct {
	tag crdt.Tag
	val string
}

// tagLess orders tags by time, region, incarnation, seq.
func tagLess(a, b crdt.Tag) bool {
	if a.Time != b.Time {
		return a.Time < b.Time
	}
	if a.Dot.Origin.Region != b.Dot.Origin.Region {
		return a.Dot.Origin.Region < b.Dot.Origin.Region
	}
	if a.Dot.Origin.Incarnation != b.Dot.Origin.Incarnation {
		return a.Dot.Origin.Incarnation < b.Dot.Origin.Incarnation
	}
	return a.Dot.Seq < b.Dot.Seq
}

type simModel struct {
	sums   map[string]int64             // c:K, and "hc:K\x00F", "zi:K\x00M"
	floats map[string]float64           // f:K
	sets   map[string]map[string]bool   // s:K
	lww    map[string]simWrite          // w:K, "hw:K\x00F", "zw:K\x00M"
	hist   map[string][]simWrite        // every LWW write, by key
	kinds  map[string]string            // model key -> class
	fields map[string]map[string]string // hc/hw/zi/zw key -> field -> model key
	adds   map[string][]crdt.Dot        // "fl:K\x00M" -> dots of its SADDs
	rems   map[string][]crdt.VersionVector
	queued map[string]map[string]bool   // q:K -> jobs pushed
	events map[string]map[string]string // x:K -> entry ID -> its "n" field
	visits map[string]map[string]bool   // p:K -> elements added
	popped map[string]map[string]int    // q:K -> job -> times an acknowledged pop returned it
	n      int

	workload   string
	allRegions []*simRegion // dead ones included (their counters count too)
	joins      *int         // state transfers joined in the run
}

func newSimModel(workload string) *simModel {
	return &simModel{sums: map[string]int64{}, floats: map[string]float64{}, sets: map[string]map[string]bool{},
		lww: map[string]simWrite{}, hist: map[string][]simWrite{}, kinds: map[string]string{},
		fields: map[string]map[string]string{}, adds: map[string][]crdt.Dot{}, rems: map[string][]crdt.VersionVector{},
		queued: map[string]map[string]bool{}, popped: map[string]map[string]int{},
		events: map[string]map[string]string{}, visits: map[string]map[string]bool{},
		workload: workload}
}

func keyClass(key string) string {
	if i := strings.IndexByte(key, ':'); i > 0 {
		return key[:i]
	}
	return ""
}

// tracked reports whether a command writes a key the model follows.
func (m *simModel) tracked(args [][]byte) bool {
	if len(args) < 2 {
		return false
	}
	switch keyClass(string(args[1])) {
	case "c", "f", "s", "w", "hc", "hw", "zi", "zw", "skew", "fl", "q", "x", "p":
		return true
	}
	return false
}

// gen returns a random local write unit for region g.
func (m *simModel) gen(s *sim, g *simRegion) []crdt.Command {
	n := 1
	if s.rng.Float64() < s.cfg.multiProb {
		n = 2 + s.rng.IntN(3)
	}
	cmds := make([]crdt.Command, n)
	for i := range cmds {
		cmds[i] = crdt.Command{DB: 0, Args: simArgs(m.genOne(s, g, n > 1)...)}
	}
	return cmds
}

// genMixed is the "mixed" workload: every write type on every class,
// and on m:K keys everything including removes, DEL and EXPIRE.
func (m *simModel) genMixed(s *sim, g *simRegion, multi bool) []string {
	r := s.rng
	k := strconv.Itoa(r.IntN(s.cfg.keys))
	m.n++
	uniq := fmt.Sprintf("%s-%d", g.name, m.n)
	field := "f" + strconv.Itoa(r.IntN(4))
	member := "m" + strconv.Itoa(r.IntN(12))
	delta := strconv.Itoa(r.IntN(201) - 100)
	classes := []string{"c", "f", "s", "hc", "zi", "m", "m", "w", "hw", "zw"}
	if multi {
		classes = classes[:7] // LWW tags are read back per single-command unit
	}
	switch classes[r.IntN(len(classes))] {
	case "c":
		return []string{"INCRBY", "c:" + k, delta}
	case "f":
		return []string{"INCRBYFLOAT", "f:" + k, strconv.FormatFloat(float64(r.IntN(81)-40)/4, 'f', -1, 64)}
	case "s":
		return []string{"SADD", "s:" + k, member}
	case "hc":
		return []string{"HINCRBY", "hc:" + k, field, delta}
	case "zi":
		// Never 0: crdt turns a ZINCRBY that leaves the score unchanged
		// into a ZADD (an overwrite), which loses concurrent increments
		// (TestKnownZIncrByZeroIsAnOverwrite).
		if delta == "0" {
			delta = "1"
		}
		return []string{"ZINCRBY", "zi:" + k, delta, member}
	case "w":
		return []string{"SET", "w:" + k, uniq}
	case "hw":
		return []string{"HSET", "hw:" + k, field, uniq}
	case "zw":
		return []string{"ZADD", "zw:" + k, strconv.Itoa(r.IntN(1000)), member}
	}
	key := "m:" + k
	switch r.IntN(14) {
	case 0:
		return []string{"SET", key, uniq}
	case 1:
		return []string{"INCRBY", key, delta}
	case 2:
		return []string{"INCRBYFLOAT", key, "0.1"}
	case 3:
		return []string{"HSET", key, field, uniq}
	case 4:
		return []string{"HINCRBY", key, field, delta}
	case 5:
		return []string{"HDEL", key, field}
	case 6:
		return []string{"SADD", key, member}
	case 7:
		return []string{"SREM", key, member}
	case 8:
		return []string{"ZADD", key, delta, member}
	case 9:
		return []string{"ZINCRBY", key, delta, member}
	case 10:
		return []string{"ZREM", key, member}
	case 11:
		return []string{"DEL", key}
	case 12:
		return []string{"EXPIRE", key, "864000"} // ten days: far beyond any run
	}
	return []string{"SET", key, uniq, "EX", "864000"}
}

func sub(key, field string) string { return key + "\x00" + field }

func (m *simModel) note(key, class string) { m.kinds[key] = class }

func (m *simModel) noteField(key, field, mk string) {
	if m.fields[key] == nil {
		m.fields[key] = map[string]string{}
	}
	m.fields[key][field] = mk
}

func (m *simModel) lwwWrite(mk string, w simWrite) {
	m.hist[mk] = append(m.hist[mk], w)
	if cur, ok := m.lww[mk]; !ok || tagLess(cur.tag, w.tag) {
		m.lww[mk] = w
	}
}

// record folds one acknowledged write into the model. tag is the write's
// tag (zero for units of several commands, which the generator keeps to
// commutative classes).
func (m *simModel) record(g *simRegion, args [][]byte, tag crdt.Tag, vv crdt.VersionVector, reply crdt.Reply) {
	if !m.tracked(args) {
		return
	}
	cmd, key := strings.ToUpper(string(args[0])), string(args[1])
	class := keyClass(key)
	switch {
	case cmd == "INCRBY" && class == "c":
		d, _ := strconv.ParseInt(string(args[2]), 10, 64)
		m.sums[key] += d
		m.note(key, class)
	case cmd == "XADD" && class == "x":
		if m.events[key] == nil {
			m.events[key] = map[string]string{}
		}
		if reply.Kind == crdt.KindBulk {
			m.events[key][string(reply.Str)] = string(args[len(args)-1])
		}
		m.note(key, class)
	case cmd == "PFADD" && class == "p":
		if m.visits[key] == nil {
			m.visits[key] = map[string]bool{}
		}
		for _, a := range args[2:] {
			m.visits[key][string(a)] = true
		}
		m.note(key, class)
	case cmd == "RPUSH" && class == "q":
		if m.queued[key] == nil {
			m.queued[key], m.popped[key] = map[string]bool{}, map[string]int{}
		}
		for _, a := range args[2:] {
			m.queued[key][string(a)] = true
		}
		m.note(key, class)
	case cmd == "LPOP" && class == "q":
		if reply.Kind == crdt.KindBulk {
			if m.popped[key] == nil {
				m.queued[key], m.popped[key] = map[string]bool{}, map[string]int{}
			}
			m.popped[key][string(reply.Str)]++
		}
		m.note(key, class)
	case cmd == "EXPIRE" && class == "c":
		// A rate limiter's window: far beyond the run, the value is unchanged.
	case cmd == "SADD" && class == "fl":
		for _, a := range args[2:] {
			mk := sub(key, string(a))
			m.adds[mk] = append(m.adds[mk], tag.Dot)
			m.noteField(key, string(a), mk)
		}
		m.note(key, class)
	case cmd == "SREM" && class == "fl":
		for _, a := range args[2:] {
			mk := sub(key, string(a))
			m.rems[mk] = append(m.rems[mk], vv)
			m.noteField(key, string(a), mk)
		}
		m.note(key, class)
	case cmd == "INCRBYFLOAT" && class == "f":
		d, _ := strconv.ParseFloat(string(args[2]), 64)
		m.floats[key] += d
		m.note(key, class)
	case cmd == "SADD" && class == "s":
		if m.sets[key] == nil {
			m.sets[key] = map[string]bool{}
		}
		for _, a := range args[2:] {
			m.sets[key][string(a)] = true
		}
		m.note(key, class)
	case cmd == "SET" && (class == "w" || class == "skew"):
		m.lwwWrite(key, simWrite{tag: tag, val: string(args[2])})
		m.note(key, "w")
	case cmd == "HINCRBY" && class == "hc":
		d, _ := strconv.ParseInt(string(args[3]), 10, 64)
		mk := sub(key, string(args[2]))
		m.sums[mk] += d
		m.noteField(key, string(args[2]), mk)
		m.note(key, class)
	case cmd == "HSET" && class == "hw":
		mk := sub(key, string(args[2]))
		m.lwwWrite(mk, simWrite{tag: tag, val: string(args[3])})
		m.noteField(key, string(args[2]), mk)
		m.note(key, class)
	case cmd == "ZINCRBY" && class == "zi":
		d, _ := strconv.ParseInt(string(args[2]), 10, 64)
		mk := sub(key, string(args[3]))
		m.sums[mk] += d
		m.noteField(key, string(args[3]), mk)
		m.note(key, class)
	case cmd == "ZADD" && class == "zw":
		mk := sub(key, string(args[3]))
		m.lwwWrite(mk, simWrite{tag: tag, val: string(args[2])})
		m.noteField(key, string(args[3]), mk)
		m.note(key, class)
	default:
		panic(fmt.Sprintf("model: untracked write %q", args))
	}
}

func simRead(g *simRegion, args ...string) crdt.Reply {
	return g.rep.Keyspace().Read(0, g.clock(), 0, simArgs(args...))
}

func replyString(r crdt.Reply) (string, bool) {
	switch r.Kind {
	case crdt.KindBulk, crdt.KindStatus:
		return string(r.Str), true
	case crdt.KindDouble:
		return strconv.FormatFloat(r.Float, 'g', -1, 64), true
	case crdt.KindInt:
		return strconv.FormatInt(r.Int, 10), true
	}
	return "", false
}

func replyFloat(r crdt.Reply) (float64, bool) {
	if r.Kind == crdt.KindDouble {
		return r.Float, true
	}
	s, ok := replyString(r)
	if !ok {
		return 0, false
	}
	f, err := strconv.ParseFloat(s, 64)
	return f, err == nil
}

// check reads every model key back from every region.
func (m *simModel) check(regs []*simRegion) error {
	var errs []string
	bad := func(g *simRegion, format string, args ...any) {
		if len(errs) < 12 {
			errs = append(errs, g.name+": "+fmt.Sprintf(format, args...))
		}
	}
	for _, g := range regs {
		for _, key := range sortedKeys(m.kinds) {
			switch class := m.kinds[key]; class {
			case "c":
				got, _ := replyString(simRead(g, "GET", key))
				if want := strconv.FormatInt(m.sums[key], 10); got != want {
					bad(g, "GET %s = %q, want the sum of increments %s", key, got, want)
				}
			case "f":
				got, ok := replyFloat(simRead(g, "GET", key))
				if want := m.floats[key]; !ok || got != want {
					bad(g, "GET %s = %v, want the sum of increments %v", key, got, want)
				}
			case "s":
				r := simRead(g, "SMEMBERS", key)
				var got []string
				for _, e := range r.Elems {
					got = append(got, string(e.Str))
				}
				sort.Strings(got)
				want := sortedKeys(m.sets[key])
				if strings.Join(got, ",") != strings.Join(want, ",") {
					bad(g, "SMEMBERS %s = %v, want the union %v", key, got, want)
				}
			case "w":
				got, _ := replyString(simRead(g, "GET", key))
				if want := m.lww[key]; got != want.val {
					bad(g, "GET %s = %q, want %q (tag %v, of %d writes)", key, got, want.val, want.tag, len(m.hist[key]))
				}
			case "x":
				seen := map[string]bool{}
				for _, e := range simRead(g, "XRANGE", key, "-", "+").Elems {
					if len(e.Elems) != 2 {
						bad(g, "XRANGE %s: entry %v", key, e)
						continue
					}
					id := string(e.Elems[0].Str)
					var n string
					if f := e.Elems[1].Elems; len(f) == 4 {
						n = string(f[3].Str)
					}
					switch want, ok := m.events[key][id]; {
					case seen[id]:
						bad(g, "%s holds entry %s twice", key, id)
					case !ok:
						bad(g, "%s holds entry %s, which no acknowledged XADD returned", key, id)
					case n != want:
						bad(g, "%s entry %s has n=%q, want %q", key, id, n, want)
					}
					seen[id] = true
				}
				for _, id := range sortedKeys(m.events[key]) {
					if !seen[id] {
						bad(g, "%s lacks entry %s, want present: an acknowledged XADD returned it", key, id)
					}
				}
			case "p":
				got := pfcount(g, key)
				want := int64(len(m.visits[key]))
				// HyperLogLog's standard error at 16384 registers is 0.81%;
				// small counts are near exact. Allow 3 standard errors.
				if d := got - want; d*d > 1+int64(float64(want*want)*0.0243*0.0243) {
					bad(g, "PFCOUNT %s = %d, want about %d distinct elements", key, got, want)
				}
			case "q":
				inList := map[string]bool{}
				for _, e := range simRead(g, "LRANGE", key, "0", "-1").Elems {
					job := string(e.Str)
					switch {
					case inList[job]:
						bad(g, "%s holds job %q twice", key, job)
					case !m.queued[key][job]:
						bad(g, "%s holds job %q, which no acknowledged RPUSH pushed", key, job)
					case m.popped[key][job] > 0:
						bad(g, "%s still holds job %q, want absent: an acknowledged LPOP returned it", key, job)
					}
					inList[job] = true
				}
				for _, job := range sortedKeys(m.queued[key]) {
					if !inList[job] && m.popped[key][job] == 0 {
						bad(g, "%s lacks job %q, want present: pushed and never popped", key, job)
					}
				}
			case "fl":
				got := map[string]bool{}
				for _, e := range simRead(g, "SMEMBERS", key).Elems {
					got[string(e.Str)] = true
				}
				for _, mem := range sortedKeys(m.fields[key]) {
					want := m.present(m.fields[key][mem])
					switch {
					case want && !got[mem]:
						bad(g, "SISMEMBER %s %s = 0, want present: an add no remove observed", key, mem)
					case !want && got[mem]:
						bad(g, "SISMEMBER %s %s = 1, want absent: every add was observed by a remove", key, mem)
					}
					delete(got, mem)
				}
				for mem := range got {
					bad(g, "%s holds %q, which no acknowledged SADD added", key, mem)
				}
			case "hc", "hw", "zi", "zw":
				for _, f := range sortedKeys(m.fields[key]) {
					mk := m.fields[key][f]
					var r crdt.Reply
					if class[0] == 'h' {
						r = simRead(g, "HGET", key, f)
					} else {
						r = simRead(g, "ZSCORE", key, f)
					}
					switch class {
					case "hc":
						got, _ := replyString(r)
						if want := strconv.FormatInt(m.sums[mk], 10); got != want {
							bad(g, "HGET %s %s = %q, want the sum %s", key, f, got, want)
						}
					case "zi":
						got, ok := replyFloat(r)
						if want := float64(m.sums[mk]); !ok || got != want {
							bad(g, "ZSCORE %s %s = %v, want the sum %v", key, f, got, want)
						}
					case "hw":
						got, _ := replyString(r)
						if want := m.lww[mk]; got != want.val {
							bad(g, "HGET %s %s = %q, want %q (tag %v)", key, f, got, want.val, want.tag)
						}
					case "zw":
						got, ok := replyFloat(r)
						want, _ := strconv.ParseFloat(m.lww[mk].val, 64)
						if !ok || got != want || math.IsNaN(got) {
							bad(g, "ZSCORE %s %s = %v, want %v (tag %v)", key, f, got, want, m.lww[mk].tag)
						}
					}
				}
				if n := simRead(g, map[byte]string{'h': "HLEN", 'z': "ZCARD"}[class[0]], key).Int; int(n) != len(m.fields[key]) {
					bad(g, "%s has %d fields, want %d", key, n, len(m.fields[key]))
				}
			}
		}
		// No key of a modelled class exists that the model does not know.
		for _, e := range simRead(g, "KEYS", "*").Elems {
			k := string(e.Str)
			if m.tracked([][]byte{nil, e.Str}) && m.kinds[k] == "" {
				bad(g, "key %q exists but no acknowledged write made it", k)
			}
		}
	}
	// Jobs delivered twice must be accounted for by counted concurrent
	// pops (each region counts the pops it merges that found their element
	// gone, so a double pop is counted at least once). A double pop that
	// reaches a region inside a state transfer is not counted there (the
	// joined state no longer holds the popped element, nor a trace of the
	// pop: lists keep no tombstones, docs/lists.md), so the bound holds
	// for runs without transfers only.
	dup := 0
	for _, key := range sortedKeys(m.popped) {
		for _, n := range m.popped[key] {
			if n > 1 {
				dup += n - 1
			}
		}
	}
	var counted uint64
	for _, g := range m.allRegions {
		counted += g.carriedPops + g.rep.Keyspace().Stats.ListConcurrentPops
	}
	if uint64(dup) > counted && (m.joins == nil || *m.joins == 0) {
		errs = append(errs, fmt.Sprintf("%d job deliveries beyond the first, but the regions counted only %d concurrent pops: duplicated", dup, counted))
	}
	if len(errs) > 0 {
		return fmt.Errorf("state differs from the reference model:\n  %s", strings.Join(errs, "\n  "))
	}
	return nil
}

// present applies the add-wins rule to one member of an fl:K set.
func (m *simModel) present(mk string) bool {
	for _, d := range m.adds[mk] {
		seen := false
		for _, vv := range m.rems[mk] {
			if vv.Get(d.Origin) >= d.Seq {
				seen = true
				break
			}
		}
		if !seen {
			return true
		}
	}
	return false
}

// pfcount runs PFCOUNT on a copy of g's replica: PFCOUNT is a write (it
// caches the count in the value), and the check must not change the state
// it checks.
func pfcount(g *simRegion, key string) int64 {
	var buf bytes.Buffer
	for _, p := range g.rep.Snapshot() {
		buf.Write(p)
	}
	rep, err := crdt.RestoreReplica(buf.Bytes(), g.s.cfg.limits)
	if err != nil {
		return -1
	}
	rs := rep.Apply(crdt.Stamp{Time: rep.Keyspace().LastTime() + 1}, []crdt.Command{{Args: simArgs("PFCOUNT", key)}})
	return rs[0].Int
}
