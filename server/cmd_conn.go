package server

import (
	"crypto/subtle"
	"math"
	"strings"
	"time"

	"concord/crdt"
)

// Connection commands: PING, ECHO, SELECT, QUIT, RESET, AUTH, HELLO and
// CLIENT. Replies and error texts are Redis 7.0's (CLIENT SETINFO is 7.2's).

var (
	errSyntax  = crdt.ErrSyntax
	errNotInt  = crdt.ErrNotInt
	errNoAuth  = crdt.Err("NOAUTH Authentication required.")
	errBadPass = crdt.Err("WRONGPASS invalid username-password pair or user is disabled.")
)

// Flag and category sets shared by the connection commands (COMMAND INFO).
var (
	flagsConnFast   = []string{"loading", "stale", "fast"}
	flagsNoAuth     = []string{"noscript", "loading", "stale", "fast", "no_auth", "allow_busy"}
	catsFastConn    = []string{"fast", "connection"}
	flagsClient     = []string{"noscript", "loading", "stale"}
	flagsClientAdm  = []string{"admin", "noscript", "loading", "stale"}
	catsSlowConn    = []string{"slow", "connection"}
	catsClientAdmin = []string{"admin", "slow", "dangerous", "connection"}
)

func connCommands() []*command {
	return []*command{
		{name: "ping", pubsubOK: true, arity: -1, flags: []string{"fast"}, cats: catsFastConn,
			tips: []string{"request_policy:all_shards", "response_policy:all_succeeded"}, run: cmdPing},
		{name: "echo", arity: 2, flags: flagsConnFast, cats: catsFastConn, run: cmdEcho},
		{name: "select", arity: 2, flags: flagsConnFast, cats: catsFastConn, run: cmdSelect},
		{name: "quit", pubsubOK: true, arity: -1, flags: flagsNoAuth, cats: catsFastConn, noAuth: true, run: cmdQuit},
		{name: "reset", pubsubOK: true, arity: 1, flags: flagsNoAuth, cats: catsFastConn, noAuth: true, run: cmdReset},
		{name: "auth", arity: -2, flags: flagsNoAuth, cats: catsFastConn, noAuth: true, run: cmdAuth},
		{name: "hello", arity: -1, flags: flagsNoAuth, cats: catsFastConn, noAuth: true, run: cmdHello},
		container("client", []string{"slow"},
			&command{name: "id", arity: 2, flags: flagsClient, cats: catsSlowConn, run: cmdClientID},
			&command{name: "info", arity: 2, flags: flagsClient, cats: catsSlowConn,
				tips: []string{"nondeterministic_output"}, run: cmdClientInfo},
			&command{name: "list", arity: -2, flags: flagsClientAdm, cats: catsClientAdmin,
				tips: []string{"nondeterministic_output"}, run: cmdClientList},
			&command{name: "setname", arity: 3, flags: flagsClient, cats: catsSlowConn, run: cmdClientSetName},
			&command{name: "getname", arity: 2, flags: flagsClient, cats: catsSlowConn, run: cmdClientGetName},
			&command{name: "setinfo", arity: 4, flags: flagsClient, cats: catsSlowConn, run: cmdClientSetInfo},
			&command{name: "kill", arity: -3, flags: flagsClientAdm, cats: catsClientAdmin, run: cmdClientKill},
			&command{name: "unblock", arity: -3, flags: []string{"admin", "noscript", "loading", "stale"},
				cats: catsClientAdmin, run: cmdClientUnblock},
			&command{name: "no-evict", arity: 3, flags: flagsClientAdm, cats: catsClientAdmin, run: cmdClientNoEvict},
			&command{name: "help", arity: 2, flags: []string{"loading", "stale"}, cats: catsSlowConn, run: cmdClientHelp},
		),
	}
}

// container builds a command with subcommands; subcommand names are given
// short and become "parent|sub".
func container(name string, cats []string, subs ...*command) *command {
	c := &command{name: name, arity: -2, cats: cats, subs: make(map[string]*command)}
	for _, s := range subs {
		short := s.name
		s.name = name + "|" + short
		c.subs[short] = s
	}
	return c
}

