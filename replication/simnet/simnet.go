package simnet

import (
	"container/heap"
	"errors"
	"fmt"
	"math/rand/v2"
)

// Link is the behaviour of the one-way path from one endpoint to another.
// Probabilities are in [0, 1]; times are milliseconds.
type Link struct {
	Delay  int64 // one-way delay
	Jitter int64 // uniform extra delay in [0, Jitter]
	// Drop and Dup are the chances that a message is lost or delivered
	// twice (datagrams, and messages on Hostile connections).
	Drop float64
	Dup  float64
	// Reorder is the chance that a message is held back by an extra delay
	// of up to ReorderMs (default 4*Delay+10), so later ones overtake it
	// (datagrams, and Hostile connections).
	Reorder   float64
	ReorderMs int64
	// Break is the chance that a message on a connection (either mode)
	// breaks it instead of being delivered: a reset stream.
	Break float64
}

// Kind says what a Delivery is.
type Kind uint8

// Delivery kinds.
const (
	Message Kind = iota // a datagram, or a message on Conn
	Closed              // Conn ended; the receiving end must stop using it
	Timer               // a timer set with At or After
)

func (k Kind) String() string {
	switch k {
	case Message:
		return "message"
	case Closed:
		return "closed"
	case Timer:
		return "timer"
	}
	return fmt.Sprintf("kind(%d)", int(k))
}

// Delivery is one event handed to an endpoint's Handler.
type Delivery struct {
	Kind Kind
	At   int64  // virtual time, equal to Net.Now during the handler
	From string // sender (Message), the other end (Closed); "" for Timer
	To   string
	Conn *Conn // the connection (Message on a Conn, Closed); nil otherwise
	Msg  any   // the message (Message) or the timer's value (Timer)
}

// Handler receives an endpoint's deliveries.
type Handler func(d Delivery)

// Mode is how a Conn treats its link's faults.
type Mode uint8

// Connection modes.
const (
	Reliable Mode = iota // ordered, no loss or duplication until it ends
	Hostile              // the link's drop, dup and reorder apply inside it
)

func (m Mode) String() string {
	if m == Hostile {
		return "hostile"
	}
	return "reliable"
}

// Errors.
var (
	ErrUnreachable = errors.New("simnet: endpoint unreachable")
	ErrClosed      = errors.New("simnet: connection closed")
	ErrNotEnd      = errors.New("simnet: sender is not an end of the connection")
)

// Stats count what the network did.
type Stats struct {
	Sent       uint64 // messages handed to Send or Conn.Send (accepted)
	Delivered  uint64 // messages handed to a handler
	Dropped    uint64 // lost to a Drop draw
	Duplicated uint64 // extra copies from a Dup draw
	Reordered  uint64 // held back by a Reorder draw
	Discarded  uint64 // lost to a cut link, an ended Conn or an unattached endpoint
	Breaks     uint64 // connections broken by a Break draw
	Cuts       uint64 // connections ended by a partition or isolation
	Dials      uint64 // connections opened
	DialFails  uint64 // dials refused
	Timers     uint64 // timers fired
}

type pair struct{ a, b string }

func undirected(a, b string) pair {
	if b < a {
		a, b = b, a
	}
	return pair{a, b}
}

type event struct {
	at  int64
	seq uint64
	d   Delivery
}

type eventHeap []*event

func (h eventHeap) Len() int { return len(h) }
func (h eventHeap) Less(i, j int) bool {
	if h[i].at != h[j].at {
		return h[i].at < h[j].at
	}
	return h[i].seq < h[j].seq
}
func (h eventHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *eventHeap) Push(x any)   { *h = append(*h, x.(*event)) }
func (h *eventHeap) Pop() any {
	old := *h
	e := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	return e
}

// Net is a simulated network. The zero value is not usable; call New.
type Net struct {
	rng      *rand.Rand
	now      int64
	seq      uint64
	q        eventHeap
	handlers map[string]Handler
	def      Link
	links    map[pair]Link // directed overrides (a = from, b = to)
	cut      map[pair]bool // undirected
	isolated map[string]bool
	conns    []*Conn // open connections, in dial order
	nextConn uint64
	detect   int64

	// Stats is updated as the network runs.
	Stats Stats
}

