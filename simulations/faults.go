package simulations

import (
	"bytes"
	"fmt"

	"concord/crdt"
	. "concord/replication"
)

// Deliberately broken merges and log rules. Each one is a bug a real
// implementation could have; a run with one turned on must fail a checker
// (TestFaultsAreCaught), which is how the harness shows it has teeth. They
// live here, in the harness, and act on what crosses between regions, so
// production code carries no switch for them.
type fault uint8

const (
	_ fault = iota // the zero value: no fault
	// faultDropIncrement: region 2's merge loses the first remote
	// increment of a counter that it applies (as a merge that assumed
	// in-order arrival and dropped one it thought stale would).
	faultDropIncrement
	// faultRemoveWins: every region merges remote removes as if they had
	// seen everything it holds, so a remove beats its concurrent adds
	// (remove-wins instead of add-wins).
	faultRemoveWins
	// faultSkipRelay: region 2 ships only its own writes, never relaying
	// what it merged from others (needs the relay scenario to matter).
	faultSkipRelay
	// faultReuseSeq: a region restored from an old backup keeps its
	// incarnation, so it reissues sequence numbers its peers already hold
	// for other writes (needs the backup-restore scenario).
	faultReuseSeq
	// faultLoseAck: one INCRBY is acknowledged but never applied.
	faultLoseAck
)

func (c *simConfig) setFault(name string) error {
	switch name {
	case "drop-increment":
		c.fault = faultDropIncrement
	case "remove-wins":
		c.fault = faultRemoveWins
	case "skip-relay":
		c.fault = faultSkipRelay
		c.wrapLog = func(g *simRegion, l Log) Log {
			if g.idx != 1 {
				return l
			}
			return ownOnlyLog{Log: l, g: g}
		}
	case "reuse-seq":
		c.fault = faultReuseSeq
	case "lose-ack":
		c.fault = faultLoseAck
		c.loseAck = true
	default:
		return fmt.Errorf("unknown fault %q (faults: %v)", name, Faults)
	}
	return nil
}

// breakMerge returns the batch region g merges: b itself, or with the
// configured broken merge rule applied.
func (s *sim) breakMerge(g *simRegion, b []byte) []byte {
	switch {
	case s.cfg.fault == faultDropIncrement && g.idx == 1:
	case s.cfg.fault == faultRemoveWins: // every region: the broken rule is the merge's
	default:
		return b
	}
	batch, err := crdt.DecodeBatch(b)
	if err != nil {
		return b
	}
	changed := false
	for i := range batch.Ops {
		for j := range batch.Ops[i].Effects {
			f := &batch.Ops[i].Effects[j]
			switch s.cfg.fault {
			case faultDropIncrement:
				if s.faultDone == 0 && f.Kind == crdt.EffStrIncr && f.Flags&crdt.FlagFloat == 0 && f.Int != 0 &&
					keyClass(string(f.Key)) == "c" {
					s.tracef("%s: FAULT drops the increment %d of %q", g.name, f.Int, f.Key)
					s.event("%s: FAULT merge drops the increment %d of %q from %v", g.name, f.Int, f.Key, batch.Origin)
					f.Int = 0
					s.faultDone++
					changed = true
				}
			case faultRemoveWins:
				if f.Kind == crdt.EffSetRem || f.Kind == crdt.EffHashDel || f.Kind == crdt.EffZRem || f.Kind == crdt.EffDelKey {
					changed = true
				}
			}
		}
	}
	if !changed {
		return b
	}
	if s.cfg.fault == faultRemoveWins {
		// The removes now claim to have seen everything g holds.
		for _, e := range g.rep.Keyspace().Version() {
			if e.Origin != batch.Origin && batch.Deps.Get(e.Origin) < e.Seq {
				batch.Deps = batch.Deps.Set(e.Origin, e.Seq)
			}
		}
		s.faultDone++
	}
	return batch.Encode(nil)
}

// ownOnlyLog hides every record of another origin from the Sender: the
// region never relays.
type ownOnlyLog struct {
	Log
	g *simRegion
}

func (l ownOnlyLog) Read(dst []crdt.LogRecord, pos uint64, maxRecords, maxBytes int) ([]crdt.LogRecord, error) {
	out, err := l.Log.Read(dst, pos, maxRecords, maxBytes)
	kept := out[:len(dst)]
	for _, r := range out[len(dst):] {
		if r.Origin == l.g.origin {
			kept = append(kept, r)
		} else {
			l.g.s.faultDone++
		}
	}
	return kept, err
}

// sampleLag records how long after its apply at the origin each op of a
// merged batch was applied here.
func (s *sim) sampleLag(b []byte) {
	if len(s.lags) >= maxLagSamples {
		return
	}
	origin, first, last, err := crdt.BatchHeader(b)
	if err != nil {
		return
	}
	for q := first; q <= last && len(s.lags) < maxLagSamples; q++ {
		if at, ok := s.appliedAt[lagKey{origin, q}]; ok {
			s.lags = append(s.lags, s.now()-at)
		}
	}
}

// backup returns a copy of g's replicated state, as a backup of the
// region's disks taken now would hold.
func (g *simRegion) backup() []byte {
	var buf bytes.Buffer
	for _, p := range g.rep.Snapshot() {
		buf.Write(p)
	}
	g.s.event("%s: backup taken at vv %v", g.name, g.rep.Keyspace().Version())
	return buf.Bytes()
}

// restoreBackup replaces g's state by an old backup, as an operator
// restoring a region from one does. First g stops writing and waits until
// its peers hold all it wrote (otherwise the restore loses writes that never
// left the region, which is what restoring a backup means, and the
// no-lost-write checker would rightly fail). The restored state is behind
// g's own origin, so g takes a new incarnation (unless the reuse-seq fault
// is on) and starts its replication afresh, as after a leader change.
func (g *simRegion) restoreBackup(data []byte) {
	s := g.s
	g.writing = false
	if !s.runUntil(30_000, func() bool {
		if len(g.queue) > 0 {
			return false
		}
		for _, p := range s.live() {
			if p != g && p.rep.Keyspace().Version().Get(g.origin) < g.rep.Keyspace().Version().Get(g.origin) {
				return false
			}
		}
		return true
	}) {
		s.fatal(fmt.Errorf("%s's peers did not get its writes before the restore:\n%s", g.name, s.describe()))
	}
	rep, err := crdt.RestoreReplica(data, s.cfg.limits)
	if err != nil {
		s.fatal(fmt.Errorf("%s: restoring the backup: %v", g.name, err))
	}
	g.carriedPops += g.rep.Keyspace().Stats.ListConcurrentPops // node-local counters restart with the replica
	g.rep = rep
	s.faults++
	if s.cfg.fault == faultReuseSeq {
		s.faultDone++
		s.event("%s: FAULT restored from the backup, keeps origin %v (vv %v)", g.name, g.origin, rep.Keyspace().Version())
	} else {
		next := g.origin
		next.Incarnation++
		if err := rep.FixOrigin(next); err != nil {
			s.fatal(fmt.Errorf("%s: new incarnation: %v", g.name, err))
		}
		g.origin = next
		s.event("%s: restored from the backup, new origin %v (vv %v)", g.name, g.origin, rep.Keyspace().Version())
	}
	s.tracef("%s: restored from a backup, origin %v", g.name, g.origin)
	g.failover()
	g.writing = true
}
