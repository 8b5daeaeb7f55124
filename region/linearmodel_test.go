package region

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/anishathalye/porcupine"

	"concord/crdt"
)

// The linearizability model: every key is an independent register that
// SET overwrites and INCR adds one to (keys the workload increments only
// ever hold integers, so the register holds an int64 or nothing). The
// history is partitioned by key, so porcupine checks each key on its own.
//
// A write whose outcome the client could not learn (in doubt, timed out,
// node shut down with it in flight) may have taken effect at any moment
// after it was called, even after the client gave up on it: it is recorded
// with an unknown output and a return time after every other operation,
// and the model accepts it with any output. A write that failed with
// TRYAGAIN provably left no trace and is left out of the history, as is a
// read that failed (reads change nothing).

type linOp uint8

const (
	linGet linOp = iota
	linSet
	linIncr
)

func (o linOp) String() string { return [...]string{"GET", "SET", "INCR"}[o] }

type linInput struct {
	op  linOp
	key string
	val int64 // SET's value
}

type linOutput struct {
	unknown bool  // outcome unknown: the write may or may not have happened
	present bool  // GET: the key exists
	val     int64 // GET's value, INCR's result
}

// linState is one key's register.
type linState struct {
	present bool
	val     int64
}

var registerModel = porcupine.Model{
	Partition: func(history []porcupine.Operation) [][]porcupine.Operation {
		byKey := map[string][]porcupine.Operation{}
		var keys []string
		for _, op := range history {
			k := op.Input.(linInput).key
			if _, ok := byKey[k]; !ok {
				keys = append(keys, k)
			}
			byKey[k] = append(byKey[k], op)
		}
		sort.Strings(keys)
		out := make([][]porcupine.Operation, 0, len(keys))
		for _, k := range keys {
			out = append(out, byKey[k])
		}
		return out
	},
	Init: func() interface{} { return linState{} },
	Step: func(state, input, output interface{}) (bool, interface{}) {
		st, in, out := state.(linState), input.(linInput), output.(linOutput)
		switch in.op {
		case linSet:
			return true, linState{present: true, val: in.val}
		case linIncr:
			next := linState{present: true, val: st.val + 1}
			return out.unknown || out.val == next.val, next
		default:
			return out.present == st.present && out.val == st.val, st
		}
	},
	Hash: func(state interface{}) uint64 {
		st := state.(linState)
		if !st.present {
			return 0
		}
		return uint64(st.val)*0x9e3779b97f4a7c15 + 1
	},
	DescribeOperation: func(input, output interface{}) string {
		in, out := input.(linInput), output.(linOutput)
		var res string
		switch {
		case out.unknown:
			res = "?"
		case in.op == linSet:
			res = "OK"
		case in.op == linGet && !out.present:
			res = "nil"
		default:
			res = fmt.Sprint(out.val)
		}
		if in.op == linSet {
			return fmt.Sprintf("SET %s %d -> %s", in.key, in.val, res)
		}
		return fmt.Sprintf("%s %s -> %s", in.op, in.key, res)
	},
	DescribeState: func(state interface{}) string {
		st := state.(linState)
		if !st.present {
			return "nil"
		}
		return fmt.Sprint(st.val)
	},
	DescribeOperationMetadata: func(info interface{}) string {
		if info == nil {
			return ""
		}
		return fmt.Sprint(info)
	},
}

// linRecord is one operation as a client saw it.
type linRecord struct {
	client    int
	node      string
	in        linInput
	out       linOutput
	call, ret int64 // nanoseconds on the recorder's monotonic clock
	err       string
}

// linRecorder collects a history from concurrent clients. Times come from
// one monotonic clock (time.Since of a fixed start).
type linRecorder struct {
	start time.Time
	mu    sync.Mutex
	recs  []linRecord

	dropped  int            // writes that failed with TRYAGAIN
	unknown  int            // writes whose outcome is unknown
	readErrs int            // reads that failed
	errs     map[string]int // how often each error was seen
	bad      []string
}

func newLinRecorder() *linRecorder {
	return &linRecorder{start: time.Now(), errs: map[string]int{}}
}

func (h *linRecorder) sawError(what string, err error) {
	h.mu.Lock()
	h.errs[what+": "+err.Error()]++
	h.mu.Unlock()
}

func (h *linRecorder) now() int64 { return int64(time.Since(h.start)) }

// write runs SET or INCR through n.Propose, exactly as the server does,
// and records it.
func (h *linRecorder) write(ctx context.Context, client int, n *Node, in linInput) {
	args := []string{in.op.String(), in.key}
	if in.op == linSet {
		args = append(args, fmt.Sprint(in.val))
	}
	call := h.now()
	rs, err := n.Propose(ctx, []crdt.Command{cmd(args...)})
	ret := h.now()
	r := linRecord{client: client, node: n.id, in: in, call: call, ret: ret}
	if err != nil {
		h.sawError(in.op.String(), err)
	}
	var rerr *Error
	switch {
	case errors.As(err, &rerr) && rerr.Retryable():
		h.mu.Lock()
		h.dropped++
		h.mu.Unlock()
		return
	case err != nil:
		r.out.unknown = true
		r.err = err.Error()
	default:
		rep := rs[0]
		switch {
		case in.op == linSet && rep.Kind == crdt.KindStatus && string(rep.Str) == "OK":
		case in.op == linIncr && rep.Kind == crdt.KindInt:
			r.out.val = rep.Int
		default:
			h.mu.Lock()
			h.bad = append(h.bad, fmt.Sprintf("%v via %s: unexpected reply %+v", args, n.id, rep))
			h.mu.Unlock()
			return
		}
	}
	h.add(r)
}

