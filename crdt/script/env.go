package script

import (
	"errors"
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"

	lua "github.com/yuin/gopher-lua"

	"concord/crdt"
)

// maxString bounds strings string.rep builds (Redis's proto-max-bulk-len
// default): without it one EVAL could make every node of a region allocate
// gigabytes at once.
const maxString = 512 << 20

// Redis 7.0.15's version constants.
const (
	redisVersion    = "7.0.15"
	redisVersionNum = 0x07000f
)

// open builds the script's environment as Redis 7.0 does: the base,
// table, string, math and coroutine libraries, cjson, bit, and the redis
// table; no os, io, debug, package/require, loadfile or dofile.
func (r *run) open() {
	L := r.L
	for _, lib := range []struct {
		name string
		fn   lua.LGFunction
	}{
		{lua.BaseLibName, lua.OpenBase},
		{lua.TabLibName, lua.OpenTable},
		{lua.StringLibName, lua.OpenString},
		{lua.MathLibName, lua.OpenMath},
		{lua.CoroutineLibName, lua.OpenCoroutine},
	} {
		L.Push(L.NewFunction(lib.fn))
		L.Push(lua.LString(lib.name))
		L.Call(1, 0)
	}
	g := L.G.Global
	for _, name := range []string{"print", "dofile", "loadfile", "require", "module",
		"setfenv", "getfenv", "newproxy", "_printregs", "_GOPHER_LUA_VERSION", "package"} {
		g.RawSetString(name, lua.LNil)
	}
	g.RawSetString("_VERSION", lua.LString("Lua 5.1"))
	g.RawSetString("tostring", L.NewFunction(r.luaToString))
	g.RawSetString("error", L.NewFunction(r.luaError))
	g.RawSetString("pcall", L.NewFunction(r.luaPCall))
	g.RawSetString("collectgarbage", L.NewFunction(luaCollectGarbage))
	rawset := g.RawGetString("rawset").(*lua.LFunction)
	setmetatable := g.RawGetString("setmetatable").(*lua.LFunction)
	getmetatable := g.RawGetString("getmetatable").(*lua.LFunction)
	guard := func(fn *lua.LFunction, check func(L *lua.LState)) *lua.LFunction {
		return L.NewFunction(func(L *lua.LState) int {
			check(L)
			top := L.GetTop()
			L.Insert(fn, 1)
			L.Call(top, lua.MultRet)
			return L.GetTop()
		})
	}
	refuse := func(L *lua.LState) {
		if t, ok := L.Get(1).(*lua.LTable); ok && r.protected[t] {
			// Raised by the table itself in Redis: no position.
			r.errLine = r.currentLine()
			L.Error(lua.LString("Attempt to modify a readonly table"), 0)
		}
	}
	g.RawSetString("rawset", guard(rawset, refuse))
	g.RawSetString("setmetatable", guard(setmetatable, refuse))
	g.RawSetString("getmetatable", guard(getmetatable, func(L *lua.LState) {
		if mt, ok := L.GetMetatable(L.Get(1)).(*lua.LTable); ok && r.protected[mt] {
			r.dirty = true
		}
	}))

	m := g.RawGetString("math").(*lua.LTable)
	m.RawSetString("random", L.NewFunction(r.mathRandom))
	m.RawSetString("randomseed", L.NewFunction(r.mathRandomSeed))
	m.RawSetString("huge", lua.LNumber(math.Inf(1))) // gopher-lua has MaxFloat64
	tonumber := g.RawGetString("tonumber").(*lua.LFunction)
	g.RawSetString("tonumber", L.NewFunction(func(L *lua.LState) int {
		if L.GetTop() >= 2 && L.Get(2) != lua.LNil && L.Get(2) != lua.LNumber(10) {
			top := L.GetTop()
			L.Insert(tonumber, 1)
			L.Call(top, 1)
			return 1
		}
		v := L.CheckAny(1)
		switch x := v.(type) {
		case lua.LNumber:
			L.Push(x)
		case lua.LString:
			L.Push(str2number(string(x)))
		default:
			L.Push(lua.LNil)
		}
		return 1
	}))
	tab := g.RawGetString("table").(*lua.LTable)
	concat := tab.RawGetString("concat").(*lua.LFunction)
	tab.RawSetString("concat", L.NewFunction(func(L *lua.LState) int {
		// Joining one big string many times over is the cheapest way
		// to ask every node for gigabytes at once: refuse what
		// string.rep refuses.
		if t, ok := L.Get(1).(*lua.LTable); ok {
			total := int64(len(L.OptString(2, ""))) * int64(t.Len())
			for i := 1; i <= t.Len(); i++ {
				if s, ok := t.RawGetInt(i).(lua.LString); ok {
					total += int64(len(s))
				}
				if total > maxString {
					L.RaiseError("resulting string too large")
				}
			}
		}
		top := L.GetTop()
		L.Insert(concat, 1)
		L.Call(top, 1)
		return 1
	}))
	tab.RawSetString("foreach", L.NewFunction(func(L *lua.LState) int {
		t, f := L.CheckTable(1), L.CheckFunction(2)
		for k, x := t.Next(lua.LNil); k != lua.LNil; k, x = t.Next(k) {
			L.Push(f)
			L.Push(k)
			L.Push(x)
			L.Call(2, 1)
			if ret := L.Get(-1); ret != lua.LNil {
				return 1
			}
			L.Pop(1)
		}
		return 0
	}))
	tab.RawSetString("foreachi", L.NewFunction(func(L *lua.LState) int {
		t, f := L.CheckTable(1), L.CheckFunction(2)
		for i := 1; i <= t.Len(); i++ {
			L.Push(f)
			L.Push(lua.LNumber(i))
			L.Push(t.RawGetInt(i))
			L.Call(2, 1)
			if ret := L.Get(-1); ret != lua.LNil {
				return 1
			}
			L.Pop(1)
		}
		return 0
	}))

	s := g.RawGetString("string").(*lua.LTable)
	s.RawSetString("rep", L.NewFunction(strRep))
	format := s.RawGetString("format").(*lua.LFunction)
	s.RawSetString("format", L.NewFunction(func(L *lua.LState) int {
		// %s of a table or function would print its address, and of a
		// number gopher-lua's shortest form: give both as tostring does.
		f := L.CheckString(1)
		for i, c := range formatConversions(f) {
			n := i + 2
			if n > L.GetTop() {
				break
			}
			v := L.Get(n)
			switch c {
			case 's':
				if _, ok := v.(lua.LString); !ok {
					L.Replace(n, lua.LString(r.tostring(v)))
				}
			case 'q':
				// Lua 5.1's %q: the string in quotes, with newline
				// escaped by a backslash and \r, \0 spelled out.
				L.Replace(n, lua.LString(quoteLua(r.tostring(v))))
			case 'd', 'i', 'o', 'u', 'x', 'X', 'c', 'e', 'E', 'f', 'g', 'G':
				switch x := v.(type) {
				case lua.LNumber:
				case lua.LString:
					if num, ok := str2number(string(x)).(lua.LNumber); ok {
						L.Replace(n, num)
						continue
					}
					L.ArgError(n, "number expected, got string")
				default:
					L.ArgError(n, "number expected, got "+v.Type().String())
				}
			}
		}
		L.Replace(1, lua.LString(qToS(f)))
		top := L.GetTop()
		L.Insert(format, 1)
		L.Call(top, 1)
		return 1
	}))

	co := g.RawGetString("coroutine").(*lua.LTable)
	create := co.RawGetString("create").(*lua.LFunction)
	wrap := co.RawGetString("wrap").(*lua.LFunction)
	co.RawSetString("create", L.NewFunction(func(L *lua.LState) int {
		L.Push(create)
		L.Push(L.Get(1))
		L.Call(1, 1)
		if th, ok := L.Get(-1).(*lua.LState); ok {
			th.SetContext(r.b) // count the coroutine's instructions too
		}
		return 1
	}))
	co.RawSetString("wrap", L.NewFunction(func(L *lua.LState) int {
		L.Push(wrap)
		L.Push(L.Get(1))
		L.Call(1, 1)
		if fn, ok := L.Get(-1).(*lua.LFunction); ok && len(fn.Upvalues) == 1 {
			if th, ok := fn.Upvalues[0].Value().(*lua.LState); ok {
				th.SetContext(r.b)
			}
		}
		return 1
	}))

	g.RawSetString("redis", r.redisTable())
	g.RawSetString("cjson", r.cjsonTable())
	g.RawSetString("bit", bitTable(L))
	g.RawSetString("cmsgpack", cmsgpackTable(L))
	g.RawSetString("struct", structTable(L))
	r.canonicalGlobals()
}

