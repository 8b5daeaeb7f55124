package region

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/raft"

	"concord/crdt"
	pb "concord/proto"
)

// fsm is the thin adapter between Raft and the region's replicated state
// (crdt.Replica: keyspace, replication log, staged state transfers): it
// applies committed entries, hands each unit's replies to whoever on this
// node waits for them, and snapshots and restores the replica.
type fsm struct {
	mu  sync.RWMutex // write lock in apply and restore, read lock for reads
	rep *crdt.Replica

	// Configuration applied to a restored replica: a snapshot records the
	// keyspace's solo flag, but configuration decides it; the log's bounds
	// are configuration too.
	solo   bool
	limits crdt.LogLimits
	// region is the region id (configuration, the same on every node):
	// incarnation units fix the origin at (region, incarnation).
	region uint32

	// seen is rep.Stats as last reported to metrics (guarded by mu).
	seen crdt.ReplicaStats
	// ksSeen is the keyspace's conflict counters as last reported.
	ksSeen crdt.Stats

	applied atomic.Uint64 // index of the last entry applied
	skipped atomic.Uint64 // entries skipped for a term mismatch

	// progress is closed and replaced each time applied advances, so
	// waiters can select on it with a context.
	progressMu sync.Mutex
	progress   chan struct{}

	reg     *registry
	metrics *Metrics
	onApply func(index uint64) // optional hook (tests); called after each batch
	// writeHook is the keyspace's write hook (NotifyWrites), kept here so
	// a restored keyspace gets it too. Guarded by mu.
	writeHook func(db int, key string)
}

// setWriteHook installs fn on the current keyspace and every restored one.
func (f *fsm) setWriteHook(fn func(db int, key string)) {
	f.mu.Lock()
	f.writeHook = fn
	f.rep.Keyspace().SetWriteHook(fn)
	f.mu.Unlock()
}

// newFSM wraps ks, built from configuration (its solo flag is kept for
// restored keyspaces), in a replica whose log is bounded by limits.
func newFSM(ks *crdt.Keyspace, limits crdt.LogLimits, reg *registry, m *Metrics) *fsm {
	return &fsm{rep: crdt.NewReplica(ks, limits), solo: ks.Solo(), limits: limits,
		region: ks.Origin().Region, reg: reg, metrics: m, progress: make(chan struct{})}
}

// unitSeed derives unit i's seed from the entry's, so units of one entry do
// not draw the same random numbers.
func unitSeed(seed uint64, i int) uint64 {
	z := seed + uint64(i+1)*0x9e3779b97f4a7c15
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}

// applied unit outcome, delivered after the lock is released.
type outcome struct {
	key unitKey
	res crdt.Result
}

// Apply implements raft.FSM.
func (f *fsm) Apply(l *raft.Log) interface{} {
	f.ApplyBatch([]*raft.Log{l})
	return nil
}

// ApplyBatch implements raft.BatchingFSM: one lock acquisition for all the
// committed entries raft hands over at once.
func (f *fsm) ApplyBatch(logs []*raft.Log) []interface{} {
	var outs []outcome
	last, term := uint64(0), uint64(0)
	commands := false
	f.mu.Lock()
	for _, l := range logs {
		last, term = l.Index, l.Term
		if l.Type != raft.LogCommand {
			continue
		}
		commands = true
		e, err := decodeEntry(l.Data)
		if err != nil {
			// Skipping or guessing would fork this node's state from its
			// peers'; stopping is the only safe answer.
			f.mu.Unlock()
			panic(fmt.Sprintf("region: cannot apply log entry %d: %v", l.Index, err))
		}
		if e.Term != 0 && e.Term != l.Term {
			// Proposed in one term, logged in another (raft dispatched it
			// after its leader lost and regained leadership). Every node
			// skips it alike; its waiters learn "not applied" from the
			// later term.
			f.skipped.Add(1)
			continue
		}
		for i, u := range e.Units {
			var res crdt.Result
			switch {
			case isIncarnationUnit(u):
				res.Replies = f.applyIncarnation(u)
			case e.Gated && !f.rep.OriginFixed():
				// No origin decided yet: applying would tag the write with
				// one whose dots other regions may hold. Every node refuses
				// it alike; nothing changed, so the client may retry.
				res.Err = ErrOriginNotFixed
			case len(u.Remote) > 0:
				res.Replies = f.mergeRemote(u.Remote)
			case u.Chunk != nil:
				res.Replies = f.stageChunk(u.Chunk)
			case u.Fold != nil:
				st := crdt.Stamp{Time: crdt.HLC(e.Time), Seed: unitSeed(e.Seed, i)}
				res.Replies = f.applyFold(st, u.Fold)
			default:
				st := crdt.Stamp{Time: crdt.HLC(e.Time), Seed: unitSeed(e.Seed, i)}
				res.Replies = f.rep.Apply(st, commandsFromPB(u.Commands))
			}
			if u.Proposer != "" {
				outs = append(outs, outcome{unitKey{u.Proposer, u.Id}, res})
			}
		}
	}
	if last > 0 {
		f.applied.Store(last)
	}
	var sample replSample
	if commands && f.metrics != nil {
		sample = f.sampleLocked()
	}
	f.mu.Unlock()
	if commands {
		f.metrics.repl(sample)
	}
	f.reg.deliver(outs, last)
	f.reg.termAdvanced(term)
	if last > 0 {
		f.advance(last)
	}
	return make([]interface{}, len(logs))
}

