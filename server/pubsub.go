package server

import (
	"sort"
	"strings"
	"sync"

	"concord/crdt"
)

// Pub/sub: SUBSCRIBE, PSUBSCRIBE, SSUBSCRIBE, their UNSUBSCRIBEs, PUBLISH,
// SPUBLISH and PUBSUB, as Redis 7.0 answers them in standalone mode.
//
// Subscriptions live in the server's hub; a publication is delivered by
// the goroutine that publishes it (PUBLISH on this node, or the transport
// bringing one from another node), which appends the message to each
// subscriber's output under the hub's read lock. Subscribing and
// unsubscribing hold the write lock while they append their confirmations,
// so a subscriber sees its confirmation before any message of the channel,
// and none after its unsubscription's. A connection's output, once it has
// subscribed, is written by its own writer goroutine (conn.go, asyncOut).
//
// PUBLISH is not state: it is neither proposed to the Store nor replicated
// as an effect. If the Store is a Publisher, PUBLISH goes through it to
// every node of the deployment; otherwise it reaches this server's
// subscribers only.

// Publisher is implemented by a Store whose node shares pub/sub with other
// nodes (a region's node, possibly replicating with other regions).
//
// Concurrency: Publish is called from many connections at once and must
// not block on the network. The deliver function may be called from any
// goroutine, concurrently; it never blocks on a subscriber.
type Publisher interface {
	// Publish sends a PUBLISH made on this node to this node's subscribers
	// (through deliver, whose count it returns) and, best effort, to every
	// other node of the deployment, each of which delivers it once.
	Publish(channel, message []byte) int
	// SetPublishHandler sets the function that delivers publications to
	// this node's subscribers; the Server sets it in New.
	SetPublishHandler(deliver func(channel, message []byte) int)
}

// subKind is a subscription's namespace.
type subKind uint8

const (
	subChannel subKind = iota
	subPattern
	subShard
	numSubKinds
)

// subVerbs are the confirmation names, (un)subscribe per kind.
var subVerbs = [numSubKinds][2]string{
	{"subscribe", "unsubscribe"},
	{"psubscribe", "punsubscribe"},
	{"ssubscribe", "sunsubscribe"},
}

// hub holds every subscription of the server.
type hub struct {
	mu sync.RWMutex
	// subs maps, per kind, a channel (or pattern) to its subscribers in
	// subscription order.
	subs [numSubKinds]map[string][]*client
	// patterns lists the subscribed patterns in the order they were first
	// subscribed, so that a client matching several gets its pmessages in
	// an order that does not depend on map iteration.
	patterns []string
}

func newHub() *hub {
	h := &hub{}
	for k := range h.subs {
		h.subs[k] = map[string][]*client{}
	}
	return h
}

// subState is a connection's subscriptions; the connection's goroutine
// owns it and changes it only under the hub's write lock.
type subState struct {
	names [numSubKinds]map[string]uint64 // name -> when subscribed (seq)
	seq   uint64
}

// add registers c for name; false if it already was.
func (h *hub) add(c *client, k subKind, name string) bool {
	st := &c.subs
	if st.names[k] == nil {
		st.names[k] = map[string]uint64{}
	}
	if _, ok := st.names[k][name]; ok {
		return false
	}
	st.seq++
	st.names[k][name] = st.seq
	list, existed := h.subs[k][name]
	h.subs[k][name] = append(list, c)
	if k == subPattern && !existed {
		h.patterns = append(h.patterns, name)
	}
	c.nsubs[k].Add(1)
	return true
}

// remove unregisters c from name; false if it was not registered.
func (h *hub) remove(c *client, k subKind, name string) bool {
	if _, ok := c.subs.names[k][name]; !ok {
		return false
	}
	delete(c.subs.names[k], name)
	list := h.subs[k][name]
	for i, o := range list {
		if o == c {
			list = append(list[:i:i], list[i+1:]...)
			break
		}
	}
	if len(list) == 0 {
		delete(h.subs[k], name)
		if k == subPattern {
			for i, p := range h.patterns {
				if p == name {
					h.patterns = append(h.patterns[:i:i], h.patterns[i+1:]...)
					break
				}
			}
		}
	} else {
		h.subs[k][name] = list
	}
	c.nsubs[k].Add(-1)
	return true
}

