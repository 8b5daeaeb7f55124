package script

import (
	"math"
	"strconv"
	"strings"
	"unicode/utf8"

	lua "github.com/yuin/gopher-lua"
)

// cjson is the subset of lua-cjson Redis scripts use: encode, decode and
// null, with lua-cjson's default settings (14 significant digits, sparse
// ratio 2 over 10 safe slots, nesting up to 1000) and its error texts.
// Object members are encoded in the table's iteration order, which in
// gopher-lua is insertion order (real Lua's is its hash order).

const cjsonMaxDepth = 1000

func cjsonNull(L *lua.LState) *lua.LUserData {
	if ud, ok := L.G.Registry.RawGetString("cjson.null").(*lua.LUserData); ok {
		return ud
	}
	ud := L.NewUserData()
	L.G.Registry.RawSetString("cjson.null", ud)
	return ud
}

func (r *run) cjsonTable() *lua.LTable {
	L := r.L
	t := L.NewTable()
	t.RawSetString("null", cjsonNull(L))
	t.RawSetString("encode", L.NewFunction(func(L *lua.LState) int {
		if L.GetTop() != 1 {
			L.RaiseError("bad argument #1 to 'encode' (expected 1 argument)")
		}
		var b strings.Builder
		r.jsonEncode(&b, L.Get(1), 0)
		L.Push(lua.LString(b.String()))
		return 1
	}))
	t.RawSetString("decode", L.NewFunction(func(L *lua.LState) int {
		if L.GetTop() != 1 {
			L.RaiseError("bad argument #1 to 'decode' (expected 1 argument)")
		}
		s := L.CheckString(1)
		d := &jsonDecoder{L: L, s: s, null: cjsonNull(L)}
		v := d.value(d.next(), 0)
		if tok := d.next(); tok.kind != tEnd {
			d.fail("the end", tok)
		}
		L.Push(v)
		return 1
	}))
	return t
}

func (r *run) jsonEncode(b *strings.Builder, v lua.LValue, depth int) {
	L := r.L
	switch x := v.(type) {
	case *lua.LNilType:
		b.WriteString("null")
	case lua.LBool:
		if x {
			b.WriteString("true")
		} else {
			b.WriteString("false")
		}
	case lua.LNumber:
		f := float64(x)
		if math.IsInf(f, 0) || math.IsNaN(f) {
			L.RaiseError("Cannot serialise number: must not be NaN or Inf")
		}
		b.WriteString(formatNumber(x))
	case lua.LString:
		jsonString(b, string(x))
	case *lua.LUserData:
		if x == cjsonNull(L) {
			b.WriteString("null")
			return
		}
		L.RaiseError("Cannot serialise userdata: type not supported")
	case *lua.LTable:
		depth++
		if depth > cjsonMaxDepth {
			L.RaiseError("Cannot serialise, excessive nesting (%d)", depth)
		}
		n := arrayLength(x)
		if n == -1 {
			L.RaiseError("Cannot serialise table: excessively sparse array")
		}
		if n > 0 {
			b.WriteByte('[')
			for i := 1; i <= n; i++ {
				if i > 1 {
					b.WriteByte(',')
				}
				r.jsonEncode(b, x.RawGetInt(i), depth)
			}
			b.WriteByte(']')
			return
		}
		b.WriteByte('{')
		first := true
		for k, val := x.Next(lua.LNil); k != lua.LNil; k, val = x.Next(k) {
			if !first {
				b.WriteByte(',')
			}
			first = false
			switch kk := k.(type) {
			case lua.LString:
				jsonString(b, string(kk))
			case lua.LNumber:
				jsonString(b, formatNumber(kk))
			default:
				L.RaiseError("Cannot serialise %s: table key must be a number or string", k.Type().String())
			}
			b.WriteByte(':')
			r.jsonEncode(b, val, depth)
		}
		b.WriteByte('}')
	default:
		L.RaiseError("Cannot serialise %s: type not supported", v.Type().String())
	}
}

// arrayLength is lua-cjson's lua_array_length: the largest key if every
// key is a positive integer (0 if the table is empty or has another key),
// -1 if such an array is excessively sparse.
func arrayLength(t *lua.LTable) int {
	max, items := 0, 0
	for k, _ := t.Next(lua.LNil); k != lua.LNil; k, _ = t.Next(k) {
		n, ok := k.(lua.LNumber)
		if !ok || float64(n) < 1 || float64(n) != math.Floor(float64(n)) {
			return 0
		}
		if int(n) > max {
			max = int(n)
		}
		items++
	}
	if max > 10 && max > items*2 {
		return -1
	}
	return max
}

func jsonString(b *strings.Builder, s string) {
	b.WriteByte('"')
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch c {
		case '"':
			b.WriteString(`\"`)
		case '\\':
			b.WriteString(`\\`)
		case '/':
			b.WriteString(`\/`)
		case '\b':
			b.WriteString(`\b`)
		case '\f':
			b.WriteString(`\f`)
		case '\n':
			b.WriteString(`\n`)
		case '\r':
			b.WriteString(`\r`)
		case '\t':
			b.WriteString(`\t`)
		default:
			if c < 0x20 || c == 0x7f {
				b.WriteString(`\u00`)
				b.WriteByte("0123456789abcdef"[c>>4])
				b.WriteByte("0123456789abcdef"[c&15])
			} else {
				b.WriteByte(c)
			}
		}
	}
	b.WriteByte('"')
}

type tokKind int

const (
	tObjBegin tokKind = iota
	tObjEnd
	tArrBegin
	tArrEnd
	tString
	tNumber
	tBoolean
	tNull
	tColon
	tComma
	tEnd
	tError
)

