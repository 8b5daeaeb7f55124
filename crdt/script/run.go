package script

import (
	"math"
	"strconv"
	"strings"

	lua "github.com/yuin/gopher-lua"

	"concord/crdt"
)

// Limits of the VM a script gets. gopher-lua grows the data stack up to
// registryMax slots; the call stack bounds recursion (Lua 5.1's C stack
// limit is 200 nested C calls, its Lua call limit far higher).
const (
	callStackSize = 1000
	registrySize  = 1024
	registryMax   = 1 << 22
	// maxReplyDepth bounds the nesting of a table returned by a script (a
	// table that contains itself would otherwise never end); Redis stops
	// at its Lua stack limit with the same error.
	maxReplyDepth = 1000
)

// run is one script execution: a fresh Lua state, so nothing one script
// does can reach the next, and replies and effects depend only on the
// script, its arguments and the keyspace.
type run struct {
	tx   *crdt.Tx
	L    *lua.LState
	sha  string
	ro   bool
	resp int // the protocol redis.call replies are converted from (redis.setresp)
	rnd  lrand48
	b    *budget
	// ids names tables and functions for tostring in the order first
	// printed, instead of by address, so output is the same on every node.
	ids map[lua.LValue]int
	// errLine is the script line of the latest error raised by the
	// engine's own functions (error, redis.call).
	errLine int
	// stopLine is the line the script was at when its budget ran out.
	stopLine int
	// tooDeep: the returned table nests past maxReplyDepth.
	tooDeep bool
	// protected are the environment's tables and metatables (vm.go);
	// dirty is set when a script got hold of a protected metatable, so
	// its state is not reused.
	protected map[*lua.LTable]bool
	dirty     bool
}

func runScript(tx *crdt.Tx, c *compiledScript, sha string, keys, argv [][]byte, ro bool) crdt.Reply {
	v := getVM()
	r, L := v.r, v.L
	*r = run{tx: tx, L: L, sha: sha, ro: ro, resp: 2, protected: r.protected}
	r.rnd.seed(int32(tx.Rand().Uint64()))
	g := L.G.Global
	g.RawSetString("KEYS", stringTable(L, keys))
	g.RawSetString("ARGV", stringTable(L, argv))

	r.b = newBudget(budgetInstructions)
	r.b.onExceed = func() { r.stopLine = r.currentLine() }
	L.SetContext(r.b)
	L.Push(L.NewFunctionFromProto(c.proto))
	var reply crdt.Reply
	if err := L.PCall(0, 1, nil); err != nil {
		reply = r.errorReply(err)
	} else if reply = r.toReply(L.Get(-1), 0); r.tooDeep {
		reply = crdt.Err("ERR reached lua stack limit")
	}
	r.b.cancel()
	putVM(v)
	return reply
}

func stringTable(L *lua.LState, elems [][]byte) *lua.LTable {
	t := L.CreateTable(len(elems), 0)
	for i, e := range elems {
		t.RawSetInt(i+1, lua.LString(e))
	}
	return t
}

// errorReply renders a script failure as Redis 7.0 does: the error's
// message, then " script: <sha>, on @user_script:<line>.".
func (r *run) errorReply(err error) crdt.Reply {
	line := r.errLine
	var msg string
	if r.b.exceeded() {
		msg = errBudgetText
		line = r.stopLine
	} else if ae, ok := err.(*lua.ApiError); ok {
		switch o := ae.Object.(type) {
		case *lua.LTable:
			if s, ok := o.RawGetString("err").(lua.LString); ok {
				msg = string(s)
			} else {
				msg = "ERR unknown error"
			}
			if n, ok := o.RawGetString("line").(lua.LNumber); ok {
				line = int(n)
			}
		case lua.LString:
			msg = "ERR " + luaMessage(string(o))
			if l, ok := positionLine(string(o)); ok {
				line = l
			}
		default:
			msg = "ERR " + r.tostring(o)
		}
	} else {
		msg = "ERR " + err.Error()
	}
	where := "?"
	if line > 0 {
		where = strconv.Itoa(line)
	}
	return crdt.Err(mapCRLF(msg) + " script: " + r.sha + ", on @user_script:" + where + ".")
}