// canonicalGlobals rebuilds the globals and library tables with their
// names inserted in sorted order. gopher-lua fills library tables from Go
// maps, so their insertion order, which is their pairs() order, would
// differ from one process to the next; sorted, pairs(_G) or pairs(string)
// walks the same way on every node.
func (r *run) canonicalGlobals() {
	L := r.L
	fresh := sortedCopy(L, L.G.Global)
	var tables []*lua.LTable
	for _, lib := range []string{"string", "table", "math", "coroutine", "redis", "cjson", "bit", "cmsgpack", "struct"} {
		if t, ok := fresh.RawGetString(lib).(*lua.LTable); ok {
			c := sortedCopy(L, t)
			fresh.RawSetString(lib, c)
			tables = append(tables, c)
		}
	}
	fresh.RawSetString("_G", fresh)
	L.G.Global, L.Env = fresh, fresh
	for _, t := range append(tables, fresh) {
		for k, v := t.Next(lua.LNil); k != lua.LNil; k, v = t.Next(k) {
			if fn, ok := v.(*lua.LFunction); ok {
				fn.Env = fresh
			}
		}
	}
	if mt, ok := L.GetMetatable(lua.LString("")).(*lua.LTable); ok {
		mt.RawSetString("__index", fresh.RawGetString("string"))
	}
}

