package server

import (
	"strconv"
	"strings"
	"time"

	"concord/crdt"
)

// Server commands: COMMAND, INFO (info.go), CONFIG (config.go), TIME,
// LASTSAVE, FUNCTION FLUSH and DEBUG SLEEP; region commands are in
// cmd_region.go.

func serverCommands() []*command {
	cmds := connCommands()
	cmds = append(cmds, regionCommands()...)
	cmds = append(cmds, pubsubCommands()...)
	cmds = append(cmds, txCommands()...)
	cmds = append(cmds, slowlogCommands())
	cmds = append(cmds,
		&command{name: "info", arity: -1, flags: []string{"loading", "stale"}, cats: []string{"slow", "dangerous"},
			tips: []string{"nondeterministic_output", "request_policy:all_shards", "response_policy:special"}, run: cmdInfo},
		&command{name: "time", arity: 1, flags: flagsConnFast, cats: []string{"fast"},
			tips: []string{"nondeterministic_output"}, run: cmdTime},
		&command{name: "lastsave", arity: 1, flags: flagsConnFast, cats: []string{"admin", "fast", "dangerous"},
			tips: []string{"nondeterministic_output"}, run: cmdLastSave},
		&command{name: "shutdown", arity: -1, flags: []string{"admin", "noscript", "loading", "stale", "no_multi", "allow_busy"},
			cats: []string{"admin", "slow", "dangerous"}, run: cmdShutdown},
		&command{name: "debug", arity: -2, flags: []string{"admin", "noscript", "loading", "stale"},
			cats: []string{"admin", "slow", "dangerous"}, run: cmdDebug},
		configCommands(),
		commandCommands(),
		container("function", []string{"slow"},
			&command{name: "flush", arity: -2, flags: []string{"write", "noscript"}, cats: []string{"write", "slow", "scripting"},
				tips: []string{"request_policy:all_shards", "response_policy:all_succeeded"}, run: cmdFunctionFlush},
			&command{name: "help", arity: 2, flags: []string{"loading", "stale"}, cats: []string{"slow", "scripting"}, run: cmdFunctionHelp},
		),
	)
	return cmds
}

// cmdShutdown stops the node. Nothing is persisted yet, so SAVE cannot be
// honoured and is refused; NOSAVE, NOW and FORCE change nothing. As in
// Redis, a successful SHUTDOWN closes the connection without a reply.
func cmdShutdown(c *client, args [][]byte) crdt.Reply {
	for _, a := range args[1:] {
		switch strings.ToLower(string(a)) {
		case "nosave", "now", "force":
		case "abort":
			return crdt.Err("ERR No shutdown in progress.")
		case "save":
			c.srv.log.Warn("SHUTDOWN SAVE refused: this node has no persistence")
			return crdt.Err("ERR Errors trying to SHUTDOWN. Check logs.")
		default:
			return crdt.ErrSyntax
		}
	}
	if c.srv.opts.Shutdown == nil {
		c.srv.log.Warn("SHUTDOWN refused: no shutdown hook configured")
		return crdt.Err("ERR Errors trying to SHUTDOWN. Check logs.")
	}
	c.srv.log.Info("SHUTDOWN requested", "client", c.id, "addr", c.addr)
	c.discard = true
	c.closeAfter = true
	c.srv.shutdownOnce.Do(func() { go c.srv.opts.Shutdown() })
	return crdt.OK
}

func cmdTime(c *client, args [][]byte) crdt.Reply {
	now := time.Now()
	return crdt.Array(crdt.BulkString(itoa(now.Unix())), crdt.BulkString(itoa(int64(now.Nanosecond()/1000))))
}

// cmdLastSave answers the server's start time: Concord has no persistence
// yet, so nothing was ever saved and the start is when the (empty) state was
// last consistent with "disk", as Redis reports for a fresh server.
func cmdLastSave(c *client, args [][]byte) crdt.Reply {
	return crdt.Int(c.srv.started.Unix())
}

