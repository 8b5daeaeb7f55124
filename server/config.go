package server

import (
	"bytes"
	"math"
	"net"
	"strconv"
	"strings"

	"concord/crdt"
)

// CONFIG GET/SET/RESETSTAT for the parameters Concord honours. Names,
// defaults, bounds and error texts are Redis 7.0's. Parameters that describe
// how Concord runs but cannot change at run time (databases, save,
// appendonly, maxmemory, ...) are readable and refuse CONFIG SET as Redis
// refuses an immutable parameter.

// param is one configuration parameter.
type param struct {
	name string
	get  func(s *Server) string
	// parse validates a new value and returns the function that applies
	// it, or Redis's error text. nil means immutable.
	parse func(s *Server, v string) (apply func(), errText string)
}

// configParams is sorted by name (CONFIG GET answers in this order).
var configParams = []*param{
	{name: "appendonly", get: func(*Server) string { return "no" }},
	{name: "bind", get: func(s *Server) string {
		if a := s.Addr(); a != nil {
			if host, _, err := net.SplitHostPort(a.String()); err == nil {
				return host
			}
		}
		return ""
	}},
	{name: "client-output-buffer-limit", get: getObuf, parse: parseObuf},
	{name: "client-query-buffer-limit",
		get:   func(s *Server) string { return itoa(s.cfg.qbufLimit.Load()) },
		parse: memoryParam(1<<20, math.MaxInt64, true, func(s *Server, v int64) { s.cfg.qbufLimit.Store(v) })},
	{name: "databases", get: func(*Server) string { return itoa(crdt.NumDBs) }},
	{name: "maxclients",
		get:   func(s *Server) string { return itoa(s.cfg.maxClients.Load()) },
		parse: intParam(1, math.MaxUint32, true, func(s *Server, v int64) { s.cfg.maxClients.Store(v) })},
	{name: "maxmemory", get: func(*Server) string { return "0" }},
	{name: "maxmemory-policy", get: func(*Server) string { return "noeviction" }},
	{name: "port", get: func(s *Server) string { return itoa(int64(s.port())) }},
	{name: "proto-max-bulk-len",
		get:   func(s *Server) string { return itoa(s.cfg.maxBulk.Load()) },
		parse: memoryParam(1<<20, math.MaxInt64, false, func(s *Server, v int64) { s.cfg.maxBulk.Store(v) })},
	{name: "requirepass",
		get: func(s *Server) string { return s.requirePass() },
		parse: func(s *Server, v string) (func(), string) {
			return func() { s.cfg.pass.Store(&v) }, ""
		}},
	{name: "save", get: func(*Server) string { return "" }},
	slowlogParams[0],
	slowlogParams[1],
	{name: "timeout",
		get:   func(s *Server) string { return itoa(s.cfg.timeout.Load()) },
		parse: intParam(0, math.MaxInt32, false, func(s *Server, v int64) { s.cfg.timeout.Store(v) })},
}

func lookupParam(name string) *param {
	name = strings.ToLower(name)
	for _, p := range configParams {
		if p.name == name {
			return p
		}
	}
	return nil
}

// boundsText is numericBoundaryCheck's message; unsigned parameters print
// their bounds unsigned.
func boundsText(lo, hi int64) string {
	return "argument must be between " + itoa(lo) + " and " + itoa(hi) + " inclusive"
}

// intParam parses a plain integer parameter.
func intParam(lo, hi int64, unsigned bool, set func(*Server, int64)) func(*Server, string) (func(), string) {
	return func(s *Server, v string) (func(), string) {
		n, ok := string2ll([]byte(v))
		if !ok {
			return nil, "argument couldn't be parsed into an integer"
		}
		if !inBounds(n, lo, hi, unsigned) {
			return nil, boundsText(lo, hi)
		}
		return func() { set(s, n) }, ""
	}
}

// memoryParam parses a memory parameter ("1mb", "512m", "1073741824").
func memoryParam(lo, hi int64, unsigned bool, set func(*Server, int64)) func(*Server, string) (func(), string) {
	return func(s *Server, v string) (func(), string) {
		u, ok := memtoull(v)
		if !ok {
			return nil, "argument must be a memory value"
		}
		n := int64(u) // Redis stores the value in a long long
		if !inBounds(n, lo, hi, unsigned) {
			return nil, boundsText(lo, hi)
		}
		return func() { set(s, n) }, ""
	}
}

func inBounds(n, lo, hi int64, unsigned bool) bool {
	if unsigned {
		return uint64(n) >= uint64(lo) && uint64(n) <= uint64(hi)
	}
	return n >= lo && n <= hi
}

// memtoull parses a memory amount as Redis's memtoull: digits and an
// optional unit b, k, kb, m, mb, g, gb (any case); k/m/g are powers of 1000,
// kb/mb/gb of 1024. Like Redis, the product wraps on overflow.
func memtoull(s string) (uint64, bool) {
	if strings.HasPrefix(s, "-") {
		return 0, false
	}
	i := 0
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		i++
	}
	var mul uint64
	switch strings.ToLower(s[i:]) {
	case "", "b":
		mul = 1
	case "k":
		mul = 1000
	case "kb":
		mul = 1024
	case "m":
		mul = 1000 * 1000
	case "mb":
		mul = 1024 * 1024
	case "g":
		mul = 1000 * 1000 * 1000
	case "gb":
		mul = 1024 * 1024 * 1024
	default:
		return 0, false
	}
	if i == 0 {
		return 0, true // strtoull("") is 0
	}
	if i >= 128 {
		return 0, false
	}
	v, err := strconv.ParseUint(s[:i], 10, 64)
	if err != nil {
		v = math.MaxUint64 // strtoull saturates on overflow
	}
	return v * mul, true
}