// positionLine reads the line from a message that starts with the
// position Lua puts on errors ("user_script:3: ...").
func positionLine(s string) (int, bool) {
	rest, ok := strings.CutPrefix(s, "user_script:")
	if !ok {
		return 0, false
	}
	i := strings.IndexByte(rest, ':')
	if i <= 0 {
		return 0, false
	}
	n, err := strconv.Atoi(rest[:i])
	return n, err == nil
}

// currentLine is the line the innermost running Lua function of the script
// is at (0 if none).
func (r *run) currentLine() int {
	for level := 0; ; level++ {
		dbg, ok := r.L.GetStack(level)
		if !ok {
			return 0
		}
		if _, err := r.L.GetInfo("Sl", dbg, lua.LNil); err == nil && dbg.CurrentLine > 0 && dbg.Source == "user_script" {
			return dbg.CurrentLine
		}
	}
}

// raise raises a Redis error from one of the engine's functions: a table
// {err=msg}, as Redis's luaPushError makes, with the script line.
func (r *run) raise(msg string) int {
	r.errLine = r.currentLine()
	t := r.L.NewTable()
	t.RawSetString("err", lua.LString(msg))
	t.RawSetString("line", lua.LNumber(r.errLine))
	r.L.Error(t, 0)
	return 0
}

func errTable(L *lua.LState, msg string) *lua.LTable {
	t := L.NewTable()
	t.RawSetString("err", lua.LString(msg))
	return t
}

func mapCRLF(s string) string {
	if strings.ContainsAny(s, "\r\n") {
		s = strings.NewReplacer("\r", " ", "\n", " ").Replace(s)
	}
	return s
}

// formatNumber formats a Lua number as Lua 5.1 does (LUA_NUMBER_FMT
// "%.14g"), which is how Redis turns a number argument into a string.
func formatNumber(n lua.LNumber) string {
	f := float64(n)
	switch {
	case math.IsInf(f, 1):
		return "inf"
	case math.IsInf(f, -1):
		return "-inf"
	case math.IsNaN(f):
		if math.Signbit(f) {
			return "-nan"
		}
		return "nan"
	}
	if f == 0 && math.Signbit(f) {
		return "-0"
	}
	if f == math.Trunc(f) && math.Abs(f) < 1e14 {
		return strconv.FormatInt(int64(f), 10)
	}
	return strconv.FormatFloat(f, 'g', 14, 64)
}

// formatArg formats a number passed to redis.call as Redis 7.0 does
// (17 significant digits, integers without a fraction).
func formatArg(n lua.LNumber) string {
	f := float64(n)
	if math.IsInf(f, 0) || math.IsNaN(f) {
		return formatNumber(n)
	}
	return strconv.FormatFloat(f, 'g', 17, 64)
}

// toInt64 is C's (long long) cast of a double as x86-64 performs it: out of
// range and NaN give INT64_MIN.
func toInt64(n lua.LNumber) int64 {
	f := float64(n)
	if math.IsNaN(f) || f >= 9223372036854775807 || f < -9223372036854775808 {
		return math.MinInt64
	}
	return int64(f)
}

// toReply converts a script's return value to a reply as Redis 7.0's
// luaReplyToRedisReply does.
func (r *run) toReply(v lua.LValue, depth int) crdt.Reply {
	if depth > maxReplyDepth {
		r.tooDeep = true
		return crdt.Reply{}
	}
	switch v := v.(type) {
	case lua.LString:
		return crdt.BulkString(string(v))
	case lua.LNumber:
		return crdt.Int(toInt64(v))
	case lua.LBool:
		if r.resp == 2 {
			if v {
				return crdt.Int(1)
			}
			return crdt.Nil
		}
		return crdt.Bool(bool(v))
	case *lua.LTable:
		if s, ok := v.RawGetString("err").(lua.LString); ok {
			return crdt.Err(mapCRLF(string(s)))
		}
		if s, ok := v.RawGetString("ok").(lua.LString); ok {
			return crdt.Status(mapCRLF(string(s)))
		}
		if n, ok := v.RawGetString("double").(lua.LNumber); ok {
			return crdt.Double(float64(n))
		}
		if m, ok := v.RawGetString("map").(*lua.LTable); ok {
			out := crdt.Reply{Kind: crdt.KindMap, Elems: []crdt.Reply{}}
			for k, x := m.Next(lua.LNil); k != lua.LNil; k, x = m.Next(k) {
				out.Elems = append(out.Elems, r.toReply(k, depth+1), r.toReply(x, depth+1))
			}
			return out
		}
		if s, ok := v.RawGetString("set").(*lua.LTable); ok {
			out := crdt.Reply{Kind: crdt.KindSet, Elems: []crdt.Reply{}}
			for k, _ := s.Next(lua.LNil); k != lua.LNil; k, _ = s.Next(k) {
				out.Elems = append(out.Elems, r.toReply(k, depth+1))
			}
			return out
		}
		out := []crdt.Reply{}
		for j := 1; ; j++ {
			x := v.RawGetInt(j)
			if x == lua.LNil {
				break
			}
			out = append(out, r.toReply(x, depth+1))
			if r.tooDeep {
				return crdt.Reply{}
			}
		}
		return crdt.Array(out...)
	}
	return crdt.Nil
}

