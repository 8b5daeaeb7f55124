// Command story runs the scripted multi-region story of the docker-compose
// demo (docs/demo.md) against the deployment deploy/docker/docker-compose.yml
// starts: a write crosses regions, region C is cut off, every region keeps
// writing, region A's leader is killed, the partition heals, and the story
// checks that all regions converge with no acknowledged write lost.
//
// It talks RESP to the nodes' published ports on 127.0.0.1 and drives the
// faults with the docker CLI (the nodes are FROM scratch: no shell inside).
// Every wait has a deadline; it exits 1 if the story does not end converged.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"math/rand"
	"os"
	"os/exec"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

type node struct {
	name    string // compose service and node id: a1
	region  string // region-a
	port    int    // published RESP port on 127.0.0.1
	interIP string
	c       *redis.Client
	dead    bool
}

func (n *node) container() string { return "concord-" + n.name }

const interNet = "concord-demo-inter"

var (
	short   = flag.Bool("short", os.Getenv("DEMO_SHORT") != "", "fewer writes and shorter deadlines (also DEMO_SHORT=1)")
	seed    = flag.Int64("seed", 1, "seed for the amounts written")
	regions = []string{"region-a", "region-b", "region-c"}
	nodes   []*node
	ctx     = context.Background()
	step    = 0
)

func main() {
	flag.Parse()
	for ri, r := range regions {
		for i := 1; i <= 3; i++ {
			l := string(rune('a' + ri))
			n := &node{
				name: l + strconv.Itoa(i), region: r, port: 26000 + (ri+1)*100 + i,
				interIP: fmt.Sprintf("10.231.0.%d%d", ri+1, i),
			}
			n.c = redis.NewClient(&redis.Options{
				Addr: "127.0.0.1:" + strconv.Itoa(n.port),
				// No client-side retries: a resent INCRBY could apply twice,
				// and the story must know exactly which writes were acknowledged.
				MaxRetries:      -1,
				DisableIdentity: true,
				DialTimeout:     2 * time.Second,
				ReadTimeout:     5 * time.Second,
				WriteTimeout:    5 * time.Second,
				PoolSize:        2,
			})
			nodes = append(nodes, n)
		}
	}
	if err := run(); err != nil {
		fmt.Printf("\nSTORY FAILED: %v\n", err)
		os.Exit(1)
	}
	fmt.Println("\nSTORY PASSED: every region converged and no acknowledged write was lost.")
}

func title(format string, a ...any) {
	step++
	fmt.Printf("\n== Step %d: %s\n", step, fmt.Sprintf(format, a...))
}

func say(format string, a ...any) { fmt.Printf("   "+format+"\n", a...) }

func wait(timeout time.Duration) time.Duration {
	if *short {
		return timeout * 2 / 3
	}
	return timeout
}

