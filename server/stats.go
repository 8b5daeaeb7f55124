package server

import (
	"sort"
	"sync"
	"sync/atomic"
)

// errorStatsLimit caps how many distinct error codes INFO errorstats
// tracks, as Redis does (ERRORSTATS_LIMIT).
const errorStatsLimit = 128

// serverStats are the server-wide counters INFO reports. Every figure is
// counted, none estimated.
type serverStats struct {
	connsReceived atomic.Int64
	rejectedConns atomic.Int64
	commands      atomic.Int64 // commands executed (rejected ones excluded, as in Redis)
	netInput      atomic.Int64
	netOutput     atomic.Int64
	errorReplies  atomic.Int64
	expireCycles  atomic.Int64 // active expiry sweeps that proposed removals

	mu     sync.Mutex
	errors map[string]int64 // error code -> count
}

func (st *serverStats) countError(code string) {
	st.errorReplies.Add(1)
	st.mu.Lock()
	if st.errors == nil {
		st.errors = make(map[string]int64)
	}
	if _, ok := st.errors[code]; ok || len(st.errors) < errorStatsLimit {
		st.errors[code]++
	}
	st.mu.Unlock()
}

type errorCount struct {
	code  string
	count int64
}

// errorCounts returns the error counters sorted by code.
func (st *serverStats) errorCounts() []errorCount {
	st.mu.Lock()
	out := make([]errorCount, 0, len(st.errors))
	for k, v := range st.errors {
		out = append(out, errorCount{k, v})
	}
	st.mu.Unlock()
	sort.Slice(out, func(i, j int) bool { return out[i].code < out[j].code })
	return out
}

// resetStats implements CONFIG RESETSTAT.
func (s *Server) resetStats() {
	st := &s.stats
	st.connsReceived.Store(0)
	st.rejectedConns.Store(0)
	st.commands.Store(0)
	st.netInput.Store(0)
	st.netOutput.Store(0)
	st.errorReplies.Store(0)
	st.expireCycles.Store(0)
	st.mu.Lock()
	st.errors = nil
	st.mu.Unlock()
	for _, c := range s.table {
		c.stats.reset()
		for _, sub := range c.subs {
			sub.stats.reset()
		}
	}
}

func (cs *cmdStats) reset() {
	cs.calls.Store(0)
	cs.nanos.Store(0)
	cs.rejected.Store(0)
	cs.failed.Store(0)
}