// subscribed returns c's names of kind k in subscription order.
func (c *client) subscribedNames(k subKind) []string {
	m := c.subs.names[k]
	out := make([]string, 0, len(m))
	for n := range m {
		out = append(out, n)
	}
	sort.Slice(out, func(i, j int) bool { return m[out[i]] < m[out[j]] })
	return out
}

// subCount is the count a (un)subscribe confirmation of kind k carries:
// channels and patterns together, shard channels on their own (Redis 7.0).
func (c *client) subCount(k subKind) int64 {
	if k == subShard {
		return c.nsubs[subShard].Load()
	}
	return c.nsubs[subChannel].Load() + c.nsubs[subPattern].Load()
}

// subscribedAny reports whether c has any subscription (Redis's
// CLIENT_PUBSUB flag: RESP2 restrictions, CLIENT LIST's P, the pubsub
// output buffer class). Safe from any goroutine.
func (c *client) subscribedAny() bool {
	return c.nsubs[subChannel].Load()+c.nsubs[subPattern].Load()+c.nsubs[subShard].Load() > 0
}

// unsubscribeAll removes every subscription of c, without confirmations
// (RESET, disconnect).
func (h *hub) unsubscribeAll(c *client) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for k := subKind(0); k < numSubKinds; k++ {
		for n := range c.subs.names[k] {
			h.remove(c, k, n)
		}
	}
}

// confirm is a (un)subscribe confirmation: a push in RESP3, an array in
// RESP2. A nil name is the reply to an unsubscribe from nothing.
func confirm(verb string, name *string, count int64) crdt.Reply {
	n := crdt.Nil
	if name != nil {
		n = crdt.BulkString(*name)
	}
	return crdt.Reply{Kind: kindPush, Elems: []crdt.Reply{crdt.BulkString(verb), n, crdt.Int(count)}}
}

// cmdSubscribe is SUBSCRIBE, PSUBSCRIBE or SSUBSCRIBE.
func cmdSubscribe(k subKind) func(c *client, args [][]byte) crdt.Reply {
	return func(c *client, args [][]byte) crdt.Reply {
		c.startAsync()
		h := c.srv.hub
		h.mu.Lock()
		defer h.mu.Unlock()
		for _, a := range args[1:] {
			name := string(a)
			h.add(c, k, name)
			c.reply(confirm(subVerbs[k][0], &name, c.subCount(k)))
		}
		return noReply
	}
}

// cmdUnsubscribe is UNSUBSCRIBE, PUNSUBSCRIBE or SUNSUBSCRIBE: from the
// names given, or from every name of the kind in subscription order.
func cmdUnsubscribe(k subKind) func(c *client, args [][]byte) crdt.Reply {
	return func(c *client, args [][]byte) crdt.Reply {
		h := c.srv.hub
		h.mu.Lock()
		defer h.mu.Unlock()
		verb := subVerbs[k][1]
		if len(args) == 1 {
			names := c.subscribedNames(k)
			if len(names) == 0 {
				c.reply(confirm(verb, nil, c.subCount(k)))
			}
			for _, n := range names {
				h.remove(c, k, n)
				c.reply(confirm(verb, &n, c.subCount(k)))
			}
			return noReply
		}
		for _, a := range args[1:] {
			name := string(a)
			h.remove(c, k, name)
			c.reply(confirm(verb, &name, c.subCount(k)))
		}
		return noReply
	}
}

// cmdPublish is PUBLISH: through the Store's Publisher when there is one.
func cmdPublish(c *client, args [][]byte) crdt.Reply {
	s := c.srv
	if s.publisher != nil {
		// The arguments live in the connection's read buffer; the
		// transport keeps what it is given.
		ch, msg := append([]byte(nil), args[1]...), append([]byte(nil), args[2]...)
		return crdt.Int(int64(s.publisher.Publish(ch, msg)))
	}
	return crdt.Int(int64(s.hub.deliver(subChannel, args[1], args[2])))
}

// cmdSPublish is SPUBLISH. Shard channels are this node's own (see
// docs/pubsub.md): the transport carries only PUBLISH.
func cmdSPublish(c *client, args [][]byte) crdt.Reply {
	return crdt.Int(int64(c.srv.hub.deliver(subShard, args[1], args[2])))
}

