package crdt

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"strings"
	"testing"

	"pgregory.net/rapid"
)

// Multi-replica convergence. 3-5 replicas (Solo false) run random commands
// through Keyspace.Apply with their own skewed, strictly increasing stamps.
// Every batch is encoded and decoded (the wire format is exercised) and sent
// to every other replica through a simulated network that delays, reorders
// and duplicates; receivers buffer batches Merge refuses with ErrGap or
// ErrNotReady and retry them (causal delivery, as the replication layer
// will do) and leave duplicates to Merge's version-vector check. Local ops
// (sometimes several commands in one multi-op batch), deliveries, state
// transfers (Snapshot, Restore, Join), restarts from a snapshot, restarts
// under a new incarnation (from the current state or from an earlier backup
// that lost ops, caught up by state transfer) and mid-run captures
// interleave at random. At the end everything is delivered and:
//
//   - every replica has a byte-identical Digest (content and causal
//     metadata), and Snapshot/Restore reproduces it;
//   - Join of the captured states in any order and bracketing gives one
//     digest, which equals op-based delivery of the same ops to a fresh
//     replica, and joining any captured state into the final state changes
//     nothing;
//   - every captured state and the final state match the reference model
//     (model_test.go), and every command's reply matched the model's
//     prediction from the origin's view when it ran.
//
// The run is a pure function of the draws: rapid prints the seed of a
// failure and -rapid.seed replays it. -rapid.checks (default 100) and
// -props.steps scale the search, e.g.
//
//	go test ./crdt -run TestConverge -rapid.checks=1000 -props.steps=300
//
// With -v each test logs what its runs exercised (ops, duplicates, buffered
// batches, transfers, type conflicts, expiry removals, ...). Workloads use
// only registered commands, so a type's test skips until its commands exist.

var propsSteps = flag.Int("props.steps", 0, "convergence tests: ops per simulated run (0: random 20..200)")

type simReplica struct {
	ks      *Keyspace
	clock   int64 // physical clock in ms (skewed)
	stamp   HLC   // last stamp this replica's leader handed out
	pending [][]byte
	backups [][]byte // its own earlier snapshots
	inc     uint32   // latest incarnation
}

type simMsg struct {
	to   int
	data []byte
}

type simOpts struct {
	// modelOnly skips the reply, digest and join checks and compares the
	// replicas' states with the model only (to show the model's state
	// comparison catches faults on its own).
	modelOnly bool
	// noModel skips every comparison with the model and checks
	// convergence only (digests, snapshots, joins): for workloads whose
	// values the model cannot compute (INCRBYFLOAT's long-double
	// arithmetic).
	noModel bool
}

// simCounts tallies what the runs of one property test exercised (logged
// with -v, so coverage claims can be checked).
type simCounts struct {
	runs, ops, multiOps, errReplies, deliveries, dups, buffered, transfers, restarts, captures int
	reincarnations                                                                             int
	concurrent, typeConflicts, expired, finalKeys, ghosts                                      int
}

var counts simCounts

func (c *simCounts) String() string {
	return fmt.Sprintf("runs=%d ops=%d (in multi-op batches %d, error replies %d) deliveries=%d duplicates=%d "+
		"buffered(gap/not ready)=%d transfers=%d restarts=%d reincarnations=%d captures=%d concurrent same-key op pairs=%d "+
		"type conflicts=%d expiry removals=%d final keys=%d final ghost TTLs=%d",
		c.runs, c.ops, c.multiOps, c.errReplies, c.deliveries, c.dups, c.buffered, c.transfers, c.restarts,
		c.reincarnations, c.captures, c.concurrent, c.typeConflicts, c.expired, c.finalKeys, c.ghosts)
}

type sim struct {
	d       draws
	w       *workload
	opts    simOpts
	reps    []*simReplica
	net     []simMsg
	batches [][]byte // every batch in the order produced: a causal order
	model   *model
	mids    [][]byte // snapshots captured along the way
}

func simOrigin(i int) Origin { return Origin{Region: uint32(i + 1), Incarnation: 1} }

func strArgs(args []string) [][]byte {
	a := make([][]byte, len(args))
	for i, s := range args {
		a[i] = []byte(s)
	}
	return a
}

