// Command concord runs a Concord node: a Redis-compatible server whose
// writes are CRDT effects. Today it runs a single node (one region, no
// persistence).
//
// Usage:
//
//	concord [server] [flags]
//
// Every flag can also be set through the environment (CONCORD_ADDR,
// CONCORD_REQUIREPASS, ...); a flag given on the command line wins.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"

	"concord/crdt"
	"concord/server"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	if err := run(os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "concord:", err)
		os.Exit(1)
	}
}

// config is the node's configuration after flags and environment.
type config struct {
	addr        string
	requirePass string
	maxClients  int
	maxBulk     int64
	timeout     int
	region      uint
	incarnation uint
	logLevel    string
}

// parseArgs reads the subcommand, the environment and the flags.
func parseArgs(args []string, stderr io.Writer) (*config, error) {
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		switch args[0] {
		case "server":
			args = args[1:]
		case "version":
			return nil, errVersion
		default:
			return nil, fmt.Errorf("unknown subcommand %q (want: server, version)", args[0])
		}
	}
	fs := flag.NewFlagSet("concord", flag.ContinueOnError)
	fs.SetOutput(stderr)
	c := &config{}
	fs.StringVar(&c.addr, "addr", env("CONCORD_ADDR", "127.0.0.1:6379"), "RESP listen address (env CONCORD_ADDR)")
	fs.StringVar(&c.requirePass, "requirepass", env("CONCORD_REQUIREPASS", ""), "password clients must AUTH with (env CONCORD_REQUIREPASS)")
	fs.IntVar(&c.maxClients, "maxclients", envNumber("CONCORD_MAXCLIENTS", server.DefaultMaxClients), "maximum connected clients (env CONCORD_MAXCLIENTS)")
	fs.Int64Var(&c.maxBulk, "proto-max-bulk-len", int64(envNumber("CONCORD_PROTO_MAX_BULK_LEN", server.DefaultProtoMaxBulkLen)), "largest bulk string a request may carry, bytes (env CONCORD_PROTO_MAX_BULK_LEN)")
	fs.IntVar(&c.timeout, "timeout", envNumber("CONCORD_TIMEOUT", 0), "close clients idle this many seconds, 0 never (env CONCORD_TIMEOUT)")
	fs.UintVar(&c.region, "region", uint(envNumber("CONCORD_REGION", 1)), "this node's region id (env CONCORD_REGION)")
	fs.UintVar(&c.incarnation, "incarnation", uint(envNumber("CONCORD_INCARNATION", 1)), "this region's incarnation (env CONCORD_INCARNATION)")
	fs.StringVar(&c.logLevel, "loglevel", env("CONCORD_LOGLEVEL", "info"), "debug, info, warn or error (env CONCORD_LOGLEVEL)")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected arguments: %v", fs.Args())
	}
	if c.region > 1<<32-1 || c.incarnation > 1<<32-1 {
		return nil, errors.New("region and incarnation must fit in 32 bits")
	}
	return c, nil
}

var errVersion = errors.New("version requested")

func env(name, def string) string {
	if v, ok := os.LookupEnv(name); ok {
		return v
	}
	return def
}

func envNumber(name string, def int) int {
	if v, ok := os.LookupEnv(name); ok {
		if n, err := strconv.Atoi(v); err == nil {
			return n
		}
		fmt.Fprintf(os.Stderr, "concord: ignoring %s=%q: not an integer\n", name, v)
	}
	return def
}

func run(args []string, stdout, stderr io.Writer) error {
	cfg, err := parseArgs(args, stderr)
	if errors.Is(err, errVersion) {
		fmt.Fprintln(stdout, "concord", version, "(redis", server.Version+")")
		return nil
	}
	if errors.Is(err, flag.ErrHelp) {
		return nil
	}
	if err != nil {
		return err
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(cfg.logLevel)); err != nil {
		return fmt.Errorf("bad -loglevel: %w", err)
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))

	origin := crdt.Origin{Region: uint32(cfg.region), Incarnation: uint32(cfg.incarnation)}
	shutdown := make(chan struct{})
	store := server.NewLocalStore(crdt.NewKeyspace(origin, crdt.Options{Solo: true}), server.LocalOptions{})
	defer store.Close()
	srv := server.New(store, server.Options{
		RequirePass:     cfg.requirePass,
		MaxClients:      cfg.maxClients,
		ProtoMaxBulkLen: cfg.maxBulk,
		Timeout:         cfg.timeout,
		Origin:          origin,
		ConcordVersion:  version,
		Logger:          log,
		Shutdown:        func() { close(shutdown) },
	})

	ln, err := net.Listen("tcp", cfg.addr)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "concord %s: serving RESP on %s (region %d, incarnation %d)\n",
		version, ln.Addr(), origin.Region, origin.Incarnation)

	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	defer signal.Stop(sig)
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	select {
	case s := <-sig:
		log.Info("shutting down", "signal", s.String())
		srv.Close()
		<-served
		return nil
	case <-shutdown:
		log.Info("shutting down", "reason", "SHUTDOWN command")
		srv.Close()
		<-served
		return nil
	case err := <-served:
		srv.Close()
		return err
	}
}
