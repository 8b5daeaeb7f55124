package server

import (
	"context"
	"errors"
	"net"
	"os/exec"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"
)

// TestMultiReplies checks MULTI/EXEC/DISCARD/WATCH replies byte for byte
// against what redis-server 7.0.15 sends, in RESP2 and RESP3. The same
// script runs against a real redis-server when one is installed, so the
// expected bytes are Redis's, not a memory of them.
func TestMultiReplies(t *testing.T) {
	_, addr := startServer(t, Options{NoActiveExpiry: true})
	t.Run("concord", func(t *testing.T) { multiScript(t, addr) })
	if _, err := exec.LookPath("redis-server"); err == nil {
		t.Run("redis", func(t *testing.T) { multiScript(t, startRedis(t)) })
	}
}

func multiScript(t *testing.T, addr string) {
	for _, proto := range []string{"2", "3"} {
		c := dial(t, addr)
		nullArr := "*-1\r\n"
		if proto == "3" {
			c.do("HELLO", "3")
			nullArr = "_\r\n"
		}
		c.expect("-ERR EXEC without MULTI\r\n", "EXEC")
		c.expect("-ERR DISCARD without MULTI\r\n", "DISCARD")
		c.expect("-EXECABORT Transaction discarded because of: wrong number of arguments for 'exec' command\r\n", "EXEC", "x")
		c.expect("+OK\r\n", "MULTI")
		c.expect("-ERR MULTI calls can not be nested\r\n", "MULTI")
		c.expect("-ERR WATCH inside MULTI is not allowed\r\n", "WATCH", "k")
		c.expect("+QUEUED\r\n", "SET", "k", "v")
		c.expect("+QUEUED\r\n", "INCR", "k")
		c.expect("+QUEUED\r\n", "GET", "k")
		c.expect("+QUEUED\r\n", "PING")
		c.expect("+QUEUED\r\n", "SELECT", "2")
		c.expect("+QUEUED\r\n", "SET", "k", "db2")
		c.expect("+QUEUED\r\n", "SELECT", "99")
		c.expect("+QUEUED\r\n", "DBSIZE")
		c.expect("*8\r\n+OK\r\n-ERR value is not an integer or out of range\r\n$1\r\nv\r\n+PONG\r\n+OK\r\n+OK\r\n-ERR DB index is out of range\r\n:1\r\n", "EXEC")
		c.expect("$3\r\ndb2\r\n", "GET", "k") // SELECT inside EXEC stays
		c.expect("+OK\r\n", "SELECT", "0")

		// Queue-time errors flag the transaction.
		c.expect("+OK\r\n", "MULTI")
		c.expect("+QUEUED\r\n", "SET", "a", "1")
		c.expect("-ERR wrong number of arguments for 'get' command\r\n", "GET")
		c.expect("-ERR unknown command 'nosuch', with args beginning with: 'x' \r\n", "nosuch", "x")
		c.expect("-ERR Command not allowed inside a transaction\r\n", "SHUTDOWN")
		c.expect("-EXECABORT Transaction discarded because of previous errors.\r\n", "EXEC")
		c.expect(":0\r\n", "EXISTS", "a")

		// DISCARD, EXEC of an empty queue, EXEC x inside MULTI.
		c.expect("+OK\r\n", "MULTI")
		c.expect("+QUEUED\r\n", "SET", "a", "1")
		c.expect("+OK\r\n", "DISCARD")
		c.expect(":0\r\n", "EXISTS", "a")
		c.expect("+OK\r\n", "MULTI")
		c.expect("*0\r\n", "EXEC")
		c.expect("+OK\r\n", "MULTI")
		c.expect("-EXECABORT Transaction discarded because of: wrong number of arguments for 'exec' command\r\n", "EXEC", "x")
		c.expect("-ERR EXEC without MULTI\r\n", "EXEC")

		// WATCH: the connection's own write aborts, UNWATCH forgets.
		c.expect("+OK\r\n", "WATCH", "w", "w")
		c.expect("+OK\r\n", "SET", "w", "1")
		c.expect("+OK\r\n", "MULTI")
		c.expect("+QUEUED\r\n", "SET", "a", "1")
		c.expect(nullArr, "EXEC")
		c.expect(":0\r\n", "EXISTS", "a")
		c.expect("+OK\r\n", "MULTI")
		c.expect("+QUEUED\r\n", "GET", "w")
		c.expect("*1\r\n$1\r\n1\r\n", "EXEC") // EXEC unwatched w
		c.expect("+OK\r\n", "WATCH", "w")
		c.expect("+OK\r\n", "SET", "w", "2")
		c.expect("+OK\r\n", "UNWATCH")
		c.expect("+OK\r\n", "MULTI")
		c.expect("*0\r\n", "EXEC")
		// Aborted with nothing queued, and RESET clears MULTI and WATCH.
		c.expect("+OK\r\n", "WATCH", "w")
		c.expect(":1\r\n", "DEL", "w")
		c.expect("+OK\r\n", "MULTI")
		c.expect(nullArr, "EXEC")
		c.expect("+OK\r\n", "WATCH", "w")
		c.expect("+OK\r\n", "MULTI")
		c.expect("+QUEUED\r\n", "SET", "w", "x")
		c.do("RESET")
		c.expect("-ERR EXEC without MULTI\r\n", "EXEC")
		c.expect("+OK\r\n", "SET", "w", "y")
		c.expect("+OK\r\n", "MULTI")
		c.expect("*0\r\n", "EXEC")
		c.expect(":1\r\n", "DEL", "w")
		c.do("FLUSHALL")

		// SUBSCRIBE inside EXEC: its confirmation is EXEC's element, and
		// the connection is subscribed afterwards. (RESET above left the
		// connection in RESP2.)
		c.expect("+OK\r\n", "MULTI")
		c.expect("+QUEUED\r\n", "SUBSCRIBE", "ch")
		c.expect("+QUEUED\r\n", "SET", "a", "1")
		c.expect("*2\r\n*3\r\n$9\r\nsubscribe\r\n$2\r\nch\r\n:1\r\n+OK\r\n", "EXEC")
		c.expect("*2\r\n$4\r\npong\r\n$0\r\n\r\n", "PING")
		c.do("RESET")
		c.do("FLUSHALL")

		// Blocking commands inside MULTI run as their non-blocking forms;
		// bad arguments answer in their slot.
		c.expect("+OK\r\n", "MULTI")
		for _, cmd := range [][]string{{"BLPOP", "l", "0"}, {"RPUSH", "l", "a", "b"}, {"BLPOP", "l", "0"}, {"BZPOPMIN", "z", "0"},
			{"BLPOP", "l", "x"}, {"ZADD", "z", "1", "m"}, {"BZPOPMAX", "z", "1"}, {"BLMOVE", "l", "d", "LEFT", "RIGHT", "0"},
			{"BRPOPLPUSH", "nol", "d", "0"}, {"BLMPOP", "0", "1", "l", "LEFT"}} {
			c.expect("+QUEUED\r\n", cmd...)
		}
		c.expect("*10\r\n*-1\r\n:2\r\n*2\r\n$1\r\nl\r\n$1\r\na\r\n*-1\r\n-ERR timeout is not a float or out of range\r\n"+
			":1\r\n*3\r\n$1\r\nz\r\n$1\r\nm\r\n$1\r\n1\r\n$1\r\nb\r\n$-1\r\n*-1\r\n", "EXEC")
		c.do("FLUSHALL")
	}
}

