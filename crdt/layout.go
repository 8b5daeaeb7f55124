package crdt

import "sort"

// Hashes and sorted sets keep their dict slot layout across snapshots for
// the same reason sets do (see setValue.encodeLayout): HSCAN/ZSCAN cursors
// and HRANDFIELD/ZRANDMEMBER picks depend on it, and a node restored from a
// snapshot must answer like the node it came from.

func dictNames[V any](dc *dict[V]) []string {
	names := make([]string, 0, dc.Len())
	for k := range dc.index {
		names = append(names, k)
	}
	sort.Strings(names)
	return names
}

func (h *hashValue) encodeLayout(e *encoder) { encodeDictLayout(e, &h.fields, dictNames(&h.fields)) }
func (h *hashValue) decodeLayout(d *decoder) { decodeDictLayout(d, &h.fields, dictNames(&h.fields)) }
func (z *zsetValue) encodeLayout(e *encoder) { encodeDictLayout(e, &z.members, dictNames(&z.members)) }
func (z *zsetValue) decodeLayout(d *decoder) { decodeDictLayout(d, &z.members, dictNames(&z.members)) }