// mergeRemote merges a remote unit's batches in order: one integer reply
// (crdt.MergeOutcome) per batch; a rejected batch's reply also carries
// "reason: error" in its Str (crdt.RejectReason first). The batches come
// from a decoded entry, so they are the entry's own copies and the log
// may keep them.
func (f *fsm) mergeRemote(batches [][]byte) []crdt.Reply {
	replies := make([]crdt.Reply, len(batches))
	for j, data := range batches {
		out, err := f.rep.Merge(data)
		replies[j] = crdt.Int(int64(out))
		if out == crdt.Rejected && err != nil {
			replies[j].Str = []byte(string(crdt.ReasonOf(err)) + ": " + err.Error())
		}
	}
	return replies
}

// applyIncarnation applies an incarnation unit: it fixes the replica's
// origin at (region, n), or, with Renew, moves a fixed one to (region, n)
// (with RenewFrom, only if the current incarnation is still RenewFrom). n
// is the unit's incarnation raised, if needed, above every incarnation of
// this region the state holds ops of and, once fixed, above the current
// one, so the origin taken is always fresh and never goes back. A pure
// function of the replicated state and the unit (the leader's clock went
// into the unit), so every node takes the same origin. The reply is the
// incarnation the region has afterwards, or an error reply if the unit was
// refused (the origin is fixed already and this is no renewal; no
// incarnation is left).
func (f *fsm) applyIncarnation(u *pb.Unit) []crdt.Reply {
	ks := f.rep.Keyspace()
	fixed := f.rep.OriginFixed()
	if fixed && !u.Renew {
		return []crdt.Reply{crdt.Err("ERR the region's origin is fixed already (" + ks.Origin().String() + ")")}
	}
	if fixed && u.RenewFrom != 0 && ks.Origin().Incarnation != u.RenewFrom {
		// Decided on a view the log has moved past: the origin it meant to
		// leave is left already.
		return []crdt.Reply{crdt.Int(int64(ks.Origin().Incarnation))}
	}
	next := max(uint64(u.Incarnation), 1)
	for _, e := range ks.Version() {
		if e.Origin.Region == f.region && uint64(e.Origin.Incarnation) >= next {
			next = uint64(e.Origin.Incarnation) + 1
		}
	}
	// The current origin counts only once fixed: before that it comes from
	// each node's configuration, not from the replicated state.
	if cur := ks.Origin(); fixed && cur.Region == f.region && uint64(cur.Incarnation) >= next {
		next = uint64(cur.Incarnation) + 1
	}
	if next > math.MaxUint32 {
		return []crdt.Reply{crdt.Err("ERR no incarnation left above " + strconv.FormatUint(next-1, 10))}
	}
	if err := f.rep.FixOrigin(crdt.Origin{Region: f.region, Incarnation: uint32(next)}); err != nil {
		return []crdt.Reply{crdt.Err("ERR " + err.Error())} // unreachable: next is fresh
	}
	return []crdt.Reply{crdt.Int(int64(next))}
}

