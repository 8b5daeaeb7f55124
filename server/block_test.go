package server

import (
	"bytes"
	"context"
	"errors"
	"net"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"concord/crdt"
)

// blockingReplies are the replies of redis-server 7.0.15 to blocking
// commands that do not block (bad arguments, data present, short
// timeouts), ZMPOP, CLIENT UNBLOCK and their COMMAND entries, recorded
// byte for byte in one session per protocol.
var blockingReplies = map[int][]struct{ cmd, want string }{
	2: {
		{"FLUSHALL", "+OK\r\n"},
		{"BZPOPMIN k 0.01", "*-1\r\n"},
		{"BZPOPMIN k -1", "-ERR timeout is negative\r\n"},
		{"BZPOPMIN k abc", "-ERR timeout is not a float or out of range\r\n"},
		{"BZPOPMIN k inf", "-ERR timeout is negative\r\n"},
		{"BZPOPMIN k nan", "-ERR timeout is not a float or out of range\r\n"},
		{"BZPOPMIN k -0.0015", "-ERR timeout is negative\r\n"},
		{"BZPOPMIN k 1e400", "-ERR timeout is negative\r\n"},
		{"BZPOPMIN k 0x", "-ERR timeout is not a float or out of range\r\n"},
		{"BZPOPMIN k 1e-400", "*-1\r\n"},
		{"BZPOPMIN k 0.0001", "*-1\r\n"},
		{"BZPOPMAX k 0.001", "*-1\r\n"},
		{"ZADD z 1 a 2 b 3 c", ":3\r\n"},
		{"BZPOPMIN k z 0", "*3\r\n$1\r\nz\r\n$1\r\na\r\n$1\r\n1\r\n"},
		{"BZPOPMAX k z 0", "*3\r\n$1\r\nz\r\n$1\r\nc\r\n$1\r\n3\r\n"},
		{"SET s x", "+OK\r\n"},
		{"BZPOPMIN k s 0", "-WRONGTYPE Operation against a key holding the wrong kind of value\r\n"},
		{"BZPOPMIN z s 0", "*3\r\n$1\r\nz\r\n$1\r\nb\r\n$1\r\n2\r\n"},
		{"BZPOPMIN z 0.01", "*-1\r\n"},
		{"BZMPOP abc 0 k MIN", "-ERR numkeys should be greater than 0\r\n"},
		{"BZMPOP abc 1 k FOO", "-ERR syntax error\r\n"},
		{"BZMPOP abc 2 k MIN", "-ERR syntax error\r\n"},
		{"BZMPOP -1 1 k MIN COUNT 0", "-ERR count should be greater than 0\r\n"},
		{"BZMPOP -1 1 k MIN COUNT 1 COUNT 1", "-ERR syntax error\r\n"},
		{"BZMPOP abc 1 s MIN", "-ERR timeout is not a float or out of range\r\n"},
		{"BZMPOP 0.01 1 s MIN", "-WRONGTYPE Operation against a key holding the wrong kind of value\r\n"},
		{"ZADD z 1 a 2 b 3 c", ":3\r\n"},
		{"BZMPOP 0 2 k z max COUNT 2", "*2\r\n$1\r\nz\r\n*2\r\n*2\r\n$1\r\nc\r\n$1\r\n3\r\n*2\r\n$1\r\nb\r\n$1\r\n2\r\n"},
		{"BZMPOP 0.01 1 k MIN", "*-1\r\n"},
		{"BZMPOP 0 1 z MIN", "*2\r\n$1\r\nz\r\n*1\r\n*2\r\n$1\r\na\r\n$1\r\n1\r\n"},
		{"ZADD z 1 a 2 b 3 c", ":3\r\n"},
		{"ZMPOP 1 z MIN COUNT 10", "*2\r\n$1\r\nz\r\n*3\r\n*2\r\n$1\r\na\r\n$1\r\n1\r\n*2\r\n$1\r\nb\r\n$1\r\n2\r\n*2\r\n$1\r\nc\r\n$1\r\n3\r\n"},
		{"ZMPOP 1 z MIN", "*-1\r\n"},
		{"ZMPOP 0 z MIN", "-ERR numkeys should be greater than 0\r\n"},
		{"ZMPOP -1 z MIN", "-ERR numkeys should be greater than 0\r\n"},
		{"ZMPOP 2 z MIN", "-ERR syntax error\r\n"},
		{"ZMPOP 1 z MIN COUNT", "-ERR syntax error\r\n"},
		{"ZMPOP 1 z MIN COUNT 0", "-ERR count should be greater than 0\r\n"},
		{"ZMPOP 1 z MIN COUNT -5", "-ERR count should be greater than 0\r\n"},
		{"ZMPOP 1 s MIN", "-WRONGTYPE Operation against a key holding the wrong kind of value\r\n"},
		{"ZMPOP 1 z max count 1 count 1", "-ERR syntax error\r\n"},
		{"ZMPOP 1 z middle", "-ERR syntax error\r\n"},
		{"ZMPOP 99999999999999999999 z min", "-ERR numkeys should be greater than 0\r\n"},
		{"ZADD z 1 a 2 b 3 c", ":3\r\n"},
		{"ZMPOP 3 k s z MAX", "-WRONGTYPE Operation against a key holding the wrong kind of value\r\n"},
		{"ZMPOP 2 z s min count 5", "*2\r\n$1\r\nz\r\n*3\r\n*2\r\n$1\r\na\r\n$1\r\n1\r\n*2\r\n$1\r\nb\r\n$1\r\n2\r\n*2\r\n$1\r\nc\r\n$1\r\n3\r\n"},
		{"EXISTS z", ":0\r\n"},
		{"BZPOPMIN", "-ERR wrong number of arguments for 'bzpopmin' command\r\n"},
		{"BZPOPMIN k", "-ERR wrong number of arguments for 'bzpopmin' command\r\n"},
		{"BZMPOP 0 1 k", "-ERR wrong number of arguments for 'bzmpop' command\r\n"},
		{"ZMPOP 1 z", "-ERR wrong number of arguments for 'zmpop' command\r\n"},
		{"CLIENT UNBLOCK 99999", ":0\r\n"},
		{"CLIENT UNBLOCK 1 foo", "-ERR CLIENT UNBLOCK reason should be TIMEOUT or ERROR\r\n"},
		{"CLIENT UNBLOCK abc", "-ERR value is not an integer or out of range\r\n"},
		{"CLIENT UNBLOCK abc foo", "-ERR CLIENT UNBLOCK reason should be TIMEOUT or ERROR\r\n"},
		{"CLIENT UNBLOCK 1 timeout", ":0\r\n"},
		{"CLIENT UNBLOCK 1 ERROR", ":0\r\n"},
		{"CLIENT UNBLOCK 1 ERROR x", "-ERR unknown subcommand or wrong number of arguments for 'UNBLOCK'. Try CLIENT HELP.\r\n"},
		{"CLIENT UNBLOCK", "-ERR wrong number of arguments for 'client|unblock' command\r\n"},
		{"COMMAND GETKEYS bzmpop 0 2 a b MIN", "*2\r\n$1\r\na\r\n$1\r\nb\r\n"},
		{"COMMAND GETKEYS bzpopmin a b c 0", "*3\r\n$1\r\na\r\n$1\r\nb\r\n$1\r\nc\r\n"},
		{"COMMAND GETKEYS zmpop 2 a b MIN", "*2\r\n$1\r\na\r\n$1\r\nb\r\n"},
		{"COMMAND INFO bzpopmin bzpopmax bzmpop zmpop client|unblock", "*5\r\n*10\r\n$8\r\nbzpopmin\r\n:-3\r\n*4\r\n+write\r\n+noscript\r\n+blocking\r\n+fast\r\n:1\r\n:-2\r\n:1\r\n*4\r\n+@write\r\n+@sortedset\r\n+@fast\r\n+@blocking\r\n*0\r\n*1\r\n*6\r\n$5\r\nflags\r\n*3\r\n+RW\r\n+access\r\n+delete\r\n$12\r\nbegin_search\r\n*4\r\n$4\r\ntype\r\n$5\r\nindex\r\n$4\r\nspec\r\n*2\r\n$5\r\nindex\r\n:1\r\n$9\r\nfind_keys\r\n*4\r\n$4\r\ntype\r\n$5\r\nrange\r\n$4\r\nspec\r\n*6\r\n$7\r\nlastkey\r\n:-2\r\n$7\r\nkeystep\r\n:1\r\n$5\r\nlimit\r\n:0\r\n*0\r\n*10\r\n$8\r\nbzpopmax\r\n:-3\r\n*4\r\n+write\r\n+noscript\r\n+blocking\r\n+fast\r\n:1\r\n:-2\r\n:1\r\n*4\r\n+@write\r\n+@sortedset\r\n+@fast\r\n+@blocking\r\n*0\r\n*1\r\n*6\r\n$5\r\nflags\r\n*3\r\n+RW\r\n+access\r\n+delete\r\n$12\r\nbegin_search\r\n*4\r\n$4\r\ntype\r\n$5\r\nindex\r\n$4\r\nspec\r\n*2\r\n$5\r\nindex\r\n:1\r\n$9\r\nfind_keys\r\n*4\r\n$4\r\ntype\r\n$5\r\nrange\r\n$4\r\nspec\r\n*6\r\n$7\r\nlastkey\r\n:-2\r\n$7\r\nkeystep\r\n:1\r\n$5\r\nlimit\r\n:0\r\n*0\r\n*10\r\n$6\r\nbzmpop\r\n:-5\r\n*3\r\n+write\r\n+blocking\r\n+movablekeys\r\n:0\r\n:0\r\n:0\r\n*4\r\n+@write\r\n+@sortedset\r\n+@slow\r\n+@blocking\r\n*0\r\n*1\r\n*6\r\n$5\r\nflags\r\n*3\r\n+RW\r\n+access\r\n+delete\r\n$12\r\nbegin_search\r\n*4\r\n$4\r\ntype\r\n$5\r\nindex\r\n$4\r\nspec\r\n*2\r\n$5\r\nindex\r\n:2\r\n$9\r\nfind_keys\r\n*4\r\n$4\r\ntype\r\n$6\r\nkeynum\r\n$4\r\nspec\r\n*6\r\n$9\r\nkeynumidx\r\n:0\r\n$8\r\nfirstkey\r\n:1\r\n$7\r\nkeystep\r\n:1\r\n*0\r\n*10\r\n$5\r\nzmpop\r\n:-4\r\n*2\r\n+write\r\n+movablekeys\r\n:0\r\n:0\r\n:0\r\n*3\r\n+@write\r\n+@sortedset\r\n+@slow\r\n*0\r\n*1\r\n*6\r\n$5\r\nflags\r\n*3\r\n+RW\r\n+access\r\n+delete\r\n$12\r\nbegin_search\r\n*4\r\n$4\r\ntype\r\n$5\r\nindex\r\n$4\r\nspec\r\n*2\r\n$5\r\nindex\r\n:1\r\n$9\r\nfind_keys\r\n*4\r\n$4\r\ntype\r\n$6\r\nkeynum\r\n$4\r\nspec\r\n*6\r\n$9\r\nkeynumidx\r\n:0\r\n$8\r\nfirstkey\r\n:1\r\n$7\r\nkeystep\r\n:1\r\n*0\r\n*10\r\n$14\r\nclient|unblock\r\n:-3\r\n*4\r\n+admin\r\n+noscript\r\n+loading\r\n+stale\r\n:0\r\n:0\r\n:0\r\n*4\r\n+@admin\r\n+@slow\r\n+@dangerous\r\n+@connection\r\n*0\r\n*0\r\n*0\r\n"},
	},
	3: {
		{"FLUSHALL", "+OK\r\n"},
		{"BZPOPMIN k 0.01", "_\r\n"},
		{"BZPOPMIN k -1", "-ERR timeout is negative\r\n"},
		{"BZPOPMIN k abc", "-ERR timeout is not a float or out of range\r\n"},
		{"BZPOPMIN k inf", "-ERR timeout is negative\r\n"},
		{"BZPOPMIN k nan", "-ERR timeout is not a float or out of range\r\n"},
		{"BZPOPMIN k -0.0015", "-ERR timeout is negative\r\n"},
		{"BZPOPMIN k 1e400", "-ERR timeout is negative\r\n"},
		{"BZPOPMIN k 0x", "-ERR timeout is not a float or out of range\r\n"},
		{"BZPOPMIN k 1e-400", "_\r\n"},
		{"BZPOPMIN k 0.0001", "_\r\n"},
		{"BZPOPMAX k 0.001", "_\r\n"},
		{"ZADD z 1 a 2 b 3 c", ":3\r\n"},
		{"BZPOPMIN k z 0", "*3\r\n$1\r\nz\r\n$1\r\na\r\n,1\r\n"},
		{"BZPOPMAX k z 0", "*3\r\n$1\r\nz\r\n$1\r\nc\r\n,3\r\n"},
		{"SET s x", "+OK\r\n"},
		{"BZPOPMIN k s 0", "-WRONGTYPE Operation against a key holding the wrong kind of value\r\n"},
		{"BZPOPMIN z s 0", "*3\r\n$1\r\nz\r\n$1\r\nb\r\n,2\r\n"},
		{"BZPOPMIN z 0.01", "_\r\n"},
		{"BZMPOP abc 0 k MIN", "-ERR numkeys should be greater than 0\r\n"},
		{"BZMPOP abc 1 k FOO", "-ERR syntax error\r\n"},
		{"BZMPOP abc 2 k MIN", "-ERR syntax error\r\n"},
		{"BZMPOP -1 1 k MIN COUNT 0", "-ERR count should be greater than 0\r\n"},
		{"BZMPOP -1 1 k MIN COUNT 1 COUNT 1", "-ERR syntax error\r\n"},
		{"BZMPOP abc 1 s MIN", "-ERR timeout is not a float or out of range\r\n"},
		{"BZMPOP 0.01 1 s MIN", "-WRONGTYPE Operation against a key holding the wrong kind of value\r\n"},
		{"ZADD z 1 a 2 b 3 c", ":3\r\n"},
		{"BZMPOP 0 2 k z max COUNT 2", "*2\r\n$1\r\nz\r\n*2\r\n*2\r\n$1\r\nc\r\n,3\r\n*2\r\n$1\r\nb\r\n,2\r\n"},
		{"BZMPOP 0.01 1 k MIN", "_\r\n"},
		{"BZMPOP 0 1 z MIN", "*2\r\n$1\r\nz\r\n*1\r\n*2\r\n$1\r\na\r\n,1\r\n"},
		{"ZADD z 1 a 2 b 3 c", ":3\r\n"},
		{"ZMPOP 1 z MIN COUNT 10", "*2\r\n$1\r\nz\r\n*3\r\n*2\r\n$1\r\na\r\n,1\r\n*2\r\n$1\r\nb\r\n,2\r\n*2\r\n$1\r\nc\r\n,3\r\n"},
		{"ZMPOP 1 z MIN", "_\r\n"},
		{"ZMPOP 0 z MIN", "-ERR numkeys should be greater than 0\r\n"},
		{"ZMPOP -1 z MIN", "-ERR numkeys should be greater than 0\r\n"},
		{"ZMPOP 2 z MIN", "-ERR syntax error\r\n"},
		{"ZMPOP 1 z MIN COUNT", "-ERR syntax error\r\n"},
		{"ZMPOP 1 z MIN COUNT 0", "-ERR count should be greater than 0\r\n"},
		{"ZMPOP 1 z MIN COUNT -5", "-ERR count should be greater than 0\r\n"},
		{"ZMPOP 1 s MIN", "-WRONGTYPE Operation against a key holding the wrong kind of value\r\n"},
		{"ZMPOP 1 z max count 1 count 1", "-ERR syntax error\r\n"},
		{"ZMPOP 1 z middle", "-ERR syntax error\r\n"},
		{"ZMPOP 99999999999999999999 z min", "-ERR numkeys should be greater than 0\r\n"},
		{"ZADD z 1 a 2 b 3 c", ":3\r\n"},
		{"ZMPOP 3 k s z MAX", "-WRONGTYPE Operation against a key holding the wrong kind of value\r\n"},
		{"ZMPOP 2 z s min count 5", "*2\r\n$1\r\nz\r\n*3\r\n*2\r\n$1\r\na\r\n,1\r\n*2\r\n$1\r\nb\r\n,2\r\n*2\r\n$1\r\nc\r\n,3\r\n"},
		{"EXISTS z", ":0\r\n"},
		{"BZPOPMIN", "-ERR wrong number of arguments for 'bzpopmin' command\r\n"},
		{"BZPOPMIN k", "-ERR wrong number of arguments for 'bzpopmin' command\r\n"},
		{"BZMPOP 0 1 k", "-ERR wrong number of arguments for 'bzmpop' command\r\n"},
		{"ZMPOP 1 z", "-ERR wrong number of arguments for 'zmpop' command\r\n"},
		{"CLIENT UNBLOCK 99999", ":0\r\n"},
		{"CLIENT UNBLOCK 1 foo", "-ERR CLIENT UNBLOCK reason should be TIMEOUT or ERROR\r\n"},
		{"CLIENT UNBLOCK abc", "-ERR value is not an integer or out of range\r\n"},
		{"CLIENT UNBLOCK abc foo", "-ERR CLIENT UNBLOCK reason should be TIMEOUT or ERROR\r\n"},
		{"CLIENT UNBLOCK 1 timeout", ":0\r\n"},
		{"CLIENT UNBLOCK 1 ERROR", ":0\r\n"},
		{"CLIENT UNBLOCK 1 ERROR x", "-ERR unknown subcommand or wrong number of arguments for 'UNBLOCK'. Try CLIENT HELP.\r\n"},
		{"CLIENT UNBLOCK", "-ERR wrong number of arguments for 'client|unblock' command\r\n"},
		{"COMMAND GETKEYS bzmpop 0 2 a b MIN", "*2\r\n$1\r\na\r\n$1\r\nb\r\n"},
		{"COMMAND GETKEYS bzpopmin a b c 0", "*3\r\n$1\r\na\r\n$1\r\nb\r\n$1\r\nc\r\n"},
		{"COMMAND GETKEYS zmpop 2 a b MIN", "*2\r\n$1\r\na\r\n$1\r\nb\r\n"},
		{"COMMAND INFO bzpopmin bzpopmax bzmpop zmpop client|unblock", "*5\r\n*10\r\n$8\r\nbzpopmin\r\n:-3\r\n~4\r\n+write\r\n+noscript\r\n+blocking\r\n+fast\r\n:1\r\n:-2\r\n:1\r\n~4\r\n+@write\r\n+@sortedset\r\n+@fast\r\n+@blocking\r\n~0\r\n~1\r\n%3\r\n$5\r\nflags\r\n~3\r\n+RW\r\n+access\r\n+delete\r\n$12\r\nbegin_search\r\n%2\r\n$4\r\ntype\r\n$5\r\nindex\r\n$4\r\nspec\r\n%1\r\n$5\r\nindex\r\n:1\r\n$9\r\nfind_keys\r\n%2\r\n$4\r\ntype\r\n$5\r\nrange\r\n$4\r\nspec\r\n%3\r\n$7\r\nlastkey\r\n:-2\r\n$7\r\nkeystep\r\n:1\r\n$5\r\nlimit\r\n:0\r\n~0\r\n*10\r\n$8\r\nbzpopmax\r\n:-3\r\n~4\r\n+write\r\n+noscript\r\n+blocking\r\n+fast\r\n:1\r\n:-2\r\n:1\r\n~4\r\n+@write\r\n+@sortedset\r\n+@fast\r\n+@blocking\r\n~0\r\n~1\r\n%3\r\n$5\r\nflags\r\n~3\r\n+RW\r\n+access\r\n+delete\r\n$12\r\nbegin_search\r\n%2\r\n$4\r\ntype\r\n$5\r\nindex\r\n$4\r\nspec\r\n%1\r\n$5\r\nindex\r\n:1\r\n$9\r\nfind_keys\r\n%2\r\n$4\r\ntype\r\n$5\r\nrange\r\n$4\r\nspec\r\n%3\r\n$7\r\nlastkey\r\n:-2\r\n$7\r\nkeystep\r\n:1\r\n$5\r\nlimit\r\n:0\r\n~0\r\n*10\r\n$6\r\nbzmpop\r\n:-5\r\n~3\r\n+write\r\n+blocking\r\n+movablekeys\r\n:0\r\n:0\r\n:0\r\n~4\r\n+@write\r\n+@sortedset\r\n+@slow\r\n+@blocking\r\n~0\r\n~1\r\n%3\r\n$5\r\nflags\r\n~3\r\n+RW\r\n+access\r\n+delete\r\n$12\r\nbegin_search\r\n%2\r\n$4\r\ntype\r\n$5\r\nindex\r\n$4\r\nspec\r\n%1\r\n$5\r\nindex\r\n:2\r\n$9\r\nfind_keys\r\n%2\r\n$4\r\ntype\r\n$6\r\nkeynum\r\n$4\r\nspec\r\n%3\r\n$9\r\nkeynumidx\r\n:0\r\n$8\r\nfirstkey\r\n:1\r\n$7\r\nkeystep\r\n:1\r\n~0\r\n*10\r\n$5\r\nzmpop\r\n:-4\r\n~2\r\n+write\r\n+movablekeys\r\n:0\r\n:0\r\n:0\r\n~3\r\n+@write\r\n+@sortedset\r\n+@slow\r\n~0\r\n~1\r\n%3\r\n$5\r\nflags\r\n~3\r\n+RW\r\n+access\r\n+delete\r\n$12\r\nbegin_search\r\n%2\r\n$4\r\ntype\r\n$5\r\nindex\r\n$4\r\nspec\r\n%1\r\n$5\r\nindex\r\n:1\r\n$9\r\nfind_keys\r\n%2\r\n$4\r\ntype\r\n$6\r\nkeynum\r\n$4\r\nspec\r\n%3\r\n$9\r\nkeynumidx\r\n:0\r\n$8\r\nfirstkey\r\n:1\r\n$7\r\nkeystep\r\n:1\r\n~0\r\n*10\r\n$14\r\nclient|unblock\r\n:-3\r\n~4\r\n+admin\r\n+noscript\r\n+loading\r\n+stale\r\n:0\r\n:0\r\n:0\r\n~4\r\n+@admin\r\n+@slow\r\n+@dangerous\r\n+@connection\r\n~0\r\n~0\r\n~0\r\n"},
	},
}

