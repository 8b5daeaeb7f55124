package crdt

// Glob reports whether s matches the Redis glob pattern (KEYS, SCAN MATCH,
// PSUBSCRIBE): '*' any run, '?' one byte, '[...]' a class with ranges and
// '^' negation, '\' escaping the next byte. Redis's own matcher recurses on
// '*' and can take exponential time on patterns like "a*a*a*a*b"; this one
// keeps only the latest '*' as a backtrack point, which is enough for glob
// semantics and bounds the work by len(pattern)*len(s).
func Glob(pattern, s []byte) bool {
	p, i := 0, 0
	starP, starI := -1, 0
	for i < len(s) {
		if p < len(pattern) {
			switch pattern[p] {
			case '*':
				for p < len(pattern) && pattern[p] == '*' {
					p++
				}
				if p == len(pattern) {
					return true
				}
				starP, starI = p, i
				continue
			default:
				if n, ok := globOne(pattern[p:], s[i]); ok {
					p += n
					i++
					continue
				}
			}
		}
		if starP < 0 {
			return false
		}
		starI++
		p, i = starP, starI
	}
	for p < len(pattern) && pattern[p] == '*' {
		p++
	}
	return p == len(pattern)
}

// globOne matches one byte c against the pattern element at the start of
// pat ('?', a class, an escape or a literal) and returns the element's
// length.
func globOne(pat []byte, c byte) (int, bool) {
	switch pat[0] {
	case '?':
		return 1, true
	case '\\':
		if len(pat) >= 2 {
			return 2, pat[1] == c
		}
		return 1, c == '\\'
	case '[':
		return globClass(pat, c)
	}
	return 1, pat[0] == c
}

// globClass matches a '[...]' class the way Redis's stringmatchlen does:
// an unterminated class extends to the end of the pattern, ranges may be
// given in either order, and '\' escapes inside the class.
func globClass(pat []byte, c byte) (int, bool) {
	j := 1
	not := false
	if j < len(pat) && pat[j] == '^' {
		not = true
		j++
	}
	match := false
	for j < len(pat) && pat[j] != ']' {
		switch {
		case pat[j] == '\\' && j+1 < len(pat):
			j++
			if pat[j] == c {
				match = true
			}
			j++
		case j+2 < len(pat) && pat[j+1] == '-':
			lo, hi := pat[j], pat[j+2]
			if lo > hi {
				lo, hi = hi, lo
			}
			if c >= lo && c <= hi {
				match = true
			}
			j += 3
		default:
			if pat[j] == c {
				match = true
			}
			j++
		}
	}
	if j < len(pat) {
		j++ // closing ']'
	} else {
		// Redis treats a missing ']' as the end of the pattern; the last
		// byte it looked at was the class's final byte.
	}
	if not {
		match = !match
	}
	return j, match
}
