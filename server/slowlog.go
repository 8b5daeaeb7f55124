package server

import (
	"strconv"
	"strings"
	"sync"
	"time"

	"concord/crdt"
)

// SLOWLOG: commands whose execution took at least slowlog-log-slower-than
// microseconds (negative: none, 0: every command), newest first, at most
// slowlog-max-len of them. Times are measured on the node that served the
// command. A run of pipelined data commands executes as one unit, so each
// of its commands is charged the run's time shared out evenly, as in
// commandstats.

// Redis's limits on what an entry keeps of the command line.
const (
	slowlogMaxArgc = 32
	slowlogMaxArg  = 128
)

type slowEntry struct {
	id       int64
	unix     int64 // seconds
	micros   int64
	args     []string
	addr     string
	clientNm string
}

type slowLog struct {
	mu      sync.Mutex
	entries []slowEntry // oldest first
	nextID  int64
}

// record logs a command that took d, if the thresholds say so.
func (s *Server) slowlogRecord(c *client, cmd *command, args [][]byte, d time.Duration) {
	limit := s.cfg.slowerThan.Load()
	if limit < 0 || cmd.name == "exec" {
		return // Redis's CMD_SKIP_SLOWLOG: EXEC's commands are timed, not EXEC
	}
	us := d.Microseconds()
	if us < limit {
		return
	}
	n := len(args)
	if n > slowlogMaxArgc {
		n = slowlogMaxArgc
	}
	// Passwords never reach the log: AUTH's arguments, HELLO's AUTH pair.
	redacted := func(i int) bool {
		switch cmd.name {
		case "auth":
			return i > 0
		case "hello":
			for j := 2; j < len(args); j++ {
				if strings.EqualFold(string(args[j]), "auth") {
					if i == j+1 || i == j+2 {
						return true
					}
					j += 2
				} else if strings.EqualFold(string(args[j]), "setname") {
					j++
				}
			}
		}
		return false
	}
	out := make([]string, n)
	for i := 0; i < n; i++ {
		a := args[i]
		switch {
		case i == slowlogMaxArgc-1 && len(args) > slowlogMaxArgc:
			out[i] = "... (" + itoa(int64(len(args)-slowlogMaxArgc+1)) + " more arguments)"
			continue
		case redacted(i):
			out[i] = "(redacted)"
			continue
		case len(a) > slowlogMaxArg:
			out[i] = string(a[:slowlogMaxArg]) + "... (" + itoa(int64(len(a)-slowlogMaxArg)) + " more bytes)"
			continue
		}
		out[i] = string(a)
	}
	c.mu.Lock()
	name := c.name
	c.mu.Unlock()
	l := &s.slow
	l.mu.Lock()
	defer l.mu.Unlock()
	l.entries = append(l.entries, slowEntry{
		id: l.nextID, unix: time.Now().Unix(), micros: us, args: out, addr: c.addr, clientNm: name,
	})
	l.nextID++
	l.trim(s.cfg.slowMaxLen.Load())
}

func (l *slowLog) trim(max int64) {
	if over := int64(len(l.entries)) - max; over > 0 {
		l.entries = append(l.entries[:0], l.entries[over:]...)
	}
}

func slowlogCommands() *command {
	adm := []string{"admin", "loading", "stale"}
	cats := []string{"admin", "slow", "dangerous"}
	return container("slowlog", []string{"slow"},
		&command{name: "get", arity: -2, flags: adm, cats: cats,
			tips: []string{"request_policy:all_nodes", "nondeterministic_output"}, run: cmdSlowlogGet},
		&command{name: "len", arity: 2, flags: adm, cats: cats,
			tips: []string{"request_policy:all_nodes", "response_policy:agg_sum", "nondeterministic_output"}, run: cmdSlowlogLen},
		&command{name: "reset", arity: 2, flags: adm, cats: cats,
			tips: []string{"request_policy:all_nodes", "response_policy:all_succeeded"}, run: cmdSlowlogReset},
		&command{name: "help", arity: 2, flags: []string{"loading", "stale"}, cats: []string{"slow"}, run: cmdSlowlogHelp},
	)
}

func cmdSlowlogGet(c *client, args [][]byte) crdt.Reply {
	if len(args) > 3 {
		return crdt.Err("ERR unknown subcommand or wrong number of arguments for '" +
			string(args[1]) + "'. Try SLOWLOG HELP.")
	}
	l := &c.srv.slow
	l.mu.Lock()
	defer l.mu.Unlock()
	count := int64(10)
	if len(args) == 3 {
		n, ok := string2ll(args[2])
		if !ok || n < -1 {
			return crdt.Err("ERR count should be greater than or equal to -1")
		}
		count = n
		if n == -1 {
			count = int64(len(l.entries))
		}
	}
	out := []crdt.Reply{}
	for i := len(l.entries) - 1; i >= 0 && int64(len(out)) < count; i-- {
		e := &l.entries[i]
		argv := make([]crdt.Reply, len(e.args))
		for j, a := range e.args {
			argv[j] = crdt.BulkString(a)
		}
		out = append(out, crdt.Array(crdt.Int(e.id), crdt.Int(e.unix), crdt.Int(e.micros),
			crdt.Array(argv...), crdt.BulkString(e.addr), crdt.BulkString(e.clientNm)))
	}
	return crdt.Array(out...)
}

func cmdSlowlogLen(c *client, args [][]byte) crdt.Reply {
	l := &c.srv.slow
	l.mu.Lock()
	defer l.mu.Unlock()
	return crdt.Int(int64(len(l.entries)))
}

func cmdSlowlogReset(c *client, args [][]byte) crdt.Reply {
	l := &c.srv.slow
	l.mu.Lock()
	l.entries = nil
	l.mu.Unlock()
	return crdt.OK
}

func cmdSlowlogHelp(c *client, args [][]byte) crdt.Reply {
	return helpReply(args[0], []string{
		"GET [<count>]",
		"    Return top <count> entries from the slowlog (default: 10, -1 mean all).",
		"    Entries are made of:",
		"    id, timestamp, time in microseconds, arguments array, client IP and port,",
		"    client name",
		"LEN",
		"    Return the length of the slowlog.",
		"RESET",
		"    Reset the slowlog.",
	})
}

// slowlogParams are the two CONFIG parameters, merged into configParams.
var slowlogParams = []*param{
	{name: "slowlog-log-slower-than",
		get:   func(s *Server) string { return strconv.FormatInt(s.cfg.slowerThan.Load(), 10) },
		parse: intParam(-1, 1<<63-1, false, func(s *Server, v int64) { s.cfg.slowerThan.Store(v) })},
	{name: "slowlog-max-len",
		get: func(s *Server) string { return strconv.FormatInt(s.cfg.slowMaxLen.Load(), 10) },
		// Like Redis, a smaller limit trims the log at the next entry.
		parse: intParam(0, 1<<63-1, false, func(s *Server, v int64) { s.cfg.slowMaxLen.Store(v) })},
}