// TestBlockingReplies replays the recorded sessions.
func TestBlockingReplies(t *testing.T) {
	for _, proto := range []int{2, 3} {
		t.Run(map[int]string{2: "resp2", 3: "resp3"}[proto], func(t *testing.T) {
			_, addr := startServer(t, Options{NoActiveExpiry: true})
			c := dial(t, addr)
			c.do("HELLO", map[int]string{2: "2", 3: "3"}[proto])
			for _, step := range blockingReplies[proto] {
				c.expect(step.want, strings.Fields(step.cmd)...)
			}
			// COMMAND DOCS carries only the group (server/doc.go).
			if d := c.do("COMMAND", "DOCS", "bzpopmin", "blpop"); !strings.Contains(d, "$5\r\ngroup\r\n$10\r\nsorted-set\r\n") {
				t.Errorf("COMMAND DOCS bzpopmin: %q", d)
			}
		})
	}
}

// waitBlocked polls INFO until the server has n blocked clients.
func waitBlocked(t *testing.T, srv *Server, n int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		if got, _ := srv.blk.counts(); got == n {
			return
		}
		if time.Now().After(deadline) {
			got, _ := srv.blk.counts()
			t.Fatalf("%d blocked clients, want %d", got, n)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// TestBlockWokenByWrite: go-redis blocks on BZPOPMIN and another client's
// ZADD wakes it, in RESP2 and RESP3.
func TestBlockWokenByWrite(t *testing.T) {
	for _, proto := range []int{2, 3} {
		t.Run(map[int]string{2: "resp2", 3: "resp3"}[proto], func(t *testing.T) {
			srv, addr := startServer(t, Options{NoActiveExpiry: true})
			ctx := context.Background()
			rdb := redis.NewClient(&redis.Options{Addr: addr, Protocol: proto})
			defer rdb.Close()
			got := make(chan *redis.ZWithKey, 1)
			errc := make(chan error, 1)
			go func() {
				z, err := rdb.BZPopMin(ctx, 0, "q").Result()
				errc <- err
				got <- z
			}()
			waitBlocked(t, srv, 1)
			if err := rdb.ZAdd(ctx, "q", redis.Z{Score: 2.5, Member: "m"}).Err(); err != nil {
				t.Fatal(err)
			}
			if err := <-errc; err != nil {
				t.Fatal(err)
			}
			if z := <-got; z.Key != "q" || z.Member != "m" || z.Score != 2.5 {
				t.Fatalf("BZPOPMIN = %+v", z)
			}
			if n, err := rdb.Exists(ctx, "q").Result(); err != nil || n != 0 {
				t.Fatalf("EXISTS q = %d, %v: the pop did not remove it", n, err)
			}
			// BZMPOP, woken with several members: COUNT of them, lowest first.
			res := make(chan []redis.Z, 1)
			go func() {
				_, zs, err := rdb.BZMPop(ctx, 0, "min", 2, "q").Result()
				errc <- err
				res <- zs
			}()
			waitBlocked(t, srv, 1)
			rdb.ZAdd(ctx, "q", redis.Z{Score: 3, Member: "c"}, redis.Z{Score: 1, Member: "a"}, redis.Z{Score: 2, Member: "b"})
			if err := <-errc; err != nil {
				t.Fatal(err)
			}
			if zs := <-res; len(zs) != 2 || zs[0].Member != "a" || zs[1].Member != "b" {
				t.Fatalf("BZMPOP = %v", zs)
			}
			if n, _ := rdb.ZCard(ctx, "q").Result(); n != 1 {
				t.Fatalf("ZCARD after BZMPOP COUNT 2 = %d, want 1", n)
			}
		})
	}
}

// TestBlockTimeout: a fractional timeout ends the wait with a null array
// (RESP2 *-1, RESP3 _), not earlier than asked.
func TestBlockTimeout(t *testing.T) {
	_, addr := startServer(t, Options{NoActiveExpiry: true})
	c := dial(t, addr)
	for _, tc := range []struct{ proto, want string }{{"2", "*-1\r\n"}, {"3", "_\r\n"}} {
		c.do("HELLO", tc.proto)
		for _, cmd := range [][]string{{"BZPOPMIN", "k", "0.15"}, {"BZMPOP", "0.15", "1", "k", "MAX"}} {
			start := time.Now()
			c.expect(tc.want, cmd...)
			if took := time.Since(start); took < 150*time.Millisecond {
				t.Errorf("%q returned after %v", cmd, took)
			}
		}
	}
}

// TestBlockFIFO: clients blocked on one key are served in the order they
// blocked, one element each; the one left over stays blocked.
func TestBlockFIFO(t *testing.T) {
	srv, addr := startServer(t, Options{NoActiveExpiry: true})
	w := dial(t, addr)
	var cs []*rawConn
	for i := 0; i < 3; i++ {
		c := dial(t, addr)
		c.send(encode("BZPOPMIN", "k", "0"))
		waitBlocked(t, srv, i+1)
		cs = append(cs, c)
	}
	w.expect(":2\r\n", "ZADD", "k", "1", "a", "2", "b")
	cs[0].expectReply("*3\r\n$1\r\nk\r\n$1\r\na\r\n$1\r\n1\r\n")
	cs[1].expectReply("*3\r\n$1\r\nk\r\n$1\r\nb\r\n$1\r\n2\r\n")
	waitBlocked(t, srv, 1)
	w.expect(":0\r\n", "EXISTS", "k")
	w.expect(":1\r\n", "ZADD", "k", "3", "c")
	cs[2].expectReply("*3\r\n$1\r\nk\r\n$1\r\nc\r\n$1\r\n3\r\n")
	waitBlocked(t, srv, 0)
	// Three pops proposed for blocked clients, none in vain: the third
	// client was not tried while the key was empty.
	if st := w.do("INFO", "stats"); !strings.Contains(st, "blocked_pops_served:3\r\nblocked_pops_raced:0\r\nblocked_pops_lost:0\r\n") {
		t.Errorf("INFO stats:\n%s", st)
	}
}

// expectReply reads the next reply (after send) and checks it.
func (c *rawConn) expectReply(want string) {
	c.t.Helper()
	if got := c.read(); got != want {
		c.t.Errorf("got %q, want %q", got, want)
	}
}

// TestBlockMultiKey: a client blocked on several keys is served from the
// one that gets data, once; its other keys are left alone afterwards.
// Pipelined commands sent while it is blocked run after it is served.
func TestBlockMultiKey(t *testing.T) {
	srv, addr := startServer(t, Options{NoActiveExpiry: true})
	w := dial(t, addr)
	c := dial(t, addr)
	c.send(encode("BZPOPMAX", "k1", "k2", "k1", "0") + encode("PING"))
	waitBlocked(t, srv, 1)
	w.expect(":1\r\n", "ZADD", "k2", "5", "x")
	c.expectReply("*3\r\n$2\r\nk2\r\n$1\r\nx\r\n$1\r\n5\r\n")
	c.expectReply("+PONG\r\n")
	w.expect(":1\r\n", "ZADD", "k1", "1", "y")
	w.expect(":1\r\n", "ZCARD", "k1")
	waitBlocked(t, srv, 0)
}

// TestBlockWrongTypeWait: a key that comes to hold another type leaves the
// client blocked (Redis 7.0); it is served once the key is a sorted set.
func TestBlockWrongTypeWait(t *testing.T) {
	srv, addr := startServer(t, Options{NoActiveExpiry: true})
	w := dial(t, addr)
	c := dial(t, addr)
	c.send(encode("BZPOPMIN", "k", "0"))
	waitBlocked(t, srv, 1)
	w.expect("+OK\r\n", "SET", "k", "str")
	w.expect(":1\r\n", "DEL", "k")
	w.expect(":1\r\n", "ZADD", "k", "1", "m")
	c.expectReply("*3\r\n$1\r\nk\r\n$1\r\nm\r\n$1\r\n1\r\n")
}

// TestBlockDB: the pop runs in the blocked client's database, and writes
// to the same key in another database do not wake it.
func TestBlockDB(t *testing.T) {
	srv, addr := startServer(t, Options{NoActiveExpiry: true})
	w := dial(t, addr)
	c := dial(t, addr)
	c.expect("+OK\r\n", "SELECT", "3")
	c.send(encode("BZPOPMIN", "k", "0"))
	waitBlocked(t, srv, 1)
	w.expect(":1\r\n", "ZADD", "k", "1", "db0")
	w.expect("+OK\r\n", "SELECT", "3")
	w.expect(":1\r\n", "ZADD", "k", "1", "db3")
	c.expectReply("*3\r\n$1\r\nk\r\n$3\r\ndb3\r\n$1\r\n1\r\n")
	w.expect(":0\r\n", "EXISTS", "k")
	w.expect("+OK\r\n", "SELECT", "0")
	w.expect(":1\r\n", "ZCARD", "k")
}

// TestClientUnblock: CLIENT UNBLOCK ends the wait with the timeout reply
// or the UNBLOCKED error; CLIENT LIST shows the flag b and INFO the
// figures while a client is blocked.
func TestClientUnblock(t *testing.T) {
	srv, addr := startServer(t, Options{NoActiveExpiry: true})
	w := dial(t, addr)
	c := dial(t, addr)
	id := strings.TrimSuffix(strings.TrimPrefix(c.do("CLIENT", "ID"), ":"), "\r\n")
	c.send(encode("BZPOPMIN", "k", "100"))
	waitBlocked(t, srv, 1)
	list := w.do("CLIENT", "LIST")
	if !strings.Contains(list, "id="+id+" ") || !strings.Contains(list, "flags=b db=0") || !strings.Contains(list, "cmd=bzpopmin") {
		t.Errorf("CLIENT LIST:\n%s", list)
	}
	info := w.do("INFO", "clients")
	if !strings.Contains(info, "blocked_clients:1\r\n") || !strings.Contains(info, "clients_in_timeout_table:1\r\n") {
		t.Errorf("INFO clients:\n%s", info)
	}
	w.expect(":1\r\n", "CLIENT", "UNBLOCK", id)
	c.expectReply("*-1\r\n")
	w.expect(":0\r\n", "CLIENT", "UNBLOCK", id)

	c.send(encode("BZMPOP", "0", "1", "k", "MIN"))
	waitBlocked(t, srv, 1)
	info = w.do("INFO", "clients")
	if !strings.Contains(info, "blocked_clients:1\r\n") || !strings.Contains(info, "clients_in_timeout_table:0\r\n") {
		t.Errorf("INFO clients:\n%s", info)
	}
	w.expect(":1\r\n", "CLIENT", "UNBLOCK", id, "ERROR")
	c.expectReply("-UNBLOCKED client unblocked via CLIENT UNBLOCK\r\n")
	waitBlocked(t, srv, 0)
	if list := w.do("CLIENT", "LIST"); strings.Contains(list, "flags=b") {
		t.Errorf("CLIENT LIST after unblock:\n%s", list)
	}
	// The connection goes on serving.
	c.expect("+PONG\r\n", "PING")
}

// TestBlockDisconnect: a blocked client whose connection closes is
// unblocked at once, and later data stays for others.
func TestBlockDisconnect(t *testing.T) {
	srv, addr := startServer(t, Options{NoActiveExpiry: true})
	w := dial(t, addr)
	c := dial(t, addr)
	c.send(encode("BZPOPMIN", "k", "0"))
	waitBlocked(t, srv, 1)
	c.nc.Close()
	waitBlocked(t, srv, 0)
	w.expect(":1\r\n", "ZADD", "k", "1", "m")
	w.expect(":1\r\n", "ZCARD", "k")
	// CLIENT KILL of a blocked client does the same.
	k := dial(t, addr)
	id := strings.TrimSuffix(strings.TrimPrefix(k.do("CLIENT", "ID"), ":"), "\r\n")
	k.send(encode("BZPOPMIN", "other", "0"))
	waitBlocked(t, srv, 1)
	w.expect(":1\r\n", "CLIENT", "KILL", "ID", id)
	waitBlocked(t, srv, 0)
}

// TestBlockRaceStaysBlocked drives the blocker against a concurrent
// consumer: every element pushed is popped exactly once, by a blocked
// client or by ZPOPMIN, and no blocked client gets an empty reply.
func TestBlockRaceStaysBlocked(t *testing.T) {
	srv, addr := startServer(t, Options{NoActiveExpiry: true})
	ctx := context.Background()
	rdb := redis.NewClient(&redis.Options{Addr: addr, PoolSize: 16})
	defer rdb.Close()
	const n = 200
	var mu sync.Mutex
	seen := map[string]int{}
	var wg sync.WaitGroup
	for i := 0; i < 4; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				z, err := rdb.BZPopMin(ctx, 2*time.Second, "q").Result()
				if errors.Is(err, redis.Nil) {
					return
				}
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				seen[z.Member.(string)]++
				mu.Unlock()
			}
		}()
	}
	waitBlocked(t, srv, 4)
	for i := 0; i < n; i++ {
		m := "m" + itoa(int64(i))
		rdb.ZAdd(ctx, "q", redis.Z{Score: float64(i), Member: m})
		if i%3 == 0 {
			for _, z := range rdb.ZPopMin(ctx, "q").Val() {
				mu.Lock()
				seen[z.Member.(string)]++
				mu.Unlock()
			}
		}
	}
	wg.Wait()
	for _, z := range rdb.ZPopMin(ctx, "q", n).Val() {
		seen[z.Member.(string)]++
	}
	for i := 0; i < n; i++ {
		if m := "m" + itoa(int64(i)); seen[m] != 1 {
			t.Errorf("%s popped %d times", m, seen[m])
		}
	}
}

