package crdt

import "sort"

// The script cache (SCRIPT LOAD and EVAL's implicit caching) lives here so
// that it is replicated state of the region: it changes only in apply, so
// every node of a region holds the same scripts, and it is part of the
// keyspace snapshot, so EVALSHA keeps working after a failover and on a node
// restored from a snapshot. It does not cross regions: scripts are
// region-local syntax, and what replicates is the effects scripts produce.
// Digest and Join leave it out for that reason. The scripting engine itself
// (crdt/script) registers EVAL and friends through Register.

// Register adds data commands implemented outside this package (the
// scripting engine) to the command table. It must be called from an init
// function, before any Keyspace runs commands.
func Register(specs ...*CommandSpec) { register(specs...) }

// Script returns the body of the cached script with the given SHA1 (hex,
// lowercase), if the region's cache holds it.
func (tx *Tx) Script(sha string) ([]byte, bool) {
	b, ok := tx.ks.scripts[sha]
	return b, ok
}

// CacheScript adds a script to the region's cache. Only a write (a command
// in apply) may change the cache, so every node makes the same change.
func (tx *Tx) CacheScript(sha string, body []byte) {
	if !tx.write {
		panic("crdt: CacheScript outside apply")
	}
	if _, ok := tx.ks.scripts[sha]; ok {
		return
	}
	if tx.ks.scripts == nil {
		tx.ks.scripts = make(map[string][]byte)
	}
	tx.ks.scripts[sha] = append([]byte(nil), body...)
	tx.ks.scriptBytes += int64(len(sha) + len(body))
}

// FlushScripts empties the region's script cache (SCRIPT FLUSH).
func (tx *Tx) FlushScripts() {
	if !tx.write {
		panic("crdt: FlushScripts outside apply")
	}
	tx.ks.scripts = nil
	tx.ks.scriptBytes = 0
}

// Step ends the current op of a write, so the next effect starts a new op
// with its own tag whose context observes everything before it. A script
// calls it between commands: within one op a remove does not observe the
// op's own adds, so SET k v followed by DEL k in one op would keep v.
// Every op of a command stays in the command's batch.
func (tx *Tx) Step() {
	if !tx.write || !tx.opOpen {
		return
	}
	tx.opOpen = false
	tx.ks.last++
	tx.time = tx.ks.last
}

// ScriptStats reports how many scripts the region's cache holds and the
// bytes of their bodies and SHA1s (INFO's number_of_cached_scripts and
// used_memory_scripts_eval).
func (ks *Keyspace) ScriptStats() (n int, bytes int64) {
	return len(ks.scripts), ks.scriptBytes
}

// snapScripts marks the script cache section at the end of a keyspace
// snapshot. The section is written only when the cache holds scripts, so a
// snapshot without scripts is byte-for-byte what format 2 always was.
const snapScripts = 's'

func (ks *Keyspace) encodeScripts(e *encoder) {
	if len(ks.scripts) == 0 {
		return
	}
	shas := make([]string, 0, len(ks.scripts))
	for s := range ks.scripts {
		shas = append(shas, s)
	}
	sort.Strings(shas)
	e.byte1(snapScripts)
	e.uvarint(uint64(len(shas)))
	for _, s := range shas {
		e.str(s)
		e.bytes(ks.scripts[s])
	}
}

func (ks *Keyspace) decodeScripts(d *decoder) {
	if len(d.b) == 0 || d.err != nil {
		return
	}
	if d.byte1() != snapScripts {
		d.fail()
		return
	}
	n := d.count(2)
	if n == 0 {
		d.fail() // the section is written only for a non-empty cache
		return
	}
	ks.scripts = make(map[string][]byte, n)
	prev := ""
	for i := 0; i < n && d.err == nil; i++ {
		s := d.str()
		body := d.bytes()
		if len(s) != 40 || s <= prev {
			d.fail() // SHA1 hex, sorted, no duplicates
			return
		}
		prev = s
		ks.scripts[s] = append([]byte(nil), body...)
		ks.scriptBytes += int64(len(s) + len(body))
	}
}
