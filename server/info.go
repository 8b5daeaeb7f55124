package server

import (
	"crypto/rand"
	"encoding/hex"
	"os"
	"runtime"
	"strconv"
	"strings"
	"time"

	"concord/crdt"
)

// INFO with Redis 7.0's sections and field names. Every figure is measured
// or counted; a field Concord has no real figure for is left out rather
// than filled with a plausible number. Concord-specific fields are prefixed
// "concord_" or "crdt_".

// infoSections lists the sections in Redis's order; default ones are
// printed by INFO without arguments, the rest only when asked for or with
// "all"/"everything".
var infoSections = []struct {
	name    string
	dflt    bool
	section func(s *Server) []string
}{
	{"server", true, (*Server).infoServer},
	{"clients", true, (*Server).infoClients},
	{"memory", true, (*Server).infoMemory},
	{"persistence", true, (*Server).infoPersistence},
	{"stats", true, (*Server).infoStats},
	{"replication", true, (*Server).infoReplication},
	{"cpu", true, (*Server).infoCPU},
	{"modules", true, func(*Server) []string { return nil }},
	{"commandstats", false, (*Server).infoCommandStats},
	{"errorstats", true, (*Server).infoErrorStats},
	{"cluster", true, func(*Server) []string { return []string{"cluster_enabled:0"} }},
	{"keyspace", true, (*Server).infoKeyspace},
	// crdt walks the keyspace (digests): only by name or with
	// "everything", as Redis treats module sections.
	{"crdt", false, (*Server).infoCRDT},
}

// runID identifies this run of the process, as Redis's run_id.
var runID = func() string {
	var b [20]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}()

func cmdInfo(c *client, args [][]byte) crdt.Reply {
	return verbatim(c.srv.info(args[1:]))
}

// info renders the sections named by args (Redis's genInfoSectionDict).
func (s *Server) info(args [][]byte) string {
	want := map[string]bool{}
	all := false
	if len(args) == 0 {
		want["default"] = true
	}
	for _, a := range args {
		switch n := strings.ToLower(string(a)); n {
		case "all":
			all = true
		case "everything":
			all = true
			want["crdt"] = true
		default:
			want[n] = true
		}
	}
	var parts []string
	for _, sec := range infoSections {
		if sec.name == "crdt" && !want["crdt"] {
			continue // not part of "all"
		}
		if !all && !want[sec.name] && !(want["default"] && sec.dflt) {
			continue
		}
		title := strings.ToUpper(sec.name[:1]) + sec.name[1:]
		switch sec.name {
		case "cpu":
			title = "CPU"
		case "crdt":
			title = "CRDT"
		}
		var b strings.Builder
		b.WriteString("# " + title + "\r\n")
		for _, l := range sec.section(s) {
			b.WriteString(l)
			b.WriteString("\r\n")
		}
		parts = append(parts, b.String())
	}
	return strings.Join(parts, "\r\n")
}

func (s *Server) infoServer() []string {
	now := time.Now()
	up := now.Sub(s.started)
	exe, _ := os.Executable()
	lines := []string{
		"redis_version:" + Version,
		"redis_mode:standalone",
		"os:" + runtime.GOOS + " " + runtime.GOARCH,
		"arch_bits:" + strconv.Itoa(strconv.IntSize),
		"process_id:" + strconv.Itoa(os.Getpid()),
		"run_id:" + runID,
		"tcp_port:" + strconv.Itoa(s.port()),
		"server_time_usec:" + itoa(now.UnixMicro()),
		"uptime_in_seconds:" + itoa(int64(up/time.Second)),
		"uptime_in_days:" + itoa(int64(up/(24*time.Hour))),
		"hz:" + strconv.Itoa(expireHz),
		"configured_hz:" + strconv.Itoa(expireHz),
		"executable:" + exe,
		"config_file:",
		"concord_version:" + s.opts.ConcordVersion,
		"go_version:" + runtime.Version(),
	}
	return lines
}

func (s *Server) infoClients() []string {
	var blocked, inTimeout int
	if s.blk != nil {
		blocked, inTimeout = s.blk.counts()
	}
	return []string{
		"connected_clients:" + strconv.Itoa(s.numClients()),
		"maxclients:" + itoa(s.cfg.maxClients.Load()),
		"blocked_clients:" + strconv.Itoa(blocked),
		"tracking_clients:0",
		"clients_in_timeout_table:" + strconv.Itoa(inTimeout),
	}
}