// poll calls f every 200ms until it returns nil or the deadline passes; the
// error then says what was still wrong.
func poll(what string, timeout time.Duration, f func() error) (time.Duration, error) {
	start := time.Now()
	deadline := start.Add(timeout)
	for {
		err := f()
		if err == nil {
			return time.Since(start), nil
		}
		if time.Now().After(deadline) {
			return time.Since(start), fmt.Errorf("%s: not done after %s: %v", what, timeout, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func docker(args ...string) error {
	say("$ docker %s", strings.Join(args, " "))
	out, err := exec.Command("docker", args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("docker %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

func info(n *node, section string) (map[string]string, error) {
	s, err := n.c.Info(ctx, section).Result()
	if err != nil {
		return nil, err
	}
	m := map[string]string{}
	for _, l := range strings.Split(s, "\r\n") {
		if k, v, ok := strings.Cut(l, ":"); ok {
			m[k] = v
		}
	}
	return m, nil
}

func regionNodes(r string) []*node {
	var ns []*node
	for _, n := range nodes {
		if n.region == r && !n.dead {
			ns = append(ns, n)
		}
	}
	return ns
}

// leader is the node of region r whose INFO replication says it leads.
func leader(r string) (*node, error) {
	for _, n := range regionNodes(r) {
		m, err := info(n, "replication")
		if err != nil {
			continue
		}
		if m["role"] == "master" && m["region_state"] == "leader" && m["region_ready"] == "1" {
			return n, nil
		}
	}
	return nil, fmt.Errorf("no ready leader in %s", r)
}

// allReady waits for every live node to report region_ready:1 and each
// region to have a leader.
func allReady(timeout time.Duration) error {
	_, err := poll("every node ready", timeout, func() error {
		for _, n := range nodes {
			if n.dead {
				continue
			}
			m, err := info(n, "replication")
			if err != nil {
				return fmt.Errorf("%s: %v", n.name, err)
			}
			if m["region_ready"] != "1" {
				return fmt.Errorf("%s: region_ready:%s region_state:%s", n.name, m["region_ready"], m["region_state"])
			}
		}
		for _, r := range regions {
			if _, err := leader(r); err != nil {
				return err
			}
		}
		return nil
	})
	return err
}

// ledger counts what the story wrote: acknowledged increments exactly, and
// increments whose fate the server could not tell (ERR ... may or may not
// have been applied, or a connection lost mid-command) as a bound.
type ledger struct {
	acked, doubt map[string]int64 // "counter", "cart/<item>", "board/<player>"
	perRegion    map[string]int64 // acknowledged counter increments by region
	writes       map[string]int   // acknowledged writes by region
	retries      int
}

func newLedger() *ledger {
	return &ledger{acked: map[string]int64{}, doubt: map[string]int64{}, perRegion: map[string]int64{}, writes: map[string]int{}}
}

// write sends one increment, retrying only TRYAGAIN replies (provably not
// applied, region/errors.go) on the region's other live nodes.
func (l *ledger) write(r string, turn int, key string, amt int64, cmd func(c *redis.Client) error) error {
	ns := regionNodes(r)
	var last error
	deadline := time.Now().Add(wait(20 * time.Second))
	for i := 0; time.Now().Before(deadline); i++ {
		n := ns[(turn+i)%len(ns)]
		err := cmd(n.c)
		if err == nil {
			l.acked[key] += amt
			l.writes[r]++
			if key == "counter" {
				l.perRegion[r] += amt
			}
			return nil
		}
		last = err
		if strings.HasPrefix(err.Error(), "TRYAGAIN") {
			l.retries++
			time.Sleep(200 * time.Millisecond)
			continue
		}
		l.doubt[key] += amt
		say("%s on %s: in doubt: %v", key, n.name, err)
		return nil
	}
	return fmt.Errorf("write in %s kept failing: %v", r, last)
}

var (
	items   = []string{"apples", "bread", "coffee", "dates"}
	players = []string{"ada", "grace", "linus", "ken", "barbara"}
)

// burst writes rounds of one counter increment, one cart line and one
// leaderboard score in each of the given regions.
func (l *ledger) burst(rng *rand.Rand, rounds int, rs ...string) error {
	for i := 0; i < rounds; i++ {
		for _, r := range rs {
			amt := int64(1 + rng.Intn(9))
			if err := l.write(r, i, "counter", amt, func(c *redis.Client) error {
				return c.IncrBy(ctx, "demo:counter", amt).Err()
			}); err != nil {
				return err
			}
			item, qty := items[rng.Intn(len(items))], int64(1+rng.Intn(3))
			if err := l.write(r, i+1, "cart/"+item, qty, func(c *redis.Client) error {
				return c.HIncrBy(ctx, "demo:cart", item, qty).Err()
			}); err != nil {
				return err
			}
			p, pts := players[rng.Intn(len(players))], int64(10*(1+rng.Intn(10)))
			if err := l.write(r, i+2, "board/"+p, pts, func(c *redis.Client) error {
				return c.ZIncrBy(ctx, "demo:leaderboard", float64(pts), p).Err()
			}); err != nil {
				return err
			}
		}
	}
	return nil
}

func counterIn(n *node) string {
	v, err := n.c.Get(ctx, "demo:counter").Result()
	if err == redis.Nil {
		return "(nil)"
	} else if err != nil {
		return "error: " + err.Error()
	}
	return v
}

// state is what one node holds of the story's keys, read back.
type state struct {
	values  map[string]int64
	digests string
}

func read(n *node) (state, error) {
	st := state{values: map[string]int64{}}
	v, err := n.c.Get(ctx, "demo:counter").Int64()
	if err != nil && err != redis.Nil {
		return st, err
	}
	st.values["counter"] = v
	h, err := n.c.HGetAll(ctx, "demo:cart").Result()
	if err != nil {
		return st, err
	}
	for f, s := range h {
		x, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return st, fmt.Errorf("cart %s=%q", f, s)
		}
		st.values["cart/"+f] = x
	}
	z, err := n.c.ZRangeWithScores(ctx, "demo:leaderboard", 0, -1).Result()
	if err != nil {
		return st, err
	}
	for _, m := range z {
		st.values["board/"+m.Member.(string)] = int64(m.Score)
	}
	m, err := info(n, "crdt")
	if err != nil {
		return st, err
	}
	var ds []string
	for k, v := range m {
		if strings.HasPrefix(k, "db") && strings.HasPrefix(v, "digest=") {
			ds = append(ds, k+":"+v)
		}
	}
	sort.Strings(ds)
	st.digests = strings.Join(ds, " ")
	return st, nil
}

// check compares a node's values with the ledger: exact where no write was
// in doubt, within [acked, acked+doubt] otherwise.
func (l *ledger) check(st state) error {
	keys := map[string]bool{}
	for k := range l.acked {
		keys[k] = true
	}
	for k := range l.doubt {
		keys[k] = true
	}
	for k := range st.values {
		keys[k] = true
	}
	for k := range keys {
		got, lo := st.values[k], l.acked[k]
		hi := lo + l.doubt[k]
		if got < lo || got > hi {
			if lo == hi {
				return fmt.Errorf("%s = %d, acknowledged increments sum to %d", k, got, lo)
			}
			return fmt.Errorf("%s = %d, outside [%d, %d] (acknowledged, plus in doubt)", k, got, lo, hi)
		}
	}
	return nil
}

func run() error {
	rng := rand.New(rand.NewSource(*seed))
	rounds := 40
	if *short {
		rounds = 10
	}
	l := newLedger()

	title("wait until all 9 nodes are ready and each region has a leader")
	if err := allReady(wait(90 * time.Second)); err != nil {
		return err
	}
	for _, r := range regions {
		ld, _ := leader(r)
		say("%s: nodes %s, leader %s", r, names(regionNodes(r)), ld.name)
	}
	for _, k := range []string{"demo:greeting", "demo:probe", "demo:counter", "demo:cart", "demo:leaderboard"} {
		for _, n := range nodes {
			if ex, err := n.c.Exists(ctx, k).Result(); err != nil || ex != 0 {
				return fmt.Errorf("%s already holds %s (err %v): run `make demo-down` for a fresh deployment", n.name, k, err)
			}
		}
	}

	title("write in region-a, read it in region-b and region-c")
	a1, b2, c3 := nodes[0], nodes[4], nodes[8]
	greeting := "hello from region-a"
	if err := a1.c.Set(ctx, "demo:greeting", greeting, 0).Err(); err != nil {
		return err
	}
	say("a1> SET demo:greeting %q -> OK", greeting)
	for _, n := range []*node{b2, c3} {
		took, err := poll("greeting reaches "+n.name, wait(30*time.Second), func() error {
			v, err := n.c.Get(ctx, "demo:greeting").Result()
			if err != nil {
				return err
			}
			if v != greeting {
				return fmt.Errorf("got %q", v)
			}
			return nil
		})
		if err != nil {
			return err
		}
		say("%s> GET demo:greeting -> %q (visible after %s)", n.name, greeting, took.Round(time.Millisecond))
	}

	title("cut region-c off: disconnect its nodes from the inter-region network")
	for _, n := range regionNodes("region-c") {
		if err := docker("network", "disconnect", interNet, n.container()); err != nil {
			return err
		}
	}
	if err := a1.c.Set(ctx, "demo:probe", "written during the partition", 0).Err(); err != nil {
		return err
	}
	say("a1> SET demo:probe ... -> OK")
	if _, err := poll("probe reaches b2", wait(30*time.Second), func() error { return b2.c.Get(ctx, "demo:probe").Err() }); err != nil {
		return err
	}
	time.Sleep(2 * time.Second)
	if err := c3.c.Get(ctx, "demo:probe").Err(); err != redis.Nil {
		return fmt.Errorf("region-c was meant to be cut off, yet GET demo:probe on c3 answered %v", err)
	}
	say("b2> GET demo:probe -> found;  c3> GET demo:probe -> (nil) two seconds later: region-c is cut off, and still serving")

	title("keep writing on both sides: INCRBY demo:counter, HINCRBY demo:cart, ZINCRBY demo:leaderboard, %d rounds per region", rounds)
	if err := l.burst(rng, rounds, regions...); err != nil {
		return err
	}
	for _, r := range regions {
		say("%s: %d writes acknowledged, counter increments %d", r, l.writes[r], l.perRegion[r])
	}

	title("kill region-a's leader")
	ld, err := leader("region-a")
	if err != nil {
		return err
	}
	say("a node's INFO replication says role:master region_state:leader: %s", ld.name)
	if err := docker("kill", ld.container()); err != nil {
		return err
	}
	ld.dead = true
	var nl *node
	took, err := poll("region-a elects a new leader", wait(30*time.Second), func() error {
		n, err := leader("region-a")
		nl = n
		return err
	})
	if err != nil {
		return err
	}
	say("region-a's new leader: %s (found %s after the kill)", nl.name, took.Round(time.Millisecond))

	title("keep writing in every region, region-a on its two surviving nodes")
	if err := l.burst(rng, rounds, regions...); err != nil {
		return err
	}
	for _, r := range regions {
		say("%s: %d writes acknowledged in all, counter increments %d", r, l.writes[r], l.perRegion[r])
	}
	say("the sides have diverged: demo:counter is %s in region-a, %s in region-b, %s in region-c",
		counterIn(nl), counterIn(b2), counterIn(c3))

	title("heal: reconnect region-c, restart the killed node")
	for _, n := range regionNodes("region-c") {
		if err := docker("network", "connect", "--ip", n.interIP, interNet, n.container()); err != nil {
			return err
		}
	}
	if err := docker("start", ld.container()); err != nil {
		return err
	}
	ld.dead = false

	title("converge: every node of every region holds the same state, nothing lost")
	say("expected from the acknowledged writes: counter %d = %s",
		l.acked["counter"], sumLine(l))
	if l.retries > 0 {
		say("%d writes got TRYAGAIN (provably not applied) and were sent again", l.retries)
	}
	var states map[string]state
	took, err = poll("convergence", wait(90*time.Second), func() error {
		// Read every node before judging, so that a failure shows the
		// whole picture below.
		states = map[string]state{}
		var errs []string
		for _, n := range nodes {
			st, err := read(n)
			if err != nil {
				errs = append(errs, fmt.Sprintf("%s: %v", n.name, err))
				continue
			}
			states[n.name] = st
		}
		if errs != nil {
			return errors.New(strings.Join(errs, "; "))
		}
		for _, n := range nodes {
			if err := l.check(states[n.name]); err != nil {
				return fmt.Errorf("%s: %v", n.name, err)
			}
		}
		ref := states[nodes[0].name].digests
		for _, n := range nodes {
			if d := states[n.name].digests; d != ref {
				return fmt.Errorf("%s digests %s differ from a1's %s", n.name, d, ref)
			}
		}
		return nil
	})
	for _, n := range nodes {
		if st, ok := states[n.name]; ok {
			say("%s %-8s counter=%-5d %s", n.name, n.region, st.values["counter"], st.digests)
		}
	}
	if err != nil {
		return err
	}
	say("converged %s after the heal", took.Round(time.Millisecond))
	st := states[nodes[0].name]
	say("cart:        %s", listing(st, "cart/"))
	say("leaderboard: %s", listing(st, "board/"))
	say("each equals the acknowledged writes on all 9 nodes, and the INFO crdt digests are identical")
	return nil
}

func names(ns []*node) string {
	var s []string
	for _, n := range ns {
		s = append(s, n.name)
	}
	return strings.Join(s, ",")
}

func sumLine(l *ledger) string {
	var s []string
	for _, r := range regions {
		s = append(s, fmt.Sprintf("%d (%s)", l.perRegion[r], r))
	}
	return strings.Join(s, " + ")
}

func listing(st state, prefix string) string {
	var ks []string
	for k := range st.values {
		if strings.HasPrefix(k, prefix) {
			ks = append(ks, k)
		}
	}
	sort.Strings(ks)
	var s []string
	for _, k := range ks {
		s = append(s, fmt.Sprintf("%s=%d", strings.TrimPrefix(k, prefix), st.values[k]))
	}
	return strings.Join(s, " ")
}
