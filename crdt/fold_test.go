package crdt

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"

	"pgregory.net/rapid"
)

// Tests of the fold op (fold.go): garbage collection of counter pieces as
// a replicated, causally stable op.
//
//   - TestFoldConverge*: the convergence simulation of converge_test.go
//     with fold ops issued at random points from vectors an oracle proves
//     causally stable (foldStable), states transferred between folded and
//     unfolded replicas, and at the end a fold at quiescence. Besides
//     everything runSim checks (digests, joins of captured states, op-based
//     delivery of every batch including the folds, the reference model),
//     every fold must leave the folding replica's visible values exactly as
//     they were, the backlog count must be exact after every step, and the
//     final values must equal those of a replica that merged the same ops
//     with every fold stripped out. After the quiescent fold nothing is
//     left unfolded.
//   - TestFoldFaultsCaught: broken fold rules make those checks fail.
//   - unit tests of the metadata bound, the join rule, concurrent folds,
//     float exactness, refusals and the encodings.

// foldCounts tallies what the fold simulations exercised (logged with -v).
type foldCounts struct {
	folds, items, refused, unstable, finalFolds, finalItems int
	groupJoins, mixedJoins, concurrent                      int
}

var fcounts foldCounts

func (c *foldCounts) String() string {
	return fmt.Sprintf("fold ops=%d items folded=%d (nothing foldable %d, no stable vector %d) final quiescent folds=%d items=%d "+
		"state transfers with fold groups=%d (groups on one side only %d) pairs of concurrent folds=%d",
		c.folds, c.items, c.refused, c.unstable, c.finalFolds, c.finalItems, c.groupJoins, c.mixedJoins, c.concurrent)
}

// foldStable returns a version vector causally stable at replica i, by the
// definition the replication layer implements: every replica has applied
// it, and replica i has applied every op any replica issued before that
// replica had seen it (so every op i lacks has a context dominating it).
// It starts from the pointwise minimum of all replicas' version vectors
// (now and then lowered further to vary the thresholds) and lowers it to
// the context of each op that violates the second condition until none
// does: lowering only removes violations, so this ends with the greatest
// such vector below the start. nil if it ends empty.
func (s *sim) foldStable(i int, lower bool) VersionVector {
	var S VersionVector
	for j, r := range s.reps {
		if j == 0 {
			S = r.ks.Version()
			continue
		}
		S = vvMin(S, r.ks.Version())
	}
	if lower && len(s.batches) > 0 && chance(s.d, 30, "foldlower") {
		b, _ := DecodeBatch(s.batches[s.d.intn(len(s.batches), "foldlower#")])
		S = vvMin(S, ctxVector(b.Context(0)))
	}
	have := s.reps[i].ks.Version()
	ops := s.allOps()
	for changed := true; changed; {
		changed = false
		for _, op := range ops {
			if have.Covers(op.dot) || ctxDominates(op.ctx, S) {
				continue
			}
			S = vvMin(S, ctxVector(op.ctx))
			changed = true
		}
	}
	if !s.isStable(i, S) {
		panic("foldStable: not stable")
	}
	var out VersionVector
	for _, e := range S {
		if e.Seq > 0 {
			out = append(out, e)
		}
	}
	return out
}

// isStable checks both conditions of causal stability of S at replica i.
func (s *sim) isStable(i int, S VersionVector) bool {
	for _, r := range s.reps {
		if !r.ks.Version().Dominates(S) {
			return false
		}
	}
	have := s.reps[i].ks.Version()
	for _, op := range s.allOps() {
		if !have.Covers(op.dot) && !ctxDominates(op.ctx, S) {
			return false
		}
	}
	return true
}

type simOpInfo struct {
	dot Dot
	ctx Context
}

// allOps lists every op produced so far with its context.
func (s *sim) allOps() []simOpInfo {
	var out []simOpInfo
	for _, data := range s.batches {
		b, _ := DecodeBatch(data)
		for k := range b.Ops {
			out = append(out, simOpInfo{b.Tag(k).Dot, b.Context(k)})
		}
	}
	return out
}

func vvMin(a, b VersionVector) VersionVector {
	var out VersionVector
	for _, e := range a {
		if m := min(e.Seq, b.Get(e.Origin)); m > 0 {
			out = append(out, VVEntry{e.Origin, m})
		}
	}
	return out
}

// ctxVector is the version vector a context stands for.
func ctxVector(c Context) VersionVector {
	v := c.Deps.Clone()
	if c.Upto > 0 {
		v = v.Set(c.Origin, c.Upto)
	}
	return v
}

// observeAll renders every model key as replica ks shows it at time now.
func observeAll(ks *Keyspace, now int64) string {
	var parts []string
	for _, k := range modelKeys {
		parts = append(parts, k+"="+observe(ks, k, now, &keyView{}))
	}
	return strings.Join(parts, "; ")
}

// countUnfoldedSlow recounts the fold backlog from content, without the
// maintained indexes, and checks the per-database candidate sets.
func countUnfoldedSlow(ks *Keyspace) (int, error) {
	total := 0
	for i := range ks.dbs {
		d := &ks.dbs[i]
		var err error
		d.keys.Each(func(k string, e *entry) bool {
			n := 0
			for _, v := range e.vals {
				switch v := v.(type) {
				case *strValue:
					if len(v.incs()) > 0 || v.pieces() > 1 {
						n++
					}
				case *hashValue:
					v.fields.Each(func(_ string, f *numeric) bool {
						if len(f.incs()) > 0 || f.pieces() > 1 {
							n++
						}
						return true
					})
				case *zsetValue:
					v.members.Each(func(_ string, m *zmember) bool {
						if m.unfolded() {
							n++
						}
						return true
					})
				case *hllValue:
					if v.pieces() > 1 {
						n++
					}
				}
			}
			total += n
			_, cand := d.unfolded[k]
			if !ks.solo && cand != (n > 0) {
				err = fmt.Errorf("db %d key %q: %d unfolded items, candidate=%v", i, k, n, cand)
				return false
			}
			return true
		})
		if err != nil {
			return 0, err
		}
		for k := range d.unfolded {
			if _, ok := d.keys.Get(k); !ok {
				return 0, fmt.Errorf("db %d: candidate %q has no entry", i, k)
			}
		}
		for _, ts := range d.hllDels {
			if len(ts) > 0 {
				total++ // a key with HLL tombstones to collect
			}
		}
	}
	if total != ks.Unfolded() {
		return total, fmt.Errorf("Unfolded() = %d, recount %d", ks.Unfolded(), total)
	}
	return total, nil
}

