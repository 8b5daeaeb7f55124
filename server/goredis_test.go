package server

import (
	"context"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"
)

// TestGoRedisSession is a scripted go-redis v9 session. go-redis speaks
// RESP3 (HELLO 3) and sends CLIENT SETINFO on connect.
func TestGoRedisSession(t *testing.T) {
	for _, proto := range []int{2, 3} {
		t.Run(map[int]string{2: "resp2", 3: "resp3"}[proto], func(t *testing.T) {
			_, addr := startServer(t, Options{RequirePass: "pw", NoActiveExpiry: true})
			ctx := context.Background()
			rdb := redis.NewClient(&redis.Options{Addr: addr, Password: "pw", Protocol: proto, ClientName: "gr"})
			defer rdb.Close()
			if err := rdb.Ping(ctx).Err(); err != nil {
				t.Fatal(err)
			}
			if v, err := rdb.Echo(ctx, "hello").Result(); err != nil || v != "hello" {
				t.Fatalf("ECHO = %q, %v", v, err)
			}
			name, err := rdb.ClientGetName(ctx).Result()
			if err != nil || name != "gr" {
				t.Fatalf("CLIENT GETNAME = %q, %v", name, err)
			}
			info, err := rdb.ClientInfo(ctx).Result()
			if err != nil || info.Name != "gr" || !strings.HasPrefix(info.LibName, "go-redis(") || info.Resp != proto {
				t.Fatalf("CLIENT INFO = %+v, %v", info, err)
			}
			cfg, err := rdb.ConfigGet(ctx, "max*").Result()
			if err != nil || cfg["maxclients"] != "10000" {
				t.Fatalf("CONFIG GET = %v, %v", cfg, err)
			}
			if err := rdb.ConfigSet(ctx, "timeout", "0").Err(); err != nil {
				t.Fatal(err)
			}
			inf, err := rdb.Info(ctx, "server", "clients").Result()
			if err != nil || !strings.Contains(inf, "redis_version:7.0.15") || !strings.Contains(inf, "connected_clients:1") {
				t.Fatalf("INFO = %q, %v", inf, err)
			}
			if _, err := rdb.Time(ctx).Result(); err != nil {
				t.Fatal(err)
			}
			if n, err := rdb.CommandList(ctx, &redis.FilterBy{Pattern: "client|*"}).Result(); err != nil || len(n) < 5 {
				t.Fatalf("COMMAND LIST = %v, %v", n, err)
			}
			if err := rdb.Do(ctx, "NOSUCH").Err(); err == nil || err.Error() != "ERR unknown command 'NOSUCH', with args beginning with: " {
				t.Fatalf("unknown command error = %v", err)
			}
			// A connection with the wrong password is refused.
			bad := redis.NewClient(&redis.Options{Addr: addr, Password: "nope", Protocol: proto})
			defer bad.Close()
			if err := bad.Ping(ctx).Err(); err == nil || !strings.HasPrefix(err.Error(), "WRONGPASS") {
				t.Fatalf("wrong password: %v", err)
			}
			if !hasCommands("set", "get", "incr", "hset", "hgetall", "sadd", "smembers", "zadd", "zrange", "del", "expire", "ttl") {
				t.Log("data commands not merged yet: only the connection part ran")
				return
			}
			goRedisData(t, ctx, rdb)
		})
	}
}

func goRedisData(t *testing.T, ctx context.Context, rdb *redis.Client) {
	if err := rdb.Set(ctx, "k", "v", 0).Err(); err != nil {
		t.Fatal(err)
	}
	if v, err := rdb.Get(ctx, "k").Result(); err != nil || v != "v" {
		t.Fatalf("GET = %q, %v", v, err)
	}
	if err := rdb.Get(ctx, "missing").Err(); err != redis.Nil {
		t.Fatalf("GET missing: %v", err)
	}
	if n, err := rdb.Incr(ctx, "n").Result(); err != nil || n != 1 {
		t.Fatalf("INCR = %d, %v", n, err)
	}
	if err := rdb.Incr(ctx, "k").Err(); err == nil || err.Error() != "ERR value is not an integer or out of range" {
		t.Fatalf("INCR on text: %v", err)
	}
	if err := rdb.HSet(ctx, "h", "a", "1", "b", "2").Err(); err != nil {
		t.Fatal(err)
	}
	if m, err := rdb.HGetAll(ctx, "h").Result(); err != nil || m["a"] != "1" || m["b"] != "2" || len(m) != 2 {
		t.Fatalf("HGETALL = %v, %v", m, err)
	}
	if err := rdb.SAdd(ctx, "s", "x", "y").Err(); err != nil {
		t.Fatal(err)
	}
	if m, err := rdb.SMembers(ctx, "s").Result(); err != nil || len(m) != 2 {
		t.Fatalf("SMEMBERS = %v, %v", m, err)
	}
	if err := rdb.ZAdd(ctx, "z", redis.Z{Score: 1.5, Member: "a"}, redis.Z{Score: 2, Member: "b"}).Err(); err != nil {
		t.Fatal(err)
	}
	zs, err := rdb.ZRangeWithScores(ctx, "z", 0, -1).Result()
	if err != nil || len(zs) != 2 || zs[0].Score != 1.5 || zs[1].Member != "b" {
		t.Fatalf("ZRANGE WITHSCORES = %v, %v", zs, err)
	}
	if err := rdb.HGet(ctx, "z", "a").Err(); err == nil || !strings.HasPrefix(err.Error(), "WRONGTYPE") {
		t.Fatalf("HGET on zset: %v", err)
	}
	if ok, err := rdb.Expire(ctx, "k", 100e9).Result(); err != nil || !ok {
		t.Fatalf("EXPIRE = %v, %v", ok, err)
	}
	if ttl, err := rdb.TTL(ctx, "k").Result(); err != nil || ttl.Seconds() < 99 {
		t.Fatalf("TTL = %v, %v", ttl, err)
	}
	// A pipeline keeps its order.
	pipe := rdb.Pipeline()
	for i := 0; i < 100; i++ {
		pipe.Incr(ctx, "p")
	}
	cmds, err := pipe.Exec(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for i, c := range cmds {
		if v := c.(*redis.IntCmd).Val(); v != int64(i+1) {
			t.Fatalf("pipelined INCR %d = %d", i, v)
		}
	}
	if n, err := rdb.Del(ctx, "k", "n", "h", "s", "z", "p").Result(); err != nil || n != 6 {
		t.Fatalf("DEL = %d, %v", n, err)
	}
}
