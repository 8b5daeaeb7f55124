package crdt

import (
	"math/big"
)

// Redis does INCRBYFLOAT and HINCRBYFLOAT in C long double, which on x86-64
// is the x87 80-bit extended format: a 64-bit significand and a 15-bit
// exponent. Replies and stored values are that arithmetic printed with
// "%.17Lf", so matching Redis to the last digit means reproducing it exactly:
// parse like glibc strtold (correctly rounded), add with one rounding to 64
// bits (round to nearest even), and print the exact decimal expansion.
// math/big.Float at precision 64 does all three; only the exponent range has
// to be checked by hand, because big.Float's is far wider than the x87's.

const (
	ldPrec = 64
	// ldMaxExp bounds finite values: |x| < 2^16384 (big.Float's MantExp of
	// the largest finite long double is 16384).
	ldMaxExp = 16384
	// ldHalfMinExp is the exponent of half the smallest subnormal, 2^-16446.
	// strtold rounds anything at or below it to zero with ERANGE, and Redis's
	// string2ld rejects that.
	ldHalfMinExp = -16446
	// ldMaxChars is Redis's MAX_LONG_DOUBLE_CHARS: string2ld rejects inputs of
	// this length or more.
	ldMaxChars = 5 * 1024
)

// ldParse is the outcome of parsing a long double.
type ldParse uint8

const (
	ldOK  ldParse = iota
	ldInf         // a valid spelling of +-infinity: Redis accepts it, then the sum is infinite
	ldBad         // not a number Redis's string2ld accepts
)

// parseLongDouble parses s as Redis's string2ld does (strtold on the whole
// string, no leading space, rejecting NaN, overflow and underflow to zero).
// On ldOK the value is returned rounded to 64 bits.
func parseLongDouble(s []byte) (*big.Float, ldParse) {
	if len(s) == 0 || len(s) >= ldMaxChars {
		return nil, ldBad
	}
	i := 0
	neg := false
	if s[0] == '+' || s[0] == '-' {
		neg = s[0] == '-'
		i++
	}
	rest := s[i:]
	if len(rest) > 0 && (rest[0]|0x20 == 'i' || rest[0]|0x20 == 'n') {
		// strtold takes "inf", "infinity" and "nan[(...)]" in any case. NaN
		// is always rejected, so only the infinities need recognising.
		if eqFold(rest, "inf") || eqFold(rest, "infinity") {
			return nil, ldInf
		}
		return nil, ldBad
	}
	var x *big.Float
	var ok bool
	if len(rest) >= 2 && rest[0] == '0' && rest[1]|0x20 == 'x' {
		x, ok = parseHexLD(rest[2:])
	} else {
		x, ok = parseDecLD(rest)
	}
	if !ok {
		return nil, ldBad
	}
	if x == nil {
		return nil, ldBad // overflow: strtold returns HUGE_VAL with ERANGE, which string2ld rejects
	}
	if neg {
		x.Neg(x)
	}
	return x, ldOK
}

func eqFold(b []byte, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i := range b {
		if b[i]|0x20 != s[i] {
			return false
		}
	}
	return true
}

// scanDigits returns the length of the run of digits (hex if hex) at s.
func scanDigits(s []byte, hex bool) int {
	n := 0
	for n < len(s) && (s[n] >= '0' && s[n] <= '9' || hex && (s[n]|0x20 >= 'a' && s[n]|0x20 <= 'f')) {
		n++
	}
	return n
}

// scanExponent parses an exponent "[+-]digits" taking all of s. Huge
// exponents saturate; the callers' range checks turn them into overflow or
// underflow as strtold does.
func scanExponent(s []byte) (int64, bool) {
	neg := false
	if len(s) > 0 && (s[0] == '+' || s[0] == '-') {
		neg = s[0] == '-'
		s = s[1:]
	}
	if len(s) == 0 || scanDigits(s, false) != len(s) {
		return 0, false
	}
	var e int64
	for _, c := range s {
		if e < 1<<40 {
			e = e*10 + int64(c-'0')
		}
	}
	if neg {
		e = -e
	}
	return e, true
}