// fold issues a fold op at replica i from a stable vector and ships it.
func (s *sim) fold(i int) error {
	// Replicas fall behind under the simulation's random delivery, and a
	// vector is stable only once every replica has applied it: before most
	// folds, deliver part of what is in flight, and then everything in
	// flight to the folding replica (a region that folds once it has heard
	// from every peer). Other folds run on whatever the replicas have.
	x := s.d.intn(100, "foldheal")
	if x < 50 {
		for k := len(s.net) / 2; k > 0 && len(s.net) > 0; k-- {
			if err := s.deliver(false); err != nil {
				return err
			}
		}
	}
	if x < 80 {
		keep := s.net[:0]
		var mine []simMsg
		for _, m := range s.net {
			if m.to == i {
				mine = append(mine, m)
			} else {
				keep = append(keep, m)
			}
		}
		s.net = keep
		for _, m := range mine {
			counts.deliveries++
			if err := s.receive(m.to, m.data); err != nil {
				return err
			}
		}
	}
	S := s.foldStable(i, true)
	if len(S) == 0 {
		fcounts.unstable++
		return nil
	}
	return s.foldWith(i, S, 1+s.d.intn(6, "foldmax"), false)
}

func (s *sim) foldWith(i int, S VersionVector, max int, final bool) error {
	r := s.reps[i]
	ks := r.ks
	r.clock += int64(s.d.intn(25, "tick"))
	t := HLCFromMillis(r.clock)
	if t <= r.stamp {
		t = r.stamp + 1
	}
	r.stamp = t
	now := ks.LastTime().Millis()
	before, vv := observeAll(ks, now), ks.Version()
	b, n := ks.Fold(Stamp{Time: t, Seed: uint64(s.d.intn(1<<20, "seed"))}, S, max)
	if after := observeAll(ks, now); after != before {
		return fmt.Errorf("replica %d: fold with %v changed what reads show:\n  before %s\n  after  %s", i, S, before, after)
	}
	if _, err := countUnfoldedSlow(ks); err != nil {
		return fmt.Errorf("replica %d after fold: %w", i, err)
	}
	if b == nil {
		if n != 0 || !ks.Version().Equal(vv) {
			return fmt.Errorf("replica %d: fold without a batch reported %d items or used a dot", i, n)
		}
		fcounts.refused++
		return nil
	}
	if n != len(b.Ops[0].Effects) || n == 0 || n > max {
		return fmt.Errorf("replica %d: fold reported %d items for %d effects (max %d)", i, n, len(b.Ops[0].Effects), max)
	}
	for _, data := range s.batches {
		if o, err := DecodeBatch(data); err == nil && o.Origin != b.Origin && len(o.Ops[0].Effects) > 0 &&
			o.Ops[0].Effects[0].Kind == EffFold && !b.Context(0).Covers(o.Tag(0).Dot) {
			fcounts.concurrent++
		}
	}
	if final {
		fcounts.finalFolds++
		fcounts.finalItems += n
	} else {
		fcounts.folds++
		fcounts.items += n
	}
	return s.ship(i, b)
}

// foldReincarnate is reincarnate followed by catch-up from every other
// replica before the new incarnation writes: a region restored from a
// backup older than a vector it acknowledged as applied would otherwise
// issue ops that do not see a stable vector (see docs/semantics.md).
func (s *sim) foldReincarnate(i int) error {
	if err := s.reincarnate(i); err != nil {
		return err
	}
	for j := range s.reps {
		if err := s.transfer(i, j); err != nil {
			return err
		}
	}
	return nil
}

// foldTransfer is transfer, counting joins where a side holds fold groups.
func (s *sim) foldTransfer(i, from int) error {
	if i != from && (holdsGroups(s.reps[i].ks) || holdsGroups(s.reps[from].ks)) {
		fcounts.groupJoins++
		if holdsGroups(s.reps[i].ks) != holdsGroups(s.reps[from].ks) {
			fcounts.mixedJoins++
		}
	}
	return s.transfer(i, from)
}

// holdsGroups reports whether any value of ks holds a fold group.
func holdsGroups(ks *Keyspace) bool {
	found := false
	for i := range ks.dbs {
		ks.dbs[i].keys.Each(func(_ string, e *entry) bool {
			for _, v := range e.vals {
				switch v := v.(type) {
				case *strValue:
					found = found || v.group() != nil
				case *hashValue:
					v.fields.Each(func(_ string, n *numeric) bool { found = found || n.group() != nil; return !found })
				case *zsetValue:
					v.members.Each(func(_ string, m *zmember) bool { found = found || m.grp != nil; return !found })
				}
			}
			return !found
		})
	}
	return found
}