func sortedCopy(L *lua.LState, t *lua.LTable) *lua.LTable {
	var names []string
	for k, _ := t.Next(lua.LNil); k != lua.LNil; k, _ = t.Next(k) {
		if s, ok := k.(lua.LString); ok {
			names = append(names, string(s))
		}
	}
	sort.Strings(names)
	nt := L.CreateTable(0, len(names))
	for _, n := range names {
		nt.RawSetString(n, t.RawGetString(n))
	}
	return nt
}

// protectGlobals makes reading an undefined global and creating a global
// errors, with Redis 7.0's texts (its globals table is read-only).
func (r *run) protectGlobals() {
	L := r.L
	mt := L.NewTable()
	mt.RawSetString("__index", L.NewFunction(func(L *lua.LState) int {
		name := L.ToString(2)
		return r.raiseString("Script attempted to access nonexistent global variable '" + name + "'")
	}))
	mt.RawSetString("__newindex", L.NewFunction(func(L *lua.LState) int {
		return r.raiseString("Attempt to modify a readonly table")
	}))
	L.SetMetatable(L.G.Global, mt)
}

// protectTable makes creating a member of a library table an error, as
// Redis's read-only tables do.
func (r *run) protectTable(t *lua.LTable) {
	L := r.L
	mt := L.NewTable()
	mt.RawSetString("__newindex", L.NewFunction(func(L *lua.LState) int {
		return r.raiseString("Attempt to modify a readonly table")
	}))
	L.SetMetatable(t, mt)
	r.protected[t] = true
	r.protected[mt] = true
}

