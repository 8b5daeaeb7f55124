package server

import (
	"math/rand/v2"
	"time"

	"concord/crdt"
)

// Active expiry: keys whose TTL passed are removed without being read, by a
// stamped write like any other (DESIGN: expiry is a write). About expireHz
// times a second the sweeper samples each non-empty database for expired
// keys and proposes the internal command "concord-expire key..." for them;
// applying it removes each key that is still expired at the unit's stamp
// (observed-remove), so every replica removes the same content. As in
// Redis's active expire cycle, a database whose sample was full of expired
// keys is sampled again at once, within a time budget per tick.

const (
	expireHz     = 10
	expireSample = 20
	expireBudget = 25 * time.Millisecond // per tick, like Redis's 25% of 100ms
	expireCmd    = "concord-expire"
)

// expiredSampler is implemented by crdt.Keyspace once SampleExpired lands;
// until then the sweep is a no-op, so this package builds either way.
type expiredSampler interface {
	SampleExpired(db int, nowMs int64, max int, r *crdt.Rand) [][]byte
}

func (s *Server) expireLoop() {
	defer s.wg.Done()
	if spec := crdt.Lookup([]byte(expireCmd)); spec == nil || !spec.Write {
		s.log.Warn("active expiry disabled: the crdt engine has no " + expireCmd + " command")
		return
	}
	rng := crdt.NewRand(rand.Uint64())
	t := time.NewTicker(time.Second / expireHz)
	defer t.Stop()
	for {
		select {
		case <-s.done:
			return
		case <-t.C:
		}
		s.expireCycle(rng)
	}
}

// expireCycle runs one sweep over all databases. In a region only the
// leader sweeps: every node sees the same expired keys, and a follower's
// sweep would only be forwarded to the leader as a duplicate of its own.
func (s *Server) expireCycle(rng *crdt.Rand) {
	deadline := time.Now().Add(expireBudget)
	for db := 0; db < crdt.NumDBs; db++ {
		for {
			if s.replica != nil && !s.replica.Leader() {
				return
			}
			keys, ok := s.sampleExpired(db, rng)
			if !ok {
				return
			}
			if len(keys) == 0 {
				break
			}
			args := make([][]byte, 0, len(keys)+1)
			args = append(args, []byte(expireCmd))
			args = append(args, keys...)
			if _, err := s.store.Propose(s.ctx(), []crdt.Command{{DB: db, Args: args}}); err != nil {
				return
			}
			s.stats.expireCycles.Add(1)
			if len(keys) < expireSample || time.Now().After(deadline) {
				break
			}
		}
		if time.Now().After(deadline) {
			return
		}
	}
}

// sampleExpired returns up to expireSample expired keys of db; ok is false
// when the keyspace cannot sample.
func (s *Server) sampleExpired(db int, rng *crdt.Rand) (keys [][]byte, ok bool) {
	s.store.Read(func(ks *crdt.Keyspace) {
		sm, can := any(ks).(expiredSampler)
		if !can {
			return
		}
		ok = true
		if ks.DBSize(db) == 0 {
			return
		}
		keys = sm.SampleExpired(db, readTime(ks), expireSample, rng)
	})
	return keys, ok
}
