package crdt

import (
	"sort"
	"strconv"
)

// Geo commands on sorted sets, with Redis 7.0's replies, errors and
// argument order. A position is stored as the member's score (a 52-bit
// geohash, geohash.go), so geo writes are sorted-set writes: GEOADD runs
// ZADD's own code (EffZAdd: add-wins membership, LWW score), and the STORE
// forms write their destination as a whole-key sorted-set write (zStore).

func init() {
	w := []string{"write", "geo", "slow"}
	r := []string{"read", "geo", "slow"}
	k1 := func(s *CommandSpec) *CommandSpec { s.FirstKey, s.LastKey, s.Step = 1, 1, 1; return s }
	register(
		k1(&CommandSpec{Name: "geoadd", Arity: -5, Flags: []string{"denyoom"}, Categories: w, Write: true, Run: cmdGeoAdd}),
		k1(&CommandSpec{Name: "geodist", Arity: -4, Categories: r, Run: cmdGeoDist}),
		k1(&CommandSpec{Name: "geopos", Arity: -2, Categories: r, Run: cmdGeoPos}),
		k1(&CommandSpec{Name: "geohash", Arity: -2, Categories: r, Run: cmdGeoHash}),
		k1(&CommandSpec{Name: "georadius", Arity: -6, Flags: []string{"denyoom", "movablekeys"}, Categories: w, Write: true,
			Run: func(tx *Tx, a [][]byte) Reply { return geoSearch(tx, a, 1, geoRadiusCoords) }}),
		k1(&CommandSpec{Name: "georadius_ro", Arity: -6, Categories: r,
			Run: func(tx *Tx, a [][]byte) Reply { return geoSearch(tx, a, 1, geoRadiusCoords|geoNoStore) }}),
		k1(&CommandSpec{Name: "georadiusbymember", Arity: -5, Flags: []string{"denyoom", "movablekeys"}, Categories: w, Write: true,
			Run: func(tx *Tx, a [][]byte) Reply { return geoSearch(tx, a, 1, geoRadiusMember) }}),
		k1(&CommandSpec{Name: "georadiusbymember_ro", Arity: -5, Categories: r,
			Run: func(tx *Tx, a [][]byte) Reply { return geoSearch(tx, a, 1, geoRadiusMember|geoNoStore) }}),
		k1(&CommandSpec{Name: "geosearch", Arity: -7, Categories: r,
			TypedName: true,
			Run:       func(tx *Tx, a [][]byte) Reply { return geoSearch(tx, a, 1, geoSearchFlag) }}),
		&CommandSpec{Name: "geosearchstore", Arity: -8, Flags: []string{"denyoom"}, FirstKey: 1, LastKey: 2, Step: 1,
			Categories: w, Write: true, TypedName: true,
			Run: func(tx *Tx, a [][]byte) Reply { return geoSearch(tx, a, 2, geoSearchFlag|geoSearchStore) }},
	)
}

// geoLonLat parses a longitude and a latitude as extractLongLatOrReply.
func geoLonLat(lon, lat []byte) (float64, float64, Reply, bool) {
	x, ok1 := zParseScore(lon)
	if !ok1 {
		return 0, 0, ErrNotFloat, false
	}
	y, ok2 := zParseScore(lat)
	if !ok2 {
		return 0, 0, ErrNotFloat, false
	}
	if x < geoLongMin || x > geoLongMax || y < geoLatMin || y > geoLatMax {
		return 0, 0, Err("ERR invalid longitude,latitude pair " +
			strconv.FormatFloat(x, 'f', 6, 64) + "," + strconv.FormatFloat(y, 'f', 6, 64)), false
	}
	return x, y, Reply{}, true
}

// geoUnit returns the meters per unit (case-insensitive, as Redis 7.0).
func geoUnit(b []byte) (float64, bool) {
	switch cstrLower(b) {
	case "m":
		return 1, true
	case "km":
		return 1000, true
	case "ft":
		return 0.3048, true
	case "mi":
		return 1609.34, true
	}
	return 0, false
}

var errGeoUnit = Err("ERR unsupported unit provided. please use M, KM, FT, MI")

// geoDistReply is addReplyDoubleDistance: "%.4f" as a bulk string, in
// RESP3 too.
func geoDistReply(d float64) Reply { return BulkString(strconv.FormatFloat(d, 'f', 4, 64)) }

