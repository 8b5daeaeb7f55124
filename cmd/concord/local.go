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
	"concord/replication"
	"concord/server"
)

// localRegionNames name the regions of a local deployment.
var localRegionNames = []string{"us", "eu", "ap", "sa", "af", "me", "oc", "na", "an"}

func localRegionName(i int) string { return localRegionNames[i%len(localRegionNames)] }

// localCmd runs a whole deployment in this process: r regions of n nodes,
// each node with its own RESP, Raft and replication ports and data dir, for
// trying Concord on one machine. Data survives a restart with the same
// flags.
func localCmd(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("concord local", flag.ContinueOnError)
	fs.SetOutput(stderr)
	regions := fs.Int("regions", 1, "regions, replicating with each other (1 to 9)")
	nodes := fs.Int("nodes", 1, "nodes per region (1, 3 or 5)")
	host := fs.String("host", "127.0.0.1", "address to listen on")
	port := fs.Int("port", 6379, "RESP port of the first node; node i listens on port+i")
	raftPort := fs.Int("raft-port", 7379, "Raft port of the first node; node i uses raft-port+i")
	replPort := fs.Int("repl-port", 8379, "replication port of the first node; node i uses repl-port+i")
	dir := fs.String("data-dir", ".concord", "directory holding one data dir per node")
	durability := fs.String("durability", "fsync", "fsync or cache")
	logLevel := fs.String("loglevel", "warn", "debug, info, warn or error")
	if err := fs.Parse(args); err != nil {
		if err == flag.ErrHelp {
			return exitOK
		}
		return exitUsage
	}
	if *nodes < 1 || *nodes > 9 || *regions < 1 || *regions > 9 || fs.NArg() > 0 {
		fmt.Fprintln(stderr, "concord local: --regions and --nodes must be between 1 and 9")
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

	// Node k (regions in order, then nodes) listens on port+k, raft-port+k
	// and repl-port+k.
	type localRegion struct {
		id    uint32
		name  string
		peers []region.Peer
		repl  []string
	}
	var plan []localRegion
	for r := 0; r < *regions; r++ {
		lr := localRegion{id: uint32(r + 1), name: localRegionName(r)}
		for i := 0; i < *nodes; i++ {
			k := r**nodes + i
			lr.peers = append(lr.peers, region.Peer{
				ID:   fmt.Sprintf("n%d", i+1),
				Addr: net.JoinHostPort(*host, fmt.Sprint(*raftPort+k)),
			})
			lr.repl = append(lr.repl, net.JoinHostPort(*host, fmt.Sprint(*replPort+k)))
		}
		plan = append(plan, lr)
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
	for r, lr := range plan {
		if *regions > 1 {
			fmt.Fprintf(stdout, "region %d (%s):\n", lr.id, lr.name)
		}
		for i, p := range lr.peers {
			k := r**nodes + i
			c := defaultConfig()
			c.logLevel = base.logLevel
			c.addr = net.JoinHostPort(*host, fmt.Sprint(*port+k))
			c.nodeID, c.raftAddr, c.peers = p.ID, p.Addr, lr.peers
			c.region, c.regionName = lr.id, lr.name
			c.dataDir = filepath.Join(*dir, p.ID)
			if *regions > 1 {
				c.dataDir = filepath.Join(*dir, lr.name, p.ID)
				c.replAddr = lr.repl[i]
				for _, other := range plan {
					if other.id != lr.id {
						c.peerRegions = append(c.peerRegions, replication.Peer{Region: other.id, Name: other.name, Addrs: other.repl})
					}
				}
			}
			c.durability = dur
			ln, err := net.Listen("tcp", c.addr)
			if err != nil {
				stopAll()
				fmt.Fprintln(stderr, "concord local:", err)
				return exitFail
			}
			n, err := openNode(c, log.With("region", lr.name), nil, ln.Addr().String())
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
				Logger:          log.With("region", lr.name, "node", p.ID),
			})
			run := running{n: n, srv: srv, served: make(chan error, 1)}
			go func() { run.served <- srv.Serve(ln) }()
			all = append(all, run)
			extra := ""
			if c.replAddr != "" {
				extra = ", replication " + c.replAddr
			}
			fmt.Fprintf(stdout, "  node %s: redis-cli -h %s -p %d   (raft %s%s, data %s)\n", p.ID, *host, *port+k, p.Addr, extra, c.dataDir)
		}
	}
	if *regions > 1 {
		fmt.Fprintf(stdout, "%d regions of %d node(s) running, replicating with each other (durability %s); Ctrl-C stops them, data stays in %s\n", *regions, *nodes, dur, *dir)
	} else {
		fmt.Fprintf(stdout, "region of %d node(s) running (durability %s); Ctrl-C stops it, data stays in %s\n", *nodes, dur, *dir)
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	defer signal.Stop(sig)
	<-sig
	fmt.Fprintln(stdout, "stopping")
	stopAll()
	return exitOK
}