// TestMultiPipelined: a pipeline holding writes, a transaction and reads
// keeps its order.
func TestMultiPipelined(t *testing.T) {
	_, addr := startServer(t, Options{NoActiveExpiry: true})
	c := dial(t, addr)
	c.send(encode("SET", "k", "1") + encode("MULTI") + encode("INCR", "k") + encode("INCR", "k") +
		encode("EXEC") + encode("INCR", "k") + encode("GET", "k"))
	want := []string{"+OK\r\n", "+OK\r\n", "+QUEUED\r\n", "+QUEUED\r\n", "*2\r\n:2\r\n:3\r\n", ":4\r\n", "$1\r\n4\r\n"}
	for i, w := range want {
		if got := c.read(); got != w {
			t.Fatalf("reply %d: %q, want %q", i, got, w)
		}
	}
}

// TestMultiGoRedis: go-redis's TxPipelined and Watch, with another
// connection's write aborting an optimistic transaction.
func TestMultiGoRedis(t *testing.T) {
	for _, proto := range []int{2, 3} {
		_, addr := startServer(t, Options{NoActiveExpiry: true})
		ctx := context.Background()
		rdb := redis.NewClient(&redis.Options{Addr: addr, Protocol: proto})
		other := redis.NewClient(&redis.Options{Addr: addr, Protocol: proto})
		defer rdb.Close()
		defer other.Close()
		cmds, err := rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
			p.Set(ctx, "n", "10", 0)
			p.IncrBy(ctx, "n", 5)
			p.Get(ctx, "n")
			return nil
		})
		if err != nil || len(cmds) != 3 || cmds[2].(*redis.StringCmd).Val() != "15" {
			t.Fatalf("TxPipelined: %v %v", cmds, err)
		}
		incr := func(interfere bool) error {
			return rdb.Watch(ctx, func(tx *redis.Tx) error {
				n, err := tx.Get(ctx, "n").Int()
				if err != nil {
					return err
				}
				if interfere {
					other.Incr(ctx, "n")
				}
				_, err = tx.TxPipelined(ctx, func(p redis.Pipeliner) error {
					p.Set(ctx, "n", n*2, 0)
					return nil
				})
				return err
			}, "n")
		}
		if err := incr(false); err != nil {
			t.Fatal(err)
		}
		if err := incr(true); !errors.Is(err, redis.TxFailedErr) {
			t.Fatalf("interfered WATCH: %v", err)
		}
		if v, _ := rdb.Get(ctx, "n").Result(); v != "31" {
			t.Fatalf("n = %s, want 31 (30 doubled, then +1 by the other client)", v)
		}
		// A runtime error inside EXEC is that command's reply only.
		cmds, err = rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
			p.HSet(ctx, "n", "f", "v")
			p.Incr(ctx, "n")
			return nil
		})
		if err == nil || !strings.HasPrefix(cmds[0].Err().Error(), "WRONGTYPE") || cmds[1].(*redis.IntCmd).Val() != 32 {
			t.Fatalf("runtime error in EXEC: %v %v", cmds, err)
		}
	}
}

