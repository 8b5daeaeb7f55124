package crdt

// Stream commands. Sequentially they answer as Redis 7.0 does, errors and
// argument order included; across regions entries are add-only by ID with
// observed-remove XDEL/XTRIM and per-origin metadata records (stream.go,
// docs/streams.md).

func init() {
	register(
		&CommandSpec{Name: "xadd", Arity: -5, Flags: []string{"denyoom", "fast"}, FirstKey: 1, LastKey: 1, Step: 1,
			Categories: []string{"write", "stream", "fast"}, Write: true, Run: cmdXAdd},
		&CommandSpec{Name: "xlen", Arity: 2, Flags: []string{"fast"}, FirstKey: 1, LastKey: 1, Step: 1,
			Categories: []string{"read", "stream", "fast"}, Run: cmdXLen},
		&CommandSpec{Name: "xrange", Arity: -4, FirstKey: 1, LastKey: 1, Step: 1,
			Categories: []string{"read", "stream", "slow"}, Run: func(tx *Tx, a [][]byte) Reply { return xrange(tx, a, false) }},
		&CommandSpec{Name: "xrevrange", Arity: -4, FirstKey: 1, LastKey: 1, Step: 1,
			Categories: []string{"read", "stream", "slow"}, Run: func(tx *Tx, a [][]byte) Reply { return xrange(tx, a, true) }},
		&CommandSpec{Name: "xdel", Arity: -3, Flags: []string{"fast"}, FirstKey: 1, LastKey: 1, Step: 1,
			Categories: []string{"write", "stream", "fast"}, Write: true, Run: cmdXDel},
		&CommandSpec{Name: "xtrim", Arity: -4, FirstKey: 1, LastKey: 1, Step: 1,
			Categories: []string{"write", "stream", "slow"}, Write: true, Run: cmdXTrim},
		// XREAD's keys follow STREAMS (movablekeys): Redis reports 0 0 0.
		&CommandSpec{Name: "xread", Arity: -4, Flags: []string{"blocking", "movablekeys"},
			Categories: []string{"read", "stream", "slow", "blocking"}, Run: cmdXRead},
		&CommandSpec{Name: "xsetid", Arity: -3, Flags: []string{"denyoom", "fast"}, FirstKey: 1, LastKey: 1, Step: 1,
			Categories: []string{"write", "stream", "fast"}, Write: true, Run: cmdXSetID},
		// XINFO is a container; the key is argument 2 of every subcommand.
		&CommandSpec{Name: "xinfo", Arity: -2, FirstKey: 2, LastKey: 2, Step: 1,
			Categories: []string{"read", "stream", "slow"}, Run: cmdXInfo},
	)
}

// Stream error replies, with Redis 7.0's texts.
var (
	errXInvalidID  = Err("ERR Invalid stream ID specified as stream command argument")
	errXAddTooLow  = Err("ERR The ID specified in XADD is equal or smaller than the target stream top item")
	errXAddZero    = Err("ERR The ID specified in XADD must be greater than 0-0")
	errXExhausted  = Err("ERR The stream has exhausted the last possible ID, unable to add more items")
	errXTooLarge   = Err("ERR Elements are too large to be stored")
	errXMaxLenNeg  = Err("ERR The MAXLEN argument must be >= 0.")
	errXLimitNeg   = Err("ERR The LIMIT argument must be >= 0.")
	errXTrimBoth   = Err("ERR syntax error, MAXLEN and MINID options at the same time are not compatible")
	errXLimitNoStr = Err("ERR syntax error, LIMIT cannot be used without specifying a trimming strategy")
	errXLimitExact = Err("ERR syntax error, LIMIT cannot be used without the special ~ option")
	errXTrimNoStr  = Err("ERR syntax error, XTRIM must be called with a trimming strategy")
)

// streamNodeMaxEntries is Redis's stream-node-max-entries default, which
// sets the granularity of approximate (~) trimming and its default LIMIT.
const streamNodeMaxEntries = 100

