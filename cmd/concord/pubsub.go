package main

import (
	"sync/atomic"

	gproto "google.golang.org/protobuf/proto"

	pb "concord/proto"
	"concord/region"
	"concord/server"
)

// broadcastNode is a region node that does not replicate with other
// regions: PUBLISH reaches the region's other nodes over its broadcast
// channel, in the payload replication's fan-out uses (a pb.Publication),
// so nodes with and without peer regions understand each other.
type broadcastNode struct {
	*region.Node
	deliver atomic.Pointer[func(channel, message []byte) int]
}

var (
	_ server.Publisher = (*broadcastNode)(nil)
	_ server.Publisher = (*replicatedNode)(nil)
)

func newBroadcastNode(rn *region.Node) *broadcastNode {
	b := &broadcastNode{Node: rn}
	rn.SetBroadcastHandler(b.fannedIn)
	return b
}

// SetPublishHandler implements server.Publisher.
func (b *broadcastNode) SetPublishHandler(deliver func(channel, message []byte) int) {
	b.deliver.Store(&deliver)
}

func (b *broadcastNode) local(channel, message []byte) int {
	if d := b.deliver.Load(); d != nil {
		return (*d)(channel, message)
	}
	return 0
}

// Publish implements server.Publisher: this node's subscribers, then the
// region's other nodes, best effort and without blocking.
func (b *broadcastNode) Publish(channel, message []byte) int {
	n := b.local(channel, message)
	p := &pb.Publication{Channel: channel, Message: message, OriginRegion: b.Origin().Region}
	if payload, err := gproto.Marshal(p); err == nil {
		b.Broadcast(payload)
	}
	return n
}

// fannedIn delivers what another node of the region published.
func (b *broadcastNode) fannedIn(payload []byte) {
	var p pb.Publication
	if err := gproto.Unmarshal(payload, &p); err != nil {
		return
	}
	b.local(p.Channel, p.Message)
}
