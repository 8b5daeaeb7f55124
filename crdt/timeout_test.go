package crdt

import (
	"slices"
	"testing"
)

// TestParseTimeout: outcomes measured against redis-server 7.0.15
// (BZPOPMIN k <timeout>): "block" blocked for ever or for the ms given.
func TestParseTimeout(t *testing.T) {
	const neg, bad = -1, -2
	for _, tc := range []struct {
		in   string
		want int64 // ms, or neg/bad
	}{
		{"0", 0}, {"-0", 0}, {"+1", 1000}, {"0.01", 10}, {"1.5e-3", 2}, {"0.0001", 1},
		{"1e-10", 1}, {"-0.0000001", 0}, {"-0.0004", 0}, {"-1e-300", 0}, {"0x10", 16000},
		{"9.2e15", 9200000000000000000}, {"9223372036854775", 9223372036854775000},
		{"-1", neg}, {"-0.0015", neg}, {"inf", neg}, {"-inf", neg}, {"1e400", neg},
		{"9223372036854775807", neg}, {"9223372036854775808", neg}, {"1e18", neg}, {"9.3e15", neg},
		{"abc", bad}, {"nan", bad}, {" 1", bad}, {"1 ", bad}, {"", bad}, {"0x", bad}, {"1e-400", 1},
	} {
		ms, r, ok := ParseTimeout([]byte(tc.in))
		switch {
		case tc.want == neg && (ok || string(r.Str) != "ERR timeout is negative"),
			tc.want == bad && (ok || string(r.Str) != "ERR timeout is not a float or out of range"),
			tc.want >= 0 && (!ok || ms != tc.want):
			t.Errorf("ParseTimeout(%q) = %d, %q, %v; want %d", tc.in, ms, r.Str, ok, tc.want)
		}
	}
}

// TestWriteHook: the hook hears of keys that local and merged writes gave
// content to (not of removals), and of a join as "any key".
func TestWriteHook(t *testing.T) {
	a := NewKeyspace(Origin{Region: 1, Incarnation: 1}, Options{})
	b := NewKeyspace(Origin{Region: 2, Incarnation: 1}, Options{})
	type note struct {
		db  int
		key string
	}
	var heard []note
	hook := func(db int, key string) { heard = append(heard, note{db, key}) }
	a.SetWriteHook(hook)
	b.SetWriteHook(hook)
	do := func(ks *Keyspace, db int, args ...string) *Batch {
		_, batch := ks.Apply(Stamp{Time: ks.LastTime() + 1}, []Command{{DB: db, Args: strArgs(args)}})
		return batch
	}
	b1 := do(a, 2, "ZADD", "z", "1", "m")
	if !slices.Equal(heard, []note{{2, "z"}}) {
		t.Fatalf("local ZADD: heard %v", heard)
	}
	heard = nil
	b2 := do(a, 2, "ZPOPMIN", "z")
	b3 := do(a, 0, "SET", "s", "v")
	if !slices.Equal(heard, []note{{0, "s"}}) {
		t.Fatalf("ZPOPMIN then SET: heard %v, want only the SET", heard)
	}
	heard = nil
	for _, batch := range []*Batch{b1, b2, b3} {
		if err := b.Merge(batch); err != nil {
			t.Fatal(err)
		}
	}
	if !slices.Equal(heard, []note{{2, "z"}, {0, "s"}}) {
		t.Fatalf("merge: heard %v", heard)
	}
	heard = nil
	c := NewKeyspace(Origin{Region: 3, Incarnation: 1}, Options{})
	c.SetWriteHook(hook)
	c.Join(a)
	if !slices.Equal(heard, []note{{-1, ""}}) {
		t.Fatalf("join: heard %v", heard)
	}
}