// TestBlockingMultiForm: the MULTI hook turns each blocking command into
// its non-blocking form with the blocking reply shape, and reports bad
// arguments as EXEC would.
func TestBlockingMultiForm(t *testing.T) {
	ks := crdt.NewKeyspace(crdt.Origin{Region: 1, Incarnation: 1}, crdt.Options{Solo: true})
	run := func(spec *blockSpec, args ...string) crdt.Reply {
		a := make([][]byte, len(args))
		for i, s := range args {
			a[i] = []byte(s)
		}
		unit, reply, errR := spec.multiForm(a)
		if unit == nil {
			return errR
		}
		rs, _ := ks.Apply(crdt.Stamp{Time: ks.LastTime() + 1}, []crdt.Command{{Args: unit}})
		return reply(rs[0])
	}
	bzpopmin := popSpec("zmpop", "zset", "MIN")
	if r := run(bzpopmin, "bzpopmin", "k", "0"); r.Kind != crdt.KindNilArray {
		t.Errorf("empty: %+v", r)
	}
	if r := run(bzpopmin, "bzpopmin", "k", "-1"); string(r.Str) != "ERR timeout is negative" {
		t.Errorf("negative timeout: %+v", r)
	}
	ks.Apply(crdt.Stamp{Time: ks.LastTime() + 1}, []crdt.Command{{Args: [][]byte{[]byte("zadd"), []byte("z"), []byte("1"), []byte("a")}}})
	r := run(bzpopmin, "bzpopmin", "k", "z", "0")
	if len(r.Elems) != 3 || string(r.Elems[0].Str) != "z" || string(r.Elems[1].Str) != "a" || r.Elems[2].Float != 1 {
		t.Errorf("data: %+v", r)
	}
}