// runFoldSim is runSim with fold ops.
func runFoldSim(d draws, w *workload, opts simOpts) error {
	s := &sim{d: d, w: w, opts: opts, model: newModel()}
	n := 3 + d.intn(3, "replicas")
	for i := 0; i < n; i++ {
		s.reps = append(s.reps, &simReplica{
			ks:    NewKeyspace(simOrigin(i), Options{}),
			clock: testEpochMs + int64(d.intn(200, "skew")) - 100,
			inc:   1,
		})
	}
	steps := *propsSteps
	if steps <= 0 {
		steps = 20 + d.intn(181, "steps")
	}
	for k := 0; k < steps; k++ {
		var err error
		i := d.intn(n, "replica")
		switch x := d.intn(100, "step"); {
		case x < 40:
			err = s.local(i)
		case x < 76:
			err = s.deliver(true)
		case x < 80:
			err = s.foldTransfer(i, d.intn(n, "from"))
		case x < 82:
			err = s.restart(i)
		case x < 84:
			err = s.foldReincarnate(i)
		case x < 86:
			err = s.capture(i)
		default:
			err = s.fold(i)
		}
		if err == nil {
			_, err = countUnfoldedSlow(s.reps[i].ks)
		}
		if err != nil {
			return fmt.Errorf("step %d: %w", k, err)
		}
	}
	for len(s.net) > 0 {
		if err := s.deliver(false); err != nil {
			return fmt.Errorf("final delivery: %w", err)
		}
	}
	if err := s.catchUp(); err != nil {
		return err
	}
	for i, r := range s.reps {
		if len(r.pending) > 0 {
			return fmt.Errorf("replica %d: %d batches never became deliverable (vv %v)", i, len(r.pending), r.ks.Version())
		}
	}
	// At quiescence every piece is stable: one replica folds until nothing
	// is left, and after delivery nothing is unfolded anywhere.
	q := d.intn(n, "finalfolder")
	S := s.foldStable(q, false)
	if !S.Equal(s.reps[q].ks.Version()) {
		return fmt.Errorf("at quiescence the stable vector %v is not the version %v", S, s.reps[q].ks.Version())
	}
	for round := 0; s.reps[q].ks.Unfolded() > 0; round++ {
		if round > 1000 {
			return fmt.Errorf("replica %d: still %d unfolded items after %d quiescent folds", q, s.reps[q].ks.Unfolded(), round)
		}
		before := len(s.batches)
		if err := s.foldWith(q, s.reps[q].ks.Version(), 1+d.intn(20, "finalmax"), true); err != nil {
			return err
		}
		if len(s.batches) == before {
			return fmt.Errorf("replica %d: %d unfolded items at quiescence but nothing foldable: %s", q, s.reps[q].ks.Unfolded(), s.dump(s.reps[q].ks))
		}
	}
	for len(s.net) > 0 {
		if err := s.deliver(false); err != nil {
			return fmt.Errorf("delivery of the final folds: %w", err)
		}
	}
	s.count()
	for i, r := range s.reps {
		if u, err := countUnfoldedSlow(r.ks); err != nil || u != 0 {
			return fmt.Errorf("replica %d: %d items unfolded after the quiescent fold (%v)", i, u, err)
		}
	}
	if err := s.check(); err != nil {
		return err
	}
	return s.checkShadow()
}

// checkShadow compares the final visible values with a replica that merged
// every batch with the folds stripped out (their ops stay, empty, so the
// dependencies of later batches hold).
func (s *sim) checkShadow() error {
	shadow := NewKeyspace(Origin{Region: 997, Incarnation: 1}, Options{})
	for _, data := range s.batches {
		if err := shadow.Merge(stripFolds(data)); err != nil {
			return fmt.Errorf("shadow merge: %v", err)
		}
	}
	final := s.reps[0].ks
	now := final.LastTime().Millis()
	if got, want := observeAll(final, now), observeAll(shadow, now); got != want {
		return fmt.Errorf("values differ from the same ops without folds:\n  folded   %s\n  unfolded %s", got, want)
	}
	return nil
}

func runFoldProperty(t *testing.T, w *workload, opts simOpts) {
	if len(w.gens) == 0 {
		t.Skip("no data commands registered yet")
	}
	counts, fcounts = simCounts{}, foldCounts{}
	// Three rounds of -rapid.checks runs each: a run is cheap, and folds
	// need long histories to meet every case.
	for round := 0; round < 3 && !t.Failed(); round++ {
		rapid.Check(t, func(rt *rapid.T) {
			if err := runFoldSim(rapidDraws{rt}, w, opts); err != nil {
				rt.Fatal(err)
			}
		})
	}
	t.Logf("exercised: %v; %v", &counts, &fcounts)
}

// TestFoldConvergeMixed: every command group, checked against the model.
func TestFoldConvergeMixed(t *testing.T) { runFoldProperty(t, newWorkload(), simOpts{}) }

// TestFoldConvergeCounters: counters, hash and zset increments only (with
// overwrites and deletes), where folds have the most to do.
func TestFoldConvergeCounters(t *testing.T) {
	runFoldProperty(t, newWorkload("string", "hash", "zset"), simOpts{})
}

// TestFoldConvergeFloat: fractional INCRBYFLOAT/HINCRBYFLOAT mixed with
// integer increments and text. The model does not compute long-double
// folds, but the values must equal those of the same ops without folds,
// digit for digit, and ZINCRBY's fractions are checked by the model in
// the other tests.
func TestFoldConvergeFloat(t *testing.T) {
	w := newWorkloadOf(floatGens)
	if len(w.gens) < len(floatGens) {
		t.Skip("float counter commands not all registered")
	}
	runFoldProperty(t, w, simOpts{noModel: true})
}

// TestFoldFaultsCaught shows the fold checks have teeth.
func TestFoldFaultsCaught(t *testing.T) {
	w := newWorkload("string", "hash", "zset")
	fw := newWorkloadOf(floatGens)
	if len(w.gens) == 0 || len(fw.gens) < len(floatGens) {
		t.Skip("commands not registered")
	}
	const tries = 300
	for _, tc := range []struct {
		flt  fault
		w    *workload
		opts simOpts
	}{
		{faultFoldIgnoresStable, w, simOpts{}},
		{faultFoldJoinByCover, w, simOpts{}},
		{faultFoldJoinByCover, fw, simOpts{noModel: true}},
		{faultFoldWinnerTag, newWorkload(), simOpts{}},
	} {
		name := tc.flt.String()
		if tc.opts.noModel {
			name += "/float"
		}
		t.Run(name, func(t *testing.T) {
			requireCaught(t, tries, tc.flt, func(d draws) error { return runFoldSim(d, tc.w, tc.opts) })
		})
	}
}

