// Command benchcmp measures Concord side by side with redis-server on this
// machine. It starts both on loopback, runs redis-benchmark against each in
// alternating rounds and prints ops/s with the Concord/Redis ratios
// (medians over rounds, because single rounds swing by tens of percent on
// shared machines). Four parts, each selectable by a flag:
//
//   - -single: an in-memory node beside redis-server without persistence
//     (redis-benchmark's SET, GET, INCR, HSET, SADD, ZADD, LPUSH, RPOP and
//     LRANGE_100, and PUBLISH to one subscriber and EVALSHA of a loaded
//     script as custom command lines; each checked afterwards, see
//     tests.go), then resident memory per key after loading the same
//     small keys;
//   - -region: the leaders of a 1-node and a 3-node region (separate
//     processes, fsync durability) beside redis-server with appendonly and
//     appendfsync everysec, and with appendfsync always;
//   - -failover N: N SIGKILLs of a 3-node region's leader while a client on
//     a surviving node writes; the time from each kill to the client's first
//     successful write, with where it went (taken from the nodes' logs);
//   - -repl: two 1-node regions replicating through a delay proxy: lag
//     from one region's acknowledgement to the other serving the write, at
//     a steady rate with and without added delay and as the rate steps up,
//     then the catch-up time of a new region by state transfer.
//
// It reports figures; it asserts nothing.
package main

import (
	"bufio"
	"flag"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"time"
)

// options are the command-line settings every part reads.
type options struct {
	concordBin, redisBin, benchBin string
	tests                          string
	benchTimeout                   time.Duration
	requests, clients, keyspace    int
	size, rounds, memKeys          int

	single                      bool
	region                      bool
	regionTests                 string
	regionRequests, regionRound int
	failover                    int
	failoverTimeout             time.Duration
	raftArgs                    []string
	keep                        bool

	repl                            bool
	replRate, replSeconds, replKeys int

	dir string // scratch space, removed at exit
}

func main() {
	var o options
	flag.StringVar(&o.concordBin, "concord", "bin/concord", "concord binary")
	flag.StringVar(&o.redisBin, "redis-server", "redis-server", "redis-server binary")
	flag.StringVar(&o.benchBin, "redis-benchmark", "redis-benchmark", "redis-benchmark binary")
	flag.StringVar(&o.tests, "t", "set,get,incr,hset,sadd,zadd,lpush,rpop,lrange_100,publish,evalsha", "tests (single-node part): redis-benchmark -t names, and publish and evalsha, run as custom command lines")
	flag.DurationVar(&o.benchTimeout, "bench-timeout", 5*time.Minute, "longest one redis-benchmark run may take before its row shows an error")
	flag.IntVar(&o.requests, "n", 200000, "requests per test (single-node part)")
	flag.IntVar(&o.clients, "c", 50, "parallel connections")
	flag.IntVar(&o.keyspace, "r", 100000, "random key space")
	flag.IntVar(&o.size, "d", 64, "value size in bytes")
	flag.IntVar(&o.rounds, "rounds", 3, "alternating rounds per server in the single-node part (medians are reported)")
	flag.IntVar(&o.memKeys, "mem-keys", 1000000, "small keys to load for the memory comparison (0 skips it)")
	flag.BoolVar(&o.single, "single", true, "compare a single in-memory node with redis-server without persistence")
	flag.BoolVar(&o.region, "region", true, "compare 1- and 3-node regions (fsync) with redis-server appendfsync everysec and always")
	flag.StringVar(&o.regionTests, "region-t", "set,incr,hset,get", "tests (region part), as -t")
	flag.IntVar(&o.regionRequests, "region-n", 100000, "requests per test (region part)")
	flag.IntVar(&o.regionRound, "region-rounds", 5, "rounds per server in the region part (medians are reported)")
	flag.IntVar(&o.failover, "failover", 20, "leader kills to time in a 3-node region (0 skips it)")
	flag.DurationVar(&o.failoverTimeout, "failover-client-timeout", 250*time.Millisecond, "the failover writer's per-command timeout")
	flag.BoolVar(&o.repl, "repl", true, "measure replication between two 1-node regions: lag, rate steps, catch-up by state transfer")
	flag.IntVar(&o.replRate, "repl-rate", 20000, "steady write rate for the lag measurement (writes/s)")
	flag.IntVar(&o.replSeconds, "repl-seconds", 10, "seconds per lag measurement and per rate step")
	flag.IntVar(&o.replKeys, "repl-keys", 1000000, "keys for the catch-up-by-state-transfer measurement (0 skips it)")
	raftArgs := flag.String("raft-args", "", "extra flags for region nodes, e.g. \"--heartbeat-timeout 200ms --election-timeout 200ms --leader-lease-timeout 100ms\"")
	flag.BoolVar(&o.keep, "keep", false, "keep the scratch directory (data dirs and the region nodes' logs)")
	flag.Parse()
	o.raftArgs = strings.Fields(*raftArgs)
	var err error
	o.dir, err = os.MkdirTemp("", "benchcmp")
	check(err)
	if o.keep {
		fmt.Fprintln(os.Stderr, "benchcmp: scratch directory", o.dir)
	} else {
		defer os.RemoveAll(o.dir)
		cleanup = func() { os.RemoveAll(o.dir) }
	}

	fmt.Printf("# benchcmp %s, %d CPUs, %s\n", time.Now().UTC().Format("2006-01-02 15:04 UTC"), runtime.NumCPU(), hostInfo())
	fmt.Printf("load average at start: %s\n", loadAvg())
	if o.single {
		benchSingle(&o)
	}
	if o.region {
		benchRegion(&o)
	}
	if o.failover > 0 {
		benchFailover(&o)
	}
	if o.repl {
		benchRepl(&o)
	}
	fmt.Printf("\nload average at end: %s\n", loadAvg())
}

