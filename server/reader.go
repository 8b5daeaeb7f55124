package server

import (
	"io"
	"math"
)

// Request parsing follows Redis 7.0's processMultibulkBuffer and
// processInlineBuffer (networking.c) byte for byte where a client can tell
// the difference: the same protocol errors with the same texts, the same
// limits, "*0" and "*-10" ignored, inline commands split like sdssplitargs,
// and a NUL byte ending the search for a line terminator like strchr does.
// redcon's reader is not used for requests because it enforces none of these
// limits, buffers a bulk of any announced size and rejects "*-10"; redcon
// still writes the replies (see reply.go).

const (
	inlineMaxSize = 64 * 1024 // PROTO_INLINE_MAX_SIZE
	bigArg        = 32 * 1024 // PROTO_MBULK_BIG_ARG: read straight into its own buffer
	ioBufLen      = 16 * 1024 // PROTO_IOBUF_LEN
	unauthMaxArgs = 10        // before AUTH (CVE-2021-32675)
	unauthMaxBulk = 16 * 1024
)

// protoError is a protocol error: the client gets "-ERR " + msg and the
// connection is closed after the reply, as in Redis.
type protoError struct{ msg string }

func (e *protoError) Error() string { return e.msg }

var (
	errTooBigInline     = &protoError{"Protocol error: too big inline request"}
	errUnbalancedQuotes = &protoError{"Protocol error: unbalanced quotes in request"}
	errTooBigMbulkCount = &protoError{"Protocol error: too big mbulk count string"}
	errInvalidMbulkLen  = &protoError{"Protocol error: invalid multibulk length"}
	errUnauthMbulkLen   = &protoError{"Protocol error: unauthenticated multibulk length"}
	errTooBigBulkCount  = &protoError{"Protocol error: too big bulk count string"}
	errInvalidBulkLen   = &protoError{"Protocol error: invalid bulk length"}
	errUnauthBulkLen    = &protoError{"Protocol error: unauthenticated bulk length"}
)

// reqLimits are the limits the parser enforces; the server fills them from
// its configuration before each parse.
type reqLimits struct {
	maxBulk    int64 // proto-max-bulk-len
	authNeeded bool  // client must still authenticate: unauth* limits apply
}

// argRef locates one argument of the command being parsed: in buf at off
// (relative to cmdStart) or, for a big argument, in big.
type argRef struct {
	off, n int
	big    []byte
}

// reqReader reads commands from one connection. It is used by a single
// goroutine.
type reqReader struct {
	rd  io.Reader
	buf []byte // buf[pos:end] is unparsed input
	pos int
	end int

	// The multibulk command in progress (multibulk > 0).
	cmdStart  int // where the command's first argument header starts
	multibulk int // arguments still to read
	bulklen   int // length of the argument being read, -1 if not known yet
	refs      []argRef
	bigBytes  int    // bytes held in big arguments of the command
	big       []byte // big argument being filled (len bulklen+2)
	bigFill   int
	inBig     int // bytes of buf[cmdStart:pos] that were copied into big arguments

	// The search for the line at pos resumes at scanFrom (so input that
	// trickles in is scanned once, not once per read); scanStop records a
	// NUL met first, which ends the search for good, as strchr's would.
	scanFrom int
	scanStop bool

	total int64 // bytes read so far

	argFree []byte   // unused rest of the current argument chunk
	hdrFree [][]byte // unused rest of the current header chunk
}

func newReqReader(rd io.Reader) *reqReader {
	return &reqReader{rd: rd, buf: make([]byte, ioBufLen), bulklen: -1}
}

// buffered returns how many bytes of query input the reader holds: unparsed
// input plus the parts of the command in progress (Redis's qbuf, and what
// client-query-buffer-limit is checked against).
func (r *reqReader) buffered() int {
	n := r.end - r.pos + r.bigBytes + r.bigFill
	if r.multibulk > 0 {
		n += r.pos - r.cmdStart - r.inBig
	}
	return n
}

// fill reads more input, blocking until some arrives.
func (r *reqReader) fill() error {
	if r.big != nil && r.bigFill < len(r.big) {
		n, err := r.rd.Read(r.big[r.bigFill:])
		r.bigFill += n
		r.total += int64(n)
		if n > 0 {
			return nil
		}
		return err
	}
	keep := r.pos // first byte that must be kept
	if r.multibulk > 0 {
		keep = r.cmdStart
	}
	if keep > 0 && (r.end == len(r.buf) || keep >= len(r.buf)/2 || r.end == keep) {
		copy(r.buf, r.buf[keep:r.end])
		r.end -= keep
		r.pos -= keep
		r.cmdStart -= keep
		r.scanFrom = max(r.scanFrom-keep, 0)
		if r.multibulk == 0 {
			r.cmdStart = 0
		}
	}
	if r.end == len(r.buf) {
		nb := make([]byte, 2*len(r.buf))
		copy(nb, r.buf[:r.end])
		r.buf = nb
	} else if r.end == 0 && len(r.buf) > 4*ioBufLen {
		r.buf = make([]byte, ioBufLen) // shrink after a large request
	}
	n, err := r.rd.Read(r.buf[r.end:])
	r.end += n
	r.total += int64(n)
	if n > 0 {
		return nil
	}
	if err == nil {
		err = io.ErrNoProgress
	}
	return err
}

