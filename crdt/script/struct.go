package script

import (
	"bytes"
	"encoding/binary"
	"math"

	lua "github.com/yuin/gopher-lua"
)

// structTable is lua-struct 0.2 as Redis ships it (struct.pack, unpack,
// size), for the x86-64 ABI Redis is built for: native order little
// endian, long and size_t 8 bytes, int 4, alignment off unless '!' asks.

const (
	structMaxIntSize = 32
	structMaxAlign   = 8
)

type structHeader struct {
	big   bool
	align int
}

type structFmt struct {
	L   *lua.LState
	f   string
	i   int
	hdr structHeader
}

func (s *structFmt) getnum(df int) int {
	if s.i >= len(s.f) || s.f[s.i] < '0' || s.f[s.i] > '9' {
		return df
	}
	a := 0
	for s.i < len(s.f) && s.f[s.i] >= '0' && s.f[s.i] <= '9' {
		if a > (math.MaxInt32-int(s.f[s.i]-'0'))/10 {
			s.L.RaiseError("integral size overflow")
		}
		a = a*10 + int(s.f[s.i]-'0')
		s.i++
	}
	return a
}

func (s *structFmt) optsize(opt byte) int {
	switch opt {
	case 'B', 'b':
		return 1
	case 'H', 'h':
		return 2
	case 'L', 'l', 'T', 'd':
		return 8
	case 'f':
		return 4
	case 'x':
		return 1
	case 'c':
		return s.getnum(1)
	case 'i', 'I':
		sz := s.getnum(4)
		if sz > structMaxIntSize {
			s.L.RaiseError("integral size %d is larger than limit of %d", sz, structMaxIntSize)
		}
		return sz
	}
	return 0
}

func (s *structFmt) toalign(n, size int, opt byte) int {
	if size == 0 || opt == 'c' {
		return 0
	}
	if size > s.hdr.align {
		size = s.hdr.align
	}
	return (size - (n & (size - 1))) & (size - 1)
}

func (s *structFmt) control(opt byte) {
	switch opt {
	case ' ':
	case '>':
		s.hdr.big = true
	case '<':
		s.hdr.big = false
	case '!':
		a := s.getnum(structMaxAlign)
		if a <= 0 || a&(a-1) != 0 {
			s.L.RaiseError("alignment %d is not a power of 2", a)
		}
		s.hdr.align = a
	default:
		s.L.ArgError(1, "invalid format option '"+string(opt)+"'")
	}
}

func (s *structFmt) putInt(b []byte, n float64, size int) []byte {
	var v uint64
	if n < 0 {
		v = uint64(int64(n))
	} else {
		v = uint64(n)
	}
	buf := make([]byte, size)
	for i := 0; i < size; i++ {
		j := i
		if s.hdr.big {
			j = size - 1 - i
		}
		buf[j] = byte(v)
		v >>= 8
	}
	return append(b, buf...)
}

func (s *structFmt) getInt(p []byte, signed bool) float64 {
	var l uint64
	size := len(p)
	for i := 0; i < size; i++ {
		c := p[i]
		if !s.hdr.big {
			c = p[size-1-i]
		}
		l = l<<8 | uint64(c)
	}
	if !signed {
		return float64(l)
	}
	if size < 8 && size > 0 {
		if mask := ^uint64(0) << (size*8 - 1); l&mask != 0 {
			l |= mask
		}
	}
	return float64(int64(l))
}