// DefaultDetect is how long the ends of a connection take to notice that a
// partition cut it (a keepalive timeout), in milliseconds.
const DefaultDetect = 1000

// New returns an empty network at time 0 drawing every random choice from
// rng. The default link has no delay and no faults.
func New(rng *rand.Rand) *Net {
	return &Net{rng: rng, handlers: map[string]Handler{}, links: map[pair]Link{},
		cut: map[pair]bool{}, isolated: map[string]bool{}, detect: DefaultDetect}
}

// Now returns the virtual time in milliseconds.
func (n *Net) Now() int64 { return n.now }

// Rand returns the network's random source, for callers that want their
// own choices to come from the same seeded stream.
func (n *Net) Rand() *rand.Rand { return n.rng }

// Attach registers h as the handler of endpoint name, replacing any.
func (n *Net) Attach(name string, h Handler) { n.handlers[name] = h }

// Detach removes endpoint name's handler: its deliveries are discarded.
func (n *Net) Detach(name string) { delete(n.handlers, name) }

// SetDetect sets how long a cut connection's ends take to learn it ended.
func (n *Net) SetDetect(ms int64) { n.detect = ms }

// SetDefault sets the behaviour of every link without its own setting.
func (n *Net) SetDefault(l Link) { n.def = l }

// SetLink sets the behaviour of the one-way link from → to.
func (n *Net) SetLink(from, to string, l Link) { n.links[pair{from, to}] = l }

// SetLinks sets the behaviour of both directions between a and b.
func (n *Net) SetLinks(a, b string, l Link) {
	n.SetLink(a, b, l)
	n.SetLink(b, a, l)
}

// ClearLinks drops every per-link setting: all links behave as the default.
func (n *Net) ClearLinks() { n.links = map[pair]Link{} }

// LinkOf returns the behaviour of the link from → to.
func (n *Net) LinkOf(from, to string) Link {
	if l, ok := n.links[pair{from, to}]; ok {
		return l
	}
	return n.def
}

// Reachable reports whether the links between a and b are up.
func (n *Net) Reachable(a, b string) bool {
	return !n.isolated[a] && !n.isolated[b] && !n.cut[undirected(a, b)]
}

// Partition cuts both directions between a and b and ends the connections
// between them.
func (n *Net) Partition(a, b string) {
	n.cut[undirected(a, b)] = true
	n.cutConns()
}

// Split partitions every endpoint of one group from every endpoint of the
// other.
func (n *Net) Split(left, right []string) {
	for _, a := range left {
		for _, b := range right {
			n.cut[undirected(a, b)] = true
		}
	}
	n.cutConns()
}

// Heal undoes Partition(a, b). It does not undo an isolation.
func (n *Net) Heal(a, b string) { delete(n.cut, undirected(a, b)) }

// Isolate cuts x from every endpoint and ends its connections.
func (n *Net) Isolate(x string) {
	n.isolated[x] = true
	n.cutConns()
}

// Rejoin undoes Isolate(x). Partitions of x's links stay.
func (n *Net) Rejoin(x string) { delete(n.isolated, x) }

// Isolated reports whether x is isolated.
func (n *Net) Isolated(x string) bool { return n.isolated[x] }

// HealAll undoes every partition and isolation.
func (n *Net) HealAll() {
	n.cut = map[pair]bool{}
	n.isolated = map[string]bool{}
}

// cutConns ends every open connection whose link is no longer up.
func (n *Net) cutConns() {
	for _, c := range append([]*Conn(nil), n.conns...) {
		if !n.Reachable(c.ends[0], c.ends[1]) {
			n.Stats.Cuts++
			c.end(-1, n.detect, n.detect)
		}
	}
}

// At delivers a Timer carrying v to endpoint to at time at (now if at is
// in the past).
func (n *Net) At(at int64, to string, v any) {
	if at < n.now {
		at = n.now
	}
	n.schedule(at, Delivery{Kind: Timer, To: to, Msg: v})
}

// After delivers a Timer carrying v to endpoint to d milliseconds from now.
func (n *Net) After(d int64, to string, v any) { n.At(n.now+d, to, v) }

