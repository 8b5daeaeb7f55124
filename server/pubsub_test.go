package server

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

func TestPubSubGoRedis(t *testing.T) {
	for _, proto := range []int{2, 3} {
		t.Run(fmt.Sprint("resp", proto), func(t *testing.T) {
			_, addr := startServer(t, Options{NoActiveExpiry: true})
			ctx := context.Background()
			rdb := redis.NewClient(&redis.Options{Addr: addr, Protocol: proto})
			defer rdb.Close()
			ps := rdb.Subscribe(ctx, "news")
			defer ps.Close()
			if _, err := ps.Receive(ctx); err != nil { // the confirmation
				t.Fatal(err)
			}
			if err := ps.PSubscribe(ctx, "sp*"); err != nil {
				t.Fatal(err)
			}
			ch := ps.Channel()
			waitFor(t, func() bool { return rdb.PubSubNumPat(ctx).Val() == 1 })
			if n, err := rdb.Publish(ctx, "news", "hello").Result(); err != nil || n != 1 {
				t.Fatalf("PUBLISH = %d, %v", n, err)
			}
			if n, err := rdb.Publish(ctx, "sport", "goal").Result(); err != nil || n != 1 {
				t.Fatalf("PUBLISH = %d, %v", n, err)
			}
			for _, want := range []redis.Message{
				{Channel: "news", Payload: "hello"},
				{Channel: "sport", Pattern: "sp*", Payload: "goal"},
			} {
				select {
				case m := <-ch:
					if m.Channel != want.Channel || m.Pattern != want.Pattern || m.Payload != want.Payload {
						t.Errorf("got %+v, want %+v", *m, want)
					}
				case <-time.After(5 * time.Second):
					t.Fatalf("no message %+v", want)
				}
			}
			if got := rdb.PubSubNumSub(ctx, "news", "none").Val(); got["news"] != 1 || got["none"] != 0 {
				t.Errorf("NUMSUB = %v", got)
			}
			if got := rdb.PubSubChannels(ctx, "*").Val(); len(got) != 1 || got[0] != "news" {
				t.Errorf("CHANNELS = %v", got)
			}
			// go-redis pings a quiet subscription: the answer must parse.
			if err := ps.Ping(ctx); err != nil {
				t.Errorf("PubSub PING: %v", err)
			}
			if err := ps.Unsubscribe(ctx, "news"); err != nil {
				t.Fatal(err)
			}
			waitFor(t, func() bool { return rdb.PubSubNumSub(ctx, "news").Val()["news"] == 0 })
			if n := rdb.Publish(ctx, "news", "gone").Val(); n != 0 {
				t.Errorf("PUBLISH after UNSUBSCRIBE reached %d", n)
			}
		})
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not reached in 5s")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestPubSubRedisCLI runs redis-cli in subscribe mode; its output format
// is redis-cli's own for the pushes it reads.
func TestPubSubRedisCLI(t *testing.T) {
	cli, err := exec.LookPath("redis-cli")
	if err != nil {
		t.Skip("redis-cli not installed; skipping")
	}
	_, addr := startServer(t, Options{NoActiveExpiry: true})
	host, port, _ := net.SplitHostPort(addr)
	for _, extra := range [][]string{nil, {"-3"}} {
		t.Run(fmt.Sprint(extra), func(t *testing.T) {
			args := append([]string{"-h", host, "-p", port}, extra...)
			cmd := exec.Command(cli, append(args, "SUBSCRIBE", "ch")...)
			out, _ := cmd.StdoutPipe()
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			defer func() { cmd.Process.Kill(); cmd.Wait() }()
			br := bufio.NewReader(out)
			readLines := func(n int) string {
				var b strings.Builder
				for i := 0; i < n; i++ {
					l, err := br.ReadString('\n')
					if err != nil {
						t.Fatalf("redis-cli output: %v (so far %q)", err, b.String())
					}
					b.WriteString(l)
				}
				return b.String()
			}
			if got := readLines(3); got != "subscribe\nch\n1\n" {
				t.Fatalf("confirmation: %q", got)
			}
			c := dial(t, addr)
			c.expect(":1\r\n", "PUBLISH", "ch", "hello world")
			if got := readLines(3); got != "message\nch\nhello world\n" {
				t.Errorf("message: %q", got)
			}
		})
	}
}

func TestPubSubClientListAndInfo(t *testing.T) {
	_, addr := startServer(t, Options{NoActiveExpiry: true})
	sub := dial(t, addr)
	sub.expect("*3\r\n$9\r\nsubscribe\r\n$1\r\na\r\n:1\r\n", "SUBSCRIBE", "a")
	sub.expect("*3\r\n$10\r\npsubscribe\r\n$2\r\nb*\r\n:2\r\n", "PSUBSCRIBE", "b*")
	sub.expect("*3\r\n$10\r\nssubscribe\r\n$1\r\ns\r\n:1\r\n", "SSUBSCRIBE", "s")
	c := dial(t, addr)
	list := c.do("CLIENT", "LIST")
	if !regexp.MustCompile(`flags=P db=0 sub=1 psub=1 ssub=1 multi=-1 cmd=ssubscribe `).MatchString(list) ||
		!regexp.MustCompile(`flags=N db=0 sub=0 psub=0 ssub=0 multi=-1 cmd=client\|list `).MatchString(list) {
		t.Errorf("CLIENT LIST:\n%s", list)
	}
	if l := c.do("CLIENT", "LIST", "TYPE", "pubsub"); strings.Count(l, "id=") != 1 || !strings.Contains(l, "flags=P") {
		t.Errorf("CLIENT LIST TYPE pubsub:\n%s", l)
	}
	if l := c.do("CLIENT", "LIST", "TYPE", "normal"); strings.Count(l, "id=") != 1 || strings.Contains(l, "flags=P") {
		t.Errorf("CLIENT LIST TYPE normal:\n%s", l)
	}
	info := c.do("INFO", "stats")
	if !strings.Contains(info, "pubsub_channels:1\r\npubsub_patterns:1\r\npubsubshard_channels:1\r\n") {
		t.Errorf("INFO stats:\n%s", info)
	}
	c.expect(":1\r\n", "CLIENT", "KILL", "TYPE", "pubsub")
	sub.expectClosed("")
	waitFor(t, func() bool {
		return strings.Contains(c.do("INFO", "stats"), "pubsub_channels:0\r\npubsub_patterns:0\r\npubsubshard_channels:0\r\n")
	})
}

// Messages from one publishing connection reach a subscriber in the order
// they were published, interleaved correctly with the subscriber's own
// replies.
func TestPubSubOrder(t *testing.T) {
	_, addr := startServer(t, Options{NoActiveExpiry: true})
	sub := dial(t, addr)
	sub.expect("*3\r\n$9\r\nsubscribe\r\n$1\r\nq\r\n:1\r\n", "SUBSCRIBE", "q")
	const n = 5000
	var wg sync.WaitGroup
	for p := 0; p < 3; p++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			pub := dial(t, addr)
			var b strings.Builder
			for i := 0; i < n; i++ {
				b.WriteString(encode("PUBLISH", "q", fmt.Sprintf("%d:%d", p, i)))
			}
			pub.send(b.String())
			for i := 0; i < n; i++ {
				if r := pub.read(); r != ":1\r\n" {
					t.Errorf("PUBLISH = %q", r)
					return
				}
			}
		}()
	}
	next := [3]int{}
	for got := 0; got < 3*n; got++ {
		r := sub.read()
		var p, i int
		if _, err := fmt.Sscanf(r[strings.LastIndex(r[:len(r)-2], "\n")+1:], "%d:%d", &p, &i); err != nil {
			t.Fatalf("message %q: %v", r, err)
		}
		if next[p] != i {
			t.Fatalf("publisher %d: got message %d, want %d", p, i, next[p])
		}
		next[p]++
	}
	wg.Wait()
	// A RESP3 subscriber publishing to itself gets the message before
	// the reply, and after the replies of the commands before it.
	self := dial(t, addr)
	self.do("HELLO", "3")
	self.send(encode("SUBSCRIBE", "me") + encode("ECHO", "before") + encode("PUBLISH", "me", "x") + encode("ECHO", "after"))
	var got strings.Builder
	for i := 0; i < 5; i++ {
		got.WriteString(self.read())
	}
	want := ">3\r\n$9\r\nsubscribe\r\n$2\r\nme\r\n:1\r\n$6\r\nbefore\r\n>3\r\n$7\r\nmessage\r\n$2\r\nme\r\n$1\r\nx\r\n:1\r\n$5\r\nafter\r\n"
	if got.String() != want {
		t.Errorf("got  %q\nwant %q", got.String(), want)
	}
}