// deliverPublication is the Publisher's handler: a publication for this
// node's subscribers, from this node or another.
func (s *Server) deliverPublication(channel, message []byte) int {
	return s.hub.deliver(subChannel, channel, message)
}

// deliver hands a message published on channel (a shard channel if k is
// subShard) to every local subscriber, pattern subscribers included, and
// returns how many receptions there were (a client subscribed to the
// channel and to two matching patterns counts three, as in Redis).
func (h *hub) deliver(k subKind, channel, message []byte) int {
	h.mu.RLock()
	defer h.mu.RUnlock()
	n := 0
	var frames [2][]byte // by protocol: RESP2, RESP3
	frame := func(resp int, build func(resp int) []byte) []byte {
		i := 0
		if resp == 3 {
			i = 1
		}
		if frames[i] == nil {
			frames[i] = build(resp)
		}
		return frames[i]
	}
	verb := "message"
	if k == subShard {
		verb = "smessage"
	}
	msgFrame := func(resp int) []byte {
		return appendReply(nil, crdt.Reply{Kind: kindPush, Elems: []crdt.Reply{
			crdt.BulkString(verb), {Kind: crdt.KindBulk, Str: channel}, {Kind: crdt.KindBulk, Str: message}}}, resp)
	}
	for _, c := range h.subs[k][string(channel)] {
		c.push(frame(c.pushResp(), msgFrame))
		n++
	}
	if k != subChannel {
		return n
	}
	for _, p := range h.patterns {
		pat := []byte(p)
		if !crdt.Glob(pat, channel) {
			continue
		}
		var pframes [2][]byte
		for _, c := range h.subs[subPattern][p] {
			resp := c.pushResp()
			i := resp - 2
			if pframes[i] == nil {
				pframes[i] = appendReply(nil, crdt.Reply{Kind: kindPush, Elems: []crdt.Reply{
					crdt.BulkString("pmessage"), {Kind: crdt.KindBulk, Str: pat},
					{Kind: crdt.KindBulk, Str: channel}, {Kind: crdt.KindBulk, Str: message}}}, resp)
			}
			c.push(pframes[i])
			n++
		}
	}
	return n
}

// counts returns how many channels, patterns and shard channels have
// subscribers (INFO stats).
func (h *hub) counts() (channels, patterns, shard int) {
	h.mu.RLock()
	defer h.mu.RUnlock()
	return len(h.subs[subChannel]), len(h.subs[subPattern]), len(h.subs[subShard])
}

var flagsPubSubCmd = []string{"pubsub", "noscript", "loading", "stale"}
var catsPubSubSlow = []string{"pubsub", "slow"}

func pubsubCommands() []*command {
	ro := []string{"pubsub", "loading", "stale"}
	return []*command{
		{name: "subscribe", arity: -2, flags: flagsPubSubCmd, cats: catsPubSubSlow, pubsubOK: true, run: cmdSubscribe(subChannel)},
		{name: "unsubscribe", arity: -1, flags: flagsPubSubCmd, cats: catsPubSubSlow, pubsubOK: true, run: cmdUnsubscribe(subChannel)},
		{name: "psubscribe", arity: -2, flags: flagsPubSubCmd, cats: catsPubSubSlow, pubsubOK: true, run: cmdSubscribe(subPattern)},
		{name: "punsubscribe", arity: -1, flags: flagsPubSubCmd, cats: catsPubSubSlow, pubsubOK: true, run: cmdUnsubscribe(subPattern)},
		{name: "ssubscribe", arity: -2, flags: flagsPubSubCmd, cats: catsPubSubSlow, pubsubOK: true,
			firstKey: 1, lastKey: -1, step: 1, keyFlags: []string{"not_key"}, run: cmdSubscribe(subShard)},
		{name: "sunsubscribe", arity: -1, flags: flagsPubSubCmd, cats: catsPubSubSlow, pubsubOK: true,
			firstKey: 1, lastKey: -1, step: 1, keyFlags: []string{"not_key"}, run: cmdUnsubscribe(subShard)},
		{name: "publish", arity: 3, flags: []string{"pubsub", "loading", "stale", "fast"}, cats: []string{"pubsub", "fast"}, run: cmdPublish},
		{name: "spublish", arity: 3, flags: []string{"pubsub", "loading", "stale", "fast"}, cats: []string{"pubsub", "fast"},
			firstKey: 1, lastKey: 1, step: 1, keyFlags: []string{"not_key"}, run: cmdSPublish},
		container("pubsub", []string{"slow"},
			&command{name: "channels", arity: -2, flags: ro, cats: catsPubSubSlow, run: cmdPubsubChannels(subChannel)},
			&command{name: "shardchannels", arity: -2, flags: ro, cats: catsPubSubSlow, run: cmdPubsubChannels(subShard)},
			&command{name: "numsub", arity: -2, flags: ro, cats: catsPubSubSlow, run: cmdPubsubNumsub(subChannel)},
			&command{name: "shardnumsub", arity: -2, flags: ro, cats: catsPubSubSlow, run: cmdPubsubNumsub(subShard)},
			&command{name: "numpat", arity: 2, flags: ro, cats: catsPubSubSlow, run: cmdPubsubNumpat},
			&command{name: "help", arity: 2, flags: []string{"loading", "stale"}, cats: []string{"slow"}, run: cmdPubsubHelp},
		),
	}
}