// applyFold applies a fold unit: crdt.Replica.Fold under the unit's
// stable vector, with the entry's stamp, so every node issues the same op
// (same dot, same time, same items) and logs it for shipping; the other
// regions apply that op when it arrives, like any write. The reply is the
// number of items folded. A vector this state has not applied folds
// nothing (Fold refuses it), which only a leader proposing from a view
// ahead of the log could ask for.
func (f *fsm) applyFold(st crdt.Stamp, u *pb.FoldUnit) []crdt.Reply {
	return []crdt.Reply{crdt.Int(int64(f.rep.Fold(st, foldStableFromPB(u.Stable), int(u.MaxItems))))}
}

// stageChunk stages a transfer chunk: replies are the bytes now staged and
// 1 if the transfer was joined (else 0), or one error reply.
func (f *fsm) stageChunk(c *pb.TransferChunk) []crdt.Reply {
	staged, joined, err := f.rep.StageChunk(crdt.Chunk{From: c.From, ID: c.Id, Offset: c.Offset, Data: c.Data, Final: c.Final})
	if err != nil {
		return []crdt.Reply{crdt.Err("ERR " + err.Error())}
	}
	j := int64(0)
	if joined {
		j = 1
	}
	return []crdt.Reply{crdt.Int(int64(staged)), crdt.Int(j)}
}

// replSample is what apply reports to metrics about the replica.
type replSample struct {
	delta crdt.ReplicaStats // since the last sample
	// Conflict counters of the keyspace since the last sample.
	typeConflicts, lwwConflicts, addWinsConflicts uint64
	listConcurrentPops                            uint64
	records, bytes                                int
	firstPos, nextPos                             uint64
}

// sampleLocked reads the replica's figures; f.mu is held for writing.
func (f *fsm) sampleLocked() replSample {
	st := f.rep.Stats
	l := f.rep.Log()
	s := replSample{records: l.Len(), bytes: l.Bytes(), firstPos: l.First(), nextPos: l.Next()}
	s.delta = crdt.ReplicaStats{
		Merged:      st.Merged - f.seen.Merged,
		Duplicates:  st.Duplicates - f.seen.Duplicates,
		Rejected:    st.Rejected - f.seen.Rejected,
		OwnAhead:    st.OwnAhead - f.seen.OwnAhead,
		Chunks:      st.Chunks - f.seen.Chunks,
		Transfers:   st.Transfers - f.seen.Transfers,
		TransferErr: st.TransferErr - f.seen.TransferErr,
	}
	f.seen = st
	ks := f.rep.Keyspace().Stats
	s.typeConflicts = ks.TypeConflicts - f.ksSeen.TypeConflicts
	s.lwwConflicts = ks.LWWConflicts - f.ksSeen.LWWConflicts
	s.addWinsConflicts = ks.AddWinsConflicts - f.ksSeen.AddWinsConflicts
	s.listConcurrentPops = ks.ListConcurrentPops - f.ksSeen.ListConcurrentPops
	f.ksSeen = ks
	return s
}

func (f *fsm) advance(index uint64) {
	f.progressMu.Lock()
	close(f.progress)
	f.progress = make(chan struct{})
	f.progressMu.Unlock()
	if f.onApply != nil {
		f.onApply(index)
	}
}

// waitApplied blocks until the entry at index has been applied, or done
// is closed (then it returns false).
func (f *fsm) waitApplied(index uint64, done <-chan struct{}) bool {
	for {
		f.progressMu.Lock()
		ch := f.progress
		f.progressMu.Unlock()
		if f.applied.Load() >= index {
			return true
		}
		select {
		case <-ch:
		case <-done:
			return f.applied.Load() >= index
		}
	}
}

// snapshotMagic starts every snapshot this package writes; its last byte is
// the snapshot format. Version 1 (written before cross-region replication)
// holds a keyspace snapshot; version 2, the one written now, holds a
// replica snapshot (crdt.Replica.Snapshot: log, staged transfers,
// keyspace). Restore reads both.
var snapshotMagic = [8]byte{'C', 'O', 'N', 'C', 'S', 'N', 'P', 2}

