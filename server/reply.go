package server

import (
	"context"
	"errors"
	"strconv"

	"github.com/tidwall/redcon"

	"concord/crdt"
)

// kindVerbatim is a server-only reply kind: a RESP3 verbatim string ("txt"
// format) that RESP2 clients get as a bulk string (INFO, CLIENT LIST, CLIENT
// INFO). Data commands never produce it.
const kindVerbatim crdt.ReplyKind = 100

// kindPush is a server-only reply kind: a RESP3 push (pub/sub messages
// and confirmations), an array in RESP2.
const kindPush crdt.ReplyKind = 101

// kindNone marks a command that wrote its replies itself (the subscribe
// commands write one confirmation per argument): nothing more is sent.
const kindNone crdt.ReplyKind = 102

var noReply = crdt.Reply{Kind: kindNone}

func verbatim(s string) crdt.Reply { return crdt.Reply{Kind: kindVerbatim, Str: []byte(s)} }

// appendReply renders r for a client speaking RESP protocol version resp
// (2 or 3), exactly as Redis 7.0 writes the same reply.
func appendReply(b []byte, r crdt.Reply, resp int) []byte {
	switch r.Kind {
	case crdt.KindNil:
		if resp == 3 {
			return append(b, "_\r\n"...)
		}
		return append(b, "$-1\r\n"...)
	case crdt.KindNilArray:
		if resp == 3 {
			return append(b, "_\r\n"...)
		}
		return append(b, "*-1\r\n"...)
	case crdt.KindStatus:
		return appendLine(append(b, '+'), r.Str)
	case crdt.KindError:
		return appendLine(append(b, '-'), r.Str)
	case crdt.KindInt:
		return redcon.AppendInt(b, r.Int)
	case crdt.KindBulk:
		return redcon.AppendBulk(b, r.Str)
	case crdt.KindArray:
		b = redcon.AppendArray(b, len(r.Elems))
		return appendElems(b, r.Elems, resp)
	case crdt.KindMap:
		if resp == 3 {
			b = appendHeader(b, '%', len(r.Elems)/2)
		} else {
			b = redcon.AppendArray(b, len(r.Elems))
		}
		return appendElems(b, r.Elems, resp)
	case crdt.KindSet:
		if resp == 3 {
			b = appendHeader(b, '~', len(r.Elems))
		} else {
			b = redcon.AppendArray(b, len(r.Elems))
		}
		return appendElems(b, r.Elems, resp)
	case crdt.KindPairs:
		if resp != 3 {
			b = redcon.AppendArray(b, len(r.Elems))
			return appendElems(b, r.Elems, resp)
		}
		b = redcon.AppendArray(b, len(r.Elems)/2)
		for i := 0; i+1 < len(r.Elems); i += 2 {
			b = redcon.AppendArray(b, 2)
			b = appendReply(b, r.Elems[i], resp)
			b = appendReply(b, r.Elems[i+1], resp)
		}
		return b
	case crdt.KindPairMap:
		if resp == 3 {
			b = appendHeader(b, '%', len(r.Elems)/2)
			return appendElems(b, r.Elems, resp)
		}
		b = redcon.AppendArray(b, len(r.Elems)/2)
		for i := 0; i+1 < len(r.Elems); i += 2 {
			b = redcon.AppendArray(b, 2)
			b = appendReply(b, r.Elems[i], resp)
			b = appendReply(b, r.Elems[i+1], resp)
		}
		return b
	case crdt.KindDouble:
		if resp == 3 {
			// Str, when set, is the text for RESP3 too: GEOPOS-style
			// coordinates print with more digits than %.17g.
			b = append(b, ',')
			if r.Str != nil {
				return append(append(b, r.Str...), '\r', '\n')
			}
			b = append(b, crdt.FormatDouble(r.Float)...)
			return append(b, '\r', '\n')
		}
		if r.Str != nil {
			return redcon.AppendBulk(b, r.Str)
		}
		return redcon.AppendBulkString(b, crdt.FormatDouble(r.Float))
	case crdt.KindBool:
		if resp == 3 {
			if r.Int != 0 {
				return append(b, "#t\r\n"...)
			}
			return append(b, "#f\r\n"...)
		}
		return redcon.AppendInt(b, r.Int)
	case kindPush:
		if resp == 3 {
			b = appendHeader(b, '>', len(r.Elems))
		} else {
			b = redcon.AppendArray(b, len(r.Elems))
		}
		return appendElems(b, r.Elems, resp)
	case kindVerbatim:
		if resp == 3 {
			b = appendHeader(b, '=', len(r.Str)+4)
			b = append(b, "txt:"...)
			b = append(b, r.Str...)
			return append(b, '\r', '\n')
		}
		return redcon.AppendBulk(b, r.Str)
	}
	panic("server: reply kind " + strconv.Itoa(int(r.Kind)) + " has no encoding")
}

func appendElems(b []byte, elems []crdt.Reply, resp int) []byte {
	for i := range elems {
		b = appendReply(b, elems[i], resp)
	}
	return b
}

func appendHeader(b []byte, c byte, n int) []byte {
	b = append(b, c)
	b = strconv.AppendInt(b, int64(n), 10)
	return append(b, '\r', '\n')
}

// appendLine appends a status or error text; CR and LF become spaces so the
// reply stays one protocol line (Redis does the same to error texts).
func appendLine(b, s []byte) []byte {
	for _, c := range s {
		if c == '\r' || c == '\n' {
			c = ' '
		}
		b = append(b, c)
	}
	return append(b, '\r', '\n')
}

// errReply translates a write-path error into the RESP error a client gets.
// It is the one place where Go errors become protocol errors.
func errReply(err error) crdt.Reply {
	var re RedisError
	switch {
	case errors.As(err, &re):
		return crdt.Err(re.RedisError())
	case errors.Is(err, ErrClosed), errors.Is(err, context.Canceled):
		return crdt.Err("ERR server is shutting down")
	case errors.Is(err, context.DeadlineExceeded):
		return crdt.Err("ERR write timed out; it may or may not have been applied")
	}
	return crdt.Err("ERR " + err.Error())
}

// readErrReply translates a read fence error. A read changes nothing, so
// unlike a write that timed out it is always safe to retry.
func readErrReply(err error) crdt.Reply {
	var re RedisError
	if !errors.As(err, &re) && errors.Is(err, context.DeadlineExceeded) {
		return crdt.Err("TRYAGAIN timed out confirming this node's view is current; retry, or send READONLY to read possibly stale data")
	}
	return errReply(err)
}

// errorCode returns an error reply's code as INFO errorstats counts it:
// the first word if a space ends it within 32 bytes, else "ERR" (Redis's
// afterErrorReply).
func errorCode(r crdt.Reply) string {
	s := r.Str
	if len(s) > 32 {
		s = s[:32]
	}
	for i, c := range s {
		if c == ' ' {
			if i == 0 {
				break
			}
			return string(s[:i])
		}
	}
	return "ERR"
}
