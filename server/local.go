package server

import (
	"context"
	"math/rand/v2"
	"sync"
	"time"

	"concord/crdt"
)

// LocalStore is the single-process write path: one applier goroutine takes
// proposals in arrival order, stamps each with the leader's clock and a seed,
// and applies it to the keyspace under the write lock. All proposals that are
// waiting when the applier wakes are applied under one lock acquisition
// (group commit) and then answered. Reads run under the read lock, so they
// see either all or none of a unit's effects.
//
// The stamp is where time and randomness enter the state machine: its time
// is max(wall clock, last applied time + 1) in HLC units and its seed comes
// from a generator seeded once at start. Apply itself is deterministic.
type LocalStore struct {
	mu sync.RWMutex // guards ks: write lock in apply, read lock in Read
	ks *crdt.Keyspace

	in     chan *proposal
	sendMu sync.RWMutex // held shared by senders, exclusively by Close
	closed bool         // guarded by sendMu
	wg     sync.WaitGroup

	clock func() time.Time
	rng   *crdt.Rand // applier goroutine only
}

// LocalOptions configures a LocalStore. The zero value uses the wall clock
// and a random seed.
type LocalOptions struct {
	// Clock returns the leader's wall clock; nil means time.Now.
	Clock func() time.Time
	// Seed seeds the generator that draws each unit's randomness seed; 0
	// picks one at random.
	Seed uint64
}

// maxGroup bounds how many submissions one lock acquisition applies, so
// readers are not held off for long.
const maxGroup = 1024

// proposal is one submission: one or more units and where to answer.
type proposal struct {
	units   [][]crdt.Command
	results []Result
	res     chan []Result
}

// NewLocalStore starts the applier for ks. The store owns ks from now on:
// touch it only through Read and Propose. Call Close to stop it.
func NewLocalStore(ks *crdt.Keyspace, opts LocalOptions) *LocalStore {
	if opts.Clock == nil {
		opts.Clock = time.Now
	}
	if opts.Seed == 0 {
		opts.Seed = rand.Uint64()
	}
	s := &LocalStore{
		ks:    ks,
		in:    make(chan *proposal, maxGroup),
		clock: opts.Clock,
		rng:   crdt.NewRand(opts.Seed),
	}
	s.wg.Add(1)
	go s.run()
	return s
}

// Propose implements Store.
func (s *LocalStore) Propose(ctx context.Context, cmds []crdt.Command) ([]crdt.Reply, error) {
	ch := s.ProposeUnits([][]crdt.Command{cmds})
	select {
	case r := <-ch:
		return r[0].Replies, r[0].Err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// ProposeUnits implements Pipeliner. It blocks only while the proposal
// queue is full.
func (s *LocalStore) ProposeUnits(units [][]crdt.Command) <-chan []Result {
	p := &proposal{units: units, res: make(chan []Result, 1)}
	s.sendMu.RLock()
	if s.closed {
		s.sendMu.RUnlock()
		out := make([]Result, len(units))
		for i := range out {
			out[i].Err = ErrClosed
		}
		p.res <- out
		return p.res
	}
	s.in <- p
	s.sendMu.RUnlock()
	return p.res
}

// Read implements Store.
func (s *LocalStore) Read(fn func(ks *crdt.Keyspace)) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	fn(s.ks)
}

// NotifyWrites implements WriteNotifier: fn runs in the applier, under
// the write lock, for each key a unit gave content to.
func (s *LocalStore) NotifyWrites(fn func(db int, key string)) {
	s.mu.Lock()
	s.ks.SetWriteHook(fn)
	s.mu.Unlock()
}

// Close stops accepting proposals, applies those already accepted and stops
// the applier. Reads keep working after Close.
func (s *LocalStore) Close() error {
	s.sendMu.Lock()
	if s.closed {
		s.sendMu.Unlock()
		return nil
	}
	s.closed = true
	s.sendMu.Unlock()
	close(s.in)
	s.wg.Wait()
	return nil
}

func (s *LocalStore) run() {
	defer s.wg.Done()
	group := make([]*proposal, 0, maxGroup)
	for p := range s.in {
		group = append(group[:0], p)
	drain:
		for len(group) < maxGroup {
			select {
			case q, ok := <-s.in:
				if !ok {
					break drain
				}
				group = append(group, q)
			default:
				break drain
			}
		}
		s.mu.Lock()
		for _, q := range group {
			q.results = make([]Result, len(q.units))
			for i, u := range q.units {
				q.results[i].Replies, _ = s.ks.Apply(s.stamp(), u)
			}
		}
		s.mu.Unlock()
		for i, q := range group {
			q.res <- q.results
			group[i] = nil
		}
	}
}

// stamp returns the next unit's stamp; it runs under the write lock.
func (s *LocalStore) stamp() crdt.Stamp {
	t := crdt.HLCFromMillis(s.clock().UnixMilli())
	if last := s.ks.LastTime(); t <= last {
		t = last + 1
	}
	return crdt.Stamp{Time: t, Seed: s.rng.Uint64()}
}
