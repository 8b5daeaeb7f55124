package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// TestRegionCrashRecovery runs a three-node region as real processes with
// the default fsync durability and kills them with SIGKILL while clients
// write to all three: first the leader, three times (the others keep
// acknowledging writes, and it rejoins when restarted), then every node at
// once. After
// the restart every acknowledged SET must be present with its value, and
// the counter must hold every acknowledged INCR and no more than those plus
// the ones whose outcome the clients never learned.
func TestRegionCrashRecovery(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary and runs a region")
	}
	dir := t.TempDir()
	ids := []string{"n1", "n2", "n3"}
	// Fixed ports, so that a restarted node is where its peers and the
	// clients expect it.
	raftAddr, respAddr := map[string]string{}, map[string]string{}
	var peers []string
	for _, id := range ids {
		raftAddr[id], respAddr[id] = freeAddr(t), freeAddr(t)
		peers = append(peers, id+"="+raftAddr[id])
	}
	procs := map[string]*proc{}
	start := func(id string) {
		procs[id] = startProc(t, "--addr", respAddr[id], "--node-id", id, "--data-dir", filepath.Join(dir, id),
			"--raft-addr", raftAddr[id], "--peers", strings.Join(peers, ","))
	}
	logs := func() string {
		var b strings.Builder
		for _, id := range ids {
			fmt.Fprintf(&b, "--- %s\n%s", id, procs[id].stderr)
		}
		return b.String()
	}
	kill := func(id string) {
		procs[id].cmd.Process.Kill()
		procs[id].cmd.Wait() // "signal: killed"
	}
	for _, id := range ids {
		start(id)
	}
	for _, id := range ids {
		waitReady(t, respAddr[id])
	}

	led := newLedger()
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for _, id := range ids {
		for w := 0; w < 2; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				writeLoop(ctx, respAddr[id], fmt.Sprintf("%s.%d", id, w), led)
			}()
		}
	}
	stopWriters := func() { cancel(); wg.Wait() }
	t.Cleanup(stopWriters) // idempotent: cancel and wait are safe twice

	// progress waits until the clients have n more acknowledged writes
	// (through node id, if not empty) than when it was called.
	progress := func(what, id string, n int) {
		t.Helper()
		base := led.ackedVia(id)
		deadline := time.Now().Add(45 * time.Second)
		for led.ackedVia(id) < base+n {
			if time.Now().After(deadline) {
				t.Fatalf("%s: fewer than %d writes acknowledged in 45s (%s)\n%s", what, n, led.summary(), logs())
			}
			time.Sleep(20 * time.Millisecond)
		}
	}

	progress("before any crash", "", 200)
	// Each leader killed has writes in flight; some of its log's tail was
	// never committed, and the node must drop it when it rejoins.
	for round := 0; round < 3; round++ {
		leader := findLeader(t, ids, respAddr)
		kill(leader)
		progress("after killing leader "+leader, "", 200)
		start(leader)
		waitReady(t, respAddr[leader])
		progress("through the restarted "+leader, leader, 50)
	}

	// Every node at once: nothing acknowledged may depend on a node that
	// outlived the others.
	for _, id := range ids {
		procs[id].cmd.Process.Kill()
	}
	for _, id := range ids {
		procs[id].cmd.Wait()
	}
	stopWriters()
	for _, id := range ids {
		start(id)
	}
	for _, id := range ids {
		waitReady(t, respAddr[id])
	}
	t.Logf("writes: %s", led.summary())

	for _, id := range ids {
		led.verify(t, id, respAddr[id], logs)
	}
}