// runSim runs one random multi-replica history and returns the first
// violation of convergence or of the model.
func runSim(d draws, w *workload, opts simOpts) error {
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
		case x < 45:
			err = s.local(i)
		case x < 88:
			err = s.deliver(true)
		case x < 91:
			err = s.transfer(i, d.intn(n, "from"))
		case x < 94:
			err = s.restart(i)
		case x < 96:
			err = s.reincarnate(i)
		default:
			err = s.capture(i)
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
	s.count()
	for i, r := range s.reps {
		if len(r.pending) > 0 {
			return fmt.Errorf("replica %d: %d batches never became deliverable (vv %v)", i, len(r.pending), r.ks.Version())
		}
	}
	return s.check()
}

func (s *sim) count() {
	counts.runs++
	counts.ops += len(s.model.ops)
	for _, ops := range s.model.byKey {
		for i, a := range ops {
			for _, b := range ops[i+1:] {
				if !a.saw(b) && !b.saw(a) {
					counts.concurrent++
				}
			}
		}
	}
	for _, r := range s.reps {
		counts.typeConflicts += int(r.ks.Stats.TypeConflicts)
		counts.expired += int(r.ks.Stats.ExpiredKeys)
		counts.dups += int(r.ks.Stats.BatchesSkip)
	}
	for db := 0; db < modelDBs; db++ {
		counts.finalKeys += s.reps[0].ks.DBSize(db)
		counts.ghosts += len(s.reps[0].ks.dbs[db].ghosts)
	}
}

// local runs 1-3 commands at replica i as one stamped entry.
func (s *sim) local(i int) error {
	r := s.reps[i]
	r.clock += int64(s.d.intn(25, "tick"))
	t := HLCFromMillis(r.clock)
	if t <= r.stamp {
		t = r.stamp + 1
	}
	r.stamp = t
	st := Stamp{Time: t, Seed: uint64(s.d.intn(1<<20, "seed"))}
	ncmd := 1
	if chance(s.d, 15, "multi") {
		ncmd = 2 + s.d.intn(2, "ncmd")
	}
	var out *Batch
	for c := 0; c < ncmd; c++ {
		args := s.w.command(s.d, r.clock)
		db := 0
		if chance(s.d, 20, "db") {
			db = 1 + s.d.intn(modelDBs-1, "db#")
		}
		if err := s.apply(i, st, db, args, &out); err != nil {
			return err
		}
	}
	if out != nil {
		return s.ship(i, out)
	}
	return nil
}

// apply runs one command, checks its reply and effects against the model
// and appends its op (if any) to *out, so several commands travel as one
// multi-op batch.
func (s *sim) apply(i int, st Stamp, db int, args []string, out **Batch) error {
	ks := s.reps[i].ks
	before := ks.Version()
	replies, b := ks.Apply(st, []Command{{DB: db, Args: strArgs(args)}})
	now := ks.LastTime().Millis()
	past := vvMap(before)
	var emitted []Effect
	if b != nil {
		if len(b.Ops) != 1 {
			return fmt.Errorf("replica %d: %v produced %d ops", i, args, len(b.Ops))
		}
		emitted = b.Ops[0].Effects
	}
	if s.opts.noModel {
		if replies[0].IsError() {
			counts.errReplies++
		}
		if b != nil {
			// Effect-less ops, keyed for the concurrency count only.
			s.model.add(&mOp{origin: mOrigin{b.Origin.Region, b.Origin.Incarnation}, seq: b.FirstSeq, time: b.Ops[0].Time,
				past: past, effs: []mEff{{key: qualify(db, args)[1]}}, cmd: args})
			return s.chain(i, b, out)
		}
		return nil
	}
	view := func(k string) keyView { return s.model.eval(k, within(past), now) }
	got := show(replies[0])
	args = qualify(db, args) // the model's key names, here and in messages
	if b != nil {
		s.model.next = mDot{mOrigin{b.Origin.Region, b.Origin.Incarnation}, b.FirstSeq}
	}
	mc := s.model.command(db, args, view, now, emitted, got)
	if replies[0].IsError() {
		counts.errReplies++
	}
	if err := s.checkLocal(i, now, args, replies[0], b, mc, view); err != nil {
		return err
	}
	if b == nil {
		return nil
	}
	s.model.add(&mOp{origin: mOrigin{b.Origin.Region, b.Origin.Incarnation}, seq: b.FirstSeq, time: b.Ops[0].Time, past: past, effs: mc.effs, cmd: args})
	return s.chain(i, b, out)
}