func cmdPing(c *client, args [][]byte) crdt.Reply {
	if len(args) > 2 {
		return errArity("ping")
	}
	if c.resp == 2 && c.subscribedAny() {
		// Redis answers a subscribed RESP2 client as if PONG were a
		// message, so that it can tell the reply among the messages.
		arg := []byte{}
		if len(args) == 2 {
			arg = args[1]
		}
		return crdt.Array(crdt.BulkString("pong"), crdt.Bulk(arg))
	}
	if len(args) == 2 {
		return crdt.Bulk(args[1])
	}
	return crdt.Status("PONG")
}

func cmdEcho(c *client, args [][]byte) crdt.Reply { return crdt.Bulk(args[1]) }

func cmdSelect(c *client, args [][]byte) crdt.Reply {
	n, r := parseDB(args[1])
	if r.Kind == crdt.KindError {
		return r
	}
	c.mu.Lock()
	c.db = n
	c.mu.Unlock()
	return crdt.OK
}

// parseDB parses SELECT's argument: the database, or the error reply.
func parseDB(arg []byte) (int, crdt.Reply) {
	n, ok := string2ll(arg)
	if !ok {
		return 0, errNotInt
	}
	if n < math.MinInt32 || n > math.MaxInt32 {
		return 0, crdt.Err("ERR value is out of range, value must between -2147483648 and 2147483647")
	}
	if n < 0 || n >= crdt.NumDBs {
		return 0, crdt.ErrDBIndex
	}
	return int(n), crdt.OK
}

// selectDB reports the database SELECT arg would switch to (EXEC uses it
// to address the data commands queued after a SELECT).
func selectDB(arg []byte) (int, bool) {
	n, r := parseDB(arg)
	return n, r.Kind != crdt.KindError
}

func cmdQuit(c *client, args [][]byte) crdt.Reply {
	c.closeAfter = true
	return crdt.OK
}

func cmdReset(c *client, args [][]byte) crdt.Reply {
	c.resetState()
	return crdt.Status("RESET")
}

// checkPass compares in constant time so the password cannot be guessed
// byte by byte from response times.
func checkPass(got []byte, want string) bool {
	return subtle.ConstantTimeCompare(got, []byte(want)) == 1
}

// authenticate implements ACLAuthenticateUser for the only user there is,
// "default", whose password is requirepass (none: any password works).
func (c *client) authenticate(user, pass []byte) bool {
	if string(user) != "default" {
		return false
	}
	want := c.srv.requirePass()
	if want != "" && !checkPass(pass, want) {
		return false
	}
	c.authenticated = true
	return true
}

func cmdAuth(c *client, args [][]byte) crdt.Reply {
	if len(args) > 3 {
		return errSyntax
	}
	user, pass := []byte("default"), args[1]
	if len(args) == 2 {
		if c.srv.requirePass() == "" {
			return crdt.Err("ERR AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?")
		}
	} else {
		user, pass = args[1], args[2]
	}
	if !c.authenticate(user, pass) {
		return errBadPass
	}
	return crdt.OK
}

func cmdHello(c *client, args [][]byte) crdt.Reply {
	ver := int64(0)
	next := 1
	if len(args) >= 2 {
		v, ok := string2ll(args[1])
		if !ok {
			return crdt.Err("ERR Protocol version is not an integer or out of range")
		}
		if v < 2 || v > 3 {
			return crdt.Err("NOPROTO unsupported protocol version")
		}
		ver = v
		next = 2
	}
	for j := next; j < len(args); j++ {
		more := len(args) - 1 - j
		opt := strings.ToLower(string(args[j]))
		switch {
		case opt == "auth" && more >= 2:
			if !c.authenticate(args[j+1], args[j+2]) {
				return errBadPass
			}
			j += 2
		case opt == "setname" && more >= 1:
			if !validName(args[j+1]) {
				return errBadName
			}
			c.setName(args[j+1])
			j++
		default:
			return crdt.Err("ERR Syntax error in HELLO option '" + cstr(args[j], -1) + "'")
		}
	}
	if !c.authenticated && c.srv.requirePass() != "" {
		return crdt.Err("NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO AUTH <user> <pass> option can be used to authenticate the client and select the RESP protocol version at the same time")
	}
	if ver != 0 {
		c.mu.Lock()
		c.resp = int(ver)
		c.mu.Unlock()
		c.presp.Store(int32(ver))
	}
	return crdt.Reply{Kind: crdt.KindMap, Elems: []crdt.Reply{
		crdt.BulkString("server"), crdt.BulkString("redis"),
		crdt.BulkString("version"), crdt.BulkString(Version),
		crdt.BulkString("proto"), crdt.Int(int64(c.resp)),
		crdt.BulkString("id"), crdt.Int(c.id),
		crdt.BulkString("mode"), crdt.BulkString("standalone"),
		crdt.BulkString("role"), crdt.BulkString(c.srv.helloRole()),
		crdt.BulkString("modules"), crdt.Array(),
	}}
}

