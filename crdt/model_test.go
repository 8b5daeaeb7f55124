package crdt

import (
	"encoding/binary"
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
)

// A reference model of DESIGN §4's conflict semantics, written without the
// crdt code: it never calls the value types, registers or contexts. It
// keeps an abstract history — each op's dot, HLC time, the dots its origin
// had seen (its causal past) and its abstract effects — and computes visible
// values declaratively from the whole set of ops instead of applying them in
// arrival order:
//
//   - a piece of content (a string write, an increment, a set add, a hash
//     field write, a zset add or increment, a TTL write) is alive unless some
//     op that had seen it removed it (DEL, an overwrite, SREM, HDEL, ZREM,
//     FLUSHDB, an expiry removal, a later write of the same register);
//   - registers (string values, hash values, ZADD scores, TTLs) show the
//     alive write with the greatest tag (time, region, seq);
//   - counters show that base (or 0) plus every alive increment;
//   - set members, hash fields and zset members exist iff some add is alive
//     (add-wins);
//   - a key's visible type is the type whose newest alive content is newest;
//     a key whose visible TTL has passed is absent.
//
// The abstract effects of a command are derived from the command and the
// model's own view of the key at the origin when the op ran (the view of
// its causal past at its time), following Redis 7.0 semantics; the model
// also predicts the command's reply, which checks local (sequential)
// behaviour under the same history.

type mKind uint8

const (
	mDelKey     mKind = iota + 1 // observed-remove of all content and the TTL
	mDelKeepTTL                  // observed-remove of all content, TTL kept
	mDelTTL                      // observed-remove of the TTL only
	mFlush                       // FLUSHDB (sub: the database) or FLUSHALL (sub "*"): mDelKey on every key there
	mStrSet                      // string overwrite (value in val)
	mStrIncr                     // counter increment n
	mExpire                      // TTL write n (absolute ms, 0 = persistent)
	mSetAdd                      // add member sub
	mSetRem                      // remove member sub
	mHashSet                     // field sub := val
	mHashIncr                    // field sub += n
	mHashDel                     // remove field sub
	mZAdd                        // member sub score n
	mZIncr                       // member sub score += n
	mZRem                        // remove member sub
)

type mEff struct {
	kind mKind
	key  string
	sub  string
	val  string
	n    int64
	f    float64 // zset scores (mZAdd) and increments (mZIncr)
}

// mOrigin is a region in one incarnation.
type mOrigin struct{ region, inc uint32 }

func (o mOrigin) String() string { return fmt.Sprintf("%d.%d", o.region, o.inc) }

// mOp is one op of the history: its dot, time and causal past.
type mOp struct {
	origin mOrigin
	seq    uint64
	time   HLC
	past   map[mOrigin]uint64 // highest seq seen per origin (own earlier ops included)
	effs   []mEff
	cmd    []string // for failure messages
}

// saw reports whether op b's origin had seen op a when b ran.
func (b *mOp) saw(a *mOp) bool { return b.past[a.origin] >= a.seq }

// newer orders ops by tag: time, then region, incarnation and seq.
func (b *mOp) newer(a *mOp) bool {
	switch {
	case b.time != a.time:
		return b.time > a.time
	case b.origin.region != a.origin.region:
		return b.origin.region > a.origin.region
	case b.origin.inc != a.origin.inc:
		return b.origin.inc > a.origin.inc
	}
	return b.seq > a.seq
}

type model struct {
	next  mDot // the dot of the op the command being predicted makes
	ops   []*mOp
	byKey map[string][]*mOp
	flush []*mOp
}

func newModel() *model { return &model{byKey: map[string][]*mOp{}} }

func (m *model) add(op *mOp) {
	m.ops = append(m.ops, op)
	seen := map[string]bool{}
	for _, e := range op.effs {
		if e.kind == mFlush {
			m.flush = append(m.flush, op)
			continue
		}
		if !seen[e.key] {
			seen[e.key] = true
			m.byKey[e.key] = append(m.byKey[e.key], op)
		}
	}
}

// within returns a filter for the ops a replica with version vector vv
// (origin -> seq) has applied.
func within(vv map[mOrigin]uint64) func(*mOp) bool {
	return func(op *mOp) bool { return vv[op.origin] >= op.seq }
}

func vvMap(v VersionVector) map[mOrigin]uint64 {
	m := map[mOrigin]uint64{}
	for _, e := range v {
		m[mOrigin{e.Origin.Region, e.Origin.Incarnation}] = e.Seq
	}
	return m
}

// removes reports whether effect r (of an op that saw c's op) removes c.
func removes(r, c *mEff) bool {
	switch r.kind {
	case mDelKey, mFlush:
		return true
	case mDelKeepTTL:
		return c.kind != mExpire
	case mDelTTL, mExpire:
		return c.kind == mExpire
	case mStrSet:
		return c.kind == mStrSet || c.kind == mStrIncr
	case mSetAdd, mSetRem:
		return c.kind == mSetAdd && c.sub == r.sub
	case mHashSet, mHashDel:
		return (c.kind == mHashSet || c.kind == mHashIncr) && c.sub == r.sub
	case mZAdd, mZRem:
		return (c.kind == mZAdd || c.kind == mZIncr) && c.sub == r.sub
	}
	return false
}

// contentType is the Redis type a content effect belongs to (TypeNone for
// TTL writes and removals).
func contentType(k mKind) ValueType {
	switch k {
	case mStrSet, mStrIncr:
		return TypeString
	case mSetAdd:
		return TypeSet
	case mHashSet, mHashIncr:
		return TypeHash
	case mZAdd, mZIncr:
		return TypeZSet
	}
	return TypeNone
}

// Databases. The model names key k of database n>0 "k@n" (database 0
// keeps the bare name), so every database's keys are independent
// registers; only FLUSHDB/FLUSHALL and MOVE relate them.

// modelDBs is how many databases the workload writes.
const modelDBs = 2

// qkey is the model's name for key k of database db.
func qkey(db int, k string) string {
	if db == 0 {
		return k
	}
	return k + "@" + strconv.Itoa(db)
}

// splitKey is qkey's inverse.
func splitKey(q string) (int, string) {
	if i := strings.IndexByte(q, '@'); i >= 0 {
		db, _ := strconv.Atoi(q[i+1:])
		return db, q[:i]
	}
	return 0, q
}

// flushes reports whether flush effect e covers model key key.
func flushes(e *mEff, key string) bool {
	db, _ := splitKey(key)
	return e.sub == "*" || e.sub == strconv.Itoa(db)
}

// modelKeys lists the model names of every key the workload writes.
var modelKeys = func() []string {
	var out []string
	for db := 0; db < modelDBs; db++ {
		for _, k := range simKeys {
			out = append(out, qkey(db, k))
		}
	}
	return out
}()

// qualify renames the keys in a command's arguments to the model's names
// for database db (no other argument equals a key name).
func qualify(db int, args []string) []string {
	out := append([]string(nil), args...)
	for i := 1; i < len(out); i++ {
		for _, k := range simKeys {
			if out[i] == k {
				out[i] = qkey(db, k)
			}
		}
	}
	return out
}

