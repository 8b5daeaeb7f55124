package replication

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"concord/crdt"
	pb "concord/proto"
)

// Region is what replication needs from the local region; region.Node
// implements it. Every method may be called from many goroutines.
type Region interface {
	// Origin is the origin the region's own writes carry.
	Origin() crdt.Origin
	// ReplView runs fn with the region's replica under its read lock.
	ReplView(fn func(r *crdt.Replica))
	// ProposeRemote and ProposeChunk submit one unit through the region's
	// write path; units submitted from one goroutine apply in order. The
	// result has one integer reply per batch (crdt.MergeOutcome), or two
	// for a chunk (bytes staged, 1 if joined).
	ProposeRemote(batches [][]byte) <-chan crdt.Result
	ProposeChunk(c crdt.Chunk) <-chan crdt.Result
	// ReadFence returns once the local view reflects every write the
	// region acknowledged before the call.
	ReadFence(ctx context.Context) error
	// Progress returns the applied index and a channel closed when it
	// next advances.
	Progress() (applied uint64, changed <-chan struct{})
	// LeaderWatch reports whether this node leads its region and returns a
	// channel closed at the next change.
	LeaderWatch() (leader bool, changed <-chan struct{})
}

// Service is the receiving end of replication: the gRPC Replication
// service every node serves. A stream may arrive at any node of the
// region; a follower forwards what it proposes to its leader.
type Service struct {
	pb.UnimplementedReplicationServer

	region Region
	name   string
	allow  func(region uint32) bool
	log    *slog.Logger
	clock  func() time.Time
	depth  int
	// keepalive, if positive, drops a stream that sent nothing for that
	// long while nothing of it was pending (see Config.Keepalive).
	keepalive time.Duration
	silent    atomic.Uint64 // streams dropped as silent
	// identity: the claimed region must be the client certificate's
	// (mutual TLS; see identity.go).
	identity bool
	// onPublication handles what Publish streams bring (Manager.fromPeer).
	onPublication func(*pb.Publication)

	pubMu   sync.Mutex
	pubRecv map[uint32]*atomic.Uint64 // publications received, per sending region

	mu      sync.Mutex
	streams map[*streamState]struct{}
	totals  map[uint32]*ReceiverStats // per sending region, finished streams
}

type streamState struct {
	mu  sync.Mutex
	rcv *Receiver

	// Liveness, by the wall clock (I/O edge, not state): when the sender
	// was last heard, and how many received messages await their ack.
	heard   atomic.Int64 // unix ns
	pending atomic.Int64
}

// errSilent ends a stream whose sender went quiet.
var errSilent = errors.New("replication: sender silent past the keepalive; dropping the stream")

// NewService returns the receiving end for region. allow, if not nil,
// decides which sender regions are accepted.
func NewService(region Region, name string, allow func(uint32) bool, log *slog.Logger, clock func() time.Time) *Service {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if clock == nil {
		clock = time.Now
	}
	return &Service{region: region, name: name, allow: allow, log: log, clock: clock, depth: 256,
		streams: map[*streamState]struct{}{}, totals: map[uint32]*ReceiverStats{}}
}

// helloTimeout bounds how long a new stream may stay silent.
const helloTimeout = 10 * time.Second

// awaitHello reads a new stream's first message, which must be a Hello,
// within helloTimeout. what names the RPC in the error.
func awaitHello[M interface{ GetHello() *pb.Hello }](recv func() (M, error), what string) (*pb.Hello, error) {
	first := make(chan M, 1)
	errc := make(chan error, 1)
	go func() {
		m, err := recv()
		if err != nil {
			errc <- err
			return
		}
		first <- m
	}()
	select {
	case m := <-first:
		if h := m.GetHello(); h != nil {
			return h, nil
		}
		return nil, status.Errorf(codes.InvalidArgument, "replication: %s must start with Hello", what)
	case err := <-errc:
		return nil, err
	case <-time.After(helloTimeout):
		return nil, status.Error(codes.DeadlineExceeded, "replication: no Hello")
	}
}

