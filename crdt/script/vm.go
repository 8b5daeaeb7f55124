package script

import (
	"sync"

	lua "github.com/yuin/gopher-lua"
)

// vm is a Lua state with Redis's environment built, reused across scripts
// because building the environment costs far more than most scripts.
//
// Reuse must not let one script affect the next, or a node that restarted
// (with fresh states) would run scripts differently from its peers. The
// environment is made as read-only as gopher-lua allows, as Redis 7.0 makes
// it: creating a global or a library member fails ("Attempt to modify a
// readonly table"), and so do rawset and setmetatable on those tables.
// What remains possible, overwriting an existing member (string.upper = f)
// or editing a metatable got from getmetatable, is caught after the
// script: a state goes back to the pool only if every member is as built
// and no script got hold of a protected metatable. Otherwise it is left to
// the garbage collector and the next script gets a fresh one. Every script
// therefore starts from the same environment on every node, pooled or not.
type vm struct {
	L *lua.LState
	r *run // the engine functions' view of the running script
	// members are the environment's tables and what each held when built.
	members []tableSnap
}

type tableSnap struct {
	t    *lua.LTable
	keys []string
	vals []lua.LValue
}

var vmPool sync.Pool

func getVM() *vm {
	if v, ok := vmPool.Get().(*vm); ok {
		return v
	}
	return newVM()
}

func putVM(v *vm) {
	v.L.SetTop(0)
	v.L.RemoveContext()
	g := v.L.G.Global
	g.RawSetString("KEYS", lua.LNil)
	g.RawSetString("ARGV", lua.LNil)
	dirty := v.r.dirty
	*v.r = run{L: v.L, protected: v.r.protected}
	if !dirty && v.pristine() {
		vmPool.Put(v)
		return
	}
	v.L.Close()
}

func newVM() *vm {
	L := lua.NewState(lua.Options{SkipOpenLibs: true, CallStackSize: callStackSize,
		RegistrySize: registrySize, RegistryMaxSize: registryMax, MinimizeStackMemory: true})
	v := &vm{L: L, r: &run{L: L, protected: map[*lua.LTable]bool{}}}
	v.r.open()
	v.r.protectGlobals()
	g := L.G.Global
	v.members = append(v.members, snap(g))
	for k, x := g.Next(lua.LNil); k != lua.LNil; k, x = g.Next(k) {
		if t, ok := x.(*lua.LTable); ok && t != g {
			v.r.protectTable(t)
			v.members = append(v.members, snap(t))
		}
	}
	v.r.protected[g] = true
	for _, x := range []lua.LValue{g, lua.LString("")} {
		if mt, ok := L.GetMetatable(x).(*lua.LTable); ok {
			v.r.protected[mt] = true
			v.members = append(v.members, snap(mt))
		}
	}
	return v
}

func snap(t *lua.LTable) tableSnap {
	var s tableSnap
	s.t = t
	for k, x := t.Next(lua.LNil); k != lua.LNil; k, x = t.Next(k) {
		if ks, ok := k.(lua.LString); ok {
			s.keys = append(s.keys, string(ks))
			s.vals = append(s.vals, x)
		}
	}
	return s
}

// pristine reports whether every member of the environment is as newVM
// built it. New members cannot appear (the tables refuse them), so
// checking the built ones suffices.
func (v *vm) pristine() bool {
	for _, s := range v.members {
		for i, k := range s.keys {
			if s.t.RawGetString(k) != s.vals[i] {
				return false
			}
		}
	}
	return true
}