// chain appends local batch b to *out (one multi-op batch per step).
func (s *sim) chain(i int, b *Batch, out **Batch) error {
	if *out == nil {
		*out = b
		return nil
	}
	o := *out
	if b.FirstSeq != o.LastSeq()+1 || !b.Deps.Equal(o.Deps) {
		return fmt.Errorf("replica %d: consecutive local batches do not chain: %d after %d, deps %v vs %v",
			i, b.FirstSeq, o.LastSeq(), b.Deps, o.Deps)
	}
	o.Ops = append(o.Ops, b.Ops...)
	counts.multiOps++
	return nil
}

// checkLocal compares one command's reply and emission with the model's
// prediction from the origin's view (skipped in model-only runs).
func (s *sim) checkLocal(i int, now int64, args []string, r Reply, b *Batch, mc mCmd, view func(string) keyView) error {
	if s.opts.modelOnly {
		return nil
	}
	if got := show(r); got != mc.reply || r.IsError() != mc.isErr {
		return fmt.Errorf("replica %d at %d: %v replied %s, model says %s (model view: %s)",
			i, now, args, got, mc.reply, renderView(view, args))
	}
	if mc.mustEmit && b == nil {
		return fmt.Errorf("replica %d: %v emitted nothing, model expects effects %v (model view: %s)",
			i, args, mc.effs, renderView(view, args))
	}
	if mc.isErr && b != nil && len(mc.effs) == 0 {
		return fmt.Errorf("replica %d: %v failed but emitted %v", i, args, b.Ops[0].Effects)
	}
	return nil
}

// renderView shows the model's view of the keys named in args.
func renderView(view func(string) keyView, args []string) string {
	var parts []string
	for _, a := range args[1:] {
		for _, k := range modelKeys {
			if a == k {
				v := view(k)
				parts = append(parts, k+": "+v.render())
			}
		}
	}
	return strings.Join(parts, "; ")
}

// ship encodes a local batch and puts a copy for every other replica on
// the network.
func (s *sim) ship(i int, b *Batch) error {
	data := b.Encode(nil)
	dec, err := DecodeBatch(data)
	if err != nil {
		return fmt.Errorf("replica %d: decoding own batch: %v", i, err)
	}
	if again := dec.Encode(nil); !bytes.Equal(again, data) {
		return fmt.Errorf("replica %d: batch re-encodes differently", i)
	}
	s.batches = append(s.batches, data)
	for j := range s.reps {
		if j != i {
			s.net = append(s.net, simMsg{to: j, data: data})
		}
	}
	return nil
}

// deliver hands one message, chosen at random (reordering), to its
// receiver; with dup it may leave a copy in flight (duplication).
func (s *sim) deliver(dup bool) error {
	if len(s.net) == 0 {
		return nil
	}
	k := s.d.intn(len(s.net), "msg")
	m := s.net[k]
	counts.deliveries++
	if !dup || !chance(s.d, 20, "dup") {
		s.net[k] = s.net[len(s.net)-1]
		s.net = s.net[:len(s.net)-1]
	}
	return s.receive(m.to, m.data)
}

func retryable(err error) bool { return errors.Is(err, ErrGap) || errors.Is(err, ErrNotReady) }

func (s *sim) receive(j int, data []byte) error {
	r := s.reps[j]
	b, err := DecodeBatch(data)
	if err != nil {
		return fmt.Errorf("replica %d: decode: %v", j, err)
	}
	switch err := r.ks.Merge(b); {
	case retryable(err):
		counts.buffered++
		r.pending = append(r.pending, data)
		return nil
	case err != nil:
		return fmt.Errorf("replica %d: merge: %v", j, err)
	}
	return s.retry(j)
}

