package crdt

import (
	"math"
	"math/big"
	"strings"
)

// Geohash arithmetic as Redis 7.0 does it (geohash.c, geohash_helper.c),
// written to give the same bits: a position is a 52-bit interleaved hash
// (26 bits of latitude in the even bits, 26 of longitude in the odd ones)
// over latitudes ±85.05112878 and longitudes ±180, kept as a sorted-set
// score. Every floating-point step is done in the order Redis's C does it,
// in float64, so encodings, decoded positions, search areas and distances
// match; only sin/cos/asin may differ from glibc in the last bit, which
// the 4-decimal distance replies do not show.

const (
	geoStepMax = 26
	geoLatMin  = -85.05112878
	geoLatMax  = 85.05112878
	geoLongMin = -180.0
	geoLongMax = 180.0

	earthRadiusMeters = 6372797.560856
	mercatorMax       = 20037726.37
)

// degToRad is C's M_PI / 180.0: the double nearest π divided by 180 in
// double arithmetic (a Go constant expression would divide the exact π).
var degToRad = pi64 / 180.0

var pi64 float64 = math.Pi

type geoRange struct{ min, max float64 }

var (
	geoLongRange = geoRange{geoLongMin, geoLongMax}
	geoLatRange  = geoRange{geoLatMin, geoLatMax}
)

// geoBits is a hash of step*2 bits.
type geoBits struct {
	bits uint64
	step uint8
}

func (h geoBits) zero() bool { return h.bits == 0 && h.step == 0 }

type geoArea struct{ lon, lat geoRange }

// spread puts the 32 bits of v in the even bits of the result.
func spread(v uint32) uint64 {
	x := uint64(v)
	x = (x | x<<16) & 0x0000FFFF0000FFFF
	x = (x | x<<8) & 0x00FF00FF00FF00FF
	x = (x | x<<4) & 0x0F0F0F0F0F0F0F0F
	x = (x | x<<2) & 0x3333333333333333
	x = (x | x<<1) & 0x5555555555555555
	return x
}

// squash is spread's inverse: the even bits of x, packed.
func squash(x uint64) uint64 {
	x &= 0x5555555555555555
	x = (x | x>>1) & 0x3333333333333333
	x = (x | x>>2) & 0x0F0F0F0F0F0F0F0F
	x = (x | x>>4) & 0x00FF00FF00FF00FF
	x = (x | x>>8) & 0x0000FFFF0000FFFF
	x = (x | x>>16) & 0x00000000FFFFFFFF
	return x
}

func interleave(lat, lon uint32) uint64 { return spread(lat) | spread(lon)<<1 }

// deinterleave returns lat in the low 32 bits and lon in the high ones.
func deinterleave(h uint64) uint64 { return squash(h) | squash(h>>1)<<32 }

// cUint32 converts as C converts a double to uint32_t (truncation; the
// values seen here are in range).
func cUint32(f float64) uint32 { return uint32(int64(f)) }

// geoEncode is geohashEncode: ok is false out of range.
func geoEncode(lonR, latR geoRange, lon, lat float64, step uint8) (geoBits, bool) {
	h := geoBits{step: step}
	if lon > geoLongMax || lon < geoLongMin || lat > geoLatMax || lat < geoLatMin {
		return h, false
	}
	if lat < latR.min || lat > latR.max || lon < lonR.min || lon > lonR.max {
		return h, false
	}
	latOff := (lat - latR.min) / (latR.max - latR.min)
	lonOff := (lon - lonR.min) / (lonR.max - lonR.min)
	latOff *= float64(uint64(1) << step)
	lonOff *= float64(uint64(1) << step)
	h.bits = interleave(cUint32(latOff), cUint32(lonOff))
	return h, true
}

// geoDecode is geohashDecode: the cell a hash names.
func geoDecode(lonR, latR geoRange, h geoBits) geoArea {
	sep := deinterleave(h.bits)
	latScale := latR.max - latR.min
	lonScale := lonR.max - lonR.min
	ilat := uint32(sep)
	ilon := uint32(sep >> 32)
	div := float64(uint64(1) << h.step)
	var a geoArea
	a.lat.min = latR.min + float64(float64(ilat)*1.0/div)*latScale
	a.lat.max = latR.min + float64(float64(ilat+1)*1.0/div)*latScale
	a.lon.min = lonR.min + float64(float64(ilon)*1.0/div)*lonScale
	a.lon.max = lonR.min + float64(float64(ilon+1)*1.0/div)*lonScale
	return a
}

