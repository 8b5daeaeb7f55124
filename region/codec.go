package region

import (
	"errors"
	"fmt"

	"concord/crdt"
	pb "concord/proto"

	gproto "google.golang.org/protobuf/proto"
)

// entryFormatV1 is the only entry format this version writes and applies.
const entryFormatV1 = 1

// errEntryFormat stops apply on an entry this version cannot read: applying
// it wrongly would fork this node's state from the others'.
var errEntryFormat = errors.New("region: log entry has an unknown format; upgrade this node")

func commandsToPB(cmds []crdt.Command) []*pb.Command {
	out := make([]*pb.Command, len(cmds))
	for i, c := range cmds {
		out[i] = &pb.Command{Db: uint32(c.DB), Args: c.Args}
	}
	return out
}

func commandsFromPB(cmds []*pb.Command) []crdt.Command {
	out := make([]crdt.Command, len(cmds))
	for i, c := range cmds {
		out[i] = crdt.Command{DB: int(c.Db), Args: c.Args}
	}
	return out
}

func replyToPB(r crdt.Reply) *pb.Reply {
	p := &pb.Reply{Kind: uint32(r.Kind), Str: r.Str, Int: r.Int, Float: r.Float}
	if len(r.Elems) > 0 {
		p.Elems = make([]*pb.Reply, len(r.Elems))
		for i, e := range r.Elems {
			p.Elems[i] = replyToPB(e)
		}
	}
	return p
}

func replyFromPB(p *pb.Reply) crdt.Reply {
	if p == nil {
		return crdt.Nil
	}
	r := crdt.Reply{Kind: crdt.ReplyKind(p.Kind), Str: p.Str, Int: p.Int, Float: p.Float}
	if r.Kind == crdt.KindArray || r.Kind == crdt.KindMap || r.Kind == crdt.KindSet || r.Kind == crdt.KindPairs {
		r.Elems = make([]crdt.Reply, len(p.Elems))
		for i, e := range p.Elems {
			r.Elems[i] = replyFromPB(e)
		}
	}
	return r
}

func resultsToPB(rs []crdt.Result) []*pb.UnitResult {
	out := make([]*pb.UnitResult, len(rs))
	for i, r := range rs {
		u := &pb.UnitResult{}
		if r.Err != nil {
			u.Error = errText(r.Err)
		} else {
			u.Replies = make([]*pb.Reply, len(r.Replies))
			for j, rep := range r.Replies {
				u.Replies[j] = replyToPB(rep)
			}
		}
		out[i] = u
	}
	return out
}

func resultFromPB(u *pb.UnitResult) crdt.Result {
	if u.Error != "" {
		return crdt.Result{Err: &Error{text: u.Error}}
	}
	rs := make([]crdt.Reply, len(u.Replies))
	for i, p := range u.Replies {
		rs[i] = replyFromPB(p)
	}
	return crdt.Result{Replies: rs}
}

// decodeEntry parses a log entry and checks its format.
func decodeEntry(data []byte) (*pb.Entry, error) {
	var e pb.Entry
	if err := gproto.Unmarshal(data, &e); err != nil {
		return nil, fmt.Errorf("region: corrupt log entry: %w", err)
	}
	if e.Format != entryFormatV1 {
		return nil, fmt.Errorf("%w (format %d)", errEntryFormat, e.Format)
	}
	return &e, nil
}
