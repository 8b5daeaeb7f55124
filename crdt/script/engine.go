package script

import (
	"bytes"
	"context"
	"crypto/sha1"
	"encoding/hex"
	"errors"
	"strconv"
	"strings"
	"sync"

	lua "github.com/yuin/gopher-lua"
	"github.com/yuin/gopher-lua/parse"

	"concord/crdt"
)

// budgetInstructions is how many Lua VM instructions one script may run
// before it is stopped. It is fixed in the binary, not configuration (and
// unexported so nothing can make it so): every node of a region must stop
// a script at the same instruction or their states would differ. At gopher-lua's speed (tens of millions of simple
// instructions a second on one core) it stops a runaway loop within a few
// seconds; Redis has no such limit (it only starts answering BUSY after
// lua-time-limit). Tests lower it.
var budgetInstructions int64 = 200_000_000

// errBudgetText is the text of the error a script stopped by its budget fails
// with (followed by the usual " script: <sha>, on @user_script:<line>.").
const errBudgetText = "ERR Script exceeded its budget of Lua instructions (a runaway script is stopped deterministically on every node)"

func init() {
	evalFlags := []string{"noscript", "stale", "skip_monitor", "no_mandatory_keys", "movablekeys"}
	cats := []string{"slow", "scripting"}
	crdt.Register(
		&crdt.CommandSpec{Name: "eval", Arity: -3, Write: true, Flags: evalFlags, Categories: cats,
			Run: func(tx *crdt.Tx, args [][]byte) crdt.Reply { return eval(tx, args, false, false) }},
		&crdt.CommandSpec{Name: "evalsha", Arity: -3, Write: true, Flags: evalFlags, Categories: cats,
			Run: func(tx *crdt.Tx, args [][]byte) crdt.Reply { return eval(tx, args, true, false) }},
		// EVAL_RO caches its script, which is a change to replicated state,
		// so it runs in apply like EVAL; EVALSHA_RO changes nothing and
		// runs as a read wherever the server routes reads.
		&crdt.CommandSpec{Name: "eval_ro", Arity: -3, Write: true, Flags: evalFlags, Categories: cats,
			Run: func(tx *crdt.Tx, args [][]byte) crdt.Reply { return eval(tx, args, false, true) }},
		&crdt.CommandSpec{Name: "evalsha_ro", Arity: -3, Flags: evalFlags, Categories: cats,
			Run: func(tx *crdt.Tx, args [][]byte) crdt.Reply { return eval(tx, args, true, true) }},
		&crdt.CommandSpec{Name: "script", Arity: -2, Write: true, Flags: []string{"noscript"}, Categories: cats,
			Run: scriptCmd},
	)
}

// SHA1Hex returns the lowercase hex SHA1 of b, the name of a script.
func SHA1Hex(b []byte) string {
	s := sha1.Sum(b)
	return hex.EncodeToString(s[:])
}

var errNoScript = crdt.Err("NOSCRIPT No matching script. Please use EVAL.")

func eval(tx *crdt.Tx, args [][]byte, bySHA, ro bool) crdt.Reply {
	n, err := strconv.ParseInt(string(args[2]), 10, 64)
	if err != nil {
		return crdt.ErrNotInt
	}
	if n < 0 {
		return crdt.Err("ERR Number of keys can't be negative")
	}
	if n > int64(len(args)-3) {
		return crdt.Err("ERR Number of keys can't be greater than number of args")
	}
	var sha string
	var body []byte
	if bySHA {
		sha = strings.ToLower(string(args[1]))
		var ok bool
		if len(sha) != 40 {
			return errNoScript
		}
		if body, ok = tx.Script(sha); !ok {
			return errNoScript
		}
	} else {
		body = args[1]
		sha = SHA1Hex(body)
	}
	c, errR := compiled(sha, body)
	if c == nil {
		return errR
	}
	if !bySHA {
		tx.CacheScript(sha, body)
	}
	if ro && !c.noWrites {
		if c.shebang {
			return crdt.Err("ERR Can not execute a script with write flag using *_ro command.")
		}
	}
	keys, argv := args[3:3+n], args[3+n:]
	return runScript(tx, c, sha, keys, argv, ro || c.noWrites)
}