var errBadName = crdt.Err("ERR Client names cannot contain spaces, newlines or special characters.")

// validName reports whether s may be a client name or library attribute:
// printable ASCII without spaces, so CLIENT LIST stays splittable.
func validName(s []byte) bool {
	for _, b := range s {
		if b < '!' || b > '~' {
			return false
		}
	}
	return true
}

func (c *client) setName(name []byte) {
	c.mu.Lock()
	c.name = string(name)
	c.mu.Unlock()
}

func cmdClientID(c *client, args [][]byte) crdt.Reply { return crdt.Int(c.id) }

func cmdClientInfo(c *client, args [][]byte) crdt.Reply {
	return verbatim(c.infoLine(time.Now()) + "\n")
}

func cmdClientList(c *client, args [][]byte) crdt.Reply {
	var list []*client
	switch {
	case len(args) == 4 && strings.EqualFold(string(args[2]), "type"):
		t, ok := clientType(args[3])
		if !ok {
			return crdt.Err("ERR Unknown client type '" + cstr(args[3], -1) + "'")
		}
		for _, o := range c.srv.clientList() {
			if o.clientType() == t {
				list = append(list, o)
			}
		}
	case len(args) > 3 && strings.EqualFold(string(args[2]), "id"):
		byID := map[int64]*client{}
		for _, o := range c.srv.clientList() {
			byID[o.id] = o
		}
		for _, a := range args[3:] {
			id, ok := string2ll(a)
			if !ok {
				return crdt.Err("ERR Invalid client ID")
			}
			if o := byID[id]; o != nil {
				list = append(list, o)
			}
		}
	case len(args) != 2:
		return errSyntax
	default:
		list = c.srv.clientList()
	}
	now := time.Now()
	var b strings.Builder
	for _, o := range list {
		b.WriteString(o.infoLine(now))
		b.WriteByte('\n')
	}
	return verbatim(b.String())
}

// clientType maps a client type name to the one Concord knows: a
// connection is "pubsub" while it has subscriptions, else "normal"; the
// others are valid names with no clients.
func clientType(name []byte) (string, bool) {
	switch strings.ToLower(string(name)) {
	case "normal":
		return "normal", true
	case "slave", "replica":
		return "replica", true
	case "pubsub":
		return "pubsub", true
	case "master":
		return "master", true
	}
	return "", false
}

