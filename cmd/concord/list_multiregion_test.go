package main

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestMultiRegionListQueue: a job queue shared by two regions that are cut
// off from each other. Both keep pushing and popping; after the partition
// heals they hold the same list, every job pushed and not popped is in it,
// and the jobs both regions popped (at-least-once delivery) are counted in
// INFO crdt's crdt_list_concurrent_pops.
func TestMultiRegionListQueue(t *testing.T) {
	d := newDeployment(t, mrOptions{regions: 2, nodes: 1})
	for i := 1; i <= 10; i++ {
		d.mustDo(0, "RPUSH", "jobs", fmt.Sprintf("job%d", i))
	}
	d.waitConverged(60 * time.Second)
	d.partition(0, 1)

	popped := map[string]int{}
	for r := 0; r < 2; r++ {
		for i := 0; i < 3; i++ {
			v := d.mustDo(r, "LPOP", "jobs")
			popped[v.(string)]++
		}
		d.mustDo(r, "RPUSH", "jobs", "new-"+d.name(r))
	}
	d.healAll()
	d.waitConverged(60 * time.Second)

	var lists []string
	for r := 0; r < 2; r++ {
		v := d.mustDo(r, "LRANGE", "jobs", 0, -1)
		var els []string
		for _, e := range v.([]any) {
			els = append(els, e.(string))
		}
		lists = append(lists, strings.Join(els, ","))
	}
	if lists[0] != lists[1] {
		t.Fatalf("regions differ: %s vs %s", lists[0], lists[1])
	}
	want := []string{"job4", "job5", "job6", "job7", "job8", "job9", "job10", "new-" + d.name(0), "new-" + d.name(1)}
	if lists[0] != strings.Join(want, ",") {
		t.Errorf("jobs = %s, want %s", lists[0], strings.Join(want, ","))
	}
	for _, j := range []string{"job1", "job2", "job3"} {
		if popped[j] != 2 {
			t.Errorf("%s popped %d times, want 2 (both regions saw it at the head)", j, popped[j])
		}
	}
	for r := 0; r < 2; r++ {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		info, err := d.client(r).Info(ctx, "crdt").Result()
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		n := -1
		for _, line := range strings.Split(info, "\r\n") {
			if v, ok := strings.CutPrefix(line, "crdt_list_concurrent_pops:"); ok {
				n, _ = strconv.Atoi(v)
			}
		}
		if n != 3 {
			t.Errorf("region %s: crdt_list_concurrent_pops = %d, want 3\n%s", d.name(r), n, info)
		}
	}
}