// benchSingle compares a single in-memory node with redis-server without
// persistence: throughput, then memory per key.
func benchSingle(o *options) {
	dir := o.dir
	rp, cp := freePort(), freePort()
	redis := startProc(o.redisBin, "--port", strconv.Itoa(rp), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", dir)
	concord := startProc(o.concordBin, "--addr", fmt.Sprintf("127.0.0.1:%d", cp))
	waitPort(rp)
	waitPort(cp)

	fmt.Printf("\n## Single node (in memory) beside redis-server without persistence\n\n")
	fmt.Printf("redis-benchmark -c %d -n %d -r %d -d %d, %d rounds per server alternating, medians\n\n", o.clients, o.requests, o.keyspace, o.size, o.rounds)
	fmt.Println("| test | pipeline | redis ops/s | concord ops/s | concord/redis |")
	fmt.Println("| --- | --- | --- | --- | --- |")
	tests := strings.Split(strings.ToLower(o.tests), ",")
	for _, pipe := range []int{1, 16} {
		res := map[string]map[string][]benchResult{"redis": {}, "concord": {}}
		for r := 0; r < o.rounds; r++ {
			for _, srv := range []struct {
				name string
				port int
			}{{"redis", rp}, {"concord", cp}} {
				addr := fmt.Sprintf("127.0.0.1:%d", srv.port)
				for _, test := range tests {
					res[srv.name][test] = append(res[srv.name][test], runTest(o, addr, test, o.requests, pipe, nil))
				}
			}
		}
		for _, test := range tests {
			rr, cc := summarize(res["redis"][test]), summarize(res["concord"][test])
			fmt.Printf("| %s | %d | %s | %s | %s |\n", strings.ToUpper(test), pipe, rr.cell(), cc.cell(), ratioOf(cc, rr))
		}
	}
	stopProc(redis)
	stopProc(concord)
	if o.memKeys > 0 {
		// Fresh processes: after the throughput runs, a garbage-collected
		// heap would reuse freed memory and hide part of the growth.
		fmt.Printf("\nMemory after loading %d keys (SET key:NNNNNNNNN <16 bytes>) into freshly started servers, resident set size growth per key:\n\n", o.memKeys)
		fmt.Println("| server | RSS before | RSS after | bytes/key |")
		fmt.Println("| --- | --- | --- | --- |")
		for _, srv := range []struct {
			name  string
			start func(port int) *exec.Cmd
		}{
			{"redis", func(p int) *exec.Cmd {
				return startProc(o.redisBin, "--port", strconv.Itoa(p), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", dir)
			}},
			{"concord", func(p int) *exec.Cmd { return startProc(o.concordBin, "--addr", fmt.Sprintf("127.0.0.1:%d", p)) }},
		} {
			port := freePort()
			proc := srv.start(port)
			waitPort(port)
			time.Sleep(300 * time.Millisecond)
			before := rss(proc.Process.Pid)
			load(port, o.memKeys)
			time.Sleep(500 * time.Millisecond)
			after := rss(proc.Process.Pid)
			stopProc(proc)
			fmt.Printf("| %s | %.1f MiB | %.1f MiB | %.0f |\n", srv.name, float64(before)/(1<<20), float64(after)/(1<<20), float64(after-before)/float64(o.memKeys))
		}
	}
}

// load writes n small string keys with pipelined SETs.
func load(port, n int) {
	c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port))
	check(err)
	defer c.Close()
	w := bufio.NewWriterSize(c, 1<<16)
	r := bufio.NewReader(c)
	const batch = 1000
	for i := 0; i < n; i += batch {
		m := batch
		if n-i < m {
			m = n - i
		}
		for j := 0; j < m; j++ {
			key := fmt.Sprintf("key:%09d", i+j)
			fmt.Fprintf(w, "*3\r\n$3\r\nSET\r\n$%d\r\n%s\r\n$16\r\nvalue-0123456789\r\n", len(key), key)
		}
		check(w.Flush())
		for j := 0; j < m; j++ {
			line, err := r.ReadString('\n')
			check(err)
			if !strings.HasPrefix(line, "+OK") {
				fail(fmt.Errorf("load: unexpected reply %q", line))
			}
		}
	}
}