// TestMultiStats: commands run by EXEC count in commandstats under their
// own names, as Redis counts them; queueing them does not.
func TestMultiStats(t *testing.T) {
	_, addr := startServer(t, Options{NoActiveExpiry: true})
	c := dial(t, addr)
	c.do("CONFIG", "RESETSTAT")
	c.do("MULTI")
	c.do("SET", "k", "v")
	c.do("INCR", "k")
	c.do("EXEC")
	info := c.do("INFO", "commandstats")
	for _, want := range []string{"cmdstat_set:calls=1,", "cmdstat_incr:calls=1,", "rejected_calls=0,failed_calls=1", "cmdstat_exec:calls=1,", "cmdstat_multi:calls=1,"} {
		if !strings.Contains(info, want) {
			t.Errorf("commandstats lacks %q:\n%s", want, info)
		}
	}
}

// TestMultiRedisCLI runs one transaction script through redis-cli against
// Concord and against redis-server and requires the same output, in RESP2
// and RESP3 and in redis-cli's formatted mode (which shows EXEC's array
// and the null array of an aborted EXEC).
func TestMultiRedisCLI(t *testing.T) {
	cli, err := exec.LookPath("redis-cli")
	if err != nil {
		t.Skip("redis-cli not installed")
	}
	if _, err := exec.LookPath("redis-server"); err != nil {
		t.Skip("redis-server not installed")
	}
	_, addr := startServer(t, Options{NoActiveExpiry: true})
	ref := startRedis(t)
	script := "MULTI\nSET k v\nINCR k\nGET k\nSADD s a b\nSCARD s\nEXEC\n" +
		"WATCH k\nSET k 2\nMULTI\nGET k\nEXEC\nMULTI\nGET\nEXEC\nDISCARD\nFLUSHALL\n"
	run := func(addr string, extra ...string) string {
		host, port, _ := net.SplitHostPort(addr)
		cmd := exec.Command(cli, append([]string{"-h", host, "-p", port}, extra...)...)
		cmd.Stdin = strings.NewReader(script)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("redis-cli: %v\n%s", err, out)
		}
		return string(out)
	}
	for _, extra := range [][]string{{"--no-raw"}, {"--no-raw", "-3"}, {"-3"}} {
		got, want := run(addr, extra...), run(ref, extra...)
		if got != want {
			t.Errorf("redis-cli %v:\n got:\n%s\nwant:\n%s", extra, got, want)
		}
	}
}

// TestMultiClientList: CLIENT LIST shows a transaction in progress as Redis
// does (flag x, multi= the number queued), also to commands EXEC runs.
func TestMultiClientList(t *testing.T) {
	_, addr := startServer(t, Options{NoActiveExpiry: true})
	c := dial(t, addr)
	if got := c.do("CLIENT", "INFO"); !strings.Contains(got, " flags=N ") || !strings.Contains(got, " multi=-1 ") {
		t.Fatalf("outside MULTI: %q", got)
	}
	c.do("MULTI")
	c.do("SET", "a", "1")
	c.do("CLIENT", "INFO")
	got := c.do("EXEC")
	if !strings.Contains(got, " flags=x ") || !strings.Contains(got, " multi=2 ") {
		t.Fatalf("inside EXEC: %q", got)
	}
	if got := c.do("CLIENT", "INFO"); !strings.Contains(got, " flags=N ") || !strings.Contains(got, " multi=-1 ") {
		t.Fatalf("after EXEC: %q", got)
	}
}