func (s *Server) infoMemory() []string {
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	lines := []string{
		"used_memory:" + strconv.FormatUint(m.HeapAlloc, 10),
		"used_memory_human:" + bytesToHuman(m.HeapAlloc),
	}
	if rss, ok := processRSS(); ok {
		lines = append(lines,
			"used_memory_rss:"+strconv.FormatUint(rss, 10),
			"used_memory_rss_human:"+bytesToHuman(rss))
	}
	lines = append(lines,
		"maxmemory:0",
		"maxmemory_human:0B",
		"maxmemory_policy:noeviction",
		"mem_allocator:go-"+runtime.Version(),
		"go_heap_sys:"+strconv.FormatUint(m.HeapSys, 10),
		"go_sys:"+strconv.FormatUint(m.Sys, 10),
		"go_num_gc:"+strconv.FormatUint(uint64(m.NumGC), 10),
	)
	// The region's script cache (crdt/script): how many scripts it holds.
	var scripts int
	s.store.Read(func(ks *crdt.Keyspace) { scripts, _ = ks.ScriptStats() })
	lines = append(lines, "number_of_cached_scripts:"+strconv.Itoa(scripts))
	return lines
}

// infoPersistence says what is true of the server: no RDB, no AOF,
// nothing loading, no save since start. A single node persists nothing
// (concord_persistence:none); a region's node persists its Raft log and
// snapshots, and the store states how (its fields follow).
func (s *Server) infoPersistence() []string {
	lines := []string{
		"loading:0",
		"async_loading:0",
		"rdb_bgsave_in_progress:0",
		"rdb_last_save_time:" + itoa(s.started.Unix()),
		"rdb_saves:0",
		"aof_enabled:0",
		"aof_rewrite_in_progress:0",
	}
	if s.replica == nil {
		return append(lines, "concord_persistence:none")
	}
	return appendFields(lines, s.replica.InfoFields("persistence"))
}

func (s *Server) infoStats() []string {
	st := &s.stats
	var ks crdt.Stats
	s.store.Read(func(k *crdt.Keyspace) { ks = k.Stats })
	chans, pats, shard := s.hub.counts()
	lines := []string{
		"total_connections_received:" + itoa(st.connsReceived.Load()),
		"total_commands_processed:" + itoa(st.commands.Load()),
		"total_net_input_bytes:" + itoa(st.netInput.Load()),
		"total_net_output_bytes:" + itoa(st.netOutput.Load()),
		"rejected_connections:" + itoa(st.rejectedConns.Load()),
		"expired_keys:" + strconv.FormatUint(ks.ExpiredKeys, 10),
		"evicted_keys:0",
		"pubsub_channels:" + itoa(int64(chans)),
		"pubsub_patterns:" + itoa(int64(pats)),
		"pubsubshard_channels:" + itoa(int64(shard)),
		"total_error_replies:" + itoa(st.errorReplies.Load()),
		"crdt_type_conflicts:" + strconv.FormatUint(ks.TypeConflicts, 10),
	}
	if b := s.blk; b != nil {
		// Pops the blocker proposed for blocked clients: delivered, found
		// nothing (another client or region took the data first; the
		// client stayed blocked), or lost with a client that disconnected
		// meanwhile (docs/blocking.md).
		lines = append(lines,
			"blocked_pops_served:"+itoa(b.stats.served.Load()),
			"blocked_pops_raced:"+itoa(b.stats.raced.Load()),
			"blocked_pops_lost:"+itoa(b.stats.lost.Load()))
	}
	return lines
}

// infoReplication describes a single node as a Redis master without
// replicas; a region's node gets the store's fields instead (role first,
// as Redis puts it), which say what Raft says.
func (s *Server) infoReplication() []string {
	var lines []string
	if s.replica == nil {
		lines = []string{"role:master", "connected_slaves:0"}
	} else {
		fields := s.replica.InfoFields("replication")
		for i, f := range fields {
			if f[0] == "role" && i > 0 {
				fields = append(append([][2]string{f}, fields[:i:i]...), fields[i+1:]...)
				break
			}
		}
		lines = appendFields(nil, fields)
	}
	o := s.origin()
	return append(lines,
		"concord_region:"+strconv.FormatUint(uint64(o.Region), 10),
		"concord_incarnation:"+strconv.FormatUint(uint64(o.Incarnation), 10),
	)
}

// OriginReporter is implemented by a Store whose origin is decided at run
// time (a region takes a new incarnation when it starts from empty state,
// and may renew it): INFO then shows the store's current origin instead of
// Options.Origin.
type OriginReporter interface {
	Origin() crdt.Origin
}

// origin is the origin INFO shows: the store's if it reports one.
func (s *Server) origin() crdt.Origin {
	if r, ok := s.store.(OriginReporter); ok {
		return r.Origin()
	}
	return s.opts.Origin
}

// appendFields renders a store's INFO fields as "name:value" lines.
func appendFields(lines []string, fields [][2]string) []string {
	for _, f := range fields {
		lines = append(lines, f[0]+":"+f[1])
	}
	return lines
}