// retry merges buffered batches until none makes progress.
func (s *sim) retry(j int) error {
	r := s.reps[j]
	for progress := true; progress; {
		progress = false
		keep := r.pending[:0]
		for _, data := range r.pending {
			b, _ := DecodeBatch(data)
			switch err := r.ks.Merge(b); {
			case retryable(err):
				keep = append(keep, data)
			case err != nil:
				return fmt.Errorf("replica %d: merge: %v", j, err)
			default:
				progress = true
			}
		}
		r.pending = keep
	}
	return nil
}

// transfer joins replica from's state into replica i (catch-up by state).
func (s *sim) transfer(i, from int) error {
	if i == from {
		return nil
	}
	o, err := Restore(s.reps[from].ks.Snapshot())
	if err != nil {
		return fmt.Errorf("restore replica %d: %v", from, err)
	}
	s.reps[i].ks.Join(o)
	counts.transfers++
	return s.retry(i)
}

// restart replaces replica i by a restore of its own snapshot.
func (s *sim) restart(i int) error {
	ks := s.reps[i].ks
	snap := ks.Snapshot()
	ks2, err := Restore(snap)
	if err != nil {
		return fmt.Errorf("replica %d: restore: %v", i, err)
	}
	if ks2.Digest() != ks.Digest() || !bytes.Equal(ks2.Snapshot(), snap) || ks2.Origin() != ks.Origin() {
		return fmt.Errorf("replica %d: restored snapshot differs", i)
	}
	s.reps[i].ks = ks2
	counts.restarts++
	return nil
}

// reincarnate restarts replica i under a new incarnation, from its current
// state or from one of its earlier snapshots (a restore from a backup that
// lost its latest ops), as DESIGN §6 requires of a region whose state is
// not provably current: the new origin issues fresh dots, and the lost ops
// come back from the other replicas by state transfer.
func (s *sim) reincarnate(i int) error {
	r := s.reps[i]
	old, err := Restore(r.ks.Snapshot())
	if err != nil {
		return fmt.Errorf("replica %d: restore: %v", i, err)
	}
	if len(r.backups) > 0 && chance(s.d, 50, "backup") {
		b, err := Restore(r.backups[s.d.intn(len(r.backups), "backup#")])
		if err != nil {
			return fmt.Errorf("replica %d: restore backup: %v", i, err)
		}
		if s.survives(i, b.Version()) {
			old = b
		}
	}
	r.inc++
	ks := NewKeyspace(Origin{Region: uint32(i + 1), Incarnation: r.inc}, Options{})
	ks.Join(old)
	if ks.Digest() != old.Digest() {
		return fmt.Errorf("replica %d: joining a state into an empty one changed it", i)
	}
	r.ks = ks
	counts.reincarnations++
	return s.retry(i)
}

// survives reports whether every op replica i would lose by going back to a
// state with version vector v is held by another replica (otherwise the op
// and everything after it from its origin would be lost everywhere, and the
// origin's later batches could never be applied: a disaster, not a
// convergence question).
func (s *sim) survives(i int, v VersionVector) bool {
	for _, e := range s.reps[i].ks.Version() {
		if v.Get(e.Origin) >= e.Seq {
			continue
		}
		held := false
		for j, q := range s.reps {
			if j != i && q.ks.Version().Get(e.Origin) >= e.Seq {
				held = true
			}
		}
		if !held {
			return false
		}
	}
	return true
}

// catchUp brings replicas that lost ops (restored from a backup) up to date
// by state transfer from the others, once the network is drained. A
// transfer can unblock buffered batches that the sender never had, so it
// repeats until nothing changes.
func (s *sim) catchUp() error {
	for {
		var all VersionVector
		for _, r := range s.reps {
			all = all.Merge(r.ks.Version())
		}
		changed := false
		for i, r := range s.reps {
			if r.ks.Version().Dominates(all) && len(r.pending) == 0 {
				continue
			}
			before := r.ks.Version()
			for j := range s.reps {
				if err := s.transfer(i, j); err != nil {
					return err
				}
			}
			if !r.ks.Version().Equal(before) {
				changed = true
			}
		}
		if !changed {
			return nil // runSim reports replicas left behind or with pending batches
		}
	}
}

