package crdt

import (
	"strings"
	"testing"
)

func TestGlob(t *testing.T) {
	cases := []struct {
		pat, s string
		want   bool
	}{
		{"*", "", true},
		{"*", "abc", true},
		{"a*", "abc", true},
		{"a*c", "abc", true},
		{"a*c", "abd", false},
		{"h?llo", "hello", true},
		{"h?llo", "hllo", false},
		{"h[ae]llo", "hallo", true},
		{"h[ae]llo", "hillo", false},
		{"h[^e]llo", "hallo", true},
		{"h[^e]llo", "hello", false},
		{"h[a-b]llo", "hbllo", true},
		{"h[b-a]llo", "hbllo", true},
		{`h\*llo`, "h*llo", true},
		{`h\*llo`, "hallo", false},
		{"*a*b", "xxaxxb", true},
		{"*a*b", "xxaxxbc", false},
		{"k:*", "k:", true},
		{"", "", true},
		{"", "a", false},
		{"a**", "a", true},
		{"[abc", "b", true},
	}
	for _, c := range cases {
		if got := Glob([]byte(c.pat), []byte(c.s)); got != c.want {
			t.Errorf("Glob(%q, %q) = %v, want %v", c.pat, c.s, got, c.want)
		}
	}
}

// A pattern that is exponential for a naive recursive matcher must still
// match in linear-ish work; this is a correctness test of the answer, and
// would time out the test binary if the matcher were exponential.
func TestGlobPathological(t *testing.T) {
	pat := strings.Repeat("a*", 40) + "b"
	s := strings.Repeat("a", 100)
	if Glob([]byte(pat), []byte(s)) {
		t.Fatal("unexpected match")
	}
}
