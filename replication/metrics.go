package replication

import (
	"strconv"

	"concord/crdt"

	"github.com/prometheus/client_golang/prometheus"
)

// Register adds the manager's measurements to reg. They are read from the
// shippers and streams at scrape time, so they cost nothing between
// scrapes. Shipping figures are this node's: they restart from zero on the
// node that takes over as leader.
func (m *Manager) Register(reg prometheus.Registerer) error {
	return reg.Register(&collector{m: m})
}

var (
	peerLabels = []string{"peer_region", "peer"}

	descState = prometheus.NewDesc("concord_replication_state",
		"1 for the state of this node's stream to the peer region, 0 for the others.", append(peerLabels, "state"), nil)
	descLag = prometheus.NewDesc("concord_replication_lag_seconds",
		"Age of the oldest write shipped to the peer and not yet acknowledged as applied there (0 when caught up).", peerLabels, nil)
	descLagRecords = prometheus.NewDesc("concord_replication_lag_records",
		"Records of the replication log not yet known to be at the peer.", peerLabels, nil)
	descAcked = prometheus.NewDesc("concord_replication_acked_position",
		"Replication log position up to which the peer has applied everything.", peerLabels, nil)
	descRTT = prometheus.NewDesc("concord_replication_rtt_seconds",
		"Round trip of the latest acknowledged message, apply time at the peer included.", peerLabels, nil)
	descOffset = prometheus.NewDesc("concord_replication_clock_offset_seconds",
		"Peer region's wall clock minus this node's, estimated from the latest acknowledgement (clock skew).", peerLabels, nil)
	descSent = prometheus.NewDesc("concord_replication_batches_sent_total",
		"Effect batches shipped to the peer by this node.", peerLabels, nil)
	descBytes = prometheus.NewDesc("concord_replication_bytes_sent_total",
		"Bytes of effect batches shipped to the peer by this node (before compression).", peerLabels, nil)
	descSkipped = prometheus.NewDesc("concord_replication_records_skipped_total",
		"Log records not shipped because the peer already held them.", peerLabels, nil)
	descTransfers = prometheus.NewDesc("concord_replication_transfers_total",
		"State transfers to the peer completed.", peerLabels, nil)
	descTransferBytes = prometheus.NewDesc("concord_replication_transfer_bytes_total",
		"Snapshot bytes sent to the peer in state transfers.", peerLabels, nil)
	descResets = prometheus.NewDesc("concord_replication_resets_total",
		"Streams to the peer abandoned because it stopped answering.", peerLabels, nil)
	descResyncs = prometheus.NewDesc("concord_replication_resyncs_total",
		"Streams to the peer established after this node's first one (each restarts shipping from the peer's version vector).", peerLabels, nil)
	descSilent = prometheus.NewDesc("concord_replication_silent_resets_total",
		"Streams to the peer reset because it sent nothing, not even a ping's answer, for the keepalive (a subset of resets).", peerLabels, nil)
	descOwnAhead = prometheus.NewDesc("concord_replication_own_ahead_total",
		"Streams to the peer ended because it held writes of this region's own origin beyond this region's state (a new incarnation follows).", peerLabels, nil)
	descLastAck = prometheus.NewDesc("concord_replication_last_ack_timestamp_seconds",
		"Unix time of the latest acknowledgement from the peer (absent until the first).", peerLabels, nil)
	descRecvBytes = prometheus.NewDesc("concord_replication_bytes_received_total",
		"Bytes of effect batches received from the peer region by this node (uncompressed batch payload, as the sender counts concord_replication_bytes_sent_total).", peerLabels, nil)
	descRecv = prometheus.NewDesc("concord_replication_batches_received_total",
		"Effect batches received from the peer region by this node.", peerLabels, nil)
	descRecvMerged = prometheus.NewDesc("concord_replication_batches_merged_total",
		"Received batches merged (the rest were already held).", peerLabels, nil)
	descBacklog = prometheus.NewDesc("concord_gc_backlog",
		"Counters, hash fields and sorted-set members holding increments not yet folded (garbage collection waits for every region to have them).", nil, nil)
	descFolded = prometheus.NewDesc("concord_gc_folded_total",
		"Items folded by garbage-collection units this node proposed as leader.", nil, nil)
	descRecvRejected = prometheus.NewDesc("concord_replication_batches_rejected_total",
		"Received batches refused, by reason: corrupt, gap, missing_dependency, own_origin, other. Each ends the stream.", append(peerLabels, "reason"), nil)
	descPubSent = prometheus.NewDesc("concord_replication_publishes_sent_total",
		"PUBLISH messages this node wrote to its Publish stream to the peer region.", peerLabels, nil)
	descPubDropped = prometheus.NewDesc("concord_replication_publishes_dropped_total",
		"PUBLISH messages meant for the peer region and dropped by this node (no stream, queue full, or the peer too old).", peerLabels, nil)
	descPubRecv = prometheus.NewDesc("concord_replication_publishes_received_total",
		"PUBLISH messages received from the peer region by this node.", peerLabels, nil)
	descFanout = prometheus.NewDesc("concord_publish_fanout_messages_total",
		"PUBLISH messages fanned out between this node and the other nodes of its region, by result (sent, dropped, received).", []string{"result"}, nil)
	descRecvJoined = prometheus.NewDesc("concord_replication_transfers_received_total",
		"State transfers from the peer joined.", peerLabels, nil)
)

