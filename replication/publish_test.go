package replication

import (
	"context"
	"crypto/x509"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/url"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"concord/crdt"
	pb "concord/proto"
)

// originRegion is a Region that only knows its origin (what the Publish
// path asks of it).
type originRegion struct {
	Region
	o crdt.Origin
}

func (r originRegion) Origin() crdt.Origin { return r.o }

// serve serves srv on a loopback port until the test ends.
func serve(t *testing.T, srv pb.ReplicationServer) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	g := grpc.NewServer()
	pb.RegisterReplicationServer(g, srv)
	go g.Serve(ln)
	t.Cleanup(g.Stop)
	return ln.Addr().String()
}

func testManager(o crdt.Origin) *Manager {
	return &Manager{cfg: Config{Region: originRegion{o: o}, Name: "a", Logger: slog.New(slog.DiscardHandler),
		Clock: time.Now, Keepalive: time.Second}}
}

// A peer of protocol version 1 has no Publish RPC: the stream ends with
// Unimplemented (the publisher then leaves the peer alone and drops what
// is published for it), and nothing is ever sent to it.
func TestPublishToOldPeer(t *testing.T) {
	addr := serve(t, &pb.UnimplementedReplicationServer{}) // what a version 1 build answers
	m := testManager(originA)
	pu := newPublisher(m, Peer{Region: originB.Region, Name: "b", Addrs: []string{addr}})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := pu.session(ctx, addr); status.Code(err) != codes.Unimplemented {
		t.Fatalf("session with a version 1 peer: %v, want Unimplemented", err)
	}
	pu.enqueue(&pb.Publication{Channel: []byte("c"), Message: []byte("m"), OriginRegion: originA.Region})
	if s, d := pu.sent.Load(), pu.dropped.Load(); s != 0 || d != 1 || pu.up.Load() {
		t.Fatalf("sent %d dropped %d up %v, want 0 1 false", s, d, pu.up.Load())
	}
}

// The receiving end refuses a Publish stream it cannot trust to be
// exactly once or in a common version, and delivers what a good one
// carries.
func TestServicePublish(t *testing.T) {
	svc := NewService(originRegion{o: originB}, "b", func(r uint32) bool { return r == originA.Region }, nil, nil)
	var mu sync.Mutex
	var got []string
	svc.onPublication = func(p *pb.Publication) {
		mu.Lock()
		defer mu.Unlock()
		got = append(got, string(p.Channel)+"/"+string(p.Message))
	}
	addr := serve(t, svc)
	conn, err := grpc.NewClient("passthrough:///"+addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	open := func(h *pb.Hello, pubs ...*pb.Publication) error {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		st, err := pb.NewReplicationClient(conn).Publish(ctx)
		if err != nil {
			return err
		}
		if err := st.Send(&pb.PublishPush{Msg: &pb.PublishPush_Hello{Hello: h}}); err != nil {
			return err
		}
		m, err := st.Recv()
		if err != nil {
			return err
		}
		if m.GetAccepted().GetRegion() != originB.Region {
			return errors.New("not accepted")
		}
		for _, p := range pubs {
			if err := st.Send(&pb.PublishPush{Msg: &pb.PublishPush_Publication{Publication: p}}); err != nil {
				break
			}
		}
		st.CloseSend()
		_, err = st.Recv()
		return err
	}
	good := func(mut func(h *pb.Hello)) *pb.Hello {
		h := &pb.Hello{MinProtocol: PublishProtocol, MaxProtocol: MaxProtocol, Region: originA.Region, ToRegion: originB.Region, Name: "a"}
		if mut != nil {
			mut(h)
		}
		return h
	}
	pub := func(origin uint32, msg string) *pb.Publication {
		return &pb.Publication{Channel: []byte("ch"), Message: []byte(msg), OriginRegion: origin}
	}
	for _, tc := range []struct {
		name string
		h    *pb.Hello
		code codes.Code
	}{
		{"version 1 only", good(func(h *pb.Hello) { h.MinProtocol, h.MaxProtocol = 1, 1 }), codes.FailedPrecondition},
		{"not a peer", good(func(h *pb.Hello) { h.Region = 9 }), codes.PermissionDenied},
		{"meant for another region", good(func(h *pb.Hello) { h.ToRegion = 9 }), codes.InvalidArgument},
	} {
		if err := open(tc.h, pub(originA.Region, "x")); status.Code(err) != tc.code {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.code)
		}
	}
	// A relayed publication (another origin) ends the stream.
	if err := open(good(nil), pub(originA.Region, "1"), pub(7, "relayed"), pub(originA.Region, "2")); status.Code(err) != codes.InvalidArgument {
		t.Errorf("relayed publication: %v, want InvalidArgument", err)
	}
	if err := open(good(nil), pub(originA.Region, "3")); !errors.Is(err, io.EOF) {
		t.Errorf("good stream: %v", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if want := []string{"ch/1", "ch/3"}; len(got) != 2 || got[0] != want[0] || got[1] != want[1] {
		t.Errorf("delivered %q, want %q", got, want)
	}
	if n := svc.publishesReceived()[originA.Region]; n != 2 {
		t.Errorf("received counter %d, want 2", n)
	}
}

func TestCertRegion(t *testing.T) {
	u := func(s string) *url.URL { p, _ := url.Parse(s); return p }
	for _, tc := range []struct {
		uris []*url.URL
		want uint32
		ok   bool
	}{
		{[]*url.URL{u("concord://region/2")}, 2, true},
		{[]*url.URL{u("spiffe://x/y"), u("concord://region/4294967295")}, 4294967295, true},
		{nil, 0, false},
		{[]*url.URL{u("concord://region/1"), u("concord://region/2")}, 0, false},
		{[]*url.URL{u("concord://region/two")}, 0, false},
		{[]*url.URL{u("concord://region/4294967296")}, 0, false},
	} {
		got, err := CertRegion(&x509.Certificate{URIs: tc.uris})
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("%v: %d %v, want %d ok=%v", tc.uris, got, err, tc.want, tc.ok)
		}
	}
}