// splitMantissa splits "int[.frac][<exp>...]" at the exponent marker and
// returns the mantissa digits (point removed), the count of fraction digits
// and the exponent text (nil if none). ok is false unless the mantissa has
// at least one digit and only the exponent follows it.
func splitMantissa(s []byte, hex bool, marker byte) (digits []byte, frac int, exp []byte, ok bool) {
	n := scanDigits(s, hex)
	digits = append(digits, s[:n]...)
	s = s[n:]
	if len(s) > 0 && s[0] == '.' {
		m := scanDigits(s[1:], hex)
		digits = append(digits, s[1:1+m]...)
		frac = m
		s = s[1+m:]
	}
	if len(digits) == 0 {
		return nil, 0, nil, false
	}
	if len(s) > 0 {
		if s[0]|0x20 != marker {
			return nil, 0, nil, false
		}
		exp = s[1:]
		if exp == nil {
			exp = []byte{}
		}
	}
	return digits, frac, exp, true
}

// parseDecLD parses an unsigned decimal mantissa with optional exponent.
// A nil result with ok means overflow.
func parseDecLD(s []byte) (*big.Float, bool) {
	digits, frac, exp, ok := splitMantissa(s, false, 'e')
	if !ok {
		return nil, false
	}
	var e10 int64
	if exp != nil {
		if e10, ok = scanExponent(exp); !ok {
			// strtold stops before a bare 'e'; the rest is left over.
			return nil, false
		}
	}
	e10 -= int64(frac)
	// Strip leading zeros so the magnitude estimate below is right.
	k := 0
	for k < len(digits) && digits[k] == '0' {
		k++
	}
	digits = digits[k:]
	if len(digits) == 0 {
		return new(big.Float).SetPrec(ldPrec), true
	}
	// The value lies in [10^mag, 10^(mag+1)). The long double range is about
	// 3.6e-4951 .. 1.19e4932; decide far-out values without big arithmetic.
	mag := e10 + int64(len(digits)) - 1
	if mag > 4940 {
		return nil, true
	}
	if mag < -4960 {
		return nil, false // rounds to zero: ERANGE with a zero value
	}
	m, _ := new(big.Int).SetString(string(digits), 10)
	x := new(big.Float).SetPrec(ldPrec)
	if e10 >= 0 {
		m.Mul(m, new(big.Int).Exp(big.NewInt(10), big.NewInt(e10), nil))
		x.SetInt(m)
	} else {
		num := new(big.Float).SetInt(m) // exact: precision grows to fit
		den := new(big.Float).SetInt(new(big.Int).Exp(big.NewInt(10), big.NewInt(-e10), nil))
		x.Quo(num, den) // one correctly rounded division
	}
	return ldRange(x, x.Acc())
}

// parseHexLD parses an unsigned hexadecimal mantissa (after "0x") with an
// optional binary exponent.
func parseHexLD(s []byte) (*big.Float, bool) {
	digits, frac, exp, ok := splitMantissa(s, true, 'p')
	if !ok {
		return nil, false // "0x" without digits: strtold parses just "0"
	}
	var e2 int64
	if exp != nil {
		if e2, ok = scanExponent(exp); !ok {
			return nil, false
		}
	}
	e2 -= 4 * int64(frac)
	m, _ := new(big.Int).SetString(string(digits), 16)
	if m.Sign() == 0 {
		return new(big.Float).SetPrec(ldPrec), true
	}
	mag := e2 + int64(m.BitLen()) // value in [2^(mag-1), 2^mag)
	if mag > ldMaxExp+8 {
		return nil, true
	}
	if mag < ldHalfMinExp-8 {
		return nil, false
	}
	x := new(big.Float).SetPrec(ldPrec).SetInt(m)
	acc := x.Acc()
	x.SetMantExp(x, int(e2)) // exact scaling; the rounding was in SetInt
	return ldRange(x, acc)
}