// TestBlockRedisCLI: redis-cli blocks on BZPOPMIN until another client's
// ZADD, and prints what redis-cli prints against redis-server 7.0.15.
func TestBlockRedisCLI(t *testing.T) {
	cli, err := exec.LookPath("redis-cli")
	if err != nil {
		t.Skip("redis-cli not installed (Debian: apt-get install redis-tools)")
	}
	srv, addr := startServer(t, Options{NoActiveExpiry: true})
	host, port, _ := net.SplitHostPort(addr)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"BZPOPMIN", "cli", "0"}, "cli\nm\n1.5\n"},
		{[]string{"-3", "BZPOPMIN", "cli", "0"}, "cli\nm\n1.5\n"},
		{[]string{"--no-raw", "BZMPOP", "0", "1", "cli", "MIN"}, "1) \"cli\"\n2) 1) 1) \"m\"\n      2) \"1.5\"\n"},
		{[]string{"--no-raw", "-3", "BZMPOP", "0", "1", "cli", "MIN"}, "1) \"cli\"\n2) 1) 1) \"m\"\n      2) (double) 1.5\n"},
	} {
		cmd := exec.Command(cli, append([]string{"-h", host, "-p", port}, tc.args...)...)
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		waitBlocked(t, srv, 1)
		dial(t, addr).expect(":1\r\n", "ZADD", "cli", "1.5", "m")
		if err := cmd.Wait(); err != nil {
			t.Fatalf("redis-cli: %v\n%s", err, out.String())
		}
		if out.String() != tc.want {
			t.Errorf("redis-cli %q printed %q, want %q", tc.args, out.String(), tc.want)
		}
	}
}