// raiseString raises a Lua string error positioned at the script line
// running, as luaL_error does.
func (r *run) raiseString(msg string) int {
	r.errLine = r.currentLine()
	if r.errLine > 0 {
		msg = fmt.Sprintf("user_script:%d: %s", r.errLine, msg)
	}
	r.L.Error(lua.LString(msg), 0)
	return 0
}

// luaToString is tostring with Lua 5.1's number format, and with tables,
// functions and threads named by a per-script counter rather than their
// address, which differs between nodes.
func (r *run) luaToString(L *lua.LState) int {
	v := L.CheckAny(1)
	L.Push(lua.LString(r.tostring(v)))
	return 1
}

func (r *run) tostring(v lua.LValue) string {
	if fn := r.L.GetMetaField(v, "__tostring"); fn != lua.LNil {
		r.L.Push(fn)
		r.L.Push(v)
		r.L.Call(1, 1)
		s := r.L.Get(-1)
		r.L.Pop(1)
		return lua.LVAsString(s)
	}
	switch x := v.(type) {
	case lua.LNumber:
		return formatNumber(x)
	case lua.LString:
		return string(x)
	case lua.LBool:
		if x {
			return "true"
		}
		return "false"
	case *lua.LNilType:
		return "nil"
	case *lua.LUserData:
		if x == cjsonNull(r.L) {
			return "userdata: (nil)"
		}
	}
	if r.ids == nil {
		r.ids = map[lua.LValue]int{}
	}
	id, ok := r.ids[v]
	if !ok {
		id = len(r.ids) + 1
		r.ids[v] = id
	}
	return fmt.Sprintf("%s: 0x%08x", v.Type().String(), id)
}

// luaError is Lua's error, remembering the script line for the error
// reply (Redis's error handler records it).
func (r *run) luaError(L *lua.LState) int {
	v := L.Get(1)
	level := L.OptInt(2, 1)
	r.errLine = r.currentLine()
	switch v.(type) {
	case lua.LString, lua.LNumber:
		if level > 0 && r.errLine > 0 {
			v = lua.LString(fmt.Sprintf("user_script:%d: %s", r.errLine, lua.LVAsString(v)))
		}
	}
	L.Error(v, 0)
	return 0
}

// luaPCall is pcall as Redis 7.0 gives scripts: an error raised by the
// redis library (a table with an err field) is handed to the script as
// its message string.
func (r *run) luaPCall(L *lua.LState) int {
	L.CheckAny(1)
	nargs := L.GetTop() - 1
	if err := L.PCall(nargs, lua.MultRet, nil); err != nil {
		L.Push(lua.LFalse)
		if ae, ok := err.(*lua.ApiError); ok {
			obj := ae.Object
			if t, ok := obj.(*lua.LTable); ok {
				if s, ok := t.RawGetString("err").(lua.LString); ok {
					obj = s
				}
			} else if s, ok := obj.(lua.LString); ok {
				obj = lua.LString(luaMessage(string(s)))
			}
			L.Push(obj)
		} else {
			L.Push(lua.LString(err.Error()))
		}
		return 2
	}
	L.Insert(lua.LTrue, 1)
	return L.GetTop()
}

// luaCollectGarbage: collecting is harmless, but "count" reports this
// node's memory, which differs between nodes and would make scripts that
// use it diverge.
func luaCollectGarbage(L *lua.LState) int {
	switch opt := L.OptString(1, "collect"); opt {
	case "count":
		L.RaiseError("collectgarbage('count') is not available: memory use differs between the nodes that run the script")
	case "collect", "stop", "restart", "step", "setpause", "setstepmul":
		L.Push(lua.LNumber(0))
		return 1
	default:
		L.ArgError(1, "invalid option '"+opt+"'")
	}
	return 0
}