// ldRange applies the long double exponent range to x, a value rounded to
// 64 bits whose rounding went in direction acc: overflow gives (nil, true),
// underflow to zero (nil, false). Values in the subnormal range keep 64 bits
// of precision; they print as "0" with 17 decimals and cannot reach the
// overflow bound, so the bits a true subnormal loses are never observable.
func ldRange(x *big.Float, acc big.Accuracy) (*big.Float, bool) {
	exp := x.MantExp(nil) // |x| in [2^(exp-1), 2^exp)
	if exp > ldMaxExp {
		return nil, true
	}
	// strtold rounds |v| <= 2^-16446 to zero. Rounding is monotonic and the
	// bound is representable, so only x equal to the bound needs the
	// direction of rounding to tell which side the exact value was on.
	if exp <= ldHalfMinExp {
		return nil, false
	}
	if exp == ldHalfMinExp+1 {
		bound := new(big.Float).SetMantExp(big.NewFloat(0.5), ldHalfMinExp+1)
		if new(big.Float).Abs(x).Cmp(bound) == 0 && acc != big.Below {
			return nil, false
		}
	}
	return x, true
}

// addLongDouble returns x+y rounded to 64 bits, or nil if the sum is
// infinite in long double.
func addLongDouble(x, y *big.Float) *big.Float {
	z := new(big.Float).SetPrec(ldPrec).Add(x, y)
	if z.Sign() != 0 && z.MantExp(nil) > ldMaxExp {
		return nil
	}
	return z
}

// formatLongDouble prints x as Redis's ld2string in LD_STR_HUMAN mode:
// "%.17Lf", then trailing zeros and a trailing '.' removed, and "-0" as "0".
func formatLongDouble(x *big.Float) []byte {
	b := x.Append(nil, 'f', 17)
	for i := len(b) - 1; i > 0 && b[i] == '0'; i-- {
		b = b[:i]
	}
	if b[len(b)-1] == '.' {
		b = b[:len(b)-1]
	}
	if len(b) == 2 && b[0] == '-' && b[1] == '0' {
		b = b[:1]
		b[0] = '0'
	}
	return b
}

// validFloatIncr reports whether s is a float increment a local
// INCRBYFLOAT/HINCRBYFLOAT could have shipped: a finite long double.
func validFloatIncr(s []byte) bool {
	_, st := parseLongDouble(s)
	return st == ldOK
}

// validEffect is decodeEffect's hook: it rejects float increments whose
// text is not a valid Redis float, so a hostile peer cannot plant garbage
// that every fold would then have to skip.
func validEffect(f *Effect) bool {
	if (f.Kind == EffStrIncr || f.Kind == EffHashIncr) && f.Flags&FlagFloat != 0 {
		return validFloatIncr(f.Value)
	}
	return true
}

// parseInt64 parses s with Redis's string2ll rules: optional '-', no '+',
// no leading zeros or spaces, at most 20 characters, within int64.
func parseInt64(s []byte) (int64, bool) {
	if len(s) == 0 || len(s) >= 21 {
		return 0, false
	}
	if len(s) == 1 && s[0] == '0' {
		return 0, true
	}
	neg := false
	p := s
	if p[0] == '-' {
		neg = true
		p = p[1:]
		if len(p) == 0 {
			return 0, false
		}
	}
	if p[0] < '1' || p[0] > '9' {
		return 0, false
	}
	var v uint64
	for _, c := range p {
		if c < '0' || c > '9' {
			return 0, false
		}
		if v > (1<<64-1)/10 {
			return 0, false
		}
		v *= 10
		if v > 1<<64-1-uint64(c-'0') {
			return 0, false
		}
		v += uint64(c - '0')
	}
	if neg {
		if v > 1<<63 {
			return 0, false
		}
		return -int64(v), true // -(1<<63) wraps to math.MinInt64, as intended
	}
	if v > 1<<63-1 {
		return 0, false
	}
	return int64(v), true
}

// canonicalInt reports whether s is an integer in string2ll's canonical
// form of any length (up to ldMaxChars): what a counter fold keeps exact.
func canonicalInt(s []byte) bool {
	if len(s) == 0 || len(s) >= ldMaxChars {
		return false
	}
	if len(s) == 1 && s[0] == '0' {
		return true
	}
	p := s
	if p[0] == '-' {
		p = p[1:]
	}
	if len(p) == 0 || p[0] < '1' || p[0] > '9' {
		return false
	}
	for _, c := range p[1:] {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}
