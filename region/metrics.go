package region

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are a node's Prometheus measurements. A nil *Metrics records
// nothing, so the node never checks.
type Metrics struct {
	state      *prometheus.GaugeVec
	term       prometheus.Gauge
	commitIdx  prometheus.Gauge
	appliedIdx prometheus.Gauge
	commitLat  prometheus.Histogram
	batchUnits prometheus.Histogram
	batchBytes prometheus.Histogram
	forwarded  prometheus.Counter
	fences     *prometheus.CounterVec
	failures   *prometheus.CounterVec
	snapPause  prometheus.Histogram
	snapBytes  prometheus.Gauge

	// The replication log and remote input (cross-region replication).
	replRecords   prometheus.Gauge
	replBytes     prometheus.Gauge
	replFirstPos  prometheus.Gauge
	replNextPos   prometheus.Gauge
	remoteBatches *prometheus.CounterVec
	remoteMerged  prometheus.Counter // children of remoteBatches
	remoteDup     prometheus.Counter
	remoteRej     prometheus.Counter
	chunks        prometheus.Counter
	transfers     prometheus.Counter
	transferErrs  prometheus.Counter

	// Conflict rules that fired in this node's applies, by kind.
	conflictType, conflictLWW, conflictAddWins prometheus.Counter
	conflictListPop                            prometheus.Counter
}

// raftStates are the values of the concord_raft_state gauge's label.
var raftStates = []string{"Follower", "Candidate", "Leader", "Shutdown"}

// NewMetrics creates the node's metrics and registers them with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		state: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "concord_raft_state",
			Help: "1 for the node's current Raft state, 0 for the others.",
		}, []string{"state"}),
		term: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "concord_raft_term", Help: "Current Raft term.",
		}),
		commitIdx: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "concord_raft_commit_index", Help: "Highest log index known to be committed.",
		}),
		appliedIdx: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "concord_raft_applied_index", Help: "Highest log index applied to the keyspace.",
		}),
		commitLat: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "concord_write_commit_seconds",
			Help:    "Time from a write's submission to its commit and apply (local writes on this node).",
			Buckets: prometheus.ExponentialBuckets(0.0001, 2, 16),
		}),
		batchUnits: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "concord_raft_entry_units",
			Help:    "Write units packed into one Raft log entry (group commit).",
			Buckets: prometheus.ExponentialBuckets(1, 2, 12),
		}),
		batchBytes: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "concord_raft_entry_bytes",
			Help:    "Size of proposed Raft log entries.",
			Buckets: prometheus.ExponentialBuckets(64, 4, 10),
		}),
		forwarded: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "concord_forwarded_units_total",
			Help: "Write units this node forwarded to the region leader.",
		}),
		fences: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "concord_read_fences_total",
			Help: "Linearizable read checks by how they were satisfied (lease, verify, leader_index).",
		}, []string{"kind"}),
		failures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "concord_write_failures_total",
			Help: "Write units that failed, by reason (no_leader, not_applied, unknown_outcome, shutdown).",
		}, []string{"reason"}),
		snapPause: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "concord_snapshot_pause_seconds",
			Help:    "Time apply was held while capturing a snapshot.",
			Buckets: prometheus.ExponentialBuckets(0.0001, 4, 10),
		}),
		snapBytes: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "concord_snapshot_bytes", Help: "Size of the latest snapshot.",
		}),
		replRecords: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "concord_repl_log_records", Help: "Batches held in the replication log.",
		}),
		replBytes: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "concord_repl_log_bytes", Help: "Encoded size of the batches held in the replication log.",
		}),
		replFirstPos: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "concord_repl_log_first_pos", Help: "Position of the oldest record in the replication log.",
		}),
		replNextPos: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "concord_repl_log_next_pos", Help: "Position the next record of the replication log will get.",
		}),
		remoteBatches: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "concord_repl_remote_batches_total",
			Help: "Batches from other regions applied on this node, by outcome (merged, duplicate, rejected).",
		}, []string{"outcome"}),
		chunks: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "concord_repl_transfer_chunks_total", Help: "State-transfer chunks staged on this node.",
		}),
		transfers: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "concord_repl_transfers_joined_total", Help: "State transfers joined into the keyspace on this node.",
		}),
		transferErrs: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "concord_repl_transfers_failed_total", Help: "State transfers dropped (corrupt, superseded or too many at once).",
		}),
	}
	conflicts := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "concord_crdt_conflicts_total",
		Help: "Concurrent writes resolved by a conflict rule in this node's applies, by kind: type (a key got content of two types), lww (last writer wins picked between concurrent values), add_wins (an observed-remove left a concurrent add), list_concurrent_pop (a merged list pop found its element popped or removed concurrently: delivered twice).",
	}, []string{"kind"})
	m.conflictType = conflicts.WithLabelValues("type")
	m.conflictLWW = conflicts.WithLabelValues("lww")
	m.conflictAddWins = conflicts.WithLabelValues("add_wins")
	m.conflictListPop = conflicts.WithLabelValues("list_concurrent_pop")
	m.remoteMerged = m.remoteBatches.WithLabelValues("merged")
	m.remoteDup = m.remoteBatches.WithLabelValues("duplicate")
	m.remoteRej = m.remoteBatches.WithLabelValues("rejected")
	reg.MustRegister(m.state, m.term, m.commitIdx, m.appliedIdx, m.commitLat,
		m.batchUnits, m.batchBytes, m.forwarded, m.fences, m.failures,
		m.snapPause, m.snapBytes,
		m.replRecords, m.replBytes, m.replFirstPos, m.replNextPos,
		m.remoteBatches, m.chunks, m.transfers, m.transferErrs, conflicts)
	return m
}