// toLua converts a command's reply to a Lua value as Redis 7.0 does for the
// protocol the script chose (redis.setresp): RESP2 by default.
func (r *run) toLua(x crdt.Reply) lua.LValue {
	L := r.L
	resp3 := r.resp == 3
	switch x.Kind {
	case crdt.KindNil, crdt.KindNilArray:
		if resp3 {
			return lua.LNil
		}
		return lua.LFalse
	case crdt.KindStatus:
		t := L.CreateTable(0, 1)
		t.RawSetString("ok", lua.LString(x.Str))
		return t
	case crdt.KindError:
		return errTable(L, string(x.Str))
	case crdt.KindInt:
		return lua.LNumber(x.Int)
	case crdt.KindBulk:
		return lua.LString(x.Str)
	case crdt.KindBool:
		if resp3 {
			return lua.LBool(x.Int != 0)
		}
		return lua.LNumber(x.Int)
	case crdt.KindDouble:
		if resp3 {
			t := L.CreateTable(0, 1)
			t.RawSetString("double", lua.LNumber(x.Float))
			return t
		}
		if x.Str != nil {
			return lua.LString(x.Str)
		}
		return lua.LString(crdt.FormatDouble(x.Float))
	case crdt.KindMap:
		if resp3 {
			m := L.CreateTable(0, len(x.Elems)/2)
			for i := 0; i+1 < len(x.Elems); i += 2 {
				m.RawSet(r.toLua(x.Elems[i]), r.toLua(x.Elems[i+1]))
			}
			t := L.CreateTable(0, 1)
			t.RawSetString("map", m)
			return t
		}
	case crdt.KindPairMap:
		// XREAD: a map in RESP3, else an array of [key, value] pairs.
		if resp3 {
			m := L.CreateTable(0, len(x.Elems)/2)
			for i := 0; i+1 < len(x.Elems); i += 2 {
				m.RawSet(r.toLua(x.Elems[i]), r.toLua(x.Elems[i+1]))
			}
			t := L.CreateTable(0, 1)
			t.RawSetString("map", m)
			return t
		}
		t := L.CreateTable(len(x.Elems)/2, 0)
		for i := 0; i+1 < len(x.Elems); i += 2 {
			p := L.CreateTable(2, 0)
			p.RawSetInt(1, r.toLua(x.Elems[i]))
			p.RawSetInt(2, r.toLua(x.Elems[i+1]))
			t.RawSetInt(i/2+1, p)
		}
		return t
	case crdt.KindSet:
		if resp3 {
			s := L.CreateTable(0, len(x.Elems))
			for _, e := range x.Elems {
				s.RawSet(r.toLua(e), lua.LTrue)
			}
			t := L.CreateTable(0, 1)
			t.RawSetString("set", s)
			return t
		}
	case crdt.KindPairs:
		if resp3 {
			t := L.CreateTable(len(x.Elems)/2, 0)
			for i := 0; i+1 < len(x.Elems); i += 2 {
				p := L.CreateTable(2, 0)
				p.RawSetInt(1, r.toLua(x.Elems[i]))
				p.RawSetInt(2, r.toLua(x.Elems[i+1]))
				t.RawSetInt(i/2+1, p)
			}
			return t
		}
	}
	// Arrays, and in RESP2 maps, sets and pairs as flat arrays. A nil
	// element (RESP3) leaves a hole, as in Redis.
	t := L.CreateTable(len(x.Elems), 0)
	for i, e := range x.Elems {
		if v := r.toLua(e); v != lua.LNil {
			t.RawSetInt(i+1, v)
		}
	}
	return t
}
