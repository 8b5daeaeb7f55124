package crdt

import (
	"fmt"
	"math/big"
	"strconv"
	"strings"
	"testing"
)

// ldGen makes number texts of every shape strtold takes (and a few it
// refuses), biased towards the ones where long double rounding shows.
type ldGen struct{ r *Rand }

func (g ldGen) digits(n int) string {
	var b strings.Builder
	for i := 0; i < n; i++ {
		b.WriteByte(byte('0' + g.r.Intn(10)))
	}
	return b.String()
}

func (g ldGen) number() string {
	sign := ""
	switch g.r.Intn(4) {
	case 0:
		sign = "-"
	case 1:
		if g.r.Intn(4) == 0 {
			sign = "+"
		}
	}
	switch g.r.Intn(12) {
	case 0:
		return sign + g.digits(1+g.r.Intn(19)) // integer
	case 1:
		// hex float
		h := "0123456789abcdef"
		var b strings.Builder
		b.WriteString("0x")
		for i, n := 0, 1+g.r.Intn(18); i < n; i++ {
			b.WriteByte(h[g.r.Intn(16)])
		}
		if g.r.Intn(2) == 0 {
			b.WriteByte('.')
			b.WriteByte(h[g.r.Intn(16)])
		}
		if g.r.Intn(2) == 0 {
			fmt.Fprintf(&b, "p%d", g.r.Intn(80)-40)
		}
		return sign + b.String()
	case 2:
		return sign + "0." + strings.Repeat("0", g.r.Intn(3)) + g.digits(1+g.r.Intn(3)) // 0.1-like
	case 3:
		exp := []int{300, 308, 1000, 4900, -300, -4930}[g.r.Intn(6)] + g.r.Intn(10)
		return fmt.Sprintf("%s%s.%se%d", sign, g.digits(1), g.digits(g.r.Intn(20)), exp)
	case 4:
		return []string{"inf", "-inf", "nan", "abc", "", "1e", "0x", ".", "1.5.5", " 1"}[g.r.Intn(10)]
	default:
		s := g.digits(1 + g.r.Intn(6))
		if g.r.Intn(3) > 0 {
			s += "." + g.digits(1+g.r.Intn(20))
		}
		if g.r.Intn(4) == 0 {
			s += fmt.Sprintf("e%d", g.r.Intn(40)-20)
		}
		return sign + s
	}
}

// ldChain is one session: a start value and the commands applied to it.
func ldChain(seed uint64) [][]string {
	g := ldGen{NewRand(seed)}
	cmds := [][]string{{"SET", "k", g.number()}}
	if g.r.Intn(4) == 0 {
		cmds[0] = []string{"DEL", "k"}
	}
	for i, n := 0, 5+g.r.Intn(20); i < n; i++ {
		switch g.r.Intn(10) {
		case 0:
			cmds = append(cmds, []string{"INCRBY", "k", fmt.Sprint(g.r.Intn(2001) - 1000)})
		case 1:
			cmds = append(cmds, []string{"HINCRBYFLOAT", "h", "f", g.number()})
		default:
			cmds = append(cmds, []string{"INCRBYFLOAT", "k", g.number()})
		}
	}
	cmds = append(cmds, []string{"GET", "k"}, []string{"HGET", "h", "f"})
	return cmds
}

// TestLongDoubleChainsRedis runs a few hundred random increment chains on a
// real redis-server and on a keyspace and requires identical replies.
func TestLongDoubleChainsRedis(t *testing.T) {
	ref := shStartRedis(t)
	for seed := uint64(1); seed <= 400; seed++ {
		ks, clk := newTestKS(t)
		ref.do(t, "FLUSHALL")
		for _, cmd := range ldChain(seed) {
			want := ref.do(t, cmd...)
			var got string
			if cmd[0] == "DEL" {
				continue // not a string command; both start empty anyway
			}
			got = show(do(t, ks, clk, cmd...))
			if got != want {
				t.Errorf("seed %d: %q: got %s, redis %s", seed, cmd, got, want)
			}
		}
	}
}