// next parses the next command from buffered input. It returns ok=false when
// more input is needed. A command with no arguments (an empty inline line,
// "*0", "*-1") is returned as ok=true with args empty: the caller skips it.
// The returned arguments are owned by the caller.
func (r *reqReader) next(lim reqLimits) (args [][]byte, ok bool, err error) {
	if r.multibulk == 0 {
		if r.pos == r.end {
			r.pos, r.end = 0, 0
			return nil, false, nil
		}
		if r.buf[r.pos] != '*' {
			return r.inline()
		}
		b := r.buf[r.pos:r.end]
		nl := r.findLine('\r')
		if nl < 0 {
			if len(b) > inlineMaxSize {
				return nil, false, errTooBigMbulkCount
			}
			return nil, false, nil
		}
		if nl > len(b)-2 { // the '\n' is not here yet
			return nil, false, nil
		}
		ll, okNum := string2ll(b[1:nl])
		if !okNum || ll > math.MaxInt32 {
			return nil, false, errInvalidMbulkLen
		}
		if ll > unauthMaxArgs && lim.authNeeded {
			return nil, false, errUnauthMbulkLen
		}
		r.advance(nl + 2)
		if ll <= 0 {
			return [][]byte{}, true, nil
		}
		r.multibulk = int(ll)
		r.bulklen = -1
		r.cmdStart = r.pos
		r.refs = r.refs[:0]
		r.bigBytes = 0
		r.inBig = 0
	}
	for r.multibulk > 0 {
		if r.bulklen == -1 {
			b := r.buf[r.pos:r.end]
			nl := r.findLine('\r')
			if nl < 0 {
				if len(b) > inlineMaxSize {
					return nil, false, errTooBigBulkCount
				}
				return nil, false, nil
			}
			if nl > len(b)-2 {
				return nil, false, nil
			}
			if b[0] != '$' {
				return nil, false, &protoError{"Protocol error: expected '$', got '" + string(b[0]) + "'"}
			}
			ll, okNum := string2ll(b[1:nl])
			if !okNum || ll < 0 || ll > lim.maxBulk {
				return nil, false, errInvalidBulkLen
			}
			if ll > unauthMaxBulk && lim.authNeeded {
				return nil, false, errUnauthBulkLen
			}
			r.advance(nl + 2)
			r.bulklen = int(ll)
			if r.bulklen >= bigArg {
				// Read a big argument into its own buffer, as Redis does,
				// instead of growing the shared one.
				r.big = make([]byte, r.bulklen+2)
				r.bigFill = copy(r.big, r.buf[r.pos:r.end])
				r.advance(r.bigFill)
				r.inBig += r.bigFill
			}
		}
		if r.big != nil {
			if r.bigFill < len(r.big) {
				return nil, false, nil
			}
			r.refs = append(r.refs, argRef{big: r.big[:r.bulklen]})
			r.bigBytes += len(r.big)
			r.big, r.bigFill = nil, 0
		} else {
			if r.end-r.pos < r.bulklen+2 {
				return nil, false, nil
			}
			// Like Redis, the two bytes after the bulk are skipped unchecked.
			r.refs = append(r.refs, argRef{off: r.pos - r.cmdStart, n: r.bulklen})
			r.advance(r.bulklen + 2)
		}
		r.bulklen = -1
		r.multibulk--
	}
	args = r.collect()
	return args, true, nil
}

// Arguments are carved out of chunks shared by consecutive commands, so a
// pipeline of small commands costs a few allocations, not two per command.
// A chunk is never reused: it is freed when no command refers to it.
const (
	argChunk = 16 << 10 // bytes
	hdrChunk = 512      // argument headers
	ownAlloc = 1 << 10  // arguments at least this long get their own block
)

// collect copies the finished command's arguments out of the buffer.
func (r *reqReader) collect() [][]byte {
	total := 0
	for _, a := range r.refs {
		if a.big == nil {
			total += a.n
		}
	}
	var block []byte
	if total >= ownAlloc {
		block = make([]byte, total)
	} else {
		if len(r.argFree) < total {
			r.argFree = make([]byte, argChunk)
		}
		block = r.argFree[:total:total]
		r.argFree = r.argFree[total:]
	}
	n := len(r.refs)
	var args [][]byte
	if n > hdrChunk/4 {
		args = make([][]byte, n)
	} else {
		if len(r.hdrFree) < n {
			r.hdrFree = make([][]byte, hdrChunk)
		}
		args = r.hdrFree[:n:n]
		r.hdrFree = r.hdrFree[n:]
	}
	at := 0
	for i, a := range r.refs {
		if a.big != nil {
			args[i] = a.big
			continue
		}
		copy(block[at:], r.buf[r.cmdStart+a.off:r.cmdStart+a.off+a.n])
		args[i] = block[at : at+a.n : at+a.n]
		at += a.n
	}
	r.refs = r.refs[:0]
	r.bigBytes = 0
	return args
}