// keyView is the model's visible state of one key.
type keyView struct {
	typ     ValueType // TypeNone if absent (or expired)
	expired bool      // has content, but its TTL has passed
	ttl     int64
	str     string
	bad     bool // a counter whose base is not an integer: value unspecified
	members map[string]bool
	fields  map[string]string
	badF    map[string]bool
	scores  map[string]float64
	zacc    map[string]*zsetAcc // how each score folds (ZINCRBY replies)
}

func (v *keyView) exists() bool { return v.typ != TypeNone }

type counterAcc struct {
	base    *mOp
	baseVal string
	sum     int64
	incs    int
	present bool
}

func (a *counterAcc) write(op *mOp, val string) {
	a.present = true
	if a.base == nil || op.newer(a.base) {
		a.base, a.baseVal = op, val
	}
}

func (a *counterAcc) incr(n int64) { a.present = true; a.sum += n; a.incs++ }

// mDot names an op (its origin and sequence number).
type mDot struct {
	origin mOrigin
	seq    uint64
}

func (a mDot) less(b mDot) bool {
	switch {
	case a.origin.region != b.origin.region:
		return a.origin.region < b.origin.region
	case a.origin.inc != b.origin.inc:
		return a.origin.inc < b.origin.inc
	}
	return a.seq < b.seq
}

type zsetInc struct {
	time HLC
	dot  mDot
	d    float64
}

// before orders increments by tag: time, then origin and sequence.
func (a zsetInc) before(b zsetInc) bool {
	if a.time != b.time {
		return a.time < b.time
	}
	return a.dot.less(b.dot)
}

// zsetAcc is a zset member's score: the latest alive ZADD (or 0) with
// every alive increment added in tag order (time, then origin and
// sequence), in float64 as ZINCRBY does, so fractional increments are
// computed exactly as the documented fold gives them.
type zsetAcc struct {
	base    *mOp
	baseVal float64
	incs    []zsetInc
}

func (a *zsetAcc) write(op *mOp, f float64) {
	if a.base == nil || op.newer(a.base) {
		a.base, a.baseVal = op, f
	}
}

// fold returns the score, with the extra increments (of an op being
// predicted) folded in at their dots.
func (a *zsetAcc) fold(extra ...zsetInc) float64 {
	incs := append(append([]zsetInc(nil), a.incs...), extra...)
	sort.Slice(incs, func(i, j int) bool { return incs[i].before(incs[j]) })
	s := a.baseVal
	for _, x := range incs {
		s += x.d
	}
	return s
}

// value returns the counter's visible text and whether the model defines
// it. A non-numeric base with pending increments shows the base (the
// increments wait for an overwrite, docs/semantics.md); a float base with
// increments is left to the float tests (the workload never makes one).
func (a *counterAcc) value() (string, bool) {
	if a.incs == 0 {
		return a.baseVal, true
	}
	b := int64(0)
	if a.base != nil {
		var err error
		if b, err = redisInt(a.baseVal); err != nil {
			if _, ferr := strconv.ParseFloat(a.baseVal, 64); ferr == nil {
				return "", false
			}
			return a.baseVal, true
		}
	}
	return strconv.FormatInt(b+a.sum, 10), true
}

// eval computes key's visible state over the ops in, at time now (ms).
func (m *model) eval(key string, in func(*mOp) bool, now int64) keyView {
	type item struct {
		op *mOp
		e  *mEff
	}
	var content, removers []item
	collect := func(op *mOp) {
		for i := range op.effs {
			e := &op.effs[i]
			if e.kind == mFlush {
				if flushes(e, key) {
					removers = append(removers, item{op, e})
				}
				continue
			}
			if e.key != key {
				continue
			}
			switch e.kind {
			case mDelKey, mDelKeepTTL, mDelTTL, mSetRem, mHashDel, mZRem:
				removers = append(removers, item{op, e})
			case mExpire, mStrSet, mSetAdd, mHashSet, mZAdd:
				removers = append(removers, item{op, e})
				content = append(content, item{op, e})
			default:
				content = append(content, item{op, e})
			}
		}
	}
	for _, op := range m.byKey[key] {
		if in(op) {
			collect(op)
		}
	}
	for _, op := range m.flush {
		if in(op) {
			collect(op)
		}
	}
	var v keyView
	var newest [typeEnd]*mOp
	var str counterAcc
	var ttl *mOp
	hash := map[string]*counterAcc{}
	zset := map[string]*zsetAcc{}
	members := map[string]bool{}
	acc := func(m map[string]*counterAcc, k string) *counterAcc {
		if m[k] == nil {
			m[k] = &counterAcc{}
		}
		return m[k]
	}
	for _, c := range content {
		alive := true
		for _, r := range removers {
			if r.op.saw(c.op) && removes(r.e, c.e) {
				alive = false
				break
			}
		}
		if !alive {
			continue
		}
		if t := contentType(c.e.kind); t != TypeNone && (newest[t] == nil || c.op.newer(newest[t])) {
			newest[t] = c.op
		}
		switch c.e.kind {
		case mExpire:
			if ttl == nil || c.op.newer(ttl) {
				ttl, v.ttl = c.op, c.e.n
			}
		case mStrSet:
			str.write(c.op, c.e.val)
		case mStrIncr:
			str.incr(c.e.n)
		case mSetAdd:
			members[c.e.sub] = true
		case mHashSet:
			acc(hash, c.e.sub).write(c.op, c.e.val)
		case mHashIncr:
			acc(hash, c.e.sub).incr(c.e.n)
		case mZAdd, mZIncr:
			a := zset[c.e.sub]
			if a == nil {
				a = &zsetAcc{}
				zset[c.e.sub] = a
			}
			if c.e.kind == mZAdd {
				a.write(c.op, c.e.f)
			} else {
				a.incs = append(a.incs, zsetInc{c.op.time, mDot{c.op.origin, c.op.seq}, c.e.f})
			}
		}
	}
	var best *mOp
	for t := TypeString; t < typeEnd; t++ {
		if newest[t] != nil && (best == nil || newest[t].newer(best)) {
			best, v.typ = newest[t], t
		}
	}
	if v.typ != TypeNone && v.ttl > 0 && v.ttl <= now {
		v.typ, v.expired = TypeNone, true
	}
	switch v.typ {
	case TypeString:
		s, ok := str.value()
		v.str, v.bad = s, !ok
	case TypeSet:
		v.members = members
	case TypeHash:
		v.fields, v.badF = map[string]string{}, map[string]bool{}
		for f, a := range hash {
			s, ok := a.value()
			v.fields[f] = s
			if !ok {
				v.badF[f] = true
			}
		}
	case TypeZSet:
		v.scores, v.zacc = map[string]float64{}, zset
		for mem, a := range zset {
			v.scores[mem] = a.fold()
		}
	}
	return v
}