// A small rig of non-solo replicas for the unit tests.

type foldRig struct {
	t    testing.TB
	reps []*Keyspace
	ms   []int64
	out  [][]byte // every batch, in the order produced (causal)
}

func newFoldRig(t testing.TB, n int) *foldRig {
	g := &foldRig{t: t}
	for i := 0; i < n; i++ {
		g.reps = append(g.reps, NewKeyspace(Origin{Region: uint32(i + 1), Incarnation: 1}, Options{}))
		g.ms = append(g.ms, testEpochMs)
	}
	return g
}

func (g *foldRig) stamp(i int) Stamp {
	g.ms[i]++
	return Stamp{Time: HLCFromMillis(g.ms[i]), Seed: uint64(g.ms[i])}
}

func (g *foldRig) do(i int, args ...string) Reply {
	g.t.Helper()
	replies, b := g.reps[i].Apply(g.stamp(i), []Command{{Args: strArgs(args)}})
	if b != nil {
		g.out = append(g.out, b.Encode(nil))
	}
	return replies[0]
}

func (g *foldRig) read(i int, args ...string) string {
	return show(g.reps[i].Read(0, g.ms[i], 1, strArgs(args)))
}

// fold folds at replica i with stable vector S.
func (g *foldRig) fold(i int, S VersionVector, max int) int {
	g.t.Helper()
	b, n := g.reps[i].Fold(g.stamp(i), S, max)
	if b != nil {
		g.out = append(g.out, b.Encode(nil))
	}
	return n
}

// deliver merges, into replica j, every batch produced so far that it can
// take (in production order, which is causal).
func (g *foldRig) deliver(j int) {
	g.t.Helper()
	for _, data := range g.out {
		b, err := DecodeBatch(data)
		if err != nil {
			g.t.Fatal(err)
		}
		if b.Origin == g.reps[j].Origin() {
			continue
		}
		if err := g.reps[j].Merge(b); err != nil && !errors.Is(err, ErrNotReady) && !errors.Is(err, ErrGap) {
			g.t.Fatal(err)
		}
	}
}

func (g *foldRig) sync() {
	g.t.Helper()
	for round := 0; round < 3; round++ {
		for j := range g.reps {
			g.deliver(j)
		}
	}
	for j := range g.reps {
		if g.reps[j].Digest() != g.reps[0].Digest() {
			g.t.Fatalf("replica %d differs from replica 0 after sync", j)
		}
	}
}

// common is the pointwise minimum of every replica's version vector: at
// quiescence (after sync) it is stable everywhere.
func (g *foldRig) common() VersionVector {
	S := g.reps[0].Version()
	for _, r := range g.reps[1:] {
		S = vvMin(S, r.Version())
	}
	return S
}

// strPieces returns the pieces of string key k at replica i.
func strPieces(ks *Keyspace, k string) (base, incs int, group bool) {
	e, ok := ks.dbs[0].keys.Get(k)
	if !ok {
		return 0, 0, false
	}
	v, _ := e.value(TypeString).(*strValue)
	if v == nil {
		return 0, 0, false
	}
	return len(v.base), len(v.incs()), v.group() != nil
}

// TestFoldCounterStaysSmall: a counter incremented 1,000 times from 3
// regions, with folds from stable vectors along the way, holds a bounded
// number of pieces throughout and a single one after the quiescent fold.
func TestFoldCounterStaysSmall(t *testing.T) {
	g := newFoldRig(t, 3)
	// Each round syncs and takes S, the version every replica then has;
	// every write after that has seen S, so S is stable at any replica
	// however many of those writes it lacks. Ten increments later, from
	// all regions, one replica folds S without having seen the others'.
	maxPieces := 0
	sum := 0
	for round := 0; round < 100; round++ {
		g.sync()
		S := g.common()
		for k := 0; k < 10; k++ {
			i := (round + k) % 3
			by := k + 1
			sum += by
			g.do(i, "INCRBY", "n", strconv.Itoa(by))
			g.do(i, "HINCRBY", "h", "f", strconv.Itoa(by))
			g.do(i, "ZINCRBY", "z", strconv.Itoa(by), "m")
		}
		// Every op not yet at replica round%3 was issued after its
		// region had seen S (they all come after the sync).
		g.fold(round%3, S, 10)
		for j := range g.reps {
			b, n, _ := strPieces(g.reps[j], "n")
			maxPieces = max(maxPieces, b+n)
		}
	}
	g.sync()
	for g.fold(1, g.common(), 2) > 0 {
	}
	g.sync()
	want := strconv.Itoa(sum)
	for j, ks := range g.reps {
		if u := ks.Unfolded(); u != 0 {
			t.Errorf("replica %d: Unfolded() = %d after the quiescent fold", j, u)
		}
		b, n, grp := strPieces(ks, "n")
		if b+n != 0 || !grp {
			t.Errorf("replica %d: counter holds %d base values, %d increments, group %v; want the group only", j, b, n, grp)
		}
		if got := g.read(j, "GET", "n"); got != strconv.Quote(want) {
			t.Errorf("replica %d: GET n = %s, want %q", j, got, want)
		}
		if got := g.read(j, "HGET", "h", "f"); got != strconv.Quote(want) {
			t.Errorf("replica %d: HGET h f = %s, want %q", j, got, want)
		}
		if got := g.read(j, "ZSCORE", "z", "m"); got != strconv.Quote(want) {
			t.Errorf("replica %d: ZSCORE z m = %s, want %q", j, got, want)
		}
	}
	// 1,000 increments went by; between folds a counter held at most the
	// increments of two rounds.
	if maxPieces > 25 {
		t.Errorf("a counter held up to %d pieces between folds", maxPieces)
	}
	t.Logf("at most %d pieces held by the counter while 1000 increments went by", maxPieces)
}