// infoLine is the client's CLIENT LIST line. Fields whose figures Concord
// does not keep (buffer sizes and memory) are left out; the rest are real.
func (c *client) infoLine(now time.Time) string {
	c.mu.Lock()
	name, db, resp, libName, libVer, readonly := c.name, c.db, c.resp, c.libName, c.libVer, c.readonly
	c.mu.Unlock()
	cmd := "NULL"
	if last := c.lastCmd.Load(); last != nil {
		cmd = last.name
	}
	idle := now.Sub(time.Unix(0, c.lastActive.Load()))
	// In Redis's order; "N" when there is none.
	flags := ""
	if c.subscribedAny() {
		flags += "P"
	}
	multi := c.multiN.Load()
	if multi >= 0 {
		flags += "x"
	}
	if c.srv.blk != nil && c.srv.blk.isBlocked(c.id) {
		flags += "b"
	}
	if c.closeAfterSafe() {
		flags += "c"
	}
	if readonly {
		flags += "r"
	}
	if flags == "" {
		flags = "N"
	}
	return "id=" + itoa(c.id) + " addr=" + c.addr + " laddr=" + c.laddr + " fd=" + itoa(int64(c.fd)) +
		" name=" + name + " age=" + itoa(int64(now.Sub(c.created)/time.Second)) +
		" idle=" + itoa(int64(idle/time.Second)) + " flags=" + flags + " db=" + itoa(int64(db)) +
		" sub=" + itoa(c.nsubs[subChannel].Load()) + " psub=" + itoa(c.nsubs[subPattern].Load()) +
		" ssub=" + itoa(c.nsubs[subShard].Load()) + " multi=" + itoa(multi) + " cmd=" + cmd + " user=default redir=-1 resp=" + itoa(int64(resp)) +
		" lib-name=" + libName + " lib-ver=" + libVer
}

// clientType is Redis's getClientType as CLIENT LIST and KILL filter it.
func (c *client) clientType() string {
	if c.subscribedAny() {
		return "pubsub"
	}
	return "normal"
}

// closeAfterSafe reports a pending close as seen from any goroutine.
func (c *client) closeAfterSafe() bool { return c.killed.Load() }

func cmdClientSetName(c *client, args [][]byte) crdt.Reply {
	if !validName(args[2]) {
		return errBadName
	}
	c.setName(args[2])
	return crdt.OK
}

func cmdClientGetName(c *client, args [][]byte) crdt.Reply {
	c.mu.Lock()
	name := c.name
	c.mu.Unlock()
	if name == "" {
		return crdt.Nil
	}
	return crdt.BulkString(name)
}

func cmdClientSetInfo(c *client, args [][]byte) crdt.Reply {
	attr := strings.ToLower(string(args[2]))
	if attr != "lib-name" && attr != "lib-ver" {
		return crdt.Err("ERR Unrecognized option '" + cstr(args[2], -1) + "'")
	}
	if !validName(args[3]) {
		return crdt.Err("ERR " + cstr(args[2], -1) + " cannot contain spaces, newlines or special characters.")
	}
	c.mu.Lock()
	if attr == "lib-name" {
		c.libName = string(args[3])
	} else {
		c.libVer = string(args[3])
	}
	c.mu.Unlock()
	return crdt.OK
}

func cmdClientKill(c *client, args [][]byte) crdt.Reply {
	var (
		addr, laddr string
		haveAddr    bool
		haveLaddr   bool
		typ         = ""
		id          int64
		skipme      = true
	)
	if len(args) == 3 {
		addr, haveAddr, skipme = string(args[2]), true, false
	} else {
		for i := 2; i < len(args); i += 2 {
			more := i+1 < len(args)
			opt := strings.ToLower(string(args[i]))
			switch {
			case opt == "id" && more:
				n, ok := string2ll(args[i+1])
				if !ok || n < 1 {
					return crdt.Err("ERR client-id should be greater than 0")
				}
				id = n
			case opt == "type" && more:
				t, ok := clientType(args[i+1])
				if !ok {
					return crdt.Err("ERR Unknown client type '" + cstr(args[i+1], -1) + "'")
				}
				typ = t
			case opt == "addr" && more:
				addr, haveAddr = string(args[i+1]), true
			case opt == "laddr" && more:
				laddr, haveLaddr = string(args[i+1]), true
			case opt == "user" && more:
				if string(args[i+1]) != "default" {
					return crdt.Err("ERR No such user '" + cstr(args[i+1], -1) + "'")
				}
			case opt == "skipme" && more:
				switch strings.ToLower(string(args[i+1])) {
				case "yes":
					skipme = true
				case "no":
					skipme = false
				default:
					return errSyntax
				}
			default:
				return errSyntax
			}
		}
	}
	killed := 0
	for _, o := range c.srv.clientList() {
		switch {
		case haveAddr && o.addr != addr,
			haveLaddr && o.laddr != laddr,
			typ != "" && typ != o.clientType(),
			id != 0 && o.id != id,
			o == c && skipme,
			// Redis frees a killed client at once; here its goroutine may
			// still be winding down, but it is gone for CLIENT KILL.
			o != c && o.killed.Load():
			continue
		}
		if o == c {
			c.closeAfter = true
		} else {
			o.kill()
		}
		killed++
	}
	if len(args) == 3 {
		if killed == 0 {
			return crdt.Err("ERR No such client")
		}
		return crdt.OK
	}
	return crdt.Int(int64(killed))
}

