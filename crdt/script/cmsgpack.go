package script

import (
	"encoding/binary"
	"math"
	"strings"

	lua "github.com/yuin/gopher-lua"
)

// cmsgpack is lua-cmsgpack 0.4.0 as Redis ships it: pack, unpack,
// unpack_one and unpack_limit, with its encoding choices (smallest integer
// form, float32 when exact) and error texts. Maps are packed in the table's
// iteration order (insertion order here, hash order in Redis).

const cmsgpackMaxNesting = 16

func cmsgpackTable(L *lua.LState) *lua.LTable {
	t := L.NewTable()
	t.RawSetString("pack", L.NewFunction(func(L *lua.LState) int {
		n := L.GetTop()
		if n == 0 {
			L.ArgError(0, "MessagePack pack needs input.")
		}
		var b []byte
		for i := 1; i <= n; i++ {
			b = mpEncode(b, L.Get(i), 0)
		}
		L.Push(lua.LString(b))
		return 1
	}))
	unpack := func(L *lua.LState, limit, offset int, all bool) int {
		s := L.CheckString(1)
		if offset < 0 || limit < 0 {
			L.RaiseError("Invalid request to unpack with offset of %d and limit of %d.", offset, len(s))
		}
		if offset > len(s) {
			L.RaiseError("Start offset %d greater than input length %d.", offset, len(s))
		}
		d := &mpDecoder{L: L, b: []byte(s[offset:])}
		var vals []lua.LValue
		for len(d.b) > 0 && (all || len(vals) < limit) {
			v := d.value()
			switch d.err {
			case errEOF:
				L.RaiseError("Missing bytes in input.")
			case errFormat:
				L.RaiseError("Bad data format in input.")
			}
			vals = append(vals, v)
		}
		if !all {
			next := len(s) - len(d.b)
			if len(d.b) == 0 {
				next = -1
			}
			L.Push(lua.LNumber(next))
		}
		for _, v := range vals {
			L.Push(v)
		}
		if all {
			return len(vals)
		}
		return len(vals) + 1
	}
	t.RawSetString("unpack", L.NewFunction(func(L *lua.LState) int { return unpack(L, 0, 0, true) }))
	t.RawSetString("unpack_one", L.NewFunction(func(L *lua.LState) int {
		return unpack(L, 1, L.OptInt(2, 0), false)
	}))
	t.RawSetString("unpack_limit", L.NewFunction(func(L *lua.LState) int {
		return unpack(L, L.OptInt(2, 0), L.OptInt(3, 0), false)
	}))
	return t
}

func mpEncode(b []byte, v lua.LValue, level int) []byte {
	switch x := v.(type) {
	case lua.LString:
		n := len(x)
		switch {
		case n < 32:
			b = append(b, 0xa0|byte(n))
		case n <= 0xff:
			b = append(b, 0xd9, byte(n))
		case n <= 0xffff:
			b = binary.BigEndian.AppendUint16(append(b, 0xda), uint16(n))
		default:
			b = binary.BigEndian.AppendUint32(append(b, 0xdb), uint32(n))
		}
		return append(b, x...)
	case lua.LBool:
		if x {
			return append(b, 0xc3)
		}
		return append(b, 0xc2)
	case lua.LNumber:
		f := float64(x)
		if !math.IsInf(f, 0) && !math.IsNaN(f) && f >= -9223372036854775808 && f < 9223372036854775808 && float64(int64(f)) == f {
			return mpInt(b, int64(f))
		}
		if f32 := float32(f); float64(f32) == f || math.IsInf(f, 0) {
			return binary.BigEndian.AppendUint32(append(b, 0xca), math.Float32bits(f32))
		}
		return binary.BigEndian.AppendUint64(append(b, 0xcb), math.Float64bits(f))
	case *lua.LTable:
		if level == cmsgpackMaxNesting {
			return append(b, 0xc0)
		}
		if n, ok := mpArrayLen(x); ok {
			switch {
			case n <= 15:
				b = append(b, 0x90|byte(n))
			case n <= 0xffff:
				b = binary.BigEndian.AppendUint16(append(b, 0xdc), uint16(n))
			default:
				b = binary.BigEndian.AppendUint32(append(b, 0xdd), uint32(n))
			}
			for i := 1; i <= n; i++ {
				b = mpEncode(b, x.RawGetInt(i), level+1)
			}
			return b
		}
		n := 0
		for k, _ := x.Next(lua.LNil); k != lua.LNil; k, _ = x.Next(k) {
			n++
		}
		switch {
		case n <= 15:
			b = append(b, 0x80|byte(n))
		case n <= 0xffff:
			b = binary.BigEndian.AppendUint16(append(b, 0xde), uint16(n))
		default:
			b = binary.BigEndian.AppendUint32(append(b, 0xdf), uint32(n))
		}
		for k, val := x.Next(lua.LNil); k != lua.LNil; k, val = x.Next(k) {
			b = mpEncode(b, k, level+1)
			b = mpEncode(b, val, level+1)
		}
		return b
	}
	return append(b, 0xc0) // nil, functions, userdata
}

// mpArrayLen is lua-cmsgpack's table_is_an_array: every key a positive
// integer and the keys exactly 1..n.
func mpArrayLen(t *lua.LTable) (int, bool) {
	max, count := 0, 0
	for k, _ := t.Next(lua.LNil); k != lua.LNil; k, _ = t.Next(k) {
		n, ok := k.(lua.LNumber)
		if !ok || n <= 0 || float64(n) != math.Trunc(float64(n)) {
			return 0, false
		}
		if int(n) > max {
			max = int(n)
		}
		count++
	}
	return max, max == count
}

