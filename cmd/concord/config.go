package main

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	"concord/crdt"
	"concord/region"
	"concord/replication"
	"concord/server"
)

// Configuration comes in four layers, each overriding the one before:
// built-in defaults, a redis.conf-style file (--config or CONCORD_CONFIG),
// the environment (CONCORD_<DIRECTIVE> with dashes as underscores) and
// command-line flags (--<directive>). All three sources go through the one
// directive table below, so a directive means the same thing everywhere.

// config is the node's configuration once every layer is applied.
type config struct {
	addr        string // RESP listen address
	requirePass string
	flushCmds   string // allow | refuse
	maxClients  int
	maxBulk     int64
	timeout     int // seconds
	region      uint32
	incarnation uint32
	logLevel    slog.Level
	logFormat   string // "text" or "json"
	metricsAddr string // "" = no HTTP endpoint

	// Region mode (any of these set): a Raft node instead of a single
	// in-memory process.
	nodeID     string
	raftAddr   string
	dataDir    string
	peers      []region.Peer
	durability region.Durability

	tlsCert, tlsKey, tlsCA string
	tlsRegionIdentity      string // "strict" or "off"
	timing                 region.Timing
	snapshotThreshold      uint64

	// Cross-region replication (region mode).
	regionName  string
	replAddr    string // gRPC listen address for streams from other regions
	peerRegions []replication.Peer
	replLogSize int64

	// configFile is the file the config came from, "" for none.
	configFile string
}

func defaultConfig() *config {
	return &config{
		addr:              "127.0.0.1:6379",
		flushCmds:         "allow",
		maxClients:        server.DefaultMaxClients,
		maxBulk:           server.DefaultProtoMaxBulkLen,
		region:            1,
		incarnation:       1,
		logLevel:          slog.LevelInfo,
		logFormat:         "text",
		durability:        region.DurabilityFsync,
		timing:            region.DefaultTiming,
		snapshotThreshold: 8192,
		replLogSize:       crdt.DefaultLogBytes,
		tlsRegionIdentity: "strict",
	}
}

// name returns the region's name: region-name, or "region<id>".
func (c *config) name() string {
	if c.regionName != "" {
		return c.regionName
	}
	return "region" + strconv.FormatUint(uint64(c.region), 10)
}

// replicates reports whether the node takes part in cross-region
// replication.
func (c *config) replicates() bool { return len(c.peerRegions) > 0 || c.replAddr != "" }

// inPeers reports whether this node is one of the configured voters (and
// so bootstraps the region on an empty data dir).
func (c *config) inPeers() bool {
	for _, p := range c.peers {
		if p.ID == c.nodeID {
			return true
		}
	}
	return false
}

// regionMode reports whether the node runs as a member of a Raft region.
// Any region directive selects it, so that a forgotten data-dir is an error
// instead of a node silently keeping its data in memory.
func (c *config) regionMode() bool {
	return c.raftAddr != "" || c.dataDir != "" || c.nodeID != "" || len(c.peers) > 0
}

// directive is one configuration setting. name is its spelling in the file
// and as a flag (--name); its environment variable is env().
type directive struct {
	name string
	args string // usage of the value(s) in a file, e.g. "<host:port>"
	help string
	// nargs is how many values a file line carries; flags and environment
	// carry one string (peer lists are written id=addr there).
	nargs int
	set   func(c *config, v []string) error
	get   func(c *config) string // current value, for --help
}

func (d *directive) env() string {
	switch d.name {
	case "peer":
		return "CONCORD_PEERS"
	case "peer-region":
		return "CONCORD_PEER_REGIONS"
	}
	return "CONCORD_" + strings.ToUpper(strings.ReplaceAll(d.name, "-", "_"))
}