// parseStreamUint is Redis's string2ull: strict integer text first, then
// strtoull's looser syntax (leading spaces, a sign, leading zeros; a '-'
// wraps around, as strtoull does).
func parseStreamUint(b []byte) (uint64, bool) {
	if v, ok := parseStrictInt(b); ok {
		if v < 0 {
			return 0, false
		}
		return uint64(v), true
	}
	i := 0
	for i < len(b) && (b[i] == ' ' || b[i] >= '\t' && b[i] <= '\r') {
		i++
	}
	neg := false
	if i < len(b) && (b[i] == '+' || b[i] == '-') {
		neg = b[i] == '-'
		i++
	}
	if i == len(b) {
		return 0, false
	}
	var v uint64
	for ; i < len(b); i++ {
		c := b[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		d := uint64(c - '0')
		if v > (^uint64(0)-d)/10 {
			return 0, false // ERANGE
		}
		v = v*10 + d
	}
	if neg {
		v = -v
	}
	return v, true
}

// parseStreamID is Redis's streamGenericParseIDOrReply. missingSeq fills
// an ID given as ms only; strict refuses "-" and "+"; autoSeq allows
// "ms-*" (then seqGiven is false).
func parseStreamID(b []byte, missingSeq uint64, strict, autoSeq bool) (id streamID, seqGiven bool, ok bool) {
	if len(b) > 127 {
		return id, false, false
	}
	if len(b) == 1 && (b[0] == '-' || b[0] == '+') {
		if strict {
			return id, false, false
		}
		if b[0] == '-' {
			return streamID{}, true, true
		}
		return maxStreamID, true, true
	}
	for i, c := range b {
		if c == 0 {
			b = b[:i] // C string
			break
		}
	}
	dash := -1
	for i, c := range b {
		if c == '-' {
			dash = i
			break
		}
	}
	if dash < 0 {
		ms, ok := parseStreamUint(b)
		return streamID{ms, missingSeq}, true, ok
	}
	ms, ok := parseStreamUint(b[:dash])
	if !ok {
		return id, false, false
	}
	rest := b[dash+1:]
	if autoSeq && len(rest) == 1 && rest[0] == '*' {
		return streamID{ms, 0}, false, true
	}
	seq, ok := parseStreamUint(rest)
	return streamID{ms, seq}, true, ok
}

// lookupStream returns key's stream (nil if missing) or a WRONGTYPE reply.
func lookupStream(tx *Tx, key []byte) (*streamValue, Reply, bool) {
	v, r, ok := tx.lookup(key, TypeStream)
	if !ok || v == nil {
		return nil, r, ok
	}
	return v.(*streamValue), Reply{}, true
}

// liveStream returns the stream under key right now (inside a write).
func liveStream(tx *Tx, key []byte) *streamValue {
	if e, ok := tx.ks.dbs[tx.DB].keys.Get(string(key)); ok {
		if v := e.value(TypeStream); v != nil {
			return v.(*streamValue)
		}
	}
	return nil
}

// trimArgs are XADD's and XTRIM's trimming options.
type trimArgs struct {
	strategy int // 0 none, 1 MAXLEN, 2 MINID
	approx   bool
	maxlen   int64
	minid    streamID
	limit    int64
	noMk     bool
	id       streamID
	idGiven  bool // an ID other than "*"
	seqGiven bool
}

const (
	trimNone = iota
	trimMaxLen
	trimMinID
)

// parseAddOrTrim is streamParseAddOrTrimArgs: it returns the index of the
// ID argument (XADD) or of the argument after the options, or an error.
func parseAddOrTrim(args [][]byte, xadd bool) (trimArgs, int, Reply, bool) {
	var t trimArgs
	limitGiven := false
	i := 2
	for ; i < len(args); i++ {
		more := len(args) - 1 - i
		opt := lower(args[i])
		switch {
		case xadd && opt == "*":
			goto done
		case (opt == "maxlen" || opt == "minid") && more > 0:
			if t.strategy != trimNone {
				return t, 0, errXTrimBoth, false
			}
			if nx := args[i+1]; more >= 2 && len(nx) == 1 && (nx[0] == '~' || nx[0] == '=') {
				t.approx = nx[0] == '~'
				i++
			}
			i++
			if opt == "maxlen" {
				n, ok := parseInt64(args[i])
				if !ok {
					return t, 0, ErrNotInt, false
				}
				if n < 0 {
					return t, 0, errXMaxLenNeg, false
				}
				t.strategy, t.maxlen = trimMaxLen, n
			} else {
				id, _, ok := parseStreamID(args[i], 0, false, false)
				if !ok {
					return t, 0, errXInvalidID, false
				}
				t.strategy, t.minid = trimMinID, id
			}
		case opt == "limit" && more > 0:
			n, ok := parseInt64(args[i+1])
			if !ok {
				return t, 0, ErrNotInt, false
			}
			if n < 0 {
				return t, 0, errXLimitNeg, false
			}
			t.limit, limitGiven = n, true
			i++
		case xadd && opt == "nomkstream":
			t.noMk = true
		case xadd:
			id, sg, ok := parseStreamID(args[i], 0, true, true)
			if !ok {
				return t, 0, errXInvalidID, false
			}
			t.id, t.seqGiven, t.idGiven = id, sg, true
			goto done
		default:
			return t, 0, ErrSyntax, false
		}
	}
done:
	if t.limit != 0 && t.strategy == trimNone {
		return t, 0, errXLimitNoStr, false
	}
	if !xadd && t.strategy == trimNone {
		return t, 0, errXTrimNoStr, false
	}
	if limitGiven {
		if !t.approx {
			return t, 0, errXLimitExact, false
		}
	} else if t.approx {
		t.limit = 100 * streamNodeMaxEntries
	} else {
		t.limit = 0
	}
	return t, i, Reply{}, true
}

// trimPlan returns how many entries, counted from the head, trimming with
// t removes from s, whose length would be n after an add of size extra at
// the tail (extra is 1 while planning an XADD's trim, 0 for XTRIM). With
// ~ Redis removes whole radix-tree nodes only; Concord has no such nodes
// and trims in steps of stream-node-max-entries entries, which is what
// Redis does for a stream of small entries (see docs/streams.md).
func trimPlan(s *streamValue, t trimArgs, newID *streamID) int {
	length := s.list.length
	if newID != nil {
		length++
	}
	// idAt walks the would-be entries in order: existing ones, then the
	// new one.
	n := s.list.first()
	next := func() (streamID, bool) {
		if n != nil {
			id := n.id
			n = n.next()
			return id, true
		}
		if newID != nil {
			id := *newID
			newID = nil
			return id, true
		}
		return streamID{}, false
	}
	removed := 0
	if !t.approx {
		for {
			if t.strategy == trimMaxLen && int64(length-removed) <= t.maxlen {
				return removed
			}
			id, ok := next()
			if !ok {
				return removed
			}
			if t.strategy == trimMinID && !id.less(t.minid) {
				return removed
			}
			removed++
		}
	}
	for {
		left := length - removed
		if t.strategy == trimMaxLen && int64(left) <= t.maxlen || left == 0 {
			return removed
		}
		chunk := streamNodeMaxEntries
		if chunk > left {
			chunk = left
		}
		if t.limit != 0 && int64(removed+chunk) > t.limit {
			return removed
		}
		var last streamID
		for i := 0; i < chunk; i++ {
			last, _ = next()
		}
		if t.strategy == trimMaxLen && int64(left-chunk) < t.maxlen ||
			t.strategy == trimMinID && !last.less(t.minid) {
			return removed
		}
		removed += chunk
	}
}

// trimEffect emits the observed-remove of the first k existing entries of
// s (one effect up to the last one's ID).
func trimEffect(tx *Tx, key []byte, s *streamValue, k int) {
	if k == 0 {
		return
	}
	n := s.list.first()
	for i := 1; i < k; i++ {
		n = n.next()
	}
	tx.Emit(Effect{Kind: EffXTrim, Key: key, Field: n.id.bytes()})
}

func cmdXAdd(tx *Tx, args [][]byte) Reply {
	key := args[1]
	t, idx, r, ok := parseAddOrTrim(args, true)
	if !ok {
		return r
	}
	fieldPos := idx + 1
	if nf := len(args) - fieldPos; nf < 2 || nf%2 == 1 {
		return ErrArity("xadd")
	}
	if t.idGiven && t.seqGiven && t.id == (streamID{}) {
		return errXAddZero
	}
	s, r, ok := lookupStream(tx, key)
	if !ok {
		return r
	}
	if s == nil && t.noMk {
		return Nil
	}
	var last streamID
	if s != nil {
		last = s.lastID()
	}
	if last == maxStreamID {
		return errXExhausted
	}
	id, r, ok := tx.nextStreamID(last, t)
	if !ok {
		return r
	}
	fields := make([]string, 0, len(args)-fieldPos)
	for _, a := range args[fieldPos:] {
		fields = append(fields, string(a))
	}
	keep := true
	trimmed := 0
	if s != nil && t.strategy != trimNone {
		trimmed = trimPlan(s, t, &id)
		if trimmed > s.list.length {
			keep = false // the new entry goes too (MAXLEN 0)
			trimmed = s.list.length
		}
	} else if t.strategy != trimNone {
		empty := &streamValue{}
		keep = trimPlan(empty, t, &id) == 0
	}
	if s != nil {
		trimEffect(tx, key, s, trimmed)
	}
	if keep {
		tx.Emit(Effect{Kind: EffXAdd, Key: key, Field: id.bytes(), Value: encodeStreamFields(fields)})
	}
	var m streamMeta
	if s == nil {
		s = liveStream(tx, key)
	}
	if s != nil {
		m = s.metaOf(tx.ks.self)
	}
	m.Added++
	m.Last = id
	tx.Emit(Effect{Kind: EffXMeta, Key: key, Value: encodeStreamMeta(m)})
	return BulkString(id.String())
}

// nextStreamID picks the ID of a new entry after last, as Redis's
// streamAppendItem does. With peer regions an automatic sequence number
// carries the region in its low 16 bits, so regions adding in the same
// millisecond never pick the same ID (docs/streams.md); alone, the IDs
// are exactly Redis's.
func (tx *Tx) nextStreamID(last streamID, t trimArgs) (streamID, Reply, bool) {
	var step, low uint64 = 1, 0
	if !tx.ks.solo {
		step, low = 1<<16, uint64(tx.ks.self.Region&0xFFFF)
	}
	// nextSeq is the least automatic sequence number above seq.
	nextSeq := func(seq uint64) (uint64, bool) {
		var k uint64 // index of the next automatic number
		if seq >= low {
			q := (seq - low) / step
			if q >= (^uint64(0)-low)/step {
				return 0, false
			}
			k = q + 1
		}
		return k*step + low, true
	}
	switch {
	case !t.idGiven: // "*"
		ms := uint64(tx.Now)
		if tx.Now < 0 {
			ms = 0
		}
		if ms > last.ms {
			return streamID{ms, low}, Reply{}, true
		}
		if seq, ok := nextSeq(last.seq); ok {
			return streamID{last.ms, seq}, Reply{}, true
		}
		if last.ms == ^uint64(0) {
			return streamID{}, errXExhausted, false
		}
		return streamID{last.ms + 1, low}, Reply{}, true
	case !t.seqGiven: // "ms-*"
		id := streamID{t.id.ms, low}
		if t.id.ms == last.ms {
			seq, ok := nextSeq(last.seq)
			if !ok {
				return streamID{}, errXTooLarge, false
			}
			id.seq = seq
		}
		if !last.less(id) {
			return streamID{}, errXAddTooLow, false
		}
		return id, Reply{}, true
	default:
		if !last.less(t.id) {
			return streamID{}, errXAddTooLow, false
		}
		return t.id, Reply{}, true
	}
}

func cmdXLen(tx *Tx, args [][]byte) Reply {
	s, r, ok := lookupStream(tx, args[1])
	if !ok {
		return r
	}
	if s == nil {
		return Int(0)
	}
	return Int(int64(s.list.length))
}

// entryReply is one entry as XRANGE and XREAD send it: [id, [f, v, ...]].
func entryReply(n *xnode) Reply {
	w, _ := n.vals.winner()
	fs := make([]Reply, len(w.Val))
	for i, x := range w.Val {
		fs[i] = BulkString(x)
	}
	return Array(BulkString(n.id.String()), Array(fs...))
}

// parseIntervalID parses an XRANGE bound: "(" makes it exclusive.
func parseIntervalID(b []byte, missingSeq uint64) (streamID, bool, bool) {
	if len(b) > 1 && b[0] == '(' {
		id, _, ok := parseStreamID(b[1:], missingSeq, true, false)
		return id, true, ok
	}
	id, _, ok := parseStreamID(b, missingSeq, false, false)
	return id, false, ok
}

func xrange(tx *Tx, args [][]byte, rev bool) Reply {
	startArg, endArg := args[2], args[3]
	if rev {
		startArg, endArg = args[3], args[2]
	}
	start, startEx, ok := parseIntervalID(startArg, 0)
	if !ok {
		return errXInvalidID
	}
	if startEx {
		if start == maxStreamID {
			return Err("ERR invalid start ID for the interval")
		}
		start = start.incr()
	}
	end, endEx, ok := parseIntervalID(endArg, ^uint64(0))
	if !ok {
		return errXInvalidID
	}
	if endEx {
		if end == (streamID{}) {
			return Err("ERR invalid end ID for the interval")
		}
		end = end.decr()
	}
	count := int64(-1)
	for j := 4; j < len(args); j++ {
		if lower(args[j]) == "count" && j+1 < len(args) {
			n, ok := parseInt64(args[j+1])
			if !ok {
				return ErrNotInt
			}
			if n < 0 {
				n = 0
			}
			count = n
			j++
		} else {
			return ErrSyntax
		}
	}
	s, r, ok := lookupStream(tx, args[1])
	if !ok {
		return r
	}
	if s == nil {
		return Array()
	}
	if count == 0 {
		return NilArray
	}
	return Array(streamRange(s, start, end, count, rev)...)
}

// streamRange returns the entries with start <= ID <= end, at most count
// of them (count < 0: all), seeking to the first one.
func streamRange(s *streamValue, start, end streamID, count int64, rev bool) []Reply {
	out := []Reply{}
	if end.less(start) {
		return out
	}
	if rev {
		for n := s.list.seekLE(end); n != nil && !n.id.less(start) && count != 0; n = n.backward {
			out = append(out, entryReply(n))
			count--
		}
		return out
	}
	for n := s.list.seekGE(start); n != nil && !end.less(n.id) && count != 0; n = n.next() {
		out = append(out, entryReply(n))
		count--
	}
	return out
}

func (a streamID) incr() streamID {
	if a.seq == ^uint64(0) {
		return streamID{a.ms + 1, 0}
	}
	return streamID{a.ms, a.seq + 1}
}

func (a streamID) decr() streamID {
	if a.seq == 0 {
		return streamID{a.ms - 1, ^uint64(0)}
	}
	return streamID{a.ms, a.seq - 1}
}

func cmdXDel(tx *Tx, args [][]byte) Reply {
	key := args[1]
	s, r, ok := lookupStream(tx, key)
	if !ok {
		return r
	}
	if s == nil {
		return Int(0)
	}
	ids := make([]streamID, 0, len(args)-2)
	for _, a := range args[2:] {
		id, _, ok := parseStreamID(a, 0, true, false)
		if !ok {
			return errXInvalidID
		}
		ids = append(ids, id)
	}
	maxDel := s.maxDeleted()
	deleted := 0
	for _, id := range ids {
		if s.list.find(id) == nil {
			continue // missing, or deleted earlier in this command
		}
		tx.Emit(Effect{Kind: EffXDel, Key: key, Field: id.bytes()})
		deleted++
		if maxDel.less(id) {
			maxDel = id
		}
	}
	if deleted > 0 && maxDel != s.maxDeleted() {
		m := s.metaOf(tx.ks.self)
		m.MaxDel = maxDel
		tx.Emit(Effect{Kind: EffXMeta, Key: key, Value: encodeStreamMeta(m)})
	}
	return Int(int64(deleted))
}

func cmdXTrim(tx *Tx, args [][]byte) Reply {
	key := args[1]
	t, idx, r, ok := parseAddOrTrim(args, false)
	if !ok {
		return r
	}
	_ = idx
	s, r, ok := lookupStream(tx, key)
	if !ok {
		return r
	}
	if s == nil {
		return Int(0)
	}
	k := trimPlan(s, t, nil)
	trimEffect(tx, key, s, k)
	return Int(int64(k))
}

// cmdXSetID sets the stream's metadata. Its record overwrites every
// record its region had seen (EffXMeta with Int 1), so alone it can lower
// last-generated-id as Redis allows; records written concurrently by
// other regions survive and still combine by max and sum.
func cmdXSetID(tx *Tx, args [][]byte) Reply {
	key := args[1]
	id, _, ok := parseStreamID(args[2], 0, true, false)
	if !ok {
		return errXInvalidID
	}
	added := int64(-1)
	var maxDel streamID
	for i := 3; i < len(args); i += 2 {
		more := len(args) - 1 - i
		switch opt := lower(args[i]); {
		case opt == "entriesadded" && more > 0:
			n, ok := parseInt64(args[i+1])
			if !ok {
				return ErrNotInt
			}
			if n < 0 {
				return Err("ERR entries_added must be positive")
			}
			added = n
		case opt == "maxdeletedid" && more > 0:
			m, _, ok := parseStreamID(args[i+1], 0, true, false)
			if !ok {
				return errXInvalidID
			}
			if id.less(m) {
				return Err("ERR The ID specified in XSETID is smaller than the provided max_deleted_entry_id")
			}
			maxDel = m
		default:
			return ErrSyntax
		}
	}
	s, r, ok := lookupStream(tx, key)
	if !ok {
		return r
	}
	if s == nil {
		return ErrNoSuchKey
	}
	if s.list.length > 0 {
		if id.less(s.list.last().id) {
			return Err("ERR The ID specified in XSETID is smaller than the target stream top item")
		}
		if added != -1 && uint64(s.list.length) > uint64(added) {
			return Err("ERR The entries_added specified in XSETID is smaller than the target stream length")
		}
	}
	m := streamMeta{Added: s.added(), Last: id, MaxDel: s.maxDeleted()}
	if added != -1 {
		m.Added = uint64(added)
	}
	if maxDel != (streamID{}) {
		m.MaxDel = maxDel
	}
	tx.Emit(Effect{Kind: EffXMeta, Key: key, Value: encodeStreamMeta(m), Int: 1})
	return OK
}

// cmdXRead is XREAD as the engine runs it: never waiting. With BLOCK and
// no new entry it answers a null array, which is what Redis 7.0 gives
// inside MULTI and scripts; a server blocks XREAD BLOCK itself (through
// Keyspace.XReadWait) before the command gets here.
func cmdXRead(tx *Tx, args [][]byte) Reply {
	return xread(tx, args, nil, nil)
}

// XReadFromScript is XREAD called from a script: Redis 7.0 refuses BLOCK
// there with an error naming the command as the script spelled it (name),
// at the point the option loop meets BLOCK.
func XReadFromScript(tx *Tx, name []byte, args [][]byte) Reply {
	return xread(tx, args, nil, name)
}

// XReadWait is what a blocking layer needs from XREAD: the reply and,
// when there is no new entry, where to wait from.
type XReadWait struct {
	Block   bool     // BLOCK was given
	Timeout int64    // BLOCK's milliseconds; 0 waits for ever
	Count   int64    // COUNT, 0 for no limit
	Keys    [][]byte // the streams, in argument order (aliasing args)
	// IDs are the IDs the streams were compared with, one per key, "$"
	// resolved to the stream's last ID in the same view that found no
	// entry, so nothing added after that view is missed.
	IDs [][]byte
}

// XReadWait runs XREAD's args (with or without BLOCK) as a read. If the
// reply is a null array, w says what to wait for; otherwise r is the
// answer (entries or an error).
func (ks *Keyspace) XReadWait(dbi int, nowMs int64, args [][]byte) (r Reply, w XReadWait) {
	if len(args) < 4 {
		return ErrArity("xread"), w
	}
	if dbi < 0 || dbi >= NumDBs {
		return ErrDBIndex, w
	}
	tx := Tx{ks: ks, DB: dbi, Now: nowMs}
	r = xread(&tx, args, &w, nil)
	return r, w
}

// XReadWake is how Redis 7.0 serves a client blocked in XREAD on key
// above id once key was written: if the stream's last-generated ID is
// above id, the reply is [[key, entries above id]] with count (0: all),
// which may list no entry if they were deleted since; otherwise (or if
// key holds no stream) a null array, and the client stays blocked.
func (ks *Keyspace) XReadWake(dbi int, nowMs int64, key, id []byte, count int64) Reply {
	if dbi < 0 || dbi >= NumDBs {
		return ErrDBIndex
	}
	tx := Tx{ks: ks, DB: dbi, Now: nowMs}
	s, _, ok := lookupStream(&tx, key)
	gt, _, idOK := parseStreamID(id, 0, true, false)
	if !ok || s == nil || !idOK || !gt.less(s.lastID()) {
		return NilArray
	}
	if count == 0 {
		count = -1
	}
	return Reply{Kind: KindPairMap, Elems: []Reply{Bulk(key), Array(streamRange(s, gt.incr(), maxStreamID, count, false)...)}}
}

// xread runs XREAD; w, if set, receives where to wait from; script, if
// set, is the command's name as a script called it.
func xread(tx *Tx, args [][]byte, w *XReadWait, script []byte) Reply {
	count := int64(0)
	var block bool
	var timeout int64
	streamsArg := 0
	for i := 1; i < len(args); i++ {
		more := len(args) - i - 1
		switch o := lower(args[i]); {
		case o == "block" && more > 0:
			if script != nil {
				return Err("ERR " + string(script) + " command is not allowed with BLOCK option from scripts")
			}
			i++
			ms, ok := parseInt64(args[i])
			if !ok {
				return Err("ERR timeout is not an integer or out of range")
			}
			if ms < 0 {
				return Err("ERR timeout is negative")
			}
			block, timeout = true, ms
		case o == "count" && more > 0:
			i++
			n, ok := parseInt64(args[i])
			if !ok {
				return ErrNotInt
			}
			if n < 0 {
				n = 0
			}
			count = n
		case o == "streams" && more > 0:
			streamsArg = i + 1
			if (len(args)-streamsArg)%2 != 0 {
				return Err("ERR Unbalanced XREAD list of streams: for each stream key an ID or '$' must be specified.")
			}
			i = len(args)
		case o == "group" && more >= 2:
			return Err("ERR The GROUP option is only supported by XREADGROUP. You called XREAD instead.")
		case o == "noack":
			return Err("ERR The NOACK option is only supported by XREADGROUP. You called XREAD instead.")
		default:
			return ErrSyntax
		}
	}
	if streamsArg == 0 {
		return ErrSyntax
	}
	n := (len(args) - streamsArg) / 2
	streams := make([]*streamValue, n)
	ids := make([]streamID, n)
	for j := 0; j < n; j++ {
		s, r, ok := lookupStream(tx, args[streamsArg+j])
		if !ok {
			return r
		}
		streams[j] = s
		a := args[streamsArg+n+j]
		switch {
		case len(a) == 1 && a[0] == '$':
			if s != nil {
				ids[j] = s.lastID()
			}
			continue
		case len(a) == 1 && a[0] == '>':
			return Err("ERR The > ID can be specified only when calling XREADGROUP using the GROUP <group> <consumer> option.")
		}
		id, _, ok := parseStreamID(a, 0, true, false)
		if !ok {
			return errXInvalidID
		}
		ids[j] = id
	}
	var out []Reply
	for j, s := range streams {
		if s == nil || s.list.length == 0 || !ids[j].less(s.list.last().id) {
			continue
		}
		c := count
		if c == 0 {
			c = -1
		}
		// A cursor only moves forward: entries merged later from another
		// region with lower IDs are never returned to it.
		out = append(out, Bulk(args[streamsArg+j]),
			Array(streamRange(s, ids[j].incr(), maxStreamID, c, false)...))
	}
	if out != nil {
		return Reply{Kind: KindPairMap, Elems: out}
	}
	if w != nil {
		*w = XReadWait{Block: block, Timeout: timeout, Count: count, Keys: args[streamsArg : streamsArg+n]}
		w.IDs = make([][]byte, n)
		for j, id := range ids {
			w.IDs[j] = []byte(id.String())
		}
	}
	return NilArray
}

// xinfoHelp is XINFO HELP's text, line for line as Redis 7.0 sends it.
var xinfoHelp = []string{
	"XINFO <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
	"CONSUMERS <key> <groupname>",
	"    Show consumers of <groupname>.",
	"GROUPS <key>",
	"    Show the stream consumer groups.",
	"STREAM <key> [FULL [COUNT <count>]",
	"    Show information about the stream.",
	"HELP",
	"    Prints this help.",
}

func cmdXInfo(tx *Tx, args [][]byte) Reply {
	sub := lower(args[1])
	switch {
	case sub == "help":
		if len(args) != 2 {
			return ErrArity("xinfo|help")
		}
		out := make([]Reply, len(xinfoHelp))
		for i, l := range xinfoHelp {
			out[i] = Status(l)
		}
		return Array(out...)
	case sub == "stream" && len(args) < 3, sub == "groups" && len(args) != 3, sub == "consumers" && len(args) != 4:
		return ErrArity("xinfo|" + sub)
	case sub != "stream" && sub != "groups" && sub != "consumers":
		name := errText(args[1])
		if len(name) > 128 {
			name = name[:128]
		}
		return Err("ERR unknown subcommand '" + name + "'. Try XINFO HELP.")
	}
	s, r, ok := lookupStream(tx, args[2])
	if !ok {
		return r
	}
	if s == nil {
		return ErrNoSuchKey
	}
	switch sub {
	case "groups":
		return Array() // consumer groups are not implemented: there are none
	case "consumers":
		return Err("NOGROUP No such consumer group '" + errText(args[3]) + "' for key name '" + errText(args[2]) + "'")
	}
	full := false
	count := int64(10)
	if len(args) > 3 {
		bad := Err("ERR unknown subcommand or wrong number of arguments for '" + errText(args[1]) + "'. Try XINFO HELP.")
		if lower(args[3]) != "full" {
			return bad
		}
		full = true
		switch {
		case len(args) == 4:
		case len(args) == 6 && lower(args[4]) == "count":
			n, ok := parseInt64(args[5])
			if !ok {
				return ErrNotInt
			}
			if n < 0 {
				n = 0
			}
			count = n
		default:
			return bad
		}
	}
	// radix-tree-keys and radix-tree-nodes describe Redis's internal
	// layout, which Concord does not have: left out rather than invented.
	first := streamID{}
	if n := s.list.first(); n != nil {
		first = n.id
	}
	out := []Reply{
		BulkString("length"), Int(int64(s.list.length)),
		BulkString("last-generated-id"), BulkString(s.lastID().String()),
		BulkString("max-deleted-entry-id"), BulkString(s.maxDeleted().String()),
		BulkString("entries-added"), Int(int64(s.added())),
		BulkString("recorded-first-entry-id"), BulkString(first.String()),
	}
	if full {
		c := count
		if c == 0 {
			c = -1
		}
		out = append(out,
			BulkString("entries"), Array(streamRange(s, streamID{}, maxStreamID, c, false)...),
			BulkString("groups"), Array())
		return Reply{Kind: KindMap, Elems: out}
	}
	out = append(out, BulkString("groups"), Int(0))
	if n := s.list.first(); n != nil {
		out = append(out, BulkString("first-entry"), entryReply(n),
			BulkString("last-entry"), entryReply(s.list.last()))
	} else {
		out = append(out, BulkString("first-entry"), Nil, BulkString("last-entry"), Nil)
	}
	return Reply{Kind: KindMap, Elems: out}
}