func scriptCmd(tx *crdt.Tx, args [][]byte) crdt.Reply {
	sub := strings.ToLower(string(args[1]))
	arity := func(ok bool) crdt.Reply {
		if ok {
			return crdt.Reply{}
		}
		return crdt.ErrArity("script|" + sub)
	}
	switch sub {
	case "load":
		if r := arity(len(args) == 3); r.IsError() {
			return r
		}
		sha := SHA1Hex(args[2])
		if c, errR := compiled(sha, args[2]); c == nil {
			return errR
		}
		tx.CacheScript(sha, args[2])
		return crdt.BulkString(sha)
	case "exists":
		if r := arity(len(args) >= 3); r.IsError() {
			return r
		}
		out := make([]crdt.Reply, 0, len(args)-2)
		for _, a := range args[2:] {
			_, ok := tx.Script(strings.ToLower(string(a)))
			if ok {
				out = append(out, crdt.Int(1))
			} else {
				out = append(out, crdt.Int(0))
			}
		}
		return crdt.Array(out...)
	case "flush":
		if r := arity(len(args) <= 3); r.IsError() {
			return r
		}
		if len(args) == 3 {
			if m := strings.ToLower(string(args[2])); m != "sync" && m != "async" {
				return crdt.Err("ERR SCRIPT FLUSH only support SYNC|ASYNC option")
			}
		}
		tx.FlushScripts()
		return crdt.OK
	case "kill":
		if r := arity(len(args) == 2); r.IsError() {
			return r
		}
		// Scripts run inside apply and are bounded by
		// budgetInstructions; by the time any other command is served
		// no script is running.
		return crdt.Err("NOTBUSY No scripts in execution right now.")
	case "debug":
		if r := arity(len(args) == 3); r.IsError() {
			return r
		}
		return crdt.Err("ERR SCRIPT DEBUG is not supported: scripts run inside apply on every node, where no debugger can stop them")
	case "help":
		if r := arity(len(args) == 2); r.IsError() {
			return r
		}
		lines := []string{
			"SCRIPT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
			"DEBUG (YES|SYNC|NO)",
			"    Set the debug mode for subsequent scripts executed.",
			"EXISTS <sha1> [<sha1> ...]",
			"    Return information about the existence of the scripts in the script cache.",
			"FLUSH [ASYNC|SYNC]",
			"    Flush the Lua scripts cache. Very dangerous on replicas.",
			"    When called without the optional mode argument, the behavior is determined by the",
			"    lazyfree-lazy-user-flush configuration directive. Valid modes are:",
			"    * ASYNC: Asynchronously flush the scripts cache.",
			"    * SYNC: Synchronously flush the scripts cache.",
			"KILL",
			"    Kill the currently executing Lua script.",
			"LOAD <script>",
			"    Load a script into the scripts cache without executing it.",
			"HELP",
			"    Prints this help.",
		}
		out := make([]crdt.Reply, len(lines))
		for i, l := range lines {
			out[i] = crdt.Status(l)
		}
		return crdt.Array(out...)
	}
	return crdt.Err("ERR unknown subcommand '" + string(args[1]) + "'. Try SCRIPT HELP.")
}

// compiledScript is a script's compiled function and its shebang flags.
type compiledScript struct {
	proto    *lua.FunctionProto
	shebang  bool // the script declares flags (#!lua)
	noWrites bool // flags=no-writes
}

// protos caches compiled scripts by SHA1. It is node-local and derived:
// compiling is a pure function of the body, so a hit and a miss run the
// same code. Bounded by clearing it whole when it grows past maxProtos.
var (
	protoMu sync.Mutex
	protos  = map[string]*compiledScript{}
)

const maxProtos = 4096