func (n *Net) schedule(at int64, d Delivery) {
	n.seq++
	d.At = at
	heap.Push(&n.q, &event{at: at, seq: n.seq, d: d})
}

// Pending returns the number of scheduled deliveries (timers included).
func (n *Net) Pending() int { return len(n.q) }

// Next returns the time of the next scheduled delivery (false if none).
func (n *Net) Next() (int64, bool) {
	if len(n.q) == 0 {
		return 0, false
	}
	return n.q[0].at, true
}

// Step delivers the next scheduled event, advancing time to it. It returns
// false if nothing is scheduled.
func (n *Net) Step() bool {
	if len(n.q) == 0 {
		return false
	}
	e := heap.Pop(&n.q).(*event)
	if e.at > n.now {
		n.now = e.at
	}
	n.deliver(e.d)
	return true
}

// RunUntil delivers every event due at or before t, then sets the time to t
// (if later than now).
func (n *Net) RunUntil(t int64) {
	for len(n.q) > 0 && n.q[0].at <= t {
		n.Step()
	}
	if t > n.now {
		n.now = t
	}
}

// RunFor runs the network for d milliseconds.
func (n *Net) RunFor(d int64) { n.RunUntil(n.now + d) }

func (n *Net) deliver(d Delivery) {
	h := n.handlers[d.To]
	switch d.Kind {
	case Timer:
		if h == nil {
			return
		}
		n.Stats.Timers++
	case Message:
		if d.Conn != nil && d.Conn.closed || !n.Reachable(d.From, d.To) || h == nil {
			n.Stats.Discarded++
			return
		}
		n.Stats.Delivered++
	case Closed:
		if h == nil {
			return
		}
	}
	h(d)
}

// delay draws a one-way delay on l.
func (n *Net) delay(l Link) int64 {
	d := l.Delay
	if l.Jitter > 0 {
		d += n.rng.Int64N(l.Jitter + 1)
	}
	return d
}

// hostile draws the extra delay of a message subject to reordering.
func (n *Net) reorder(l Link) int64 {
	if l.Reorder <= 0 || n.rng.Float64() >= l.Reorder {
		return 0
	}
	n.Stats.Reordered++
	r := l.ReorderMs
	if r <= 0 {
		r = 4*l.Delay + 10
	}
	return 1 + n.rng.Int64N(r)
}

func (n *Net) chance(p float64) bool { return p > 0 && n.rng.Float64() < p }

// Send sends datagram msg from → to. It reports false if the message was
// not sent because the link is cut (it is then simply lost, as on a real
// network; the return value is for tests).
func (n *Net) Send(from, to string, msg any) bool {
	if !n.Reachable(from, to) {
		n.Stats.Discarded++
		return false
	}
	n.Stats.Sent++
	l := n.LinkOf(from, to)
	if n.chance(l.Drop) {
		n.Stats.Dropped++
		return true
	}
	copies := 1
	if n.chance(l.Dup) {
		n.Stats.Duplicated++
		copies = 2
	}
	for i := 0; i < copies; i++ {
		at := n.now + n.delay(l) + n.reorder(l)
		n.schedule(at, Delivery{Kind: Message, From: from, To: to, Msg: msg})
	}
	return true
}

// Conn is a simulated stream between a dialer and an acceptor.
type Conn struct {
	net    *Net
	id     uint64
	mode   Mode
	ends   [2]string // dialer, acceptor
	closed bool
	last   [2]int64 // latest scheduled arrival per direction (index of sender)
	told   [2]bool  // end i has been told (or closed it itself)
}

// Dial opens a connection from → to in mode m. It fails with ErrUnreachable
// if the link is cut or to has no handler.
func (n *Net) Dial(from, to string, m Mode) (*Conn, error) {
	if !n.Reachable(from, to) || n.handlers[to] == nil || from == to {
		n.Stats.DialFails++
		return nil, fmt.Errorf("%w: %s -> %s", ErrUnreachable, from, to)
	}
	n.Stats.Dials++
	n.nextConn++
	c := &Conn{net: n, id: n.nextConn, mode: m, ends: [2]string{from, to}}
	n.conns = append(n.conns, c)
	return c, nil
}