// cmdClientNoEvict accepts the flag; Concord never evicts clients, so it
// changes nothing.
func cmdClientNoEvict(c *client, args [][]byte) crdt.Reply {
	switch strings.ToLower(string(args[2])) {
	case "on", "off":
		return crdt.OK
	}
	return errSyntax
}

func cmdClientHelp(c *client, args [][]byte) crdt.Reply {
	return helpReply(args[0], []string{
		"GETNAME",
		"    Return the name of the current connection.",
		"ID",
		"    Return the ID of the current connection.",
		"INFO",
		"    Return information about the current client connection.",
		"KILL <ip:port>",
		"    Kill connection made from <ip:port>.",
		"KILL <option> <value> [<option> <value> [...]]",
		"    Kill connections. Options are:",
		"    * ADDR (<ip:port>|<unixsocket>:0)",
		"      Kill connections made from the specified address",
		"    * LADDR (<ip:port>|<unixsocket>:0)",
		"      Kill connections made to specified local address",
		"    * TYPE (NORMAL|MASTER|REPLICA|PUBSUB)",
		"      Kill connections by type.",
		"    * USER <username>",
		"      Kill connections authenticated by <username>.",
		"    * SKIPME (YES|NO)",
		"      Skip killing current connection (default: yes).",
		"LIST [options ...]",
		"    Return information about client connections. Options:",
		"    * TYPE (NORMAL|MASTER|REPLICA|PUBSUB)",
		"      Return clients of specified type.",
		"SETNAME <name>",
		"    Assign the name <name> to the current connection.",
		"SETINFO <LIB-NAME|LIB-VER> <value>",
		"    Set client library name or version.",
		"UNBLOCK <clientid> [TIMEOUT|ERROR]",
		"    Unblock the specified blocked client.",
		"NO-EVICT (ON|OFF)",
		"    Protect current client connection from eviction.",
	})
}

// helpReply is Redis's addReplyHelp: a heading, the lines, then HELP.
func helpReply(cmd []byte, lines []string) crdt.Reply {
	out := make([]crdt.Reply, 0, len(lines)+3)
	out = append(out, crdt.Status(strings.ToUpper(string(cmd))+" <subcommand> [<arg> [value] [opt] ...]. Subcommands are:"))
	for _, l := range lines {
		out = append(out, crdt.Status(l))
	}
	out = append(out, crdt.Status("HELP"), crdt.Status("    Prints this help."))
	return crdt.Array(out...)
}

// cmdClientUnblock is CLIENT UNBLOCK id [TIMEOUT|ERROR]: the blocked client
// gets its timeout reply, or the UNBLOCKED error. Arguments are checked in
// Redis's order (the reason before the id).
func cmdClientUnblock(c *client, args [][]byte) crdt.Reply {
	if len(args) > 4 {
		return crdt.Err("ERR unknown subcommand or wrong number of arguments for '" + cstr(args[1], 128) +
			"'. Try CLIENT HELP.")
	}
	r := crdt.NilArray
	if len(args) == 4 {
		switch strings.ToLower(string(args[3])) {
		case "timeout":
		case "error":
			r = errUnblocked
		default:
			return crdt.Err("ERR CLIENT UNBLOCK reason should be TIMEOUT or ERROR")
		}
	}
	id, ok := string2ll(args[2])
	if !ok {
		return crdt.ErrNotInt
	}
	if c.srv.blk != nil && c.srv.blk.unblock(id, r) {
		return crdt.Int(1)
	}
	return crdt.Int(0)
}
