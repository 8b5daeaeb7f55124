package crdt

// This file holds the node-local bookkeeping around keys that is not
// replicated state: the index of keys with a TTL (for active expiry and
// INFO's expires=) and each key's last access time (OBJECT IDLETIME).
// Neither is encoded in snapshots or digests, and Join ignores them.

// accessEpochMs is the base of entry access times: 2024-01-01T00:00:00Z.
// Seconds since then fit a uint32 for 136 years.
const accessEpochMs = 1704067200000

// accessSecs converts a Unix time in ms to an access-time reading. 0 means
// "unknown" (a key loaded from a snapshot or joined from a peer), so real
// readings start at 1.
func accessSecs(nowMs int64) uint32 {
	s := (nowMs - accessEpochMs) / 1000
	switch {
	case s < 1:
		return 1
	case s > 1<<32-1:
		return 1<<32 - 1
	}
	return uint32(s)
}

// touch records an access at nowMs. Reads call it concurrently with each
// other, hence the atomic; skipping the store when the second has not
// changed keeps hot keys from bouncing a cache line between readers.
func (e *entry) touch(nowMs int64) {
	if s := accessSecs(nowMs); e.atime.Load() != s {
		e.atime.Store(s)
	}
}

// idleSeconds is OBJECT IDLETIME: whole seconds since the last access, 0
// if this node has not seen one.
func (e *entry) idleSeconds(nowMs int64) int64 {
	a := e.atime.Load()
	if a == 0 {
		return 0
	}
	if idle := int64(accessSecs(nowMs)) - int64(a); idle > 0 {
		return idle
	}
	return 0
}

// trackExpire keeps d.expires equal to the set of keys that have content
// and a visible TTL. It is called wherever an entry is stored or dropped.
func (d *db) trackExpire(e *entry) {
	if len(e.vals) > 0 && e.ExpireAt() > 0 {
		d.expires.Set(e.key, e)
	} else if d.expires.Len() > 0 {
		d.expires.Delete(e.key)
	}
}

// Expires returns the number of keys in database i that have a TTL (INFO
// keyspace's expires=), counting expired keys not yet removed, as Redis
// does.
func (ks *Keyspace) Expires(i int) int { return ks.dbs[i].expires.Len() }

// SampleExpired returns up to max keys of database dbi whose TTL has
// passed at nowMs, for the server to remove with a concord-expire write
// (removal must be a stamped write so every replica removes the same
// content). Like Redis's active expire cycle it samples instead of
// scanning: it walks the keys that have a TTL from a random slot, and looks
// at no more than a fixed multiple of max slots per call, so a call costs
// the same on a huge keyspace as on a small one. Keys that stay expired are
// found by later calls. It is a read: safe to run concurrently with other
// reads, never with Apply.
func (ks *Keyspace) SampleExpired(dbi int, nowMs int64, max int, r *Rand) [][]byte {
	if dbi < 0 || dbi >= NumDBs || max <= 0 {
		return nil
	}
	x := &ks.dbs[dbi].expires
	n := len(x.slots)
	if n == 0 {
		return nil
	}
	// Redis samples 20 keys per loop and repeats while over a tenth of
	// them were expired; looking at 20 keys per key wanted is the same
	// budget for a keyspace where most sampled keys are live.
	budget := 20 * max
	holes := 4 * budget // free slots are skipped, but not without limit
	var out [][]byte
	start := r.Intn(n)
	for i := 0; i < n && budget > 0 && holes > 0; i++ {
		s := &x.slots[(start+i)%n]
		if !s.used {
			holes--
			continue
		}
		budget--
		if s.val.expired(nowMs) {
			out = append(out, []byte(s.key))
			if len(out) == max {
				break
			}
		}
	}
	return out
}
