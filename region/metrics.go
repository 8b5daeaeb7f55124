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
	}
	reg.MustRegister(m.state, m.term, m.commitIdx, m.appliedIdx, m.commitLat,
		m.batchUnits, m.batchBytes, m.forwarded, m.fences, m.failures,
		m.snapPause, m.snapBytes)
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