// str2number is Lua 5.1's string to number conversion (strtod, or a hex
// integer after 0x), surrounding spaces allowed; nil if s is not a number.
func str2number(s string) lua.LValue {
	t := strings.TrimSpace(s)
	if t == "" {
		return lua.LNil
	}
	if h, ok := strings.CutPrefix(strings.ToLower(t), "0x"); ok {
		if n, err := strconv.ParseUint(h, 16, 64); err == nil {
			return lua.LNumber(float64(n))
		}
		return lua.LNil
	}
	if strings.ContainsAny(t, "_pP") { // Go syntax strtod does not take
		return lua.LNil
	}
	f, err := strconv.ParseFloat(t, 64)
	if err != nil {
		var ne *strconv.NumError
		if !errors.As(err, &ne) || ne.Err != strconv.ErrRange {
			return lua.LNil
		}
	}
	return lua.LNumber(f)
}

// quoteLua is Lua 5.1's %q quoting.
func quoteLua(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '"', '\\', '\n':
			b.WriteByte('\\')
			b.WriteByte(c)
		case '\r':
			b.WriteString(`\r`)
		case 0:
			b.WriteString(`\000`)
		default:
			b.WriteByte(c)
		}
	}
	b.WriteByte('"')
	return b.String()
}

// qToS turns each %q of a format into %s (the argument is quoted already).
func qToS(f string) string {
	if !strings.Contains(f, "q") {
		return f
	}
	b := []byte(f)
	for i := 0; i < len(b); i++ {
		if b[i] != '%' {
			continue
		}
		i++
		if i < len(b) && b[i] == '%' {
			continue
		}
		for i < len(b) && strings.IndexByte("-+ #0123456789.", b[i]) >= 0 {
			i++
		}
		if i < len(b) && b[i] == 'q' {
			b[i] = 's'
		}
	}
	return string(b)
}

// formatConversions lists the conversion letter of each argument a
// string.format format consumes, in order.
func formatConversions(f string) []byte {
	var out []byte
	for i := 0; i < len(f); i++ {
		if f[i] != '%' {
			continue
		}
		i++
		if i < len(f) && f[i] == '%' {
			continue
		}
		for i < len(f) && strings.IndexByte("-+ #0123456789.", f[i]) >= 0 {
			i++
		}
		if i < len(f) {
			out = append(out, f[i])
		}
	}
	return out
}

func strRep(L *lua.LState) int {
	s := L.CheckString(1)
	n := L.CheckInt(2)
	if n <= 0 || s == "" {
		L.Push(lua.LString(""))
		return 1
	}
	if int64(len(s))*int64(n) > maxString {
		L.RaiseError("resulting string too large")
	}
	L.Push(lua.LString(strings.Repeat(s, n)))
	return 1
}

// mathRandom is Redis's redis_math_random over its lrand48.
func (r *run) mathRandom(L *lua.LState) int {
	f := float64(r.rnd.next()%lrandMax) / float64(lrandMax)
	switch L.GetTop() {
	case 0:
		L.Push(lua.LNumber(f))
	case 1:
		u := L.CheckInt(1)
		if u < 1 {
			L.ArgError(1, "interval is empty")
		}
		L.Push(lua.LNumber(math.Floor(f*float64(u)) + 1))
	case 2:
		l, u := L.CheckInt(1), L.CheckInt(2)
		if l > u {
			L.ArgError(2, "interval is empty")
		}
		L.Push(lua.LNumber(math.Floor(f*float64(u-l+1)) + float64(l)))
	default:
		L.RaiseError("wrong number of arguments")
	}
	return 1
}

func (r *run) mathRandomSeed(L *lua.LState) int {
	r.rnd.seed(int32(L.CheckInt(1)))
	return 0
}