// directives lists every setting; the order is the order of --help.
var directives = []*directive{
	{name: "addr", args: "<host:port>", help: "RESP listen address (Redis's bind and port in one)",
		set: func(c *config, v []string) error { return setHostPort(&c.addr, v[0], false) },
		get: func(c *config) string { return c.addr }},
	{name: "requirepass", args: "<password>", help: `password clients must AUTH with ("" for none)`,
		set: func(c *config, v []string) error { c.requirePass = v[0]; return nil },
		get: func(c *config) string { return "" }},
	{name: "flush-commands", args: "allow|refuse", help: "refuse: FLUSHALL and FLUSHDB answer an error instead of removing (across every region) what this region has seen",
		set: func(c *config, v []string) error { return setEnum(&c.flushCmds, v[0], "allow", "refuse") },
		get: func(c *config) string { return c.flushCmds }},
	{name: "maxclients", args: "<n>", help: "maximum connected clients",
		set: func(c *config, v []string) error { return setInt(&c.maxClients, v[0], 1, math.MaxUint32) },
		get: func(c *config) string { return strconv.Itoa(c.maxClients) }},
	{name: "proto-max-bulk-len", args: "<bytes>", help: "largest bulk string a request may carry (512mb, 1gb, ...)",
		set: func(c *config, v []string) error { return setMemory(&c.maxBulk, v[0], 1<<20) },
		get: func(c *config) string { return strconv.FormatInt(c.maxBulk, 10) }},
	{name: "timeout", args: "<seconds>", help: "close clients idle this long; 0 never",
		set: func(c *config, v []string) error { return setInt(&c.timeout, v[0], 0, math.MaxInt32) },
		get: func(c *config) string { return strconv.Itoa(c.timeout) }},
	{name: "region", args: "<id>", help: "this node's region id",
		set: func(c *config, v []string) error { return setUint32(&c.region, v[0]) },
		get: func(c *config) string { return strconv.FormatUint(uint64(c.region), 10) }},
	{name: "incarnation", args: "<n>", help: "floor of the region's incarnation: a region starting from empty state takes one at least this (or its clock's, if higher) and keeps it; one below the floor is renewed, so raise it above INFO's concord_incarnation when restoring a backup",
		set: func(c *config, v []string) error { return setUint32(&c.incarnation, v[0]) },
		get: func(c *config) string { return strconv.FormatUint(uint64(c.incarnation), 10) }},
	{name: "loglevel", args: "debug|info|warn|error", help: "least severe level logged",
		set: func(c *config, v []string) error { return setLevel(&c.logLevel, v[0]) },
		get: func(c *config) string { return strings.ToLower(c.logLevel.String()) }},
	{name: "log-format", args: "text|json", help: "log line format (on stderr)",
		set: func(c *config, v []string) error { return setEnum(&c.logFormat, v[0], "text", "json") },
		get: func(c *config) string { return c.logFormat }},
	{name: "metrics-addr", args: "<host:port>", help: `HTTP address for /metrics, /healthz and /readyz ("" off)`,
		set: func(c *config, v []string) error { return setHostPort(&c.metricsAddr, v[0], true) },
		get: func(c *config) string { return c.metricsAddr }},
	{name: "node-id", args: "<id>", help: "this node's id within its region (region mode)",
		set: func(c *config, v []string) error { return setID(&c.nodeID, v[0]) },
		get: func(c *config) string { return c.nodeID }},
	{name: "raft-addr", args: "<host:port>", help: "Raft and forwarding address, listened on and advertised (default: this node's peer entry)",
		set: func(c *config, v []string) error { return setHostPort(&c.raftAddr, v[0], true) },
		get: func(c *config) string { return c.raftAddr }},
	{name: "data-dir", args: "<path>", help: "directory for the Raft log and snapshots (region mode)",
		set: func(c *config, v []string) error { c.dataDir = v[0]; return nil },
		get: func(c *config) string { return c.dataDir }},
	{name: "peer", args: "<id> <raft-addr>", nargs: 2, help: "an initial voter of the region, this node included; repeatable",
		set: func(c *config, v []string) error { return addPeer(c, v) },
		get: func(c *config) string { return "" }},
	{name: "durability", args: "fsync|cache", help: "fsync: acknowledged writes are on a quorum's disks; cache: page cache only",
		set: func(c *config, v []string) error {
			d, err := region.ParseDurability(v[0])
			c.durability = d
			return err
		},
		get: func(c *config) string { return c.durability.String() }},
	{name: "tls-cert-file", args: "<path>", help: "this node's certificate (PEM) for Raft and forwarding traffic",
		set: func(c *config, v []string) error { c.tlsCert = v[0]; return nil },
		get: func(c *config) string { return c.tlsCert }},
	{name: "tls-key-file", args: "<path>", help: "the certificate's private key (PEM)",
		set: func(c *config, v []string) error { c.tlsKey = v[0]; return nil },
		get: func(c *config) string { return c.tlsKey }},
	{name: "tls-ca-cert-file", args: "<path>", help: "CA certificate(s) that sign every node's certificate (PEM)",
		set: func(c *config, v []string) error { c.tlsCA = v[0]; return nil },
		get: func(c *config) string { return c.tlsCA }},
	{name: "tls-region-identity", args: "strict|off", help: "strict: a region's certificates name it (URI SAN concord://region/<id>) and replication refuses a peer claiming another region; off: any certificate the CA signed may claim any region",
		set: func(c *config, v []string) error { return setEnum(&c.tlsRegionIdentity, v[0], "strict", "off") },
		get: func(c *config) string { return c.tlsRegionIdentity }},
	{name: "heartbeat-timeout", args: "<duration>", help: "follower silence before it campaigns",
		set: func(c *config, v []string) error { return setDuration(&c.timing.HeartbeatTimeout, v[0]) },
		get: func(c *config) string { return c.timing.HeartbeatTimeout.String() }},
	{name: "election-timeout", args: "<duration>", help: "bound on one election round",
		set: func(c *config, v []string) error { return setDuration(&c.timing.ElectionTimeout, v[0]) },
		get: func(c *config) string { return c.timing.ElectionTimeout.String() }},
	{name: "leader-lease-timeout", args: "<duration>", help: "a leader without quorum contact steps down after this; at most heartbeat-timeout",
		set: func(c *config, v []string) error { return setDuration(&c.timing.LeaderLeaseTimeout, v[0]) },
		get: func(c *config) string { return c.timing.LeaderLeaseTimeout.String() }},
	{name: "snapshot-threshold", args: "<entries>", help: "log entries since the last snapshot that trigger a new one",
		set: func(c *config, v []string) error {
			n, err := strconv.ParseUint(v[0], 10, 64)
			if err != nil || n == 0 {
				return fmt.Errorf("%q is not a positive integer", v[0])
			}
			c.snapshotThreshold = n
			return nil
		},
		get: func(c *config) string { return strconv.FormatUint(c.snapshotThreshold, 10) }},
	{name: "region-name", args: "<name>", help: `the region's name, shown to other regions (default "region<id>")`,
		set: func(c *config, v []string) error { return setName(&c.regionName, v[0]) },
		get: func(c *config) string { return c.regionName }},
	{name: "repl-addr", args: "<host:port>", help: "address other regions stream replication to (gRPC), listened on by every node of the region",
		set: func(c *config, v []string) error { return setHostPort(&c.replAddr, v[0], true) },
		get: func(c *config) string { return c.replAddr }},
	{name: "peer-region", args: "<id> <name> <repl-addr>[,<repl-addr>...]", nargs: 3,
		help: "another region to replicate with, and its nodes' repl-addr; repeatable",
		set:  func(c *config, v []string) error { return addPeerRegion(c, v) },
		get:  func(c *config) string { return "" }},
	{name: "repl-log-size", args: "<bytes>", help: "memory kept for the replication log; a region away longer catches up by state transfer",
		set: func(c *config, v []string) error { return setMemory(&c.replLogSize, v[0], 1<<20) },
		get: func(c *config) string { return strconv.FormatInt(c.replLogSize, 10) }},
}