// geoCoordReply is addReplyHumanLongDouble.
func geoCoordReply(f float64) Reply {
	return Reply{Kind: KindDouble, Float: f, Str: []byte(formatHumanLD(f))}
}

func cmdGeoAdd(tx *Tx, args [][]byte) Reply {
	xx, nx := false, false
	i := 2
	for ; i < len(args); i++ {
		switch lower(args[i]) {
		case "nx":
			nx = true
		case "xx":
			xx = true
		case "ch":
		default:
			goto done
		}
	}
done:
	if (len(args)-i)%3 != 0 || xx && nx {
		return ErrSyntax
	}
	zargs := make([][]byte, 0, i+(len(args)-i)/3*2)
	zargs = append(zargs, []byte("zadd"))
	zargs = append(zargs, args[1:i]...)
	for j := i; j < len(args); j += 3 {
		lon, lat, r, ok := geoLonLat(args[j], args[j+1])
		if !ok {
			return r
		}
		score := strconv.FormatUint(uint64(geoScore(lon, lat)), 10)
		zargs = append(zargs, []byte(score), args[j+2])
	}
	return zaddGeneric(tx, zargs, false)
}

func cmdGeoDist(tx *Tx, args [][]byte) Reply {
	conv := 1.0
	if len(args) == 5 {
		var ok bool
		if conv, ok = geoUnit(args[4]); !ok {
			return errGeoUnit
		}
	} else if len(args) > 5 {
		return ErrSyntax
	}
	z, r, ok := zsetLookup(tx, args[1])
	if !ok {
		return r
	}
	if z == nil {
		return Nil
	}
	s1, ok1 := z.score(args[2])
	s2, ok2 := z.score(args[3])
	if !ok1 || !ok2 {
		return Nil
	}
	lon1, lat1 := geoDecodeScore(s1)
	lon2, lat2 := geoDecodeScore(s2)
	return geoDistReply(geoDistance(lon1, lat1, lon2, lat2) / conv)
}

func cmdGeoPos(tx *Tx, args [][]byte) Reply {
	z, r, ok := zsetLookup(tx, args[1])
	if !ok {
		return r
	}
	out := make([]Reply, 0, len(args)-2)
	for _, m := range args[2:] {
		var s float64
		found := false
		if z != nil {
			s, found = z.score(m)
		}
		if !found {
			out = append(out, NilArray)
			continue
		}
		lon, lat := geoDecodeScore(s)
		out = append(out, Array(geoCoordReply(lon), geoCoordReply(lat)))
	}
	return Array(out...)
}

func cmdGeoHash(tx *Tx, args [][]byte) Reply {
	z, r, ok := zsetLookup(tx, args[1])
	if !ok {
		return r
	}
	out := make([]Reply, 0, len(args)-2)
	for _, m := range args[2:] {
		var s float64
		found := false
		if z != nil {
			s, found = z.score(m)
		}
		if !found {
			out = append(out, Nil)
			continue
		}
		out = append(out, BulkString(geoHashString(s)))
	}
	return Array(out...)
}

// geoSearch flags, as georadiusGeneric's.
const (
	geoRadiusCoords = 1 << iota
	geoRadiusMember
	geoNoStore
	geoSearchFlag
	geoSearchStore
)

const (
	geoSortNone = iota
	geoSortAsc
	geoSortDesc
)

// geoPoint is one match.
type geoPoint struct {
	lon, lat, dist, score float64
	member                string
}

var errGeoMember = Err("ERR could not decode requested zset member")

// geoDistanceArgs is extractDistanceOrReply: a radius and its unit.
func geoDistanceArgs(s *geoShape, a, unit []byte) (Reply, bool) {
	d, ok := zParseScore(a)
	if !ok {
		return Err("ERR need numeric radius"), false
	}
	if d < 0 {
		return Err("ERR radius cannot be negative"), false
	}
	s.radius = d
	if s.conv, ok = geoUnit(unit); !ok {
		return errGeoUnit, false
	}
	return Reply{}, true
}