func mpInt(b []byte, n int64) []byte {
	if n >= 0 {
		switch {
		case n <= 127:
			return append(b, byte(n))
		case n <= 0xff:
			return append(b, 0xcc, byte(n))
		case n <= 0xffff:
			return binary.BigEndian.AppendUint16(append(b, 0xcd), uint16(n))
		case n <= 0xffffffff:
			return binary.BigEndian.AppendUint32(append(b, 0xce), uint32(n))
		}
		return binary.BigEndian.AppendUint64(append(b, 0xcf), uint64(n))
	}
	switch {
	case n >= -32:
		return append(b, byte(int8(n)))
	case n >= -128:
		return append(b, 0xd0, byte(int8(n)))
	case n >= -32768:
		return binary.BigEndian.AppendUint16(append(b, 0xd1), uint16(int16(n)))
	case n >= -2147483648:
		return binary.BigEndian.AppendUint32(append(b, 0xd2), uint32(int32(n)))
	}
	return binary.BigEndian.AppendUint64(append(b, 0xd3), uint64(n))
}

type mpErr int

const (
	errNone mpErr = iota
	errEOF
	errFormat
)

type mpDecoder struct {
	L     *lua.LState
	b     []byte
	err   mpErr
	depth int
}

func (d *mpDecoder) take(n int) []byte {
	if d.err != errNone {
		return nil
	}
	if len(d.b) < n {
		d.err = errEOF
		return nil
	}
	p := d.b[:n]
	d.b = d.b[n:]
	return p
}

func (d *mpDecoder) uint(n int) uint64 {
	p := d.take(n)
	if p == nil {
		return 0
	}
	var v uint64
	for _, c := range p {
		v = v<<8 | uint64(c)
	}
	return v
}

func (d *mpDecoder) value() lua.LValue {
	p := d.take(1)
	if p == nil {
		return lua.LNil
	}
	c := p[0]
	switch {
	case c <= 0x7f:
		return lua.LNumber(c)
	case c >= 0xe0:
		return lua.LNumber(int8(c))
	case c >= 0xa0 && c <= 0xbf:
		return d.str(int(c & 0x1f))
	case c >= 0x90 && c <= 0x9f:
		return d.array(int(c & 0x0f))
	case c >= 0x80 && c <= 0x8f:
		return d.table(int(c & 0x0f))
	}
	switch c {
	case 0xc0:
		return lua.LNil
	case 0xc2:
		return lua.LFalse
	case 0xc3:
		return lua.LTrue
	case 0xca:
		return lua.LNumber(math.Float32frombits(uint32(d.uint(4))))
	case 0xcb:
		return lua.LNumber(math.Float64frombits(d.uint(8)))
	case 0xcc:
		return lua.LNumber(d.uint(1))
	case 0xcd:
		return lua.LNumber(d.uint(2))
	case 0xce:
		return lua.LNumber(d.uint(4))
	case 0xcf:
		return lua.LNumber(float64(d.uint(8)))
	case 0xd0:
		return lua.LNumber(int8(d.uint(1)))
	case 0xd1:
		return lua.LNumber(int16(d.uint(2)))
	case 0xd2:
		return lua.LNumber(int32(d.uint(4)))
	case 0xd3:
		return lua.LNumber(float64(int64(d.uint(8))))
	case 0xd9:
		return d.str(int(d.uint(1)))
	case 0xda:
		return d.str(int(d.uint(2)))
	case 0xdb:
		return d.str(int(d.uint(4)))
	case 0xdc:
		return d.array(int(d.uint(2)))
	case 0xdd:
		return d.array(int(d.uint(4)))
	case 0xde:
		return d.table(int(d.uint(2)))
	case 0xdf:
		return d.table(int(d.uint(4)))
	}
	d.err = errFormat
	return lua.LNil
}

func (d *mpDecoder) str(n int) lua.LValue {
	p := d.take(n)
	if p == nil {
		return lua.LNil
	}
	var b strings.Builder
	b.Write(p)
	return lua.LString(b.String())
}

// maxDecodeDepth bounds nesting while decoding (the input is untrusted;
// Lua's own C stack would stop lua-cmsgpack).
const maxDecodeDepth = 1000

func (d *mpDecoder) array(n int) lua.LValue {
	if d.err != errNone {
		return lua.LNil
	}
	if n > len(d.b) { // every element takes at least one byte
		d.err = errEOF
		return lua.LNil
	}
	if d.depth++; d.depth > maxDecodeDepth {
		d.L.RaiseError("too many nested data structures")
	}
	defer func() { d.depth-- }()
	t := d.L.CreateTable(n, 0)
	for i := 1; i <= n && d.err == errNone; i++ {
		if v := d.value(); v != lua.LNil {
			t.RawSetInt(i, v)
		}
	}
	return t
}

func (d *mpDecoder) table(n int) lua.LValue {
	if d.err != errNone {
		return lua.LNil
	}
	if 2*n > len(d.b) {
		d.err = errEOF
		return lua.LNil
	}
	if d.depth++; d.depth > maxDecodeDepth {
		d.L.RaiseError("too many nested data structures")
	}
	defer func() { d.depth-- }()
	t := d.L.CreateTable(0, n)
	for i := 0; i < n && d.err == errNone; i++ {
		k := d.value()
		v := d.value()
		if k == lua.LNil {
			if d.err == errNone {
				d.L.RaiseError("table index is nil")
			}
			continue
		}
		if f, ok := k.(lua.LNumber); ok && math.IsNaN(float64(f)) {
			d.L.RaiseError("table index is NaN")
		}
		t.RawSet(k, v)
	}
	return t
}