// cUint64 converts as gcc's x86-64 code converts a double to uint64_t:
// below 2^63 through a signed conversion (out of range gives 1<<63), above
// it by subtracting 2^63 first. Only scores not written by GEOADD (a plain
// ZADD of a negative or huge score) go outside [0, 2^54).
func cUint64(f float64) uint64 {
	const two63 = 9223372036854775808.0
	cvt := func(x float64) uint64 {
		if x >= -two63 && x < two63 {
			return uint64(int64(x))
		}
		return 1 << 63
	}
	if f < two63 {
		return cvt(f)
	}
	return cvt(f-two63) ^ 1<<63
}

// geoDecodeScore turns a sorted-set score back into (lon, lat): the centre
// of its cell, clamped to the valid range (decodeGeohash).
func geoDecodeScore(score float64) (lon, lat float64) {
	a := geoDecode(geoLongRange, geoLatRange, geoBits{bits: cUint64(score), step: geoStepMax})
	lon = (a.lon.min + a.lon.max) / 2
	lon = min(max(lon, geoLongMin), geoLongMax)
	lat = (a.lat.min + a.lat.max) / 2
	lat = min(max(lat, geoLatMin), geoLatMax)
	return lon, lat
}

// geoScore is the score GEOADD stores for a valid position.
func geoScore(lon, lat float64) float64 {
	h, _ := geoEncode(geoLongRange, geoLatRange, lon, lat, geoStepMax)
	return float64(h.bits << (52 - 2*h.step))
}

// geoHashString is GEOHASH's 11-character standard geohash of a score.
func geoHashString(score float64) string {
	lon, lat := geoDecodeScore(score)
	h, _ := geoEncode(geoRange{-180, 180}, geoRange{-90, 90}, lon, lat, geoStepMax)
	const alphabet = "0123456789bcdefghjkmnpqrstuvwxyz"
	var b [11]byte
	for i := 0; i < 11; i++ {
		idx := uint64(0)
		if i < 10 {
			idx = h.bits >> (52 - (i+1)*5) & 0x1f
		}
		b[i] = alphabet[idx]
	}
	return string(b[:])
}

func degRad(a float64) float64 { return a * degToRad }
func radDeg(a float64) float64 { return a / degToRad }

// geoDistance is Redis 7.0's haversine distance in meters.
func geoDistance(lon1, lat1, lon2, lat2 float64) float64 {
	lat1r, lon1r := degRad(lat1), degRad(lon1)
	lat2r, lon2r := degRad(lat2), degRad(lon2)
	u := crSin((lat2r - lat1r) / 2)
	v := crSin((lon2r - lon1r) / 2)
	a := float64(u*u) + float64(float64(crCos(lat1r)*crCos(lat2r))*v)*v
	return 2.0 * earthRadiusMeters * crAsin(math.Sqrt(a))
}

// geoStepsByRadius is geohashEstimateStepsByRadius.
func geoStepsByRadius(meters, lat float64) uint8 {
	if meters == 0 {
		return 26
	}
	step := 1
	for meters < mercatorMax {
		meters *= 2
		step++
	}
	step -= 2
	if lat > 66 || lat < -66 {
		step--
		if lat > 80 || lat < -80 {
			step--
		}
	}
	return uint8(min(max(step, 1), 26))
}

func (h *geoBits) moveX(d int) {
	x := h.bits & 0xaaaaaaaaaaaaaaaa
	y := h.bits & 0x5555555555555555
	zz := uint64(0x5555555555555555) >> (64 - uint(h.step)*2)
	if d > 0 {
		x = x + (zz + 1)
	} else {
		x = x | zz
		x = x - (zz + 1)
	}
	x &= uint64(0xaaaaaaaaaaaaaaaa) >> (64 - uint(h.step)*2)
	h.bits = x | y
}

func (h *geoBits) moveY(d int) {
	x := h.bits & 0xaaaaaaaaaaaaaaaa
	y := h.bits & 0x5555555555555555
	zz := uint64(0xaaaaaaaaaaaaaaaa) >> (64 - uint(h.step)*2)
	if d > 0 {
		y = y + (zz + 1)
	} else {
		y = y | zz
		y = y - (zz + 1)
	}
	y &= uint64(0x5555555555555555) >> (64 - uint(h.step)*2)
	h.bits = x | y
}