// redisTable builds the redis library.
func (r *run) redisTable() *lua.LTable {
	L := r.L
	t := L.NewTable()
	fn := func(name string, f lua.LGFunction) { t.RawSetString(name, L.NewFunction(f)) }
	fn("call", func(L *lua.LState) int { return r.call(true) })
	fn("pcall", func(L *lua.LState) int { return r.call(false) })
	fn("error_reply", func(L *lua.LState) int {
		s, ok := L.Get(1).(lua.LString)
		if L.GetTop() != 1 || !ok {
			L.Push(errTable(L, "ERR wrong number or type of arguments"))
			return 1
		}
		msg := string(s)
		if !strings.HasPrefix(msg, "-") {
			msg = "-" + msg
		}
		L.Push(errTable(L, msg[1:]))
		return 1
	})
	fn("status_reply", func(L *lua.LState) int {
		s, ok := L.Get(1).(lua.LString)
		if L.GetTop() != 1 || !ok {
			L.Push(errTable(L, "ERR wrong number or type of arguments"))
			return 1
		}
		st := L.NewTable()
		st.RawSetString("ok", s)
		L.Push(st)
		return 1
	})
	fn("sha1hex", func(L *lua.LState) int {
		if L.GetTop() != 1 {
			return r.raise("ERR wrong number of arguments")
		}
		var s string
		switch v := L.Get(1).(type) {
		case lua.LString:
			s = string(v)
		case lua.LNumber:
			s = formatNumber(v)
		}
		L.Push(lua.LString(SHA1Hex([]byte(s))))
		return 1
	})
	fn("log", func(L *lua.LState) int {
		if L.GetTop() < 2 {
			return r.raise("ERR redis.log() requires two arguments or more.")
		}
		lv, ok := L.Get(1).(lua.LNumber)
		if !ok {
			return r.raise("ERR First argument must be a number (log level).")
		}
		if lv < 0 || lv > 3 {
			return r.raise("ERR Invalid debug level.")
		}
		// Scripts run on every node of the region: a line logged from
		// apply would be logged once per node, and crdt has no logger.
		// The message is dropped, as Redis drops lines below its
		// verbosity.
		return 0
	})
	fn("setresp", func(L *lua.LState) int {
		if L.GetTop() != 1 {
			return r.raise("ERR redis.setresp() requires one argument.")
		}
		n, ok := L.Get(1).(lua.LNumber)
		if !ok || (n != 2 && n != 3) {
			return r.raise("ERR RESP version must be 2 or 3.")
		}
		r.resp = int(n)
		return 0
	})
	fn("set_repl", func(L *lua.LState) int {
		if L.GetTop() != 1 {
			return r.raise("ERR redis.set_repl() requires two arguments.")
		}
		n, ok := L.Get(1).(lua.LNumber)
		if !ok || n < 0 || n > 3 || n != lua.LNumber(int(n)) {
			return r.raise("ERR Invalid replication flags. Use REPL_AOF, REPL_REPLICA, REPL_ALL or REPL_NONE.")
		}
		// Effects always replicate: every node and region must see
		// the script's writes.
		return 0
	})
	fn("replicate_commands", func(L *lua.LState) int { L.Push(lua.LTrue); return 1 })
	fn("breakpoint", func(L *lua.LState) int { L.Push(lua.LFalse); return 1 })
	fn("debug", func(L *lua.LState) int { return 0 })
	// A fixed order: table iteration follows insertion order.
	for _, c := range []struct {
		name string
		v    int
	}{{"REPL_NONE", 0}, {"REPL_AOF", 1}, {"REPL_SLAVE", 2}, {"REPL_REPLICA", 2}, {"REPL_ALL", 3},
		{"LOG_DEBUG", 0}, {"LOG_VERBOSE", 1}, {"LOG_NOTICE", 2}, {"LOG_WARNING", 3},
		{"REDIS_VERSION_NUM", redisVersionNum}} {
		t.RawSetString(c.name, lua.LNumber(c.v))
	}
	t.RawSetString("REDIS_VERSION", lua.LString(redisVersion))
	return t
}

