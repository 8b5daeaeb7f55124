package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"math/big"
	"net"
	"net/url"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	pb "concord/proto"
	"concord/replication"
)

// Mutual TLS with region identity on the replication port: a region's
// node certificates name the region (URI SAN concord://region/<id>), and a
// peer is accepted only as the region its certificate names.

// regionCA is a certificate authority made up for one test.
type regionCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pool *x509.CertPool
}

func newRegionCA(t *testing.T, name string) *regionCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageCertSign, BasicConstraintsValid: true, IsCA: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return &regionCA{cert: cert, key: key, pool: pool}
}

// node issues a loopback node certificate naming region (0: none).
func (ca *regionCA) node(t *testing.T, name string, region uint32) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
	}
	if region != 0 {
		u, _ := url.Parse(fmt.Sprintf("%s%d", replication.RegionURIPrefix, region))
		tmpl.URIs = []*url.URL{u}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

func (ca *regionCA) config(cert tls.Certificate) *tls.Config {
	return &tls.Config{Certificates: []tls.Certificate{cert}, RootCAs: ca.pool, ClientCAs: ca.pool, MinVersion: tls.VersionTLS13}
}

// helloAs opens a replication stream to addr and sends a Hello claiming
// region from; it returns the first answer or the error ending the stream.
func helloAs(t *testing.T, addr string, creds credentials.TransportCredentials, from, to uint32) (*pb.Pull, error) {
	t.Helper()
	conn, err := grpc.NewClient("passthrough:///"+addr, grpc.WithTransportCredentials(creds))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	st, err := pb.NewReplicationClient(conn).Stream(ctx)
	if err != nil {
		return nil, err
	}
	h := &pb.Hello{MinProtocol: replication.MinProtocol, MaxProtocol: replication.MaxProtocol,
		Region: from, Incarnation: 1, Name: "probe", ToRegion: to, WallMs: time.Now().UnixMilli()}
	if err := st.Send(&pb.Push{Msg: &pb.Push_Hello{Hello: h}}); err != nil {
		_, err = st.Recv() // the status that ended the stream
		return nil, err
	}
	return st.Recv()
}

func TestReplicationRegionIdentity(t *testing.T) {
	ca := newRegionCA(t, "concord CA")
	certs := map[uint32]tls.Certificate{}
	for r := uint32(1); r <= 3; r++ {
		certs[r] = ca.node(t, fmt.Sprintf("region%d", r), r)
	}
	d := newDeployment(t, mrOptions{regions: 3, nodes: 1,
		tls: func(r, i int) *tls.Config { return ca.config(certs[uint32(r+1)]) }})

	// With the right certificates, replication works.
	d.mustDo(0, "SET", "k", "v")
	d.waitValue(1, "k", "v", 30*time.Second)
	d.waitValue(2, "k", "v", 30*time.Second)

	addr := d.regions[0].nodes[0].replAddr // region 1, bypassing the proxy
	// Control: region 2's certificate claiming region 2 is welcomed.
	if p, err := helloAs(t, addr, credentials.NewTLS(ca.config(certs[2])), 2, 1); err != nil || p.GetWelcome() == nil {
		t.Fatalf("region 2's certificate as region 2: %v %v", p, err)
	}
	// Region 3's certificate claiming region 2 is refused.
	p, err := helloAs(t, addr, credentials.NewTLS(ca.config(certs[3])), 2, 1)
	if status.Code(err) != codes.PermissionDenied || !strings.Contains(err.Error(), "names region 3, not 2") {
		t.Fatalf("region 3's certificate as region 2: %v %v, want PermissionDenied", p, err)
	}
	// A certificate naming no region is refused.
	p, err = helloAs(t, addr, credentials.NewTLS(ca.config(ca.node(t, "anonymous", 0))), 2, 1)
	if status.Code(err) != codes.PermissionDenied {
		t.Fatalf("certificate naming no region: %v %v, want PermissionDenied", p, err)
	}
	// A certificate from another CA naming region 2 is refused at the
	// handshake (presented anyway, so the server's check is what says no).
	other := newRegionCA(t, "another CA")
	foreign := other.node(t, "impostor", 2)
	fc := ca.config(foreign)
	fc.Certificates = nil
	fc.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &foreign, nil }
	if p, err := helloAs(t, addr, credentials.NewTLS(fc), 2, 1); err == nil || p.GetWelcome() != nil {
		t.Fatalf("another CA's certificate: %v %v, want refused", p, err)
	}
	// Without TLS on the client side nothing gets through.
	if p, err := helloAs(t, addr, insecure.NewCredentials(), 2, 1); err == nil || p.GetWelcome() != nil {
		t.Fatalf("plain connection: %v %v, want refused", p, err)
	}
}

// A node holding another region's certificate is refused both ways: as a
// client (its Hello claims its configured region) and as a server (the
// shipper meant to reach region 2, the certificate names region 3).
func TestReplicationRegionIdentityShipper(t *testing.T) {
	ca := newRegionCA(t, "concord CA")
	c1, wrong := ca.node(t, "region1", 1), ca.node(t, "region2-with-3s-cert", 3)
	d := newDeployment(t, mrOptions{regions: 2, nodes: 1, tls: func(r, i int) *tls.Config {
		if r == 0 {
			return ca.config(c1)
		}
		return ca.config(wrong)
	}})
	d.mustDo(0, "SET", "k", "v")
	lastErr := func(r int) string {
		_, m := d.regions[r].nodes[0].running()
		return m.Peers()[0].LastErr
	}
	waitUntil(t, 30*time.Second, "both shippers refused", func() bool {
		return strings.Contains(lastErr(0), "names region 3, not 2") &&
			strings.Contains(lastErr(1), "PermissionDenied")
	})
	for r := range 2 {
		_, m := d.regions[r].nodes[0].running()
		if got := m.Received(); len(got) != 0 {
			t.Errorf("region %d received streams: %+v", r+1, got)
		}
	}
}

// waitUntil polls cond until it holds, failing at the deadline.
func waitUntil(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