// rss reads a process's resident set size from /proc (Linux only).
func rss(pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	check(err)
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "VmRSS:") {
			f := strings.Fields(line)
			kb, err := strconv.ParseInt(f[1], 10, 64)
			check(err)
			return kb * 1024
		}
	}
	return 0
}

func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := append([]float64(nil), v...)
	sort.Float64s(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// loadAvg is /proc/loadavg's first three fields: how busy the machine was.
func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	return strings.Join(strings.Fields(string(b))[:3], " ")
}

func hostInfo() string {
	b, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return runtime.GOOS
	}
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "model name") {
			return strings.TrimSpace(strings.SplitN(line, ":", 2)[1])
		}
	}
	return runtime.GOOS
}

// procs are the servers started, so a fatal error can stop them.
var procs []*exec.Cmd

func startProc(bin string, args ...string) *exec.Cmd {
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = nil, nil
	if err := cmd.Start(); err != nil {
		fail(fmt.Errorf("start %s: %w", filepath.Base(bin), err))
	}
	procs = append(procs, cmd)
	return cmd
}

// cleanup removes the scratch directory on a fatal error.
var cleanup = func() {}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "benchcmp:", err)
	for _, p := range procs {
		stopProc(p)
	}
	cleanup()
	os.Exit(1)
}

func stopProc(cmd *exec.Cmd) {
	if cmd.ProcessState != nil {
		return
	}
	cmd.Process.Kill()
	cmd.Wait()
}

func freePort() int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	check(err)
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func waitPort(port int) {
	for i := 0; i < 300; i++ {
		if c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port)); err == nil {
			c.Close()
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	fail(fmt.Errorf("nothing listening on port %d", port))
}

func check(err error) {
	if err != nil {
		fail(err)
	}
}
