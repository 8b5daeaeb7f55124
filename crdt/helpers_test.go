package crdt

import (
	"fmt"
	"testing"
)

// testOrigin is the origin of keyspaces made by newTestKS.
var testOrigin = Origin{Region: 1, Incarnation: 1}

// testClock hands out strictly increasing stamps starting at a fixed time
// (2026-01-01T00:00:00Z), so tests never read the wall clock.
type testClock struct{ ms int64 }

const testEpochMs = 1767225600000

func newTestKS(t testing.TB) (*Keyspace, *testClock) {
	t.Helper()
	return NewKeyspace(testOrigin, Options{Solo: true}), &testClock{ms: testEpochMs}
}

func (c *testClock) stamp() Stamp {
	c.ms++
	return Stamp{Time: HLCFromMillis(c.ms), Seed: uint64(c.ms)}
}

// do runs one command through Apply (writes) or Read (reads) as the server
// would, and returns its reply.
func do(t testing.TB, ks *Keyspace, clk *testClock, args ...string) Reply {
	t.Helper()
	a := make([][]byte, len(args))
	for i, s := range args {
		a[i] = []byte(s)
	}
	spec := Lookup(a[0])
	if spec != nil && !spec.Write {
		return ks.Read(0, clk.ms, uint64(clk.ms), a)
	}
	r, _ := ks.Apply(clk.stamp(), []Command{{DB: 0, Args: a}})
	return r[0]
}

// show renders a reply compactly for assertions: +OK, -ERR ..., :5,
// "bulk", nil, [a b], ...
func show(r Reply) string {
	switch r.Kind {
	case KindNil, KindNilArray:
		return "nil"
	case KindStatus:
		return "+" + string(r.Str)
	case KindError:
		return "-" + string(r.Str)
	case KindInt, KindBool:
		return fmt.Sprintf(":%d", r.Int)
	case KindBulk, KindDouble:
		return fmt.Sprintf("%q", r.Str)
	default:
		s := "["
		for i, e := range r.Elems {
			if i > 0 {
				s += " "
			}
			s += show(e)
		}
		return s + "]"
	}
}

// expect runs a command and fails unless show(reply) == want.
func expect(t testing.TB, ks *Keyspace, clk *testClock, want string, args ...string) {
	t.Helper()
	if got := show(do(t, ks, clk, args...)); got != want {
		t.Errorf("%v: got %s, want %s", args, got, want)
	}
}
