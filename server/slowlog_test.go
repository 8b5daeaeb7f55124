package server

import (
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// slowEntryRE matches one SLOWLOG GET entry in RESP2, capturing id,
// duration and the arguments array's body.
var slowEntryRE = regexp.MustCompile(`\*6\r\n:(\d+)\r\n:\d+\r\n:(\d+)\r\n\*\d+\r\n((?:\$\d+\r\n[^\r]*\r\n)*)\$\d+\r\n127\.0\.0\.1:\d+\r\n\$\d+\r\n([^\r]*)\r\n`)

func slowArgs(body string) []string {
	var out []string
	for _, l := range strings.Split(body, "\r\n") {
		if l != "" && l[0] != '$' {
			out = append(out, l)
		}
	}
	return out
}

func TestSlowlog(t *testing.T) {
	_, addr := startServer(t, Options{})
	c := dial(t, addr)
	c.expect("*4\r\n$23\r\nslowlog-log-slower-than\r\n$5\r\n10000\r\n$15\r\nslowlog-max-len\r\n$3\r\n128\r\n",
		"CONFIG", "GET", "slowlog*")
	c.expect(":0\r\n", "SLOWLOG", "LEN")
	c.expect("+OK\r\n", "CONFIG", "SET", "slowlog-log-slower-than", "0")
	c.expect("+OK\r\n", "SET", "k", "v")           // a data command
	c.expect("$1\r\nv\r\n", "GeT", "k")            // logged with its name as sent
	c.expect("+OK\r\n", "CLIENT", "SETNAME", "me") // a server command
	long := strings.Repeat("x", 130)
	many := []string{"DEL"}
	for i := 0; i < 40; i++ {
		many = append(many, long)
	}
	c.do(many...)
	c.do("AUTH", "secret")
	c.do("HELLO", "2", "AUTH", "default", "pw", "SETNAME", "me")
	got := c.do("SLOWLOG", "GET", "-1")
	ents := slowEntryRE.FindAllStringSubmatch(got, -1)
	if len(ents) != 7 {
		t.Fatalf("want 7 entries, got %d in %q", len(ents), got)
	}
	want := [][]string{ // newest first
		{"HELLO", "2", "AUTH", "(redacted)", "(redacted)", "SETNAME", "me"},
		{"AUTH", "(redacted)"},
		nil, // DEL: checked below
		{"CLIENT", "SETNAME", "me"},
		{"GeT", "k"},
		{"SET", "k", "v"},
		{"CONFIG", "SET", "slowlog-log-slower-than", "0"},
	}
	for i, e := range ents {
		id, _ := strconv.Atoi(e[1])
		if id != 6-i {
			t.Errorf("entry %d: id %d", i, id)
		}
		args := slowArgs(e[3])
		if i == 2 {
			trunc := long[:128] + "... (2 more bytes)"
			if len(args) != 32 || args[0] != "DEL" || args[1] != trunc || args[31] != "... (10 more arguments)" {
				t.Errorf("DEL entry: %d args %q", len(args), args)
			}
			continue
		}
		if strings.Join(args, " ") != strings.Join(want[i], " ") {
			t.Errorf("entry %d: args %q, want %q", i, args, want[i])
		}
		if name := e[4]; (i <= 3) != (name == "me") {
			t.Errorf("entry %d: client name %q", i, name)
		}
	}
	// GET's count, LEN, RESET, the length limit and disabling.
	if n := len(slowEntryRE.FindAllString(c.do("SLOWLOG", "GET", "2"), -1)); n != 2 {
		t.Errorf("SLOWLOG GET 2 gave %d entries", n)
	}
	if n := len(slowEntryRE.FindAllString(c.do("SLOWLOG", "GET"), -1)); n != 9 {
		t.Errorf("SLOWLOG GET gave %d entries, want the 9 so far", n)
	}
	c.expect("-ERR count should be greater than or equal to -1\r\n", "SLOWLOG", "GET", "-2")
	c.expect("-ERR count should be greater than or equal to -1\r\n", "SLOWLOG", "GET", "x")
	c.expect("-ERR unknown subcommand or wrong number of arguments for 'get'. Try SLOWLOG HELP.\r\n", "SLOWLOG", "get", "1", "2")
	c.expect("-ERR wrong number of arguments for 'slowlog|len' command\r\n", "SLOWLOG", "LEN", "x")
	c.expect("-ERR CONFIG SET failed (possibly related to argument 'slowlog-max-len') - argument must be between 0 and 9223372036854775807 inclusive\r\n",
		"CONFIG", "SET", "slowlog-max-len", "-1")
	c.expect("-ERR CONFIG SET failed (possibly related to argument 'slowlog-log-slower-than') - argument must be between -1 and 9223372036854775807 inclusive\r\n",
		"CONFIG", "SET", "slowlog-log-slower-than", "-2")
	c.expect("+OK\r\n", "CONFIG", "SET", "slowlog-max-len", "3")
	c.do("PING")
	c.expect(":3\r\n", "SLOWLOG", "LEN")
	c.expect("+OK\r\n", "SLOWLOG", "RESET")
	c.expect(":1\r\n", "SLOWLOG", "LEN") // the RESET itself
	c.expect("+OK\r\n", "CONFIG", "SET", "slowlog-log-slower-than", "-1")
	c.expect("+OK\r\n", "SLOWLOG", "RESET")
	c.do("SET", "k", "v")
	c.expect(":0\r\n", "SLOWLOG", "LEN")
	// A huge threshold logs nothing that fast.
	c.expect("+OK\r\n", "CONFIG", "SET", "slowlog-log-slower-than", "100000000")
	c.do("SET", "k", "v")
	c.expect(":0\r\n", "SLOWLOG", "LEN")
	if got := c.do("SLOWLOG", "HELP"); !strings.Contains(got, "Return top <count> entries from the slowlog") {
		t.Errorf("SLOWLOG HELP: %q", got)
	}
}
