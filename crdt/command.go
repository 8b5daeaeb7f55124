package crdt

import (
	"sort"
	"strings"
)

// CommandSpec describes one data command: what COMMAND reports about it and
// the function that runs it. Connection and server commands (PING, AUTH,
// CLIENT, ...) live in the server package.
type CommandSpec struct {
	Name  string // lowercase, as COMMAND reports it
	Arity int    // Redis convention: N exact, -N at least N (name included)
	// Flags as COMMAND reports them ("write", "readonly", "denyoom", "fast").
	Flags []string
	// Key positions: first, last (negative counts from the end) and step.
	FirstKey, LastKey, Step int
	// Categories are ACL categories without the '@' ("string", "keyspace").
	Categories []string
	// Write marks commands that must run in apply (through the proposer).
	Write bool
	// Internal marks commands only the server itself proposes (the expiry
	// sweep); clients get "unknown command" for them.
	Internal bool
	// TypedName: args[0] reaches Run as the client typed it, not
	// lowercased, because Redis quotes it in an error text (GEOSEARCH).
	TypedName bool
	// Run executes the command. args[0] is the command name.
	Run func(tx *Tx, args [][]byte) Reply
}

// ArityOK reports whether n arguments (name included) fit the arity.
func (c *CommandSpec) ArityOK(n int) bool {
	if c.Arity >= 0 {
		return n == c.Arity
	}
	return n >= -c.Arity
}

// Keys returns the positions of key arguments in args, per the spec.
func (c *CommandSpec) Keys(args [][]byte) []int {
	if c.FirstKey <= 0 {
		return nil
	}
	last := c.LastKey
	if last < 0 {
		last = len(args) + last
	}
	step := c.Step
	if step <= 0 {
		step = 1
	}
	var out []int
	for i := c.FirstKey; i <= last && i < len(args); i += step {
		out = append(out, i)
	}
	return out
}

var commands = map[string]*CommandSpec{}

// register adds data commands to the table; called from each command
// group's init.
func register(specs ...*CommandSpec) {
	for _, s := range specs {
		if s.Write {
			s.Flags = append([]string{"write"}, s.Flags...)
		} else {
			s.Flags = append([]string{"readonly"}, s.Flags...)
		}
		if _, dup := commands[s.Name]; dup {
			panic("crdt: command registered twice: " + s.Name)
		}
		commands[s.Name] = s
	}
}

// Lookup finds a data command by name, case-insensitively.
func Lookup(name []byte) *CommandSpec {
	if c, ok := commands[string(name)]; ok {
		return c
	}
	return commands[strings.ToLower(string(name))]
}

// Commands returns every data command, sorted by name.
func Commands() []*CommandSpec {
	out := make([]*CommandSpec, 0, len(commands))
	for _, c := range commands {
		out = append(out, c)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}