func (h geoBits) moved(dx, dy int) geoBits {
	if dx != 0 {
		h.moveX(dx)
	}
	if dy != 0 {
		h.moveY(dy)
	}
	return h
}

// geoShape is a search: a circle (radius) or a box (width, height) around
// xy, sizes in the unit whose meters-per-unit is conv.
type geoShape struct {
	box           bool
	lon, lat      float64
	conv          float64
	radius        float64
	width, height float64
}

// bounds is geohashBoundingBox: min lon, min lat, max lon, max lat.
func (s *geoShape) bounds() (minLon, minLat, maxLon, maxLat float64) {
	height, width := s.conv*s.radius, s.conv*s.radius
	if s.box {
		height, width = s.conv*(s.height/2), s.conv*(s.width/2)
	}
	latDelta := radDeg(height / earthRadiusMeters)
	lonDeltaTop := radDeg(width / earthRadiusMeters / math.Cos(degRad(s.lat+latDelta)))
	lonDeltaBottom := radDeg(width / earthRadiusMeters / math.Cos(degRad(s.lat-latDelta)))
	if s.lat < 0 {
		minLon, maxLon = s.lon-lonDeltaBottom, s.lon+lonDeltaBottom
	} else {
		minLon, maxLon = s.lon-lonDeltaTop, s.lon+lonDeltaTop
	}
	return minLon, s.lat - latDelta, maxLon, s.lat + latDelta
}

// areas is geohashCalculateAreasByShapeWGS84: the centre cell and its
// eight neighbours, in Redis's visiting order (centre, N, S, E, W, NE, NW,
// SE, SW); cells that cannot hold a match are zero.
func (s *geoShape) areas() [9]geoBits {
	minLon, minLat, maxLon, maxLat := s.bounds()
	r := s.radius
	if s.box {
		r = math.Sqrt(float64((s.width/2)*(s.width/2)) + (s.height/2)*(s.height/2))
	}
	r *= s.conv
	steps := geoStepsByRadius(r, s.lat)
	hash, _ := geoEncode(geoLongRange, geoLatRange, s.lon, s.lat, steps)
	nb := neighbors(hash)
	area := geoDecode(geoLongRange, geoLatRange, hash)

	// A cell size estimated from the radius can be too coarse near a cell
	// edge: one of the N/S/E/W neighbours then does not reach far enough.
	north := geoDecode(geoLongRange, geoLatRange, nb[1])
	south := geoDecode(geoLongRange, geoLatRange, nb[2])
	east := geoDecode(geoLongRange, geoLatRange, nb[3])
	west := geoDecode(geoLongRange, geoLatRange, nb[4])
	decrease := north.lat.max < maxLat || south.lat.min > minLat ||
		east.lon.max < maxLon || west.lon.min > minLon
	if steps > 1 && decrease {
		steps--
		hash, _ = geoEncode(geoLongRange, geoLatRange, s.lon, s.lat, steps)
		nb = neighbors(hash)
		area = geoDecode(geoLongRange, geoLatRange, hash)
	}
	if steps >= 2 {
		const n, so, e, w, ne, nw, se, sw = 1, 2, 3, 4, 5, 6, 7, 8
		if area.lat.min < minLat {
			nb[so], nb[sw], nb[se] = geoBits{}, geoBits{}, geoBits{}
		}
		if area.lat.max > maxLat {
			nb[n], nb[ne], nb[nw] = geoBits{}, geoBits{}, geoBits{}
		}
		if area.lon.min < minLon {
			nb[w], nb[sw], nb[nw] = geoBits{}, geoBits{}, geoBits{}
		}
		if area.lon.max > maxLon {
			nb[e], nb[se], nb[ne] = geoBits{}, geoBits{}, geoBits{}
		}
	}
	return nb
}

// neighbors returns the cell and its neighbours in Redis's search order.
func neighbors(h geoBits) [9]geoBits {
	return [9]geoBits{h,
		h.moved(0, 1), h.moved(0, -1), h.moved(1, 0), h.moved(-1, 0),
		h.moved(1, 1), h.moved(-1, 1), h.moved(1, -1), h.moved(-1, -1)}
}