// cmdFunctionFlush: Concord has no functions, so there is nothing to flush.
func cmdFunctionFlush(c *client, args [][]byte) crdt.Reply {
	if len(args) > 3 {
		return crdt.Err("ERR unknown subcommand or wrong number of arguments for '" + cstr(args[1], 128) + "'. Try FUNCTION HELP.")
	}
	if len(args) == 3 {
		switch strings.ToLower(string(args[2])) {
		case "sync", "async":
		default:
			return crdt.Err("ERR FUNCTION FLUSH only supports SYNC|ASYNC option")
		}
	}
	return crdt.OK
}

func cmdFunctionHelp(c *client, args [][]byte) crdt.Reply {
	return helpReply(args[0], []string{
		"FLUSH [ASYNC|SYNC]",
		"    Delete all the libraries.",
		"    When called without the optional mode argument, the behavior is determined by the",
		"    lazyfree-lazy-user-flush configuration directive. Valid modes are:",
		"    * ASYNC: Asynchronously flush the libraries.",
		"    * SYNC: Synchronously flush the libraries.",
	})
}

// cmdDebug implements DEBUG SLEEP <seconds> (it stalls only the calling
// connection, not the whole server as in Redis) and DEBUG HELP.
func cmdDebug(c *client, args [][]byte) crdt.Reply {
	sub := strings.ToLower(string(args[1]))
	switch {
	case sub == "sleep" && len(args) == 3:
		secs, err := strconv.ParseFloat(string(args[2]), 64)
		if err != nil {
			secs = 0 // strtod: no number means 0
		}
		if secs > 0 {
			select {
			case <-time.After(time.Duration(secs * float64(time.Second))):
			case <-c.srv.done:
			}
		}
		return crdt.OK
	case sub == "help" && len(args) == 2:
		return helpReply(args[0], []string{
			"SLEEP <seconds>",
			"    Stop the server for <seconds>. Decimals allowed.",
		})
	}
	return crdt.Err("ERR unknown subcommand or wrong number of arguments for '" + cstr(args[1], 128) +
		"'. Try DEBUG HELP.")
}

// ---- COMMAND ----

func commandCommands() *command {
	fl := []string{"loading", "stale"}
	cats := []string{"slow", "connection"}
	order := []string{"nondeterministic_output_order"}
	c := container("command", cats,
		&command{name: "count", arity: 2, flags: fl, cats: cats, run: cmdCommandCount},
		&command{name: "docs", arity: -2, flags: fl, cats: cats, tips: order, run: cmdCommandDocs},
		&command{name: "getkeys", arity: -4, flags: fl, cats: cats, run: cmdCommandGetKeys},
		&command{name: "getkeysandflags", arity: -4, flags: fl, cats: cats, run: cmdCommandGetKeys},
		&command{name: "info", arity: -2, flags: fl, cats: cats, tips: order, run: cmdCommandInfo},
		&command{name: "list", arity: -2, flags: fl, cats: cats, tips: order, run: cmdCommandList},
		&command{name: "help", arity: 2, flags: fl, cats: cats, run: cmdCommandHelp},
	)
	c.arity, c.flags, c.tips, c.run = -1, fl, order, cmdCommand
	return c
}

func statuses(ss []string, prefix string) crdt.Reply {
	out := make([]crdt.Reply, len(ss))
	for i, s := range ss {
		out[i] = crdt.Status(prefix + s)
	}
	return crdt.Reply{Kind: crdt.KindSet, Elems: out}
}

func bulkSet(ss []string) crdt.Reply {
	out := make([]crdt.Reply, len(ss))
	for i, s := range ss {
		out[i] = crdt.BulkString(s)
	}
	return crdt.Reply{Kind: crdt.KindSet, Elems: out}
}

func kv(pairs ...crdt.Reply) crdt.Reply { return crdt.Reply{Kind: crdt.KindMap, Elems: pairs} }

