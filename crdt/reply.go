package crdt

// ReplyKind says how a Reply is written on the wire. The server renders each
// kind for RESP2 or RESP3; crdt never formats protocol bytes.
type ReplyKind uint8

const (
	KindNil      ReplyKind = iota // RESP2 $-1, RESP3 _
	KindNilArray                  // RESP2 *-1, RESP3 _
	KindStatus                    // +OK
	KindError                     // -ERR ... (Str holds the whole text, prefix included)
	KindInt                       // :n
	KindBulk                      // $n
	KindArray                     // *n
	KindMap                       // RESP3 %n; RESP2 flat array of 2n
	KindSet                       // RESP3 ~n; RESP2 array
	KindDouble                    // RESP3 ,d; RESP2 bulk string (Str holds RESP2 text)
	KindBool                      // RESP3 #t/#f; RESP2 :1/:0
	KindPairs                     // array of 2-element arrays in RESP3 (e.g. WITHSCORES); flat in RESP2
	KindPairMap                   // RESP3 %n map; RESP2 array of n 2-element arrays (XREAD)
)

// Reply is a protocol-neutral command reply.
type Reply struct {
	Kind  ReplyKind
	Str   []byte  // Status, Error, Bulk; Double's RESP2 text
	Int   int64   // Int, Bool (0/1)
	Float float64 // Double
	Elems []Reply // Array, Set; Map and Pairs as k1,v1,k2,v2...
}

// Result is the outcome of one unit of commands on the write path: a reply
// per command, or the error that kept the unit from being applied.
type Result struct {
	Replies []Reply
	Err     error
}

// Common replies.
var (
	OK       = Reply{Kind: KindStatus, Str: []byte("OK")}
	Nil      = Reply{Kind: KindNil}
	NilArray = Reply{Kind: KindNilArray}
	Queued   = Reply{Kind: KindStatus, Str: []byte("QUEUED")}
)

// Status returns a simple-string reply.
func Status(s string) Reply { return Reply{Kind: KindStatus, Str: []byte(s)} }

// Err returns an error reply; s must include the error code ("ERR ...").
func Err(s string) Reply { return Reply{Kind: KindError, Str: []byte(s)} }

// Int returns an integer reply.
func Int(n int64) Reply { return Reply{Kind: KindInt, Int: n} }

// Bool returns a RESP3 boolean (integer 0/1 in RESP2).
func Bool(b bool) Reply {
	if b {
		return Reply{Kind: KindBool, Int: 1}
	}
	return Reply{Kind: KindBool}
}

// Bulk returns a bulk-string reply; the slice is copied so the reply never
// aliases keyspace memory that a later write could change.
func Bulk(b []byte) Reply { return Reply{Kind: KindBulk, Str: append([]byte{}, b...)} }

// BulkString returns a bulk-string reply of s.
func BulkString(s string) Reply { return Reply{Kind: KindBulk, Str: []byte(s)} }

// Array returns an array reply.
func Array(elems ...Reply) Reply {
	if elems == nil {
		elems = []Reply{}
	}
	return Reply{Kind: KindArray, Elems: elems}
}

// Double returns a double reply with Redis 7.0's formatting (%.17g, inf, -inf).
func Double(f float64) Reply {
	return Reply{Kind: KindDouble, Float: f, Str: []byte(FormatDouble(f))}
}

// IsError reports whether r is an error reply.
func (r Reply) IsError() bool { return r.Kind == KindError }

// Standard error replies, with Redis 7.0's texts.
var (
	ErrWrongType    = Err("WRONGTYPE Operation against a key holding the wrong kind of value")
	ErrSyntax       = Err("ERR syntax error")
	ErrNotInt       = Err("ERR value is not an integer or out of range")
	ErrNotFloat     = Err("ERR value is not a valid float")
	ErrOverflow     = Err("ERR increment or decrement would overflow")
	ErrNoSuchKey    = Err("ERR no such key")
	ErrIndexRange   = Err("ERR index out of range")
	ErrDBIndex      = Err("ERR DB index is out of range")
	ErrNotPositive  = Err("ERR value is out of range, must be positive")
	ErrStringTooBig = Err("ERR string exceeds maximum allowed size (proto-max-bulk-len)")
)

// ErrInvalidExpire is the reply for an out-of-range expire time.
func ErrInvalidExpire(cmd string) Reply {
	return Err("ERR invalid expire time in '" + cmd + "' command")
}

// ErrArity is the reply for a wrong number of arguments.
func ErrArity(cmd string) Reply {
	return Err("ERR wrong number of arguments for '" + cmd + "' command")
}
