package main

import (
	"bufio"
	"flag"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"
)

// The ops subcommands talk RESP to a running node. They take the node's
// address and password from --addr and --password, or else from the same
// configuration layers the server reads (--config or CONCORD_CONFIG, then
// CONCORD_ADDR, CONCORD_REQUIREPASS), so that in a container they work with
// no arguments at all.

// Exit statuses of the subcommands.
const (
	exitOK    = 0
	exitFail  = 1 // the node is unhealthy, unreachable, or answered an error
	exitUsage = 2
)

// clientFlags are the flags every ops subcommand takes.
type clientFlags struct {
	addr, password, configFile string
	timeout                    time.Duration
}

func (f *clientFlags) register(fs *flag.FlagSet, timeout time.Duration) {
	fs.StringVar(&f.addr, "addr", "", "node's RESP address (default: addr from the configuration, else 127.0.0.1:6379)")
	fs.StringVar(&f.password, "password", "", "password to AUTH with (default: requirepass from the configuration)")
	fs.StringVar(&f.configFile, "config", "", "configuration file to take addr and requirepass from (env CONCORD_CONFIG)")
	fs.DurationVar(&f.timeout, "timeout", timeout, "give up after this long")
}

// dial connects with the flags, filling what they leave unset from the
// configuration layers.
func (f *clientFlags) dial() (*respConn, error) {
	addr, password := f.addr, f.password
	if addr == "" || password == "" {
		c, err := loadLayers(f.configFile, nil)
		if err != nil {
			return nil, err
		}
		if addr == "" {
			addr = c.addr
		}
		if password == "" {
			password = c.requirePass
		}
	}
	return dialRESP(addr, password, f.timeout)
}

// parseInterspersed parses flags that may come before, between or after the
// positional arguments, which it returns.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		if fs.NArg() == 0 {
			return pos, nil
		}
		pos = append(pos, fs.Arg(0))
		args = fs.Args()[1:]
	}
}

// healthcheck exits 0 when the node answers PING with PONG and, with
// --ready, reports region_ready:1 in INFO replication (a single node has no
// such field and is always ready). It needs no shell, so a FROM scratch
// image can use it as its HEALTHCHECK.
func healthcheck(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("concord healthcheck", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var f clientFlags
	f.register(fs, 2*time.Second)
	ready := fs.Bool("ready", false, "also require the node to be ready to serve (region: a leader known and caught up)")
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return usageStatus(err)
	}
	if len(pos) > 0 {
		fmt.Fprintf(stderr, "concord healthcheck: unexpected arguments %v\n", pos)
		return exitUsage
	}
	fail := func(format string, a ...any) int {
		fmt.Fprintf(stderr, "concord healthcheck: "+format+"\n", a...)
		return exitFail
	}
	c, err := f.dial()
	if err != nil {
		return fail("%v", err)
	}
	defer c.Close()
	r, err := c.do("PING")
	if err != nil {
		return fail("PING: %v", err)
	}
	if r.kind != '+' || r.str != "PONG" {
		return fail("PING answered %q", r.text())
	}
	if !*ready {
		return exitOK
	}
	r, err = c.do("INFO", "replication")
	if err != nil {
		return fail("INFO: %v", err)
	}
	if r.kind != '$' || r.null {
		return fail("INFO answered %q", r.text())
	}
	fields := infoFields(r.str)
	if v, ok := fields["region_ready"]; ok && v != "1" {
		return fail("not ready: region_ready:%s region_state:%s region_leader_id:%s",
			v, fields["region_state"], fields["region_leader_id"])
	}
	return exitOK
}

// infoFields parses INFO's "name:value" lines.
func infoFields(info string) map[string]string {
	m := map[string]string{}
	sc := bufio.NewScanner(strings.NewReader(info))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		if k, v, ok := strings.Cut(line, ":"); ok {
			m[k] = v
		}
	}
	return m
}

// regionUsage lists the region subcommands and their arguments.
var regionUsage = map[string]struct {
	min, max int
	args     string
}{
	"nodes":    {0, 0, ""},
	"status":   {0, 0, ""},
	"add":      {2, 2, "<id> <raft-addr>"},
	"remove":   {1, 1, "<id>"},
	"transfer": {0, 1, "[<id>]"},
	"snapshot": {0, 0, ""},
}