// read runs GET behind n.ReadFence and records it.
func (h *linRecorder) read(ctx context.Context, client int, n *Node, key string) {
	call := h.now()
	if err := n.ReadFence(ctx); err != nil {
		h.sawError("GET", err)
		h.mu.Lock()
		h.readErrs++
		h.mu.Unlock()
		return
	}
	var rep crdt.Reply
	n.Read(func(ks *crdt.Keyspace) {
		rep = ks.Read(0, time.Now().UnixMilli(), 1, [][]byte{[]byte("GET"), []byte(key)})
	})
	ret := h.now()
	r := linRecord{client: client, node: n.id, in: linInput{op: linGet, key: key}, call: call, ret: ret}
	switch rep.Kind {
	case crdt.KindNil:
	case crdt.KindBulk:
		if _, err := fmt.Sscan(string(rep.Str), &r.out.val); err != nil {
			h.mu.Lock()
			h.bad = append(h.bad, fmt.Sprintf("GET %s via %s: not an integer: %q", key, n.id, rep.Str))
			h.mu.Unlock()
			return
		}
		r.out.present = true
	default:
		h.mu.Lock()
		h.bad = append(h.bad, fmt.Sprintf("GET %s via %s: unexpected reply %+v", key, n.id, rep))
		h.mu.Unlock()
		return
	}
	h.add(r)
}

func (h *linRecorder) add(r linRecord) {
	h.mu.Lock()
	if r.out.unknown {
		h.unknown++
	}
	h.recs = append(h.recs, r)
	h.mu.Unlock()
}

// operations returns the history for porcupine: unknown outcomes return
// after everything else.
func (h *linRecorder) operations() []porcupine.Operation {
	h.mu.Lock()
	defer h.mu.Unlock()
	end := h.now()
	for _, r := range h.recs {
		end = max(end, r.ret)
	}
	end++
	ops := make([]porcupine.Operation, 0, len(h.recs))
	for _, r := range h.recs {
		ret := r.ret
		if r.out.unknown {
			ret = end
		}
		meta := r.node
		if r.err != "" {
			meta += " " + r.err
		}
		ops = append(ops, porcupine.Operation{ClientId: r.client, Input: r.in, Output: r.out, Call: r.call, Return: ret, Metadata: meta})
	}
	return ops
}

// dump renders the history as text, one operation per line in call order.
func (h *linRecorder) dump() string {
	h.mu.Lock()
	recs := append([]linRecord(nil), h.recs...)
	h.mu.Unlock()
	sort.SliceStable(recs, func(i, j int) bool { return recs[i].call < recs[j].call })
	var b strings.Builder
	fmt.Fprintf(&b, "# call_us return_us client node operation -> result [error]\n")
	for _, r := range recs {
		d := registerModel.DescribeOperation(r.in, r.out)
		fmt.Fprintf(&b, "%d %d c%d %s %s", r.call/1e3, r.ret/1e3, r.client, r.node, d)
		if r.err != "" {
			fmt.Fprintf(&b, " [%s]", r.err)
		}
		b.WriteByte('\n')
	}
	return b.String()
}

// checkLinearizable checks h and, unless it is linearizable, writes the
// history (HTML visualisation and text) into dir and returns a description
// of the failure naming the files. An empty dir means a new directory
// under os.TempDir, which outlives the test so the files stay readable.
func checkLinearizable(h *linRecorder, timeout time.Duration, dir string) (porcupine.CheckResult, string) {
	ops := h.operations()
	res, info := porcupine.CheckOperationsVerbose(registerModel, ops, timeout)
	if res == porcupine.Ok {
		return res, ""
	}
	msg := fmt.Sprintf("history of %d operations is %s", len(ops), res)
	var err error
	if dir == "" {
		dir, err = os.MkdirTemp("", "concord-linear-")
	} else {
		err = os.MkdirAll(dir, 0o755)
	}
	if err != nil {
		return res, msg + "; cannot write it out: " + err.Error()
	}
	html := filepath.Join(dir, "history.html")
	text := filepath.Join(dir, "history.txt")
	if err := porcupine.VisualizePath(registerModel, info, html); err != nil {
		msg += "; visualisation failed: " + err.Error()
	} else {
		msg += "; visualisation: " + html
	}
	if err := os.WriteFile(text, []byte(h.dump()), 0o644); err != nil {
		msg += "; text dump failed: " + err.Error()
	} else {
		msg += "; text: " + text
	}
	return res, msg
}
