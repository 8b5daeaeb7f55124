package replication

import "concord/crdt"

// Viewer runs fn with a region's replica held still (under the region's
// read lock). It adapts a replica to Log and State: region.Node.ReplView
// is one, and a simulation passes func(fn) { fn(replica) }.
type Viewer func(fn func(r *crdt.Replica))

// Version implements Log and State.
func (v Viewer) Version() (vv crdt.VersionVector) {
	v(func(r *crdt.Replica) { vv = r.Keyspace().Version() })
	return vv
}

// Start implements Log.
func (v Viewer) Start(peer crdt.VersionVector) (pos uint64, ok bool) {
	v(func(r *crdt.Replica) { pos, ok = r.Log().Start(peer, r.Keyspace().Version()) })
	return pos, ok
}

// Read implements Log.
func (v Viewer) Read(dst []crdt.LogRecord, pos uint64, maxRecords, maxBytes int) (out []crdt.LogRecord, err error) {
	v(func(r *crdt.Replica) { out, err = r.Log().Read(dst, pos, maxRecords, maxBytes) })
	return out, err
}

// Next implements Log.
func (v Viewer) Next() (n uint64) {
	v(func(r *crdt.Replica) { n = r.Log().Next() })
	return n
}

// Staged implements State.
func (v Viewer) Staged(from uint32, id uint64) (n uint64, ok bool) {
	v(func(r *crdt.Replica) { n, ok = r.Staged(from, id) })
	return n, ok
}

// First implements Log.
func (v Viewer) First() (n uint64) {
	v(func(r *crdt.Replica) { n = r.Log().First() })
	return n
}

// Snapshot returns the keyspace snapshot, its version vector and the log
// position the state reaches (every record before next is in it; none
// from next on is), read together, for a state transfer.
func (v Viewer) Snapshot() (data []byte, vv crdt.VersionVector, next uint64) {
	v(func(r *crdt.Replica) {
		data, vv, next = r.Keyspace().Snapshot(), r.Keyspace().Version(), r.Log().Next()
	})
	return data, vv, next
}

var (
	_ Log   = Viewer(nil)
	_ State = Viewer(nil)
)
