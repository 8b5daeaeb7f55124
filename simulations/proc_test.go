package simulations

import (
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// One real-process scenario: three one-node regions as separate processes,
// inter-region links through fault proxies, a seeded schedule of SIGKILLs
// and restarts, SIGSTOP/SIGCONT, link cuts and delays under a write load;
// after the heal every node reports the same digest and holds every
// acknowledged write, and counters equal acknowledged increments plus a
// subset of those in doubt.
func TestProcessScenario(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary and runs processes")
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "concord")
	build := exec.Command("go", "build", "-o", bin, "../cmd/concord")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	res := RunProc(ProcConfig{Binary: bin, Dir: dir, Regions: 3, Nodes: 1, Seed: 1, Steps: 10, Log: func(l string) { t.Log(l) }})
	t.Logf("%d writes: %d acknowledged, %d in doubt, %d refused; converged %d ms after the heal; took %v",
		res.Writes, res.Acked, res.InDoubt, res.Refused, res.ConvergeMs, res.Took)
	if res.Failed {
		t.Fatalf("%v\nfaults:\n%s", res.Failure, strings.Join(res.Faults, "\n"))
	}
	if res.Acked == 0 {
		t.Fatalf("no write was acknowledged")
	}
}