// TestFoldThenJoinUnfolded: a replica that folded joins (state transfer)
// with one that has the same pieces unfolded, in both directions, and the
// fold op arriving after the join changes nothing.
func TestFoldThenJoinUnfolded(t *testing.T) {
	g := newFoldRig(t, 3)
	g.do(0, "SET", "n", "10")
	g.do(1, "INCRBY", "n", "5")
	g.do(2, "INCRBYFLOAT", "n", "0.25")
	g.sync()
	S := g.common()
	g.do(2, "INCRBYFLOAT", "n", "1") // concurrent with the fold: stays a piece
	if n := g.fold(0, S, 10); n != 1 {
		t.Fatalf("folded %d items, want 1", n)
	}
	// Join in both directions: the folded state into replica 1 (which has
	// the pieces) and replica 1's state into a fresh copy of replica 0.
	a, _ := Restore(g.reps[0].Snapshot())
	b, _ := Restore(g.reps[1].Snapshot())
	a.Join(b)
	b2, _ := Restore(g.reps[1].Snapshot())
	a2, _ := Restore(g.reps[0].Snapshot())
	b2.Join(a2)
	if a.Digest() != b2.Digest() {
		t.Fatal("join of a folded and an unfolded state depends on direction")
	}
	if got := show(a.Read(0, testEpochMs+100, 1, strArgs([]string{"GET", "n"}))); got != `"15.25"` {
		t.Fatalf("GET n after join = %s, want 15.25", got)
	}
	g.reps[1] = b2
	g.sync()
	for j, ks := range g.reps {
		if got := show(ks.Read(0, testEpochMs+100, 1, strArgs([]string{"GET", "n"}))); got != `"16.25"` {
			t.Errorf("replica %d: GET n = %s, want 16.25", j, got)
		}
	}
}

// TestFoldJoinSeesConcurrentOverwrite: a state that never applied the fold
// op but overwrote the counter concurrently with it (so it has seen every
// folded piece and holds none) must drop the fold group in a join. Judged
// by the fold op's dot alone, the group would survive next to the
// overwrite and the joined state would differ from delivering the ops.
func TestFoldJoinSeesConcurrentOverwrite(t *testing.T) {
	g := newFoldRig(t, 2)
	g.do(0, "INCRBY", "n", "5")
	g.do(1, "INCRBY", "n", "7")
	g.sync()
	S := g.common()
	g.do(1, "SET", "n", "100") // concurrent with the fold below
	if n := g.fold(0, S, 10); n != 1 {
		t.Fatalf("folded %d items, want 1", n)
	}
	folded, _ := Restore(g.reps[0].Snapshot())
	over, _ := Restore(g.reps[1].Snapshot())
	folded.Join(over)
	g.sync() // op-based: both replicas merge everything
	if folded.Digest() != g.reps[0].Digest() {
		_, _, grp := strPieces(folded, "n")
		t.Fatalf("join differs from op-based delivery (group kept: %v)", grp)
	}
	if got := g.read(0, "GET", "n"); got != `"100"` {
		t.Fatalf("GET n = %s, want 100", got)
	}
}

// TestFoldConcurrentFolds: two regions fold the same counter concurrently
// with different stable vectors (so different thresholds); whatever order
// the folds arrive in, every replica ends in the same state, with float
// sums digit for digit those of the unfolded pieces.
func TestFoldConcurrentFolds(t *testing.T) {
	g := newFoldRig(t, 3)
	for _, by := range []string{"0.1", "0.7", "1e-3"} {
		for i := range g.reps {
			g.do(i, "INCRBYFLOAT", "n", by)
		}
	}
	g.sync()
	S1 := g.common()
	for i := range g.reps {
		g.do(i, "INCRBYFLOAT", "n", "0.3333333333333333")
	}
	g.sync()
	S2 := g.common()
	g.do(2, "INCRBYFLOAT", "n", "2.5")
	// Neither fold has seen the other.
	if g.fold(0, S1, 1) != 1 || g.fold(1, S2, 1) != 1 {
		t.Fatal("folds did not fold")
	}
	g.do(2, "INCRBYFLOAT", "n", "-0.1")
	g.sync()
	want := show(g.shadow().Read(0, testEpochMs+100, 1, strArgs([]string{"GET", "n"})))
	for j := range g.reps {
		if got := g.read(j, "GET", "n"); got != want {
			t.Errorf("replica %d: GET n = %s, unfolded %s", j, got, want)
		}
		if _, incs, grp := strPieces(g.reps[j], "n"); !grp || incs != 2 {
			t.Errorf("replica %d: group %v and %d increments, want the group and the 2 later ones", j, grp, incs)
		}
	}
}

// shadow merges every batch produced so far, with the folds stripped, into
// a fresh replica: the same ops without any fold.
func (g *foldRig) shadow() *Keyspace {
	g.t.Helper()
	ks := NewKeyspace(Origin{Region: 99, Incarnation: 1}, Options{})
	for _, data := range g.out {
		if err := ks.Merge(stripFolds(data)); err != nil {
			g.t.Fatal(err)
		}
	}
	return ks
}

// stripFolds decodes a batch and drops its EffFold effects (the ops stay,
// so later batches' dependencies still hold).
func stripFolds(data []byte) *Batch {
	b, _ := DecodeBatch(data)
	for k := range b.Ops {
		kept := b.Ops[k].Effects[:0]
		for _, e := range b.Ops[k].Effects {
			if e.Kind != EffFold {
				kept = append(kept, e)
			}
		}
		b.Ops[k].Effects = kept
	}
	return b
}

