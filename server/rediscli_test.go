package server

import (
	"bytes"
	"net"
	"os/exec"
	"strings"
	"testing"
)

// TestRedisCLISession drives redis-cli (Debian's redis-tools) through a
// scripted session in RESP2 and RESP3; the expected output was recorded
// from redis-cli against redis-server 7.0.15.
func TestRedisCLISession(t *testing.T) {
	cli, err := exec.LookPath("redis-cli")
	if err != nil {
		t.Skip("redis-cli not installed (Debian: apt-get install redis-tools); skipping the redis-cli session")
	}
	_, addr := startServer(t, Options{RequirePass: "s3cret", NoActiveExpiry: true})
	host, port, _ := net.SplitHostPort(addr)
	run := func(t *testing.T, script string, extra ...string) string {
		t.Helper()
		args := append([]string{"-h", host, "-p", port, "-a", "s3cret", "--no-auth-warning"}, extra...)
		cmd := exec.Command(cli, args...)
		cmd.Stdin = strings.NewReader(script)
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Run(); err != nil {
			t.Fatalf("redis-cli: %v\n%s", err, out.String())
		}
		return out.String()
	}
	script := "PING\nECHO hello\nCLIENT SETNAME cli\nCLIENT GETNAME\nCONFIG GET maxclients\nSELECT 16\nFOO bar\nCLIENT GETNAME x\nHELLO 9\n"
	tail := "ERR DB index is out of range\n\n" +
		"ERR unknown command 'FOO', with args beginning with: 'bar' \n\n" +
		"ERR wrong number of arguments for 'client|getname' command\n\n" +
		"NOPROTO unsupported protocol version\n\n"
	t.Run("resp2", func(t *testing.T) {
		want := "PONG\nhello\nOK\ncli\nmaxclients\n10000\n" + tail
		if got := run(t, script); got != want {
			t.Errorf("got:\n%s\nwant:\n%s", got, want)
		}
	})
	t.Run("resp3", func(t *testing.T) {
		want := "PONG\nhello\nOK\ncli\nmaxclients 10000\n" + tail
		if got := run(t, script, "-3"); got != want {
			t.Errorf("got:\n%s\nwant:\n%s", got, want)
		}
	})
	t.Run("formatted", func(t *testing.T) {
		if got := run(t, "CONFIG GET maxclients\nCLIENT GETNAME\n", "-3", "--no-raw"); got != "1# \"maxclients\" => \"10000\"\n(nil)\n" {
			t.Errorf("got %q", got)
		}
	})
	t.Run("data", func(t *testing.T) {
		if !hasCommands("set", "get", "incr", "hset", "hget", "del") {
			t.Skip("data commands not merged yet")
		}
		got := run(t, "SET k v\nGET k\nINCR n\nINCR n\nINCR k\nHSET h f 1\nHGET h f\nGET nosuch\nDEL k n h\n", "--no-raw")
		want := "OK\n\"v\"\n(integer) 1\n(integer) 2\n(error) ERR value is not an integer or out of range\n(integer) 1\n\"1\"\n(nil)\n(integer) 3\n"
		if got != want {
			t.Errorf("got:\n%s\nwant:\n%s", got, want)
		}
	})
}

// TestPythonRedisSession runs a redis-py script when Debian's python3-redis
// is installed.
func TestPythonRedisSession(t *testing.T) {
	// Debian's python3-redis lives under /usr/bin/python3, which a PATH
	// with another Python first (pyenv, venvs) would hide.
	py := ""
	for _, cand := range []string{"/usr/bin/python3", "python3"} {
		if p, err := exec.LookPath(cand); err == nil && exec.Command(p, "-c", "import redis").Run() == nil {
			py = p
			break
		}
	}
	if py == "" {
		t.Skip("python3-redis not installed (Debian: apt-get install python3-redis); skipping the redis-py session")
	}
	_, addr := startServer(t, Options{RequirePass: "pw", NoActiveExpiry: true})
	host, port, _ := net.SplitHostPort(addr)
	script := `
import redis, sys
for proto in (2, 3):
    kw = {"protocol": proto} if proto == 3 else {}
    try:
        r = redis.Redis(host=sys.argv[1], port=int(sys.argv[2]), password="pw", decode_responses=True, **kw)
    except TypeError:
        if proto == 3:
            continue  # redis-py before 5.0 has no RESP3
        raise
    assert r.ping() is True
    assert r.echo("hi") == "hi"
    r.client_setname("py")
    assert r.client_getname() == "py"
    assert r.config_get("maxclients") == {"maxclients": "10000"}
    info = r.info()
    assert info["redis_version"] == "7.0.15", info
    assert info["role"] == "master"
    assert any(c["name"] == "py" for c in r.client_list())
    try:
        r.execute_command("NOSUCH")
        raise AssertionError("no error")
    except redis.ResponseError as e:
        assert str(e).startswith("unknown command 'NOSUCH'"), e
    if sys.argv[3] == "data":
        r.set("k", "v"); assert r.get("k") == "v"
        assert r.incr("n") == 1
        r.hset("h", mapping={"a": "1"}); assert r.hgetall("h") == {"a": "1"}
        r.sadd("s", "x"); assert r.smembers("s") == {"x"}
        r.zadd("z", {"m": 1.5}); assert r.zrange("z", 0, -1, withscores=True) == [("m", 1.5)]
        p = r.pipeline(transaction=False)
        for _ in range(50): p.incr("p")
        assert p.execute() == list(range(1, 51))
        r.delete("k", "n", "h", "s", "z", "p")
print("ok")
`
	data := "nodata"
	if hasCommands("set", "get", "incr", "hset", "hgetall", "sadd", "smembers", "zadd", "zrange", "del") {
		data = "data"
	}
	out, err := exec.Command(py, "-c", script, host, port, data).CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != "ok" {
		t.Fatalf("redis-py session: %v\n%s", err, out)
	}
}