// capture records replica i's state for the join checks and compares it
// with the model of the ops it has applied.
func (s *sim) capture(i int) error {
	ks := s.reps[i].ks
	counts.captures++
	snap := ks.Snapshot()
	s.mids = append(s.mids, snap)
	s.reps[i].backups = append(s.reps[i].backups, snap)
	if s.opts.noModel {
		return nil
	}
	if err := s.checkModel(ks, within(vvMap(ks.Version())), ks.LastTime().Millis()); err != nil {
		return fmt.Errorf("replica %d mid-run: %w", i, err)
	}
	return nil
}

// checkModel compares ks's visible keys at time now with the model of the
// ops in.
func (s *sim) checkModel(ks *Keyspace, in func(*mOp) bool, now int64) error {
	var bad []string
	for _, k := range modelKeys {
		want := s.model.eval(k, in, now)
		w := want.render()
		if got := observe(ks, k, now, &want); got != w {
			bad = append(bad, fmt.Sprintf("%s: replica shows %q, model %q; ops on %s:%s", k, got, w, k, s.model.history(k, in)))
		}
	}
	if len(bad) > 0 {
		return fmt.Errorf("state differs from the model at %d (vv %v):\n  %s", now, ks.Version(), strings.Join(bad, "\n  "))
	}
	return nil
}

func (s *sim) dump(ks *Keyspace) string {
	now := ks.LastTime().Millis()
	var parts []string
	for _, k := range modelKeys {
		parts = append(parts, k+"="+observe(ks, k, now, &keyView{}))
	}
	return fmt.Sprintf("vv=%v last=%d %s", ks.Version(), ks.LastTime(), strings.Join(parts, "; "))
}

func (s *sim) check() error {
	final := s.reps[0].ks
	now := final.LastTime().Millis()
	if s.opts.modelOnly {
		for i, r := range s.reps {
			if err := s.checkModel(r.ks, func(*mOp) bool { return true }, now); err != nil {
				return fmt.Errorf("replica %d final: %w", i, err)
			}
		}
		return nil
	}
	want := final.Digest()
	for i, r := range s.reps {
		if r.ks.Digest() != want {
			return fmt.Errorf("replica %d digest differs from replica 0:\n  0: %s\n  %d: %s", i, s.dump(final), i, s.dump(r.ks))
		}
		snap := r.ks.Snapshot()
		ks2, err := Restore(snap)
		if err != nil {
			return fmt.Errorf("replica %d: restore: %v", i, err)
		}
		if ks2.Digest() != want || !bytes.Equal(ks2.Snapshot(), snap) {
			return fmt.Errorf("replica %d: snapshot does not restore to the same state", i)
		}
	}
	if err := s.checkJoins(want); err != nil {
		return err
	}
	if s.opts.noModel {
		return nil
	}
	return s.checkModel(final, func(*mOp) bool { return true }, now)
}

// joinStates joins the given snapshots into a fresh replica in order.
func joinStates(snaps [][]byte, order []int) (*Keyspace, error) {
	ks := NewKeyspace(Origin{Region: 999, Incarnation: 1}, Options{})
	for _, i := range order {
		o, err := Restore(snaps[i])
		if err != nil {
			return nil, err
		}
		ks.Join(o)
	}
	return ks, nil
}

func (s *sim) perm(n int) []int {
	p := make([]int, n)
	for i := range p {
		p[i] = i
	}
	for i := n - 1; i > 0; i-- {
		j := s.d.intn(i+1, "perm")
		p[i], p[j] = p[j], p[i]
	}
	return p
}

