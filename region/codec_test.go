package region

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	gproto "google.golang.org/protobuf/proto"

	"concord/crdt"
	pb "concord/proto"
)

func entryBytes(t *testing.T, format uint32, args ...string) []byte {
	t.Helper()
	e := &pb.Entry{Format: format, Time: uint64(crdt.HLCFromMillis(time.Now().UnixMilli())), Seed: 7,
		Units: []*pb.Unit{{Proposer: "n1", Id: 1, Commands: commandsToPB([]crdt.Command{cmd(args...)})}}}
	data, err := gproto.Marshal(e)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// TestDecodeEntryChecksFormat: only the formats this version writes are
// accepted; an entry without a format or from a later version, or bytes
// that are no entry at all, are errors.
func TestDecodeEntryChecksFormat(t *testing.T) {
	for _, f := range []uint32{entryFormatV1, entryFormatV2, entryFormatV3} {
		e, err := decodeEntry(entryBytes(t, f, "SET", "a", "1"))
		if err != nil || len(e.Units) != 1 || string(e.Units[0].Commands[0].Args[1]) != "a" {
			t.Fatalf("format %d: %v %v", f, e, err)
		}
	}
	for _, f := range []uint32{0, 4, 1 << 20} {
		if _, err := decodeEntry(entryBytes(t, f, "SET", "a", "1")); !errors.Is(err, errEntryFormat) {
			t.Errorf("format %d: got %v, want errEntryFormat", f, err)
		}
	}
	if _, err := decodeEntry([]byte{0xff, 0xff, 0xff}); err == nil {
		t.Error("garbage decoded as an entry")
	}
}

// TestApplyStopsOnUnknownEntryFormat: apply panics on an entry it cannot
// read rather than skip it or apply it wrongly, which would fork this
// node's state from its peers'. The entry's commands are not applied, the
// applied index does not move past it, and the state lock is released.
func TestApplyStopsOnUnknownEntryFormat(t *testing.T) {
	f := newFSM(crdt.NewKeyspace(crdt.Origin{Region: 1, Incarnation: 1}, crdt.Options{Solo: true}), crdt.LogLimits{}, newRegistry(), nil)
	logs := []*raft.Log{
		{Index: 5, Type: raft.LogCommand, Data: entryBytes(t, entryFormatV1, "SET", "a", "1")},
		{Index: 6, Type: raft.LogCommand, Data: entryBytes(t, 4, "SET", "b", "2")},
	}
	var msg string
	func() {
		defer func() { msg = fmt.Sprint(recover()) }()
		f.ApplyBatch(logs)
	}()
	if !strings.Contains(msg, "entry 6") || !strings.Contains(msg, "unknown format") {
		t.Fatalf("apply of an unknown format: panic %q, want one naming entry 6 and the format", msg)
	}
	if f.applied.Load() >= 6 {
		t.Fatalf("applied index moved to %d past the unreadable entry", f.applied.Load())
	}
	if !f.mu.TryLock() {
		t.Fatal("the state lock is still held after the panic")
	}
	f.mu.Unlock()
	r := f.rep.Keyspace().Read(0, time.Now().UnixMilli(), 1, [][]byte{[]byte("GET"), []byte("b")})
	if r.Kind != crdt.KindNil {
		t.Fatalf("the unreadable entry was applied: b=%q", r.Str)
	}
}