const snapshotV1 = 1

// Snapshot implements raft.FSM. Raft calls it on the apply goroutine, so
// apply waits while the replica is encoded; the encoding is in memory and
// Persist writes it out without holding anything.
func (f *fsm) Snapshot() (raft.FSMSnapshot, error) {
	start := time.Now()
	f.mu.RLock()
	parts := f.rep.Snapshot()
	applied := f.applied.Load()
	f.mu.RUnlock()
	s := &fsmSnapshot{applied: applied, parts: parts}
	f.metrics.snapshot(time.Since(start), s.size())
	return s, nil
}

// Restore implements raft.FSM: the replica is replaced whole, so readers
// see either the old state or the restored one, never a mix.
func (f *fsm) Restore(rc io.ReadCloser) error {
	defer rc.Close()
	data, err := io.ReadAll(rc)
	if err != nil {
		return err
	}
	n := len(snapshotMagic) - 1
	if len(data) < len(snapshotMagic)+8 || !bytes.Equal(data[:n], snapshotMagic[:n]) {
		return errors.New("region: not a Concord snapshot")
	}
	applied := binary.BigEndian.Uint64(data[8:16])
	var rep *crdt.Replica
	switch v := data[n]; v {
	case snapshotV1:
		var ks *crdt.Keyspace
		if ks, err = crdt.Restore(data[16:]); err == nil {
			rep = crdt.NewReplica(ks, f.limits)
			// Written before origins were fixed through the log: a state
			// that took writes keeps the origin it took them under (as
			// crdt does for its own format-1 replica snapshots).
			if ks.Version().Get(ks.Origin()) > 0 {
				err = rep.FixOrigin(ks.Origin())
			}
		}
	case snapshotMagic[n]:
		rep, err = crdt.RestoreReplica(data[16:], f.limits)
	default:
		return fmt.Errorf("region: unknown snapshot format %d; upgrade this node", v)
	}
	if err != nil {
		return fmt.Errorf("region: restoring snapshot: %w", err)
	}
	rep.Keyspace().SetSolo(f.solo)
	f.mu.Lock()
	rep.Keyspace().SetWriteHook(f.writeHook)
	f.rep = rep
	f.seen = rep.Stats
	f.ksSeen = rep.Keyspace().Stats
	f.applied.Store(applied)
	var sample replSample
	if f.metrics != nil {
		sample = f.sampleLocked()
	}
	hook := f.writeHook
	f.mu.Unlock()
	if hook != nil {
		hook(-1, "") // the whole state was replaced: any key may hold data now
	}
	f.metrics.repl(sample)
	// Units applied inside the snapshot's range cannot be matched to
	// their replies any more: their waiters learn the outcome is unknown.
	f.reg.restored(applied)
	f.advance(applied)
	return nil
}

type fsmSnapshot struct {
	applied uint64
	parts   [][]byte // crdt.Replica.Snapshot's parts, written one after the other
}

// size is the snapshot's body size.
func (s *fsmSnapshot) size() int {
	n := 0
	for _, p := range s.parts {
		n += len(p)
	}
	return n
}

func (s *fsmSnapshot) Persist(sink raft.SnapshotSink) error {
	var hdr [16]byte
	copy(hdr[:8], snapshotMagic[:])
	binary.BigEndian.PutUint64(hdr[8:], s.applied)
	if _, err := sink.Write(hdr[:]); err != nil {
		sink.Cancel()
		return err
	}
	for _, p := range s.parts {
		if _, err := sink.Write(p); err != nil {
			sink.Cancel()
			return err
		}
	}
	return sink.Close()
}

func (s *fsmSnapshot) Release() {}

// unitKey names a unit across the region: the proposing node and its id.
type unitKey struct {
	proposer string
	id       uint64
}

// submission is a group of units waiting for their outcome on this node:
// a client's pipeline (local) or a follower's forwarded request (remote,
// on the leader).
type submission struct {
	units    []*pb.Unit
	results  []crdt.Result
	left     int // units not yet resolved; guarded by registry.mu
	start    time.Time
	deadline time.Time // give up waiting for an outcome after this
	parkedAt time.Time // first time it waited for a leader
	// term is the Raft term the units were proposed or forwarded in (0:
	// not in flight) and epoch the registry's restore count then; both
	// guarded by registry.mu. remoteTerm is the term a follower forwarded
	// the units in: the leader proposes them in that term only.
	term, epoch uint64
	remoteTerm  uint64
	done        func(results []crdt.Result)
	// remote is set for units a follower forwarded: failures go back to it
	// instead of being retried here.
	remote *remoteCall
}