var tokNames = [...]string{"T_OBJ_BEGIN", "T_OBJ_END", "T_ARR_BEGIN", "T_ARR_END", "T_STRING",
	"T_NUMBER", "T_BOOLEAN", "T_NULL", "T_COLON", "T_COMMA", "T_END", "T_ERROR"}

type token struct {
	kind  tokKind
	index int
	str   string
	num   float64
	b     bool
	err   string
}

type jsonDecoder struct {
	L    *lua.LState
	s    string
	i    int
	null *lua.LUserData
}

func (d *jsonDecoder) fail(expected string, t token) {
	found := tokNames[t.kind]
	if t.kind == tError {
		found = t.err
	}
	d.L.RaiseError("Expected %s but found %s at character %d", expected, found, t.index+1)
}

func (d *jsonDecoder) next() token {
	for d.i < len(d.s) && strings.IndexByte(" \t\r\n", d.s[d.i]) >= 0 {
		d.i++
	}
	t := token{index: d.i}
	if d.i >= len(d.s) {
		t.kind = tEnd
		return t
	}
	c := d.s[d.i]
	switch c {
	case '{', '}', '[', ']', ':', ',':
		t.kind = map[byte]tokKind{'{': tObjBegin, '}': tObjEnd, '[': tArrBegin, ']': tArrEnd, ':': tColon, ',': tComma}[c]
		d.i++
		return t
	case '"':
		return d.str(t)
	}
	for _, w := range []struct {
		lit  string
		kind tokKind
		b    bool
	}{{"true", tBoolean, true}, {"false", tBoolean, false}, {"null", tNull, false}} {
		if strings.HasPrefix(d.s[d.i:], w.lit) {
			d.i += len(w.lit)
			t.kind, t.b = w.kind, w.b
			return t
		}
	}
	if c == '-' || c >= '0' && c <= '9' {
		j := d.i
		for j < len(d.s) && strings.IndexByte("+-0123456789.eE", d.s[j]) >= 0 {
			j++
		}
		f, err := strconv.ParseFloat(d.s[d.i:j], 64)
		if err == nil {
			d.i = j
			t.kind, t.num = tNumber, f
			return t
		}
	}
	t.kind, t.err = tError, "invalid token"
	return t
}

func (d *jsonDecoder) str(t token) token {
	var b strings.Builder
	j := d.i + 1
	for {
		if j >= len(d.s) {
			t.kind, t.err = tError, "unexpected end of string"
			return t
		}
		c := d.s[j]
		if c == '"' {
			break
		}
		if c != '\\' {
			b.WriteByte(c)
			j++
			continue
		}
		if j+1 >= len(d.s) {
			t.kind, t.err = tError, "unexpected end of string"
			return t
		}
		e := d.s[j+1]
		switch e {
		case '"', '\\', '/':
			b.WriteByte(e)
		case 'b':
			b.WriteByte('\b')
		case 'f':
			b.WriteByte('\f')
		case 'n':
			b.WriteByte('\n')
		case 'r':
			b.WriteByte('\r')
		case 't':
			b.WriteByte('\t')
		case 'u':
			if j+6 > len(d.s) {
				t.kind, t.err = tError, "invalid unicode escape code"
				return t
			}
			cp, err := strconv.ParseUint(d.s[j+2:j+6], 16, 32)
			if err != nil {
				t.kind, t.err = tError, "invalid unicode escape code"
				return t
			}
			j += 4
			r := rune(cp)
			if r >= 0xD800 && r < 0xDC00 && j+8 <= len(d.s) && d.s[j+2] == '\\' && d.s[j+3] == 'u' {
				if lo, err := strconv.ParseUint(d.s[j+4:j+8], 16, 32); err == nil && lo >= 0xDC00 && lo < 0xE000 {
					r = (r-0xD800)<<10 + rune(lo-0xDC00) + 0x10000
					j += 6
				}
			}
			var buf [4]byte
			b.Write(buf[:utf8.EncodeRune(buf[:], r)])
		default:
			t.kind, t.err = tError, "invalid escape code"
			return t
		}
		j += 2
	}
	d.i = j + 1
	t.kind, t.str = tString, b.String()
	return t
}

func (d *jsonDecoder) value(t token, depth int) lua.LValue {
	L := d.L
	switch t.kind {
	case tString:
		return lua.LString(t.str)
	case tNumber:
		return lua.LNumber(t.num)
	case tBoolean:
		return lua.LBool(t.b)
	case tNull:
		return d.null
	case tObjBegin, tArrBegin:
		if depth+1 > cjsonMaxDepth {
			L.RaiseError("Found too many nested data structures (%d) at character %d", depth+1, t.index+1)
		}
		tbl := L.NewTable()
		if t.kind == tArrBegin {
			tok := d.next()
			if tok.kind == tArrEnd {
				return tbl
			}
			for i := 1; ; i++ {
				tbl.RawSetInt(i, d.value(tok, depth+1))
				tok = d.next()
				if tok.kind == tArrEnd {
					return tbl
				}
				if tok.kind != tComma {
					d.fail("comma or array end", tok)
				}
				tok = d.next()
			}
		}
		tok := d.next()
		if tok.kind == tObjEnd {
			return tbl
		}
		for {
			if tok.kind != tString {
				d.fail("object key string", tok)
			}
			key := tok.str
			if c := d.next(); c.kind != tColon {
				d.fail("colon", c)
			}
			tbl.RawSetString(key, d.value(d.next(), depth+1))
			tok = d.next()
			if tok.kind == tObjEnd {
				return tbl
			}
			if tok.kind != tComma {
				d.fail("comma or object end", tok)
			}
			tok = d.next()
		}
	}
	d.fail("value", t)
	return lua.LNil
}
