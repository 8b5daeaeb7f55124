package server

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// TestScriptGoRedis runs go-redis's Script helper (EVALSHA, falling back to
// EVAL on NOSCRIPT) for the Redlock release and a delay-queue pop, in RESP2
// and RESP3.
func TestScriptGoRedis(t *testing.T) {
	release := redis.NewScript(`if redis.call("get",KEYS[1]) == ARGV[1] then return redis.call("del",KEYS[1]) else return 0 end`)
	pop := redis.NewScript(`local jobs = redis.call('zrangebyscore', KEYS[1], '-inf', ARGV[1])
for _, j in ipairs(jobs) do redis.call('zrem', KEYS[1], j) end
return jobs`)
	for _, proto := range []int{2, 3} {
		t.Run(fmt.Sprint("resp", proto), func(t *testing.T) {
			_, addr := startServer(t, Options{NoActiveExpiry: true})
			ctx := context.Background()
			rdb := redis.NewClient(&redis.Options{Addr: addr, Protocol: proto})
			defer rdb.Close()
			if ok, _ := release.Exists(ctx, rdb).Result(); len(ok) != 1 || ok[0] {
				t.Fatalf("SCRIPT EXISTS before use: %v", ok)
			}
			rdb.Set(ctx, "lock", "me", 0)
			if n, err := release.Run(ctx, rdb, []string{"lock"}, "other").Int(); err != nil || n != 0 {
				t.Fatalf("release with a foreign token = %d, %v", n, err)
			}
			if ok, _ := release.Exists(ctx, rdb).Result(); !ok[0] {
				t.Fatal("EVAL fallback did not cache the script")
			}
			if info, _ := rdb.Info(ctx, "memory").Result(); !strings.Contains(info, "number_of_cached_scripts:1\r\n") {
				t.Fatalf("INFO memory: %q", info)
			}
			if n, err := release.Run(ctx, rdb, []string{"lock"}, "me").Int(); err != nil || n != 1 {
				t.Fatalf("release = %d, %v", n, err)
			}
			if n, _ := rdb.Exists(ctx, "lock").Result(); n != 0 {
				t.Fatal("lock survived its release")
			}
			rdb.ZAdd(ctx, "q", redis.Z{Score: 1, Member: "a"}, redis.Z{Score: 2, Member: "b"}, redis.Z{Score: 9, Member: "c"})
			jobs, err := pop.Run(ctx, rdb, []string{"q"}, 5).StringSlice()
			if err != nil || strings.Join(jobs, ",") != "a,b" {
				t.Fatalf("pop = %v, %v", jobs, err)
			}
			if left, _ := rdb.ZRange(ctx, "q", 0, -1).Result(); strings.Join(left, ",") != "c" {
				t.Fatalf("left in queue: %v", left)
			}
			// Read-only scripts through EVALSHA_RO / EVAL_RO.
			get := redis.NewScript(`return redis.call('zcard', KEYS[1])`)
			if n, err := get.RunRO(ctx, rdb, []string{"q"}).Int(); err != nil || n != 1 {
				t.Fatalf("RunRO = %d, %v", n, err)
			}
			_, err = rdb.Eval(ctx, "return redis.call('incr', KEYS[1])", []string{"lock"}).Result()
			if err != nil {
				t.Fatal(err)
			}
			_, err = rdb.Eval(ctx, "return redis.call('hset', KEYS[1], 'f', 'v')", []string{"lock"}).Result()
			if err == nil || !strings.HasPrefix(err.Error(), "WRONGTYPE Operation against a key holding the wrong kind of value script: ") {
				t.Fatalf("WRONGTYPE from a script: %v", err)
			}
		})
	}
}

// TestScriptRedisCLIEval runs redis-cli --eval (KEYS and ARGV split on ",").
func TestScriptRedisCLIEval(t *testing.T) {
	cli, err := exec.LookPath("redis-cli")
	if err != nil {
		t.Skip("redis-cli not installed")
	}
	_, addr := startServer(t, Options{NoActiveExpiry: true})
	host, port, _ := net.SplitHostPort(addr)
	file := filepath.Join(t.TempDir(), "release.lua")
	os.WriteFile(file, []byte(`if redis.call("get",KEYS[1]) == ARGV[1] then return redis.call("del",KEYS[1]) else return 0 end`), 0o644)
	run := func(args ...string) string {
		out, err := exec.Command(cli, append([]string{"-h", host, "-p", port}, args...)...).CombinedOutput()
		if err != nil {
			t.Fatalf("redis-cli %v: %v\n%s", args, err, out)
		}
		return strings.TrimSpace(string(out))
	}
	run("set", "lock", "tok")
	if got := run("--eval", file, "lock", ",", "nope"); got != "0" {
		t.Fatalf("wrong token: %q", got)
	}
	if got := run("--eval", file, "lock", ",", "tok"); got != "1" {
		t.Fatalf("right token: %q", got)
	}
}

