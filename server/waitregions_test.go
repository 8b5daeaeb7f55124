package server

import (
	"context"
	"strings"
	"sync"
	"testing"

	"concord/crdt"
)

func TestWaitRegionsArgsAndNoPeers(t *testing.T) {
	_, addr := startServer(t, Options{NoActiveExpiry: true})
	c := dial(t, addr)
	c.expect("-ERR wrong number of arguments for 'waitregions' command\r\n", "WAITREGIONS", "1")
	c.expect("-ERR wrong number of arguments for 'waitregions' command\r\n", "WAITREGIONS", "1", "0", "x")
	c.expect("-ERR value is not an integer or out of range\r\n", "WAITREGIONS", "x", "0")
	c.expect("-ERR numregions is negative\r\n", "WAITREGIONS", "-1", "0")
	c.expect("-ERR timeout is not an integer or out of range\r\n", "WAITREGIONS", "1", "1.5")
	c.expect("-ERR timeout is negative\r\n", "WAITREGIONS", "1", "-1")
	// A region alone has nobody to wait for: 0 at once, even with no
	// timeout.
	c.expect("+OK\r\n", "SET", "k", "v")
	c.expect(":0\r\n", "WAITREGIONS", "2", "0")
}

// peeredStore is a LocalStore that pretends to have peer regions whose
// applied vectors the test sets.
type peeredStore struct {
	*LocalStore
	mu  sync.Mutex
	vvs []crdt.VersionVector
}

func (p *peeredStore) PeerApplied(context.Context) ([]crdt.VersionVector, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]crdt.VersionVector, len(p.vvs))
	for i, v := range p.vvs {
		out[i] = v.Clone()
	}
	return out, nil
}

func (p *peeredStore) set(i int, vv crdt.VersionVector) {
	p.mu.Lock()
	p.vvs[i] = vv
	p.mu.Unlock()
}

func (p *peeredStore) version() crdt.VersionVector {
	var vv crdt.VersionVector
	p.Read(func(ks *crdt.Keyspace) { vv = ks.Version() })
	return vv
}

func TestWaitRegionsCountsPeersHoldingTheWrite(t *testing.T) {
	store := &peeredStore{LocalStore: newTestLocalStore(t), vvs: make([]crdt.VersionVector, 2)}
	_, addr := serveStore(t, store, Options{NoActiveExpiry: true})
	c := dial(t, addr)
	other := dial(t, addr)

	// Nothing written, nothing applied: every peer holds everything.
	c.expect(":2\r\n", "WAITREGIONS", "2", "0")

	c.expect("+OK\r\n", "SET", "k", "v1")
	c.expect(":0\r\n", "WAITREGIONS", "1", "30")
	after1 := store.version()
	store.set(0, after1)
	c.expect(":1\r\n", "WAITREGIONS", "2", "30")
	c.expect(":1\r\n", "WAITREGIONS", "1", "0")

	// Another client's later write is not this connection's: peer 0 still
	// holds this connection's latest write.
	other.expect("+OK\r\n", "SET", "k2", "x")
	c.expect(":1\r\n", "WAITREGIONS", "1", "0")
	// The other client waits for its own write, which no peer has.
	other.expect(":0\r\n", "WAITREGIONS", "1", "30")

	// A new write raises the bar; a peer at the old vector no longer counts.
	c.expect("+OK\r\n", "SET", "k", "v2")
	c.expect(":0\r\n", "WAITREGIONS", "1", "30")
	store.set(1, store.version())
	c.expect(":1\r\n", "WAITREGIONS", "2", "30")

	// A waiting client blocks only itself, and returns as soon as enough
	// peers catch up.
	done := make(chan string, 1)
	go func() { done <- c.do("WAITREGIONS", "2", "0") }()
	other.expect("+PONG\r\n", "PING")
	select {
	case got := <-done:
		t.Fatalf("WAITREGIONS 2 0 returned %q with one peer behind", got)
	default:
	}
	store.set(0, store.version())
	if got := <-done; got != ":2\r\n" {
		t.Fatalf("blocked WAITREGIONS 2 0 = %q, want :2", got)
	}
}

func TestInfoCRDT(t *testing.T) {
	_, addr := startServer(t, Options{NoActiveExpiry: true})
	c := dial(t, addr)
	c.expect("+OK\r\n", "SET", "k", "v")
	c.expect("+OK\r\n", "SELECT", "2")
	c.expect("+OK\r\n", "SET", "k", "v")
	info := c.do("INFO", "crdt")
	for _, want := range []string{"# CRDT", "crdt_conflicts_lww:0", "crdt_list_concurrent_pops:0", "crdt_version_vector:1.1=2", "db0:digest=", "db2:digest="} {
		if !strings.Contains(info, want) {
			t.Fatalf("INFO crdt lacks %q:\n%s", want, info)
		}
	}
	if strings.Contains(c.do("INFO", "all"), "# CRDT") || strings.Contains(c.do("INFO"), "# CRDT") {
		t.Fatal("INFO / INFO all include the crdt section (it walks the keyspace)")
	}
	if !strings.Contains(c.do("INFO", "everything"), "# CRDT") {
		t.Fatal("INFO everything lacks the crdt section")
	}
}
