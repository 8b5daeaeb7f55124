package server

import "testing"

// With RefuseFlush, FLUSHALL and FLUSHDB answer an error and remove
// nothing, also inside MULTI-free pipelines; other writes still work.
func TestRefuseFlush(t *testing.T) {
	_, addr := startServer(t, Options{RefuseFlush: true, NoActiveExpiry: true})
	c := dial(t, addr)
	c.expect("+OK\r\n", "SET", "k", "v")
	c.expect("-ERR FLUSHALL is disabled on this server (flush-commands refuse)\r\n", "FLUSHALL")
	c.expect("-ERR FLUSHALL is disabled on this server (flush-commands refuse)\r\n", "flushall", "ASYNC")
	c.expect("-ERR FLUSHDB is disabled on this server (flush-commands refuse)\r\n", "FLUSHDB")
	c.expect("$1\r\nv\r\n", "GET", "k")
	c.expect(":1\r\n", "DBSIZE")

	_, addr = startServer(t, Options{NoActiveExpiry: true})
	c = dial(t, addr)
	c.expect("+OK\r\n", "SET", "k", "v")
	c.expect("+OK\r\n", "FLUSHALL")
	c.expect(":0\r\n", "DBSIZE")
}
