package main

import (
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// waitReady polls the healthcheck subcommand, run as its own process (as a
// container's HEALTHCHECK runs it), until it reports the node ready.
func waitReady(t *testing.T, addr string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		cmd := exec.Command(buildBinary(t), "healthcheck", "--ready", "--addr", addr)
		cmd.Env = cleanEnv()
		out, err := cmd.CombinedOutput()
		if err == nil {
			if len(out) != 0 {
				t.Errorf("healthcheck printed %q on success", out)
			}
			return
		}
		if cmd.ProcessState == nil || cmd.ProcessState.ExitCode() != 1 || strings.Count(string(out), "\n") != 1 {
			t.Fatalf("healthcheck: %v, output %q", err, out)
		}
		if time.Now().After(deadline) {
			t.Fatalf("not ready after 30s: %s", out)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// A one-node region keeps acknowledged writes across a clean stop and a
// restart from its data dir; SIGTERM and SHUTDOWN both stop it cleanly.
func TestRegionRestart(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	dir := t.TempDir()
	raft, metrics := freeAddr(t), freeAddr(t)
	args := []string{"--addr", "127.0.0.1:0", "--node-id", "n1", "--data-dir", dir,
		"--peer", "n1=" + raft, "--metrics-addr", metrics}

	p := startProc(t, args...)
	waitReady(t, p.addr)
	c, err := dialRESP(p.addr, "", 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	for _, cmd := range [][]string{{"SET", "k", "v"}, {"INCR", "n"}, {"INCR", "n"}, {"HSET", "h", "f", "x"}} {
		if r, err := c.do(cmd...); err != nil || r.kind == '-' {
			t.Fatalf("%v: %+v %v", cmd, r, err)
		}
	}
	if r, err := c.do("GET", "k"); err != nil || r.text() != "v" {
		t.Errorf("GET before restart: %+v %v", r, err)
	}
	r, err := c.do("INFO", "persistence")
	if err != nil || infoFields(r.str)["region_durability"] != "fsync" {
		t.Errorf("INFO persistence: %q %v", r.str, err)
	}
	c.Close()

	code, out, errOut := runCmd("region", "nodes", "--addr", p.addr)
	if code != 0 || !strings.Contains(out, "n1  "+raft+"  voter     leader") {
		t.Errorf("region nodes: exit %d\n%s%s", code, out, errOut)
	}
	resp, err := http.Get("http://" + metrics + "/readyz")
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("/readyz: %v %v", resp, err)
	}
	resp, err = http.Get("http://" + metrics + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(body), "\nconcord_raft_state{state=\"Leader\"} 1") {
		t.Errorf("/metrics lacks the leader state:\n%s", body)
	}

	p.cmd.Process.Signal(syscall.SIGTERM)
	if err := waitExit(t, p.cmd); err != nil {
		t.Fatalf("exit after SIGTERM: %v\n%s", err, p.stderr)
	}

	p = startProc(t, args...)
	waitReady(t, p.addr)
	c, err = dialRESP(p.addr, "", 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for _, tc := range []struct {
		cmd  []string
		want string
	}{{[]string{"GET", "k"}, "v"}, {[]string{"GET", "n"}, "2"}, {[]string{"HGET", "h", "f"}, "x"}} {
		if r, err := c.do(tc.cmd...); err != nil || r.text() != tc.want {
			t.Errorf("after restart %v: %+v %v, want %q\n%s", tc.cmd, r, err, tc.want, p.stderr)
		}
	}
	// SHUTDOWN closes the connection without a reply and stops the node.
	if r, err := c.do("SHUTDOWN"); err == nil {
		t.Errorf("SHUTDOWN replied %+v", r)
	}
	if err := waitExit(t, p.cmd); err != nil {
		t.Fatalf("exit after SHUTDOWN: %v\n%s", err, p.stderr)
	}
}

// A three-node region over mutual TLS, configured as the docs describe:
// writes through a follower reach the leader, a leader stopped by SIGTERM
// hands leadership over first, and the survivors keep serving the data.
func TestRegionThreeNodesTLS(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	dir := t.TempDir()
	ca := testCA(t, dir)
	ids := []string{"n1", "n2", "n3"}
	var peers []string
	for _, id := range ids {
		peers = append(peers, id+"="+freeAddr(t))
	}
	procs := map[string]*proc{}
	for _, id := range ids {
		cert, key := testCert(t, dir, ca, id, "127.0.0.1")
		conf := writeFile(t, fmt.Sprintf("node-id %s\ndata-dir %s\ntls-cert-file %s\ntls-key-file %s\ntls-ca-cert-file %s\n",
			id, filepath.Join(dir, id), cert, key, filepath.Join(dir, "ca.crt")))
		procs[id] = startProc(t, "--config", conf, "--addr", "127.0.0.1:0", "--peers", strings.Join(peers, ","))
	}
	leader := func(except string) string {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for {
			for id, p := range procs {
				if id == except {
					continue
				}
				if c, err := dialRESP(p.addr, "", 2*time.Second); err == nil {
					r, err := c.do("INFO", "replication")
					c.Close()
					if err == nil && infoFields(r.str)["role"] == "master" {
						return id
					}
				}
			}
			if time.Now().After(deadline) {
				t.Fatal("no leader after 30s")
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	for _, p := range procs {
		waitReady(t, p.addr)
	}
	lid := leader("")
	var follower string
	for _, id := range ids {
		if id != lid {
			follower = id
			break
		}
	}
	c, err := dialRESP(procs[follower].addr, "", 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if r, err := c.do("SET", "k", "through a follower"); err != nil || r.text() != "OK" {
		t.Fatalf("SET on follower: %+v %v", r, err)
	}
	c.Close()

	lp := procs[lid]
	lp.cmd.Process.Signal(syscall.SIGTERM)
	if err := waitExit(t, lp.cmd); err != nil {
		t.Fatalf("leader exit after SIGTERM: %v\n%s", err, lp.stderr)
	}
	if !strings.Contains(lp.stderr.String(), "leadership transferred before shutdown") {
		t.Errorf("leader did not hand over leadership:\n%s", lp.stderr)
	}
	newLeader := leader(lid)
	for id, p := range procs {
		if id == lid {
			continue
		}
		waitReady(t, p.addr)
		c, err := dialRESP(p.addr, "", 10*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		if r, err := c.do("GET", "k"); err != nil || r.text() != "through a follower" {
			t.Errorf("%s after failover: GET k = %+v %v", id, r, err)
		}
		c.Close()
	}
	code, out, errOut := runCmd("region", "nodes", "--addr", procs[newLeader].addr)
	if code != 0 || !strings.Contains(out, newLeader+"  ") || !strings.Contains(out, "leader") {
		t.Errorf("region nodes: exit %d\n%s%s", code, out, errOut)
	}
}
