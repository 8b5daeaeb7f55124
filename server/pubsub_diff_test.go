package server

import (
	"bufio"
	"fmt"
	"math/rand/v2"
	"net"
	"os/exec"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Pub/sub checked against redis-server 7.0.15 itself: the same sessions
// of several connections run against both servers, and every
// connection's output must be the same.

// startRefRedis starts a throwaway redis-server on a free loopback port
// and returns its address; the test is skipped if there is none.
func startRefRedis(t *testing.T) string {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		t.Skip("redis-server not installed (Debian: apt-get install redis-server); skipping the comparison with Redis")
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	cmd := exec.Command(bin, "--port", strconv.Itoa(port), "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--daemonize", "no")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	for i := 0; i < 200; i++ {
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			return addr
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatal("redis-server did not come up")
	return ""
}

// rv is a parsed RESP value, for comparing outputs modulo orders Redis
// does not fix (its dicts' iteration order).
type rv struct {
	typ   byte
	str   string // the header line's body, or a bulk's content
	elems []rv
}

func (v rv) String() string {
	var b strings.Builder
	v.render(&b)
	return b.String()
}

func (v rv) render(b *strings.Builder) {
	switch v.typ {
	case '$', '=', '!':
		if v.str == "\x00nil" {
			b.WriteString(string(v.typ) + "-1\r\n")
			return
		}
		fmt.Fprintf(b, "%c%d\r\n%s\r\n", v.typ, len(v.str), v.str)
	case '*', '~', '>', '%', '|':
		if v.elems == nil && v.str == "-1" {
			b.WriteString(string(v.typ) + "-1\r\n")
			return
		}
		n := len(v.elems)
		if v.typ == '%' || v.typ == '|' {
			n /= 2
		}
		fmt.Fprintf(b, "%c%d\r\n", v.typ, n)
		for _, e := range v.elems {
			e.render(b)
		}
	default:
		fmt.Fprintf(b, "%c%s\r\n", v.typ, v.str)
	}
}

func parseRV(r *bufio.Reader) (rv, error) {
	line, err := r.ReadString('\n')
	if err != nil {
		return rv{}, err
	}
	if len(line) < 3 || !strings.HasSuffix(line, "\r\n") {
		return rv{}, fmt.Errorf("bad line %q", line)
	}
	v := rv{typ: line[0], str: line[1 : len(line)-2]}
	switch v.typ {
	case '$', '=', '!':
		n, err := strconv.Atoi(v.str)
		if err != nil {
			return rv{}, err
		}
		if n < 0 {
			v.str = "\x00nil"
			return v, nil
		}
		buf := make([]byte, n+2)
		if _, err := readFull(r, buf); err != nil {
			return rv{}, err
		}
		v.str = string(buf[:n])
	case '*', '~', '>', '%', '|':
		n, err := strconv.Atoi(v.str)
		if err != nil {
			return rv{}, err
		}
		if n < 0 {
			return v, nil
		}
		if v.typ == '%' || v.typ == '|' {
			n *= 2
		}
		v.elems = []rv{}
		for i := 0; i < n; i++ {
			e, err := parseRV(r)
			if err != nil {
				return rv{}, err
			}
			v.elems = append(v.elems, e)
		}
	}
	return v, nil
}

func readFull(r *bufio.Reader, buf []byte) (int, error) {
	n := 0
	for n < len(buf) {
		m, err := r.Read(buf[n:])
		n += m
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

// psConn is one connection of a session.
type psConn struct {
	nc     net.Conn
	br     *bufio.Reader
	closed bool
}

// psSession runs the same steps on both servers.
type psSession struct {
	t       *testing.T
	conns   [2][]*psConn // [ref, sut]
	sortOut bool         // compare each step's frames as a multiset
	sentSeq int
	log     []string
}

func newPSSession(t *testing.T, ref, sut string, resps []int, sortOut bool) *psSession {
	s := &psSession{t: t, sortOut: sortOut}
	for side, addr := range []string{ref, sut} {
		for _, resp := range resps {
			nc, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { nc.Close() })
			c := &psConn{nc: nc, br: bufio.NewReader(nc)}
			if resp == 3 {
				nc.Write([]byte(encode("HELLO", "3")))
				nc.SetReadDeadline(time.Now().Add(5 * time.Second))
				if _, err := parseRV(c.br); err != nil {
					t.Fatal(err)
				}
			}
			s.conns[side] = append(s.conns[side], c)
		}
	}
	return s
}

// step runs args on connection i of both servers, then collects every
// connection's output up to a sentinel PING and compares.
func (s *psSession) step(i int, args ...string) {
	s.t.Helper()
	s.log = append(s.log, fmt.Sprintf("conn %d: %q", i, args))
	for side := range s.conns {
		c := s.conns[side][i]
		if !c.closed {
			c.nc.Write([]byte(encode(args...)))
		}
	}
	s.sentSeq++
	token := fmt.Sprintf("sentinel-%d", s.sentSeq)
	// The issuing connection first: its reply means the command is done,
	// messages delivered included, before the others are asked.
	order := []int{i}
	for j := range s.conns[0] {
		if j != i {
			order = append(order, j)
		}
	}
	for _, j := range order {
		var outs [2]string
		for side := range s.conns {
			outs[side] = s.collect(s.conns[side][j], token, j == i && isQuit(args))
		}
		if outs[0] != outs[1] {
			s.t.Fatalf("after %s, connection %d differs:\nredis:   %q\nconcord: %q\nsession:\n%s",
				s.log[len(s.log)-1], j, outs[0], outs[1], strings.Join(s.log, "\n"))
		}
	}
}

func isQuit(args []string) bool { return strings.EqualFold(args[0], "quit") }

// collect reads c's frames up to the reply to a PING carrying token (or
// the connection's end, if it was told to QUIT), normalised.
func (s *psSession) collect(c *psConn, token string, quitting bool) string {
	if c.closed {
		return "<closed>"
	}
	if !quitting {
		c.nc.Write([]byte(encode("PING", token)))
	}
	var frames, counts []string
	for {
		c.nc.SetReadDeadline(time.Now().Add(5 * time.Second))
		v, err := parseRV(c.br)
		if err != nil {
			if quitting {
				c.closed = true
				frames = append(frames, "<closed>")
				break
			}
			s.t.Fatalf("reading: %v (after %s; got %q)", err, s.log[len(s.log)-1], frames)
		}
		if v.typ == '$' && v.str == token {
			break
		}
		if v.typ == '*' && len(v.elems) == 2 && v.elems[0].str == "pong" && v.elems[1].str == token {
			break
		}
		v = normalize(v)
		if s.sortOut && isUnsubscribe(v) {
			// Redis unsubscribes from all in dict order, and each count
			// depends on the order: compare the counts as a set too.
			counts = append(counts, v.elems[2].str)
			v.elems = append([]rv(nil), v.elems...)
			v.elems[2] = rv{typ: ':', str: "<n>"}
		}
		frames = append(frames, v.String())
	}
	if s.sortOut {
		sort.Strings(frames)
		sort.Strings(counts)
		frames = append(frames, strings.Join(counts, ","))
	}
	return strings.Join(frames, "")
}

// normalize sorts what Redis returns in dict order (PUBSUB CHANNELS) and
// reduces INFO to its pub/sub lines.
func normalize(v rv) rv {
	if (v.typ == '%' || v.typ == '*') && len(v.elems) > 8 && v.elems[0].str == "server" {
		v.elems = append([]rv(nil), v.elems...)
		v.elems[7] = rv{typ: ':', str: "<id>"} // HELLO's client id
		return v
	}
	if (v.typ == '$' || v.typ == '=') && strings.Contains(v.str, "# Stats") {
		var keep []string
		for _, l := range strings.Split(v.str, "\r\n") {
			if strings.HasPrefix(l, "pubsub") {
				keep = append(keep, l)
			}
		}
		v.str = strings.Join(keep, ",")
		return v
	}
	if v.typ == '*' && len(v.elems) > 1 && !pubsubVerbs[v.elems[0].str] {
		allBulk := true
		for _, e := range v.elems {
			allBulk = allBulk && e.typ == '$'
		}
		if allBulk {
			sorted := append([]rv(nil), v.elems...)
			sort.Slice(sorted, func(a, b int) bool { return sorted[a].str < sorted[b].str })
			v.elems = sorted
		}
	}
	return v
}

var pubsubVerbs = map[string]bool{"message": true, "pmessage": true, "smessage": true, "pong": true,
	"subscribe": true, "psubscribe": true, "ssubscribe": true, "unsubscribe": true, "punsubscribe": true, "sunsubscribe": true}

func isUnsubscribe(v rv) bool {
	if (v.typ != '*' && v.typ != '>') || len(v.elems) != 3 {
		return false
	}
	switch v.elems[0].str {
	case "unsubscribe", "punsubscribe", "sunsubscribe":
		return true
	}
	return false
}

func TestPubSubMatchesRedisScripted(t *testing.T) {
	ref := startRefRedis(t)
	_, sut := startServer(t, Options{NoActiveExpiry: true})
	// Connections 0-1 speak RESP2, 2-3 RESP3.
	s := newPSSession(t, ref, sut, []int{2, 2, 3, 3}, false)
	for _, c := range []int{0, 2} {
		s.step(c, "UNSUBSCRIBE")
		s.step(c, "PUNSUBSCRIBE")
		s.step(c, "SUNSUBSCRIBE")
		s.step(c, "UNSUBSCRIBE", "nope", "nope2")
		s.step(c, "SUBSCRIBE", "news", "sport", "news")
		s.step(c, "PSUBSCRIBE", "n*s")
		s.step(c, "SSUBSCRIBE", "s1", "s2")
		s.step(c, "PING")
		s.step(c, "PING", "hello")
		s.step(c, "GET", "k")
		s.step(c, "SET", "k", "v")
		s.step(c, "GET", "k", "extra")
		s.step(c, "ECHO", "x")
		s.step(c, "PUBSUB", "NUMSUB", "news")
		s.step(c, "HELLO", "3")
		s.step(c, "FOO")
	}
	s.step(1, "PUBLISH", "news", "m1")
	s.step(3, "PUBLISH", "sport", "m2")
	s.step(1, "PUBLISH", "nothing", "m3")
	s.step(1, "PUBLISH", "nas", "m4")
	s.step(3, "SPUBLISH", "s1", "m5")
	s.step(3, "SPUBLISH", "news", "m6")
	s.step(2, "PUBLISH", "news", "self")
	s.step(1, "PUBSUB", "NUMSUB", "news", "sport", "nas", "s1")
	s.step(1, "PUBSUB", "NUMSUB")
	s.step(1, "PUBSUB", "NUMPAT")
	s.step(1, "PUBSUB", "CHANNELS")
	s.step(1, "PUBSUB", "CHANNELS", "s*")
	s.step(1, "PUBSUB", "SHARDCHANNELS")
	s.step(1, "PUBSUB", "SHARDNUMSUB", "s1", "x")
	s.step(1, "PUBSUB", "CHANNELS", "a", "b")
	s.step(1, "PUBSUB", "NUMPAT", "x")
	s.step(1, "PUBSUB", "HELP")
	s.step(1, "PUBSUB", "nosuch")
	s.step(1, "PUBSUB")
	s.step(1, "SUBSCRIBE")
	s.step(1, "PUBLISH", "x")
	s.step(1, "INFO", "stats")
	s.step(0, "UNSUBSCRIBE", "sport")
	s.step(0, "UNSUBSCRIBE", "news")
	s.step(0, "PUNSUBSCRIBE")
	s.step(0, "PING")
	s.step(0, "SUNSUBSCRIBE", "s1")
	s.step(0, "SUNSUBSCRIBE")
	s.step(0, "PING")
	s.step(0, "GET", "k")
	s.step(2, "RESET")
	s.step(2, "PING")
	s.step(1, "PUBLISH", "news", "after-reset")
	s.step(1, "PSUBSCRIBE", "a*")
	s.step(1, "QUIT")
	s.step(0, "PUBLISH", "abc", "to-closed")
	s.step(0, "INFO", "stats")
	// In RESP3 a subscriber may switch to RESP2, and is then held to it.
	s.step(3, "HELLO", "2")
	s.step(3, "GET", "k")
	s.step(3, "PING")
	s.step(3, "HELLO", "3")
	s.step(3, "RESET")
	s.step(3, "GET", "k")
}

// TestPubSubMatchesRedisRandom runs random pub/sub sessions of four
// connections (two RESP2, two RESP3) on both servers. A step's frames are
// compared as a multiset: Redis orders UNSUBSCRIBE's and several
// patterns' replies by its dicts.
func TestPubSubMatchesRedisRandom(t *testing.T) {
	steps := 600
	if testing.Short() {
		steps = 150
	}
	for seed := uint64(1); seed <= 4; seed++ {
		t.Run(fmt.Sprint("seed", seed), func(t *testing.T) {
			ref := startRefRedis(t)
			_, sut := startServer(t, Options{NoActiveExpiry: true})
			s := newPSSession(t, ref, sut, []int{2, 3, 2, 3}, true)
			rng := rand.New(rand.NewPCG(seed, 7))
			chans := []string{"a", "b", "ab", "news.1", "news.2", "x?y"}
			pats := []string{"a*", "?b", "news.*", "[ab]*", "*", "x\\?y", "[^a]*"}
			pick := func(from []string, min, max int) []string {
				n := min + rng.IntN(max-min+1)
				out := make([]string, n)
				for i := range out {
					out[i] = from[rng.IntN(len(from))]
				}
				return out
			}
			for i := 0; i < steps; i++ {
				c := rng.IntN(4)
				var args []string
				switch r := rng.IntN(20); {
				case r < 3:
					args = append([]string{"SUBSCRIBE"}, pick(chans, 1, 3)...)
				case r < 5:
					args = append([]string{"UNSUBSCRIBE"}, pick(chans, 0, 2)...)
				case r < 7:
					args = append([]string{"PSUBSCRIBE"}, pick(pats, 1, 2)...)
				case r < 8:
					args = append([]string{"PUNSUBSCRIBE"}, pick(pats, 0, 2)...)
				case r < 9:
					args = append([]string{"SSUBSCRIBE"}, pick(chans, 1, 2)...)
				case r < 10:
					args = append([]string{"SUNSUBSCRIBE"}, pick(chans, 0, 1)...)
				case r < 14:
					args = []string{"PUBLISH", pick(chans, 1, 1)[0], fmt.Sprint("m", i)}
				case r < 15:
					args = []string{"SPUBLISH", pick(chans, 1, 1)[0], fmt.Sprint("s", i)}
				case r < 16:
					args = append([]string{"PUBSUB", "NUMSUB"}, pick(chans, 0, 3)...)
				case r < 17:
					switch rng.IntN(4) {
					case 0:
						args = []string{"PUBSUB", "NUMPAT"}
					case 1:
						args = []string{"PUBSUB", "CHANNELS"}
					case 2:
						args = []string{"PUBSUB", "CHANNELS", pick(pats, 1, 1)[0]}
					default:
						args = append([]string{"PUBSUB", "SHARDNUMSUB"}, pick(chans, 0, 2)...)
					}
				case r < 18:
					args = [][]string{{"PING"}, {"PING", "p"}, {"GET", "k"}, {"INFO", "stats"}}[rng.IntN(4)]
				case r < 19:
					args = []string{"RESET"}
				default:
					args = []string{"ECHO", "e"}
				}
				s.step(c, args...)
			}
		})
	}
}