// A subscriber that stops reading is disconnected once its output passes
// the pubsub class's hard limit; other subscribers and the publisher go
// on unharmed.
func TestPubSubSlowSubscriberHardLimit(t *testing.T) {
	_, addr := startServer(t, Options{NoActiveExpiry: true})
	c := dial(t, addr)
	c.expect("+OK\r\n", "CONFIG", "SET", "client-output-buffer-limit", "pubsub 4mb 1mb 60")
	slowNC, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer slowNC.Close()
	slowNC.(*net.TCPConn).SetReadBuffer(4096)
	slow := &rawConn{t: t, nc: slowNC, br: bufio.NewReader(slowNC)}
	slow.expect("*3\r\n$9\r\nsubscribe\r\n$3\r\nbig\r\n:1\r\n", "SUBSCRIBE", "big")
	slowID := strings.TrimSpace(strings.TrimPrefix(regexp.MustCompile(`id=\d+`).FindString(c.do("CLIENT", "LIST", "TYPE", "pubsub")), "id="))

	fast := dial(t, addr)
	fast.expect("*3\r\n$9\r\nsubscribe\r\n$3\r\nbig\r\n:1\r\n", "SUBSCRIBE", "big")
	const n = 400
	payload := strings.Repeat("x", 64<<10)
	received := make(chan int, 1)
	go func() {
		i := 0
		for ; i < n; i++ {
			fast.nc.SetReadDeadline(time.Now().Add(20 * time.Second))
			var b bytes.Buffer
			if err := readValue(fast.br, &b); err != nil {
				break
			}
			if !strings.HasSuffix(b.String(), payload+"\r\n") {
				break
			}
		}
		received <- i
	}()
	pub := dial(t, addr)
	counts := map[string]int{}
	for i := 0; i < n; i++ {
		counts[pub.do("PUBLISH", "big", payload)]++
	}
	if got := <-received; got != n {
		t.Errorf("the reading subscriber got %d of %d messages", got, n)
	}
	if counts[":1\r\n"] == 0 || counts[":2\r\n"]+counts[":1\r\n"] != n {
		t.Errorf("PUBLISH replies %v: want 2 receivers, then 1 once the slow one is gone", counts)
	}
	if l := c.do("CLIENT", "LIST"); strings.Contains(l, "id="+slowID+" ") {
		t.Errorf("slow subscriber %s still connected:\n%s", slowID, l)
	}
	c.expect("*2\r\n$3\r\nbig\r\n:1\r\n", "PUBSUB", "NUMSUB", "big")
}