// regionCmd sends "REGION <sub> <args>" to a node and prints the reply.
func regionCmd(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("concord region", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var f clientFlags
	f.register(fs, 10*time.Second)
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: concord region nodes|status|add <id> <raft-addr>|remove <id>|transfer [<id>]|snapshot [flags]\n\nflags:")
		fs.PrintDefaults()
	}
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return usageStatus(err)
	}
	if len(pos) == 0 {
		fs.Usage()
		return exitUsage
	}
	sub := strings.ToLower(pos[0])
	u, ok := regionUsage[sub]
	if !ok || len(pos)-1 < u.min || len(pos)-1 > u.max {
		if ok {
			fmt.Fprintf(stderr, "usage: concord region %s %s\n", sub, u.args)
		} else {
			fmt.Fprintf(stderr, "concord region: unknown subcommand %q\n", pos[0])
		}
		return exitUsage
	}
	c, err := f.dial()
	if err != nil {
		fmt.Fprintf(stderr, "concord region: %v\n", err)
		return exitFail
	}
	defer c.Close()
	r, err := c.do(append([]string{"REGION", strings.ToUpper(sub)}, pos[1:]...)...)
	if err != nil {
		fmt.Fprintf(stderr, "concord region %s: %v\n", sub, err)
		return exitFail
	}
	if r.kind == '-' {
		fmt.Fprintf(stderr, "concord region %s: %s\n", sub, r.str)
		return exitFail
	}
	if sub == "nodes" {
		printTable(stdout, []string{"ID", "RAFT-ADDR", "SUFFRAGE", "ROLE", "RESP-ADDR"}, r)
	} else {
		printReply(stdout, r)
	}
	return exitOK
}

// printTable prints an array of arrays as aligned columns under header.
func printTable(w io.Writer, header []string, r reply) {
	if r.kind != '*' {
		printReply(w, r)
		return
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, strings.Join(header, "\t"))
	for _, row := range r.elems {
		if row.kind != '*' {
			fmt.Fprintln(tw, row.text())
			continue
		}
		cells := make([]string, len(row.elems))
		for i, e := range row.elems {
			if cells[i] = e.text(); cells[i] == "" {
				cells[i] = "-" // unknown, e.g. a member's RESP address before it reported it
			}
		}
		fmt.Fprintln(tw, strings.Join(cells, "\t"))
	}
	tw.Flush()
}

// printReply prints a reply for a person: scalars on one line, a bulk
// string as it is, an array of [name, value] pairs or a flat array of
// alternating names and values as "name: value" lines, any other array one
// element per line.
func printReply(w io.Writer, r reply) {
	switch {
	case r.kind == '$' && !r.null:
		fmt.Fprint(w, r.str)
		if !strings.HasSuffix(r.str, "\n") {
			fmt.Fprintln(w)
		}
	case r.kind == '*' && !r.null:
		if pairs, ok := namedPairs(r.elems); ok {
			for _, p := range pairs {
				fmt.Fprintf(w, "%s: %s\n", p[0], p[1])
			}
			return
		}
		for _, e := range r.elems {
			fmt.Fprintln(w, e.text())
		}
	default:
		fmt.Fprintln(w, r.text())
	}
}

// namedPairs reads elems as name/value pairs, either [[n, v], ...] or
// [n, v, n, v, ...] with every name a string that looks like a field name.
func namedPairs(elems []reply) ([][2]string, bool) {
	if len(elems) == 0 {
		return nil, false
	}
	isName := func(r reply) bool {
		if (r.kind != '+' && r.kind != '$') || r.null || r.str == "" {
			return false
		}
		for _, ch := range r.str {
			if !(ch == '_' || ch == '-' || 'a' <= ch && ch <= 'z' || '0' <= ch && ch <= '9') {
				return false
			}
		}
		return true
	}
	var pairs [][2]string
	if elems[0].kind == '*' {
		for _, e := range elems {
			if e.kind != '*' || len(e.elems) != 2 || !isName(e.elems[0]) {
				return nil, false
			}
			pairs = append(pairs, [2]string{e.elems[0].str, e.elems[1].text()})
		}
		return pairs, true
	}
	if len(elems)%2 != 0 {
		return nil, false
	}
	for i := 0; i < len(elems); i += 2 {
		if !isName(elems[i]) || elems[i+1].kind == '*' {
			return nil, false
		}
		pairs = append(pairs, [2]string{elems[i].str, elems[i+1].text()})
	}
	return pairs, true
}

// usageStatus is the exit status for a flag parsing error: 0 for -help.
func usageStatus(err error) int {
	if err == flag.ErrHelp {
		return exitOK
	}
	return exitUsage
}