// contains is geoWithinShape for a decoded point: whether it matches, and
// its distance from the centre in meters.
func (s *geoShape) contains(lon, lat float64) (float64, bool) {
	if !s.box {
		d := geoDistance(s.lon, s.lat, lon, lat)
		return d, d <= s.radius*s.conv
	}
	lonDist := geoDistance(lon, lat, s.lon, lat)
	latDist := geoDistance(lon, lat, lon, s.lat)
	if lonDist > s.width*s.conv/2 || latDist > s.height*s.conv/2 {
		return 0, false
	}
	return geoDistance(s.lon, s.lat, lon, lat), true
}

// formatHumanLD prints f as Redis's addReplyHumanLongDouble: "%.17Lf"
// with trailing zeros (and a bare point) removed, "-0" as "0".
func formatHumanLD(f float64) string {
	s := new(big.Float).SetFloat64(f).Text('f', 17)
	if strings.IndexByte(s, '.') >= 0 {
		s = strings.TrimRight(s, "0")
		s = strings.TrimSuffix(s, ".")
	}
	if s == "-0" {
		s = "0"
	}
	return s
}

// glibc's sin, cos and asin round correctly; Go's math package may be an
// ulp off, which STOREDIST scores (printed with 17 digits) would show. So
// the distance formula evaluates them in double-double arithmetic (about
// 106 bits) and rounds once. Arguments here are at most π in magnitude
// (latitudes, half longitude differences); larger ones, which only a huge
// search radius produces in the cell estimate, fall back to package math.

// dd is an unevaluated sum hi + lo with |lo| <= ulp(hi)/2.
type dd struct{ hi, lo float64 }

func twoSum(a, b float64) dd {
	s := a + b
	bb := s - a
	return dd{s, (a - (s - bb)) + (b - bb)}
}

func quickTwoSum(a, b float64) dd {
	s := a + b
	return dd{s, b - (s - a)}
}

func (x dd) add(y dd) dd {
	s := twoSum(x.hi, y.hi)
	t := twoSum(x.lo, y.lo)
	s.lo += t.hi
	s = quickTwoSum(s.hi, s.lo)
	s.lo += t.lo
	return quickTwoSum(s.hi, s.lo)
}

func (x dd) mul(y dd) dd {
	p := x.hi * y.hi
	e := math.FMA(x.hi, y.hi, -p)
	e += x.hi*y.lo + x.lo*y.hi
	return quickTwoSum(p, e)
}

// divf divides by a double.
func (x dd) divf(d float64) dd {
	q1 := x.hi / d
	p := q1 * d
	e := math.FMA(q1, d, -p)
	r := (x.hi - p - e + x.lo) / d
	return quickTwoSum(q1, r)
}

func (x dd) neg() dd { return dd{-x.hi, -x.lo} }

// sinDD and cosDD evaluate the Taylor series, for |x| <= 4.
func sinDD(x float64) dd {
	xx := dd{x, 0}
	x2 := xx.mul(xx)
	sum, term := xx, xx
	for k := 1; k < 40; k++ {
		term = term.mul(x2).divf(float64((2 * k) * (2*k + 1))).neg()
		sum = sum.add(term)
		if math.Abs(term.hi) < 1e-36 {
			break
		}
	}
	return sum
}

func cosDD(x float64) dd {
	xx := dd{x, 0}
	x2 := xx.mul(xx)
	sum, term := dd{1, 0}, dd{1, 0}
	for k := 1; k < 40; k++ {
		term = term.mul(x2).divf(float64((2*k - 1) * (2 * k))).neg()
		sum = sum.add(term)
		if math.Abs(term.hi) < 1e-36 {
			break
		}
	}
	return sum
}

func crSin(x float64) float64 {
	if math.Abs(x) > 4 {
		return math.Sin(x)
	}
	s := sinDD(x)
	return s.hi + s.lo
}

func crCos(x float64) float64 {
	if math.Abs(x) > 4 {
		return math.Cos(x)
	}
	c := cosDD(x)
	return c.hi + c.lo
}

// crAsin refines math.Asin by one Newton step on sin(y) = x in
// double-double.
func crAsin(x float64) float64 {
	y := math.Asin(x)
	if x == 0 || math.IsNaN(y) || math.Abs(x) >= 1 {
		return y
	}
	s, c := sinDD(y), cosDD(y)
	diff := dd{x, 0}.add(s.neg())
	corr := (diff.hi + diff.lo) / (c.hi + c.lo)
	r := twoSum(y, corr)
	return r.hi + r.lo
}