// Stream implements pb.ReplicationServer.
func (s *Service) Stream(st pb.Replication_StreamServer) error {
	ctx, cancel := context.WithCancel(st.Context())
	defer cancel()
	hello, err := awaitHello(st.Recv, "stream")
	if err != nil {
		return err
	}
	if s.allow != nil && !s.allow(hello.Region) {
		return status.Errorf(codes.PermissionDenied, "replication: region %d is not a configured peer of region %d", hello.Region, s.region.Origin().Region)
	}
	if s.identity {
		if err := clientRegion(st.Context(), hello.Region); err != nil {
			s.log.Error("replication stream refused", "from", hello.Name, "region", hello.Region, "err", err)
			return err
		}
	}
	fctx, fcancel := context.WithTimeout(ctx, 5*time.Second)
	err = s.region.ReadFence(fctx)
	fcancel()
	if err != nil {
		return status.Errorf(codes.Unavailable, "replication: region not ready: %v", err)
	}
	ss := &streamState{rcv: NewReceiver(s.region.Origin(), s.name, Viewer(s.region.ReplView))}
	welcome, err := ss.rcv.Hello(hello, s.clock().UnixMilli())
	if err != nil {
		code := codes.InvalidArgument
		if errors.Is(err, ErrVersion) {
			code = codes.FailedPrecondition
		}
		return status.Error(code, err.Error())
	}
	if err := st.Send(welcome); err != nil {
		return err
	}
	s.mu.Lock()
	s.streams[ss] = struct{}{}
	s.mu.Unlock()
	defer s.finish(ss)
	s.log.Info("replication stream opened", "from", hello.Name, "region", hello.Region, "incarnation", hello.Incarnation)

	// The reader proposes in stream order; the acker waits for each
	// outcome in the same order and acknowledges it. The queue between
	// them is the receiver's pipeline depth.
	queue := make(chan pendingResult, s.depth)
	ackErr := make(chan error, 1)
	go func() { ackErr <- s.ackLoop(ctx, st, ss, queue) }()
	readErr := make(chan error, 1)
	go func() {
		err := s.readLoop(ctx, st, ss, queue)
		close(queue)
		readErr <- err
	}()
	silent := make(chan error, 1)
	if s.keepalive > 0 {
		go s.watch(ctx, ss, silent)
	}
	select {
	case err := <-silent:
		cancel()
		return s.streamError(hello, err)
	case err := <-readErr:
		if err != nil {
			cancel()
			<-ackErr
			return s.streamError(hello, err)
		}
		return s.streamError(hello, <-ackErr)
	case err := <-ackErr:
		if err == nil { // the queue was closed: the reader is done
			return s.streamError(hello, <-readErr)
		}
		// Nothing more can be acknowledged (a proposal failed or was
		// refused): end the stream now rather than when the sender next
		// writes or gives up waiting for acks. Returning ends the reader's
		// Recv; cancel ends its wait on the queue.
		cancel()
		return s.streamError(hello, err)
	}
}

type pendingResult struct {
	ch    <-chan crdt.Result // nil: nothing proposed
	chunk bool
	n     int // batches proposed
}

// watch reports errSilent once the sender has sent nothing for the
// keepalive while nothing it sent was pending here: a live sender pings at
// least every second when idle, so such a stream's link is dead (a
// blackholed link is otherwise noticed only by gRPC's keepalive, 20 s or
// more). A slow apply here does not count: the sender waits for it.
func (s *Service) watch(ctx context.Context, ss *streamState, silent chan<- error) {
	t := time.NewTicker(max(s.keepalive/4, time.Millisecond))
	defer t.Stop()
	for {
		select {
		case <-t.C:
			if ss.pending.Load() == 0 && time.Since(time.Unix(0, ss.heard.Load())) > s.keepalive {
				s.silent.Add(1)
				silent <- errSilent
				return
			}
		case <-ctx.Done():
			return
		}
	}
}

