package server

import (
	"context"
	"time"

	"concord/crdt"
)

// WAITREGIONS numregions timeout: WAIT for regions. It blocks the calling
// connection (and only it: every connection has its own goroutine) until
// numregions peer regions have applied the connection's latest write, or
// timeout milliseconds pass (0: no limit), and replies with the number of
// peer regions that have applied it.
//
// "Applied the write" is judged by version vectors. Every write this region
// originates takes the next sequence number of the region's origin, so
// right after the write is applied the region's own entry of its version
// vector bounds the write's number from above; a peer whose reported
// vector reaches that entry holds the write (each origin's writes are
// applied contiguously). The bound is taken when WAITREGIONS first runs
// after the write, after a read fence (so a follower's view holds the
// write): writes of other clients in between are waited for too, never
// fewer. A connection that has written nothing waits for everything this
// region had applied when the command arrived (its whole version vector,
// the other regions' writes it merged included): a way to ask "has every
// region caught up with this one".

// waitRegionsPoll is how often a waiting WAITREGIONS re-reads the peers'
// vectors (on a follower each read asks the leader).
const waitRegionsPoll = 10 * time.Millisecond

func cmdWaitRegions(c *client, args [][]byte) crdt.Reply {
	want, ok := string2ll(args[1])
	if !ok {
		return errNotInt
	}
	if want < 0 {
		return crdt.Err("ERR numregions is negative")
	}
	ms, ok := string2ll(args[2])
	if !ok {
		return crdt.Err("ERR timeout is not an integer or out of range")
	}
	if ms < 0 {
		return crdt.Err("ERR timeout is negative")
	}
	pr, ok := c.srv.store.(PeerRegions)
	if !ok {
		return crdt.Int(0) // a region alone: no region to wait for
	}
	s := c.srv
	ctx := s.ctx()
	if ms > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, time.Duration(ms)*time.Millisecond)
		defer cancel()
	}
	target, errR := c.waitTarget(ctx)
	if errR != nil {
		return *errR
	}
	count := 0
	for {
		vvs, err := pr.PeerApplied(ctx)
		if err == nil {
			if len(vvs) == 0 {
				return crdt.Int(0)
			}
			count = 0
			for _, vv := range vvs {
				if vv.Dominates(target) {
					count++
				}
			}
			if int64(count) >= want {
				return crdt.Int(int64(count))
			}
		}
		// No leader reachable (err) counts as no progress: keep the
		// latest count and try again until the timeout.
		t := time.NewTimer(waitRegionsPoll)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			if s.ctx().Err() != nil {
				return errReply(ErrClosed)
			}
			return crdt.Int(int64(count))
		}
		if c.killed.Load() {
			return crdt.Int(int64(count))
		}
	}
}

// waitTarget returns the version vector WAITREGIONS waits for (see above),
// or the reply to fail with when the read fence fails.
func (c *client) waitTarget(ctx context.Context) (crdt.VersionVector, *crdt.Reply) {
	if !c.wrote && c.lastWrite != nil {
		return c.lastWrite, nil
	}
	// The fence is needed even under READONLY: a follower's view must
	// hold the write (or everything acknowledged) before it is measured.
	if f := c.srv.fencer; f != nil {
		fctx, cancel := context.WithTimeout(ctx, readFenceTimeout)
		err := f.ReadFence(fctx)
		cancel()
		if err != nil {
			r := readErrReply(err)
			return nil, &r
		}
	}
	var target crdt.VersionVector
	c.srv.store.Read(func(ks *crdt.Keyspace) {
		vv := ks.Version()
		if !c.wrote {
			target = vv
			return
		}
		o := ks.Origin()
		target = crdt.VersionVector{{Origin: o, Seq: vv.Get(o)}}
	})
	if c.wrote {
		c.wrote, c.lastWrite = false, target
	}
	return target, nil
}
