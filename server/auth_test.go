package server

import (
	"strings"
	"testing"
)

func TestAuth(t *testing.T) {
	_, addr := startServer(t, Options{RequirePass: "secret", NoActiveExpiry: true})
	c := dial(t, addr)
	noauth := "-NOAUTH Authentication required.\r\n"
	wrongpass := "-WRONGPASS invalid username-password pair or user is disabled.\r\n"
	// Existence and arity are checked before authentication, as in Redis.
	c.expect("-ERR unknown command 'foo', with args beginning with: \r\n", "foo")
	c.expect("-ERR wrong number of arguments for 'echo' command\r\n", "ECHO")
	c.expect(noauth, "PING")
	c.expect(noauth, "CLIENT", "ID")
	c.expect(noauth, "CONFIG", "GET", "requirepass")
	c.expect(wrongpass, "AUTH", "x")
	c.expect(wrongpass, "AUTH", "default", "x")
	c.expect(wrongpass, "AUTH", "bob", "secret")
	c.expect("-ERR syntax error\r\n", "AUTH", "a", "b", "c")
	c.expect(wrongpass, "HELLO", "3", "AUTH", "default", "x")
	c.expect("-NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO AUTH <user> <pass> option can be used to authenticate the client and select the RESP protocol version at the same time\r\n", "HELLO", "3")
	c.expect(noauth, "PING")
	c.expect("+OK\r\n", "AUTH", "secret")
	c.expect("+PONG\r\n", "PING")
	// A failed AUTH does not undo an earlier success.
	c.expect(wrongpass, "AUTH", "nope")
	c.expect("+PONG\r\n", "PING")
	// RESET returns to a new connection's state: not authenticated.
	c.expect("+RESET\r\n", "RESET")
	c.expect(noauth, "PING")
	if r := c.do("HELLO", "3", "AUTH", "default", "secret", "SETNAME", "x"); !strings.HasPrefix(r, "%7\r\n") {
		t.Fatalf("HELLO 3 AUTH = %q", r)
	}
	c.expect("+PONG\r\n", "PING")
	c.expect("%1\r\n$11\r\nrequirepass\r\n$6\r\nsecret\r\n", "CONFIG", "GET", "requirepass")

	// Unauthenticated clients may send at most 10 arguments of 16 KB
	// (CVE-2021-32675); the connection is closed after the error.
	u := dial(t, addr)
	u.send("*11\r\n")
	u.expectClosed("-ERR Protocol error: unauthenticated multibulk length\r\n")
	u = dial(t, addr)
	u.send("*2\r\n$4\r\nAUTH\r\n$16385\r\n")
	u.expectClosed("-ERR Protocol error: unauthenticated bulk length\r\n")
	u = dial(t, addr)
	u.expect("-ERR wrong number of arguments for 'echo' command\r\n", "ECHO", "1", "2", "3", "4", "5", "6", "7", "8", "9")
	u.expect(wrongpass, "AUTH", strings.Repeat("p", 16384))
	u.expect("+OK\r\n", "AUTH", "default", "secret")
	// Authenticated: the limits are gone.
	long := strings.Repeat("v", 20000)
	u.expect("$20000\r\n"+long+"\r\n", "ECHO", long)
	u.expect("-ERR wrong number of arguments for 'ping' command\r\n", "PING", "1", "2", "3", "4", "5", "6", "7", "8", "9", "10", "11")

	// Clearing requirepass lets everyone in; setting it again keeps
	// connections that were open without one authenticated (Redis: they
	// authenticated as the nopass default user when they connected).
	waiting := dial(t, addr)
	waiting.expect(noauth, "PING")
	c.expect("+OK\r\n", "CONFIG", "SET", "requirepass", "")
	waiting.expect("+PONG\r\n", "PING")
	fresh := dial(t, addr)
	fresh.expect("+PONG\r\n", "PING")
	c.expect("+OK\r\n", "CONFIG", "SET", "requirepass", "again")
	fresh.expect("+PONG\r\n", "PING")
	waiting.expect(noauth, "PING")
	dial(t, addr).expect(noauth, "PING")
}

func TestAuthWithoutPassword(t *testing.T) {
	_, addr := startServer(t, Options{NoActiveExpiry: true})
	c := dial(t, addr)
	c.expect("-ERR AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?\r\n", "AUTH", "x")
	c.expect("+OK\r\n", "AUTH", "default", "anything")
	c.expect("-WRONGPASS invalid username-password pair or user is disabled.\r\n", "AUTH", "bob", "x")
	// Without a password there is no unauthenticated limit.
	args := []string{"PING"}
	for i := 0; i < 20; i++ {
		args = append(args, "x")
	}
	c.expect("-ERR wrong number of arguments for 'ping' command\r\n", args...)
}