type collector struct{ m *Manager }

func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descState, descLag, descLagRecords, descAcked, descRTT, descOffset,
		descSent, descBytes, descSkipped, descTransfers, descTransferBytes, descResets, descResyncs, descSilent, descOwnAhead, descLastAck,
		descRecv, descRecvBytes, descRecvMerged, descRecvJoined, descRecvRejected,
		descBacklog, descFolded, descPubSent, descPubDropped, descPubRecv, descFanout} {
		ch <- d
	}
}

func (c *collector) Collect(ch chan<- prometheus.Metric) {
	now := c.m.cfg.Clock().UnixMilli()
	ch <- prometheus.MustNewConstMetric(descBacklog, prometheus.GaugeValue, float64(c.m.backlog()))
	ch <- prometheus.MustNewConstMetric(descFolded, prometheus.CounterValue, float64(c.m.folded.Load()))
	if b, ok := c.m.cfg.Region.(Broadcaster); ok {
		sent, dropped, received := b.BroadcastCounts()
		ch <- prometheus.MustNewConstMetric(descFanout, prometheus.CounterValue, float64(sent), "sent")
		ch <- prometheus.MustNewConstMetric(descFanout, prometheus.CounterValue, float64(dropped), "dropped")
		ch <- prometheus.MustNewConstMetric(descFanout, prometheus.CounterValue, float64(received), "received")
	}
	pubs := c.m.PublishStats()
	names := map[uint32]string{}
	for _, p := range c.m.Peers() {
		l := []string{strconv.FormatUint(uint64(p.Peer.Region), 10), p.Peer.Name}
		names[p.Peer.Region] = p.Peer.Name
		for _, s := range []SenderState{Disconnected, Handshaking, Streaming, Transferring} {
			v := 0.0
			if p.State == s {
				v = 1
			}
			ch <- prometheus.MustNewConstMetric(descState, prometheus.GaugeValue, v, append(l, s.String())...)
		}
		gauge := func(d *prometheus.Desc, v float64) {
			ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, l...)
		}
		counter := func(d *prometheus.Desc, v uint64) {
			ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), l...)
		}
		gauge(descLag, float64(lagMs(now, p.OldestUnacked))/1000)
		gauge(descLagRecords, float64(p.LagRecords))
		gauge(descAcked, float64(p.AckedPos))
		if p.LastAckMs != 0 {
			gauge(descLastAck, float64(p.LastAckMs)/1000)
			gauge(descRTT, float64(p.RTTMs)/1000)
			gauge(descOffset, float64(p.ClockOffsetMs)/1000)
		}
		counter(descSent, p.BatchesSent)
		counter(descBytes, p.BytesSent)
		counter(descSkipped, p.RecordsSkipped)
		counter(descTransfers, p.Transfers)
		counter(descTransferBytes, p.TransferBytes)
		counter(descResets, p.Resets)
		counter(descResyncs, resyncs(p.Streams))
		counter(descSilent, p.Silent)
		counter(descOwnAhead, p.OwnAhead)
		ps := pubs[p.Peer.Region]
		counter(descPubSent, ps.Sent)
		counter(descPubDropped, ps.Dropped)
		counter(descPubRecv, ps.Received)
	}
	for region, r := range c.m.Received() {
		name := names[region]
		if name == "" {
			name = r.PeerName
		}
		l := []string{strconv.FormatUint(uint64(region), 10), name}
		ch <- prometheus.MustNewConstMetric(descRecv, prometheus.CounterValue, float64(r.Batches), l...)
		ch <- prometheus.MustNewConstMetric(descRecvBytes, prometheus.CounterValue, float64(r.Bytes), l...)
		ch <- prometheus.MustNewConstMetric(descRecvMerged, prometheus.CounterValue, float64(r.Merged), l...)
		ch <- prometheus.MustNewConstMetric(descRecvJoined, prometheus.CounterValue, float64(r.Joined), l...)
		for i, reason := range crdt.RejectReasons {
			ch <- prometheus.MustNewConstMetric(descRecvRejected, prometheus.CounterValue, float64(r.Rejected[i]), append(l, string(reason))...)
		}
	}
}
