package main

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"concord/region"
)

func TestOpsHandler(t *testing.T) {
	reg := newRegistry()
	region.NewMetrics(reg)
	var live, ready atomic.Bool
	ts := httptest.NewServer(opsHandler(reg, live.Load, ready.Load))
	defer ts.Close()
	get := func(path string) (int, string) {
		t.Helper()
		resp, err := http.Get(ts.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	check := func(path string, want int) {
		t.Helper()
		if code, body := get(path); code != want {
			t.Errorf("%s: %d %q, want %d", path, code, body, want)
		}
	}
	// Starting: neither live nor ready.
	check("/healthz", 503)
	check("/readyz", 503)
	// Serving, region not ready (no leader yet).
	live.Store(true)
	check("/healthz", 200)
	check("/readyz", 503)
	ready.Store(true)
	check("/readyz", 200)
	// Stopping: not ready even if the region still is.
	live.Store(false)
	check("/healthz", 503)
	check("/readyz", 503)

	code, body := get("/metrics")
	if code != 200 {
		t.Fatalf("/metrics: %d", code)
	}
	for _, name := range []string{"go_goroutines", "process_cpu_seconds_total", "concord_raft_term",
		"concord_write_commit_seconds_bucket", "promhttp_metric_handler_requests_total"} {
		if !strings.Contains(body, "\n"+name) {
			t.Errorf("/metrics lacks %s", name)
		}
	}
	check("/nothing", 404)
	if resp, err := http.Post(ts.URL+"/healthz", "text/plain", nil); err != nil || resp.StatusCode != 405 {
		t.Errorf("POST /healthz: %v %v", resp.Status, err)
	}
}
