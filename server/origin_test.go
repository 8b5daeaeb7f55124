package server

import (
	"strings"
	"sync"
	"testing"

	"concord/crdt"
)

// originStore is a region store that reports its origin, which changes at
// run time (a region takes or renews its incarnation).
type originStore struct {
	*regionStore
	mu sync.Mutex
	o  crdt.Origin
}

func (s *originStore) Origin() crdt.Origin {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.o
}

func (s *originStore) set(o crdt.Origin) {
	s.mu.Lock()
	s.o = o
	s.mu.Unlock()
}

// TestInfoReportsStoreOrigin: INFO shows the origin the store reports, as
// it is now, not the configured one.
func TestInfoReportsStoreOrigin(t *testing.T) {
	store := &originStore{regionStore: newRegionStore(t), o: crdt.Origin{Region: 3, Incarnation: 190000000}}
	_, addr := serveStore(t, store, Options{NoActiveExpiry: true, Origin: crdt.Origin{Region: 3, Incarnation: 2}})
	c := dial(t, addr)
	if info := c.do("INFO", "replication"); !strings.Contains(info, "\r\nconcord_region:3\r\nconcord_incarnation:190000000\r\n") {
		t.Fatalf("INFO does not show the store's origin:\n%s", info)
	}
	store.set(crdt.Origin{Region: 3, Incarnation: 190000001})
	if info := c.do("INFO", "replication"); !strings.Contains(info, "\r\nconcord_incarnation:190000001\r\n") {
		t.Fatalf("INFO does not follow a renewal:\n%s", info)
	}
}