// Past the soft limit for longer than its seconds, a subscriber is
// disconnected too (Redis counts whole seconds: more than 1 s means 2).
func TestPubSubSlowSubscriberSoftLimit(t *testing.T) {
	if testing.Short() {
		t.Skip("takes 3 s")
	}
	_, addr := startServer(t, Options{NoActiveExpiry: true})
	c := dial(t, addr)
	c.expect("+OK\r\n", "CONFIG", "SET", "client-output-buffer-limit", "pubsub 0 128kb 1")
	slowNC, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer slowNC.Close()
	slowNC.(*net.TCPConn).SetReadBuffer(4096)
	slow := &rawConn{t: t, nc: slowNC, br: bufio.NewReader(slowNC)}
	slow.expect("*3\r\n$9\r\nsubscribe\r\n$1\r\ns\r\n:1\r\n", "SUBSCRIBE", "s")
	payload := strings.Repeat("y", 16<<10)
	deadline := time.Now().Add(15 * time.Second)
	for {
		if r := c.do("PUBLISH", "s", payload); r == ":0\r\n" {
			break // disconnected and unsubscribed
		}
		if time.Now().After(deadline) {
			t.Fatal("slow subscriber over the soft limit was never disconnected")
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// linkedStore is an in-memory twin of the region/replication transport:
// every member's Publish delivers to its own subscribers and to every
// other member's, synchronously.
type linkedStore struct {
	*LocalStore
	bus *linkBus
	mu  sync.Mutex
	fn  func(channel, message []byte) int
}

type linkBus struct{ members []*linkedStore }

func (l *linkedStore) SetPublishHandler(fn func(channel, message []byte) int) {
	l.mu.Lock()
	l.fn = fn
	l.mu.Unlock()
}

func (l *linkedStore) deliver(ch, msg []byte) int {
	l.mu.Lock()
	fn := l.fn
	l.mu.Unlock()
	return fn(ch, msg)
}

func (l *linkedStore) Publish(ch, msg []byte) int {
	n := l.deliver(ch, msg)
	for _, o := range l.bus.members {
		if o != l {
			o.deliver(ch, msg)
		}
	}
	return n
}

// PUBLISH goes through the Store's Publisher: subscribers on another
// server get it once, and the reply counts this server's receivers.
func TestPubSubThroughPublisher(t *testing.T) {
	bus := &linkBus{}
	var addrs []string
	for i := 0; i < 2; i++ {
		ls := &linkedStore{LocalStore: newTestLocalStore(t), bus: bus}
		bus.members = append(bus.members, ls)
		_, addr := serveStore(t, ls, Options{NoActiveExpiry: true})
		addrs = append(addrs, addr)
	}
	a, b := dial(t, addrs[0]), dial(t, addrs[1])
	a.expect("*3\r\n$9\r\nsubscribe\r\n$1\r\nc\r\n:1\r\n", "SUBSCRIBE", "c")
	b.expect("*3\r\n$10\r\npsubscribe\r\n$1\r\n*\r\n:1\r\n", "PSUBSCRIBE", "*")
	pub := dial(t, addrs[1])
	pub.expect(":1\r\n", "PUBLISH", "c", "hi")
	if got := a.read(); got != "*3\r\n$7\r\nmessage\r\n$1\r\nc\r\n$2\r\nhi\r\n" {
		t.Errorf("remote subscriber got %q", got)
	}
	if got := b.read(); got != "*4\r\n$8\r\npmessage\r\n$1\r\n*\r\n$1\r\nc\r\n$2\r\nhi\r\n" {
		t.Errorf("local subscriber got %q", got)
	}
	// Nothing more arrives: each got the message once.
	a.expect("*2\r\n$4\r\npong\r\n$0\r\n\r\n", "PING")
	b.expect("*2\r\n$4\r\npong\r\n$0\r\n\r\n", "PING")
	// SPUBLISH stays on its server.
	b.expect("*3\r\n$10\r\nssubscribe\r\n$1\r\nc\r\n:1\r\n", "SSUBSCRIBE", "c")
	dial(t, addrs[0]).expect(":0\r\n", "SPUBLISH", "c", "x")
}

// The idle timeout spares subscribers, as in Redis.
func TestPubSubIdleTimeout(t *testing.T) {
	if testing.Short() {
		t.Skip("takes 3 s")
	}
	_, addr := startServer(t, Options{NoActiveExpiry: true, Timeout: 1})
	sub, idle := dial(t, addr), dial(t, addr)
	sub.expect("*3\r\n$9\r\nsubscribe\r\n$1\r\nt\r\n:1\r\n", "SUBSCRIBE", "t")
	idle.expect("+PONG\r\n", "PING")
	idle.expectClosed("")
	time.Sleep(1500 * time.Millisecond)
	sub.expect("*2\r\n$4\r\npong\r\n$0\r\n\r\n", "PING")
}