// TestFoldTagOrder: increments fold in tag order, not region order: an
// increment of a region whose clock is behind comes first. (In region
// order an increment a low region issues later would sort before folded
// increments of higher regions, and folding could not keep sums exact.)
func TestFoldTagOrder(t *testing.T) {
	g := newFoldRig(t, 2)
	g.ms[1] -= 1000 // region 2's clock is behind
	g.do(0, "INCRBYFLOAT", "n", "1e20")
	g.do(0, "INCRBYFLOAT", "n", "-1e20")
	g.do(1, "INCRBYFLOAT", "n", "1")
	g.sync()
	// Tag order: (1 + 1e20) + -1e20 = 0, as 1e20 + 1 rounds to 1e20 in
	// long double; region order would give (1e20 + -1e20) + 1 = 1.
	for j := range g.reps {
		if got := g.read(j, "GET", "n"); got != `"0"` {
			t.Fatalf("replica %d: GET n = %s, want the tag-order sum 0", j, got)
		}
	}
}

// TestFoldRefuses: a vector the replica has not applied, solo mode and a
// keyspace with nothing to fold produce no op and use no dot.
func TestFoldRefuses(t *testing.T) {
	g := newFoldRig(t, 2)
	g.do(0, "INCR", "n")
	g.do(1, "INCR", "n")
	vv := g.reps[0].Version()
	if b, n := g.reps[0].Fold(g.stamp(0), g.reps[1].Version(), 10); b != nil || n != 0 || !g.reps[0].Version().Equal(vv) {
		t.Fatal("fold with a vector the replica has not applied")
	}
	// The own increment is stable at replica 0 only if replica 1 has it.
	if b, n := g.reps[0].Fold(g.stamp(0), VersionVector{{Origin: g.reps[1].Origin(), Seq: 5}}, 10); b != nil || n != 0 {
		t.Fatal("fold with a vector ahead of the replica")
	}
	if b, n := g.reps[0].Fold(g.stamp(0), nil, 10); b != nil || n != 0 {
		t.Fatal("fold with an empty vector")
	}
	solo := NewKeyspace(Origin{Region: 1, Incarnation: 1}, Options{Solo: true})
	solo.Apply(g.stamp(0), []Command{{Args: strArgs([]string{"INCR", "n"})}})
	if b, n := solo.Fold(g.stamp(0), solo.Version(), 10); b != nil || n != 0 {
		t.Fatal("fold in solo mode")
	}
	if solo.Unfolded() != 0 {
		t.Fatalf("solo keyspace has %d unfolded items", solo.Unfolded())
	}
	g.sync()
	if n := g.fold(0, g.common(), 10); n != 1 {
		t.Fatalf("folded %d, want 1", n)
	}
	vv = g.reps[0].Version()
	if b, n := g.reps[0].Fold(g.stamp(0), g.common(), 10); b != nil || n != 0 || !g.reps[0].Version().Equal(vv) {
		t.Fatal("a second fold of a folded keyspace produced an op")
	}
}

// TestFoldTypeConflict: folding one type's content of a key holding two
// types leaves the visible type alone.
func TestFoldTypeConflict(t *testing.T) {
	g := newFoldRig(t, 2)
	g.do(0, "INCR", "k")
	g.do(1, "HSET", "k", "f", "1")
	g.do(0, "INCR", "k")
	g.sync()
	typ := g.read(0, "TYPE", "k")
	for g.fold(1, g.common(), 1) > 0 {
	}
	g.sync()
	for j := range g.reps {
		if got := g.read(j, "TYPE", "k"); got != typ {
			t.Errorf("replica %d: TYPE k = %s after fold, was %s", j, got, typ)
		}
		if u := g.reps[j].Unfolded(); u != 0 {
			t.Errorf("replica %d: %d unfolded", j, u)
		}
	}
}

// TestFoldReplicaLogsBatch: Replica.Fold logs its batch for shipping and
// survives a replica snapshot.
func TestFoldReplicaLogsBatch(t *testing.T) {
	rg := newReplicaRig(2, LogLimits{})
	rg.write(0, "INCR", "n")
	rg.write(1, "INCR", "n")
	rg.ship(t, 0, 1)
	rg.ship(t, 1, 0)
	S := rg.reps[0].Keyspace().Version()
	next := rg.reps[0].Log().Next()
	if n := rg.reps[0].Fold(rg.clk[0].stamp(), S, 10); n != 1 {
		t.Fatalf("Replica.Fold folded %d", n)
	}
	if rg.reps[0].Log().Next() != next+1 {
		t.Fatal("the fold batch was not logged")
	}
	rg.ship(t, 0, 1)
	if rg.reps[0].Keyspace().Digest() != rg.reps[1].Keyspace().Digest() {
		t.Fatal("replicas differ after shipping the fold")
	}
	var buf bytes.Buffer
	for _, p := range rg.reps[1].Snapshot() {
		buf.Write(p)
	}
	r2, err := RestoreReplica(buf.Bytes(), LogLimits{})
	if err != nil {
		t.Fatal(err)
	}
	if r2.Keyspace().Digest() != rg.reps[1].Keyspace().Digest() || r2.Keyspace().Unfolded() != 0 {
		t.Fatal("restored replica differs")
	}
}