func (m *Metrics) setState(state string, term uint64) {
	if m == nil {
		return
	}
	for _, s := range raftStates {
		v := 0.0
		if s == state {
			v = 1
		}
		m.state.WithLabelValues(s).Set(v)
	}
	m.term.Set(float64(term))
}

func (m *Metrics) setIndexes(commit, applied uint64) {
	if m == nil {
		return
	}
	m.commitIdx.Set(float64(commit))
	m.appliedIdx.Set(float64(applied))
}

func (m *Metrics) observeCommit(d time.Duration) {
	if m != nil {
		m.commitLat.Observe(d.Seconds())
	}
}

func (m *Metrics) observeEntry(units, bytes int) {
	if m != nil {
		m.batchUnits.Observe(float64(units))
		m.batchBytes.Observe(float64(bytes))
	}
}

func (m *Metrics) addForwarded(n int) {
	if m != nil {
		m.forwarded.Add(float64(n))
	}
}

func (m *Metrics) fence(kind string) {
	if m != nil {
		m.fences.WithLabelValues(kind).Inc()
	}
}

func (m *Metrics) failed(reason string, n int) {
	if m != nil {
		m.failures.WithLabelValues(reason).Add(float64(n))
	}
}

func (m *Metrics) snapshot(pause time.Duration, bytes int) {
	if m != nil {
		m.snapPause.Observe(pause.Seconds())
		m.snapBytes.Set(float64(bytes))
	}
}

// repl records the replica's figures after an apply or restore. The
// counters are per node: a node restored from a snapshot starts counting
// again from what it applies itself.
func (m *Metrics) repl(s replSample) {
	if m == nil {
		return
	}
	m.replRecords.Set(float64(s.records))
	m.replBytes.Set(float64(s.bytes))
	m.replFirstPos.Set(float64(s.firstPos))
	m.replNextPos.Set(float64(s.nextPos))
	add := func(c prometheus.Counter, n uint64) {
		if n > 0 {
			c.Add(float64(n))
		}
	}
	add(m.remoteMerged, s.delta.Merged)
	add(m.remoteDup, s.delta.Duplicates)
	add(m.remoteRej, s.delta.Rejected)
	add(m.chunks, s.delta.Chunks)
	add(m.transfers, s.delta.Transfers)
	add(m.transferErrs, s.delta.TransferErr)
	add(m.conflictType, s.typeConflicts)
	add(m.conflictLWW, s.lwwConflicts)
	add(m.conflictAddWins, s.addWinsConflicts)
	add(m.conflictListPop, s.listConcurrentPops)
}
