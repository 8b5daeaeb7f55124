package server

import (
	"fmt"
	"regexp"
	"strings"
	"testing"
)

// Replies below were checked byte for byte against redis-server 7.0.15.

func TestConnectionCommands(t *testing.T) {
	_, addr := startServer(t, Options{NoActiveExpiry: true})
	c := dial(t, addr)
	c.expect("+PONG\r\n", "PING")
	c.expect("$2\r\nhi\r\n", "ping", "hi")
	c.expect("-ERR wrong number of arguments for 'ping' command\r\n", "PING", "a", "b")
	c.expect("$3\r\na b\r\n", "ECHO", "a b")
	c.expect("-ERR wrong number of arguments for 'echo' command\r\n", "ECHO")
	c.expect("-ERR wrong number of arguments for 'echo' command\r\n", "ECHO", "a", "b")
	c.expect("+OK\r\n", "SELECT", "15")
	c.expect("-ERR DB index is out of range\r\n", "SELECT", "16")
	c.expect("-ERR DB index is out of range\r\n", "SELECT", "-1")
	c.expect("-ERR value is not an integer or out of range\r\n", "SELECT", "x")
	c.expect("-ERR value is not an integer or out of range\r\n", "SELECT", "01")
	c.expect("-ERR value is out of range, value must between -2147483648 and 2147483647\r\n", "SELECT", "2147483648")
	c.expect("-ERR wrong number of arguments for 'select' command\r\n", "SELECT", "1", "2")
	c.expect("-ERR unknown command 'foo', with args beginning with: 'a' 'b' \r\n", "foo", "a", "b")
	c.expect("-ERR unknown command 'FOO', with args beginning with: \r\n", "FOO")
	c.expect("-ERR unknown command 'foo', with args beginning with: 'a' 'c d' \r\n", "foo", "a\x00b", "c\nd")
	long := strings.Repeat("x", 200)
	c.expect("-ERR unknown command '"+long[:128]+"', with args beginning with: '"+long[:128]+"' \r\n", long, long, long)
	c.expect("-ERR unknown command 'foo', with args beginning with: '"+long[:100]+"' '"+long[:25]+"' \r\n", "foo", long[:100], long, long)
	// Internal commands of the engine are invisible.
	c.expect("-ERR unknown command 'concord-expire', with args beginning with: 'k' \r\n", "concord-expire", "k")
	c.expect("+RESET\r\n", "RESET")
	c.expect("+OK\r\n", "QUIT")
	c.expectClosed("")
}

