package replication

import (
	"context"
	"time"

	"concord/crdt"
)

// Folder is implemented by a Region that can garbage-collect: ProposeFold
// submits one unit that folds, in every region, up to maxItems counters
// whose pieces are causally stable under stable (crdt.Replica.Fold). Its
// result has one integer reply: how many items were folded.
type Folder interface {
	ProposeFold(stable crdt.VersionVector, maxItems int) <-chan crdt.Result
}

// Garbage collection: how often the leader looks for a newly stable
// vector, and how much one fold unit may fold.
const (
	gcInterval = 2 * time.Second
	gcMaxItems = 4096
	gcMaxUnits = 64 // fold units per round: bounds a round's work
)

// stable returns the vector that is causally stable here, or false: the
// pointwise minimum of the local vector and, for every peer region, the
// newest vector that peer reported as applied that the local region has
// caught up with. Every region has applied it, and every op any region
// issued before reaching it is applied here, so every op not yet applied
// here has a context covering it: what crdt.Replica.Fold requires.
func (m *Manager) stable() (crdt.VersionVector, bool) {
	local := Viewer(m.cfg.Region.ReplView).Version()
	s := local.Clone()
	for _, sh := range m.shippers {
		sh.mu.Lock()
		v, ok := sh.snd.Applied(local)
		sh.mu.Unlock()
		if !ok {
			return nil, false // a peer that never reported holds back collection
		}
		s = minVV(s, v)
	}
	return s, len(s) > 0
}

// minVV is the pointwise minimum (an origin missing from either is 0).
func minVV(a, b crdt.VersionVector) crdt.VersionVector {
	var out crdt.VersionVector
	for _, e := range a {
		if m := min(e.Seq, b.Get(e.Origin)); m > 0 {
			out = out.Set(e.Origin, m)
		}
	}
	return out
}

// gcLoop folds stable counters while this node leads. A round proposes
// fold units under one stable vector until one folds fewer than
// gcMaxItems; the next round waits for a vector that differs: under the
// same vector nothing more can become foldable (every piece it covers is
// already here, and an item refused under it waits for a later piece to
// become stable), so a region whose peer is away proposes nothing while
// the backlog waits for it.
func (m *Manager) gcLoop(ctx context.Context, f Folder) {
	defer m.wg.Done()
	t := time.NewTicker(m.gcEvery)
	defer t.Stop()
	var last crdt.VersionVector
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if leader, _ := m.cfg.Region.LeaderWatch(); !leader || len(m.shippers) == 0 {
			last = nil // a new term starts afresh
			continue
		}
		s, ok := m.stable()
		if !ok || last != nil && last.Equal(s) || m.backlog() == 0 {
			continue
		}
		for i := 0; i < gcMaxUnits; i++ {
			var res crdt.Result
			select {
			case res = <-f.ProposeFold(s, gcMaxItems):
			case <-ctx.Done():
				return
			}
			if res.Err != nil || len(res.Replies) != 1 {
				m.cfg.Logger.Debug("garbage collection unit not applied", "err", res.Err, "replies", len(res.Replies))
				break // retried next tick under the same vector
			}
			m.folded.Add(uint64(res.Replies[0].Int))
			m.gcRounds.Add(1)
			if res.Replies[0].Int < gcMaxItems {
				last = s
				break
			}
		}
	}
}

// backlog is the number of counters, hash fields and sorted-set members
// holding pieces not folded yet.
func (m *Manager) backlog() (n int) {
	m.cfg.Region.ReplView(func(r *crdt.Replica) { n = r.Keyspace().Unfolded() })
	return n
}
