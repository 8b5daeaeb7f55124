package server

import (
	"strconv"
	"strings"

	"concord/crdt"
)

// Key positions for COMMAND GETKEYS and COMMAND INFO. crdt.CommandSpec
// describes keys by first/last/step, which covers most commands; the ones
// whose keys are counted by a numkeys argument ("movablekeys") are listed
// here, as Redis 7.0's keynum key specs describe them.

// keynum describes a command whose keys are args[numIdx+1 ...
// numIdx+numkeys], after an optional destination key at args[1].
type keynum struct {
	dest   bool
	numIdx int
	// scripts: numkeys may be 0, and the keys' flags are keyFlags
	// (RO access if nil).
	zeroOK   bool
	keyFlags []string
}

var keynumCommands = map[string]keynum{
	"zunionstore": {dest: true, numIdx: 2},
	"zinterstore": {dest: true, numIdx: 2},
	"zdiffstore":  {dest: true, numIdx: 2},
	"zunion":      {numIdx: 1},
	"zinter":      {numIdx: 1},
	"zdiff":       {numIdx: 1},
	"zintercard":  {numIdx: 1},
	"sintercard":  {numIdx: 1},
	"lmpop":       {numIdx: 1},
	"zmpop":       {numIdx: 1},
	"bzmpop":      {numIdx: 2},
	"blmpop":      {numIdx: 2},
	"eval":        {numIdx: 2, zeroOK: true, keyFlags: []string{"RW", "access", "update"}},
	"evalsha":     {numIdx: 2, zeroOK: true, keyFlags: []string{"RW", "access", "update"}},
	"eval_ro":     {numIdx: 2, zeroOK: true},
	"evalsha_ro":  {numIdx: 2, zeroOK: true},
}

// sourceFlags are the key-spec flags of the numkeys keys: the command's own
// (EVAL), else read, except for a command that writes them: ZMPOP, LMPOP
// and their blocking forms pop from them.
func (kn keynum) sourceFlags(cmd *command) []string {
	if kn.keyFlags != nil {
		return kn.keyFlags
	}
	if !kn.dest && (cmd.isWrite() || cmd.block != nil) {
		return []string{"RW", "access", "delete"}
	}
	return []string{"RO", "access"}
}

// keywordKeys describes a command whose keys follow a keyword and take
// 1/limit of the arguments after it (XREAD's STREAMS key ... id ...), as
// Redis 7.0's keyword key specs describe them.
type keywordKeys struct {
	word      string // as COMMAND INFO spells it
	startFrom int
	limit     int
}

var keywordCommands = map[string]keywordKeys{
	"xread": {word: "STREAMS", startFrom: 1, limit: 2},
}

// atoi is C's atoi: leading blanks, an optional sign, then digits; 0 when
// there are none.
func atoi(b []byte) int64 {
	i := 0
	for i < len(b) && isSpace(b[i]) {
		i++
	}
	j := i
	if j < len(b) && (b[j] == '-' || b[j] == '+') {
		j++
	}
	for j < len(b) && b[j] >= '0' && b[j] <= '9' {
		j++
	}
	n, _ := strconv.ParseInt(string(b[i:j]), 10, 64)
	return n
}

// keyPositions returns the positions of the key arguments of a full
// command (args[0] is its name); ok is false when the arguments do not
// make sense (a bad numkeys).
func (cmd *command) keyPositions(args [][]byte) (pos []int, ok bool) {
	if kn, isKN := keynumCommands[cmd.name]; isKN {
		if kn.numIdx >= len(args) {
			return nil, false
		}
		num := atoi(args[kn.numIdx])
		if kn.zeroOK && (num < 0 || num > int64(len(args)-kn.numIdx-1)) {
			return nil, true // EVAL's getkeys: a bad numkeys has no keys
		}
		if num < 1 && !kn.zeroOK || num > int64(len(args)-kn.numIdx-1) {
			return nil, false
		}
		if kn.dest {
			pos = append(pos, 1)
		}
		for i := 0; i < int(num); i++ {
			pos = append(pos, kn.numIdx+1+i)
		}
		return pos, true
	}
	if cmd.block != nil {
		spec := crdt.CommandSpec{FirstKey: cmd.firstKey, LastKey: cmd.lastKey, Step: cmd.step}
		return spec.Keys(args), true
	}
	if kw, isKW := keywordCommands[cmd.name]; isKW {
		for i := kw.startFrom; i < len(args); i++ {
			if strings.EqualFold(string(args[i]), kw.word) {
				n := (len(args) - i - 1) / kw.limit
				if n == 0 {
					return nil, false
				}
				for j := 0; j < n; j++ {
					pos = append(pos, i+1+j)
				}
				return pos, true
			}
		}
		return nil, false
	}
	if cmd.data == nil {
		return nil, true
	}
	return cmd.data.Keys(args), true
}

