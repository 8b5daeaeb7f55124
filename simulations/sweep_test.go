package simulations

import (
	"os"
	"strconv"
	"strings"
	"testing"
	"time"
)

// The short sweep make test runs: every scenario with every workload mix,
// SWEEPSEEDS seeds each (default 30, about 200 runs in all). A failure
// prints the seed, the shrunk history and the command that replays it.
func TestSweep(t *testing.T) {
	n := 30
	if v := os.Getenv("SWEEPSEEDS"); v != "" {
		n, _ = strconv.Atoi(v)
	} else if testing.Short() {
		n = 6
	}
	for _, sc := range Scenarios {
		t.Run(sc.Name, func(t *testing.T) {
			t.Parallel()
			start := time.Now()
			var writes, faults int
			var converge []int64
			for i := 1; i <= n; i++ {
				r := Run(Options{Scenario: sc.Name, Seed: uint64(i)})
				if r.Failed {
					r = Shrink(r, 12)
					t.Fatalf("%s seed %d failed; shrunk to %d writes; replay: %s\n%s\nhistory:\n%s",
						sc.Name, i, r.Writes, r.Options.Replay(), r.Failure, strings.Join(r.History, "\n"))
				}
				writes += r.Writes
				faults += r.Faults
				converge = append(converge, r.ConvergeMs)
			}
			t.Logf("%d runs, %d writes, %d faults, convergence after heal p50 %d ms, max %d ms (%v)",
				n, writes, faults, quantile(converge, 0.5), quantile(converge, 1), time.Since(start).Round(time.Millisecond))
		})
	}
}

// Each deliberately broken merge (faults.go) is caught: the run fails a
// checker, shrinks to a shorter failing run, and its replay fails the same
// way.
func TestFaultsAreCaught(t *testing.T) {
	// min is how many of the seeds must catch the fault: remove-wins
	// shows only when an add and a remove of one member are concurrent,
	// which a seed with few partitions may never produce; the others
	// break every run.
	const seeds = 4
	cases := []struct {
		fault, scenario, workload string
		min                       int
	}{
		{"drop-increment", "partitions", "counters", seeds},
		{"remove-wins", "partitions", "followers", seeds / 2},
		{"skip-relay", "relay", "", seeds},
		{"reuse-seq", "backup-restore", "", seeds},
		{"lose-ack", "partitions", "mixed", seeds},
	}
	for _, c := range cases {
		t.Run(c.fault, func(t *testing.T) {
			t.Parallel()
			caught := 0
			for seed := uint64(1); seed <= seeds; seed++ {
				o := Options{Scenario: c.scenario, Seed: seed, Workload: c.workload, Fault: c.fault}
				r := Run(o)
				if !r.Failed {
					t.Logf("seed %d: the checkers passed a run with fault %s (%d writes, %d faults injected)", seed, c.fault, r.Writes, r.Faults)
					continue
				}
				caught++
				sh := Shrink(r, 16)
				if !sh.Failed || sh.Writes > r.Writes {
					t.Fatalf("seed %d: shrinking gave a passing or longer run: %d writes from %d", seed, sh.Writes, r.Writes)
				}
				again := Run(sh.Options)
				if !again.Failed || again.Failure != sh.Failure {
					t.Fatalf("seed %d: replaying %s did not fail the same way:\n%s\nvs\n%s", seed, sh.Options.Replay(), again.Failure, sh.Failure)
				}
				t.Logf("seed %d: caught (%v), shrunk from %d to %d writes; keys %v; %d history lines on the first; replay: %s",
					seed, sh.Anomalies, r.Writes, sh.Writes, sh.Keys, len(sh.KeyHistory), sh.Options.Replay())
			}
			if caught < c.min {
				t.Fatalf("fault %s caught in %d of %d seeds, want at least %d", c.fault, caught, seeds, c.min)
			}
		})
	}
}