func (r *reqReader) inline() ([][]byte, bool, error) {
	b := r.buf[r.pos:r.end]
	nl := r.findLine('\n')
	if nl < 0 {
		if len(b) > inlineMaxSize {
			return nil, false, errTooBigInline
		}
		return nil, false, nil
	}
	line := b[:nl]
	if nl > 0 && line[nl-1] == '\r' {
		line = line[:nl-1]
	}
	args, ok := splitArgs(line)
	if !ok {
		return nil, false, errUnbalancedQuotes
	}
	r.advance(nl + 1)
	return args, true, nil
}

// advance consumes n bytes of input.
func (r *reqReader) advance(n int) {
	r.pos += n
	r.scanFrom, r.scanStop = 0, false
}

// findLine returns the index (from pos) of the first c, or -1 if it has
// not arrived yet or a NUL byte comes first (Redis searches with strchr on
// a C string).
func (r *reqReader) findLine(c byte) int {
	if r.scanStop {
		return -1
	}
	for i := max(r.pos, r.scanFrom); i < r.end; i++ {
		switch r.buf[i] {
		case c:
			return i - r.pos
		case 0:
			r.scanStop = true
			return -1
		}
	}
	r.scanFrom = r.end
	return -1
}

// string2ll parses a decimal int64 exactly as Redis's string2ll: optional
// '-', no '+', no leading zeros, no spaces, at most 20 characters.
func string2ll(b []byte) (int64, bool) {
	if len(b) == 0 || len(b) >= 21 {
		return 0, false
	}
	if len(b) == 1 && b[0] == '0' {
		return 0, true
	}
	neg := false
	if b[0] == '-' {
		neg = true
		b = b[1:]
		if len(b) == 0 {
			return 0, false
		}
	}
	if b[0] < '1' || b[0] > '9' {
		return 0, false
	}
	var v uint64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		d := uint64(c - '0')
		if v > (math.MaxUint64-d)/10 {
			return 0, false
		}
		v = v*10 + d
	}
	if neg {
		if v > 1<<63 {
			return 0, false
		}
		return -int64(v), true
	}
	if v > math.MaxInt64 {
		return 0, false
	}
	return int64(v), true
}

// isSpace is C's isspace in the C locale.
func isSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r'
}

func isHex(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
}

func hexVal(c byte) byte {
	switch {
	case c >= '0' && c <= '9':
		return c - '0'
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10
	default:
		return c - 'A' + 10
	}
}

// splitArgs splits an inline command line like Redis's sdssplitargs:
// blanks separate arguments, "double quotes" take \xHH and \n \r \t \b \a
// escapes, 'single quotes' take \', and a closing quote must be followed by a
// blank or the end of the line. ok is false for unbalanced quotes. The line
// holds no NUL byte (the caller stopped there).
func splitArgs(line []byte) (args [][]byte, ok bool) {
	p := 0
	at := func(i int) byte { // the C string's byte at i, 0 past the end
		if i < len(line) {
			return line[i]
		}
		return 0
	}
	args = [][]byte{}
	for {
		for p < len(line) && isSpace(line[p]) {
			p++
		}
		if p >= len(line) {
			return args, true
		}
		cur := []byte{}
		inq, insq, done := false, false, false
		for !done {
			c := at(p)
			switch {
			case inq:
				switch {
				case c == '\\' && at(p+1) == 'x' && isHex(at(p+2)) && isHex(at(p+3)):
					cur = append(cur, hexVal(at(p+2))*16+hexVal(at(p+3)))
					p += 3
				case c == '\\' && at(p+1) != 0:
					p++
					e := line[p]
					switch e {
					case 'n':
						e = '\n'
					case 'r':
						e = '\r'
					case 't':
						e = '\t'
					case 'b':
						e = '\b'
					case 'a':
						e = '\a'
					}
					cur = append(cur, e)
				case c == '"':
					if n := at(p + 1); n != 0 && !isSpace(n) {
						return nil, false
					}
					done = true
				case c == 0:
					return nil, false
				default:
					cur = append(cur, c)
				}
			case insq:
				switch {
				case c == '\\' && at(p+1) == '\'':
					p++
					cur = append(cur, '\'')
				case c == '\'':
					if n := at(p + 1); n != 0 && !isSpace(n) {
						return nil, false
					}
					done = true
				case c == 0:
					return nil, false
				default:
					cur = append(cur, c)
				}
			default:
				switch c {
				case ' ', '\n', '\r', '\t', 0:
					done = true
				case '"':
					inq = true
				case '\'':
					insq = true
				default:
					cur = append(cur, c)
				}
			}
			if p < len(line) {
				p++
			}
		}
		args = append(args, cur)
	}
}
