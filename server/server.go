package server

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"concord/crdt"
)

// Version is the Redis version Concord reports (HELLO, INFO): the one whose
// behaviour it reproduces. Clients use it to pick features.
const Version = "7.0.15"

// Defaults, as in Redis 7.0.
const (
	DefaultMaxClients             = 10000
	DefaultProtoMaxBulkLen        = 512 << 20
	DefaultClientQueryBufferLimit = 1 << 30
)

// Options configures a Server. Zero values mean Redis's defaults.
type Options struct {
	RequirePass string
	// RefuseFlush makes FLUSHALL and FLUSHDB answer an error: in a
	// multi-region deployment they remove, in every region, what this
	// region had seen, which some deployments would rather not allow.
	RefuseFlush            bool
	MaxClients             int   // default 10000
	ProtoMaxBulkLen        int64 // default 512 MB
	ClientQueryBufferLimit int64 // default 1 GB
	Timeout                int   // close clients idle this many seconds; 0 never
	// Origin is the node's region and incarnation, shown by INFO unless
	// the store reports its own (OriginReporter): a region decides its
	// incarnation at run time, the configured one is only a floor.
	Origin crdt.Origin
	// ConcordVersion is the build's version (shown by INFO).
	ConcordVersion string
	// NoActiveExpiry turns the active expiry sweep off (tests).
	NoActiveExpiry bool
	// Logger receives connection-level events; nil discards them.
	Logger *slog.Logger
	// Shutdown is called (once, on its own goroutine) when a client runs
	// SHUTDOWN; the owner stops the server and exits. Nil refuses SHUTDOWN.
	Shutdown func()
}

// settings are the parameters CONFIG SET can change at run time. Hot-path
// ones are atomics; the rest are guarded by mu.
type settings struct {
	maxBulk    atomic.Int64
	qbufLimit  atomic.Int64
	maxClients atomic.Int64
	timeout    atomic.Int64 // seconds
	pass       atomic.Pointer[string]
	obuf       atomic.Pointer[obufLimits]
	slowerThan atomic.Int64 // slowlog-log-slower-than, microseconds
	slowMaxLen atomic.Int64 // slowlog-max-len
}

// obufLimits are client-output-buffer-limit's classes. "normal" and
// "pubsub" are enforced (Concord has no replicas).
type obufLimits [3]obufLimit // normal, slave, pubsub

type obufLimit struct {
	hard, soft  uint64
	softSeconds int64
}

var defaultObuf = obufLimits{{0, 0, 0}, {256 << 20, 64 << 20, 60}, {32 << 20, 8 << 20, 60}}

// Server serves the Redis protocol on top of a Store.
type Server struct {
	store Store
	pipe  Pipeliner // store's async path, nil if it has none
	// fencer and replica are the store's region side, nil for a single
	// node; asserted once here, not per command.
	fencer  ReadFencer
	replica Replica
	// publisher carries PUBLISH to other nodes; nil: this node only.
	publisher Publisher
	hub       *hub
	opts      Options
	cfg       settings
	log       *slog.Logger
	table     map[string]*command // lowercase name -> command
	cmds      []*command          // top-level commands, sorted by name
	slow      slowLog

	mu      sync.Mutex
	ln      net.Listener
	clients map[int64]*client
	closed  bool
	done    chan struct{}
	wg      sync.WaitGroup

	baseCtx context.Context // canceled by Close: ends waits on the write path
	cancel  context.CancelFunc

	shutdownOnce sync.Once

	blk *blocker // blocked clients; nil if the store cannot notify writes

	nextID  atomic.Int64
	started time.Time
	stats   serverStats
}

