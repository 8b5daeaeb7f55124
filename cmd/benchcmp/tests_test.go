package main

import (
	"fmt"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"
)

// lrangeCSV is redis-benchmark 7.0.15's output for -t lpush,lrange_100.
const lrangeCSV = `"test","rps","avg_latency_ms","min_latency_ms","p50_latency_ms","p95_latency_ms","p99_latency_ms","max_latency_ms"
"LPUSH","1375.52","3.361","0.024","0.095","3.583","10.527","926.719"
"LPUSH (needed to benchmark LRANGE)","13888.89","0.208","0.032","0.135","0.527","0.815","3.383"
"LRANGE_100 (first 100 elements)","12820.51","0.270","0.048","0.119","1.111","3.583","5.119"
"publish benchcmp:channel xxxx","251999.98","0.200","0.040","0.111","0.359","3.663","3.703"
`

func TestParseCSV(t *testing.T) {
	for _, c := range []struct {
		test string
		want float64
	}{{"lpush", 1375.52}, {"LRANGE_100", 12820.51}, {"publish", 251999.98}} {
		got, err := parseCSV([]byte(lrangeCSV), c.test)
		if err != nil || got != c.want {
			t.Errorf("parseCSV(%s) = %v, %v; want %v", c.test, got, err, c.want)
		}
	}
	if _, err := parseCSV([]byte(lrangeCSV), "rpop"); err == nil {
		t.Error("parseCSV found an RPOP row that is not there")
	}
	if _, err := parseCSV([]byte(`"test","rps"`+"\n"), "set"); err == nil {
		t.Error("parseCSV found a figure in a header alone")
	}
}

func TestIssued(t *testing.T) {
	for _, c := range [][3]int{{2000, 1, 2000}, {2000, 16, 2000}, {2001, 16, 2016}, {1, 16, 16}} {
		if got := issued(c[0], c[1]); got != c[2] {
			t.Errorf("issued(%d, %d) = %d, want %d", c[0], c[1], got, c[2])
		}
	}
}

func TestSummarize(t *testing.T) {
	if r := summarize([]benchResult{{rps: 3}, {rps: 1}, {rps: 2}}); r.err != "" || r.rps != 2 {
		t.Errorf("median = %+v", r)
	}
	r := summarize([]benchResult{{rps: 3}, {err: "Error from server: NOSCRIPT"}, {rps: 2}})
	if r.err == "" || !strings.HasPrefix(r.cell(), "error: ") || ratioOf(r, benchResult{rps: 1}) != "n/a" {
		t.Errorf("a failed round gave %+v, cell %q", r, r.cell())
	}
}

// TestAgainstRedis runs every test with its setup and check against a real
// redis-server, and a failing command, which must give an error, not a
// figure.
func TestAgainstRedis(t *testing.T) {
	for _, bin := range []string{"redis-server", "redis-benchmark"} {
		if _, err := exec.LookPath(bin); err != nil {
			t.Skipf("%s not installed", bin)
		}
	}
	port := freePort()
	srv := exec.Command("redis-server", "--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", t.TempDir())
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	defer stopProc(srv)
	waitPort(port)
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	o := &options{benchBin: "redis-benchmark", clients: 5, keyspace: 1000, size: 64, benchTimeout: time.Minute}
	for _, pipe := range []int{1, 16} {
		for _, test := range strings.Split("set,get,lpush,rpop,lrange_100,publish,evalsha", ",") {
			// 1001 is not a multiple of 16: the checks must expect what
			// redis-benchmark really sends.
			r := runTest(o, addr, test, 1001, pipe, []int{srv.Process.Pid})
			if r.err != "" || r.rps <= 0 {
				t.Errorf("%s -P %d: %+v", test, pipe, r)
			}
		}
	}
	r := benchmark(o, addr, "evalsha", []string{"evalsha", strings.Repeat("f", 40), "0"}, 100, 1)
	if !strings.Contains(r.err, "NOSCRIPT") {
		t.Errorf("EVALSHA of an unknown script gave %+v, want a NOSCRIPT error", r)
	}
	// A check that finds the server did not do the work fails the row.
	c, err := dialClient(addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.close()
	if err := c.expectInt(5, "LLEN", "no-such-list"); err == nil {
		t.Error("expectInt accepted LLEN 0 for 5")
	}
}
