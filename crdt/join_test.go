package crdt

import (
	"fmt"
	"testing"

	"pgregory.net/rapid"
)

// Algebra of the building blocks in register.go (mvreg, tagSet, incList),
// independent of any value type. States come from random histories on
// several replicas with real causal contexts: each replica issues ops whose
// context is its version vector, and ops travel to the other replicas in a
// random causal order. On those states the state-based join must be
// commutative, associative and idempotent, and op-based application of the
// missing ops under causal delivery must give exactly the join.

// draws is a simulation's source of choices: rapid's (which shrinks
// failures and prints the seed) in property tests, or a seeded splitmix
// Rand in the fault tests that must run a check without failing the test.
type draws interface {
	intn(n int, label string) int // uniform in [0, n)
}

type rapidDraws struct{ t *rapid.T }

func (d rapidDraws) intn(n int, label string) int { return rapid.IntRange(0, n-1).Draw(d.t, label) }

type randDraws struct{ r *Rand }

func (d randDraws) intn(n int, _ string) int { return d.r.Intn(n) }

// chance reports true with probability pct percent.
func chance(d draws, pct int, label string) bool { return d.intn(100, label) < pct }

type primKind uint8

const (
	pRegWrite  primKind = iota // mvreg.write
	pRegRemove                 // mvreg.remove (observed-remove of the register)
	pSetAdd                    // tagSet.add
	pSetRemove                 // tagSet.remove
	pIncAdd                    // incList.add
	pOverwrite                 // counter overwrite: mvreg.write + incList.remove
	pDelete                    // remove everything observed
	primKinds
)

// primOp is one op of the primitive history.
type primOp struct {
	kind primKind
	tag  Tag
	ctx  Context
	val  int64
}

// primState is one replica's state: one register, one add-wins element and
// one increment list, plus the version vector of the ops it has applied.
type primState struct {
	vv   VersionVector
	last HLC
	reg  mvreg[int64]
	set  tagSet
	incs incList[int64]
}

func (s *primState) clone() *primState {
	return &primState{
		vv:   s.vv.Clone(),
		last: s.last,
		reg:  append(mvreg[int64](nil), s.reg...),
		set:  append(tagSet(nil), s.set...),
		incs: append(incList[int64](nil), s.incs...),
	}
}

func (s *primState) String() string {
	return fmt.Sprintf("vv=%v reg=%v set=%v incs=%v", s.vv, s.reg, s.set, s.incs)
}

// apply is op-based application (local or remote alike).
func (s *primState) apply(op primOp) {
	switch op.kind {
	case pRegWrite:
		s.reg = s.reg.write(op.tag, op.val, op.ctx)
	case pRegRemove:
		s.reg = s.reg.remove(op.ctx)
	case pSetAdd:
		s.set = s.set.add(op.tag, op.ctx)
	case pSetRemove:
		s.set = s.set.remove(op.ctx)
	case pIncAdd:
		s.incs = s.incs.add(op.tag, op.val)
	case pOverwrite:
		s.incs = s.incs.remove(op.ctx)
		s.reg = s.reg.write(op.tag, op.val, op.ctx)
	case pDelete:
		s.reg = s.reg.remove(op.ctx)
		s.set = s.set.remove(op.ctx)
		s.incs = s.incs.remove(op.ctx)
	}
	s.vv = s.vv.Set(op.tag.Dot.Origin, op.tag.Dot.Seq)
	if op.tag.Time > s.last {
		s.last = op.tag.Time
	}
}

// join returns the state-based merge of s and o (neither is modified).
func (s *primState) join(o *primState) *primState {
	a, b := s.clone(), o.clone()
	mine, theirs := a.vv.Clone(), b.vv
	out := &primState{
		reg:  a.reg.join(mine, b.reg, theirs),
		set:  a.set.join(mine, b.set, theirs),
		incs: a.incs.join(mine, b.incs, theirs),
		vv:   mine.Merge(theirs),
		last: max(a.last, b.last),
	}
	return out
}

// ready reports whether op may be applied to s under causal delivery: it is
// its origin's next op and s has seen everything its context had.
func (s *primState) ready(op primOp) bool {
	d := op.tag.Dot
	if s.vv.Get(d.Origin)+1 != d.Seq {
		return false
	}
	for _, e := range op.ctx.Deps {
		if s.vv.Get(e.Origin) < e.Seq {
			return false
		}
	}
	return true
}

// deliverCausally applies to s, in a random causal order, every op of log
// that want covers and s has not seen.
func deliverCausally(d draws, s *primState, log []primOp, want VersionVector) error {
	for {
		var cand []int
		for i, op := range log {
			if want.Covers(op.tag.Dot) && !s.vv.Covers(op.tag.Dot) && s.ready(op) {
				cand = append(cand, i)
			}
		}
		if len(cand) == 0 {
			break
		}
		s.apply(log[cand[d.intn(len(cand), "deliver")]])
	}
	if !s.vv.Dominates(want) {
		return fmt.Errorf("causal delivery stuck at %v, want %v", s.vv, want)
	}
	return nil
}