// blockingListReplies are redis-server 7.0.15's replies to the list forms
// that do not block, recorded as blockingReplies are.
var blockingListReplies = map[int][]struct{ cmd, want string }{
	2: {
		{"FLUSHALL", "+OK\r\n"},
		{"BLPOP l 0.01", "*-1\r\n"},
		{"BLPOP l -1", "-ERR timeout is negative\r\n"},
		{"BRPOP l x", "-ERR timeout is not a float or out of range\r\n"},
		{"RPUSH l a b c", ":3\r\n"},
		{"BLPOP x l 0", "*2\r\n$1\r\nl\r\n$1\r\na\r\n"},
		{"BRPOP x l 0", "*2\r\n$1\r\nl\r\n$1\r\nc\r\n"},
		{"BLMOVE l d LEFT RIGHT 0", "$1\r\nb\r\n"},
		{"BLMOVE l d LEFT RIGHT 0.01", "*-1\r\n"},
		{"BLMOVE l d FOO RIGHT abc", "-ERR syntax error\r\n"},
		{"BLMOVE l d LEFT RIGHT abc", "-ERR timeout is not a float or out of range\r\n"},
		{"BRPOPLPUSH d l 0", "$1\r\nb\r\n"},
		{"BRPOPLPUSH d l 0.01", "*-1\r\n"},
		{"BRPOPLPUSH d l -5", "-ERR timeout is negative\r\n"},
		{"BLMPOP 0 2 x l LEFT COUNT 5", "*2\r\n$1\r\nl\r\n*1\r\n$1\r\nb\r\n"},
		{"BLMPOP 0.01 1 l RIGHT", "*-1\r\n"},
		{"BLMPOP abc 0 l LEFT", "-ERR numkeys should be greater than 0\r\n"},
		{"BLMPOP abc 1 l MIDDLE", "-ERR syntax error\r\n"},
		{"SET s x", "+OK\r\n"},
		{"BLPOP s 0", "-WRONGTYPE Operation against a key holding the wrong kind of value\r\n"},
		{"BLMOVE s d LEFT LEFT 0", "-WRONGTYPE Operation against a key holding the wrong kind of value\r\n"},
		{"RPUSH l z", ":1\r\n"},
		{"BLMOVE l s LEFT LEFT 0", "-WRONGTYPE Operation against a key holding the wrong kind of value\r\n"},
		{"COMMAND GETKEYS blmpop 0 2 a b LEFT", "*2\r\n$1\r\na\r\n$1\r\nb\r\n"},
		{"COMMAND GETKEYS blpop a b 0", "*2\r\n$1\r\na\r\n$1\r\nb\r\n"},
		{"COMMAND GETKEYS blmove a b LEFT LEFT 0", "*2\r\n$1\r\na\r\n$1\r\nb\r\n"},
	},
	3: {
		{"FLUSHALL", "+OK\r\n"},
		{"BLPOP l 0.01", "_\r\n"},
		{"BLPOP l -1", "-ERR timeout is negative\r\n"},
		{"BRPOP l x", "-ERR timeout is not a float or out of range\r\n"},
		{"RPUSH l a b c", ":3\r\n"},
		{"BLPOP x l 0", "*2\r\n$1\r\nl\r\n$1\r\na\r\n"},
		{"BRPOP x l 0", "*2\r\n$1\r\nl\r\n$1\r\nc\r\n"},
		{"BLMOVE l d LEFT RIGHT 0", "$1\r\nb\r\n"},
		{"BLMOVE l d LEFT RIGHT 0.01", "_\r\n"},
		{"BLMOVE l d FOO RIGHT abc", "-ERR syntax error\r\n"},
		{"BLMOVE l d LEFT RIGHT abc", "-ERR timeout is not a float or out of range\r\n"},
		{"BRPOPLPUSH d l 0", "$1\r\nb\r\n"},
		{"BRPOPLPUSH d l 0.01", "_\r\n"},
		{"BRPOPLPUSH d l -5", "-ERR timeout is negative\r\n"},
		{"BLMPOP 0 2 x l LEFT COUNT 5", "*2\r\n$1\r\nl\r\n*1\r\n$1\r\nb\r\n"},
		{"BLMPOP 0.01 1 l RIGHT", "_\r\n"},
		{"BLMPOP abc 0 l LEFT", "-ERR numkeys should be greater than 0\r\n"},
		{"BLMPOP abc 1 l MIDDLE", "-ERR syntax error\r\n"},
		{"SET s x", "+OK\r\n"},
		{"BLPOP s 0", "-WRONGTYPE Operation against a key holding the wrong kind of value\r\n"},
		{"BLMOVE s d LEFT LEFT 0", "-WRONGTYPE Operation against a key holding the wrong kind of value\r\n"},
		{"RPUSH l z", ":1\r\n"},
		{"BLMOVE l s LEFT LEFT 0", "-WRONGTYPE Operation against a key holding the wrong kind of value\r\n"},
		{"COMMAND GETKEYS blmpop 0 2 a b LEFT", "*2\r\n$1\r\na\r\n$1\r\nb\r\n"},
		{"COMMAND GETKEYS blpop a b 0", "*2\r\n$1\r\na\r\n$1\r\nb\r\n"},
		{"COMMAND GETKEYS blmove a b LEFT LEFT 0", "*2\r\n$1\r\na\r\n$1\r\nb\r\n"},
	},
}