// findLeader asks each node's INFO replication until one says it is the
// master.
func findLeader(t *testing.T, ids []string, addr map[string]string) string {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		for _, id := range ids {
			c, err := dialRESP(addr[id], "", 2*time.Second)
			if err != nil {
				continue
			}
			r, err := c.do("INFO", "replication")
			c.Close()
			if err == nil && infoFields(r.str)["role"] == "master" {
				return id
			}
		}
		if time.Now().After(deadline) {
			t.Fatal("no leader after 30s")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// ledger records what the clients were told. A write is acknowledged (a
// reply), rejected (TRYAGAIN, or no connection) or in doubt (any other
// error, a connection broken after the command was sent included: it may
// have been applied).
type ledger struct {
	mu          sync.Mutex
	sets        map[string]string // acknowledged SETs: key -> value
	doubtSets   map[string]string // SETs that may or may not have been applied
	incrs       int               // acknowledged INCRs
	doubtIncrs  int
	rejected    int
	perNode     map[string]int // acknowledged writes by the node the client used
	total       int
	errs        map[string]int // error texts (first 60 bytes) and how often
	lastCounter int64          // largest INCR reply seen
}

func newLedger() *ledger {
	return &ledger{sets: map[string]string{}, doubtSets: map[string]string{}, perNode: map[string]int{}, errs: map[string]int{}}
}

// counterKey is the key every client increments.
const counterKey = "crash:counter"

// writeLoop alternates unique-key SETs and INCRs of the counter on node
// addr until ctx ends. Retries are the loop's own, so each attempt is
// recorded with the outcome the client saw.
func writeLoop(ctx context.Context, addr, name string, led *ledger) {
	node, _, _ := strings.Cut(name, ".")
	c := redis.NewClient(&redis.Options{
		Addr:          addr,
		Protocol:      2,
		MaxRetries:    -1,
		DialerRetries: 1,
		DialTimeout:   2 * time.Second,
		// Longer than the region's 10 s wait for an in-doubt write, so
		// the client hears the region's verdict rather than its own
		// timeout.
		ReadTimeout:  15 * time.Second,
		WriteTimeout: 5 * time.Second,
		PoolSize:     1,
	})
	defer c.Close()
	for i := 0; ctx.Err() == nil; i++ {
		var err error
		if i%2 == 0 {
			key := fmt.Sprintf("crash:%s:%d", name, i)
			val := "v" + strconv.Itoa(i)
			err = c.Set(ctx, key, val, 0).Err()
			led.set(node, key, val, err)
		} else {
			var n int64
			n, err = c.Incr(ctx, counterKey).Result()
			led.incr(node, n, err)
		}
		if err != nil && ctx.Err() == nil {
			// A dead node refuses connections at once; don't spin.
			time.Sleep(20 * time.Millisecond)
		}
	}
}

// outcome classifies a client error: rejected means provably not applied,
// because the region said so (TRYAGAIN) or the command was never sent (the
// connection could not be made).
func outcome(err error) (acked, rejected bool) {
	var (
		rerr redis.Error
		oerr *net.OpError
	)
	switch {
	case err == nil:
		return true, false
	case errors.As(err, &rerr) && strings.HasPrefix(rerr.Error(), "TRYAGAIN "):
		return false, true
	case errors.As(err, &oerr) && oerr.Op == "dial":
		return false, true
	}
	return false, false
}

func (l *ledger) note(node string, err error) (acked, rejected bool) {
	acked, rejected = outcome(err)
	l.total++
	switch {
	case acked:
		l.perNode[node]++
		l.perNode[""]++
	case rejected:
		l.rejected++
		fallthrough
	default:
		msg := err.Error()
		if len(msg) > 60 {
			msg = msg[:60]
		}
		l.errs[msg]++
	}
	return acked, rejected
}

func (l *ledger) set(node, key, val string, err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	switch acked, rejected := l.note(node, err); {
	case acked:
		l.sets[key] = val
	case !rejected:
		l.doubtSets[key] = val
	}
}

func (l *ledger) incr(node string, n int64, err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	switch acked, rejected := l.note(node, err); {
	case acked:
		l.incrs++
		l.lastCounter = max(l.lastCounter, n)
	case !rejected:
		l.doubtIncrs++
	}
}

// ackedVia counts acknowledged writes sent to node id ("" for all nodes).
func (l *ledger) ackedVia(id string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.perNode[id]
}

func (l *ledger) summary() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var errs []string
	for msg, n := range l.errs {
		errs = append(errs, fmt.Sprintf("%d× %q", n, msg))
	}
	sort.Strings(errs)
	return fmt.Sprintf("%d attempted; acknowledged %d SETs, %d INCRs; in doubt %d SETs, %d INCRs; %d rejected (TRYAGAIN or not connected); errors: %s",
		l.total, len(l.sets), l.incrs, len(l.doubtSets), l.doubtIncrs, l.rejected, strings.Join(errs, ", "))
}

// verify checks node addr's (linearizable) view against the ledger.
func (l *ledger) verify(t *testing.T, id, addr string, logs func() string) {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	c := redis.NewClient(&redis.Options{Addr: addr, Protocol: 2, ReadTimeout: 15 * time.Second})
	defer c.Close()
	ctx := context.Background()

	keys := make([]string, 0, len(l.sets))
	for k := range l.sets {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	missing := 0
	for lo := 0; lo < len(keys); lo += 500 {
		batch := keys[lo:min(lo+500, len(keys))]
		vals, err := c.MGet(ctx, batch...).Result()
		if err != nil {
			t.Fatalf("%s: MGET: %v\n%s", id, err, logs())
		}
		for i, v := range vals {
			if s, _ := v.(string); s != l.sets[batch[i]] {
				if missing++; missing <= 5 {
					t.Errorf("%s: acknowledged %s = %q, found %v", id, batch[i], l.sets[batch[i]], v)
				}
			}
		}
	}
	if missing > 0 {
		t.Errorf("%s: %d of %d acknowledged SETs lost or wrong", id, missing, len(keys))
	}
	for k, want := range l.doubtSets {
		if v, err := c.Get(ctx, k).Result(); err == nil && v != want {
			t.Errorf("%s: in-doubt %s = %q, want %q or absent", id, k, v, want)
		}
	}
	n, err := c.Get(ctx, counterKey).Int64()
	if err != nil {
		t.Fatalf("%s: GET %s: %v", id, counterKey, err)
	}
	if n < int64(l.incrs) || n < l.lastCounter || n > int64(l.incrs+l.doubtIncrs) {
		t.Errorf("%s: counter %d; want at least %d acknowledged INCRs (largest reply %d), at most %d with the in-doubt ones",
			id, n, l.incrs, l.lastCounter, l.incrs+l.doubtIncrs)
	}
	// Nothing appears that no client wrote: the acknowledged and in-doubt
	// SETs' keys and the counter bound the key count.
	size, err := c.DBSize(ctx).Result()
	if err != nil {
		t.Fatalf("%s: DBSIZE: %v", id, err)
	}
	if size < int64(len(l.sets)+1) || size > int64(len(l.sets)+len(l.doubtSets)+1) {
		t.Errorf("%s: DBSIZE %d, want between %d and %d", id, size, len(l.sets)+1, len(l.sets)+len(l.doubtSets)+1)
	}
}