// cmdPubsubChannels is PUBSUB CHANNELS / SHARDCHANNELS [pattern]: this
// node's channels with subscribers, sorted (Redis gives its dict's order).
func cmdPubsubChannels(k subKind) func(c *client, args [][]byte) crdt.Reply {
	return func(c *client, args [][]byte) crdt.Reply {
		if len(args) > 3 {
			return subcommandSyntaxError(args)
		}
		var pat []byte
		if len(args) == 3 {
			pat = args[2]
		}
		h := c.srv.hub
		h.mu.RLock()
		names := make([]string, 0, len(h.subs[k]))
		for n := range h.subs[k] {
			if pat == nil || crdt.Glob(pat, []byte(n)) {
				names = append(names, n)
			}
		}
		h.mu.RUnlock()
		sort.Strings(names)
		out := make([]crdt.Reply, len(names))
		for i, n := range names {
			out[i] = crdt.BulkString(n)
		}
		return crdt.Array(out...)
	}
}

// cmdPubsubNumsub is PUBSUB NUMSUB / SHARDNUMSUB [channel ...]: this
// node's subscriber count of each channel given, patterns not counted.
func cmdPubsubNumsub(k subKind) func(c *client, args [][]byte) crdt.Reply {
	return func(c *client, args [][]byte) crdt.Reply {
		h := c.srv.hub
		h.mu.RLock()
		out := make([]crdt.Reply, 0, 2*(len(args)-2))
		for _, a := range args[2:] {
			out = append(out, crdt.Bulk(a), crdt.Int(int64(len(h.subs[k][string(a)]))))
		}
		h.mu.RUnlock()
		return crdt.Array(out...)
	}
}

// cmdPubsubNumpat is PUBSUB NUMPAT: distinct patterns subscribed on this
// node (Redis 7.0 counts patterns, not pattern subscriptions).
func cmdPubsubNumpat(c *client, args [][]byte) crdt.Reply {
	_, p, _ := c.srv.hub.counts()
	return crdt.Int(int64(p))
}

func cmdPubsubHelp(c *client, args [][]byte) crdt.Reply {
	return helpReply(args[0], []string{
		"CHANNELS [<pattern>]",
		"    Return the currently active channels matching a <pattern> (default: '*').",
		"NUMPAT",
		"    Return number of subscriptions to patterns.",
		"NUMSUB [<channel> ...]",
		"    Return the number of subscribers for the specified channels, excluding",
		"    pattern subscriptions(default: no channels).",
		"SHARDCHANNELS [<pattern>]",
		"    Return the currently active shard level channels matching a <pattern> (default: '*').",
		"SHARDNUMSUB [<shardchannel> ...]",
		"    Return the number of subscribers for the specified shard level channel(s)",
	})
}

// subcommandSyntaxError is Redis's addReplySubcommandSyntaxError.
func subcommandSyntaxError(args [][]byte) crdt.Reply {
	return crdt.Err("ERR unknown subcommand or wrong number of arguments for '" + cstr(args[1], 128) +
		"'. Try " + strings.ToUpper(cstr(args[0], -1)) + " HELP.")
}

// errPubSubContext is the RESP2 subscribed-state refusal of cmd.
func errPubSubContext(cmd *command) crdt.Reply {
	return crdt.Err("ERR Can't execute '" + cmd.name +
		"': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context")
}