// registry maps units proposed by (or for) this node to the submissions
// waiting for them. Apply delivers replies; failure paths resolve units as
// not applied, in doubt, or retryable.
type registry struct {
	mu         sync.Mutex
	units      map[unitKey]regRef
	watches    []watch
	lastTerm   uint64 // highest term applied
	restores   uint64 // snapshots restored
	applied    uint64 // highest index whose units have been delivered
	restoredTo uint64 // index of the last snapshot restored
}

type regRef struct {
	sub *submission
	pos int
}

// watch fails the units still waiting once the entry at index is applied:
// an entry that was appended but lost its leader either commits (and the
// units are delivered first) or is overwritten (and they never will be).
type watch struct {
	index uint64
	keys  []unitKey
}

func newRegistry() *registry { return &registry{units: map[unitKey]regRef{}} }

func (r *registry) add(s *submission) {
	r.mu.Lock()
	s.left = len(s.units)
	s.results = make([]crdt.Result, len(s.units))
	for i, u := range s.units {
		r.units[unitKey{u.Proposer, u.Id}] = regRef{s, i}
	}
	r.mu.Unlock()
}

// resolveLocked records res for key and returns the submission if it is
// now complete.
func (r *registry) resolveLocked(key unitKey, res crdt.Result) *submission {
	ref, ok := r.units[key]
	if !ok {
		return nil
	}
	delete(r.units, key)
	ref.sub.results[ref.pos] = res
	ref.sub.left--
	if ref.sub.left == 0 {
		return ref.sub
	}
	return nil
}

// deliver hands applied units their replies and settles watches up to
// index.
func (r *registry) deliver(outs []outcome, index uint64) {
	var complete []*submission
	r.mu.Lock()
	for _, o := range outs {
		if s := r.resolveLocked(o.key, o.res); s != nil {
			complete = append(complete, s)
		}
	}
	// The applied index is tracked here, under the same lock as the
	// deliveries: a watch must never see an index as applied before the
	// units applied at it have been delivered.
	if index > r.applied {
		r.applied = index
	}
	complete = r.settleWatchesLocked(r.applied, ErrNotApplied, complete)
	r.mu.Unlock()
	for _, s := range complete {
		s.done(s.results)
	}
}

// settleWatchesLocked resolves with err the units still waiting on
// watches at or below index and appends the submissions that completed.
func (r *registry) settleWatchesLocked(index uint64, err error, complete []*submission) []*submission {
	kept := r.watches[:0]
	for _, w := range r.watches {
		if w.index > index {
			kept = append(kept, w)
			continue
		}
		for _, k := range w.keys {
			if s := r.resolveLocked(k, crdt.Result{Err: err}); s != nil {
				complete = append(complete, s)
			}
		}
	}
	r.watches = kept
	return complete
}

// fail resolves every unresolved unit of s with err.
func (r *registry) fail(s *submission, err error) {
	var complete *submission
	r.mu.Lock()
	for _, u := range s.units {
		if c := r.resolveLocked(unitKey{u.Proposer, u.Id}, crdt.Result{Err: err}); c != nil {
			complete = c
		}
	}
	r.mu.Unlock()
	if complete != nil {
		complete.done(complete.results)
	}
}

// settle resolves s's units with results (a leader's answer to a forwarded
// write); units apply already resolved keep their replies.
func (r *registry) settle(s *submission, results []crdt.Result) {
	var complete *submission
	r.mu.Lock()
	for i, u := range s.units {
		if i < len(results) {
			if c := r.resolveLocked(unitKey{u.Proposer, u.Id}, results[i]); c != nil {
				complete = c
			}
		}
	}
	r.mu.Unlock()
	if complete != nil {
		complete.done(complete.results)
	}
}

