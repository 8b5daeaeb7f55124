package server

import (
	"sort"
	"strings"
	"sync/atomic"
	"time"

	"concord/crdt"
)

// command is one entry of the command table: a server command (run set), a
// data command of the crdt engine (data set), or a container whose
// subcommands are in subs (CLIENT, CONFIG, COMMAND, FUNCTION).
type command struct {
	name      string // full name as Redis reports it: "get", "client|list"
	nameBytes []byte // name, handed to the engine as args[0] (read-only)
	arity     int
	flags     []string
	cats      []string // ACL categories without '@'
	tips      []string
	// Key positions (data commands).
	firstKey, lastKey, step int

	noAuth bool // may run before AUTH (AUTH, HELLO, QUIT, RESET)
	// pubsubOK: may run in RESP2 while subscribed ((P|S)(UN)SUBSCRIBE,
	// PING, QUIT, RESET).
	pubsubOK bool
	// keyFlags, if set, are the key-spec flags COMMAND INFO reports
	// instead of the RW/RO ones derived from the command's kind.
	keyFlags []string
	// txControl: runs at once even after MULTI (MULTI, EXEC, DISCARD,
	// WATCH), where other commands are queued.
	txControl bool

	run  func(c *client, args [][]byte) crdt.Reply
	data *crdt.CommandSpec
	// block makes this a blocking command (block.go); run and data are nil.
	block *blockSpec
	// blockOpt is a data command's blocking form (XREAD BLOCK), taken when
	// blockOpt.wants(args); otherwise the command runs as data.
	blockOpt *blockSpec
	subs     map[string]*command

	stats cmdStats
}

// cmdStats are INFO commandstats' counters.
type cmdStats struct {
	calls    atomic.Int64
	nanos    atomic.Int64
	rejected atomic.Int64
	failed   atomic.Int64
}

// add counts one call that took took.
func (cs *cmdStats) add(calls int64, took time.Duration, failed bool) {
	f := int64(0)
	if failed {
		f = 1
	}
	cs.addN(calls, took, f)
}

// addN counts calls calls that took each apiece, failed of them failing.
func (cs *cmdStats) addN(calls int64, each time.Duration, failed int64) {
	cs.calls.Add(calls)
	cs.nanos.Add(calls * int64(each))
	if failed > 0 {
		cs.failed.Add(failed)
	}
}

func (c *command) arityOK(n int) bool {
	if c.arity >= 0 {
		return n == c.arity
	}
	return n >= -c.arity
}

func (c *command) isWrite() bool { return c.data != nil && c.data.Write }

// subList returns the subcommands sorted by name.
func (c *command) subList() []*command {
	out := make([]*command, 0, len(c.subs))
	for _, s := range c.subs {
		out = append(out, s)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].name < out[j].name })
	return out
}

// buildTable assembles the command table from the server's own commands
// and every client-visible data command of the crdt engine.
func (s *Server) buildTable() {
	s.table = make(map[string]*command)
	for _, c := range serverCommands() {
		s.table[c.name] = c
	}
	for _, spec := range crdt.Commands() {
		if spec.Internal {
			continue
		}
		if _, dup := s.table[spec.Name]; dup {
			continue // the server's own implementation wins
		}
		s.table[spec.Name] = &command{
			name: spec.Name, nameBytes: []byte(spec.Name), arity: spec.Arity, flags: spec.Flags,
			cats: spec.Categories, firstKey: spec.FirstKey, lastKey: spec.LastKey, step: spec.Step, data: spec,
		}
	}
	if s.blk != nil {
		// A blocking command exists once the engine has the write it pops
		// with (lists may be missing from an engine build).
		for _, c := range blockCommands() {
			if _, dup := s.table[c.name]; !dup && crdt.Lookup([]byte(c.block.base)) != nil {
				c.nameBytes = []byte(c.name)
				s.table[c.name] = c
			}
		}
	}
	s.addBlockOptions()
	if s.opts.RefuseFlush {
		for _, name := range []string{"flushall", "flushdb"} {
			if c := s.table[name]; c != nil {
				msg := "ERR " + strings.ToUpper(name) + " is disabled on this server (flush-commands refuse)"
				c.data, c.run = nil, func(*client, [][]byte) crdt.Reply { return crdt.Err(msg) }
			}
		}
	}
	s.cmds = make([]*command, 0, len(s.table))
	for _, c := range s.table {
		s.cmds = append(s.cmds, c)
	}
	sort.Slice(s.cmds, func(i, j int) bool { return s.cmds[i].name < s.cmds[j].name })
}

// lookupName finds a top-level command, case-insensitively, with one map
// access and without allocating for names of ordinary length.
func (s *Server) lookupName(name []byte) *command {
	upper := false
	for _, b := range name {
		if b >= 'A' && b <= 'Z' {
			upper = true
			break
		}
	}
	if !upper {
		return s.table[string(name)]
	}
	var buf [32]byte
	if len(name) > len(buf) {
		return s.table[strings.ToLower(string(name))]
	}
	low := buf[:len(name)]
	for i, b := range name {
		if b >= 'A' && b <= 'Z' {
			b += 'a' - 'A'
		}
		low[i] = b
	}
	return s.table[string(low)]
}

// lookup resolves args to a command as Redis's lookupCommand does: a
// container with an argument resolves to its subcommand. It returns nil and
// the error reply (unknown command or subcommand) when there is none.
func (s *Server) lookup(args [][]byte) (*command, crdt.Reply) {
	base := s.lookupName(args[0])
	if base == nil {
		return nil, unknownCommand(args)
	}
	if base.subs == nil || len(args) == 1 {
		return base, crdt.Reply{}
	}
	if sub := base.subs[strings.ToLower(string(args[1]))]; sub != nil {
		return sub, crdt.Reply{}
	}
	return nil, crdt.Err("ERR unknown subcommand '" + cstr(args[1], 128) +
		"'. Try " + strings.ToUpper(cstr(args[0], -1)) + " HELP.")
}

// unknownCommand is Redis 7.0's reply for a command it does not know,
// quoting up to 128 bytes of arguments.
func unknownCommand(args [][]byte) crdt.Reply {
	var b strings.Builder
	for _, a := range args[1:] {
		if b.Len() >= 128 {
			break
		}
		prec := 128 - b.Len()
		b.WriteByte('\'')
		b.WriteString(cstr(a, prec))
		b.WriteString("' ")
	}
	return crdt.Err("ERR unknown command '" + cstr(args[0], 128) +
		"', with args beginning with: " + b.String())
}

// cstr renders b as C's "%.*s" would: up to the first NUL byte, at most max
// bytes (max < 0: no limit).
func cstr(b []byte, max int) string {
	for i, c := range b {
		if c == 0 {
			b = b[:i]
			break
		}
	}
	if max >= 0 && len(b) > max {
		b = b[:max]
	}
	return string(b)
}

// errArity is the reply for a wrong number of arguments; name is the full
// command name ("client|setname").
func errArity(name string) crdt.Reply {
	return crdt.Err("ERR wrong number of arguments for '" + name + "' command")
}
