package crdt

import (
	"math"
	"math/big"
)

// Timeout errors, with Redis 7.0's texts.
var (
	ErrTimeoutNotFloat = Err("ERR timeout is not a float or out of range")
	ErrTimeoutNegative = Err("ERR timeout is negative")
)

// ParseTimeout parses a blocking command's timeout in seconds as Redis
// 7.0's getTimeoutFromObjectOrReply does: strtold on the whole argument
// (so "0x10", "1e3" and "inf" are numbers), times 1000 and rounded up to
// whole milliseconds in long double, then converted to a 64-bit integer
// the way x86-64 does, where anything out of range becomes the most
// negative integer. That is why "inf" and "1e400" answer "timeout is
// negative" rather than blocking for ever, and why a timeout between -1 ms
// and 0 blocks for ever. ms is 0 for no timeout.
func ParseTimeout(arg []byte) (ms int64, errReply Reply, ok bool) {
	x, st := parseLongDouble(arg)
	switch st {
	case ldBad:
		return 0, ErrTimeoutNotFloat, false
	case ldInf:
		return 0, ErrTimeoutNegative, false
	}
	p := new(big.Float).SetPrec(ldPrec).Mul(x, new(big.Float).SetPrec(ldPrec).SetInt64(1000))
	// ceill: truncate towards zero, then up by one for positive fractions.
	t, acc := p.Int(nil)
	if acc == big.Below { // p > t: a positive value with a fraction
		t.Add(t, big.NewInt(1))
	}
	if !t.IsInt64() {
		return 0, ErrTimeoutNegative, false // cvttsd2si's "integer indefinite", math.MinInt64
	}
	ms = t.Int64()
	if ms < 0 {
		return 0, ErrTimeoutNegative, false
	}
	return ms, Reply{}, true
}

// maxTimeoutMs keeps deadlines representable: Redis adds the timeout to
// the current time in a signed 64-bit integer, and a sum that wraps never
// fires, so such timeouts block for ever here too.
const maxTimeoutMs = math.MaxInt64 / 2

// TimeoutForever reports whether a parsed timeout never fires.
func TimeoutForever(ms int64) bool { return ms == 0 || ms > maxTimeoutMs }
