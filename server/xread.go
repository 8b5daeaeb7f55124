package server

import (
	"strconv"

	"concord/crdt"
)

// XREAD BLOCK. XREAD stays a data command (a read); only its BLOCK form
// takes the blocking path, and it is served by reading, not by proposing:
//
//   - The first attempt passes the read fence and, in one read of the
//     keyspace, runs XREAD and, if no stream has an entry above its ID,
//     resolves each "$" to that stream's last ID (crdt.Keyspace.XReadWait).
//     An entry added after that view fires the write hook, so none is
//     missed between the attempt and the registration.
//   - When a stream the client waits on gets content, the blocker re-reads
//     "XREAD [COUNT n] STREAMS key id" for that one key against the local
//     view, for every client blocked on it (a read takes nothing, so all
//     are served). Redis 7.0 answers a woken XREAD with that one stream
//     too. A client whose ID is still above the stream's last entry (an
//     entry merged from another region with a lower ID) stays blocked.
//   - Inside MULTI or a script XREAD BLOCK runs as the data command, which
//     never waits: a null array without new entries, as in Redis.

// addBlockOptions gives data commands their blocking forms.
func (s *Server) addBlockOptions() {
	if c := s.table["xread"]; c != nil && c.data != nil {
		c.blockOpt = xreadSpec
	}
}

// xreadSpec is XREAD's BLOCK form.
var xreadSpec = &blockSpec{
	base: "xread", keyType: "stream", read: true,
	wants: xreadBlocks,
	attempt: func(c *client, args [][]byte) (crdt.Reply, blockArgs, bool) {
		s := c.srv
		if r, ok := c.fenceReads(); !ok {
			return r, blockArgs{}, false
		}
		var (
			r crdt.Reply
			w crdt.XReadWait
		)
		s.store.Read(func(ks *crdt.Keyspace) { r, w = ks.XReadWait(c.db, readTime(ks), args) })
		if r.Kind != crdt.KindNilArray || !w.Block {
			return r, blockArgs{}, false
		}
		if s.blk == nil {
			return crdt.Err("ERR XREAD BLOCK cannot wait on this server: its store does not report writes"), blockArgs{}, false
		}
		// Keys alias the connection's buffer, which keeps filling.
		a := blockArgs{timeout: w.Timeout, count: w.Count, ids: w.IDs, keys: make([][]byte, len(w.Keys))}
		for i, k := range w.Keys {
			a.keys[i] = append([]byte(nil), k...)
		}
		return crdt.Reply{}, a, true
	},
	unit: func(_ [][]byte, a blockArgs, ready []byte) [][]byte {
		u := [][]byte{[]byte("xread")}
		if a.count > 0 {
			u = append(u, []byte("COUNT"), []byte(strconv.FormatInt(a.count, 10)))
		}
		u = append(u, []byte("STREAMS"))
		if ready == nil {
			u = append(u, a.keys...)
			return append(u, a.ids...)
		}
		// A key named twice waits above its first ID, as in Redis.
		for i, k := range a.keys {
			if string(k) == string(ready) {
				return append(u, ready, a.ids[i])
			}
		}
		return append(u, ready, []byte("$")) // not reached: ready is one of the keys
	},
}

// xreadBlocks reports whether XREAD's options, scanned as the engine scans
// them, include BLOCK. Bad options leave it to the engine's errors.
func xreadBlocks(args [][]byte) bool {
	for i := 1; i < len(args)-1; i++ {
		switch o := args[i]; {
		case eqFold(o, "block"):
			return true
		case eqFold(o, "count"):
			i++
		default:
			return false // STREAMS or an error: no more options
		}
	}
	return false
}

func eqFold(b []byte, lower string) bool {
	if len(b) != len(lower) {
		return false
	}
	for i := range b {
		if b[i]|0x20 != lower[i] {
			return false
		}
	}
	return true
}