func (s *Service) readLoop(ctx context.Context, st pb.Replication_StreamServer, ss *streamState, queue chan<- pendingResult) error {
	ss.heard.Store(time.Now().UnixNano())
	for {
		m, err := st.Recv()
		if err != nil {
			return err
		}
		ss.pending.Add(1)
		ss.heard.Store(time.Now().UnixNano())
		ss.mu.Lock()
		p, err := ss.rcv.Step(m)
		ss.mu.Unlock()
		if err != nil {
			return err
		}
		var pr pendingResult
		switch {
		case p.Chunk != nil:
			pr = pendingResult{ch: s.region.ProposeChunk(*p.Chunk), chunk: true}
		case len(p.Batches) > 0:
			pr = pendingResult{ch: s.region.ProposeRemote(p.Batches), n: len(p.Batches)}
		}
		select {
		case queue <- pr:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

func (s *Service) ackLoop(ctx context.Context, st pb.Replication_StreamServer, ss *streamState, queue <-chan pendingResult) error {
	for pr := range queue {
		var a Applied
		if pr.ch != nil {
			select {
			case res := <-pr.ch:
				a = appliedFrom(res, pr)
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		ss.mu.Lock()
		ack, err := ss.rcv.Done(a, s.clock().UnixMilli())
		ss.mu.Unlock()
		if err != nil {
			return err
		}
		if err := st.Send(ack); err != nil {
			return err
		}
		// Heard as of now: the sender's answer to this ack may take a
		// round trip.
		ss.heard.Store(time.Now().UnixNano())
		ss.pending.Add(-1)
	}
	return nil
}

// appliedFrom reads a region unit's result.
func appliedFrom(res crdt.Result, pr pendingResult) Applied {
	if res.Err != nil {
		return Applied{Err: res.Err}
	}
	if pr.chunk {
		if len(res.Replies) == 1 && res.Replies[0].IsError() {
			return Applied{Err: fmt.Errorf("replication: chunk refused: %s", res.Replies[0].Str)}
		}
		if len(res.Replies) != 2 {
			return Applied{Err: fmt.Errorf("replication: chunk unit answered %d replies", len(res.Replies))}
		}
		return Applied{Staged: uint64(res.Replies[0].Int), Joined: res.Replies[1].Int == 1}
	}
	if len(res.Replies) != pr.n {
		return Applied{Err: fmt.Errorf("replication: remote unit answered %d replies for %d batches", len(res.Replies), pr.n)}
	}
	a := Applied{Outcomes: make([]crdt.MergeOutcome, len(res.Replies))}
	for i, r := range res.Replies {
		a.Outcomes[i] = crdt.MergeOutcome(r.Int)
		if a.Outcomes[i] == crdt.Rejected && len(r.Str) > 0 {
			if a.Reasons == nil {
				a.Reasons, a.Details = make([]crdt.RejectReason, len(res.Replies)), make([]string, len(res.Replies))
			}
			reason, detail, _ := strings.Cut(string(r.Str), ": ")
			a.Reasons[i], a.Details[i] = crdt.RejectReason(reason), detail
		}
	}
	return a
}

// streamError turns why a stream ended into its gRPC status.
func (s *Service) streamError(h *pb.Hello, err error) error {
	if err == nil || errors.Is(err, context.Canceled) {
		return nil
	}
	if _, ok := status.FromError(err); ok && !errors.Is(err, ErrProtocol) {
		return err
	}
	var rej *RejectError
	if errors.As(err, &rej) {
		s.log.Warn("replication stream ended: batch refused", "from", h.Name, "region", h.Region, "reason", rej.Reason, "err", err)
		code := codes.Aborted // gap, missing dependency: the sender resumes from the vector
		if rej.Reason == crdt.RejectCorrupt {
			code = codes.InvalidArgument
		}
		return status.Error(code, err.Error())
	}
	s.log.Warn("replication stream ended", "from", h.Name, "region", h.Region, "err", err)
	if errors.Is(err, ErrProtocol) {
		return status.Error(codes.InvalidArgument, err.Error())
	}
	return status.Error(codes.Aborted, err.Error())
}

func (s *Service) finish(ss *streamState) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.streams, ss)
	ss.mu.Lock()
	st := ss.rcv.Stats()
	ss.mu.Unlock()
	t := s.totals[st.Peer.Region]
	if t == nil {
		t = &ReceiverStats{}
		s.totals[st.Peer.Region] = t
	}
	addReceiverStats(t, st)
}

func addReceiverStats(t *ReceiverStats, st ReceiverStats) {
	t.Peer, t.PeerName = st.Peer, st.PeerName
	t.Batches += st.Batches
	t.Bytes += st.Bytes
	t.Skipped += st.Skipped
	t.Merged += st.Merged
	t.Duplicates += st.Duplicates
	t.Chunks += st.Chunks
	t.Joined += st.Joined
	for i := range t.Rejected {
		t.Rejected[i] += st.Rejected[i]
	}
	if st.LastTimeMs > t.LastTimeMs {
		t.LastTimeMs, t.LastWallMs = st.LastTimeMs, st.LastWallMs
	}
}

// ReceiverTotals returns, per sending region, the figures of every stream
// this node received from it (open ones included).
func (s *Service) ReceiverTotals() map[uint32]ReceiverStats {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[uint32]ReceiverStats{}
	for r, t := range s.totals {
		out[r] = *t
	}
	for ss := range s.streams {
		ss.mu.Lock()
		st := ss.rcv.Stats()
		ss.mu.Unlock()
		t := out[st.Peer.Region]
		addReceiverStats(&t, st)
		out[st.Peer.Region] = t
	}
	return out
}
