package simulations

import (
	"fmt"
	"strconv"
)

// Workloads: the write mixes users build on Concord, each on key classes
// the reference model checks (model.go). A workload's writes are random
// but drawn only from the run's seeded source.

// Workloads lists the workload names ("all" draws from every one).
var Workloads = []string{"all", "mixed", "carts", "leaderboard", "counters", "followers", "sessions", "comments", "jobs", "events", "visitors"}

// genOne returns one write command for region g. multi is set for a
// command of a unit of several, where the model cannot read back a tag:
// then only commutative classes (counters, sums, set unions) are drawn.
func (m *simModel) genOne(s *sim, g *simRegion, multi bool) []string {
	w := m.workload
	if w == "" || w == "all" {
		w = Workloads[1+s.rng.IntN(len(Workloads)-1)]
	}
	r := s.rng
	k := strconv.Itoa(r.IntN(s.cfg.keys))
	m.n++
	uniq := fmt.Sprintf("%s-%d", g.name, m.n)
	switch w {
	case "carts":
		// A cart is a hash of item -> quantity; a coupon code is the
		// last one applied.
		if multi || r.IntN(5) > 0 {
			qty := []string{"1", "1", "2", "3", "-1"}[r.IntN(5)]
			return []string{"HINCRBY", "hc:cart" + k, "sku" + strconv.Itoa(r.IntN(6)), qty}
		}
		return []string{"HSET", "hw:cart" + k, "coupon", "C" + uniq}
	case "leaderboard":
		if multi || r.IntN(4) > 0 {
			return []string{"ZINCRBY", "zi:lb" + k, strconv.Itoa(1 + r.IntN(50)), "player" + strconv.Itoa(r.IntN(10))}
		}
		return []string{"ZADD", "zw:best" + k, strconv.Itoa(r.IntN(10_000)), "player" + strconv.Itoa(r.IntN(10))}
	case "counters":
		// Page views, and a rate limiter's INCR + EXPIRE window.
		if r.IntN(2) == 0 {
			return []string{"INCRBY", "c:views" + k, strconv.Itoa(1 + r.IntN(5))}
		}
		if r.IntN(3) == 0 {
			return []string{"EXPIRE", "c:rl" + k, "864000"}
		}
		return []string{"INCRBY", "c:rl" + k, "1"}
	case "followers":
		if multi {
			return []string{"INCRBY", "c:followers-total", "1"}
		}
		who := "user" + strconv.Itoa(r.IntN(8))
		if r.IntN(3) == 0 {
			return []string{"SREM", "fl:followers" + k, who}
		}
		return []string{"SADD", "fl:followers" + k, who}
	case "sessions":
		if multi {
			return []string{"INCRBY", "c:logins", "1"}
		}
		return []string{"SET", "w:sess" + k, "token-" + uniq, "EX", "864000"}
	case "jobs":
		// A job queue: producers RPUSH unique jobs, workers LPOP them.
		if multi || r.IntN(2) == 0 {
			return []string{"RPUSH", "q:jobs" + k, "job-" + uniq}
		}
		return []string{"LPOP", "q:jobs" + k}
	case "events":
		// An event pipeline: producers XADD with auto IDs.
		if multi {
			return []string{"INCRBY", "c:events", "1"}
		}
		return []string{"XADD", "x:events" + k, "*", "who", g.name, "n", uniq}
	case "visitors":
		// Unique-visitor counts.
		return []string{"PFADD", "p:visitors" + k, "user" + strconv.Itoa(r.IntN(400))}
	case "comments":
		// The live-stream pattern: a sorted index of comment ids by time
		// and a hash per comment.
		if multi {
			return []string{"HINCRBY", "hc:likes" + k, "c" + strconv.Itoa(r.IntN(6)), "1"}
		}
		id := "c" + strconv.Itoa(r.IntN(6))
		if r.IntN(2) == 0 {
			return []string{"ZADD", "zw:comments" + k, strconv.FormatInt(g.clock(), 10), id}
		}
		return []string{"HSET", "hw:comment" + k + ":" + id, "body", "text " + uniq}
	}
	return m.genMixed(s, g, multi)
}