// compiled returns the compiled script, or nil and the error reply Redis
// gives for a script that does not compile.
func compiled(sha string, body []byte) (*compiledScript, crdt.Reply) {
	protoMu.Lock()
	c := protos[sha]
	protoMu.Unlock()
	if c != nil {
		return c, crdt.Reply{}
	}
	c = &compiledScript{}
	src := body
	if bytes.HasPrefix(body, []byte("#!")) {
		line := body
		if i := bytes.IndexByte(body, '\n'); i >= 0 {
			line = body[:i]
		}
		if errR := c.parseShebang(string(line)); errR.IsError() {
			return nil, errR
		}
		// The shebang line stays line 1, as a comment, so line numbers
		// in errors match Redis's.
		src = append([]byte("--"), body[2:]...)
	}
	chunk, err := parse.Parse(bytes.NewReader(src), "user_script")
	if err == nil {
		c.proto, err = lua.Compile(chunk, "user_script")
	}
	if err != nil {
		return nil, crdt.Err("ERR Error compiling script (new function): " + compileError(err, bytes.Count(src, []byte("\n"))+1))
	}
	protoMu.Lock()
	if len(protos) >= maxProtos {
		protos = map[string]*compiledScript{}
	}
	protos[sha] = c
	protoMu.Unlock()
	return c, crdt.Reply{}
}

func (c *compiledScript) parseShebang(line string) crdt.Reply {
	parts := strings.Split(line, " ")
	if parts[0] != "#!lua" {
		return crdt.Err("ERR Unexpected engine in script shebang: " + parts[0])
	}
	c.shebang = true
	for _, p := range parts[1:] {
		if p == "" {
			continue
		}
		v, ok := strings.CutPrefix(p, "flags=")
		if !ok {
			return crdt.Err("ERR Unknown lua shebang option: " + p)
		}
		for _, f := range strings.Split(v, ",") {
			switch f {
			case "no-writes":
				c.noWrites = true
			case "allow-oom", "allow-stale", "no-cluster", "allow-cross-slot-keys", "":
			default:
				return crdt.Err("ERR Unexpected flag in script shebang: " + f)
			}
		}
	}
	return crdt.Reply{}
}

// compileError renders gopher-lua's parse error in Lua 5.1's
// "user_script:<line>: <message>" form; the message itself is gopher-lua's.
func compileError(err error, lines int) string {
	var pe *parse.Error
	if errors.As(err, &pe) {
		tok := pe.Token
		if tok == "EOF" || tok == "" {
			tok = "<eof>"
		}
		line := pe.Pos.Line
		if line < 0 { // gopher-lua reports EOF as line -1
			line = lines
		}
		msg := pe.Message
		switch msg { // Lua 5.1's words for what gopher-lua's parser reports
		case "syntax error", "Invalid token":
			msg = "unexpected symbol"
		case "unterminated string":
			msg = "unfinished string"
		}
		return "user_script:" + strconv.Itoa(line) + ": " + msg + " near '" + tok + "'"
	}
	s := err.Error()
	return strings.ReplaceAll(s, "\n", " ")
}

// budget is the context gopher-lua consults before every VM instruction:
// Done counts the calls, so a script is stopped at the same instruction on
// every node. It wraps a real cancel context and returns that context's
// channel, so context.WithCancel (coroutine.create derives a context from
// the running one) recognises it as a cancel context and neither starts a
// goroutine nor reads the counter from one.
type budget struct {
	context.Context
	cancel context.CancelFunc
	done   <-chan struct{}
	left   int64
	// onExceed runs once, when the budget runs out, while the script's
	// stack is still there to be inspected.
	onExceed func()
}

var errBudget = errors.New(errBudgetText)

func newBudget(n int64) *budget {
	ctx, cancel := context.WithCancel(context.Background())
	return &budget{Context: ctx, cancel: cancel, done: ctx.Done(), left: n}
}

func (b *budget) Done() <-chan struct{} {
	b.left--
	if b.left == -1 {
		if b.onExceed != nil {
			b.onExceed()
		}
		b.cancel()
	}
	return b.done
}

func (b *budget) Err() error {
	if b.left < 0 {
		return errBudget
	}
	return b.Context.Err()
}

func (b *budget) exceeded() bool { return b.left < 0 }