// checkJoins checks the state-based merge on the captured states.
func (s *sim) checkJoins(final [32]byte) error {
	snaps := append([][]byte(nil), s.mids...)
	if len(snaps) == 0 {
		return nil
	}
	n := len(snaps)
	a, err := joinStates(snaps, s.perm(n))
	if err != nil {
		return err
	}
	b, err := joinStates(snaps, s.perm(n))
	if err != nil {
		return err
	}
	if a.Digest() != b.Digest() {
		return fmt.Errorf("join of %d captured states depends on order:\n  %s\n  %s", n, s.dump(a), s.dump(b))
	}
	// Bracketing: join two halves separately, then join the results.
	p := s.perm(n)
	left, err := joinStates(snaps, p[:n/2])
	if err != nil {
		return err
	}
	right, err := joinStates(snaps, p[n/2:])
	if err != nil {
		return err
	}
	l2, _ := Restore(left.Snapshot())
	right.Join(l2)
	if right.Digest() != a.Digest() {
		return fmt.Errorf("join of captured states depends on bracketing:\n  %s\n  %s", s.dump(a), s.dump(right))
	}
	// Idempotence: joining the same states again changes nothing.
	again, _ := Restore(a.Snapshot())
	for _, i := range s.perm(n) {
		o, _ := Restore(snaps[i])
		again.Join(o)
	}
	if again.Digest() != a.Digest() {
		return fmt.Errorf("join is not idempotent:\n  %s\n  %s", s.dump(a), s.dump(again))
	}
	// Op-based: a fresh replica merging exactly the batches the joined
	// state has seen, in causal order, ends in the same state.
	vv := a.Version()
	fresh := NewKeyspace(Origin{Region: 998, Incarnation: 1}, Options{})
	for _, data := range s.batches {
		bt, _ := DecodeBatch(data)
		if bt.LastSeq() <= vv.Get(bt.Origin) {
			if err := fresh.Merge(bt); err != nil {
				return fmt.Errorf("op-based replay: %v", err)
			}
		}
	}
	if fresh.Digest() != a.Digest() {
		return fmt.Errorf("op-based delivery differs from the join of captured states:\n  ops:  %s\n  join: %s", s.dump(fresh), s.dump(a))
	}
	// Absorption: the final state already contains every captured state.
	for i := range snaps {
		f, _ := Restore(s.reps[0].ks.Snapshot())
		o, _ := Restore(snaps[i])
		f.Join(o)
		if f.Digest() != final {
			return fmt.Errorf("joining captured state %d into the final state changed it:\n  %s\n  %s", i, s.dump(s.reps[0].ks), s.dump(f))
		}
	}
	return nil
}

func runSimProperty(t *testing.T, groups ...string) {
	w := newWorkload(groups...)
	for _, g := range groups {
		if g != "keys" && !w.groups[g] {
			t.Skipf("no %s commands registered yet", g)
		}
	}
	if len(w.gens) == 0 {
		t.Skip("no data commands registered yet")
	}
	counts = simCounts{}
	rapid.Check(t, func(rt *rapid.T) {
		if err := runSim(rapidDraws{rt}, w, simOpts{}); err != nil {
			rt.Fatal(err)
		}
	})
	t.Logf("exercised: %v", &counts)
}

func TestConvergeStrings(t *testing.T) { runSimProperty(t, "string", "keys") }
func TestConvergeSets(t *testing.T)    { runSimProperty(t, "set", "keys") }
func TestConvergeHashes(t *testing.T)  { runSimProperty(t, "hash", "keys") }
func TestConvergeZSets(t *testing.T)   { runSimProperty(t, "zset", "keys") }
func TestConvergeMixed(t *testing.T)   { runSimProperty(t) }

// TestConvergeFloatCounters: fractional INCRBYFLOAT and HINCRBYFLOAT,
// mixed with integer increments, overwrites, and APPEND/SETRANGE that turn
// counters into numeric or non-numeric text and back. Increments fold in
// tag order with Redis's long-double arithmetic and %.17Lf formatting,
// which the model does not re-implement: this test checks convergence only
// (identical digests and values on every replica, snapshots, joins,
// op-based delivery), not the values against the model.
func TestConvergeFloatCounters(t *testing.T) {
	w := newWorkloadOf(floatGens)
	if len(w.gens) < len(floatGens) {
		t.Skip("float counter commands not all registered")
	}
	counts = simCounts{}
	rapid.Check(t, func(rt *rapid.T) {
		if err := runSim(rapidDraws{rt}, w, simOpts{noModel: true}); err != nil {
			rt.Fatal(err)
		}
	})
	t.Logf("exercised: %v", &counts)
}

