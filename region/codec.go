package region

import (
	"errors"
	"fmt"

	"concord/crdt"
	pb "concord/proto"

	gproto "google.golang.org/protobuf/proto"
)

// Entry formats. Format 1 entries hold only client commands; format 2 is
// written only for an entry holding a remote batch, a transfer chunk or a
// fold unit (cross-region replication) or an incarnation unit, so a region
// that never replicates writes entries nodes of the previous version read
// once its origin is fixed. Format 3 is written for an entry holding a
// transfer chunk that names its sender (TransferChunk.from): a node of
// the previous version would stage it under its old rule, forking the
// staged state, so it must stop instead. This version applies all three;
// a format-2 chunk stages as it always did (crdt.Chunk.From 0).
const (
	entryFormatV1 = 1
	entryFormatV2 = 2
	entryFormatV3 = 3
)

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
	if r.Kind == crdt.KindArray || r.Kind == crdt.KindMap || r.Kind == crdt.KindSet || r.Kind == crdt.KindPairs ||
		r.Kind == crdt.KindPairMap {
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

// isReplUnit reports whether u carries a remote batch list or a transfer
// chunk rather than commands.
func isReplUnit(u *pb.Unit) bool { return len(u.Remote) > 0 || u.Chunk != nil }

// isIncarnationUnit reports whether u fixes or renews the region's origin.
func isIncarnationUnit(u *pb.Unit) bool { return u.Incarnation != 0 || u.Renew || u.RenewFrom != 0 }

// isFoldUnit reports whether u folds causally stable counter pieces.
func isFoldUnit(u *pb.Unit) bool { return u.Fold != nil }

// needsV2 reports whether u can only be written in a format-2 entry.
func needsV2(u *pb.Unit) bool { return isReplUnit(u) || isIncarnationUnit(u) || isFoldUnit(u) }

// foldStableToPB and foldStableFromPB carry a fold's stable vector.
func foldStableToPB(v crdt.VersionVector) []*pb.FoldStable {
	out := make([]*pb.FoldStable, 0, len(v))
	for _, e := range v {
		out = append(out, &pb.FoldStable{Region: e.Origin.Region, Incarnation: e.Origin.Incarnation, Seq: e.Seq})
	}
	return out
}

// foldStableFromPB rebuilds the vector through Set, so whatever order or
// repetition the unit holds, every node folds under the same canonical
// vector.
func foldStableFromPB(es []*pb.FoldStable) crdt.VersionVector {
	var v crdt.VersionVector
	for _, e := range es {
		o := crdt.Origin{Region: e.Region, Incarnation: e.Incarnation}
		if e.Seq > v.Get(o) {
			v = v.Set(o, e.Seq)
		}
	}
	return v
}

// needsV3 reports whether u can only be written in a format-3 entry.
func needsV3(u *pb.Unit) bool { return u.Chunk != nil && u.Chunk.From != 0 }

// entryFormat is the format an entry holding units must be written in:
// the lowest that every unit allows.
func entryFormat(units []*pb.Unit) uint32 {
	f := uint32(entryFormatV1)
	for _, u := range units {
		switch {
		case needsV3(u):
			return entryFormatV3
		case needsV2(u):
			f = entryFormatV2
		}
	}
	return f
}

// unitBytes estimates a unit's encoded size, for group commit's bound.
func unitBytes(u *pb.Unit) int {
	n := 16 // proposer, id, framing
	for _, c := range u.Commands {
		for _, a := range c.Args {
			n += len(a) + 2
		}
	}
	for _, b := range u.Remote {
		n += len(b) + 4
	}
	if u.Chunk != nil {
		n += len(u.Chunk.Data) + 24
	}
	if u.Fold != nil {
		n += 16*len(u.Fold.Stable) + 8
	}
	return n
}

// decodeEntry parses a log entry and checks its format and shape. Protobuf
// decoding copies bytes fields, so nothing in the result aliases data (the
// replication log keeps remote batches).
func decodeEntry(data []byte) (*pb.Entry, error) {
	var e pb.Entry
	if err := gproto.Unmarshal(data, &e); err != nil {
		return nil, fmt.Errorf("region: corrupt log entry: %w", err)
	}
	switch e.Format {
	case entryFormatV1:
		for i, u := range e.Units {
			if needsV2(u) {
				return nil, fmt.Errorf("region: corrupt log entry: format 1 entry holds a remote, chunk, incarnation or fold unit (unit %d)", i)
			}
		}
	case entryFormatV2, entryFormatV3:
		for i, u := range e.Units {
			if e.Format == entryFormatV2 && needsV3(u) {
				return nil, fmt.Errorf("region: corrupt log entry: format 2 entry holds a chunk naming its sender (unit %d)", i)
			}
			kinds := 0
			if len(u.Commands) > 0 {
				kinds++
			}
			if len(u.Remote) > 0 {
				kinds++
			}
			if u.Chunk != nil {
				kinds++
			}
			if isIncarnationUnit(u) {
				kinds++
			}
			if isFoldUnit(u) {
				kinds++
			}
			if kinds > 1 {
				return nil, fmt.Errorf("region: corrupt log entry: unit %d mixes commands, remote batches, a chunk, an incarnation and a fold", i)
			}
		}
	default:
		return nil, fmt.Errorf("%w (format %d)", errEntryFormat, e.Format)
	}
	return &e, nil
}