func TestClientCommands(t *testing.T) {
	_, addr := startServer(t, Options{NoActiveExpiry: true})
	c := dial(t, addr)
	other := dial(t, addr)
	other.expect("+PONG\r\n", "PING")

	id := c.do("CLIENT", "ID")
	if !regexp.MustCompile(`^:\d+\r\n$`).MatchString(id) {
		t.Fatalf("CLIENT ID = %q", id)
	}
	c.expect("-ERR wrong number of arguments for 'client' command\r\n", "CLIENT")
	c.expect("-ERR unknown subcommand 'foo'. Try CLIENT HELP.\r\n", "CLIENT", "foo")
	c.expect("-ERR unknown subcommand 'f'. Try CLIENT HELP.\r\n", "client", "f\x00o")
	c.expect("-ERR wrong number of arguments for 'client|id' command\r\n", "CLIENT", "ID", "x")
	c.expect("$-1\r\n", "CLIENT", "GETNAME")
	c.expect("-ERR Client names cannot contain spaces, newlines or special characters.\r\n", "CLIENT", "SETNAME", "a b")
	c.expect("+OK\r\n", "CLIENT", "SETNAME", "conn-1")
	c.expect("$6\r\nconn-1\r\n", "CLIENT", "GETNAME")
	c.expect("-ERR wrong number of arguments for 'client|setname' command\r\n", "CLIENT", "SETNAME")
	c.expect("+OK\r\n", "CLIENT", "SETINFO", "LIB-NAME", "go-redis(,go1.26)")
	c.expect("+OK\r\n", "CLIENT", "SETINFO", "lib-ver", "9.0")
	c.expect("-ERR Unrecognized option 'foo'\r\n", "CLIENT", "SETINFO", "foo", "x")
	c.expect("-ERR lib-name cannot contain spaces, newlines or special characters.\r\n", "CLIENT", "SETINFO", "lib-name", "a b")
	c.expect("+OK\r\n", "CLIENT", "NO-EVICT", "on")
	c.expect("-ERR syntax error\r\n", "CLIENT", "NO-EVICT", "maybe")

	info := c.do("CLIENT", "INFO")
	re := regexp.MustCompile(`^\$\d+\r\nid=(\d+) addr=127\.0\.0\.1:\d+ laddr=127\.0\.0\.1:\d+ fd=\d+ name=conn-1 age=\d+ idle=\d+ flags=N db=0 sub=0 psub=0 ssub=0 multi=-1 cmd=client\|info user=default redir=-1 resp=2 lib-name=go-redis\(,go1\.26\) lib-ver=9\.0\n\r\n$`)
	m := re.FindStringSubmatch(info)
	if m == nil || ":"+m[1]+"\r\n" != id {
		t.Fatalf("CLIENT INFO = %q (id %q)", info, id)
	}
	list := c.do("CLIENT", "LIST")
	if n := strings.Count(list, "id="); n != 2 || !strings.Contains(list, "name=conn-1") {
		t.Fatalf("CLIENT LIST = %q", list)
	}
	c.expect("-ERR Unknown client type 'foo'\r\n", "CLIENT", "LIST", "TYPE", "foo")
	c.expect("$0\r\n\r\n", "CLIENT", "LIST", "TYPE", "pubsub")
	c.expect("-ERR syntax error\r\n", "CLIENT", "LIST", "foo")
	c.expect("-ERR Invalid client ID\r\n", "CLIENT", "LIST", "ID", "x")
	c.expect("$0\r\n\r\n", "CLIENT", "LIST", "ID", "999999")

	c.expect("-ERR No such client\r\n", "CLIENT", "KILL", "1.2.3.4:5")
	c.expect(":0\r\n", "CLIENT", "KILL", "ID", "999999")
	c.expect("-ERR client-id should be greater than 0\r\n", "CLIENT", "KILL", "ID", "x")
	c.expect("-ERR syntax error\r\n", "CLIENT", "KILL", "foo", "bar")
	c.expect("-ERR syntax error\r\n", "CLIENT", "KILL", "a", "b", "c")
	c.expect("-ERR Unknown client type 'foo'\r\n", "CLIENT", "KILL", "TYPE", "foo")
	c.expect("-ERR No such user 'bob'\r\n", "CLIENT", "KILL", "USER", "bob")
	// Kill the other connection by id, then by address (already gone).
	otherID := strings.TrimSpace(strings.TrimPrefix(other.do("CLIENT", "ID"), ":"))
	otherAddr := other.nc.LocalAddr().String()
	c.expect(":1\r\n", "CLIENT", "KILL", "ID", otherID)
	other.expectClosed("")
	c.expect("-ERR No such client\r\n", "CLIENT", "KILL", otherAddr)
	// SKIPME defaults to yes with the new form.
	c.expect(":0\r\n", "CLIENT", "KILL", "ID", strings.Trim(id, ":\r\n"))
	c.expect(":1\r\n", "CLIENT", "KILL", "ID", strings.Trim(id, ":\r\n"), "SKIPME", "no")
	c.expectClosed("")

	third := dial(t, addr)
	help := third.do("CLIENT", "HELP")
	if !strings.HasPrefix(help, "*") || !strings.Contains(help, "+CLIENT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:\r\n") {
		t.Errorf("CLIENT HELP = %q", help)
	}
	// The old form may kill the caller itself.
	third.expect("+OK\r\n", "CLIENT", "KILL", third.nc.LocalAddr().String())
	third.expectClosed("")
}

func TestHello(t *testing.T) {
	_, addr := startServer(t, Options{NoActiveExpiry: true})
	c := dial(t, addr)
	id := strings.Trim(c.do("CLIENT", "ID"), ":\r\n")
	hello := func(proto int) string {
		return fmt.Sprintf("$6\r\nserver\r\n$5\r\nredis\r\n$7\r\nversion\r\n$6\r\n7.0.15\r\n$5\r\nproto\r\n:%d\r\n"+
			"$2\r\nid\r\n:%s\r\n$4\r\nmode\r\n$10\r\nstandalone\r\n$4\r\nrole\r\n$6\r\nmaster\r\n$7\r\nmodules\r\n*0\r\n", proto, id)
	}
	c.expect("*14\r\n"+hello(2), "HELLO")
	c.expect("-NOPROTO unsupported protocol version\r\n", "HELLO", "4")
	c.expect("-NOPROTO unsupported protocol version\r\n", "HELLO", "1")
	c.expect("-ERR Protocol version is not an integer or out of range\r\n", "HELLO", "x")
	c.expect("-ERR Protocol version is not an integer or out of range\r\n", "HELLO", "3.0")
	c.expect("-ERR Syntax error in HELLO option 'foo'\r\n", "HELLO", "3", "foo")
	c.expect("-ERR Syntax error in HELLO option 'setname'\r\n", "HELLO", "2", "setname")
	c.expect("-ERR Syntax error in HELLO option 'auth'\r\n", "HELLO", "2", "auth", "a")
	c.expect("-ERR Client names cannot contain spaces, newlines or special characters.\r\n", "HELLO", "2", "SETNAME", "a b")
	c.expect("%7\r\n"+hello(3), "HELLO", "3", "SETNAME", "n3")
	// RESP3 from now on.
	c.expect("$2\r\nn3\r\n", "CLIENT", "GETNAME")
	c.expect("+OK\r\n", "CLIENT", "SETNAME", "") // an empty name removes the name
	c.expect("_\r\n", "CLIENT", "GETNAME")
	c.expect("%1\r\n$10\r\nmaxclients\r\n$5\r\n10000\r\n", "CONFIG", "GET", "maxclients")
	c.expect("*2\r\n_\r\n_\r\n", "COMMAND", "INFO", "a", "b") // unknown names: nulls
	c.expect("*14\r\n"+hello(2), "HELLO", "2")
	c.expect("$-1\r\n", "CLIENT", "GETNAME")
}