// geoBoxArgs is extractBoxOrReply: width, height and unit.
func geoBoxArgs(s *geoShape, wa, ha, unit []byte) (Reply, bool) {
	w, ok := zParseScore(wa)
	if !ok {
		return Err("ERR need numeric width"), false
	}
	h, ok := zParseScore(ha)
	if !ok {
		return Err("ERR need numeric height"), false
	}
	if h < 0 || w < 0 {
		return Err("ERR height or width cannot be negative"), false
	}
	s.width, s.height = w, h
	if s.conv, ok = geoUnit(unit); !ok {
		return errGeoUnit, false
	}
	return Reply{}, true
}

// geoFromMember sets the centre to member's position.
func geoFromMember(s *geoShape, z *zsetValue, member []byte) bool {
	score, ok := z.score(member)
	if !ok {
		return false
	}
	s.lon, s.lat = geoDecodeScore(score)
	return true
}

// geoSearch is georadiusGeneric: GEORADIUS*, GEOSEARCH and GEOSEARCHSTORE.
func geoSearch(tx *Tx, args [][]byte, srcIdx int, flags int) Reply {
	var storeKey []byte
	storeDist := false
	z, r, ok := zsetLookup(tx, args[srcIdx])
	if !ok {
		return r
	}
	var shape geoShape
	var base int
	switch {
	case flags&geoRadiusCoords != 0:
		base = 6
		if shape.lon, shape.lat, r, ok = geoLonLat(args[2], args[3]); !ok {
			return r
		}
		if r, ok = geoDistanceArgs(&shape, args[4], args[5]); !ok {
			return r
		}
	case flags&geoRadiusMember != 0 && z == nil:
		// Nothing to search; the options are still parsed for their
		// errors and the reply's shape.
		base = 5
	case flags&geoRadiusMember != 0:
		base = 5
		if !geoFromMember(&shape, z, args[2]) {
			return errGeoMember
		}
		if r, ok = geoDistanceArgs(&shape, args[3], args[4]); !ok {
			return r
		}
	default:
		base = 2
		if flags&geoSearchStore != 0 {
			base = 3
			storeKey = args[1]
		}
	}

	withDist, withHash, withCoord := false, false, false
	fromMember, fromLoc, byRadius, byBox := false, false, false, false
	sortOrder := geoSortNone
	anyOpt := false
	var count int64
	rem := len(args) - base
	for i := 0; i < rem; i++ {
		a := args[base+i]
		switch opt := cstrLower(a); {
		case opt == "withdist":
			withDist = true
		case opt == "withhash":
			withHash = true
		case opt == "withcoord":
			withCoord = true
		case opt == "any":
			anyOpt = true
		case opt == "asc":
			sortOrder = geoSortAsc
		case opt == "desc":
			sortOrder = geoSortDesc
		case opt == "count" && i+1 < rem:
			n, ok := parseInt64(args[base+i+1])
			if !ok {
				return ErrNotInt
			}
			if n <= 0 {
				return Err("ERR COUNT must be > 0")
			}
			count = n
			i++
		case (opt == "store" || opt == "storedist") && i+1 < rem && flags&(geoNoStore|geoSearchFlag) == 0:
			storeKey = args[base+i+1]
			storeDist = opt == "storedist"
			i++
		case opt == "storedist" && flags&geoSearchFlag != 0 && flags&geoSearchStore != 0:
			storeDist = true
		case opt == "frommember" && i+1 < rem && flags&geoSearchFlag != 0 && !fromLoc:
			if z != nil && !geoFromMember(&shape, z, args[base+i+1]) {
				return errGeoMember
			}
			fromMember = true
			i++
		case opt == "fromlonlat" && i+2 < rem && flags&geoSearchFlag != 0 && !fromMember:
			if shape.lon, shape.lat, r, ok = geoLonLat(args[base+i+1], args[base+i+2]); !ok {
				return r
			}
			fromLoc = true
			i += 2
		case opt == "byradius" && i+2 < rem && flags&geoSearchFlag != 0 && !byBox:
			if r, ok = geoDistanceArgs(&shape, args[base+i+1], args[base+i+2]); !ok {
				return r
			}
			shape.box = false
			byRadius = true
			i += 2
		case opt == "bybox" && i+3 < rem && flags&geoSearchFlag != 0 && !byRadius:
			if r, ok = geoBoxArgs(&shape, args[base+i+1], args[base+i+2], args[base+i+3]); !ok {
				return r
			}
			shape.box = true
			byBox = true
			i += 3
		default:
			return ErrSyntax
		}
	}
	if storeKey != nil && (withDist || withHash || withCoord) {
		what := "STORE option in GEORADIUS"
		if flags&geoSearchStore != 0 {
			what = "GEOSEARCHSTORE"
		}
		return Err("ERR " + what + " is not compatible with WITHDIST, WITHHASH and WITHCOORD options")
	}
	if flags&geoSearchFlag != 0 && !fromMember && !fromLoc {
		return Err("ERR exactly one of FROMMEMBER or FROMLONLAT can be specified for " + string(args[0]))
	}
	if flags&geoSearchFlag != 0 && !byRadius && !byBox {
		return Err("ERR exactly one of BYRADIUS and BYBOX can be specified for " + string(args[0]))
	}
	if anyOpt && count == 0 {
		return Err("ERR the ANY argument requires COUNT argument")
	}
	if z == nil {
		if storeKey != nil {
			return zStore(tx, storeKey, nil, nil)
		}
		return Array()
	}
	if count != 0 && sortOrder == geoSortNone && !anyOpt {
		sortOrder = geoSortAsc
	}
	var limit int64
	if anyOpt {
		limit = count
	}
	pts := geoMembersInShape(z, &shape, limit)
	if len(pts) == 0 && storeKey == nil {
		return Array()
	}
	n := int64(len(pts))
	if count != 0 && count < n {
		n = count
	}
	if sortOrder != geoSortNone {
		cmp := func(a, b *geoPoint) int {
			c := 0
			switch {
			case a.dist > b.dist:
				c = 1
			case a.dist < b.dist:
				c = -1
			}
			if sortOrder == geoSortDesc {
				c = -c
			}
			return c
		}
		if n == int64(len(pts)) {
			// glibc's qsort, a merge sort: stable.
			sort.SliceStable(pts, func(i, j int) bool { return cmp(&pts[i], &pts[j]) < 0 })
		} else {
			pqsort(pts, cmp, 0, int(n)-1)
		}
	}
	pts = pts[:n]
	if storeKey != nil {
		elems := make([]zelem, len(pts))
		for i, p := range pts {
			score := p.score
			if storeDist {
				score = p.dist / shape.conv
			}
			elems[i] = zelem{member: p.member, score: score}
		}
		return zStore(tx, storeKey, elems, func(int) bool { return true })
	}
	out := make([]Reply, 0, len(pts))
	for _, p := range pts {
		if !withDist && !withHash && !withCoord {
			out = append(out, BulkString(p.member))
			continue
		}
		item := []Reply{BulkString(p.member)}
		if withDist {
			item = append(item, geoDistReply(p.dist/shape.conv))
		}
		if withHash {
			item = append(item, Int(int64(p.score)))
		}
		if withCoord {
			item = append(item, Array(geoCoordReply(p.lon), geoCoordReply(p.lat)))
		}
		out = append(out, Array(item...))
	}
	return Array(out...)
}

