package server

import (
	"context"
	"fmt"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// waitBlockedInfo polls INFO clients on c until n clients are blocked; it
// works against redis-server too.
func waitBlockedInfo(t *testing.T, c *rawConn, n int) {
	t.Helper()
	want := fmt.Sprintf("blocked_clients:%d\r\n", n)
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(c.do("INFO", "clients"), want) {
		if time.Now().After(deadline) {
			t.Fatalf("never %q", want)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// xreadBlockScript drives XREAD BLOCK through raw connections and returns
// the transcript of every reply, so that Concord's can be compared with
// redis-server's byte for byte.
func xreadBlockScript(t *testing.T, addr, proto string) []string {
	var out []string
	conn := func() *rawConn {
		c := dial(t, addr)
		c.do("HELLO", proto)
		return c
	}
	w, c1, c2 := conn(), conn(), conn()
	do := func(c *rawConn, args ...string) { out = append(out, strings.Join(args, " ")+" -> "+c.do(args...)) }
	send := func(c *rawConn, args ...string) { c.send(encode(args...)) }
	recv := func(c *rawConn, what string) { out = append(out, what+" => "+c.read()) }
	id := func(c *rawConn) string {
		return strings.TrimSuffix(strings.TrimPrefix(c.do("CLIENT", "ID"), ":"), "\r\n")
	}

	do(w, "FLUSHALL")
	// Errors, in Redis's order, and the immediate cases.
	for _, cmd := range []string{
		"XREAD BLOCK -1 STREAMS s 0", "XREAD BLOCK abc STREAMS s 0", "XREAD BLOCK 1.5 STREAMS s 0",
		"XREAD COUNT x BLOCK 10 STREAMS s 0", "XREAD BLOCK 10 STREAMS s", "XREAD BLOCK 10 STREAMS s >",
		"XREAD BLOCK 10 STREAMS s 1-x", "XREAD BLOCK 10 COUNT 1", "XREAD BLOCK 10 BLOCK 10 STREAMS s 0",
		"XREAD BLOCK 30 STREAMS s $", "XREAD BLOCK 30 COUNT 2 STREAMS s t 0 $",
		"SET str x", "XREAD BLOCK 10 STREAMS s str 0 0", "XREAD BLOCK 10 STREAMS str s 0 0",
		"XADD s 1-1 f v", "XADD s 1-2 g w", "XREAD BLOCK 0 STREAMS s 0", "XREAD COUNT 1 BLOCK 0 STREAMS s t 0 0",
		"XREAD BLOCK 20 STREAMS s 1-2", "XREAD BLOCK 20 STREAMS s $",
		"COMMAND GETKEYS XREAD BLOCK 0 STREAMS a b 0 0", "COMMAND INFO xread",
	} {
		do(w, strings.Fields(cmd)...)
	}

	// Woken by another client's XADD; "$" is the last ID when it blocked.
	send(c1, "XREAD", "BLOCK", "0", "STREAMS", "s", "$")
	waitBlockedInfo(t, w, 1)
	do(w, "XADD", "s", "2-1", "a", "1")
	recv(c1, "block on $, XADD")

	// Two clients on one stream are both served by one XADD (a read);
	// COUNT applies to each.
	send(c1, "XREAD", "BLOCK", "0", "STREAMS", "s", "$")
	send(c2, "XREAD", "COUNT", "1", "BLOCK", "0", "STREAMS", "s", "2-1")
	waitBlockedInfo(t, w, 2)
	do(w, "MULTI")
	do(w, "XADD", "s", "3-1", "b", "1")
	do(w, "XADD", "s", "3-2", "b", "2")
	do(w, "EXEC")
	recv(c1, "two clients, first")
	recv(c2, "two clients, second with COUNT 1")
	do(w, "XLEN", "s")

	// Several streams: the one that gets an entry answers.
	send(c1, "XREAD", "BLOCK", "0", "STREAMS", "s", "t", "$", "$")
	waitBlockedInfo(t, w, 1)
	do(w, "XADD", "t", "1-1", "x", "y")
	recv(c1, "multi-key, t gets data")
	// Both get entries in one transaction: Redis 7.0 answers with the
	// stream served first.
	send(c1, "XREAD", "BLOCK", "0", "STREAMS", "s", "t", "$", "$")
	waitBlockedInfo(t, w, 1)
	do(w, "MULTI")
	do(w, "XADD", "t", "2-1", "x", "y")
	do(w, "XADD", "s", "4-1", "x", "y")
	do(w, "EXEC")
	recv(c1, "multi-key, both in one EXEC")

	// An entry added and deleted in one transaction: Redis 7.0 wakes the
	// client (the last-generated ID passed its ID) with no entry.
	send(c1, "XREAD", "BLOCK", "0", "STREAMS", "s", "$")
	waitBlockedInfo(t, w, 1)
	do(w, "MULTI")
	do(w, "XADD", "s", "5-1", "gone", "1")
	do(w, "XDEL", "s", "5-1")
	do(w, "EXEC")
	recv(c1, "added and deleted")

	// An entry below the client's ID does not wake it; one above does.
	send(c1, "XREAD", "BLOCK", "0", "STREAMS", "s", "100-0")
	waitBlockedInfo(t, w, 1)
	do(w, "XADD", "s", "50-1", "low", "1")
	do(w, "PING")
	waitBlockedInfo(t, w, 1)
	do(w, "XADD", "s", "200-1", "high", "1")
	recv(c1, "below then above the ID")

	// A key of another type leaves the client blocked; a stream wakes it.
	send(c1, "XREAD", "BLOCK", "0", "STREAMS", "k", "$")
	waitBlockedInfo(t, w, 1)
	do(w, "SET", "k", "str")
	do(w, "DEL", "k")
	waitBlockedInfo(t, w, 1)
	do(w, "XADD", "k", "1-1", "f", "v")
	recv(c1, "wrong type, then a stream")

	// Timeout.
	start := time.Now()
	do(c1, "XREAD", "BLOCK", "60", "STREAMS", "s", "$")
	if took := time.Since(start); took < 60*time.Millisecond {
		t.Errorf("XREAD BLOCK 60 returned after %v", took)
	}

	// CLIENT UNBLOCK: the timeout reply, then the error.
	cid := id(c1)
	send(c1, "XREAD", "BLOCK", "0", "STREAMS", "s", "$")
	waitBlockedInfo(t, w, 1)
	unblock := func(args ...string) {
		out = append(out, "CLIENT UNBLOCK id "+strings.Join(args, " ")+" -> "+w.do(append([]string{"CLIENT", "UNBLOCK", cid}, args...)...))
	}
	unblock()
	recv(c1, "CLIENT UNBLOCK")
	send(c1, "XREAD", "BLOCK", "10000", "STREAMS", "s", "$")
	waitBlockedInfo(t, w, 1)
	if info := w.do("INFO", "clients"); !strings.Contains(info, "clients_in_timeout_table:1\r\n") {
		t.Errorf("INFO clients while blocked with a timeout:\n%s", info)
	}
	if list := w.do("CLIENT", "LIST"); !strings.Contains(list, "id="+cid+" ") || !strings.Contains(list, "flags=b ") || !strings.Contains(list, "cmd=xread") {
		t.Errorf("CLIENT LIST:\n%s", list)
	}
	unblock("ERROR")
	recv(c1, "CLIENT UNBLOCK ERROR")
	unblock()

	// Inside MULTI, XREAD BLOCK does not wait.
	do(c1, "MULTI")
	do(c1, "XREAD", "BLOCK", "0", "STREAMS", "s", "$")
	do(c1, "XREAD", "BLOCK", "0", "STREAMS", "s", "199-0")
	do(c1, "XREAD", "BLOCK", "-1", "STREAMS", "s", "$")
	do(c1, "EXEC")
	// In a script neither.
	do(c1, "EVAL", "return redis.call('XREAD','BLOCK','0','STREAMS','s','$')", "0")
	do(c1, "EVAL", "return redis.pcall('xread','COUNT','1','block','0','STREAMS','s','$')", "0")
	do(c1, "EVAL", "return redis.call('xread','COUNT','x','block','0','STREAMS','s','$')", "0")
	do(c1, "EVAL", "return redis.call('xread','COUNT','1','STREAMS','s','0')", "0")
	do(c1, "EVAL", "redis.setresp(3); return redis.call('xread','COUNT','1','STREAMS','s','0')", "0")

	// Pipelined input waits behind the blocked XREAD.
	c1.send(encode("XREAD", "BLOCK", "0", "STREAMS", "s", "$") + encode("PING"))
	waitBlockedInfo(t, w, 1)
	do(w, "XADD", "s", "300-1", "p", "1")
	recv(c1, "pipelined XREAD")
	recv(c1, "pipelined PING")

	// A disconnected client leaves at once.
	send(c2, "XREAD", "BLOCK", "0", "STREAMS", "s", "$")
	waitBlockedInfo(t, w, 1)
	c2.nc.Close()
	waitBlockedInfo(t, w, 0)
	return out
}

// TestXReadBlockScript runs the script against Concord and redis-server
// (RESP2 and RESP3) and requires identical transcripts.
func TestXReadBlockScript(t *testing.T) {
	if _, err := exec.LookPath("redis-server"); err != nil {
		t.Skip("redis-server not installed")
	}
	_, addr := startServer(t, Options{NoActiveExpiry: true})
	ref := startRedis(t)
	for _, proto := range []string{"2", "3"} {
		t.Run("resp"+proto, func(t *testing.T) {
			got, want := xreadBlockScript(t, addr, proto), xreadBlockScript(t, ref, proto)
			for i := 0; i < len(got) || i < len(want); i++ {
				var g, w string
				if i < len(got) {
					g = got[i]
				}
				if i < len(want) {
					w = want[i]
				}
				if g != w {
					t.Errorf("step %d:\n got %q\nwant %q", i, g, w)
				}
			}
		})
	}
}

// TestXReadBlockGoRedis: go-redis's XRead with Block is woken by XAdd from
// another client, all blocked readers get the entry, and a timeout gives
// redis.Nil, in RESP2 and RESP3.
func TestXReadBlockGoRedis(t *testing.T) {
	for _, proto := range []int{2, 3} {
		t.Run(fmt.Sprintf("resp%d", proto), func(t *testing.T) {
			srv, addr := startServer(t, Options{NoActiveExpiry: true})
			ctx := context.Background()
			rdb := redis.NewClient(&redis.Options{Addr: addr, Protocol: proto, PoolSize: 8})
			defer rdb.Close()
			type res struct {
				s   []redis.XStream
				err error
			}
			got := make(chan res, 3)
			for i := 0; i < 3; i++ {
				go func() {
					s, err := rdb.XRead(ctx, &redis.XReadArgs{Streams: []string{"a", "st", "$", "$"}, Block: 0}).Result()
					got <- res{s, err}
				}()
			}
			waitBlocked(t, srv, 3)
			if err := rdb.XAdd(ctx, &redis.XAddArgs{Stream: "st", ID: "7-1", Values: []string{"f", "v"}}).Err(); err != nil {
				t.Fatal(err)
			}
			for i := 0; i < 3; i++ {
				r := <-got
				if r.err != nil {
					t.Fatal(r.err)
				}
				if len(r.s) != 1 || r.s[0].Stream != "st" || len(r.s[0].Messages) != 1 ||
					r.s[0].Messages[0].ID != "7-1" || r.s[0].Messages[0].Values["f"] != "v" {
					t.Fatalf("XREAD = %+v", r.s)
				}
			}
			waitBlocked(t, srv, 0)
			start := time.Now()
			_, err := rdb.XRead(ctx, &redis.XReadArgs{Streams: []string{"st", "$"}, Block: 80 * time.Millisecond}).Result()
			if err != redis.Nil || time.Since(start) < 80*time.Millisecond {
				t.Fatalf("timeout: %v after %v", err, time.Since(start))
			}
			// No pop was proposed for the readers.
			if st := srv.blk.stats.served.Load() + srv.blk.stats.raced.Load(); st != 0 {
				t.Errorf("XREAD counted as %d pops", st)
			}
		})
	}
}