// notFromScripts are commands Redis refuses inside scripts.
var notFromScripts = map[string]bool{
	"eval": true, "evalsha": true, "eval_ro": true, "evalsha_ro": true, "script": true,
	"multi": true, "exec": true, "discard": true, "watch": true, "unwatch": true,
	"client": true, "subscribe": true, "psubscribe": true, "ssubscribe": true,
	"unsubscribe": true, "punsubscribe": true, "sunsubscribe": true, "monitor": true,
	"auth": true, "hello": true, "reset": true, "quit": true, "sync": true, "psync": true,
	"fcall": true, "fcall_ro": true, "function": true, "debug": true, "shutdown": true,
	"save": true, "bgsave": true, "bgrewriteaof": true, "wait": true, "failover": true,
	"replicaof": true, "slaveof": true,
}

// call is redis.call (raise) and redis.pcall: run one command through the
// script's Tx and convert its reply.
func (r *run) call(raise bool) int {
	L := r.L
	fail := func(msg string) int {
		if raise {
			return r.raise(msg)
		}
		L.Push(errTable(L, msg))
		return 1
	}
	n := L.GetTop()
	if n == 0 {
		return fail("ERR Please specify at least one argument for this redis lib call")
	}
	args := make([][]byte, n)
	for i := 1; i <= n; i++ {
		switch v := L.Get(i).(type) {
		case lua.LString:
			args[i-1] = []byte(v)
		case lua.LNumber:
			args[i-1] = []byte(formatArg(v))
		default:
			return fail("ERR Lua redis lib command arguments must be strings or integers")
		}
	}
	reply, errMsg := r.exec(args)
	if errMsg != "" {
		return fail(errMsg)
	}
	if reply.IsError() && raise {
		return r.raise(string(reply.Str))
	}
	L.Push(r.toLua(reply))
	return 1
}

// exec runs one command for the script: Redis's checks, then the command
// in the script's Tx, each write its own op of the script's batch.
func (r *run) exec(args [][]byte) (crdt.Reply, string) {
	name := strings.ToLower(string(args[0]))
	switch name {
	case "ping":
		switch len(args) {
		case 1:
			return crdt.Status("PONG"), ""
		case 2:
			return crdt.Bulk(args[1]), ""
		}
		return crdt.Reply{}, "ERR Wrong number of args calling Redis command from script"
	case "echo":
		if len(args) != 2 {
			return crdt.Reply{}, "ERR Wrong number of args calling Redis command from script"
		}
		return crdt.Bulk(args[1]), ""
	case "select":
		if len(args) != 2 {
			return crdt.Reply{}, "ERR Wrong number of args calling Redis command from script"
		}
		db, err := strconv.Atoi(string(args[1]))
		if err != nil {
			return crdt.ErrNotInt, ""
		}
		if db < 0 || db >= crdt.NumDBs {
			return crdt.ErrDBIndex, ""
		}
		r.tx.DB = db
		return crdt.OK, ""
	}
	if notFromScripts[name] {
		return crdt.Reply{}, "ERR This Redis command is not allowed from script"
	}
	spec := crdt.Lookup(args[0])
	if spec == nil || spec.Internal {
		return crdt.Reply{}, "ERR Unknown Redis command called from script"
	}
	if !spec.ArityOK(len(args)) {
		return crdt.Reply{}, "ERR Wrong number of args calling Redis command from script"
	}
	if spec.Write && (r.ro || !r.tx.Writable()) {
		return crdt.Reply{}, "ERR Write commands are not allowed from read-only scripts."
	}
	called := args[0]
	args[0] = []byte(spec.Name)
	var reply crdt.Reply
	if spec.Name == "xread" {
		reply = crdt.XReadFromScript(r.tx, called, args)
	} else {
		reply = r.tx.Exec(args...)
	}
	r.tx.Step()
	return reply, ""
}