// ldGolden holds SET start; INCRBYFLOAT k incr replies captured from
// redis-server 7.0.15 on x86-64: rounding ties at the 17th decimal, carries
// past 2^64, the long double range limits, hex input.
var ldGolden = []struct{ start, incr, want string }{
	{"0", "0.1", `"0.1"`},
	{"0.1", "0.2", `"0.3"`},
	{"0.3", "0.1", `"0.4"`},
	{"10.5", "0.1", `"10.6"`},
	{"1", "1e300", `"1000000000000000000008997324079559193870523944273290747938260082321265646596180935755849152083750497190350372508614274835903592556184672983913096260520748646287327135641843653294084255107606016789726652932370030551382947620994540294772781889620606179267611627097410650567187386105690089424915104006144"`},
	{"3.0e3", "1", `"3001"`},
	{"5", "5.0e3", `"5005"`},
	{"5", "0x10", `"21"`},
	{"1", "0x1.fffffffffffffffep0", `"3"`},
	{"1", "0x1.ffffffffffffffffp0", `"3"`},
	{"0", "1e-17", `"0.00000000000000001"`},
	{"0", "5e-18", `"0"`},
	{"0", "4e-18", `"0"`},
	{"0", "-5e-18", `"0"`},
	{"0", "0x1p-18", `"0.00000381469726562"`},
	{"0", "0x3p-18", `"0.00001144409179688"`},
	{"0", "0x1p-57", `"0.00000000000000001"`},
	{"1", "1e19", `"10000000000000000001"`},
	{"1", "18446744073709551615", `"18446744073709551616"`},
	{"1", "18446744073709551616", `"18446744073709551616"`},
	{"1", "36893488147419103231", `"36893488147419103232"`},
	{"9223372036854775807", "1", `"9223372036854775808"`},
	{"-9223372036854775808", "-1", `"-9223372036854775809"`},
	{"12345678901234567890", "1", `"12345678901234567891"`},
	{"1.7976931348623157e308", "1.7976931348623157e308", `"359538626972463139991842093548208868096772893888658356970628841530353257046248792709403737216774171128857586838851041378617416726902272110715794556052955234146997955372576789671236326588091188869859074894581254961338834769297758245552436667197907705664206565009503223382416235440319971852753604933726679072768"`},
	{"1e4932", "1e4932", `-ERR increment would produce NaN or Infinity`},
	{"-1.18973149535723176502e4932", "-1e4913", `-ERR increment would produce NaN or Infinity`},
	{"0.1", "-0.1", `"0"`},
	{"-0.1", "0.1", `"0"`},
	{"3.14159", "2.71828", `"5.85987"`},
	{"1e-10", "1e-10", `"0.0000000002"`},
	{"123456789.123456789", "987654321.987654321", `"1111111111.11111110995989293"`},
	{"0x1p64", "-1", `"18446744073709551615"`},
	{"0x1p63", "0.5", `"9223372036854775808"`},
	{"2", "-4.5", `"-2.5"`},
	{"100", "-0.0000000000000000001", `"100"`},
	{"1e20", "1", `"100000000000000000000"`},
	{"1e21", "1", `"1000000000000000000000"`},
	{"0", "12345678.12345678", `"12345678.12345678000019689"`},
	{"1.5", "1.5", `"3"`},
	{"0", "1e-4940", `"0"`},
	{"0", "0x1.0000001p-16446", `"0"`},
}

func TestLongDoubleGolden(t *testing.T) {
	for _, g := range ldGolden {
		ks, clk := newTestKS(t)
		expect(t, ks, clk, "+OK", "SET", "k", g.start)
		expect(t, ks, clk, g.want, "INCRBYFLOAT", "k", g.incr)
	}
}