// TestScriptCompat compares replies for a table of scripts with a real
// redis-server 7.0 (skipped when none is installed), in RESP2 and RESP3.
func TestScriptCompat(t *testing.T) {
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		t.Skip("redis-server not installed")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	refAddr := ln.Addr().String()
	ln.Close()
	_, port, _ := net.SplitHostPort(refAddr)
	ref := exec.Command(bin, "--port", port, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no")
	if err := ref.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { ref.Process.Kill(); ref.Wait() }()
	for i := 0; ; i++ {
		if c, err := net.Dial("tcp", refAddr); err == nil {
			c.Close()
			break
		}
		if i > 100 {
			t.Fatal("redis-server did not start")
		}
		time.Sleep(20 * time.Millisecond)
	}
	cases := [][]string{
		{"set", "s", "a"},
		{"eval", "return redis.call('incr','s')", "0"},
		{"eval", "return redis.pcall('incr','s')", "0"},
		{"eval", "x = 1", "0"},
		{"eval", "return y", "0"},
		{"eval", "return redis.error_reply('My Error')", "0"},
		{"eval", "return {err='boom'}", "0"},
		{"eval", "return redis.status_reply('FINE')", "0"},
		{"eval", "return redis.call()", "0"},
		{"eval", "return redis.call('nosuch')", "0"},
		{"eval", "return redis.call('get', {})", "0"},
		{"eval_ro", "return redis.call('set', 'a', 1)", "0"},
		{"eval", "error('x')", "0"},
		{"eval", "\n\nerror('on line 3')", "0"},
		{"eval", "error({err='ERR boom'})", "0"},
		{"eval", "math.randomseed(42) return {tostring(math.random()), math.random(10), math.random(5,100)}", "0"},
		{"evalsha", "ffffffffffffffffffffffffffffffffffffffff", "0"},
		{"script", "kill"},
		{"eval", "return {1,2,3.9,'x',nil,4}", "0"},
		{"eval", "return {1,2,{3,'a'},true,false}", "0"},
		{"eval", "return -3.99", "0"},
		{"eval", "return true", "0"},
		{"eval", "return false", "0"},
		{"eval", "return os", "0"},
		{"eval", "return redis.sha1hex('')", "0"},
		{"eval", "return redis.setresp(4)", "0"},
		{"eval", "return cjson.encode({1,2,{a=1}})", "0"},
		{"eval", `return cjson.decode('[1,2,{"a":1.5}]')[3].a`, "0"},
		{"eval", `return cjson.encode(cjson.decode('{"a":null}'))`, "0"},
		{"eval", "return cjson.decode('[')", "0"},
		{"eval", "return 1", "x"},
		{"eval", "return 1", "-1"},
		{"eval", "return 1", "2", "a"},
		{"eval", "#!lua flags=no-writes\nreturn redis.call('set','a',1)", "0"},
		{"eval", "#!lua flags=bar\nreturn 1", "0"},
		{"eval_ro", "#!lua\nreturn 1", "0"},
		{"script", "load", "return 1"},
		{"script", "exists", "e0e1f9fabfc9d4800c877a703b823ac0578ff8db", "x"},
		{"evalsha", "E0E1F9FABFC9D4800C877A703B823AC0578FF8DB", "0"},
		{"evalsha_ro", "e0e1f9fabfc9d4800c877a703b823ac0578ff8db", "0"},
		{"script", "flush", "foo"},
		{"script", "flush"},
		{"evalsha", "e0e1f9fabfc9d4800c877a703b823ac0578ff8db", "0"},
		{"script", "foo"},
		{"script", "help"},
		{"eval", "return redis.pcall('get','a','b')", "0"},
		{"eval", "local ok, e = pcall(function() return redis.call('nosuch') end) return e", "0"},
		{"eval", "return 1/0", "0"},
		{"eval", "return {1,{double=2.5},{map={a=1}},{set={x=true}}}", "0"},
		{"eval", "return {double=3.14}", "0"},
		{"zadd", "zz", "1.5", "a"},
		{"eval", "return redis.call('zscore','zz','a')", "0"},
		{"eval", "redis.setresp(3) return redis.call('zscore','zz','a')", "0"},
		{"eval", "redis.setresp(3) return {redis.call('get','nokey') == nil, redis.call('exists','zz')}", "0"},
		{"hset", "h", "f", "v"},
		{"eval", "redis.setresp(3) return redis.call('hgetall','h')", "0"},
		{"eval", "redis.setresp(3) return redis.call('smembers','nos')", "0"},
		{"eval", "return redis.call('hgetall','h')", "0"},
		{"eval", "return redis.call('set','n', 1/3)", "0"},
		{"get", "n"},
		{"eval", "local t = {} for i=1,5 do t[i]=redis.call('incr','cnt') end return t", "0"},
		{"eval", "return bit.band(0xff, 0x0f) .. bit.tohex(255) .. bit.bxor(5,3) .. bit.lshift(1,31)", "0"},
		{"eval", "redis.call('select', 1) redis.call('set','dbx','1') return redis.call('get','dbx')", "0"},
		{"get", "dbx"},
		{"eval", "return {KEYS[1], ARGV[1], #KEYS, #ARGV}", "2", "k1", "k2", "a1"},
		{"eval", "return redis.call('get', 'zz')", "0"},
		{"eval", "return {ok='a\\r\\nb'}", "0"},
		{"eval", "return coroutine.wrap(function() coroutine.yield(5) end)()", "0"},
		{"eval", "return loadstring('return 7')()", "0"},
		{"eval", "return string.format('%d-%s-%5.2f', 3, 'x', 1.5)", "0"},
		{"eval", "return string.format('%d', 'x')", "0"},
		{"eval", `return string.format('%q', 'a\nb\r\0\"')`, "0"},
		{"eval", "local x = nil + 1", "0"},
		{"eval", "local x = {} .. 'a'", "0"},
		{"eval", "return {} < {}", "0"},
		{"eval", "return string.upper(nil)", "0"},
		{"eval", "return table.concat({1,{}}, ',')", "0"},
		{"eval", "return {tonumber('1e2'), tonumber(' 0x1A '), tostring(tonumber('1e')), tostring(math.huge), tostring(-0)}", "0"},
		{"eval", "local n = 0 table.foreach({a=1}, function(k, v) n = n + v end) return n", "0"},
		{"eval", "local a, b = pcall(error) return tostring(b)", "0"},
		{"eval", "return cmsgpack.pack({1,2,3}, 'abc', -1, -200, 300, 1.5, 0.1, true, nil, {a=1}, string.rep('x', 40))", "0"},
		{"eval", "return cmsgpack.pack(2^40, -2^40, 2^63, -2^31, 65536, -32769, -33, -32, 128, 256)", "0"},
		{"eval", "return {cmsgpack.unpack(cmsgpack.pack({1,2,{x='y'}}, 7, -2^40, 1.5))}", "0"},
		{"eval", "return {cmsgpack.unpack_limit(cmsgpack.pack(1, 2, 3), 2)}", "0"},
		{"eval", "return cmsgpack.unpack(string.char(0x92, 1))", "0"},
		{"eval", "return struct.pack('<i2 b B h H l L !4 i >I4 f d s c3', -2, -1, 255, -300, 65535, -5, 7, 9, 1, 1.5, 0.1, 'ab', 'xyz')", "0"},
		{"eval", "return {struct.unpack('<i2 b B h s c3', struct.pack('<i2 b B h s c3', -2, -1, 255, -300, 'ab', 'xyz'))}", "0"},
		{"eval", "return {struct.unpack('b c0', struct.pack('b c0', 3, 'abc'))}", "0"},
		{"eval", "return {struct.unpack('i4', 'ab')}", "0"},
		{"eval", "return struct.size('>i4 h !8 d')", "0"},
		{"eval", "x = = 1", "0"},
		{"eval", "return )", "0"},
		{"eval", "return @", "0"},
		{"command", "getkeys", "eval", "return 1", "2", "a", "b", "x"},
		{"command", "getkeys", "evalsha_ro", "x", "0"},
		{"command", "getkeys", "eval", "return 1", "3", "a"},
		{"eval", "string.foo = 1", "0"},
		{"eval", "rawset(_G, 'x', 1)", "0"},
	}
	_, addr := startServer(t, Options{NoActiveExpiry: true})
	for _, resp := range []string{"2", "3"} {
		refC, sutC := dial(t, refAddr), dial(t, addr)
		refC.do("HELLO", resp)
		sutC.do("HELLO", resp)
		refC.do("FLUSHALL")
		sutC.do("FLUSHALL")
		refC.do("SCRIPT", "FLUSH")
		sutC.do("SCRIPT", "FLUSH")
		for _, c := range cases {
			want, got := refC.do(c...), sutC.do(c...)
			if want != got {
				t.Errorf("RESP%s %q:\nredis:   %q\nconcord: %q", resp, c, want, got)
			}
		}
	}
}

// TestScriptConcurrent: read-only scripts run as reads on many connections
// at once while writes run scripts in apply (run it with -race).
func TestScriptConcurrent(t *testing.T) {
	_, addr := startServer(t, Options{NoActiveExpiry: true})
	ctx := context.Background()
	rdb := redis.NewClient(&redis.Options{Addr: addr, PoolSize: 16})
	defer rdb.Close()
	incr := redis.NewScript(`redis.call('incr', KEYS[1]) return redis.call('incr', KEYS[2])`)
	read := redis.NewScript(`local a, b = redis.call('get', KEYS[1]), redis.call('get', KEYS[2]) if a ~= b then return redis.error_reply('torn: ' .. tostring(a) .. ' ' .. tostring(b)) end return a`)
	done := make(chan error, 9)
	for g := 0; g < 8; g++ {
		go func() {
			for i := 0; i < 200; i++ {
				if err := read.RunRO(ctx, rdb, []string{"a", "b"}).Err(); err != nil && err != redis.Nil {
					done <- err
					return
				}
			}
			done <- nil
		}()
	}
	go func() {
		for i := 0; i < 300; i++ {
			if err := incr.Run(ctx, rdb, []string{"a", "b"}).Err(); err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	for i := 0; i < 9; i++ {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
	if v, _ := rdb.Get(ctx, "b").Result(); v != "300" {
		t.Fatalf("b = %q", v)
	}
}
