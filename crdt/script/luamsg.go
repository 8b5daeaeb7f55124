package script

import "regexp"

// Error messages the VM raises itself are gopher-lua's; where its wording
// differs from Lua 5.1's and carries enough to say it Lua's way, luaMessage
// rewrites it, so scripts and clients matching on Redis's texts keep
// working. (Lua also names the variable, "local 't'"; gopher-lua does not
// know it, so those messages stay without the name.)
var (
	reArith   = regexp.MustCompile(`cannot perform (\w+) operation between (\w+) and (\w+)`)
	reUnary   = regexp.MustCompile(`cannot perform unm operation (?:on|for|of) (\w+)`)
	reIndex   = regexp.MustCompile(`attempt to index a non-table object\((\w+)\) with key '[^']*'`)
	reCompare = regexp.MustCompile(`attempt to compare (\w+) with (\w+)`)
	reBadArg  = regexp.MustCompile(`bad argument #(\d+) to ([A-Za-z_][\w.]*) \(`)
	reConcatT = regexp.MustCompile(`in table for concat$`)
)

func luaMessage(s string) string {
	s = reArith.ReplaceAllStringFunc(s, func(m string) string {
		p := reArith.FindStringSubmatch(m)
		op, a, b := p[1], p[2], p[3]
		bad := a
		if op == "concat" {
			if a == "string" || a == "number" {
				bad = b
			}
			return "attempt to concatenate a " + bad + " value"
		}
		if a == "number" || a == "string" {
			bad = b
		}
		return "attempt to perform arithmetic on a " + bad + " value"
	})
	s = reUnary.ReplaceAllString(s, "attempt to perform arithmetic on a $1 value")
	s = reIndex.ReplaceAllString(s, "attempt to index a $1 value")
	s = reCompare.ReplaceAllStringFunc(s, func(m string) string {
		p := reCompare.FindStringSubmatch(m)
		if p[1] == p[2] {
			return "attempt to compare two " + p[1] + " values"
		}
		return m
	})
	s = reBadArg.ReplaceAllString(s, "bad argument #$1 to '$2' (")
	return reConcatT.ReplaceAllString(s, "in table for 'concat'")
}