// TestFoldEffectStrict: the effect decoder accepts exactly the canonical
// EffFold encodings.
func TestFoldEffectStrict(t *testing.T) {
	o := Origin{Region: 2, Incarnation: 1}
	tau := Tag{Time: HLCFromMillis(testEpochMs), Dot: Dot{Origin: o, Seq: 3}}
	good := encodeFoldValue(tau, VersionVector{{o, 4}})
	mk := func(f Effect) []byte {
		return (&Batch{Origin: Origin{Region: 3, Incarnation: 1}, FirstSeq: 1, Ops: []Op{{Time: 1, Effects: []Effect{f}}}}).Encode(nil)
	}
	ok := []Effect{
		{Kind: EffFold, Key: []byte("k"), Int: int64(TypeString), Value: good},
		{Kind: EffFold, Key: []byte("h"), Field: []byte("f"), Int: int64(TypeHash), Value: good},
		{Kind: EffFold, Key: []byte("z"), Field: []byte(""), Int: int64(TypeZSet), Value: good},
	}
	for _, f := range ok {
		if _, err := DecodeBatch(mk(f)); err != nil {
			t.Errorf("%v rejected: %v", &f, err)
		}
	}
	unsorted := (&encoder{}).vvBytes(VersionVector{{Origin{Region: 5, Incarnation: 1}, 1}, {o, 4}})
	withTag := func(rest []byte) []byte {
		e := encoder{}
		e.tag(tau)
		return append(e.b, rest...)
	}
	// The tag's time as an overlong varint (a redundant 0x80 0x00 ending).
	end := 0
	for ; good[end]&0x80 != 0; end++ {
	}
	overlong := append(append(append([]byte(nil), good[:end]...), good[end]|0x80, 0), good[end+1:]...)
	bad := []Effect{
		{Kind: EffFold, Key: []byte("k"), Int: int64(TypeString), Field: []byte("x"), Value: good},
		{Kind: EffFold, Key: []byte("k"), Int: int64(TypeSet), Value: good},
		{Kind: EffFold, Key: []byte("k"), Int: 99, Value: good},
		{Kind: EffFold, Key: []byte("k"), Int: -1, Value: good},
		{Kind: EffFold, Flags: FlagFloat, Key: []byte("k"), Int: int64(TypeString), Value: good},
		{Kind: EffFold, Key: []byte("k"), Int: int64(TypeString), Value: good[:len(good)-1]},
		{Kind: EffFold, Key: []byte("k"), Int: int64(TypeString), Value: append(append([]byte(nil), good...), 0)},
		{Kind: EffFold, Key: []byte("k"), Int: int64(TypeString), Value: encodeFoldValue(tau, VersionVector{{o, 2}})},                               // S does not cover tau
		{Kind: EffFold, Key: []byte("k"), Int: int64(TypeString), Value: encodeFoldValue(tau, VersionVector{{o, 4}, {Origin{9, 1}, 0}})},            // zero entry
		{Kind: EffFold, Key: []byte("k"), Int: int64(TypeString), Value: withTag(unsorted)},                                                         // unsorted vector
		{Kind: EffFold, Key: []byte("k"), Int: int64(TypeString), Value: encodeFoldValue(Tag{Time: 1, Dot: Dot{Origin: o}}, VersionVector{{o, 4}})}, // no dot
		{Kind: EffFold, Key: []byte("k"), Int: int64(TypeString), Value: overlong},
		{Kind: EffFold, Key: []byte("k"), Int: int64(TypeString)},
	}
	for _, f := range bad {
		if _, err := DecodeBatch(mk(f)); err == nil {
			t.Errorf("%v accepted", &f)
		}
	}
}

// TestFoldSnapshotFormats: snapshots with fold groups round-trip, and the
// format-1 snapshots of the fuzz corpus (increments sorted by dot) still
// restore, into format 2.
func TestFoldSnapshotFormats(t *testing.T) {
	g := newFoldRig(t, 3)
	for i := range g.reps {
		g.do(i, "INCRBYFLOAT", "n", "0.1")
		g.do(i, "HINCRBY", "h", "f", "2")
		g.do(i, "ZINCRBY", "z", "1.5", "m")
	}
	g.sync()
	S := g.common()
	g.do(0, "INCR", "n")
	g.fold(1, S, 10)
	ks := g.reps[1]
	snap := ks.Snapshot()
	ks2, err := Restore(snap)
	if err != nil {
		t.Fatal(err)
	}
	if ks2.Digest() != ks.Digest() || !bytes.Equal(ks2.Snapshot(), snap) || ks2.Unfolded() != ks.Unfolded() {
		t.Fatal("snapshot with fold groups does not round-trip")
	}
	legacy := 0
	for _, data := range fuzzCorpus(t, "FuzzRestore") {
		if len(data) == 0 || data[0] != snapshotFormatLegacy {
			continue
		}
		old, err := Restore(data)
		if err != nil {
			continue // the corpus holds corrupt inputs too
		}
		legacy++
		again, err := Restore(old.Snapshot())
		if err != nil || again.Digest() != old.Digest() {
			t.Fatalf("format-1 snapshot does not survive a round trip: %v", err)
		}
		if _, err := countUnfoldedSlow(old); err != nil {
			t.Fatal(err)
		}
	}
	if legacy == 0 {
		t.Fatal("no format-1 snapshot in the corpus")
	}
	groups := 0
	for _, snap := range foldSeedSnapshots() {
		ks, err := Restore(snap)
		if err != nil {
			t.Fatal(err)
		}
		if holdsGroups(ks) {
			groups++
		}
	}
	if groups == 0 {
		t.Fatal("no fuzz seed snapshot holds a fold group")
	}
}

// fuzzCorpus reads the inputs of a fuzz target's seed corpus.
func fuzzCorpus(t *testing.T, name string) [][]byte {
	t.Helper()
	dir := "testdata/fuzz/" + name
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out [][]byte
	for _, e := range entries {
		raw, err := os.ReadFile(dir + "/" + e.Name())
		if err != nil {
			t.Fatal(err)
		}
		lines := strings.SplitN(string(raw), "\n", 3)
		if len(lines) < 2 || !strings.HasPrefix(lines[1], "[]byte(") {
			continue
		}
		s, err := strconv.Unquote(strings.TrimSuffix(strings.TrimPrefix(strings.TrimSpace(lines[1]), "[]byte("), ")"))
		if err != nil {
			continue
		}
		out = append(out, []byte(s))
	}
	return out
}

