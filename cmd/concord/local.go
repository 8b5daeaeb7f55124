package main

import (
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"sync"
	"syscall"

	"concord/crdt"
	"concord/region"
	"concord/server"
)

// localCmd runs a whole region in this process: n nodes, each with its own
// RESP port, Raft port and data dir, for trying Concord on one machine.
// Data survives a restart with the same flags.
func localCmd(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("concord local", flag.ContinueOnError)
	fs.SetOutput(stderr)
	nodes := fs.Int("nodes", 1, "nodes in the region (1, 3 or 5)")
	host := fs.String("host", "127.0.0.1", "address to listen on")
	port := fs.Int("port", 6379, "RESP port of the first node; node i listens on port+i")
	raftPort := fs.Int("raft-port", 7379, "Raft port of the first node; node i uses raft-port+i")
	dir := fs.String("data-dir", ".concord", "directory holding one data dir per node")
	durability := fs.String("durability", "fsync", "fsync or cache")
	logLevel := fs.String("loglevel", "warn", "debug, info, warn or error")
	if err := fs.Parse(args); err != nil {
		if err == flag.ErrHelp {
			return exitOK
		}
		return exitUsage
	}
	if *nodes < 1 || *nodes > 9 || fs.NArg() > 0 {
		fmt.Fprintln(stderr, "concord local: --nodes must be between 1 and 9")
		return exitUsage
	}
	dur, err := region.ParseDurability(*durability)
	if err != nil {
		fmt.Fprintln(stderr, "concord local:", err)
		return exitUsage
	}
	base := defaultConfig()
	if err := setLevel(&base.logLevel, *logLevel); err != nil {
		fmt.Fprintln(stderr, "concord local:", err)
		return exitUsage
	}
	log := base.newLogger(stderr)

	var peers []region.Peer
	for i := 0; i < *nodes; i++ {
		peers = append(peers, region.Peer{
			ID:   fmt.Sprintf("n%d", i+1),
			Addr: net.JoinHostPort(*host, fmt.Sprint(*raftPort+i)),
		})
	}
	type running struct {
		n      *node
		srv    *server.Server
		served chan error
	}
	var all []running
	stopAll := func() {
		var wg sync.WaitGroup
		for _, r := range all {
			r.srv.Close()
		}
		for _, r := range all {
			wg.Add(1)
			go func(r running) {
				defer wg.Done()
				r.n.stop() // every node stops: handing leadership over would only fail
				<-r.served
			}(r)
		}
		wg.Wait()
	}
	for i, p := range peers {
		c := defaultConfig()
		c.logLevel = base.logLevel
		c.addr = net.JoinHostPort(*host, fmt.Sprint(*port+i))
		c.nodeID, c.raftAddr, c.peers = p.ID, p.Addr, peers
		c.dataDir = filepath.Join(*dir, p.ID)
		c.durability = dur
		ln, err := net.Listen("tcp", c.addr)
		if err != nil {
			stopAll()
			fmt.Fprintln(stderr, "concord local:", err)
			return exitFail
		}
		n, err := openNode(c, log, nil, ln.Addr().String())
		if err != nil {
			ln.Close()
			stopAll()
			fmt.Fprintln(stderr, "concord local:", err)
			return exitFail
		}
		srv := server.New(n.store, server.Options{
			MaxClients:      c.maxClients,
			ProtoMaxBulkLen: c.maxBulk,
			Origin:          crdt.Origin{Region: c.region, Incarnation: c.incarnation},
			ConcordVersion:  version,
			Logger:          log.With("node", p.ID),
		})
		r := running{n: n, srv: srv, served: make(chan error, 1)}
		go func() { r.served <- srv.Serve(ln) }()
		all = append(all, r)
		fmt.Fprintf(stdout, "node %s: redis-cli -h %s -p %d   (raft %s, data %s)\n", p.ID, *host, *port+i, p.Addr, c.dataDir)
	}
	fmt.Fprintf(stdout, "region of %d node(s) running (durability %s); Ctrl-C stops it, data stays in %s\n", *nodes, dur, *dir)
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	defer signal.Stop(sig)
	<-sig
	fmt.Fprintln(stdout, "stopping")
	stopAll()
	return exitOK
}
