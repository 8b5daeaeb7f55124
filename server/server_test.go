package server

import (
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestConfig(t *testing.T) {
	_, addr := startServer(t, Options{NoActiveExpiry: true})
	c := dial(t, addr)
	c.expect("*2\r\n$10\r\nmaxclients\r\n$5\r\n10000\r\n", "CONFIG", "GET", "maxclients")
	c.expect("*2\r\n$10\r\nMAXCLIENTS\r\n$5\r\n10000\r\n", "CONFIG", "GET", "MAXCLIENTS")
	c.expect("*6\r\n$10\r\nmaxclients\r\n$5\r\n10000\r\n$9\r\nmaxmemory\r\n$1\r\n0\r\n$16\r\nmaxmemory-policy\r\n$10\r\nnoeviction\r\n",
		"CONFIG", "GET", "max*")
	c.expect("*4\r\n$4\r\nsave\r\n$0\r\n\r\n$10\r\nappendonly\r\n$2\r\nno\r\n", "CONFIG", "GET", "save", "appendonly")
	c.expect("*2\r\n$9\r\ndatabases\r\n$2\r\n16\r\n", "CONFIG", "GET", "databases")
	c.expect("*0\r\n", "CONFIG", "GET", "nosuch")
	c.expect("-ERR wrong number of arguments for 'config|get' command\r\n", "CONFIG", "GET")
	c.expect("-ERR Unknown option or number of arguments for CONFIG SET - 'nosuch'\r\n", "CONFIG", "SET", "nosuch", "1")
	c.expect("-ERR CONFIG SET failed (possibly related to argument 'maxclients') - argument couldn't be parsed into an integer\r\n",
		"CONFIG", "SET", "maxclients", "x")
	c.expect("-ERR CONFIG SET failed (possibly related to argument 'maxclients') - argument must be between 1 and 4294967295 inclusive\r\n",
		"CONFIG", "SET", "maxclients", "-1")
	c.expect("-ERR CONFIG SET failed (possibly related to argument 'databases') - can't set immutable config\r\n", "CONFIG", "SET", "databases", "3")
	c.expect("-ERR CONFIG SET failed (possibly related to argument 'databases') - can't set immutable config\r\n", "CONFIG", "SET", "databases", "3", "nosuch", "4")
	c.expect("-ERR CONFIG SET failed (possibly related to argument 'maxclients') - duplicate parameter\r\n", "CONFIG", "SET", "maxclients", "10", "maxclients", "11")
	c.expect("-ERR CONFIG SET failed (possibly related to argument 'timeout') - argument couldn't be parsed into an integer\r\n", "CONFIG", "SET", "timeout", "x")
	c.expect("-ERR syntax error\r\n", "CONFIG", "SET", "a", "b", "c")
	c.expect("-ERR wrong number of arguments for 'config|set' command\r\n", "CONFIG", "SET", "a")
	c.expect("-ERR unknown subcommand 'foo'. Try CONFIG HELP.\r\n", "CONFIG", "foo")
	// A failed multi-parameter SET changes nothing.
	c.expect("-ERR CONFIG SET failed (possibly related to argument 'timeout') - argument couldn't be parsed into an integer\r\n",
		"CONFIG", "SET", "maxclients", "77", "timeout", "x")
	c.expect("*2\r\n$10\r\nmaxclients\r\n$5\r\n10000\r\n", "CONFIG", "GET", "maxclients")
	c.expect("+OK\r\n", "CONFIG", "SET", "MaxClients", "77", "proto-max-bulk-len", "2mb")
	c.expect("*4\r\n$10\r\nmaxclients\r\n$2\r\n77\r\n$18\r\nproto-max-bulk-len\r\n$7\r\n2097152\r\n", "CONFIG", "GET", "maxclients", "proto-max-bulk-len")
	c.expect("-ERR The server is running without a config file\r\n", "CONFIG", "REWRITE")
	c.expect("+OK\r\n", "CONFIG", "RESETSTAT")
}

func TestInfo(t *testing.T) {
	_, addr := startServer(t, Options{NoActiveExpiry: true})
	c := dial(t, addr)
	c.expect("-ERR unknown command 'NOPE', with args beginning with: \r\n", "NOPE")
	c.expect("-ERR wrong number of arguments for 'echo' command\r\n", "ECHO")
	c.expect("$1\r\nx\r\n", "ECHO", "x")
	c.expect("+PONG\r\n", "PING")
	info := c.do("INFO")
	for _, want := range []string{
		"# Server\r\nredis_version:7.0.15\r\n", "\r\nredis_mode:standalone\r\n", "\r\nprocess_id:",
		"\r\n\r\n# Clients\r\nconnected_clients:1\r\nmaxclients:10000\r\n",
		"\r\n\r\n# Memory\r\nused_memory:", "\r\nmaxmemory:0\r\n",
		"\r\n\r\n# Persistence\r\nloading:0\r\n", "\r\naof_enabled:0\r\n", "\r\nrdb_saves:0\r\n",
		"\r\n\r\n# Stats\r\ntotal_connections_received:1\r\n", "\r\ntotal_error_replies:2\r\n",
		"\r\n\r\n# Replication\r\nrole:master\r\nconnected_slaves:0\r\n",
		"\r\n\r\n# CPU\r\nused_cpu_sys:",
		"\r\n\r\n# Modules\r\n",
		"\r\n\r\n# Errorstats\r\nerrorstat_ERR:count=2\r\n",
		"\r\n\r\n# Cluster\r\ncluster_enabled:0\r\n",
		"\r\n\r\n# Keyspace\r\n\r\n",
	} {
		if !strings.Contains(info, want) {
			t.Errorf("INFO lacks %q:\n%s", want, info)
		}
	}
	if strings.Contains(info, "# Commandstats") {
		t.Errorf("INFO without arguments has commandstats")
	}
	if m := regexp.MustCompile(`total_commands_processed:(\d+)`).FindStringSubmatch(info); m == nil || m[1] != "2" {
		t.Errorf("total_commands_processed: %v (want 2: ECHO and PING; rejected ones and the running INFO do not count, as in Redis)", m)
	}
	c.expect("$44\r\n# Cluster\r\ncluster_enabled:0\r\n\r\n# Keyspace\r\n\r\n", "INFO", "cluster", "KEYSPACE")
	c.expect("$0\r\n\r\n", "INFO", "nosuch")
	stats := c.do("INFO", "commandstats")
	for _, re := range []string{
		`\r\ncmdstat_echo:calls=1,usec=\d+,usec_per_call=\d+\.\d\d,rejected_calls=1,failed_calls=0\r\n`,
		`\r\ncmdstat_ping:calls=1,`,
		`\r\ncmdstat_info:calls=3,usec=\d+,usec_per_call=\d+\.\d\d,rejected_calls=0,failed_calls=0\r\n`,
	} {
		if !regexp.MustCompile(re).MatchString(stats) {
			t.Errorf("commandstats lacks %s:\n%s", re, stats)
		}
	}
	all := c.do("INFO", "all")
	if !strings.Contains(all, "# Commandstats\r\n") || !strings.Contains(all, "# Keyspace\r\n") {
		t.Errorf("INFO all lacks sections:\n%s", all)
	}
	c.expect("+OK\r\n", "CONFIG", "RESETSTAT")
	c.expect("$14\r\n# Errorstats\r\n\r\n", "INFO", "errorstats")
	// RESP3: a verbatim string.
	c.do("HELLO", "3")
	c.expect("=18\r\ntxt:# Errorstats\r\n\r\n", "INFO", "errorstats")
}

func TestCommandCommand(t *testing.T) {
	srv, addr := startServer(t, Options{NoActiveExpiry: true})
	c := dial(t, addr)
	count := c.do("COMMAND", "COUNT")
	if count != ":"+strconv.Itoa(len(srv.cmds))+"\r\n" || len(srv.cmds) < 14 {
		t.Errorf("COMMAND COUNT = %q, table has %d", count, len(srv.cmds))
	}
	// Byte-identical to redis-server 7.0.15 for these.
	c.expect("*3\r\n"+
		"*10\r\n$4\r\nping\r\n:-1\r\n*1\r\n+fast\r\n:0\r\n:0\r\n:0\r\n*2\r\n+@fast\r\n+@connection\r\n*2\r\n$25\r\nrequest_policy:all_shards\r\n$29\r\nresponse_policy:all_succeeded\r\n*0\r\n*0\r\n"+
		"*10\r\n$9\r\nclient|id\r\n:2\r\n*3\r\n+noscript\r\n+loading\r\n+stale\r\n:0\r\n:0\r\n:0\r\n*2\r\n+@slow\r\n+@connection\r\n*0\r\n*0\r\n*0\r\n"+
		"$-1\r\n", "COMMAND", "INFO", "ping", "CLIENT|ID", "nosuch")
	c.expect("-ERR The command has no key arguments\r\n", "COMMAND", "GETKEYS", "ping", "x")
	c.expect("-ERR Invalid command specified\r\n", "COMMAND", "GETKEYS", "nosuch", "x")
	c.expect("-ERR unknown subcommand 'foo'. Try COMMAND HELP.\r\n", "COMMAND", "foo")
	c.expect("-ERR wrong number of arguments for 'command|count' command\r\n", "COMMAND", "COUNT", "x")
	c.expect("*3\r\n$10\r\nconfig|get\r\n$16\r\nconfig|resetstat\r\n$10\r\nconfig|set\r\n", "COMMAND", "LIST", "FILTERBY", "PATTERN", "config*[tg]")
	c.expect("-ERR syntax error\r\n", "COMMAND", "LIST", "FILTERBY", "nope", "x")
	c.expect("*0\r\n", "COMMAND", "LIST", "FILTERBY", "MODULE", "x")
	c.expect("*2\r\n$4\r\nping\r\n*2\r\n$5\r\ngroup\r\n$10\r\nconnection\r\n", "COMMAND", "DOCS", "ping")
	all := c.do("COMMAND")
	if !strings.HasPrefix(all, "*"+strconv.Itoa(len(srv.cmds))+"\r\n") {
		t.Errorf("COMMAND = %.100q", all)
	}
	if hasCommands("get", "mset") {
		c.expect("*1\r\n$1\r\nk\r\n", "COMMAND", "GETKEYS", "GET", "k")
		c.expect("*2\r\n$1\r\na\r\n$1\r\nc\r\n", "COMMAND", "GETKEYS", "MSET", "a", "b", "c", "d")
		c.expect("-ERR Invalid number of arguments specified for command\r\n", "COMMAND", "GETKEYS", "GET", "a", "b")
	}
	if hasCommands("zunionstore", "sintercard") {
		// Keys counted by numkeys, as Redis's keynum key specs.
		c.expect("*3\r\n$1\r\nd\r\n$1\r\na\r\n$1\r\nb\r\n", "COMMAND", "GETKEYS", "ZUNIONSTORE", "d", "2", "a", "b", "WEIGHTS", "1", "2")
		c.expect("*1\r\n$1\r\na\r\n", "COMMAND", "GETKEYS", "SINTERCARD", "1", "a", "b")
		c.expect("-ERR Invalid arguments specified for command\r\n", "COMMAND", "GETKEYS", "ZUNIONSTORE", "d", "0", "a")
		c.expect("-ERR Invalid arguments specified for command\r\n", "COMMAND", "GETKEYS", "SINTERCARD", "3", "a", "b")
		c.expect("*1\r\n*10\r\n$10\r\nsintercard\r\n:-3\r\n*2\r\n+readonly\r\n+movablekeys\r\n:0\r\n:0\r\n:0\r\n*3\r\n+@read\r\n+@set\r\n+@slow\r\n*0\r\n"+
			"*1\r\n*6\r\n$5\r\nflags\r\n*2\r\n+RO\r\n+access\r\n$12\r\nbegin_search\r\n*4\r\n$4\r\ntype\r\n$5\r\nindex\r\n$4\r\nspec\r\n*2\r\n$5\r\nindex\r\n:1\r\n"+
			"$9\r\nfind_keys\r\n*4\r\n$4\r\ntype\r\n$6\r\nkeynum\r\n$4\r\nspec\r\n*6\r\n$9\r\nkeynumidx\r\n:0\r\n$8\r\nfirstkey\r\n:1\r\n$7\r\nkeystep\r\n:1\r\n*0\r\n",
			"COMMAND", "INFO", "sintercard")
	}
}

func TestMiscServerCommands(t *testing.T) {
	srv, addr := startServer(t, Options{NoActiveExpiry: true})
	c := dial(t, addr)
	before := time.Now().Unix()
	r := c.do("TIME")
	m := regexp.MustCompile(`^\*2\r\n\$\d+\r\n(\d+)\r\n\$\d+\r\n(\d+)\r\n$`).FindStringSubmatch(r)
	if m == nil {
		t.Fatalf("TIME = %q", r)
	}
	if sec, _ := strconv.ParseInt(m[1], 10, 64); sec < before || sec > time.Now().Unix() {
		t.Errorf("TIME seconds %d not now", sec)
	}
	c.expect(":"+strconv.FormatInt(srv.started.Unix(), 10)+"\r\n", "LASTSAVE")
	c.expect("-ERR wrong number of arguments for 'lastsave' command\r\n", "LASTSAVE", "x")
	c.expect("+OK\r\n", "FUNCTION", "FLUSH")
	c.expect("+OK\r\n", "FUNCTION", "FLUSH", "async")
	c.expect("-ERR FUNCTION FLUSH only supports SYNC|ASYNC option\r\n", "FUNCTION", "FLUSH", "x")
	c.expect("-ERR unknown subcommand 'LIST'. Try FUNCTION HELP.\r\n", "FUNCTION", "LIST")
	c.expect("+OK\r\n", "DEBUG", "SLEEP", "0")
	c.expect("+OK\r\n", "DEBUG", "SLEEP", "0.01")
	c.expect("-ERR unknown subcommand or wrong number of arguments for 'foo'. Try DEBUG HELP.\r\n", "DEBUG", "foo")
}