// keySpecFlags are the key-spec flags Concord reports: it knows only
// whether a command writes.
func (cmd *command) keySpecFlags() []string {
	if cmd.keyFlags != nil {
		return cmd.keyFlags
	}
	if cmd.block != nil {
		return []string{"RW", "access", "delete"} // every blocking command pops
	}
	if cmd.isWrite() {
		return []string{"RW", "update"}
	}
	return []string{"RO", "access"}
}

// commandInfo is COMMAND INFO's entry for cmd.
func commandInfo(cmd *command) crdt.Reply {
	specs := crdt.Reply{Kind: crdt.KindSet, Elems: cmd.keySpecs()}
	if specs.Elems == nil {
		specs.Elems = []crdt.Reply{}
	}
	subs := crdt.Reply{Kind: crdt.KindSet, Elems: []crdt.Reply{}}
	if cmd.subs != nil {
		subs = crdt.Array()
		for _, s := range cmd.subList() {
			subs.Elems = append(subs.Elems, commandInfo(s))
		}
	}
	return crdt.Array(
		crdt.BulkString(cmd.name),
		crdt.Int(int64(cmd.arity)),
		statuses(cmd.infoFlags(), ""),
		crdt.Int(int64(cmd.firstKey)),
		crdt.Int(int64(cmd.lastKey)),
		crdt.Int(int64(cmd.step)),
		statuses(cmd.cats, "@"),
		bulkSet(cmd.tips),
		specs,
		subs,
	)
}

// group is the command's documentation group (COMMAND DOCS).
func (cmd *command) group() string {
	name, _, _ := strings.Cut(cmd.name, "|")
	switch name {
	case "ping", "echo", "select", "quit", "reset", "auth", "hello", "client":
		return "connection"
	case "function":
		return "scripting"
	case "readonly", "readwrite", "region":
		return "cluster"
	case "subscribe", "unsubscribe", "psubscribe", "punsubscribe", "ssubscribe", "sunsubscribe",
		"publish", "spublish", "pubsub":
		return "pubsub"
	}
	if cmd.data == nil && cmd.block == nil {
		return "server"
	}
	for _, c := range cmd.cats {
		switch c {
		case "string", "hash", "set", "list":
			return c
		case "sortedset":
			return "sorted-set"
		case "keyspace":
			return "generic"
		}
	}
	return "server"
}

// commandDocs is a minimal but well-formed COMMAND DOCS entry.
func commandDocs(cmd *command) crdt.Reply {
	m := kv(crdt.BulkString("group"), crdt.BulkString(cmd.group()))
	if cmd.subs != nil {
		subs := kv()
		for _, s := range cmd.subList() {
			subs.Elems = append(subs.Elems, crdt.BulkString(s.name), commandDocs(s))
		}
		m.Elems = append(m.Elems, crdt.BulkString("subcommands"), subs)
	}
	return m
}

// lookupFullName finds a command by its full name ("get", "client|list").
func (s *Server) lookupFullName(name []byte) *command {
	parts := strings.Split(strings.ToLower(string(name)), "|")
	if len(parts) > 2 {
		return nil
	}
	c := s.table[parts[0]]
	if c == nil || len(parts) == 1 {
		return c
	}
	return c.subs[parts[1]]
}

func cmdCommand(c *client, args [][]byte) crdt.Reply {
	out := make([]crdt.Reply, len(c.srv.cmds))
	for i, cmd := range c.srv.cmds {
		out[i] = commandInfo(cmd)
	}
	return crdt.Array(out...)
}

func cmdCommandCount(c *client, args [][]byte) crdt.Reply {
	return crdt.Int(int64(len(c.srv.cmds)))
}

func cmdCommandInfo(c *client, args [][]byte) crdt.Reply {
	if len(args) == 2 {
		return cmdCommand(c, args)
	}
	out := make([]crdt.Reply, 0, len(args)-2)
	for _, a := range args[2:] {
		if cmd := c.srv.lookupFullName(a); cmd != nil {
			out = append(out, commandInfo(cmd))
		} else {
			out = append(out, crdt.Nil)
		}
	}
	return crdt.Array(out...)
}

