package region

import (
	"bufio"
	"crypto/tls"
	"errors"
	"net"
	"sync"
	"time"

	"github.com/hashicorp/raft"
)

// forwardMagic is the first byte of a forwarding connection. Raft's
// network transport starts every connection with an RPC type (0-4), so one
// listener serves both.
const forwardMagic = 'F'

// mux splits the node's listener between Raft, forwarding and broadcast
// connections by their first byte.
type mux struct {
	ln      net.Listener
	tls     *tls.Config
	dial    func(addr string, timeout time.Duration) (net.Conn, error)
	raftCh  chan net.Conn
	forward func(net.Conn)
	bcast   func(net.Conn)

	closeOnce sync.Once
	closed    chan struct{}
}

func newMux(ln net.Listener, tlsCfg *tls.Config, dial func(string, time.Duration) (net.Conn, error), forward, bcast func(net.Conn)) *mux {
	if dial == nil {
		dial = func(addr string, timeout time.Duration) (net.Conn, error) {
			return net.DialTimeout("tcp", addr, timeout)
		}
	}
	if tlsCfg != nil {
		srv := tlsCfg.Clone()
		srv.ClientAuth = tls.RequireAndVerifyClientCert
		if srv.ClientCAs == nil {
			srv.ClientCAs = srv.RootCAs
		}
		ln = tls.NewListener(ln, srv)
	}
	m := &mux{ln: ln, tls: tlsCfg, dial: dial, raftCh: make(chan net.Conn, 16),
		forward: forward, bcast: bcast, closed: make(chan struct{})}
	go m.serve()
	return m
}

func (m *mux) serve() {
	for {
		c, err := m.ln.Accept()
		if err != nil {
			select {
			case <-m.closed:
				return
			default:
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				time.Sleep(10 * time.Millisecond)
				continue
			}
			m.Close()
			return
		}
		go m.route(c)
	}
}

// route reads the first byte (completing a TLS handshake on the way) and
// hands the connection on.
func (m *mux) route(c net.Conn) {
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	br := bufio.NewReader(c)
	b, err := br.Peek(1)
	if err != nil {
		c.Close()
		return
	}
	c.SetReadDeadline(time.Time{})
	pc := &peekedConn{Conn: c, r: br}
	switch b[0] {
	case forwardMagic:
		br.Discard(1)
		m.forward(pc)
		return
	case broadcastMagic:
		br.Discard(1)
		m.bcast(pc)
		return
	}
	select {
	case m.raftCh <- pc:
	case <-m.closed:
		c.Close()
	}
}

// dialPeer connects to another node, over TLS if configured.
func (m *mux) dialPeer(addr string, timeout time.Duration) (net.Conn, error) {
	c, err := m.dial(addr, timeout)
	if err != nil {
		return nil, err
	}
	if m.tls == nil {
		return c, nil
	}
	cfg := m.tls.Clone()
	if cfg.ServerName == "" {
		if host, _, err := net.SplitHostPort(addr); err == nil {
			cfg.ServerName = host
		}
	}
	tc := tls.Client(c, cfg)
	tc.SetDeadline(time.Now().Add(timeout))
	if err := tc.Handshake(); err != nil {
		c.Close()
		return nil, err
	}
	tc.SetDeadline(time.Time{})
	return tc, nil
}

func (m *mux) Close() error {
	var err error
	m.closeOnce.Do(func() {
		close(m.closed)
		err = m.ln.Close()
	})
	return err
}

// raftLayer is the raft.StreamLayer over the mux.
type raftLayer struct {
	m         *mux
	advertise net.Addr
}

func (l *raftLayer) Accept() (net.Conn, error) {
	select {
	case c := <-l.m.raftCh:
		return c, nil
	case <-l.m.closed:
		return nil, errors.New("region: listener closed")
	}
}

func (l *raftLayer) Close() error   { return l.m.Close() }
func (l *raftLayer) Addr() net.Addr { return l.advertise }

func (l *raftLayer) Dial(address raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	return l.m.dialPeer(string(address), timeout)
}

// peekedConn replays what the mux peeked at.
type peekedConn struct {
	net.Conn
	r *bufio.Reader
}

func (c *peekedConn) Read(p []byte) (int, error) { return c.r.Read(p) }

// tcpAddr is an advertised address that need not be resolvable locally.
type tcpAddr string

func (a tcpAddr) Network() string { return "tcp" }
func (a tcpAddr) String() string  { return string(a) }