// TestBlockingListReplies replays them once the engine has lists (the
// list forms register only then).
func TestBlockingListReplies(t *testing.T) {
	if !hasCommands("lmpop", "lmove", "rpush") {
		t.Skip("lists not merged yet: the list blocking commands are not registered")
	}
	for _, proto := range []int{2, 3} {
		t.Run(map[int]string{2: "resp2", 3: "resp3"}[proto], func(t *testing.T) {
			_, addr := startServer(t, Options{NoActiveExpiry: true})
			c := dial(t, addr)
			c.do("HELLO", map[int]string{2: "2", 3: "3"}[proto])
			for _, step := range blockingListReplies[proto] {
				c.expect(step.want, strings.Fields(step.cmd)...)
			}
		})
	}
}

// TestBlockListsWoken: BLPOP, BRPOP, BLMPOP, BLMOVE and BRPOPLPUSH wait
// for a push from another client, and BLMOVE's push wakes a client
// blocked on its destination.
func TestBlockListsWoken(t *testing.T) {
	if !hasCommands("lmpop", "lmove", "rpush") {
		t.Skip("lists not merged yet: the list blocking commands are not registered")
	}
	srv, addr := startServer(t, Options{NoActiveExpiry: true})
	w := dial(t, addr)
	for _, tc := range []struct {
		cmd  []string
		want string
	}{
		{[]string{"BLPOP", "x", "l", "0"}, "*2\r\n$1\r\nl\r\n$1\r\na\r\n"},
		{[]string{"BRPOP", "l", "0"}, "*2\r\n$1\r\nl\r\n$1\r\nb\r\n"},
		{[]string{"BLMPOP", "0", "1", "l", "RIGHT", "COUNT", "3"}, "*2\r\n$1\r\nl\r\n*2\r\n$1\r\nb\r\n$1\r\na\r\n"},
		{[]string{"BLMOVE", "l", "d", "RIGHT", "LEFT", "0"}, "$1\r\nb\r\n"},
		{[]string{"BRPOPLPUSH", "l", "d", "0"}, "$1\r\nb\r\n"},
	} {
		w.do("DEL", "l", "d")
		c := dial(t, addr)
		c.send(encode(tc.cmd...))
		waitBlocked(t, srv, 1)
		w.do("RPUSH", "l", "a", "b")
		c.expectReply(tc.want)
		waitBlocked(t, srv, 0)
	}
	// A chain: a client blocked on d is woken by BLMOVE's push to d.
	w.do("DEL", "l", "d")
	mover, popper := dial(t, addr), dial(t, addr)
	popper.send(encode("BLPOP", "d", "0"))
	waitBlocked(t, srv, 1)
	mover.send(encode("BLMOVE", "l", "d", "LEFT", "LEFT", "0"))
	waitBlocked(t, srv, 2)
	w.do("RPUSH", "l", "v")
	mover.expectReply("$1\r\nv\r\n")
	popper.expectReply("*2\r\n$1\r\nd\r\n$1\r\nv\r\n")
	waitBlocked(t, srv, 0)
}