// redisHints answer Redis directives Concord spells differently or lacks.
var redisHints = map[string]string{
	"bind":    "use addr <host:port>",
	"port":    "use addr <host:port>",
	"dir":     "use data-dir <path>",
	"logfile": "logs go to stderr",
}

func lookupDirective(name string) *directive {
	for _, d := range directives {
		if d.name == name {
			return d
		}
	}
	return nil
}

// flagValue is a directive's value given on the command line.
type flagValue struct {
	d *directive
	v string
}

// loadConfig builds the server's configuration from the layers, args being
// the command line after the subcommand.
func loadConfig(args []string, stderr io.Writer) (*config, error) {
	fs := flag.NewFlagSet("concord", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		file     string
		fromFlag []flagValue
	)
	fs.StringVar(&file, "config", "", "")
	for _, d := range directives {
		fs.Func(d.name, "", func(v string) error {
			fromFlag = append(fromFlag, flagValue{d, v})
			return nil
		})
	}
	peer := lookupDirective("peer")
	fs.Func("peers", "", func(v string) error {
		fromFlag = append(fromFlag, flagValue{peer, v})
		return nil
	})
	fs.Usage = func() { printServerUsage(fs.Output()) }
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected arguments: %v", fs.Args())
	}
	return loadLayers(file, fromFlag)
}