// hasKeys reports whether the command takes key arguments at all.
func (cmd *command) hasKeys() bool {
	_, kn := keynumCommands[cmd.name]
	for _, f := range cmd.keyFlags {
		if f == "not_key" { // shard channels: key-like, but no keys
			return false
		}
	}
	_, kw := keywordCommands[cmd.name]
	return kn || kw || cmd.firstKey > 0
}

// keySpecs is COMMAND INFO's key specifications for cmd.
func (cmd *command) keySpecs() []crdt.Reply {
	index := func(i int) crdt.Reply {
		return kv(crdt.BulkString("type"), crdt.BulkString("index"),
			crdt.BulkString("spec"), kv(crdt.BulkString("index"), crdt.Int(int64(i))))
	}
	rangeSpec := func(flags crdt.Reply, first, last, step int) crdt.Reply {
		if last >= 0 {
			last -= first
		}
		return kv(
			crdt.BulkString("flags"), flags,
			crdt.BulkString("begin_search"), index(first),
			crdt.BulkString("find_keys"), kv(
				crdt.BulkString("type"), crdt.BulkString("range"),
				crdt.BulkString("spec"), kv(
					crdt.BulkString("lastkey"), crdt.Int(int64(last)),
					crdt.BulkString("keystep"), crdt.Int(int64(max(step, 1))),
					crdt.BulkString("limit"), crdt.Int(0))))
	}
	if kn, ok := keynumCommands[cmd.name]; ok {
		var specs []crdt.Reply
		if kn.dest {
			// The destination is overwritten.
			specs = append(specs, rangeSpec(statuses([]string{"OW", "update"}, ""), 1, 1, 1))
		}
		return append(specs, kv(
			crdt.BulkString("flags"), statuses(kn.sourceFlags(cmd), ""),
			crdt.BulkString("begin_search"), index(kn.numIdx),
			crdt.BulkString("find_keys"), kv(
				crdt.BulkString("type"), crdt.BulkString("keynum"),
				crdt.BulkString("spec"), kv(
					crdt.BulkString("keynumidx"), crdt.Int(0),
					crdt.BulkString("firstkey"), crdt.Int(1),
					crdt.BulkString("keystep"), crdt.Int(1)))))
	}
	if kw, ok := keywordCommands[cmd.name]; ok {
		return []crdt.Reply{kv(
			crdt.BulkString("flags"), statuses([]string{"RO", "access"}, ""),
			crdt.BulkString("begin_search"), kv(
				crdt.BulkString("type"), crdt.BulkString("keyword"),
				crdt.BulkString("spec"), kv(
					crdt.BulkString("keyword"), crdt.BulkString(kw.word),
					crdt.BulkString("startfrom"), crdt.Int(int64(kw.startFrom)))),
			crdt.BulkString("find_keys"), kv(
				crdt.BulkString("type"), crdt.BulkString("range"),
				crdt.BulkString("spec"), kv(
					crdt.BulkString("lastkey"), crdt.Int(-1),
					crdt.BulkString("keystep"), crdt.Int(1),
					crdt.BulkString("limit"), crdt.Int(int64(kw.limit)))))}
	}
	if cmd.firstKey <= 0 {
		return nil
	}
	return []crdt.Reply{rangeSpec(statuses(cmd.keySpecFlags(), ""), cmd.firstKey, cmd.lastKey, cmd.step)}
}

// infoFlags are the command flags COMMAND INFO reports: the engine's, plus
// "movablekeys" for keynum commands, as Redis reports it.
func (cmd *command) infoFlags() []string {
	if _, ok := keynumCommands[cmd.name]; !ok {
		return cmd.flags
	}
	for _, f := range cmd.flags {
		if f == "movablekeys" {
			return cmd.flags
		}
	}
	return append(append([]string(nil), cmd.flags...), "movablekeys")
}