func cmdCommandDocs(c *client, args [][]byte) crdt.Reply {
	m := kv()
	if len(args) == 2 {
		for _, cmd := range c.srv.cmds {
			m.Elems = append(m.Elems, crdt.BulkString(cmd.name), commandDocs(cmd))
		}
		return m
	}
	for _, a := range args[2:] {
		if cmd := c.srv.lookupFullName(a); cmd != nil {
			m.Elems = append(m.Elems, crdt.BulkString(cmd.name), commandDocs(cmd))
		}
	}
	return m
}

func cmdCommandList(c *client, args [][]byte) crdt.Reply {
	var filter func(*command) bool
	for i := 2; i < len(args); i++ {
		if !strings.EqualFold(string(args[i]), "filterby") || len(args)-1-i != 2 {
			return errSyntax
		}
		arg := args[i+2]
		switch strings.ToLower(string(args[i+1])) {
		case "module":
			filter = func(*command) bool { return false } // no modules
		case "aclcat":
			cat := strings.ToLower(string(arg))
			filter = func(cmd *command) bool {
				for _, x := range cmd.cats {
					if x == cat {
						return true
					}
				}
				return false
			}
		case "pattern":
			pat := []byte(strings.ToLower(string(arg)))
			filter = func(cmd *command) bool { return crdt.Glob(pat, []byte(cmd.name)) }
		default:
			return errSyntax
		}
		i += 2
	}
	out := []crdt.Reply{}
	add := func(cmd *command) {
		if filter == nil || filter(cmd) {
			out = append(out, crdt.BulkString(cmd.name))
		}
	}
	for _, cmd := range c.srv.cmds {
		add(cmd)
		for _, s := range cmd.subList() {
			add(s)
		}
	}
	return crdt.Array(out...)
}

func cmdCommandGetKeys(c *client, args [][]byte) crdt.Reply {
	withFlags := strings.EqualFold(string(args[1]), "getkeysandflags")
	full := args[2:]
	cmd, _ := c.srv.lookup(full)
	switch {
	case cmd == nil:
		return crdt.Err("ERR Invalid command specified")
	case !cmd.hasKeys():
		return crdt.Err("ERR The command has no key arguments")
	case !cmd.arityOK(len(full)):
		return crdt.Err("ERR Invalid number of arguments specified for command")
	}
	pos, ok := cmd.keyPositions(full)
	if !ok {
		return crdt.Err("ERR Invalid arguments specified for command")
	}
	out := []crdt.Reply{}
	for _, i := range pos {
		if withFlags {
			out = append(out, crdt.Array(crdt.Bulk(full[i]), statuses(cmd.keySpecFlags(), "")))
		} else {
			out = append(out, crdt.Bulk(full[i]))
		}
	}
	if len(out) == 0 && !keynumCommands[cmd.name].zeroOK {
		return crdt.Err("ERR Invalid arguments specified for command")
	}
	return crdt.Array(out...)
}

func cmdCommandHelp(c *client, args [][]byte) crdt.Reply {
	return helpReply(args[0], []string{
		"(no subcommand)",
		"    Return details about all Redis commands.",
		"COUNT",
		"    Return the total number of commands in this Redis server.",
		"LIST",
		"    Return a list of all commands in this Redis server.",
		"INFO [<command-name> ...]",
		"    Return details about multiple Redis commands.",
		"    If no command names are given, documentation details for all",
		"    commands are returned.",
		"DOCS [<command-name> ...]",
		"    Return documentation details about multiple Redis commands.",
		"    If no command names are given, documentation details for all",
		"    commands are returned.",
		"GETKEYS <full-command>",
		"    Return the keys from a full Redis command.",
		"GETKEYSANDFLAGS <full-command>",
		"    Return the keys and the access flags from a full Redis command.",
	})
}