// TestLongDoubleGoldenChains checks chains where each step re-parses the
// 17-decimal text the previous one stored, as Redis does.
func TestLongDoubleGoldenChains(t *testing.T) {
	chains := []struct {
		start, incr string
		want        []string
	}{
		{"", "0.1", strings.Fields("0.1 0.2 0.3 0.4 0.5 0.6 0.7 0.8 0.9 1 1.1 1.2 1.3 1.4 1.5 1.6 1.7 1.8 1.9 2 2.1 2.2 2.3 2.4 2.5 2.6 2.7 2.8 2.9 3")},
		{"1", "-0.3333333333333333333", strings.Fields("0.66666666666666667 0.33333333333333334 0.00000000000000001 -0.33333333333333332 -0.66666666666666665 -0.99999999999999998 -1.33333333333333331 -1.66666666666666664 -1.99999999999999997 -2.3333333333333333 -2.66666666666666663 -2.99999999999999996 -3.33333333333333329 -3.66666666666666662 -3.99999999999999995 -4.33333333333333328 -4.66666666666666661 -4.99999999999999994 -5.33333333333333327 -5.6666666666666666")},
	}
	for _, ch := range chains {
		ks, clk := newTestKS(t)
		if ch.start != "" {
			expect(t, ks, clk, "+OK", "SET", "k", ch.start)
		}
		for _, w := range ch.want {
			expect(t, ks, clk, strconv.Quote(w), "INCRBYFLOAT", "k", ch.incr)
		}
		if ch.start != "" {
			expect(t, ks, clk, ":1", "HSET", "h", "f", ch.start)
		}
		for _, w := range ch.want {
			expect(t, ks, clk, strconv.Quote(w), "HINCRBYFLOAT", "h", "f", ch.incr)
		}
	}
}

// TestLongDoubleEdgesRedis compares the edges of the long double range
// with a real redis-server: the overflow threshold (LDBL_MAX plus half an
// ulp, where a tie rounds up to infinity) and the underflow threshold (half
// the smallest subnormal, where a tie rounds down to zero).
func TestLongDoubleEdgesRedis(t *testing.T) {
	ref := shStartRedis(t)
	// (2^64 - 1/2) * 2^16320, written out exactly.
	th := new(big.Int).Lsh(new(big.Int).Sub(new(big.Int).Lsh(big.NewInt(1), 65), big.NewInt(1)), 16319)
	one := big.NewInt(1)
	vals := []string{
		new(big.Int).Sub(th, one).String(), th.String(), new(big.Int).Add(th, one).String(),
		"-" + new(big.Int).Sub(th, one).String(), "-" + th.String(),
		"0x1.fffffffffffffffep16383", "0x1.ffffffffffffffffp16383", "0x1.fffffffffffffffe8p16383",
		"0x1.fffffffffffffffe7ffp16383", "0x1p16384", "0x0.8p16385",
		"0x1p-16446", "0x1.00000000000000001p-16446", "0x1p-16445", "0x0.8p-16445", "0x1.8p-16446",
		"0x3p-16447", "0x1p-16447", "-0x1p-16446", "-0x1.00000000000000001p-16446",
		"1e-4951", "1.8e-4951", "1.9e-4951", "1e-4950", "3.6e-4951", "0e99999", "0.0000e-99999",
		"1" + strings.Repeat("0", 5110), "1" + strings.Repeat("0", 5119), "0." + strings.Repeat("0", 5117) + "1",
	}
	ks, clk := newTestKS(t)
	ref.do(t, "FLUSHALL")
	for _, v := range vals {
		for _, cmd := range [][]string{
			{"SET", "k", "0"}, {"INCRBYFLOAT", "k", v},
			{"SET", "k", v}, {"INCRBYFLOAT", "k", "0"},
			{"SET", "k", "-1e4932"}, {"INCRBYFLOAT", "k", v},
		} {
			want := ref.do(t, cmd...)
			if got := show(do(t, ks, clk, cmd...)); got != want {
				t.Errorf("%.60q: got %.80s, redis %.80s", cmd, got, want)
			}
		}
	}
}
