package server

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"concord/crdt"
)

// TestActiveExpiry: keys whose TTL passed are removed by the sweep without
// anyone touching them; DBSIZE (which, as in Redis, counts expired keys
// until they are removed) drops to the keys without a TTL.
func TestActiveExpiry(t *testing.T) {
	if !hasCommands("set", "dbsize", expireCmd) {
		t.Skip("needs SET, DBSIZE and " + expireCmd + " from the crdt engine (not merged yet)")
	}
	if _, ok := any(crdt.NewKeyspace(crdt.Origin{}, crdt.Options{})).(expiredSampler); !ok {
		t.Skip("crdt.Keyspace has no SampleExpired yet")
	}
	_, addr := startServer(t, Options{})
	c := dial(t, addr)
	for i := 0; i < 200; i++ {
		c.expect("+OK\r\n", "SET", fmt.Sprintf("k%d", i), "v", "PX", "50")
	}
	for i := 0; i < 5; i++ {
		c.expect("+OK\r\n", "SELECT", "3")
		c.expect("+OK\r\n", "SET", fmt.Sprintf("db3:%d", i), "v", "PX", "50")
		c.expect("+OK\r\n", "SELECT", "0")
	}
	c.expect("+OK\r\n", "SET", "keep", "v")
	deadline := time.Now().Add(10 * time.Second)
	for c.do("DBSIZE") != ":1\r\n" {
		if time.Now().After(deadline) {
			t.Fatalf("DBSIZE still %q 10s after the keys expired", c.do("DBSIZE"))
		}
		time.Sleep(20 * time.Millisecond)
	}
	for !strings.Contains(c.do("INFO", "keyspace"), "db0:keys=1,expires=0\r\n") {
		if time.Now().After(deadline) {
			t.Fatalf("INFO keyspace = %q", c.do("INFO", "keyspace"))
		}
		time.Sleep(20 * time.Millisecond)
	}
	if info := c.do("INFO", "stats"); !strings.Contains(info, "\r\nexpired_keys:205\r\n") {
		t.Errorf("INFO stats: %q", info)
	}
}
