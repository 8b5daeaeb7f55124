package crdt

import (
	"strings"
	"testing"
)

// TestXReadWait: XReadWait answers as XREAD when there is data or an
// error, and otherwise says where to wait from, "$" resolved in the same
// view; the engine's XREAD BLOCK never waits (a null array).
func TestXReadWait(t *testing.T) {
	ks := NewKeyspace(Origin{Region: 1, Incarnation: 1}, Options{Solo: true})
	bs := func(s ...string) [][]byte {
		out := make([][]byte, len(s))
		for i, x := range s {
			out[i] = []byte(x)
		}
		return out
	}
	ks.Apply(Stamp{Time: ks.LastTime() + 1}, []Command{{Args: bs("xadd", "s", "5-3", "f", "v")}})

	r, w := ks.XReadWait(0, 0, bs("xread", "COUNT", "7", "BLOCK", "250", "STREAMS", "s", "none", "$", "$"))
	if r.Kind != KindNilArray || !w.Block || w.Timeout != 250 || w.Count != 7 || len(w.Keys) != 2 ||
		string(w.Keys[0]) != "s" || string(w.Keys[1]) != "none" || string(w.IDs[0]) != "5-3" || string(w.IDs[1]) != "0-0" {
		t.Fatalf("no data: %+v %+v", r, w)
	}
	r, w = ks.XReadWait(0, 0, bs("xread", "BLOCK", "0", "STREAMS", "s", "5"))
	if r.Kind != KindPairMap || len(r.Elems) != 2 || w.IDs != nil {
		t.Fatalf("data: %+v %+v", r, w)
	}
	r, w = ks.XReadWait(0, 0, bs("xread", "STREAMS", "s", "9"))
	if r.Kind != KindNilArray || w.Block {
		t.Fatalf("no BLOCK: %+v %+v", r, w)
	}
	for args, want := range map[string]string{
		"xread BLOCK -5 STREAMS s $":  "ERR timeout is negative",
		"xread BLOCK 1 STREAMS s 1-x": "ERR Invalid stream ID specified as stream command argument",
		"xread BLOCK":                 "ERR wrong number of arguments for 'xread' command",
	} {
		r, _ := ks.XReadWait(0, 0, bs(strings.Fields(args)...))
		if r.Kind != KindError || string(r.Str) != want {
			t.Errorf("%s: %+v, want %s", args, r, want)
		}
	}
	if r := ks.Read(0, 0, 0, bs("xread", "BLOCK", "0", "STREAMS", "s", "$")); r.Kind != KindNilArray {
		t.Errorf("engine XREAD BLOCK without data: %+v", r)
	}
	tx := Tx{ks: ks}
	if r := XReadFromScript(&tx, []byte("XRead"), bs("xread", "BLOCK", "0", "STREAMS", "s", "0")); string(r.Str) != "ERR XRead command is not allowed with BLOCK option from scripts" {
		t.Errorf("script: %+v", r)
	}

	// XReadWake compares with the last-generated ID and lists what is
	// left above the client's ID.
	ks.Apply(Stamp{Time: ks.LastTime() + 1}, []Command{{Args: bs("xadd", "s", "6-1", "f", "v")}, {Args: bs("xadd", "s", "6-2", "f", "v")}})
	if r := ks.XReadWake(0, 0, []byte("s"), []byte("5-3"), 1); r.Kind != KindPairMap || len(r.Elems) != 2 || len(r.Elems[1].Elems) != 1 {
		t.Errorf("wake with COUNT 1: %+v", r)
	}
	if r := ks.XReadWake(0, 0, []byte("s"), []byte("6-2"), 0); r.Kind != KindNilArray {
		t.Errorf("wake at the last ID: %+v", r)
	}
	ks.Apply(Stamp{Time: ks.LastTime() + 1}, []Command{{Args: bs("xdel", "s", "6-1", "6-2")}})
	if r := ks.XReadWake(0, 0, []byte("s"), []byte("5-3"), 0); r.Kind != KindPairMap || len(r.Elems) != 2 || len(r.Elems[1].Elems) != 0 {
		t.Errorf("wake after XDEL: %+v", r)
	}
	if r := ks.XReadWake(0, 0, []byte("none"), []byte("0-0"), 0); r.Kind != KindNilArray {
		t.Errorf("wake on a missing key: %+v", r)
	}
}