// geoMembersInShape is membersOfAllNeighbors: the members in the shape, in
// the order Redis finds them (cell by cell, each in score order), at most
// limit of them (0: all).
func geoMembersInShape(z *zsetValue, s *geoShape, limit int64) []geoPoint {
	cells := s.areas()
	var pts []geoPoint
	last := 0
	for i, c := range cells {
		if c.zero() {
			continue
		}
		// Redis skips a cell equal to the last one searched (huge radii
		// make neighbours coincide); its "last" starts at 0 and so never
		// compares with the centre cell.
		if last != 0 && c == cells[last] {
			continue
		}
		if len(pts) > 0 && limit != 0 && int64(len(pts)) >= limit {
			break
		}
		lo := float64(c.bits << (52 - 2*uint(c.step)))
		hi := float64((c.bits + 1) << (52 - 2*uint(c.step)))
		rng := zScoreRange{min: lo, max: hi, maxex: true}
		for n := z.firstInScore(&rng); n != nil && rng.lteMax(n.score); n = n.next() {
			lon, lat := geoDecodeScore(n.score)
			d, ok := s.contains(lon, lat)
			if !ok {
				continue
			}
			pts = append(pts, geoPoint{lon: lon, lat: lat, dist: d, score: n.score, member: n.member})
			if limit != 0 && int64(len(pts)) >= limit {
				break
			}
		}
		last = i
	}
	return pts
}
