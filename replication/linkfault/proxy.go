// Package linkfault is a TCP proxy that injects faults into one network
// link: added one-way delay and jitter, a blackhole that silently drops
// everything in both directions (a partition whose TCP connections stay
// open), and a cut that resets every connection and refuses new ones.
// Tests and the failure-simulation harness put one between regions.
//
// Faults apply to bytes, not to messages: a delayed chunk delays every
// later chunk of the same direction (TCP order is kept), so the proxy
// models a slow or broken path, never a reordering one.
package linkfault

import (
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"sync"
	"time"
)

// Proxy forwards connections accepted on its address to a target.
type Proxy struct {
	ln     net.Listener
	target string

	mu     sync.Mutex
	delay  time.Duration
	jitter time.Duration
	hole   bool // blackhole: read and discard, forward nothing
	cut    bool
	conns  map[*link]struct{}
	closed bool
	wg     sync.WaitGroup
}

type link struct{ a, b net.Conn }

func (l *link) close() {
	if tc, ok := l.a.(*net.TCPConn); ok {
		tc.SetLinger(0) // a reset, as a broken path looks to the peer
	}
	l.a.Close()
	l.b.Close()
}

// New listens on listenAddr (e.g. "127.0.0.1:0") and forwards to target.
func New(listenAddr, target string) (*Proxy, error) {
	ln, err := net.Listen("tcp", listenAddr)
	if err != nil {
		return nil, err
	}
	p := &Proxy{ln: ln, target: target, conns: map[*link]struct{}{}}
	p.wg.Add(1)
	go p.accept()
	return p, nil
}

// Addr is the address to dial instead of the target.
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// SetDelay adds d plus a uniformly random jitter in [0, jitter) to every
// chunk of data in each direction (the order of the data is kept).
func (p *Proxy) SetDelay(d, jitter time.Duration) {
	p.mu.Lock()
	p.delay, p.jitter = d, jitter
	p.mu.Unlock()
}

// Blackhole makes the link drop everything in both directions while
// keeping connections open (on: true), or forward again (false). Data
// dropped meanwhile is gone, so the peers' connections are broken in
// effect and only timeouts notice.
func (p *Proxy) Blackhole(on bool) {
	p.mu.Lock()
	p.hole = on
	p.mu.Unlock()
}

// Cut resets every connection and refuses new ones until Heal.
func (p *Proxy) Cut() {
	p.mu.Lock()
	p.cut = true
	conns := p.conns
	p.conns = map[*link]struct{}{}
	p.mu.Unlock()
	for l := range conns {
		l.close()
	}
}

// Heal undoes Cut and Blackhole (delay stays as set).
func (p *Proxy) Heal() {
	p.mu.Lock()
	p.cut, p.hole = false, false
	p.mu.Unlock()
}

// Close stops the proxy and closes every connection.
func (p *Proxy) Close() error {
	p.mu.Lock()
	p.closed = true
	conns := p.conns
	p.conns = map[*link]struct{}{}
	p.mu.Unlock()
	err := p.ln.Close()
	for l := range conns {
		l.close()
	}
	p.wg.Wait()
	return err
}

func (p *Proxy) accept() {
	defer p.wg.Done()
	for {
		a, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		refuse := p.cut || p.closed
		p.mu.Unlock()
		if refuse {
			if tc, ok := a.(*net.TCPConn); ok {
				tc.SetLinger(0)
			}
			a.Close()
			continue
		}
		b, err := net.DialTimeout("tcp", p.target, 2*time.Second)
		if err != nil {
			a.Close()
			continue
		}
		l := &link{a, b}
		p.mu.Lock()
		if p.cut || p.closed {
			p.mu.Unlock()
			l.close()
			continue
		}
		p.conns[l] = struct{}{}
		p.mu.Unlock()
		p.wg.Add(2)
		go p.pipe(l, a, b)
		go p.pipe(l, b, a)
	}
}

// chunk is data read at one time, to be written once its delay passed.
type chunk struct {
	data []byte
	due  time.Time
}

// pipe copies src to dst through a queue, so a delay holds data back
// without slowing the reader (bandwidth is kept; latency is added).
func (p *Proxy) pipe(l *link, src, dst net.Conn) {
	defer p.wg.Done()
	queue := make(chan chunk, 1024)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for c := range queue {
			if d := time.Until(c.due); d > 0 {
				time.Sleep(d)
			}
			if _, err := dst.Write(c.data); err != nil {
				l.close()
				for range queue {
				}
				return
			}
		}
	}()
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			p.mu.Lock()
			hole, delay, jitter := p.hole, p.delay, p.jitter
			p.mu.Unlock()
			if !hole {
				if jitter > 0 {
					delay += rand.N(jitter)
				}
				queue <- chunk{data: append([]byte(nil), buf[:n]...), due: time.Now().Add(delay)}
			}
		}
		if err != nil {
			if !errors.Is(err, io.EOF) {
				l.close()
			}
			close(queue)
			<-done
			if tc, ok := dst.(*net.TCPConn); ok && errors.Is(err, io.EOF) {
				tc.CloseWrite()
			}
			p.mu.Lock()
			delete(p.conns, l)
			p.mu.Unlock()
			return
		}
	}
}