// drop forgets s's units without resolving them (a forwarded submission
// whose follower is told the outcome instead).
func (r *registry) drop(s *submission) {
	r.mu.Lock()
	for _, u := range s.units {
		delete(r.units, unitKey{u.Proposer, u.Id})
	}
	r.mu.Unlock()
}

// watch arranges for s's unresolved units to fail as not applied once the
// entry at index is applied without them.
func (r *registry) watch(s *submission, index uint64) {
	keys := make([]unitKey, len(s.units))
	for i, u := range s.units {
		keys[i] = unitKey{u.Proposer, u.Id}
	}
	r.mu.Lock()
	if index <= r.restoredTo {
		// The snapshot holds the state, not which units made it.
		r.mu.Unlock()
		r.fail(s, ErrInDoubt)
		return
	}
	r.watches = append(r.watches, watch{index, keys})
	r.mu.Unlock()
	r.deliver(nil, 0) // settles it now if index is already applied and delivered
}

// claim marks s as in flight in term (proposed by this node, or forwarded
// to a leader in that term) unless its units were already resolved (a
// deadline, or a later term, answered the client): then it must not be
// proposed any more and claim returns false. The registry's lock makes
// "answered" and "proposed" exclusive.
func (r *registry) claim(s *submission, term uint64) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if s.left != len(s.units) {
		return false
	}
	s.term, s.epoch = term, r.restores
	return true
}

// release takes s out of flight after a leader said it never proposed it,
// so it can be sent again. If its units were answered meanwhile it must
// not be: release resolves any left as not applied and returns false.
func (r *registry) release(s *submission) bool {
	var complete *submission
	r.mu.Lock()
	if s.left == len(s.units) {
		s.term = 0
		r.mu.Unlock()
		return true
	}
	for _, u := range s.units {
		if c := r.resolveLocked(unitKey{u.Proposer, u.Id}, crdt.Result{Err: ErrNotApplied}); c != nil {
			complete = c
		}
	}
	r.mu.Unlock()
	if complete != nil {
		complete.done(complete.results)
	}
	return false
}

// termAdvanced settles units in flight in a term earlier than term: an
// entry is applied only in the term it was proposed in (apply skips it
// otherwise), and log terms never decrease, so once an entry of a later
// term is applied, an undelivered unit of an earlier term never will be.
// A snapshot restored meanwhile may hold it: then it is in doubt.
func (r *registry) termAdvanced(term uint64) {
	var complete []*submission
	r.mu.Lock()
	if term <= r.lastTerm {
		r.mu.Unlock()
		return
	}
	r.lastTerm = term
	for key, ref := range r.units {
		s := ref.sub
		if s.term == 0 || s.term >= term {
			continue
		}
		err := error(ErrNotApplied)
		if s.epoch != r.restores {
			err = ErrInDoubt
		}
		if c := r.resolveLocked(key, crdt.Result{Err: err}); c != nil {
			complete = append(complete, c)
		}
	}
	r.mu.Unlock()
	for _, s := range complete {
		s.done(s.results)
	}
}

// restored fails, as in doubt, units whose entries may lie inside a
// snapshot just installed (their replies are lost with the log).
func (r *registry) restored(index uint64) {
	var complete []*submission
	r.mu.Lock()
	r.restores++
	r.restoredTo = index
	if index > r.applied {
		r.applied = index
	}
	complete = r.settleWatchesLocked(index, ErrInDoubt, complete)
	r.mu.Unlock()
	for _, s := range complete {
		s.done(s.results)
	}
}

// expire fails submissions whose deadline passed: in doubt if they were
// proposed, retryable otherwise.
func (r *registry) expire(now time.Time) {
	var complete []*submission
	r.mu.Lock()
	for key, ref := range r.units {
		s := ref.sub
		if !now.After(s.deadline) {
			continue
		}
		// Decided under the lock claim takes: a unit answered here is
		// never proposed afterwards.
		err := error(ErrNoLeader)
		if s.term != 0 {
			err = ErrInDoubt
		}
		if c := r.resolveLocked(key, crdt.Result{Err: err}); c != nil {
			complete = append(complete, c)
		}
	}
	r.mu.Unlock()
	for _, s := range complete {
		s.done(s.results)
	}
}
