package replication

import (
	"bytes"
	"compress/flate"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sync"

	"concord/crdt"
	pb "concord/proto"
)

// Protocol versions this build speaks. A stream uses the highest version
// both ends speak; bump MaxProtocol when the stream's meaning changes, and
// raise MinProtocol only when the oldest version is no longer supported.
//
// Version 2 adds the Publish RPC (pub/sub across regions); Stream is the
// same in both.
const (
	MinProtocol = 1
	MaxProtocol = 2
)

// MaxMessageBytes bounds one gRPC message. A single batch can carry a value
// up to Redis's proto-max-bulk-len (512 MiB); messages are otherwise kept
// near BatchBytes and ChunkBytes.
const MaxMessageBytes = 600 << 20

// VVToPB converts a version vector for the wire.
func VVToPB(v crdt.VersionVector) *pb.VersionVector {
	out := &pb.VersionVector{Entries: make([]*pb.VVEntry, len(v))}
	for i, e := range v {
		out.Entries[i] = &pb.VVEntry{Region: e.Origin.Region, Incarnation: e.Origin.Incarnation, Seq: e.Seq}
	}
	return out
}

// VVFromPB converts a version vector from the wire; it must be sorted by
// origin without duplicates, as crdt keeps it.
func VVFromPB(p *pb.VersionVector) (crdt.VersionVector, error) {
	var v crdt.VersionVector
	for _, e := range p.GetEntries() {
		o := crdt.Origin{Region: e.Region, Incarnation: e.Incarnation}
		if n := len(v); n > 0 && v[n-1].Origin.Compare(o) >= 0 {
			return nil, fmt.Errorf("%w: version vector not sorted", ErrProtocol)
		}
		v = append(v, crdt.VVEntry{Origin: o, Seq: e.Seq})
	}
	return v, nil
}

// deflaters recycles compressors: a new flate.Writer allocates about
// 1.2 MB of tables, far more than the message it compresses, and Reset makes
// a used one equivalent to a new one.
var deflaters = sync.Pool{New: func() any {
	w, _ := flate.NewWriter(io.Discard, flate.BestSpeed)
	return w
}}

// deflateBatches compresses batches; ok is false when it does not pay.
func deflateBatches(batches [][]byte, size int) ([]byte, bool) {
	var buf bytes.Buffer
	w := deflaters.Get().(*flate.Writer)
	w.Reset(&buf)
	defer func() {
		w.Reset(io.Discard) // keep no reference to buf
		deflaters.Put(w)
	}()
	var hdr [binary.MaxVarintLen64]byte
	for _, b := range batches {
		n := binary.PutUvarint(hdr[:], uint64(len(b)))
		w.Write(hdr[:n])
		w.Write(b)
	}
	w.Close()
	if buf.Len() > size*9/10 {
		return nil, false
	}
	return buf.Bytes(), true
}

// maxBatchesPerMessage bounds the batches one compressed message may carry.
const maxBatchesPerMessage = 65536

// errInflate reports a Batches message whose compressed payload is bad.
var errInflate = errors.New("replication: bad deflated batches")

// inflateBatches undoes deflateBatches, refusing to produce more than limit
// bytes (a hostile peer's compression bomb).
func inflateBatches(z []byte, limit int64) ([][]byte, error) {
	r := flate.NewReader(bytes.NewReader(z))
	defer r.Close()
	data, err := io.ReadAll(io.LimitReader(r, limit+1))
	if err != nil {
		return nil, fmt.Errorf("%w: %v", errInflate, err)
	}
	if int64(len(data)) > limit {
		return nil, fmt.Errorf("%w: more than %d bytes", errInflate, limit)
	}
	var out [][]byte
	for len(data) > 0 {
		n, k := binary.Uvarint(data)
		// An empty batch is never sent, and a cap on the count keeps a few
		// compressed bytes from becoming millions of slice headers.
		if k <= 0 || n == 0 || n > uint64(len(data)-k) || len(out) >= maxBatchesPerMessage {
			return nil, errInflate
		}
		out = append(out, data[k:k+int(n)])
		data = data[k+int(n):]
	}
	return out, nil
}