// printServerUsage lists the server's flags from the directive table.
func printServerUsage(w io.Writer) {
	fmt.Fprint(w, usageText, "\nserver flags (each also a configuration directive and a CONCORD_* variable):\n")
	fmt.Fprintln(w, "  --config <file>\n        configuration file (env CONCORD_CONFIG)")
	def := defaultConfig()
	for _, d := range directives {
		args := d.args
		switch d.name {
		case "peer":
			args = "<id>=<raft-addr>"
		case "peer-region":
			args = `"<id> <name> <repl-addr>[,<repl-addr>...]" (in the environment: several separated by ';')`
		}
		fmt.Fprintf(w, "  --%s %s\n        %s (env %s", d.name, args, d.help, d.env())
		if v := d.get(def); v != "" {
			fmt.Fprintf(w, "; default %s", v)
		}
		fmt.Fprintln(w, ")")
		if d.name == "peer" {
			fmt.Fprintln(w, "  --peers <id>=<raft-addr>,...\n        the region's initial voters, all at once (env CONCORD_PEERS)")
		}
	}
}

// loadLayers applies the layers over the defaults: the file (CONCORD_CONFIG
// when file is ""), the environment, then fromFlag; and validates the
// result.
func loadLayers(file string, fromFlag []flagValue) (*config, error) {
	c := defaultConfig()
	c.configFile = file
	if c.configFile == "" {
		c.configFile = os.Getenv("CONCORD_CONFIG")
	}
	if c.configFile != "" {
		if err := c.layer(func() error { return c.readFile(c.configFile) }); err != nil {
			return nil, err
		}
	}
	if err := c.layer(c.readEnv); err != nil {
		return nil, err
	}
	err := c.layer(func() error {
		for _, f := range fromFlag {
			if err := c.setString(f.d, f.v); err != nil {
				return fmt.Errorf("flag --%s: %w", f.d.name, err)
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if err := c.validate(); err != nil {
		if c.configFile != "" {
			return nil, fmt.Errorf("%w (configuration file %s)", err, c.configFile)
		}
		return nil, err
	}
	return c, nil
}

// layer applies one layer. A layer that names peers replaces the peer list
// of the layers below instead of adding to it, so that a flag can redefine
// the region's voters that a file declares.
func (c *config) layer(apply func() error) error {
	below, belowRegions := c.peers, c.peerRegions
	c.peers, c.peerRegions = nil, nil
	err := apply()
	if c.peers == nil {
		c.peers = below
	}
	if c.peerRegions == nil {
		c.peerRegions = belowRegions
	}
	return err
}

// setString applies a directive's value as given in a flag or the
// environment.
func (c *config) setString(d *directive, v string) error {
	if d.name == "peer-region" {
		// "<id> <name> <addr>[,<addr>...]", several separated by ';'.
		for _, p := range strings.Split(v, ";") {
			if strings.TrimSpace(p) == "" {
				continue
			}
			f := strings.Fields(p)
			if len(f) != 3 {
				return fmt.Errorf("peer region %q is not \"<id> <name> <addr>[,<addr>...]\"", p)
			}
			if err := d.set(c, f); err != nil {
				return err
			}
		}
		return nil
	}
	if d.name != "peer" {
		return d.set(c, []string{v})
	}
	if strings.TrimSpace(v) == "" {
		return nil // as if unset, like an empty CONCORD_PEERS= in a compose file
	}
	for _, p := range strings.Split(v, ",") {
		id, addr, ok := strings.Cut(strings.TrimSpace(p), "=")
		if !ok {
			return fmt.Errorf("peer %q is not id=addr", p)
		}
		if err := d.set(c, []string{id, addr}); err != nil {
			return err
		}
	}
	return nil
}

func (c *config) readEnv() error {
	for _, d := range directives {
		if v, ok := os.LookupEnv(d.env()); ok {
			if err := c.setString(d, v); err != nil {
				return fmt.Errorf("%s: %w", d.env(), err)
			}
		}
	}
	return nil
}

// readFile applies a configuration file.
func (c *config) readFile(path string) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	return c.parseFile(path, string(data))
}

// parseFile applies the redis.conf-style text of the file named path: one
// directive per line, its values separated by blanks and quoted with "" or
// ” when they hold blanks; lines starting with # are comments. Later lines
// override earlier ones except peer, which accumulates.
func (c *config) parseFile(path, text string) error {
	for i, line := range strings.Split(text, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || line[0] == '#' {
			continue
		}
		fail := func(format string, a ...any) error {
			return fmt.Errorf("%s:%d: %s", path, i+1, fmt.Sprintf(format, a...))
		}
		words, err := splitArgs(line)
		if err != nil {
			return fail("%v", err)
		}
		name := strings.ToLower(words[0])
		d := lookupDirective(name)
		if d == nil {
			if hint, ok := redisHints[name]; ok {
				return fail("unknown directive %q: %s", words[0], hint)
			}
			return fail("unknown directive %q", words[0])
		}
		want := max(d.nargs, 1)
		if len(words)-1 != want {
			return fail("%s takes %s", d.name, d.args)
		}
		if err := d.set(c, words[1:]); err != nil {
			return fail("%s: %v", d.name, err)
		}
	}
	return nil
}

// splitArgs splits a configuration line as Redis's sdssplitargs does:
// blanks separate words; "..." understands \n \r \t \b \a \\ \" and \xHH;
// '...' understands only \'; a closing quote must end the word.
func splitArgs(line string) ([]string, error) {
	var words []string
	i := 0
	for {
		for i < len(line) && isBlank(line[i]) {
			i++
		}
		if i == len(line) {
			return words, nil
		}
		var w strings.Builder
		switch q := line[i]; q {
		case '"', '\'':
			i++
			for {
				if i == len(line) {
					return nil, errors.New("unbalanced quotes")
				}
				ch := line[i]
				if ch == q {
					i++
					break
				}
				if ch == '\\' && i+1 < len(line) {
					next := line[i+1]
					if q == '\'' {
						if next == '\'' {
							w.WriteByte('\'')
							i += 2
							continue
						}
					} else if next == 'x' && i+3 < len(line) && isHex(line[i+2]) && isHex(line[i+3]) {
						b, _ := strconv.ParseUint(line[i+2:i+4], 16, 8)
						w.WriteByte(byte(b))
						i += 4
						continue
					} else {
						esc, ok := map[byte]byte{'n': '\n', 'r': '\r', 't': '\t', 'b': '\b', 'a': '\a'}[next]
						if !ok {
							esc = next // \\ \" and anything else: the character itself
						}
						w.WriteByte(esc)
						i += 2
						continue
					}
				}
				w.WriteByte(ch)
				i++
			}
			if i < len(line) && !isBlank(line[i]) {
				return nil, errors.New("closing quote must be followed by a space")
			}
		default:
			for i < len(line) && !isBlank(line[i]) {
				w.WriteByte(line[i])
				i++
			}
		}
		words = append(words, w.String())
	}
}

func isBlank(b byte) bool { return b == ' ' || b == '\t' || b == '\r' || b == '\n' }

func isHex(b byte) bool {
	return '0' <= b && b <= '9' || 'a' <= b && b <= 'f' || 'A' <= b && b <= 'F'
}

func setInt(dst *int, v string, lo, hi int64) error {
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		return fmt.Errorf("%q is not an integer", v)
	}
	if n < lo || n > hi {
		return fmt.Errorf("%d is not between %d and %d", n, lo, hi)
	}
	*dst = int(n)
	return nil
}

func setUint32(dst *uint32, v string) error {
	n, err := strconv.ParseUint(v, 10, 32)
	if err != nil {
		return fmt.Errorf("%q is not an integer between 0 and %d", v, uint32(math.MaxUint32))
	}
	*dst = uint32(n)
	return nil
}

// setMemory parses a Redis memory amount: digits and an optional unit b, k,
// kb, m, mb, g, gb (any case); k/m/g are powers of 1000, kb/mb/gb of 1024.
func setMemory(dst *int64, v string, lo int64) error {
	s := strings.ToLower(v)
	digits := strings.TrimRight(s, "bkmg")
	unit := map[string]int64{"": 1, "b": 1, "k": 1000, "kb": 1024, "m": 1000 * 1000,
		"mb": 1024 * 1024, "g": 1000 * 1000 * 1000, "gb": 1024 * 1024 * 1024}
	mul, ok := unit[s[len(digits):]]
	n, err := strconv.ParseInt(digits, 10, 64)
	if !ok || err != nil || n < 0 || n > math.MaxInt64/mul {
		return fmt.Errorf("%q is not a memory amount (like 512mb)", v)
	}
	if n*mul < lo {
		return fmt.Errorf("%s is less than the minimum, %d bytes", v, lo)
	}
	*dst = n * mul
	return nil
}

// setDuration parses a Raft timeout; Raft refuses any below 5ms.
func setDuration(dst *time.Duration, v string) error {
	d, err := time.ParseDuration(v)
	if err != nil || d < 5*time.Millisecond {
		return fmt.Errorf("%q is not a duration of at least 5ms (like 300ms)", v)
	}
	*dst = d
	return nil
}

func setLevel(dst *slog.Level, v string) error {
	levels := map[string]slog.Level{"debug": slog.LevelDebug, "info": slog.LevelInfo,
		"warn": slog.LevelWarn, "error": slog.LevelError}
	l, ok := levels[strings.ToLower(v)]
	if !ok {
		return fmt.Errorf("%q is not debug, info, warn or error", v)
	}
	*dst = l
	return nil
}

func setEnum(dst *string, v string, allowed ...string) error {
	for _, a := range allowed {
		if strings.EqualFold(v, a) {
			*dst = a
			return nil
		}
	}
	return fmt.Errorf("%q is not %s", v, strings.Join(allowed, " or "))
}

// setHostPort checks that v is host:port (the host may be empty, meaning
// every interface); empty v is accepted when optional.
func setHostPort(dst *string, v string, optional bool) error {
	if v == "" && optional {
		*dst = ""
		return nil
	}
	_, port, err := net.SplitHostPort(v)
	if err != nil {
		return fmt.Errorf("%q is not host:port", v)
	}
	if _, err := strconv.ParseUint(port, 10, 16); err != nil {
		return fmt.Errorf("%q has no valid port", v)
	}
	*dst = v
	return nil
}

// setID checks a node id: it appears in id=addr lists and in replies, so it
// holds no blanks, '=' or ','.
func setID(dst *string, v string) error {
	if v == "" || strings.ContainsAny(v, " \t\r\n=,") {
		return fmt.Errorf("node id %q must be non-empty, without blanks, '=' or ','", v)
	}
	*dst = v
	return nil
}

// setName checks a region name: it appears in INFO's comma-separated
// fields, so it holds no blanks, '=' or ','.
func setName(dst *string, v string) error {
	if v == "" || strings.ContainsAny(v, " \t\r\n=,;") {
		return fmt.Errorf("region name %q must be non-empty, without blanks, '=', ',' or ';'", v)
	}
	*dst = v
	return nil
}

func addPeerRegion(c *config, v []string) error {
	var p replication.Peer
	id, err := strconv.ParseUint(v[0], 10, 32)
	if err != nil {
		return fmt.Errorf("peer region id %q is not an integer", v[0])
	}
	p.Region = uint32(id)
	if err := setName(&p.Name, v[1]); err != nil {
		return err
	}
	for _, a := range strings.Split(v[2], ",") {
		var addr string
		if err := setHostPort(&addr, strings.TrimSpace(a), false); err != nil {
			return fmt.Errorf("peer region %s: %w", p.Name, err)
		}
		p.Addrs = append(p.Addrs, addr)
	}
	for _, q := range c.peerRegions {
		if q.Region == p.Region {
			return fmt.Errorf("peer region %d listed twice", p.Region)
		}
	}
	c.peerRegions = append(c.peerRegions, p)
	return nil
}

func addPeer(c *config, v []string) error {
	var p region.Peer
	if err := setID(&p.ID, v[0]); err != nil {
		return err
	}
	if err := setHostPort(&p.Addr, v[1], false); err != nil {
		return fmt.Errorf("peer %s: %w", p.ID, err)
	}
	for _, q := range c.peers {
		if q.ID == p.ID {
			return fmt.Errorf("peer %s listed twice", p.ID)
		}
	}
	c.peers = append(c.peers, p)
	return nil
}

// validate checks what no single directive can: combinations. It fills
// raft-addr from this node's peer entry when it is not given.
func (c *config) validate() error {
	tlsSet := 0
	for _, f := range []string{c.tlsCert, c.tlsKey, c.tlsCA} {
		if f != "" {
			tlsSet++
		}
	}
	if tlsSet != 0 && tlsSet != 3 {
		return errors.New("tls-cert-file, tls-key-file and tls-ca-cert-file go together: set all three or none")
	}
	if c.timing.LeaderLeaseTimeout > c.timing.HeartbeatTimeout {
		return fmt.Errorf("leader-lease-timeout (%v) must not exceed heartbeat-timeout (%v)",
			c.timing.LeaderLeaseTimeout, c.timing.HeartbeatTimeout)
	}
	if c.timing.ElectionTimeout < c.timing.HeartbeatTimeout {
		return fmt.Errorf("election-timeout (%v) must not be less than heartbeat-timeout (%v)",
			c.timing.ElectionTimeout, c.timing.HeartbeatTimeout)
	}
	if !c.regionMode() {
		if tlsSet != 0 {
			return errors.New("tls-* files secure Raft traffic: they need region mode (node-id, data-dir, peer)")
		}
		if c.replicates() {
			return errors.New("cross-region replication (repl-addr, peer-region) needs region mode (node-id, data-dir, peer)")
		}
		return nil
	}
	for _, p := range c.peerRegions {
		if p.Region == c.region {
			return fmt.Errorf("peer-region %d %s has this region's own id", p.Region, p.Name)
		}
	}
	if len(c.peerRegions) > 0 && c.replAddr == "" {
		return errors.New("peer-region needs repl-addr: the other regions stream to it")
	}
	if c.nodeID == "" {
		return errors.New("region mode needs node-id")
	}
	if c.dataDir == "" {
		return errors.New("region mode needs data-dir")
	}
	for _, p := range c.peers {
		if p.ID != c.nodeID {
			continue
		}
		if c.raftAddr == "" {
			c.raftAddr = p.Addr
		} else if c.raftAddr != p.Addr {
			return fmt.Errorf("raft-addr %s differs from this node's peer entry %s %s: peers reach a node at its raft-addr",
				c.raftAddr, p.ID, p.Addr)
		}
	}
	if c.raftAddr == "" {
		return errors.New("region mode needs raft-addr (or a peer entry for this node-id; " +
			"a one-node region lists itself: peer <id> <raft-addr>)")
	}
	return nil
}

// loadTLS builds the mutual-TLS configuration for Raft and forwarding
// traffic: this node presents its certificate and accepts only peers whose
// certificates the CA signed, in both directions.
func (c *config) loadTLS() (*tls.Config, error) {
	if c.tlsCert == "" {
		return nil, nil
	}
	cert, err := tls.LoadX509KeyPair(c.tlsCert, c.tlsKey)
	if err != nil {
		return nil, fmt.Errorf("tls-cert-file/tls-key-file: %w", err)
	}
	pem, err := os.ReadFile(c.tlsCA)
	if err != nil {
		return nil, fmt.Errorf("tls-ca-cert-file: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("tls-ca-cert-file: no PEM certificate in %s", c.tlsCA)
	}
	return &tls.Config{
		Certificates: []tls.Certificate{cert},
		RootCAs:      pool,
		ClientCAs:    pool,
		ClientAuth:   tls.RequireAndVerifyClientCert,
		MinVersion:   tls.VersionTLS13,
	}, nil
}

// newLogger returns the process's logger.
func (c *config) newLogger(w io.Writer) *slog.Logger {
	opts := &slog.HandlerOptions{Level: c.logLevel}
	if c.logFormat == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}
