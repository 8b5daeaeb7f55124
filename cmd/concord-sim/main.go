// Command concord-sim runs the deterministic failure simulations of
// package simulations: one scenario and seed (to replay a failure), or a
// sweep of scenarios x seeds, and writes a report.
//
//	concord-sim -scenario all -seeds 200 -report sim-report
//	concord-sim -scenario hostile -seed 17 -trace
//	concord-sim -scenario partitions -fault drop-increment -seeds 3
//
// It exits 1 if any run failed (with -fault: if any run passed, since a
// planted bug must be caught).
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"concord/simulations"
)

func main() { os.Exit(run(os.Args[1:])) }

func run(args []string) int {
	fs := flag.NewFlagSet("concord-sim", flag.ContinueOnError)
	scenario := fs.String("scenario", "all", "scenario name, comma-separated names, or all: "+strings.Join(simulations.ScenarioNames(), ", "))
	seed := fs.Uint64("seed", 0, "run this one seed (replay)")
	seeds := fs.Int("seeds", 20, "seeds per scenario for a sweep (1..N, from -seedbase+1)")
	seedBase := fs.Uint64("seedbase", 0, "first seed of a sweep minus one")
	workload := fs.String("workload", "", "workload: "+strings.Join(simulations.Workloads, ", ")+" (default all)")
	fault := fs.String("fault", "", "plant a broken merge: "+strings.Join(simulations.Faults, ", "))
	writes := fs.Int("writes", 0, "cap on local write units per run (0: none)")
	trace := fs.Bool("trace", false, "print every event (with -seed)")
	shrink := fs.Int("shrink", 16, "runs to spend shrinking each failure (0: none)")
	report := fs.String("report", "", "directory to write report.txt and report.html to")
	proc := fs.Bool("proc", false, "real-process mode: run the concord binary (-binary) as separate processes with SIGKILL/SIGSTOP and link faults, -seeds runs")
	binary := fs.String("binary", "bin/concord", "the concord binary, for -proc")
	regions := fs.Int("regions", 3, "regions, for -proc")
	nodes := fs.Int("nodes", 1, "nodes per region, for -proc")
	steps := fs.Int("steps", 12, "fault steps per run, for -proc")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *proc {
		return runProc(*binary, *regions, *nodes, *steps, *seed, *seeds, *seedBase)
	}
	names := simulations.ScenarioNames()
	if *scenario != "all" {
		names = strings.Split(*scenario, ",")
	}
	for _, n := range names {
		if _, ok := simulations.Lookup(n); !ok {
			fmt.Fprintf(os.Stderr, "concord-sim: unknown scenario %q (scenarios: %s)\n", n, strings.Join(simulations.ScenarioNames(), ", "))
			return 2
		}
	}
	if *workload != "" && !contains(simulations.Workloads, *workload) {
		fmt.Fprintf(os.Stderr, "concord-sim: unknown workload %q (workloads: %s)\n", *workload, strings.Join(simulations.Workloads, ", "))
		return 2
	}
	if *fault != "" && !contains(simulations.Faults, *fault) {
		fmt.Fprintf(os.Stderr, "concord-sim: unknown fault %q (faults: %s)\n", *fault, strings.Join(simulations.Faults, ", "))
		return 2
	}
	base := simulations.Options{Workload: *workload, Fault: *fault, MaxWrites: *writes}
	list := make([]uint64, 0, *seeds)
	if *seed != 0 {
		list = append(list, *seed)
		if *trace {
			base.Trace = func(line string) { fmt.Println(line) }
		}
	} else {
		for i := 1; i <= *seeds; i++ {
			list = append(list, *seedBase+uint64(i))
		}
	}
	start := time.Now()
	results, err := simulations.Sweep(names, list, base, *shrink)
	if err != nil {
		fmt.Fprintln(os.Stderr, "concord-sim:", err)
		return 2
	}
	simulations.WriteText(os.Stdout, results)
	fmt.Printf("\n%d runs in %v\n", len(results), time.Since(start).Round(time.Millisecond))
	if *report != "" {
		if err := writeReport(*report, results); err != nil {
			fmt.Fprintln(os.Stderr, "concord-sim:", err)
			return 2
		}
		fmt.Printf("report: %s\n", filepath.Join(*report, "report.html"))
	}
	failed := 0
	for _, r := range results {
		if r.Failed {
			failed++
		}
	}
	if *fault != "" {
		if failed < len(results) {
			fmt.Printf("fault %s was NOT caught in %d of %d runs\n", *fault, len(results)-failed, len(results))
			return 1
		}
		fmt.Printf("fault %s was caught in every run\n", *fault)
		return 0
	}
	if failed > 0 {
		return 1
	}
	return 0
}

func writeReport(dir string, results []simulations.Result) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	txt, err := os.Create(filepath.Join(dir, "report.txt"))
	if err != nil {
		return err
	}
	simulations.WriteText(txt, results)
	if err := txt.Close(); err != nil {
		return err
	}
	h, err := os.Create(filepath.Join(dir, "report.html"))
	if err != nil {
		return err
	}
	simulations.WriteHTML(h, "Concord deterministic simulations", results)
	return h.Close()
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// runProc runs real-process scenarios, one per seed, and prints each.
func runProc(binary string, regions, nodes, steps int, seed uint64, seeds int, base uint64) int {
	var list []uint64
	if seed != 0 {
		list = []uint64{seed}
	} else {
		for i := 1; i <= seeds; i++ {
			list = append(list, base+uint64(i))
		}
	}
	failed := 0
	for _, sd := range list {
		dir, err := os.MkdirTemp("", "concord-sim-proc-")
		if err != nil {
			fmt.Fprintln(os.Stderr, "concord-sim:", err)
			return 2
		}
		res := simulations.RunProc(simulations.ProcConfig{Binary: binary, Dir: dir, Regions: regions, Nodes: nodes, Seed: sd, Steps: steps,
			Log: func(l string) { fmt.Println("  " + l) }})
		status := "ok"
		if res.Failed {
			status = "FAILED"
			failed++
		}
		fmt.Printf("proc %dx%d seed %d: %s: %d writes, %d acknowledged, %d in doubt, %d refused; converged %d ms after the heal; %v\n",
			regions, nodes, sd, status, res.Writes, res.Acked, res.InDoubt, res.Refused, res.ConvergeMs, res.Took.Round(time.Millisecond))
		if res.Failed {
			fmt.Printf("%s\nlogs kept in %s\n", res.Failure, dir)
		} else {
			os.RemoveAll(dir)
		}
	}
	if failed > 0 {
		return 1
	}
	return 0
}