func structTable(L *lua.LState) *lua.LTable {
	t := L.NewTable()
	t.RawSetString("pack", L.NewFunction(func(L *lua.LState) int {
		s := &structFmt{L: L, f: L.CheckString(1), hdr: structHeader{align: 1}}
		arg := 2
		var b []byte
		for s.i < len(s.f) {
			opt := s.f[s.i]
			s.i++
			size := s.optsize(opt)
			for n := s.toalign(len(b), size, opt); n > 0; n-- {
				b = append(b, 0)
			}
			switch opt {
			case 'b', 'B', 'h', 'H', 'l', 'L', 'T', 'i', 'I':
				b = s.putInt(b, float64(L.CheckNumber(arg)), size)
				arg++
			case 'x':
				b = append(b, 0)
			case 'f':
				bits := math.Float32bits(float32(L.CheckNumber(arg)))
				arg++
				if s.hdr.big {
					b = binary.BigEndian.AppendUint32(b, bits)
				} else {
					b = binary.LittleEndian.AppendUint32(b, bits)
				}
			case 'd':
				bits := math.Float64bits(float64(L.CheckNumber(arg)))
				arg++
				if s.hdr.big {
					b = binary.BigEndian.AppendUint64(b, bits)
				} else {
					b = binary.LittleEndian.AppendUint64(b, bits)
				}
			case 'c', 's':
				str := L.CheckString(arg)
				arg++
				if size == 0 {
					size = len(str)
				}
				if len(str) < size {
					L.ArgError(arg, "string too short")
				}
				b = append(b, str[:size]...)
				if opt == 's' {
					b = append(b, 0)
				}
			default:
				s.control(opt)
			}
		}
		L.Push(lua.LString(b))
		return 1
	}))
	t.RawSetString("unpack", L.NewFunction(func(L *lua.LState) int {
		s := &structFmt{L: L, f: L.CheckString(1), hdr: structHeader{align: 1}}
		data := []byte(L.CheckString(2))
		pos := L.OptInt(3, 1) - 1
		var out []lua.LValue
		for s.i < len(s.f) {
			opt := s.f[s.i]
			s.i++
			size := s.optsize(opt)
			pos += s.toalign(pos, size, opt)
			if pos < 0 || size > len(data) || pos > len(data)-size {
				L.ArgError(2, "data string too short")
			}
			switch opt {
			case 'b', 'B', 'h', 'H', 'l', 'L', 'T', 'i', 'I':
				out = append(out, lua.LNumber(s.getInt(data[pos:pos+size], opt >= 'a')))
			case 'x':
			case 'f':
				var bits uint32
				if s.hdr.big {
					bits = binary.BigEndian.Uint32(data[pos:])
				} else {
					bits = binary.LittleEndian.Uint32(data[pos:])
				}
				out = append(out, lua.LNumber(math.Float32frombits(bits)))
			case 'd':
				var bits uint64
				if s.hdr.big {
					bits = binary.BigEndian.Uint64(data[pos:])
				} else {
					bits = binary.LittleEndian.Uint64(data[pos:])
				}
				out = append(out, lua.LNumber(math.Float64frombits(bits)))
			case 'c':
				if size == 0 {
					var prev lua.LNumber
					ok := false
					if len(out) > 0 {
						prev, ok = out[len(out)-1].(lua.LNumber)
					}
					if !ok {
						L.RaiseError("format 'c0' needs a previous size")
					}
					size = int(prev)
					out = out[:len(out)-1]
					if size < 0 || size > len(data) || pos > len(data)-size {
						L.ArgError(2, "data string too short")
					}
				}
				out = append(out, lua.LString(data[pos:pos+size]))
			case 's':
				e := bytes.IndexByte(data[pos:], 0)
				if e < 0 {
					L.RaiseError("unfinished string in data")
				}
				size = e + 1
				out = append(out, lua.LString(data[pos:pos+e]))
			default:
				s.control(opt)
			}
			pos += size
		}
		for _, v := range out {
			L.Push(v)
		}
		L.Push(lua.LNumber(pos + 1))
		return len(out) + 1
	}))
	t.RawSetString("size", L.NewFunction(func(L *lua.LState) int {
		s := &structFmt{L: L, f: L.CheckString(1), hdr: structHeader{align: 1}}
		pos := 0
		for s.i < len(s.f) {
			opt := s.f[s.i]
			s.i++
			size := s.optsize(opt)
			pos += s.toalign(pos, size, opt)
			if opt == 's' {
				L.ArgError(1, "option 's' has no fixed size")
			} else if opt == 'c' && size == 0 {
				L.ArgError(1, "option 'c0' has no fixed size")
			}
			if !(opt >= 'a' && opt <= 'z' || opt >= 'A' && opt <= 'Z' || opt >= '0' && opt <= '9') {
				s.control(opt)
			}
			pos += size
		}
		L.Push(lua.LNumber(pos))
		return 1
	}))
	return t
}