// render is the canonical text compared with what a replica shows.
func (v *keyView) render() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s ttl=%d ", v.typ, v.ttl)
	switch v.typ {
	case TypeNone:
		return "none"
	case TypeString:
		if v.bad {
			b.WriteString("*")
		} else {
			b.WriteString(strconv.Quote(v.str))
		}
	case TypeSet:
		b.WriteString(strings.Join(modelSorted(v.members), " "))
	case TypeHash:
		for _, f := range modelSorted(v.fields) {
			val := strconv.Quote(v.fields[f])
			if v.badF[f] {
				val = "*"
			}
			fmt.Fprintf(&b, "%s=%s ", f, val)
		}
	case TypeZSet:
		mems := modelSorted(v.scores)
		sort.SliceStable(mems, func(i, j int) bool { return v.scores[mems[i]] < v.scores[mems[j]] })
		for _, mem := range mems {
			fmt.Fprintf(&b, "%s:%s ", mem, FormatDouble(v.scores[mem]))
		}
	}
	return strings.TrimSpace(b.String())
}

func modelSorted[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// observe renders what replica ks shows for key at time now, in the same
// form as keyView.render. Values are read through the Redis read commands;
// the type and TTL come from the key's entry. model is the expected view:
// where it says a value is unspecified the replica's value is masked too.
func observe(ks *Keyspace, qk string, now int64, model *keyView) string {
	db, key := splitKey(qk)
	e, ok := ks.dbs[db].keys.Get(key)
	if !ok || e.expired(now) {
		return "none"
	}
	typ := e.Type()
	var b strings.Builder
	fmt.Fprintf(&b, "%s ttl=%d ", typ, e.ExpireAt())
	read := func(args ...string) (Reply, bool) {
		a := make([][]byte, len(args))
		for i, s := range args {
			a[i] = []byte(s)
		}
		if Lookup(a[0]) == nil {
			return Reply{}, false
		}
		return ks.Read(db, now, 1, a), true
	}
	switch typ {
	case TypeString:
		r, ok := read("GET", key)
		switch {
		case !ok:
			b.WriteString("?")
		case model.typ == TypeString && model.bad:
			b.WriteString("*")
		default:
			b.WriteString(strconv.Quote(string(r.Str)))
		}
	case TypeSet:
		r, ok := read("SMEMBERS", key)
		if !ok {
			b.WriteString("?")
			break
		}
		var mems []string
		for _, x := range r.Elems {
			mems = append(mems, string(x.Str))
		}
		sort.Strings(mems)
		b.WriteString(strings.Join(mems, " "))
	case TypeHash:
		r, ok := read("HGETALL", key)
		if !ok {
			b.WriteString("?")
			break
		}
		var pairs []string
		for i := 0; i+1 < len(r.Elems); i += 2 {
			f := string(r.Elems[i].Str)
			val := strconv.Quote(string(r.Elems[i+1].Str))
			if model.typ == TypeHash && model.badF[f] {
				val = "*"
			}
			pairs = append(pairs, f+"="+val)
		}
		sort.Strings(pairs)
		b.WriteString(strings.Join(pairs, " "))
	case TypeZSet:
		r, ok := read("ZRANGE", key, "0", "-1", "WITHSCORES")
		if !ok {
			b.WriteString("?")
			break
		}
		for i := 0; i+1 < len(r.Elems); i += 2 {
			fmt.Fprintf(&b, "%s:%s ", r.Elems[i].Str, r.Elems[i+1].Str)
		}
	}
	return strings.TrimSpace(b.String())
}

// Workload. Keys k0..k3, in database 0 or (a fifth of the commands, chosen
// by the simulation) database 1, known to the model as k0..k3 and
// k0@1..k3@1; each key has a home group so most commands hit a key of
// their own type, but some cross types to exercise
// WRONGTYPE and concurrent type conflicts. Non-integer strings are written
// only to k3 and hash field f3, which no increment touches, so counter
// values stay well defined (DESIGN leaves a non-numeric base plus
// concurrent increments unspecified).

var simKeys = []string{"k0", "k1", "k2", "k3"}

// cmdGen generates one command; it is offered only if every command it
// can produce is registered.
type cmdGen struct {
	group string
	needs []string
	gen   func(d draws, key string, now int64) []string
}

func small(d draws, label string) string { return strconv.Itoa(d.intn(9, label) - 2) }

func nonzero(d draws, label string) string {
	n := d.intn(8, label) - 4
	if n >= 0 {
		n++
	}
	return strconv.Itoa(n)
}

// score draws a zset score or increment: mostly a small integer, sometimes
// a fraction with no exact binary form, so sums depend on the order they
// are added in (the model folds them in tag order, as documented).
func score(d draws, label string) string {
	if chance(d, 30, label+"frac") {
		return []string{"0.1", "-0.2", "0.3", "1.7", "-2.9", "0.05"}[d.intn(6, label+"frac#")]
	}
	return small(d, label)
}

func member(d draws) string { return "m" + strconv.Itoa(d.intn(4, "member")) }

// otherKey draws a key different from k.
func otherKey(d draws, k string) string {
	for {
		if o := simKeys[d.intn(len(simKeys), "key2")]; o != k {
			return o
		}
	}
}

// distinct draws 1..max distinct names from gen.
func distinct(d draws, max int, gen func() string) []string {
	n := 1 + d.intn(max, "count")
	seen := map[string]bool{}
	var out []string
	for i := 0; i < n; i++ {
		if s := gen(); !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	return out
}

var cmdGens = []cmdGen{
	{"string", []string{"SET"}, func(d draws, k string, _ int64) []string {
		v := small(d, "val")
		if k == "k3" && chance(d, 30, "text") {
			v = "s" + v
		}
		switch d.intn(6, "setopt") {
		case 0:
			return []string{"SET", k, v, "KEEPTTL"}
		case 1:
			return []string{"SET", k, v, "PX", strconv.Itoa(1 + d.intn(300, "px"))}
		}
		return []string{"SET", k, v}
	}},
	{"string", []string{"INCRBY", "DECRBY", "INCR", "DECR"}, func(d draws, k string, _ int64) []string {
		if k == "k3" {
			k = "k0"
		}
		switch d.intn(4, "incr") {
		case 0:
			return []string{"INCR", k}
		case 1:
			return []string{"DECR", k}
		case 2:
			return []string{"DECRBY", k, nonzero(d, "by")}
		}
		return []string{"INCRBY", k, nonzero(d, "by")}
	}},
	{"string", []string{"INCRBYFLOAT"}, func(d draws, k string, _ int64) []string {
		// Integer-valued float increments: the model's sums stay exact,
		// and float and integer increments mix on one counter.
		if k == "k3" {
			k = "k0"
		}
		return []string{"INCRBYFLOAT", k, nonzero(d, "by") + [...]string{"", ".0", "e0"}[d.intn(3, "fmt")]}
	}},
	{"keys", []string{"DEL"}, func(d draws, k string, _ int64) []string {
		if chance(d, 20, "del2") {
			return []string{"DEL", k, simKeys[d.intn(len(simKeys), "key2")]}
		}
		return []string{"DEL", k}
	}},
	{"keys", []string{"PEXPIRE"}, func(d draws, k string, _ int64) []string {
		return []string{"PEXPIRE", k, strconv.Itoa(1 + d.intn(400, "ms"))}
	}},
	{"keys", []string{"PEXPIREAT"}, func(d draws, k string, now int64) []string {
		return []string{"PEXPIREAT", k, strconv.FormatInt(now-40+int64(d.intn(400, "at")), 10)}
	}},
	{"keys", []string{"PERSIST"}, func(d draws, k string, _ int64) []string {
		return []string{"PERSIST", k}
	}},
	{"set", []string{"SADD"}, func(d draws, k string, _ int64) []string {
		return append([]string{"SADD", k}, distinct(d, 2, func() string { return member(d) })...)
	}},
	{"set", []string{"SREM"}, func(d draws, k string, _ int64) []string {
		return append([]string{"SREM", k}, distinct(d, 2, func() string { return member(d) })...)
	}},
	{"hash", []string{"HSET"}, func(d draws, k string, _ int64) []string {
		args := []string{"HSET", k}
		for _, f := range distinct(d, 2, func() string { return "f" + strconv.Itoa(d.intn(4, "field")) }) {
			v := small(d, "hval")
			if f == "f3" && chance(d, 30, "htext") {
				v = "h" + v
			}
			args = append(args, f, v)
		}
		return args
	}},
	{"hash", []string{"HINCRBY"}, func(d draws, k string, _ int64) []string {
		return []string{"HINCRBY", k, "f" + strconv.Itoa(d.intn(3, "field")), nonzero(d, "by")}
	}},
	{"hash", []string{"HINCRBYFLOAT"}, func(d draws, k string, _ int64) []string {
		return []string{"HINCRBYFLOAT", k, "f" + strconv.Itoa(d.intn(3, "field")), nonzero(d, "by") + ".0"}
	}},
	{"hash", []string{"HDEL"}, func(d draws, k string, _ int64) []string {
		return append([]string{"HDEL", k}, distinct(d, 2, func() string { return "f" + strconv.Itoa(d.intn(4, "field")) })...)
	}},
	{"zset", []string{"ZADD"}, func(d draws, k string, _ int64) []string {
		args := []string{"ZADD", k}
		for _, mem := range distinct(d, 2, func() string { return member(d) }) {
			args = append(args, small(d, "score"), mem)
		}
		return args
	}},
	{"zset", []string{"ZADD"}, func(d draws, k string, _ int64) []string {
		// ZADD with flags: GT/LT/NX/XX/CH/INCR are decided against the
		// writing region's view, then ship as plain LWW score writes or
		// increments. Now and then an incompatible combination, to check
		// the error replies and that they write nothing.
		args := []string{"ZADD", k}
		if chance(d, 50, "zexist") {
			args = append(args, []string{"NX", "XX"}[d.intn(2, "zexistf")])
		}
		if chance(d, 40, "zcmp") {
			args = append(args, []string{"GT", "LT"}[d.intn(2, "zcmpf")])
		}
		if chance(d, 40, "zch") {
			args = append(args, "CH")
		}
		incr := chance(d, 35, "zincr")
		if incr {
			args = append(args, "INCR")
		}
		if chance(d, 4, "zbadflags") {
			args = append(args, []string{"NX", "XX", "GT", "LT"}[d.intn(4, "zbad")])
		}
		if incr && !chance(d, 5, "zincr2") {
			return append(args, score(d, "score"), member(d))
		}
		for _, mem := range distinct(d, 2, func() string { return member(d) }) {
			args = append(args, score(d, "score"), mem)
		}
		return args
	}},
	{"zset", []string{"ZINCRBY"}, func(d draws, k string, _ int64) []string {
		by := nonzero(d, "by")
		if chance(d, 40, "zfrac") {
			by = score(d, "by")
		}
		return []string{"ZINCRBY", k, by, member(d)}
	}},
	{"zset", []string{"ZREM"}, func(d draws, k string, _ int64) []string {
		return append([]string{"ZREM", k}, distinct(d, 2, func() string { return member(d) })...)
	}},
	{"string", []string{"APPEND"}, func(d draws, k string, _ int64) []string {
		// Letters only: digits could make "0"+"5" = "05", numeric to
		// INCRBYFLOAT but not to INCR, which the model leaves alone.
		return []string{"APPEND", k, []string{"x", "yz"}[d.intn(2, "suffix")]}
	}},
	{"string", []string{"GETDEL"}, func(d draws, k string, _ int64) []string {
		return []string{"GETDEL", k}
	}},
	{"keys", []string{"RENAME"}, func(d draws, k string, _ int64) []string {
		return []string{"RENAME", k, otherKey(d, k)}
	}},
	{"keys", []string{"COPY"}, func(d draws, k string, _ int64) []string {
		if chance(d, 50, "replace") {
			return []string{"COPY", k, otherKey(d, k), "REPLACE"}
		}
		return []string{"COPY", k, otherKey(d, k)}
	}},
	{"keys", []string{"RESTORE"}, func(d draws, k string, _ int64) []string {
		p := modelPayloads[d.intn(len(modelPayloads), "payload")].payload
		if chance(d, 70, "replace") {
			return []string{"RESTORE", k, "0", p, "REPLACE"}
		}
		return []string{"RESTORE", k, "0", p}
	}},
	{"set", []string{"SMOVE"}, func(d draws, k string, _ int64) []string {
		return []string{"SMOVE", k, otherKey(d, k), member(d)}
	}},
	{"set", []string{"SUNIONSTORE"}, func(d draws, k string, _ int64) []string {
		return []string{"SUNIONSTORE", simKeys[d.intn(len(simKeys), "dst")], k, otherKey(d, k)}
	}},
	{"set", []string{"SPOP"}, func(d draws, k string, _ int64) []string {
		return []string{"SPOP", k}
	}},
	{"zset", []string{"ZUNIONSTORE"}, func(d draws, k string, _ int64) []string {
		return []string{"ZUNIONSTORE", simKeys[d.intn(len(simKeys), "dst")], "2", k, otherKey(d, k)}
	}},
	{"zset", []string{"ZPOPMIN"}, func(d draws, k string, _ int64) []string {
		return []string{"ZPOPMIN", k}
	}},
	{"keys", []string{"FLUSHDB"}, func(d draws, _ string, _ int64) []string {
		return []string{"FLUSHDB"}
	}},
	{"keys", []string{"FLUSHALL"}, func(d draws, _ string, _ int64) []string {
		return []string{"FLUSHALL"}
	}},
	{"keys", []string{"MOVE"}, func(d draws, k string, _ int64) []string {
		// The target is sometimes the command's own database (an error),
		// now and then not a database at all.
		db := strconv.Itoa(d.intn(modelDBs, "movedb"))
		if chance(d, 5, "movebad") {
			db = []string{"16", "-1", "x"}[d.intn(3, "movebad#")]
		}
		return []string{"MOVE", k, db}
	}},
}

// floatGens is the convergence-only workload of TestConvergeFloatCounters
// (the model does not compute long-double folds): fractional float
// increments on strings and hash fields, integer increments, overwrites
// with integers, decimals and text, and APPEND/SETRANGE that can make a
// counter's text numeric ("1"+"5"), decimal ("1"+".5") or not ("1x").
var floatGens = []cmdGen{
	{"string", []string{"SET"}, func(d draws, k string, _ int64) []string {
		return []string{"SET", k, []string{"0", "1", "-3", "2.5", "0.1", "1e2", "x", "10"}[d.intn(8, "fval")]}
	}},
	{"string", []string{"INCRBYFLOAT"}, func(d draws, k string, _ int64) []string {
		return []string{"INCRBYFLOAT", k, []string{"0.1", "-0.2", "1.5", "3", "-1e-3", "0.3333333333333333", "5.0e3"}[d.intn(7, "fby")]}
	}},
	{"string", []string{"INCRBY"}, func(d draws, k string, _ int64) []string {
		return []string{"INCRBY", k, nonzero(d, "by")}
	}},
	{"string", []string{"APPEND"}, func(d draws, k string, _ int64) []string {
		return []string{"APPEND", k, []string{"5", ".5", "x", "0", "e1"}[d.intn(5, "fapp")]}
	}},
	{"string", []string{"SETRANGE"}, func(d draws, k string, _ int64) []string {
		return []string{"SETRANGE", k, strconv.Itoa(d.intn(4, "off")), []string{"9", ".", "-", "y", "12"}[d.intn(5, "frng")]}
	}},
	{"hash", []string{"HSET"}, func(d draws, k string, _ int64) []string {
		return []string{"HSET", k, "f" + strconv.Itoa(d.intn(2, "field")), []string{"0", "1.5", "-2", "x"}[d.intn(4, "hval")]}
	}},
	{"hash", []string{"HINCRBYFLOAT"}, func(d draws, k string, _ int64) []string {
		return []string{"HINCRBYFLOAT", k, "f" + strconv.Itoa(d.intn(2, "field")), []string{"0.1", "-0.7", "2", "1e-2"}[d.intn(4, "hby")]}
	}},
	{"hash", []string{"HINCRBY"}, func(d draws, k string, _ int64) []string {
		return []string{"HINCRBY", k, "f" + strconv.Itoa(d.intn(2, "field")), nonzero(d, "by")}
	}},
	{"keys", []string{"DEL"}, func(d draws, k string, _ int64) []string {
		return []string{"DEL", k}
	}},
	{"keys", []string{"RENAME"}, func(d draws, k string, _ int64) []string {
		return []string{"RENAME", k, otherKey(d, k)}
	}},
}

// workload is the set of generators whose commands are registered, limited
// to the groups asked for (nil: all).
type workload struct {
	gens   []cmdGen
	groups map[string]bool
}

func newWorkload(groups ...string) *workload { return newWorkloadOf(cmdGens, groups...) }

func newWorkloadOf(gens []cmdGen, groups ...string) *workload {
	w := &workload{groups: map[string]bool{}}
	want := map[string]bool{}
	for _, g := range groups {
		want[g] = true
	}
	for _, g := range gens {
		ok := len(groups) == 0 || want[g.group]
		for _, n := range g.needs {
			if Lookup([]byte(n)) == nil {
				ok = false
			}
		}
		if ok {
			w.gens = append(w.gens, g)
			w.groups[g.group] = true
		}
	}
	return w
}

// homeGroup is the type group a key mostly receives.
func (w *workload) homeGroup(key string) string {
	var gs []string
	for _, g := range []string{"string", "set", "hash", "zset"} {
		if w.groups[g] {
			gs = append(gs, g)
		}
	}
	if len(gs) == 0 {
		return "keys"
	}
	return gs[int(key[1]-'0')%len(gs)]
}

func (w *workload) command(d draws, now int64) []string {
	key := simKeys[d.intn(len(simKeys), "key")]
	var pool []cmdGen
	group := w.homeGroup(key)
	switch x := d.intn(100, "group"); {
	case x < 10:
		group = "" // any command, on any type
	case x < 35 && w.groups["keys"]:
		group = "keys"
	}
	for _, g := range w.gens {
		if group == "" || g.group == group {
			pool = append(pool, g)
		}
	}
	if len(pool) == 0 {
		pool = w.gens
	}
	g := pool[d.intn(len(pool), "cmd")]
	if (g.needs[0] == "FLUSHDB" || g.needs[0] == "FLUSHALL") && !chance(d, 10, "reallyflush") {
		g = pool[0]
	}
	return g.gen(d, key, now)
}

// Command semantics (Redis 7.0) over the model's view.

const (
	replyWrongType = "-WRONGTYPE Operation against a key holding the wrong kind of value"
	replyNotInt    = "-ERR value is not an integer or out of range"
	replyHashInt   = "-ERR hash value is not an integer"
)

// mCmd is the model's account of one command run at its origin.
type mCmd struct {
	effs     []mEff
	reply    string // expected show(reply)
	mustEmit bool   // the command must have produced an op
	isErr    bool
}

func (c *mCmd) add(e mEff) {
	c.effs = append(c.effs, e)
	switch e.kind {
	case mDelKey, mDelKeepTTL, mDelTTL, mSetRem, mHashDel, mZRem:
	default:
		c.mustEmit = true
	}
}

// newKeyClearsTTL: a write that creates a key absent in its origin's view
// also observed-removes the key's TTL register, as a new Redis key has no
// TTL (a TTL written concurrently with a DEL the origin has seen must not
// attach to a key created afterwards).
const newKeyClearsTTL = true

// command derives what args did at its origin. view returns the model's
// view of a key at the origin when the op ran (its causal past, its time);
// emitted lists the effects the crdt code actually produced (consulted only
// for DEL of a key the origin did not have, where emitting an observed
// remove of nothing visible or not is an implementation choice that only
// affects a concurrently written TTL); popped is the reply, which names
// SPOP's random choice.
func (m *model) command(db int, args []string, view func(string) keyView, now int64, emitted []Effect, popped string) mCmd {
	var c mCmd
	name := strings.ToUpper(args[0])
	if name == "FLUSHDB" || name == "FLUSHALL" {
		sub := strconv.Itoa(db)
		if name == "FLUSHALL" {
			sub = "*"
		}
		c.add(mEff{kind: mFlush, sub: sub})
		c.mustEmit = false
		c.reply = "+OK"
		return c
	}
	if name == "ZINCRBY" {
		// ZINCRBY is ZADD INCR in Redis and here (an increment that leaves
		// the score unchanged ships as a re-add of the score).
		args = []string{"ZADD", args[1], "INCR", args[2], args[3]}
		name = "ZADD"
	}
	key := args[1]
	v := view(key)
	store := name == "SUNIONSTORE" || name == "ZUNIONSTORE"
	if v.expired && !store {
		c.add(mEff{kind: mDelKey, key: key}) // expiry met by a write
		c.mustEmit = true
	}
	// argErr: an error found before any key is looked up writes nothing,
	// not even an expiry removal.
	argErr := func(reply string) {
		c.effs, c.mustEmit, c.reply, c.isErr = nil, false, reply, true
	}
	fail := func(reply string) {
		// An error reply: only the expiry removals met on the way remain.
		var pre []mEff
		for _, e := range c.effs {
			if e.kind == mDelKey {
				pre = append(pre, e)
			}
		}
		c.effs, c.reply, c.isErr = pre, reply, true
	}
	wrong := func(t ValueType) bool {
		if v.exists() && v.typ != t {
			fail(replyWrongType)
			return true
		}
		return false
	}
	// expiredToo: an expired key other than args[1] met by a write is
	// removed if the command looked it up (Redis looks up every key; an
	// implementation that stops early leaves the removal to a later write).
	expiredToo := func(k string) keyView {
		kv := view(k)
		if k != key && kv.expired && emittedDel(emitted, k) {
			c.add(mEff{kind: mDelKey, key: k})
		}
		return kv
	}
	// replay writes kv's visible content under dst as fresh adds, TTL
	// included (RENAME, COPY).
	replay := func(dst string, kv keyView) {
		switch kv.typ {
		case TypeString:
			c.add(mEff{kind: mStrSet, key: dst, val: kv.str})
		case TypeSet:
			for _, m := range modelSorted(kv.members) {
				c.add(mEff{kind: mSetAdd, key: dst, sub: m})
			}
		case TypeHash:
			for _, f := range modelSorted(kv.fields) {
				c.add(mEff{kind: mHashSet, key: dst, sub: f, val: kv.fields[f]})
			}
		case TypeZSet:
			for _, m := range modelSorted(kv.scores) {
				c.add(mEff{kind: mZAdd, key: dst, sub: m, f: kv.scores[m]})
			}
		}
		if kv.ttl != 0 {
			c.add(mEff{kind: mExpire, key: dst, n: kv.ttl})
		}
	}
	create := func() {
		if !v.exists() && !v.expired && newKeyClearsTTL {
			c.add(mEff{kind: mDelTTL, key: key})
		}
	}
	emptied := func(left int) {
		if v.exists() && left == 0 {
			c.add(mEff{kind: mDelKey, key: key})
			c.mustEmit = true
		}
	}
	atoi := func(s string) int64 { n, _ := strconv.ParseInt(s, 10, 64); return n }
	atof := func(s string) float64 { f, _ := strconv.ParseFloat(s, 64); return f }
	switch name {
	case "SET":
		kind := mDelKey
		if len(args) > 3 && strings.ToUpper(args[3]) == "KEEPTTL" && v.exists() {
			kind = mDelKeepTTL
		}
		c.add(mEff{kind: kind, key: key})
		c.add(mEff{kind: mStrSet, key: key, val: args[2]})
		if len(args) > 4 && strings.ToUpper(args[3]) == "PX" {
			c.add(mEff{kind: mExpire, key: key, n: now + atoi(args[4])})
		}
		c.reply = "+OK"
	case "INCR", "DECR", "INCRBY", "DECRBY":
		if wrong(TypeString) {
			break
		}
		by := int64(1)
		if len(args) > 2 {
			by = atoi(args[2])
		}
		if name[0] == 'D' {
			by = -by
		}
		cur := int64(0)
		if v.exists() {
			n, err := redisInt(v.str)
			if err != nil || v.bad {
				fail(replyNotInt)
				break
			}
			cur = n
		}
		create()
		c.add(mEff{kind: mStrIncr, key: key, n: by})
		c.reply = ":" + strconv.FormatInt(cur+by, 10)
	case "INCRBYFLOAT":
		if wrong(TypeString) {
			break
		}
		by, _ := strconv.ParseFloat(args[2], 64)
		cur := int64(0)
		if v.exists() {
			n, err := redisInt(v.str)
			if err != nil {
				fail("-ERR value is not a valid float")
				break
			}
			cur = n
		}
		create()
		c.add(mEff{kind: mStrIncr, key: key, n: int64(by)})
		c.reply = strconv.Quote(strconv.FormatInt(cur+int64(by), 10))
	case "HINCRBYFLOAT":
		if wrong(TypeHash) {
			break
		}
		by, _ := strconv.ParseFloat(args[3], 64)
		cur := int64(0)
		if s, ok := v.fields[args[2]]; ok {
			n, err := redisInt(s)
			if err != nil {
				fail("-ERR hash value is not a float")
				break
			}
			cur = n
		}
		create()
		c.add(mEff{kind: mHashIncr, key: key, sub: args[2], n: int64(by)})
		c.reply = strconv.Quote(strconv.FormatInt(cur+int64(by), 10))
	case "APPEND":
		if wrong(TypeString) {
			break
		}
		create()
		nv := v.str + args[2]
		if !v.exists() {
			nv = args[2]
		}
		c.add(mEff{kind: mStrSet, key: key, val: nv})
		c.reply = ":" + strconv.Itoa(len(nv))
	case "GETDEL":
		c.reply = "nil"
		if wrong(TypeString) || !v.exists() {
			break
		}
		c.add(mEff{kind: mDelKey, key: key})
		c.mustEmit = true
		c.reply = strconv.Quote(v.str)
	case "RESTORE":
		// A whole-key write like COPY ... REPLACE: the key's observed
		// content goes, the payload's is written as fresh adds.
		if v.exists() && len(args) < 5 {
			fail("-BUSYKEY Target key name already exists.")
			break
		}
		for _, p := range modelPayloads {
			if p.payload == args[3] {
				c.add(mEff{kind: mDelKey, key: key})
				replay(key, p.content)
				c.reply = "+OK"
			}
		}
	case "RENAME", "COPY":
		dst := args[2]
		dv := expiredToo(dst)
		if !v.exists() {
			if name == "RENAME" {
				fail("-ERR no such key")
			} else {
				c.reply = ":0"
			}
			break
		}
		if name == "COPY" && dv.exists() && (len(args) < 4 || strings.ToUpper(args[3]) != "REPLACE") {
			c.reply = ":0"
			break
		}
		if name == "RENAME" {
			c.add(mEff{kind: mDelKey, key: key})
			c.reply = "+OK"
		} else {
			c.reply = ":1"
		}
		c.add(mEff{kind: mDelKey, key: dst})
		replay(dst, v)
	case "MOVE":
		c.reply = ":0"
		to, err := strconv.Atoi(args[2])
		switch {
		case err != nil:
			argErr(replyNotInt)
		case to < 0 || to >= NumDBs:
			argErr("-ERR DB index is out of range")
		case to == db:
			argErr("-ERR source and destination objects are the same")
		}
		if c.isErr || !v.exists() {
			break
		}
		_, base := splitKey(key)
		dst := qkey(to, base)
		dv := expiredToo(dst)
		if dv.exists() {
			break
		}
		if !dv.expired && newKeyClearsTTL {
			c.add(mEff{kind: mDelTTL, key: dst})
		}
		replay(dst, v)
		c.add(mEff{kind: mDelKey, key: key})
		c.reply = ":1"
	case "SMOVE":
		dst, mem := args[2], args[3]
		dv := expiredToo(dst)
		c.reply = ":0"
		if !v.exists() {
			break
		}
		if wrong(TypeSet) {
			break
		}
		if dv.exists() && dv.typ != TypeSet {
			fail(replyWrongType)
			break
		}
		if !v.members[mem] {
			break
		}
		c.add(mEff{kind: mSetRem, key: key, sub: mem})
		emptied(len(v.members) - 1)
		if !dv.exists() && !dv.expired && newKeyClearsTTL {
			c.add(mEff{kind: mDelTTL, key: dst})
		}
		c.add(mEff{kind: mSetAdd, key: dst, sub: mem})
		c.reply = ":1"
	case "SUNIONSTORE", "ZUNIONSTORE":
		dst, srcs := args[1], args[2:]
		if name == "ZUNIONSTORE" {
			srcs = args[3:]
		}
		union := map[string]float64{}
		failed := false
		for _, k := range srcs {
			kv := expiredToo(k)
			if !kv.exists() {
				continue
			}
			switch {
			case kv.typ == TypeSet:
				for m := range kv.members {
					union[m]++
				}
			case kv.typ == TypeZSet && name == "ZUNIONSTORE":
				for m, sc := range kv.scores {
					union[m] += sc
				}
			default:
				failed = true
			}
		}
		dv := view(dst)
		if failed {
			// The destination is not looked up: its expiry removal is
			// left to a later write.
			fail(replyWrongType)
			if dv.expired && emittedDel(emitted, dst) {
				c.effs = append(c.effs, mEff{kind: mDelKey, key: dst})
			}
			break
		}
		// A destination with no visible content: whether the store removes
		// what is hidden there (a ghost TTL) is the implementation's
		// choice, as for DEL; a new key starts without a TTL.
		switch {
		case dv.exists() || emittedDel(emitted, dst):
			c.add(mEff{kind: mDelKey, key: dst})
		case len(union) > 0 && !dv.expired && newKeyClearsTTL:
			c.add(mEff{kind: mDelTTL, key: dst})
		}
		c.mustEmit = dv.exists() || len(union) > 0
		for _, m := range modelSorted(union) {
			if name == "SUNIONSTORE" {
				c.add(mEff{kind: mSetAdd, key: dst, sub: m})
			} else {
				c.add(mEff{kind: mZAdd, key: dst, sub: m, f: union[m]})
			}
		}
		c.reply = ":" + strconv.Itoa(len(union))
	case "SPOP":
		c.reply = "nil"
		if wrong(TypeSet) || !v.exists() {
			break
		}
		// The choice is the replica's (seeded by the stamp): take it from
		// the reply, and check it was a member.
		got := strings.Trim(popped, `"`)
		if !v.members[got] {
			c.reply = "a member of " + strings.Join(modelSorted(v.members), ",")
			break
		}
		c.add(mEff{kind: mSetRem, key: key, sub: got})
		c.mustEmit = true
		emptied(len(v.members) - 1)
		c.reply = strconv.Quote(got)
	case "ZPOPMIN":
		c.reply = "[]"
		if wrong(TypeZSet) || !v.exists() {
			break
		}
		mems := modelSorted(v.scores)
		sort.SliceStable(mems, func(i, j int) bool { return v.scores[mems[i]] < v.scores[mems[j]] })
		m := mems[0]
		c.add(mEff{kind: mZRem, key: key, sub: m})
		c.mustEmit = true
		emptied(len(mems) - 1)
		c.reply = fmt.Sprintf("[%q %q]", m, FormatDouble(v.scores[m]))
	case "DEL":
		n := 0
		for _, k := range dedupe(args[1:]) {
			kv := view(k)
			if k != key && kv.expired {
				c.add(mEff{kind: mDelKey, key: k})
				c.mustEmit = true
			}
			switch {
			case kv.exists():
				n++
				c.add(mEff{kind: mDelKey, key: k})
				c.mustEmit = true
			case !kv.expired && emittedDel(emitted, k):
				c.add(mEff{kind: mDelKey, key: k})
			}
		}
		c.reply = ":" + strconv.Itoa(n)
	case "PEXPIRE", "PEXPIREAT":
		c.reply = ":0"
		if !v.exists() {
			break
		}
		at := atoi(args[2])
		if name == "PEXPIRE" {
			at += now
		}
		if at <= now {
			c.add(mEff{kind: mDelKey, key: key})
			c.mustEmit = true
		} else {
			c.add(mEff{kind: mExpire, key: key, n: at})
		}
		c.reply = ":1"
	case "PERSIST":
		c.reply = ":0"
		if v.exists() && v.ttl != 0 {
			c.add(mEff{kind: mExpire, key: key, n: 0})
			c.reply = ":1"
		}
	case "SADD":
		if wrong(TypeSet) {
			break
		}
		create()
		n := 0
		for _, mem := range args[2:] {
			if !v.members[mem] {
				n++
			}
			c.add(mEff{kind: mSetAdd, key: key, sub: mem})
		}
		c.reply = ":" + strconv.Itoa(n)
	case "SREM":
		if wrong(TypeSet) {
			break
		}
		n := 0
		for _, mem := range args[2:] {
			if v.members[mem] {
				n++
				c.add(mEff{kind: mSetRem, key: key, sub: mem})
				c.mustEmit = true
			}
		}
		emptied(len(v.members) - n)
		c.reply = ":" + strconv.Itoa(n)
	case "HSET":
		if wrong(TypeHash) {
			break
		}
		create()
		n := 0
		for i := 2; i+1 < len(args); i += 2 {
			if _, ok := v.fields[args[i]]; !ok {
				n++
			}
			c.add(mEff{kind: mHashSet, key: key, sub: args[i], val: args[i+1]})
		}
		c.reply = ":" + strconv.Itoa(n)
	case "HINCRBY":
		if wrong(TypeHash) {
			break
		}
		cur := int64(0)
		if s, ok := v.fields[args[2]]; ok {
			n, err := redisInt(s)
			if err != nil || v.badF[args[2]] {
				fail(replyHashInt)
				break
			}
			cur = n
		}
		create()
		by := atoi(args[3])
		c.add(mEff{kind: mHashIncr, key: key, sub: args[2], n: by})
		c.reply = ":" + strconv.FormatInt(cur+by, 10)
	case "HDEL":
		if wrong(TypeHash) {
			break
		}
		n := 0
		for _, f := range args[2:] {
			if _, ok := v.fields[f]; ok {
				n++
				c.add(mEff{kind: mHashDel, key: key, sub: f})
				c.mustEmit = true
			}
		}
		emptied(len(v.fields) - n)
		c.reply = ":" + strconv.Itoa(n)
	case "ZADD":
		var nx, xx, gt, lt, ch, incr bool
		i := 2
	flags:
		for ; i < len(args); i++ {
			switch strings.ToUpper(args[i]) {
			case "NX":
				nx = true
			case "XX":
				xx = true
			case "GT":
				gt = true
			case "LT":
				lt = true
			case "CH":
				ch = true
			case "INCR":
				incr = true
			default:
				break flags
			}
		}
		switch pairs := len(args) - i; {
		case pairs == 0 || pairs%2 != 0:
			argErr("-ERR syntax error")
		case nx && xx:
			argErr("-ERR XX and NX options at the same time are not compatible")
		case nx && (gt || lt) || gt && lt:
			argErr("-ERR GT, LT, and/or NX options at the same time are not compatible")
		case incr && pairs > 2:
			argErr("-ERR INCR option supports a single increment-element pair")
		}
		if c.isErr || wrong(TypeZSet) {
			break
		}
		create()
		added, updated, processed := 0, 0, 0
		var last float64
		for ; i+1 < len(args); i += 2 {
			mem, score := args[i+1], atof(args[i])
			old, ok := v.scores[mem]
			switch {
			case ok:
				if nx {
					continue
				}
				ns := score
				if incr {
					ns = old + score
				}
				if lt && ns >= old || gt && ns <= old {
					continue
				}
				processed++
				last = ns
				if ns == old {
					// Re-adding a member with its current score changes
					// nothing locally; whether it still counts as a fresh
					// add against a concurrent ZREM is the
					// implementation's choice.
					if emittedField(emitted, EffZAdd, key, mem) {
						c.effs = append(c.effs, mEff{kind: mZAdd, key: key, sub: mem, f: old})
					} else if f, ok := emittedFloat(emitted, EffZIncr, key, mem); ok && incr {
						// An increment that leaves the score as it is
						// still ships as an increment (of 0, -0 or one
						// absorbed by a large score), so it adds up with
						// concurrent ones and survives an observed-remove
						// that did not see it.
						c.effs = append(c.effs, mEff{kind: mZIncr, key: key, sub: mem, f: f})
					}
					continue
				}
				if incr {
					// The reply is the member's fold with this increment
					// at its tag, which is greater than that of every op
					// the origin has seen.
					c.add(mEff{kind: mZIncr, key: key, sub: mem, f: score})
					last = v.zacc[mem].fold(zsetInc{^HLC(0), m.next, score})
				} else {
					c.add(mEff{kind: mZAdd, key: key, sub: mem, f: score})
				}
				updated++
			case !xx:
				if incr {
					c.add(mEff{kind: mZIncr, key: key, sub: mem, f: score})
				} else {
					c.add(mEff{kind: mZAdd, key: key, sub: mem, f: score})
				}
				added++
				processed++
				last = score
			}
		}
		switch {
		case incr && processed == 0:
			c.reply = "nil"
		case incr:
			c.reply = strconv.Quote(FormatDouble(float64(last)))
		case ch:
			c.reply = ":" + strconv.Itoa(added+updated)
		default:
			c.reply = ":" + strconv.Itoa(added)
		}
	case "ZREM":
		if wrong(TypeZSet) {
			break
		}
		n := 0
		for _, mem := range args[2:] {
			if _, ok := v.scores[mem]; ok {
				n++
				c.add(mEff{kind: mZRem, key: key, sub: mem})
				c.mustEmit = true
			}
		}
		emptied(len(v.scores) - n)
		c.reply = ":" + strconv.Itoa(n)
	default:
		panic("model: no semantics for " + name)
	}
	return c
}

func dedupe(keys []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, k := range keys {
		if !seen[k] {
			seen[k] = true
			out = append(out, k)
		}
	}
	return out
}

func emittedDel(effs []Effect, qk string) bool {
	db, key := splitKey(qk)
	for _, e := range effs {
		if e.Kind == EffDelKey && int(e.DB) == db && string(e.Key) == key {
			return true
		}
	}
	return false
}

func emittedField(effs []Effect, kind EffectKind, qk, field string) bool {
	db, key := splitKey(qk)
	for _, e := range effs {
		if e.Kind == kind && int(e.DB) == db && string(e.Key) == key && string(e.Field) == field {
			return true
		}
	}
	return false
}

// emittedFloat returns the Float of the effect of kind on qk's field.
func emittedFloat(effs []Effect, kind EffectKind, qk, field string) (float64, bool) {
	db, key := splitKey(qk)
	for _, e := range effs {
		if e.Kind == kind && int(e.DB) == db && string(e.Key) == key && string(e.Field) == field {
			return e.Float, true
		}
	}
	return 0, false
}

// history lists the ops in that touch key, for failure messages.
func (m *model) history(key string, in func(*mOp) bool) string {
	var b strings.Builder
	ops := append(append([]*mOp(nil), m.byKey[key]...), m.flush...)
	sort.Slice(ops, func(i, j int) bool { return ops[j].newer(ops[i]) })
	for _, op := range ops {
		if !in(op) {
			continue
		}
		fmt.Fprintf(&b, "\n    %v:%d t=%d.%d past=%v:", op.origin, op.seq, op.time.Millis(), op.time&0xffff, op.past)
		for _, e := range op.effs {
			if e.key == key || e.kind == mFlush && flushes(&e, key) {
				fmt.Fprintf(&b, " %s", e)
			}
		}
		if op.cmd != nil {
			fmt.Fprintf(&b, "  (%s)", strings.Join(op.cmd, " "))
		}
	}
	return b.String()
}

var mKindNames = [...]string{"?", "del", "delKeepTTL", "delTTL", "flush", "strSet", "strIncr", "expire",
	"sadd", "srem", "hset", "hincr", "hdel", "zadd", "zincr", "zrem"}

func (e mEff) String() string {
	s := mKindNames[e.kind]
	if e.sub != "" {
		s += "(" + e.sub + ")"
	}
	switch e.kind {
	case mStrSet, mHashSet:
		s += "=" + e.val
	case mZAdd, mZIncr:
		s += "=" + FormatDouble(e.f)
	case mStrIncr, mHashIncr, mExpire:
		s += "=" + strconv.FormatInt(e.n, 10)
	}
	return s
}

// redisInt parses s as Redis's string2ll does: canonical decimal only (no
// sign on zero, no leading zeros, no '+').
func redisInt(s string) (int64, error) {
	n, err := strconv.ParseInt(s, 10, 64)
	if err == nil && strconv.FormatInt(n, 10) != s {
		err = fmt.Errorf("not canonical: %q", s)
	}
	return n, err
}

// modelPayloads are the DUMP payloads the workloads RESTORE, one per
// payload type, with the content each holds.
var modelPayloads = func() []struct {
	payload string
	content keyView
} {
	str := func(typ byte, elems ...string) string {
		b := []byte{typ}
		if typ != rdbTypeString {
			n := len(elems)
			if typ == rdbTypeHash || typ == rdbTypeZSet2 {
				n /= 2
			}
			b = rdbAppendLen(b, uint64(n))
		}
		for i, e := range elems {
			if typ == rdbTypeZSet2 && i%2 == 1 {
				f, _ := strconv.ParseFloat(e, 64)
				b = binary.LittleEndian.AppendUint64(b, math.Float64bits(f))
				continue
			}
			b = rdbAppendString(b, []byte(e))
		}
		return string(rdbSeal(b))
	}
	intset := string(rdbSeal(rdbAppendString([]byte{rdbTypeSetIntset}, intsetBlob([]string{"1", "2", "30000"}))))
	return []struct {
		payload string
		content keyView
	}{
		{str(rdbTypeString, "restored"), keyView{typ: TypeString, str: "restored"}},
		{str(rdbTypeString, "12"), keyView{typ: TypeString, str: "12"}},
		{str(rdbTypeSet, "m1", "x"), keyView{typ: TypeSet, members: map[string]bool{"m1": true, "x": true}}},
		{intset, keyView{typ: TypeSet, members: map[string]bool{"1": true, "2": true, "30000": true}}},
		{str(rdbTypeHash, "f0", "1", "g", "x"), keyView{typ: TypeHash, fields: map[string]string{"f0": "1", "g": "x"}}},
		{str(rdbTypeZSet2, "m0", "1.5", "m3", "-2"), keyView{typ: TypeZSet, scores: map[string]float64{"m0": 1.5, "m3": -2}}},
	}
}()