var obufClasses = [3]string{"normal", "slave", "pubsub"}

func getObuf(s *Server) string {
	l := s.cfg.obuf.Load()
	parts := make([]string, 0, 3)
	for i, c := range l {
		parts = append(parts, obufClasses[i]+" "+strconv.FormatUint(c.hard, 10)+" "+
			strconv.FormatUint(c.soft, 10)+" "+itoa(c.softSeconds))
	}
	return strings.Join(parts, " ")
}

// parseObuf is updateClientOutputBufferLimit: groups of <class> <hard>
// <soft> <soft seconds>. Concord enforces the "normal" class.
func parseObuf(s *Server, v string) (func(), string) {
	args, ok := splitArgs([]byte(v))
	if !ok {
		return nil, "Wrong number of arguments in buffer limit configuration."
	}
	if len(args)%4 != 0 {
		return nil, "Wrong number of arguments in buffer limit configuration."
	}
	next := *s.cfg.obuf.Load()
	for j := 0; j < len(args); j += 4 {
		var class int
		switch strings.ToLower(string(args[j])) {
		case "normal":
			class = 0
		case "slave", "replica":
			class = 1
		case "pubsub":
			class = 2
		default:
			return nil, "Invalid client class specified in buffer limit configuration."
		}
		hard, okH := memtoull(string(args[j+1]))
		soft, okS := memtoull(string(args[j+2]))
		secs, errS := strconv.ParseInt(string(args[j+3]), 10, 64)
		if !okH || !okS || errS != nil || secs < 0 {
			return nil, "Error in hard, soft or soft_seconds setting in buffer limit configuration."
		}
		next[class] = obufLimit{hard: hard, soft: soft, softSeconds: secs}
	}
	return func() { s.cfg.obuf.Store(&next) }, ""
}

func configCommands() *command {
	adm := []string{"admin", "noscript", "loading", "stale"}
	cats := []string{"admin", "slow", "dangerous"}
	return container("config", []string{"slow"},
		&command{name: "get", arity: -3, flags: adm, cats: cats, run: cmdConfigGet},
		&command{name: "set", arity: -4, flags: adm, cats: cats,
			tips: []string{"request_policy:all_nodes", "response_policy:all_succeeded"}, run: cmdConfigSet},
		&command{name: "resetstat", arity: 2, flags: adm, cats: cats, run: cmdConfigResetStat},
		&command{name: "rewrite", arity: 2, flags: adm, cats: cats, run: cmdConfigRewrite},
		&command{name: "help", arity: 2, flags: []string{"loading", "stale"}, cats: []string{"slow"}, run: cmdConfigHelp},
	)
}

func cmdConfigGet(c *client, args [][]byte) crdt.Reply {
	// Redis answers an exact name with the name as given and a pattern
	// with the parameters' own names, each parameter once.
	seen := map[*param]bool{}
	out := []crdt.Reply{}
	add := func(p *param, as string) {
		if !seen[p] {
			seen[p] = true
			out = append(out, crdt.BulkString(as), crdt.BulkString(p.get(c.srv)))
		}
	}
	for _, a := range args[2:] {
		if bytes.ContainsAny(a, "[*?") {
			pat := bytes.ToLower(a)
			for _, p := range configParams {
				if crdt.Glob(pat, []byte(p.name)) {
					add(p, p.name)
				}
			}
		} else if p := lookupParam(string(a)); p != nil {
			add(p, cstr(a, -1))
		}
	}
	return crdt.Reply{Kind: crdt.KindMap, Elems: out}
}

func cmdConfigSet(c *client, args [][]byte) crdt.Reply {
	if len(args)%2 != 0 {
		return errSyntax
	}
	n := (len(args) - 2) / 2
	params := make([]*param, n)
	var errText, errName string
	for i := 0; i < n; i++ {
		name := cstr(args[2+2*i], -1)
		p := lookupParam(name)
		if errText != "" {
			continue // like Redis, the first problem found is reported
		}
		if p == nil {
			return crdt.Err("ERR Unknown option or number of arguments for CONFIG SET - '" + name + "'")
		}
		if p.parse == nil {
			errText, errName = "can't set immutable config", name
			continue
		}
		for j := 0; j < i; j++ {
			if params[j] == p {
				errText, errName = "duplicate parameter", name
			}
		}
		params[i] = p
	}
	if errText != "" {
		return crdt.Err("ERR CONFIG SET failed (possibly related to argument '" + errName + "') - " + errText)
	}
	applies := make([]func(), n)
	for i, p := range params {
		apply, e := p.parse(c.srv, string(args[3+2*i]))
		if e != "" {
			return crdt.Err("ERR CONFIG SET failed (possibly related to argument '" + p.name + "') - " + e)
		}
		applies[i] = apply
	}
	for _, apply := range applies {
		apply()
	}
	return crdt.OK
}

func cmdConfigResetStat(c *client, args [][]byte) crdt.Reply {
	c.srv.resetStats()
	return crdt.OK
}

// cmdConfigRewrite answers as Redis does when it was started without a
// configuration file, which is Concord's case: flags and environment only.
func cmdConfigRewrite(c *client, args [][]byte) crdt.Reply {
	return crdt.Err("ERR The server is running without a config file")
}

func cmdConfigHelp(c *client, args [][]byte) crdt.Reply {
	return helpReply(args[0], []string{
		"GET <pattern>",
		"    Return parameters matching the glob-like <pattern> and their values.",
		"SET <directive> <value>",
		"    Set the configuration <directive> to <value>.",
		"RESETSTAT",
		"    Reset statistics reported by the INFO command.",
		"REWRITE",
		"    Rewrite the configuration file.",
	})
}