// New returns a server for store. It does not listen yet: call Serve or
// ListenAndServe.
func New(store Store, opts Options) *Server {
	if opts.MaxClients <= 0 {
		opts.MaxClients = DefaultMaxClients
	}
	if opts.ProtoMaxBulkLen <= 0 {
		opts.ProtoMaxBulkLen = DefaultProtoMaxBulkLen
	}
	if opts.ClientQueryBufferLimit <= 0 {
		opts.ClientQueryBufferLimit = DefaultClientQueryBufferLimit
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	s := &Server{
		store:   store,
		opts:    opts,
		log:     opts.Logger,
		clients: make(map[int64]*client),
		done:    make(chan struct{}),
		started: time.Now(),
		hub:     newHub(),
	}
	s.baseCtx, s.cancel = context.WithCancel(context.Background())
	if p, ok := store.(Pipeliner); ok {
		s.pipe = p
	}
	if f, ok := store.(ReadFencer); ok {
		s.fencer = f
	}
	if r, ok := store.(Replica); ok {
		s.replica = r
	}
	if p, ok := store.(Publisher); ok {
		s.publisher = p
		p.SetPublishHandler(s.deliverPublication)
	}
	if wn, ok := store.(WriteNotifier); ok {
		s.blk = newBlocker(s)
		wn.NotifyWrites(s.blk.notify)
	}
	s.cfg.maxBulk.Store(opts.ProtoMaxBulkLen)
	s.cfg.qbufLimit.Store(opts.ClientQueryBufferLimit)
	s.cfg.maxClients.Store(int64(opts.MaxClients))
	s.cfg.timeout.Store(int64(opts.Timeout))
	pass := opts.RequirePass
	s.cfg.pass.Store(&pass)
	ob := defaultObuf
	s.cfg.obuf.Store(&ob)
	s.cfg.slowerThan.Store(10000)
	s.cfg.slowMaxLen.Store(128)
	s.buildTable()
	return s
}

// ErrServerClosed is returned by Serve after Close.
var ErrServerClosed = errors.New("server: closed")

// ListenAndServe listens on the TCP address addr and serves.
func (s *Server) ListenAndServe(addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	return s.Serve(ln)
}

// Serve accepts connections on ln until Close. It always returns a non-nil
// error; after Close it is ErrServerClosed.
func (s *Server) Serve(ln net.Listener) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		ln.Close()
		return ErrServerClosed
	}
	s.ln = ln
	s.mu.Unlock()
	if !s.opts.NoActiveExpiry {
		s.wg.Add(1)
		go s.expireLoop()
	}
	if s.blk != nil {
		s.wg.Add(1)
		go s.blk.run()
	}
	var backoff time.Duration
	for {
		nc, err := ln.Accept()
		if err != nil {
			select {
			case <-s.done:
				return ErrServerClosed
			default:
			}
			if errors.Is(err, net.ErrClosed) {
				return err
			}
			// Out of file descriptors and the like: wait and retry.
			backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
			s.log.Warn("accept", "err", err)
			time.Sleep(backoff)
			continue
		}
		backoff = 0
		s.accept(nc)
	}
}

// accept admits a connection or turns it away when maxclients is reached.
func (s *Server) accept(nc net.Conn) {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		nc.Close()
		return
	}
	if int64(len(s.clients)) >= s.cfg.maxClients.Load() {
		s.mu.Unlock()
		s.stats.rejectedConns.Add(1)
		// Best effort, like Redis: no handshake, one write, close.
		nc.SetWriteDeadline(time.Now().Add(time.Second))
		nc.Write([]byte("-ERR max number of clients reached\r\n"))
		nc.Close()
		return
	}
	c := newClient(s, nc)
	s.clients[c.id] = c
	s.wg.Add(1)
	s.mu.Unlock()
	s.stats.connsReceived.Add(1)
	go c.serve()
}

// Addr returns the listener's address, or nil before Serve.
func (s *Server) Addr() net.Addr {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ln == nil {
		return nil
	}
	return s.ln.Addr()
}

// Close stops accepting, disconnects every client and waits for their
// goroutines to end. It does not close the Store.
func (s *Server) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	close(s.done)
	s.cancel()
	var err error
	if s.ln != nil {
		err = s.ln.Close()
	}
	for _, c := range s.clients {
		c.nc.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
	return err
}

// removeClient unregisters c once its goroutine is done with it.
func (s *Server) removeClient(c *client) {
	s.mu.Lock()
	delete(s.clients, c.id)
	s.mu.Unlock()
}

// clientList returns the connected clients sorted by id.
func (s *Server) clientList() []*client {
	s.mu.Lock()
	out := make([]*client, 0, len(s.clients))
	for _, c := range s.clients {
		out = append(out, c)
	}
	s.mu.Unlock()
	sortClients(out)
	return out
}

func (s *Server) numClients() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.clients)
}

// ctx is the context write-path calls run under.
func (s *Server) ctx() context.Context { return s.baseCtx }

func (s *Server) requirePass() string { return *s.cfg.pass.Load() }

// port returns the listening TCP port, 0 if unknown.
func (s *Server) port() int {
	if a, ok := s.Addr().(*net.TCPAddr); ok {
		return a.Port
	}
	return 0
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