// primHistory runs a random history on 2-4 replicas and returns the op log
// (in issue order, a causal order), the final replica states and states
// captured along the way.
func primHistory(d draws) (log []primOp, reps, snaps []*primState) {
	n := 2 + d.intn(3, "replicas")
	reps = make([]*primState, n)
	clocks := make([]int64, n)
	for i := range reps {
		reps[i] = &primState{}
		clocks[i] = int64(d.intn(50, "skew"))
	}
	steps := 5 + d.intn(80, "steps")
	for s := 0; s < steps; s++ {
		i := d.intn(n, "replica")
		r := reps[i]
		if chance(d, 45, "local") {
			self := Origin{Region: uint32(i + 1), Incarnation: 1}
			clocks[i] += int64(d.intn(5, "tick"))
			t := HLCFromMillis(1000 + clocks[i])
			if t <= r.last {
				t = r.last + 1
			}
			seq := r.vv.Get(self) + 1
			var deps VersionVector
			for _, e := range r.vv {
				if e.Origin != self {
					deps = append(deps, e)
				}
			}
			op := primOp{
				kind: primKind(d.intn(int(primKinds), "kind")),
				tag:  Tag{Time: t, Dot: Dot{Origin: self, Seq: seq}},
				ctx:  Context{Deps: deps, Origin: self, Upto: seq - 1},
				val:  int64(d.intn(7, "val")) - 3,
			}
			log = append(log, op)
			r.apply(op)
		} else {
			var cand []int
			for k, op := range log {
				if !r.vv.Covers(op.tag.Dot) && r.ready(op) {
					cand = append(cand, k)
				}
			}
			if len(cand) > 0 {
				r.apply(log[cand[d.intn(len(cand), "deliver")]])
			}
		}
		if chance(d, 20, "capture") {
			snaps = append(snaps, r.clone())
		}
	}
	return log, reps, snaps
}

// checkPrimitives runs one random history and checks the join laws; it
// returns the first violation.
func checkPrimitives(d draws) error {
	log, reps, snaps := primHistory(d)
	states := append(append([]*primState(nil), snaps...), reps...)
	pick := func(label string) *primState { return states[d.intn(len(states), label)] }
	a, b, c := pick("A"), pick("B"), pick("C")
	eq := func(what string, x, y *primState) error {
		if x.String() != y.String() {
			return fmt.Errorf("%s:\n  %v\n  %v\nA=%v\nB=%v\nC=%v", what, x, y, a, b, c)
		}
		return nil
	}
	if err := eq("join not commutative", a.join(b), b.join(a)); err != nil {
		return err
	}
	if err := eq("join not associative", a.join(b).join(c), a.join(b.join(c))); err != nil {
		return err
	}
	if err := eq("join not idempotent", a.join(a), a); err != nil {
		return err
	}
	// Op-based: deliver B's ops that A lacks to a copy of A, causally.
	ab := a.clone()
	if err := deliverCausally(d, ab, log, b.vv); err != nil {
		return err
	}
	if err := eq("op-based delivery differs from join", ab, a.join(b)); err != nil {
		return err
	}
	// Every replica, once it has every op (in its own random causal order),
	// holds the same state, and that state is the join of all of them.
	var all VersionVector
	joined := &primState{}
	for _, r := range reps {
		all = all.Merge(r.vv)
		joined = joined.join(r)
	}
	for i, r := range reps {
		if err := deliverCausally(d, r, log, all); err != nil {
			return err
		}
		if err := eq(fmt.Sprintf("replica %d differs from replica 0 after full delivery", i), r, reps[0]); err != nil {
			return err
		}
	}
	return eq("fully delivered state differs from join of all states", reps[0], joined)
}

func TestPrimitiveJoinAlgebra(t *testing.T) {
	rapid.Check(t, func(rt *rapid.T) {
		if err := checkPrimitives(rapidDraws{rt}); err != nil {
			rt.Fatal(err)
		}
	})
}

// caught runs check with seeds 1..tries under fault flt and returns the
// first seed whose run reports an error that the same seed does not report
// without the fault. A seed that fails without the fault too is a real bug:
// it is returned with baseline set.
func caught(tries int, flt fault, check func(d draws) error) (seed uint64, err, baseline error) {
	defer func() { testFault = faultNone }()
	for seed = 1; seed <= uint64(tries); seed++ {
		testFault = flt
		err = check(randDraws{NewRand(seed)})
		testFault = faultNone
		if err == nil {
			continue
		}
		return seed, err, check(randDraws{NewRand(seed)})
	}
	return 0, nil, nil
}

// requireCaught fails t unless check catches flt within tries seeds.
func requireCaught(t *testing.T, tries int, flt fault, check func(d draws) error) {
	t.Helper()
	seed, err, base := caught(tries, flt, check)
	switch {
	case err == nil:
		t.Errorf("fault %v not caught in %d runs", flt, tries)
	case base != nil:
		t.Errorf("seed %d fails without any fault: %v", seed, base)
	default:
		msg := err.Error()
		if len(msg) > 400 {
			msg = msg[:400] + "..."
		}
		t.Logf("fault %v caught with seed %d (which passes without it): %s", flt, seed, msg)
	}
}

func TestPrimitiveFaultsCaught(t *testing.T) {
	for _, flt := range []fault{faultDropIncrement, faultRemoveWins} {
		requireCaught(t, 500, flt, checkPrimitives)
	}
}
