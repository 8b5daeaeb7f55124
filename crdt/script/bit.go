package script

import (
	lua "github.com/yuin/gopher-lua"
)

// bitTable is LuaBitOp (the bit library Redis ships): 32-bit operations on
// numbers normalised as LuaBitOp's tobit does (mod 2^32, signed result).
func bitTable(L *lua.LState) *lua.LTable {
	t := L.NewTable()
	arg := func(L *lua.LState, i int) uint32 {
		n := float64(L.CheckNumber(i))
		// LuaBitOp adds 2^52+2^51 and takes the low 32 bits: round to
		// nearest even, then wrap.
		return uint32(int64(n+6755399441055744.0) - 6755399441055744)
	}
	push := func(L *lua.LState, v uint32) int { L.Push(lua.LNumber(int32(v))); return 1 }
	fold := func(op func(a, b uint32) uint32) lua.LGFunction {
		return func(L *lua.LState) int {
			v := arg(L, 1)
			for i := 2; i <= L.GetTop(); i++ {
				v = op(v, arg(L, i))
			}
			return push(L, v)
		}
	}
	fns := map[string]lua.LGFunction{
		"tobit":  func(L *lua.LState) int { return push(L, arg(L, 1)) },
		"bnot":   func(L *lua.LState) int { return push(L, ^arg(L, 1)) },
		"band":   fold(func(a, b uint32) uint32 { return a & b }),
		"bor":    fold(func(a, b uint32) uint32 { return a | b }),
		"bxor":   fold(func(a, b uint32) uint32 { return a ^ b }),
		"lshift": func(L *lua.LState) int { return push(L, arg(L, 1)<<(arg(L, 2)&31)) },
		"rshift": func(L *lua.LState) int { return push(L, arg(L, 1)>>(arg(L, 2)&31)) },
		"arshift": func(L *lua.LState) int {
			return push(L, uint32(int32(arg(L, 1))>>(arg(L, 2)&31)))
		},
		"rol": func(L *lua.LState) int {
			v, n := arg(L, 1), arg(L, 2)&31
			return push(L, v<<n|v>>((32-n)&31))
		},
		"ror": func(L *lua.LState) int {
			v, n := arg(L, 1), arg(L, 2)&31
			return push(L, v>>n|v<<((32-n)&31))
		},
		"bswap": func(L *lua.LState) int {
			v := arg(L, 1)
			return push(L, v>>24|v>>8&0xff00|v<<8&0xff0000|v<<24)
		},
		"tohex": func(L *lua.LState) int {
			v := arg(L, 1)
			n := 8
			if L.GetTop() >= 2 {
				n = int(int32(arg(L, 2)))
			}
			digits := "0123456789abcdef"
			if n < 0 {
				n, digits = -n, "0123456789ABCDEF"
			}
			if n > 8 {
				n = 8
			}
			buf := make([]byte, n)
			for i := n - 1; i >= 0; i-- {
				buf[i] = digits[v&15]
				v >>= 4
			}
			L.Push(lua.LString(buf))
			return 1
		},
	}
	// Insert in a fixed order: table iteration follows insertion order.
	for _, name := range []string{"tobit", "bnot", "band", "bor", "bxor", "lshift", "rshift",
		"arshift", "rol", "ror", "bswap", "tohex"} {
		t.RawSetString(name, L.NewFunction(fns[name]))
	}
	return t
}