func (s *Server) infoCPU() []string {
	sys, user, ok := processCPU()
	if !ok {
		return nil
	}
	return []string{
		"used_cpu_sys:" + strconv.FormatFloat(sys, 'f', 6, 64),
		"used_cpu_user:" + strconv.FormatFloat(user, 'f', 6, 64),
	}
}

func (s *Server) infoCommandStats() []string {
	var lines []string
	add := func(c *command) {
		st := &c.stats
		calls, rej, failed := st.calls.Load(), st.rejected.Load(), st.failed.Load()
		if calls == 0 && rej == 0 && failed == 0 {
			return
		}
		usec := st.nanos.Load() / 1000
		per := 0.0
		if calls > 0 {
			per = float64(usec) / float64(calls)
		}
		lines = append(lines, "cmdstat_"+c.name+":calls="+itoa(calls)+",usec="+itoa(usec)+
			",usec_per_call="+strconv.FormatFloat(per, 'f', 2, 64)+
			",rejected_calls="+itoa(rej)+",failed_calls="+itoa(failed))
	}
	for _, c := range s.cmds {
		add(c)
		for _, sub := range c.subList() {
			add(sub)
		}
	}
	return lines
}

func (s *Server) infoErrorStats() []string {
	var lines []string
	for _, e := range s.stats.errorCounts() {
		lines = append(lines, "errorstat_"+e.code+":count="+itoa(e.count))
	}
	return lines
}

// infoCRDT shows the conflict counters, the version vector and, per
// database holding replicated state, its digest (crdt.Keyspace.DBDigest):
// equal in every region that applied the same effects. The digests walk
// every key under the read lock, stalling this node's applies meanwhile,
// which is why the section is not in INFO or INFO all.
func (s *Server) infoCRDT() []string {
	var lines []string
	s.store.Read(func(ks *crdt.Keyspace) {
		st := ks.Stats
		u := func(v uint64) string { return strconv.FormatUint(v, 10) }
		var vv strings.Builder
		for i, e := range ks.Version() {
			if i > 0 {
				vv.WriteByte(',')
			}
			vv.WriteString(u(uint64(e.Origin.Region)) + "." + u(uint64(e.Origin.Incarnation)) + "=" + u(e.Seq))
		}
		lines = append(lines,
			"crdt_version_vector:"+vv.String(),
			"crdt_conflicts_type:"+u(st.TypeConflicts),
			"crdt_conflicts_lww:"+u(st.LWWConflicts),
			"crdt_conflicts_add_wins:"+u(st.AddWinsConflicts),
			"crdt_list_concurrent_pops:"+u(st.ListConcurrentPops),
			"crdt_conflicts_delete_wins:"+u(st.DeleteWinsConflicts),
			"crdt_hll_tombstones:"+strconv.Itoa(ks.HLLTombstones()))
		for i := 0; i < crdt.NumDBs; i++ {
			if ks.DBEmpty(i) {
				continue
			}
			d := ks.DBDigest(i)
			lines = append(lines, "db"+strconv.Itoa(i)+":digest="+hex.EncodeToString(d[:])+",keys="+strconv.Itoa(ks.DBSize(i)))
		}
	})
	return lines
}

// infoKeyspace lists the non-empty databases. avg_ttl is left out: Concord
// does not estimate it.
func (s *Server) infoKeyspace() []string {
	var lines []string
	s.store.Read(func(ks *crdt.Keyspace) {
		for i := 0; i < crdt.NumDBs; i++ {
			if n := ks.DBSize(i); n > 0 {
				lines = append(lines, "db"+strconv.Itoa(i)+":keys="+strconv.Itoa(n)+
					",expires="+strconv.Itoa(ks.KeysWithTTL(i)))
			}
		}
	})
	return lines
}

// bytesToHuman is Redis's bytesToHuman (100B, 1.28M, 2.00G, ...).
func bytesToHuman(n uint64) string {
	d := float64(n)
	switch {
	case n < 1024:
		return strconv.FormatUint(n, 10) + "B"
	case n < 1<<20:
		return strconv.FormatFloat(d/(1<<10), 'f', 2, 64) + "K"
	case n < 1<<30:
		return strconv.FormatFloat(d/(1<<20), 'f', 2, 64) + "M"
	case n < 1<<40:
		return strconv.FormatFloat(d/(1<<30), 'f', 2, 64) + "G"
	case n < 1<<50:
		return strconv.FormatFloat(d/(1<<40), 'f', 2, 64) + "T"
	default:
		return strconv.FormatFloat(d/(1<<50), 'f', 2, 64) + "P"
	}
}

// processRSS reads the resident set size from /proc (Linux only).
func processRSS() (uint64, bool) {
	b, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		return 0, false
	}
	f := strings.Fields(string(b))
	if len(f) < 2 {
		return 0, false
	}
	pages, err := strconv.ParseUint(f[1], 10, 64)
	if err != nil {
		return 0, false
	}
	return pages * uint64(os.Getpagesize()), true
}
