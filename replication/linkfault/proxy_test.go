package linkfault

import (
	"bufio"
	"io"
	"net"
	"testing"
	"time"
)

// echoServer echoes each connection's bytes back.
func echoServer(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { io.Copy(c, c); c.Close() }()
		}
	}()
	return ln.Addr().String()
}

func roundTrip(c net.Conn, r *bufio.Reader, msg string, timeout time.Duration) (string, error) {
	c.SetDeadline(time.Now().Add(timeout))
	if _, err := c.Write([]byte(msg + "\n")); err != nil {
		return "", err
	}
	line, err := r.ReadString('\n')
	return line, err
}

func TestProxyFaults(t *testing.T) {
	p, err := New("127.0.0.1:0", echoServer(t))
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	c, err := net.Dial("tcp", p.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	r := bufio.NewReader(c)
	if got, err := roundTrip(c, r, "hello", 5*time.Second); err != nil || got != "hello\n" {
		t.Fatalf("plain round trip: %q, %v", got, err)
	}

	// Delay is added in each direction: a round trip takes at least twice it.
	p.SetDelay(50*time.Millisecond, 0)
	start := time.Now()
	if got, err := roundTrip(c, r, "slow", 5*time.Second); err != nil || got != "slow\n" {
		t.Fatalf("delayed round trip: %q, %v", got, err)
	}
	if el := time.Since(start); el < 100*time.Millisecond {
		t.Fatalf("round trip took %v with 50ms each way", el)
	}
	p.SetDelay(0, 0)

	// A blackhole drops data but keeps the connection.
	p.Blackhole(true)
	if _, err := roundTrip(c, r, "lost", 200*time.Millisecond); err == nil {
		t.Fatal("data crossed a blackholed link")
	}
	p.Heal()
	c2, err := net.Dial("tcp", p.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	r2 := bufio.NewReader(c2)
	if got, err := roundTrip(c2, r2, "back", 5*time.Second); err != nil || got != "back\n" {
		t.Fatalf("after heal: %q, %v", got, err)
	}

	// A cut resets connections and refuses new ones until healed.
	p.Cut()
	if _, err := roundTrip(c2, r2, "cut", 2*time.Second); err == nil {
		t.Fatal("a cut connection still carried data")
	}
	c3, err := net.Dial("tcp", p.Addr())
	if err == nil {
		r3 := bufio.NewReader(c3)
		if _, err := roundTrip(c3, r3, "refused", 2*time.Second); err == nil {
			t.Fatal("a new connection crossed a cut link")
		}
		c3.Close()
	}
	p.Heal()
	c4, err := net.Dial("tcp", p.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c4.Close()
	if got, err := roundTrip(c4, bufio.NewReader(c4), "healed", 5*time.Second); err != nil || got != "healed\n" {
		t.Fatalf("after heal of cut: %q, %v", got, err)
	}
}
