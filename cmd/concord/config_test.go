package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"log/slog"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"

	"concord/crdt"
	"concord/region"
	"concord/replication"
)

// clearEnv unsets every CONCORD_* variable a test could inherit.
func clearEnv(t *testing.T) {
	t.Helper()
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(name, "CONCORD_") {
			t.Setenv(name, "") // restores the value after the test
			os.Unsetenv(name)
		}
	}
}

func writeFile(t *testing.T, text string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "concord.conf")
	if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestDefaults(t *testing.T) {
	clearEnv(t)
	c, err := loadConfig(nil, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	// No settings: the single in-memory node `make run` starts.
	if c.regionMode() || c.addr != "127.0.0.1:6379" || c.region != 1 || c.incarnation != 1 ||
		c.logLevel != slog.LevelInfo || c.metricsAddr != "" || c.timing != region.DefaultTiming {
		t.Errorf("defaults: %+v", c)
	}
}

// Each layer overrides the one below: defaults < file < environment < flags.
func TestPrecedence(t *testing.T) {
	clearEnv(t)
	file := writeFile(t, `
# comment
addr 127.0.0.1:7000
maxclients 10
timeout 5
region 2
loglevel debug
requirepass "from file"
`)
	t.Setenv("CONCORD_MAXCLIENTS", "20")
	t.Setenv("CONCORD_TIMEOUT", "6")
	t.Setenv("CONCORD_CONFIG", file)
	c, err := loadConfig([]string{"--timeout", "7", "--incarnation", "3"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	want := defaultConfig()
	want.configFile = file
	want.addr = "127.0.0.1:7000"    // file
	want.maxClients = 20            // env over file
	want.timeout = 7                // flag over env over file
	want.region = 2                 // file
	want.incarnation = 3            // flag
	want.logLevel = slog.LevelDebug // file
	want.requirePass = "from file"
	if !reflect.DeepEqual(c, want) {
		t.Errorf("got  %+v\nwant %+v", c, want)
	}

	// --config wins over CONCORD_CONFIG.
	other := writeFile(t, "addr 127.0.0.1:7100\n")
	c, err = loadConfig([]string{"--config", other}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if c.addr != "127.0.0.1:7100" || c.maxClients != 20 || c.region != 1 {
		t.Errorf("--config: %+v", c)
	}
}

// The highest layer that names peers defines them all.
func TestPeerLayers(t *testing.T) {
	clearEnv(t)
	file := writeFile(t, "node-id a\ndata-dir /tmp/x\npeer a 127.0.0.1:7001\npeer b 127.0.0.1:7002\n")
	peers := func(args ...string) []region.Peer {
		t.Helper()
		c, err := loadConfig(append([]string{"--config", file}, args...), io.Discard)
		if err != nil {
			t.Fatal(err)
		}
		return c.peers
	}
	p := func(kv ...string) []region.Peer {
		var ps []region.Peer
		for i := 0; i < len(kv); i += 2 {
			ps = append(ps, region.Peer{ID: kv[i], Addr: kv[i+1]})
		}
		return ps
	}
	if got, want := peers(), p("a", "127.0.0.1:7001", "b", "127.0.0.1:7002"); !reflect.DeepEqual(got, want) {
		t.Errorf("file: %v, want %v", got, want)
	}
	t.Setenv("CONCORD_PEERS", "a=127.0.0.1:7001, c=127.0.0.1:7003")
	if got, want := peers(), p("a", "127.0.0.1:7001", "c", "127.0.0.1:7003"); !reflect.DeepEqual(got, want) {
		t.Errorf("env: %v, want %v", got, want)
	}
	got := peers("--peer", "a=127.0.0.1:7001", "--peers", "d=127.0.0.1:7004,e=127.0.0.1:7005")
	if want := p("a", "127.0.0.1:7001", "d", "127.0.0.1:7004", "e", "127.0.0.1:7005"); !reflect.DeepEqual(got, want) {
		t.Errorf("flags: %v, want %v", got, want)
	}
	// A flag that is not about peers leaves the environment's.
	if got, want := peers("--timeout", "1"), p("a", "127.0.0.1:7001", "c", "127.0.0.1:7003"); !reflect.DeepEqual(got, want) {
		t.Errorf("other flag: %v, want %v", got, want)
	}
	// An empty variable is as good as unset.
	t.Setenv("CONCORD_PEERS", " ")
	if got, want := peers(), p("a", "127.0.0.1:7001", "b", "127.0.0.1:7002"); !reflect.DeepEqual(got, want) {
		t.Errorf("empty env: %v, want %v", got, want)
	}
}

// Peer regions come from a file, CONCORD_PEER_REGIONS or flags; a layer
// that names them replaces those below, like peer. With peers the region
// is no longer solo.
func TestPeerRegions(t *testing.T) {
	clearEnv(t)
	file := writeFile(t, "node-id a\ndata-dir /tmp/x\npeer a 127.0.0.1:7001\nrepl-addr 127.0.0.1:8001\n"+
		"region-name us\npeer-region 2 eu 127.0.0.1:8002,127.0.0.1:8003\npeer-region 3 ap 127.0.0.1:8004\n")
	load := func(args ...string) *config {
		t.Helper()
		c, err := loadConfig(append([]string{"--config", file}, args...), io.Discard)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	c := load()
	want := []replication.Peer{{Region: 2, Name: "eu", Addrs: []string{"127.0.0.1:8002", "127.0.0.1:8003"}},
		{Region: 3, Name: "ap", Addrs: []string{"127.0.0.1:8004"}}}
	if !reflect.DeepEqual(c.peerRegions, want) || c.name() != "us" || !c.replicates() {
		t.Errorf("file: %+v name %q", c.peerRegions, c.name())
	}
	rc, err := regionConfig(c, slog.New(slog.DiscardHandler), nil)
	if err != nil || rc.Solo || rc.ReplLog.MaxBytes != crdt.DefaultLogBytes {
		t.Errorf("region config with peer regions: solo %v, log %+v, %v", rc.Solo, rc.ReplLog, err)
	}
	t.Setenv("CONCORD_PEER_REGIONS", "4 sa 127.0.0.1:8005; 5 af 127.0.0.1:8006")
	if got := load().peerRegions; len(got) != 2 || got[0].Name != "sa" || got[1].Region != 5 {
		t.Errorf("env: %+v", got)
	}
	if got := load("--peer-region", "6 me 127.0.0.1:8007", "--repl-log-size", "1gb").peerRegions; len(got) != 1 || got[0].Name != "me" {
		t.Errorf("flag: %+v", got)
	}
	if c := load("--repl-log-size", "2mb"); c.replLogSize != 2<<20 {
		t.Errorf("repl-log-size: %d", c.replLogSize)
	}
}

func TestRegionMode(t *testing.T) {
	clearEnv(t)
	c, err := loadConfig([]string{"--node-id", "n1", "--data-dir", "/tmp/d", "--peer", "n1=127.0.0.1:7001", "--peer", "n2=127.0.0.1:7002"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	// raft-addr comes from the node's own peer entry.
	if !c.regionMode() || c.raftAddr != "127.0.0.1:7001" {
		t.Errorf("region mode %v, raft-addr %q", c.regionMode(), c.raftAddr)
	}
	rc, err := regionConfig(c, slog.New(slog.DiscardHandler), nil)
	if err != nil {
		t.Fatal(err)
	}
	if rc.NodeID != "n1" || rc.RaftAddr != "127.0.0.1:7001" || rc.DataDir != "/tmp/d" || len(rc.Peers) != 2 ||
		rc.Durability != region.DurabilityFsync || rc.Timing != region.DefaultTiming || rc.SnapshotThreshold != 8192 ||
		rc.TLS != nil || rc.Metrics != nil || !rc.Solo || rc.Origin.Region != 1 {
		t.Errorf("region config %+v", rc)
	}
	// A node added later lists the existing voters, not itself, or none.
	for _, peers := range []string{"n1=127.0.0.1:7001", ""} {
		c, err := loadConfig([]string{"--node-id", "n4", "--data-dir", "/tmp/d", "--raft-addr", "127.0.0.1:7004", "--peers", peers}, io.Discard)
		if err != nil || !c.regionMode() || c.inPeers() {
			t.Errorf("joining node, peers %q: %v", peers, err)
		}
	}
}

func TestValidate(t *testing.T) {
	clearEnv(t)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--data-dir", "/tmp/d"}, "needs node-id"},
		{[]string{"--node-id", "n1", "--peer", "n1=127.0.0.1:1"}, "needs data-dir"},
		{[]string{"--node-id", "n1", "--data-dir", "/d"}, "needs raft-addr"},
		{[]string{"--node-id", "n1", "--data-dir", "/d", "--peer", "n2=127.0.0.1:2"}, "needs raft-addr"},
		{[]string{"--node-id", "n1", "--data-dir", "/d", "--peer", "n1=127.0.0.1:1", "--raft-addr", "127.0.0.1:9"}, "differs"},
		{[]string{"--peers", "n1=127.0.0.1:1,n1=127.0.0.1:2"}, "listed twice"},
		{[]string{"--peer", "n1"}, "not id=addr"},
		{[]string{"--peer", "n1=nohost"}, "not host:port"},
		{[]string{"--node-id", "a b"}, "without blanks"},
		{[]string{"--tls-cert-file", "x"}, "all three or none"},
		{[]string{"--tls-cert-file", "x", "--tls-key-file", "y", "--tls-ca-cert-file", "z"}, "need region mode"},
		{[]string{"--leader-lease-timeout", "1s"}, "must not exceed heartbeat-timeout"},
		{[]string{"--heartbeat-timeout", "1s"}, "election-timeout"},
		{[]string{"--heartbeat-timeout", "1ms"}, "at least 5ms"},
		{[]string{"--maxclients", "0"}, "not between 1"},
		{[]string{"--proto-max-bulk-len", "1000"}, "less than the minimum"},
		{[]string{"--proto-max-bulk-len", "12xb"}, "not a memory amount"},
		{[]string{"--region", "5000000000"}, "between 0 and 4294967295"},
		{[]string{"--loglevel", "verbose"}, "not debug, info, warn or error"},
		{[]string{"--log-format", "xml"}, "not text or json"},
		{[]string{"--durability", "none"}, "unknown durability"},
		{[]string{"--snapshot-threshold", "0"}, "positive"},
		{[]string{"stray"}, "unexpected arguments"},
		{[]string{"--peer-region", "2 eu 127.0.0.1:8002"}, "needs region mode"},
		{[]string{"--node-id", "n1", "--data-dir", "/d", "--peer", "n1=127.0.0.1:1", "--peer-region", "2 eu 127.0.0.1:8002"}, "needs repl-addr"},
		{[]string{"--node-id", "n1", "--data-dir", "/d", "--peer", "n1=127.0.0.1:1", "--repl-addr", "127.0.0.1:8001", "--peer-region", "1 us 127.0.0.1:8002"}, "own id"},
		{[]string{"--peer-region", "2 eu"}, "is not"},
		{[]string{"--peer-region", "x eu 127.0.0.1:8002"}, "not an integer"},
		{[]string{"--peer-region", "2 e,u 127.0.0.1:8002"}, "region name"},
		{[]string{"--peer-region", "2 eu 127.0.0.1:8002;2 ap 127.0.0.1:8003"}, "listed twice"},
		{[]string{"--peer-region", "2 eu nohost"}, "not host:port"},
		{[]string{"--repl-log-size", "10"}, "less than the minimum"},
	} {
		_, err := loadConfig(tc.args, io.Discard)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: error %v, want one containing %q", tc.args, err, tc.want)
		}
	}
	t.Setenv("CONCORD_MAXCLIENTS", "ten")
	if _, err := loadConfig(nil, io.Discard); err == nil || !strings.Contains(err.Error(), "CONCORD_MAXCLIENTS") {
		t.Errorf("bad environment value: %v", err)
	}
}

func TestFileValues(t *testing.T) {
	clearEnv(t)
	file := writeFile(t, `MaxClients 42
proto-max-bulk-len 2mb
requirepass 'it\'s'
requirepass "tab\there \"q\" \x41"
log-format JSON
metrics-addr ""
heartbeat-timeout 1s
election-timeout 2s
leader-lease-timeout 500ms
`)
	c, err := loadConfig([]string{"--config", file}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if c.maxClients != 42 || c.maxBulk != 2<<20 || c.requirePass != "tab\there \"q\" A" || c.logFormat != "json" ||
		c.timing.HeartbeatTimeout != time.Second || c.timing.ElectionTimeout != 2*time.Second ||
		c.timing.LeaderLeaseTimeout != 500*time.Millisecond || c.timing.CommitTimeout != region.DefaultTiming.CommitTimeout {
		t.Errorf("config %+v", c)
	}
}

// Errors in a file name the file and line.
func TestFileErrors(t *testing.T) {
	clearEnv(t)
	for _, tc := range []struct{ text, want string }{
		{"addr 127.0.0.1:1\nbogus 1\n", ":2: unknown directive \"bogus\""},
		{"\n\nbind 127.0.0.1\n", ":3: unknown directive \"bind\": use addr <host:port>"},
		{"maxclients ten\n", ":1: maxclients: \"ten\" is not an integer"},
		{"maxclients 1 2\n", ":1: maxclients takes <n>"},
		{"peer n1\n", ":1: peer takes <id> <raft-addr>"},
		{"requirepass \"open\n", ":1: unbalanced quotes"},
		{"requirepass \"a\"b\n", ":1: closing quote must be followed by a space"},
		{"timeout\n", ":1: timeout takes <seconds>"},
	} {
		file := writeFile(t, tc.text)
		_, err := loadConfig([]string{"--config", file}, io.Discard)
		if err == nil || !strings.Contains(err.Error(), file+tc.want) {
			t.Errorf("%q: error %v, want %q", tc.text, err, file+tc.want)
		}
	}
	if _, err := loadConfig([]string{"--config", "/nonexistent/concord.conf"}, io.Discard); err == nil {
		t.Error("missing file accepted")
	}
}

func TestSplitArgs(t *testing.T) {
	for _, tc := range []struct {
		line string
		want []string
	}{
		{"a b  c", []string{"a", "b", "c"}},
		{"a\t\"b c\"", []string{"a", "b c"}},
		{`a "" ''`, []string{"a", "", ""}},
		{`a "\n\r\t\b\a\\\"\x41\x4" z`, []string{"a", "\n\r\t\b\a\\\"Ax4", "z"}},
		{`a 'it\'s \n'`, []string{"a", `it's \n`}},
		{`a"b"`, []string{`a"b"`}},
	} {
		got, err := splitArgs(tc.line)
		if err != nil || !reflect.DeepEqual(got, tc.want) {
			t.Errorf("splitArgs(%q) = %q, %v; want %q", tc.line, got, err, tc.want)
		}
	}
	for _, line := range []string{`a "b`, `a 'b`, `a "b"c`, `a "b\"`} {
		if got, err := splitArgs(line); err == nil {
			t.Errorf("splitArgs(%q) = %q, want an error", line, got)
		}
	}
}

func FuzzParseFile(f *testing.F) {
	example, err := os.ReadFile("../../deploy/concord.conf.example")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(string(example))
	f.Add("requirepass \"a\\x41\" \npeer a 127.0.0.1:1\n")
	f.Fuzz(func(t *testing.T, text string) {
		c := defaultConfig()
		if err := c.parseFile("f", text); err != nil && !strings.HasPrefix(err.Error(), "f:") {
			t.Errorf("error without file:line: %v", err)
		}
	})
}

// The shipped example is a valid configuration that mentions every
// directive, and the documentation describes every directive.
func TestExampleAndDocs(t *testing.T) {
	clearEnv(t)
	const example = "../../deploy/concord.conf.example"
	c, err := loadConfig([]string{"--config", example}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if !c.regionMode() || c.nodeID != "n1" || len(c.peers) != 3 || c.requirePass != "change me" || c.metricsAddr == "" {
		t.Errorf("example loads as %+v", c)
	}
	text, err := os.ReadFile(example)
	if err != nil {
		t.Fatal(err)
	}
	doc, err := os.ReadFile("../../docs/configuration.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range directives {
		if !regexp.MustCompile(`(?m)^(# )?` + regexp.QuoteMeta(d.name) + ` `).Match(text) {
			t.Errorf("%s: not in %s", d.name, example)
		}
		if !strings.Contains(string(doc), "| `"+d.name+"` |") {
			t.Errorf("%s: not in the directive table of docs/configuration.md", d.name)
		}
	}
	// With its TLS lines uncommented (and files that exist), it is still valid.
	dir := t.TempDir()
	ca := testCA(t, dir)
	cert, key := testCert(t, dir, ca, "n1", "127.0.0.1")
	tlsText := regexp.MustCompile(`(?m)^# (tls-\S+) .*$`).ReplaceAllStringFunc(string(text), func(line string) string {
		switch {
		case strings.Contains(line, "tls-cert-file"):
			return "tls-cert-file " + cert
		case strings.Contains(line, "tls-key-file"):
			return "tls-key-file " + key
		case strings.Contains(line, "tls-region-identity"):
			return strings.TrimPrefix(line, "# ")
		}
		return "tls-ca-cert-file " + filepath.Join(dir, "ca.crt")
	})
	c, err = loadConfig([]string{"--config", writeFile(t, tlsText)}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if c.tlsCert != cert || c.tlsKey != key {
		t.Errorf("uncommented TLS lines not read: %+v", c)
	}
	if conf, err := c.loadTLS(); err != nil || conf == nil {
		t.Errorf("loadTLS: %v", err)
	}
}

// The TLS configuration authenticates both sides: a peer with a certificate
// the CA signed gets through, one without a certificate or with another
// CA's does not.
func TestMutualTLS(t *testing.T) {
	dir := t.TempDir()
	ca := testCA(t, dir)
	load := func(name string) *tls.Config {
		t.Helper()
		cert, key := testCert(t, dir, ca, name, "127.0.0.1")
		c := &config{tlsCert: cert, tlsKey: key, tlsCA: filepath.Join(dir, "ca.crt")}
		conf, err := c.loadTLS()
		if err != nil {
			t.Fatal(err)
		}
		return conf
	}
	srv, cli := load("n1"), load("n2")

	handshake := func(client *tls.Config) error {
		l, err := tls.Listen("tcp", "127.0.0.1:0", srv)
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		srvErr := make(chan error, 1)
		go func() {
			nc, err := l.Accept()
			if err != nil {
				srvErr <- err
				return
			}
			defer nc.Close()
			nc.SetDeadline(time.Now().Add(5 * time.Second))
			if err := nc.(*tls.Conn).Handshake(); err != nil {
				srvErr <- err
				return
			}
			_, err = nc.Write([]byte("y"))
			srvErr <- err
		}()
		client = client.Clone()
		client.ServerName = "127.0.0.1"
		nc, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", l.Addr().String(), client)
		if err == nil {
			nc.SetDeadline(time.Now().Add(5 * time.Second))
			_, err = nc.Read(make([]byte, 1))
			nc.Close()
		}
		// The server's verdict decides: under TLS 1.3 the client finishes
		// its handshake before the server has checked its certificate.
		if sErr := <-srvErr; sErr != nil {
			return sErr
		}
		return err
	}
	if err := handshake(cli); err != nil {
		t.Errorf("signed peer: %v", err)
	}
	noCert := cli.Clone()
	noCert.Certificates = nil
	if err := handshake(noCert); err == nil || !strings.Contains(err.Error(), "didn't provide a certificate") {
		t.Errorf("peer without a certificate: %v", err)
	}
	otherDir := t.TempDir()
	otherCA := testCA(t, otherDir)
	rogueCert, rogueKey := testCert(t, otherDir, otherCA, "rogue", "127.0.0.1")
	pair, err := tls.LoadX509KeyPair(rogueCert, rogueKey)
	if err != nil {
		t.Fatal(err)
	}
	rogue := cli.Clone()
	rogue.Certificates = []tls.Certificate{pair}
	if err := handshake(rogue); err == nil || !strings.Contains(err.Error(), "unknown authority") {
		t.Errorf("peer signed by another CA: %v", err)
	}
}

// testCA writes dir/ca.crt and returns the CA.
func testCA(t *testing.T, dir string) *testIssuer {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "test ca"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IsCA:                  true,
		KeyUsage:              x509.KeyUsageCertSign,
		BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	writePEM(t, filepath.Join(dir, "ca.crt"), "CERTIFICATE", der)
	cert, _ := x509.ParseCertificate(der)
	return &testIssuer{cert, key}
}

type testIssuer struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
}

// testCert writes a certificate for name (valid for server and client
// authentication at ip) signed by ca, and returns its and its key's paths.
func testCert(t *testing.T, dir string, ca *testIssuer, name, ip string) (string, string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: name},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		IPAddresses:  []net.IP{net.ParseIP(ip)},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certPath, keyPath := filepath.Join(dir, name+".crt"), filepath.Join(dir, name+".key")
	writePEM(t, certPath, "CERTIFICATE", der)
	writePEM(t, keyPath, "EC PRIVATE KEY", kder)
	return certPath, keyPath
}

func writePEM(t *testing.T, path, typ string, der []byte) {
	t.Helper()
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
}
