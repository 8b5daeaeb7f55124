package region

import (
	"bufio"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"math/big"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	pb "concord/proto"
)

// Mutual TLS on the Raft port: members verify each other's certificates
// against the region's CA, for Raft and for forwarding alike.

// testCA is a certificate authority made up for one test.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pool *x509.CertPool
}

func newTestCA(t *testing.T, name string) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: name},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		KeyUsage:              x509.KeyUsageCertSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return &testCA{cert: cert, key: key, pool: pool}
}

// leaf issues a certificate for a node on 127.0.0.1, usable as server and
// as client.
func (ca *testCA) leaf(t *testing.T, name string, serial int64) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(serial),
		Subject:      pkix.Name{CommonName: name},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1")},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

// nodeTLS is a node's configuration: its certificate, trusting roots.
func nodeTLS(cert tls.Certificate, roots *x509.CertPool) *tls.Config {
	return &tls.Config{Certificates: []tls.Certificate{cert}, RootCAs: roots, ClientCAs: roots, MinVersion: tls.VersionTLS12}
}

// hello sends a forwarding HELLO over c and returns the node id answering.
func hello(c net.Conn) (string, error) {
	c.SetDeadline(time.Now().Add(5 * time.Second))
	buf, _ := appendFrame([]byte{forwardMagic}, &pb.Forward{Op: pb.Forward_OP_HELLO, Id: 1, NodeId: "probe"})
	if _, err := c.Write(buf); err != nil {
		return "", err
	}
	var r pb.ForwardReply
	if err := readFrame(bufio.NewReader(c), &r); err != nil {
		return "", err
	}
	return r.NodeId, nil
}

func TestMutualTLS(t *testing.T) {
	ca := newTestCA(t, "region CA")
	other := newTestCA(t, "another CA")
	// The outsider trusts the region's CA as well as its own: what keeps
	// it out is the members checking its certificate.
	both := x509.NewCertPool()
	both.AddCert(ca.cert)
	both.AddCert(other.cert)
	configs := map[string]*tls.Config{
		"n1": nodeTLS(ca.leaf(t, "n1", 11), ca.pool),
		"n2": nodeTLS(ca.leaf(t, "n2", 12), ca.pool),
		"n3": nodeTLS(ca.leaf(t, "n3", 13), ca.pool),
		"n4": nodeTLS(other.leaf(t, "n4", 14), both),
	}
	r := newTestRegionWith(t, 3, func(c *Config) { c.TLS = configs[c.NodeID] })
	l := r.leader()
	for _, n := range r.nodes {
		mustWrite(t, n, "SET", "k"+n.id, n.id) // followers forward over TLS
	}
	waitConverged(t, r.live()...)
	for _, n := range r.live() {
		if v, err := readVia(n, "kn1", 5*time.Second); err != nil || v != "n1" {
			t.Fatalf("read via %s: %q %v", n.id, v, err)
		}
	}

	// On the wire: a member's certificate is answered, another CA's and
	// plain TCP are not.
	addr := r.peers[l].Addr
	c, err := tls.Dial("tcp", addr, configs["n2"])
	if err != nil {
		t.Fatalf("dial with a member's certificate: %v", err)
	}
	if id, err := hello(c); err != nil || id != r.peers[l].ID {
		t.Fatalf("HELLO with a member's certificate: %q %v", id, err)
	}
	c.Close()
	// Go's client leaves out a certificate the server's CA list does not
	// name; present it anyway, so the server's verification is what says no.
	forced := configs["n4"].Clone()
	foreign := forced.Certificates[0]
	forced.Certificates = nil
	forced.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &foreign, nil }
	if c, err := tls.Dial("tcp", addr, forced); err != nil {
		t.Logf("foreign certificate refused at the handshake: %v", err)
	} else {
		// With TLS 1.3 the client finishes its handshake before the server
		// has checked the client's certificate; the refusal comes next.
		_, err := hello(c)
		var ne net.Error
		switch {
		case err == nil:
			t.Fatal("a certificate from another CA was answered")
		case errors.As(err, &ne) && ne.Timeout():
			t.Fatalf("foreign certificate: no refusal, only a timeout: %v", err)
		}
		t.Logf("foreign certificate refused: %v", err)
		c.Close()
	}
	if c, err := net.Dial("tcp", addr); err == nil {
		if id, err := hello(c); err == nil {
			t.Fatalf("plain TCP was answered by %s", id)
		}
		c.Close()
	} else {
		t.Fatal(err)
	}

	// A node with a certificate from another CA, added by mistake, never
	// takes part: the leader cannot reach it, it learns nothing, so it
	// never catches up and stays a non-voter (AddMember), in no quorum.
	j := r.addJoiner()
	out := r.nodes[j]
	if rep := admin(r.nodes[l], 3*time.Second, "ADD", r.peers[j].ID, r.peers[j].Addr); !rep.IsError() || !strings.Contains(string(rep.Str), "non-voter") {
		t.Fatalf("REGION ADD of an unreachable node: %q, want the not-caught-up error", rep.Str)
	}
	if s, ok := r.nodes[l].server(r.peers[j].ID); !ok || s.Suffrage != raft.Nonvoter {
		t.Fatalf("the unreachable node in the configuration: %+v %v, want a non-voter", s, ok)
	}
	mustWrite(t, r.nodes[l], "SET", "after-add", "1")
	if _, err := do2(out, 500*time.Millisecond, "SET", "from-outsider", "1"); err == nil {
		t.Fatal("the outsider acknowledged a write")
	}
	if st := out.Status(); st.LeaderID != "" || st.AppliedIndex != 0 || len(st.Servers) != 0 {
		t.Fatalf("the outsider took part: %+v", st)
	}
	f := r.others(l)[0]
	r.kill(f)
	// Two of the three voters remain: the non-voter is not counted.
	mustWrite(t, r.nodes[l], "SET", "one-down", "1")
	if st := out.Status(); st.LeaderID != "" || st.AppliedIndex != 0 {
		t.Fatalf("the outsider took part: %+v", st)
	}
	r.start(f)
	l = r.leaderAmong(0, 1, 2)
	if rep := admin(r.nodes[l], 10*time.Second, "REMOVE", r.peers[j].ID); rep.IsError() {
		t.Fatalf("REGION REMOVE: %s", rep.Str)
	}
	mustWrite(t, r.nodes[f], "SET", "after-remove", "1")
	waitConverged(t, r.nodes[0], r.nodes[1], r.nodes[2])
	if digest(out) == digest(r.nodes[l]) {
		t.Fatal("the outsider holds the region's state")
	}
}