// Conns returns the open connections, in dial order.
func (n *Net) Conns() []*Conn { return append([]*Conn(nil), n.conns...) }

// ID returns the connection's number (1, 2, ... in dial order).
func (c *Conn) ID() uint64 { return c.id }

// Mode returns the connection's mode.
func (c *Conn) Mode() Mode { return c.mode }

// Dialer returns the end that dialed.
func (c *Conn) Dialer() string { return c.ends[0] }

// Acceptor returns the end that was dialed.
func (c *Conn) Acceptor() string { return c.ends[1] }

// Peer returns the other end than end.
func (c *Conn) Peer(end string) string {
	if end == c.ends[0] {
		return c.ends[1]
	}
	return c.ends[0]
}

// Open reports whether the connection has not ended.
func (c *Conn) Open() bool { return !c.closed }

func (c *Conn) String() string {
	return fmt.Sprintf("conn#%d(%s->%s,%s)", c.id, c.ends[0], c.ends[1], c.mode)
}

func (c *Conn) index(end string) int {
	switch end {
	case c.ends[0]:
		return 0
	case c.ends[1]:
		return 1
	}
	return -1
}

// Send sends msg from end from to the other end. It fails with ErrClosed
// once the connection has ended (the end may not have been told yet).
func (c *Conn) Send(from string, msg any) error {
	i := c.index(from)
	if i < 0 {
		return ErrNotEnd
	}
	n := c.net
	if c.closed {
		n.Stats.Discarded++
		return ErrClosed
	}
	to := c.ends[1-i]
	n.Stats.Sent++
	l := n.LinkOf(from, to)
	if n.chance(l.Break) {
		n.Stats.Breaks++
		d := n.delay(l)
		c.end(-1, d, d)
		return nil
	}
	copies := 1
	if c.mode == Hostile {
		if n.chance(l.Drop) {
			n.Stats.Dropped++
			return nil
		}
		if n.chance(l.Dup) {
			n.Stats.Duplicated++
			copies = 2
		}
	}
	for k := 0; k < copies; k++ {
		at := n.now + n.delay(l)
		if at < c.last[i] {
			at = c.last[i] // jitter never reorders a stream
		}
		extra := int64(0)
		if c.mode == Hostile {
			extra = n.reorder(l)
			if k == 1 && extra == 0 {
				extra = 1 + n.rng.Int64N(l.Delay+1) // the copy comes later
			}
		}
		if extra == 0 {
			c.last[i] = at
		}
		// A held-back message does not hold back the ones after it.
		n.schedule(at+extra, Delivery{Kind: Message, From: from, To: to, Conn: c, Msg: msg})
	}
	return nil
}

// Close ends the connection from end by: the other end is told after the
// one-way delay. Closing an ended connection does nothing.
func (c *Conn) Close(by string) {
	i := c.index(by)
	if i < 0 || c.closed {
		return
	}
	l := c.net.LinkOf(by, c.ends[1-i])
	d := c.net.delay(l)
	if i == 0 {
		c.end(0, 0, d)
	} else {
		c.end(1, d, 0)
	}
}

// Break ends the connection as a transport failure would: both ends are
// told after the one-way delay.
func (c *Conn) Break() {
	if c.closed {
		return
	}
	c.net.Stats.Breaks++
	l := c.net.LinkOf(c.ends[0], c.ends[1])
	d := c.net.delay(l)
	c.end(-1, d, d)
}

// end closes the connection; closer (-1: nobody) is not told, end i is told
// after delay[i].
func (c *Conn) end(closer int, d0, d1 int64) {
	if c.closed {
		return
	}
	c.closed = true
	n := c.net
	for k, o := range n.conns {
		if o == c {
			n.conns = append(n.conns[:k], n.conns[k+1:]...)
			break
		}
	}
	delays := [2]int64{d0, d1}
	for i := 0; i < 2; i++ {
		if i == closer || c.told[i] {
			continue
		}
		c.told[i] = true
		n.schedule(n.now+delays[i], Delivery{Kind: Closed, From: c.ends[1-i], To: c.ends[i], Conn: c})
	}
}