// foldSeedBatches returns fold batches for the fuzz seeds: real folds of
// the hostile-merge base state, from another origin, and a few by hand.
func foldSeedBatches() []*Batch {
	base, err := Restore(hostileBaseState())
	if err != nil {
		return nil
	}
	ks := NewKeyspace(Origin{Region: 9, Incarnation: 1}, Options{})
	ks.Join(base)
	var out []*Batch
	for i := 0; i < 3; i++ {
		b, _ := ks.Fold(Stamp{Time: ks.LastTime() + 1, Seed: uint64(i)}, ks.Version(), 4)
		if b == nil {
			break
		}
		// Encode to copy: the batch aliases nothing, but keep seeds
		// independent of ks.
		c, _ := DecodeBatch(b.Encode(nil))
		out = append(out, c)
	}
	o2 := Origin{Region: 2, Incarnation: 1}
	tau := Tag{Time: HLCFromMillis(testEpochMs), Dot: Dot{Origin: o2, Seq: 1}}
	v := encodeFoldValue(tau, VersionVector{{o2, 3}})
	out = append(out, &Batch{Origin: Origin{Region: 3, Incarnation: 1}, FirstSeq: 1, Deps: VersionVector{{o2, 3}}, Ops: []Op{{Time: tau.Time + 5, Effects: []Effect{
		{Kind: EffFold, Key: []byte("n"), Int: int64(TypeString), Value: v},
		{Kind: EffFold, DB: 1, Key: []byte("h"), Field: []byte("f"), Int: int64(TypeHash), Value: v},
		{Kind: EffFold, Key: []byte("z"), Field: []byte("m"), Int: int64(TypeZSet), Value: v},
	}}}})
	return out
}

// foldSeedSnapshots returns snapshots holding fold groups for the fuzz
// seeds: a simulated state folded in part (increments left after the
// groups) and in full.
func foldSeedSnapshots() [][]byte {
	var out [][]byte
	if w := newWorkload("string", "hash", "zset"); len(w.gens) > 0 {
		for seed := uint64(1); seed <= 3; seed++ {
			base := simState(seed, w)
			ks := NewKeyspace(Origin{Region: 9, Incarnation: 1}, Options{})
			ks.Join(base)
			S := vvMin(ks.Version(), ks.Version())
			if seed == 2 && len(S) > 0 { // leave the last op of an origin unfolded
				S[0].Seq--
			}
			ks.Fold(Stamp{Time: ks.LastTime() + 1, Seed: seed}, S, 1000)
			for _, args := range [][]string{{"INCRBY", "k0", "3"}, {"HINCRBY", "k1", "f0", "2"}, {"ZINCRBY", "k2", "0.5", "m0"}} {
				ks.Apply(Stamp{Time: ks.LastTime() + 1}, []Command{{Args: strArgs(args)}})
			}
			out = append(out, ks.Snapshot())
		}
	}
	return out
}

// TestFoldDeterministic: a node restored from a snapshot, or one that left
// solo mode, emits the same fold op for the same stamp as the node it
// mirrors, so every node of a region ships the same log.
func TestFoldDeterministic(t *testing.T) {
	for _, size := range []int{7, 300} { // sorted candidates, slot scans
		t.Run(strconv.Itoa(size), func(t *testing.T) { testFoldDeterministic(t, size) })
	}
}

func testFoldDeterministic(t *testing.T, size int) {
	g := newFoldRig(t, 3)
	for k := 0; k < 2*size; k++ {
		i := k % 3
		g.do(i, "INCRBY", "c"+strconv.Itoa(k%size), "2")
		g.do(i, "HINCRBY", "h", "f"+strconv.Itoa(k%size), "1")
		g.do(i, "ZINCRBY", "z", "0.5", "m"+strconv.Itoa(k%size))
		if k%9 == 0 {
			g.do(i, "DEL", "c"+strconv.Itoa((k+3)%size)) // free slots
		}
	}
	g.sync()
	ks := g.reps[0]
	S := g.common()
	restored, err := Restore(ks.Snapshot())
	if err != nil {
		t.Fatal(err)
	}
	wasSolo, _ := Restore(ks.Snapshot())
	wasSolo.SetSolo(true)
	wasSolo.SetSolo(false)
	for round := 0; ks.Unfolded() > 0; round++ {
		if round > 100*size {
			t.Fatalf("%d items still unfolded after %d folds", ks.Unfolded(), round)
		}
		st := Stamp{Time: ks.LastTime() + 1, Seed: uint64(round) * 7919}
		b1, n1 := ks.Fold(st, S, 5)
		b2, n2 := restored.Fold(st, S, 5)
		b3, n3 := wasSolo.Fold(st, S, 5)
		if n1 != n2 || n1 != n3 || (b1 == nil) != (b2 == nil) || (b1 == nil) != (b3 == nil) {
			t.Fatalf("round %d: folded %d, %d and %d items", round, n1, n2, n3)
		}
		if b1 == nil {
			continue // the random start found nothing within its budget
		}
		if e := b1.Encode(nil); !bytes.Equal(e, b2.Encode(nil)) || !bytes.Equal(e, b3.Encode(nil)) {
			t.Fatalf("round %d: the fold batches differ", round)
		}
		if ks.Digest() != restored.Digest() || ks.Digest() != wasSolo.Digest() {
			t.Fatalf("round %d: states differ after the fold", round)
		}
	}
	if ks.Unfolded() != 0 {
		t.Fatalf("%d items left unfolded", ks.Unfolded())
	}
}

// TestFoldSeedsFold: the fold seeds of FuzzMergeHostile really fold
// something in its base state.
func TestFoldSeedsFold(t *testing.T) {
	folded := 0
	for _, b := range foldSeedBatches() {
		ks, err := Restore(hostileBaseState())
		if err != nil {
			t.Fatal(err)
		}
		before := ks.Unfolded()
		if err := ks.Merge(b); err != nil {
			continue // the hand-made seed does not fit the base state
		}
		if ks.Unfolded() < before {
			folded++
		}
	}
	if folded == 0 {
		t.Fatal("no fold seed folds anything in the hostile base state")
	}
}