// TestConvergeFaultsCaught shows the checks have teeth: with each broken
// merge switched on, some seed within a bounded number of runs must fail,
// once with all checks and once with the model comparison alone.
func TestConvergeFaultsCaught(t *testing.T) {
	w := newWorkload()
	if len(w.gens) == 0 {
		t.Skip("no data commands registered yet")
	}
	const tries = 300
	for _, flt := range []fault{faultDropIncrement, faultRemoveWins, faultNonIdempotent} {
		for _, opts := range []simOpts{{}, {modelOnly: true}} {
			name := flt.String()
			if opts.modelOnly {
				name += "/model-only"
			}
			t.Run(name, func(t *testing.T) {
				requireCaught(t, tries, flt, func(d draws) error { return runSim(d, w, opts) })
			})
		}
	}
	if fw := newWorkloadOf(floatGens); len(fw.gens) == len(floatGens) {
		for _, flt := range []fault{faultDropIncrement, faultNonIdempotent} {
			t.Run(flt.String()+"/float-convergence-only", func(t *testing.T) {
				requireCaught(t, tries, flt, func(d draws) error { return runSim(d, fw, simOpts{noModel: true}) })
			})
		}
	}
}

// A command that produces no op still advances its replica's clock, but
// peers never learn of it, so Digest must not cover the clock. (Found by
// TestConvergeZSets — a ZREM of a missing member — and fixed in main by
// leaving the clock out of Digest.)
func TestNoOpCommandKeepsDigest(t *testing.T) {
	a := NewKeyspace(Origin{Region: 1, Incarnation: 1}, Options{})
	b := NewKeyspace(Origin{Region: 2, Incarnation: 1}, Options{})
	replies, batch := a.Apply(Stamp{Time: HLCFromMillis(testEpochMs)}, []Command{{Args: strArgs([]string{"NO-SUCH-COMMAND"})}})
	if batch != nil || !replies[0].IsError() {
		t.Fatalf("unknown command: %s, batch %v", show(replies[0]), batch)
	}
	if a.Digest() != b.Digest() {
		t.Fatalf("an op-less command changed the digest")
	}
}

// A write that creates a key its region sees as absent must not inherit a
// ghost TTL: the TTL an EXPIRE wrote concurrently with the removal of the
// key's content. Here region 1 has seen ZADD (2:1), the DEL (3:1) and the
// concurrent PEXPIRE (2:2); a ZADD it then runs creates a new key, which in
// Redis has no TTL. (Found by TestConvergeZSets' model check: before the
// fix in Tx.emitIn the new key expired at the ghost's time.)
func TestNewKeyDropsGhostTTL(t *testing.T) {
	if Lookup([]byte("ZADD")) == nil {
		t.Skip("ZADD not registered")
	}
	o2, o3 := Origin{Region: 2, Incarnation: 1}, Origin{Region: 3, Incarnation: 1}
	at := HLCFromMillis(testEpochMs)
	k := []byte("k")
	batches := []*Batch{
		{Origin: o2, FirstSeq: 1, Ops: []Op{{Time: at, Effects: []Effect{{Kind: EffZAdd, Key: k, Field: []byte("m"), Float: 1}}}}},
		{Origin: o3, FirstSeq: 1, Deps: VersionVector{{o2, 1}}, Ops: []Op{{Time: at + 1, Effects: []Effect{{Kind: EffDelKey, Key: k}}}}},
		{Origin: o2, FirstSeq: 2, Ops: []Op{{Time: at + 2, Effects: []Effect{{Kind: EffExpire, Key: k, Int: testEpochMs + 5000}}}}},
	}
	a := NewKeyspace(Origin{Region: 1, Incarnation: 1}, Options{})
	b := NewKeyspace(Origin{Region: 4, Incarnation: 1}, Options{})
	for _, bt := range batches {
		for _, ks := range []*Keyspace{a, b} {
			if err := ks.Merge(bt); err != nil {
				t.Fatal(err)
			}
		}
	}
	_, bt := a.Apply(Stamp{Time: at + 10}, []Command{{Args: strArgs([]string{"ZADD", "k", "2", "m"})}})
	if err := b.Merge(bt); err != nil {
		t.Fatal(err)
	}
	for _, ks := range []*Keyspace{a, b} {
		e, ok := ks.dbs[0].keys.Get("k")
		if !ok || e.ExpireAt() != 0 {
			t.Errorf("replica %v: key after ZADD: present=%v, expire at %d; want a new key without TTL", ks.Origin(), ok, e.ExpireAt())
		}
	}
	if a.Digest() != b.Digest() {
		t.Error("replicas differ")
	}
}
