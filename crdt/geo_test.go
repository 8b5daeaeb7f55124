package crdt

import (
	"math"
	"math/big"
	"sort"
	"strconv"
	"testing"

	"pgregory.net/rapid"
)

// geoTables are sequential sessions whose replies were taken from
// redis-server 7.0.15 (TestGeoTablesRedis re-checks them when it is
// installed).
var geoTables = map[string][]shStep{
	"geoadd geopos geohash geodist": {
		sh(`:2`, "GEOADD", "Sicily", "13.361389", "38.115556", "Palermo", "15.087269", "37.502669", "Catania"),
		sh(`"3479099956230698"`, "ZSCORE", "Sicily", "Palermo"),
		sh(`[["13.36138933897018433" "38.11555639549629859"] ["15.08726745843887329" "37.50266842333162032"] nil]`, "GEOPOS", "Sicily", "Palermo", "Catania", "nosuch"),
		sh(`["sqc8b49rny0" "sqdtr74hyu0" nil]`, "GEOHASH", "Sicily", "Palermo", "Catania", "nosuch"),
		sh(`"166274.1516"`, "GEODIST", "Sicily", "Palermo", "Catania"),
		sh(`"166.2742"`, "GEODIST", "Sicily", "Palermo", "Catania", "km"),
		sh(`"103.3182"`, "GEODIST", "Sicily", "Palermo", "Catania", "MI"),
		sh(`"545518.8700"`, "GEODIST", "Sicily", "Palermo", "Catania", "ft"),
		sh(`nil`, "GEODIST", "Sicily", "Palermo", "nosuch"),
		sh(`-ERR unsupported unit provided. please use M, KM, FT, MI`, "GEODIST", "Sicily", "Palermo", "Catania", "yards"),
		sh(`-ERR syntax error`, "GEODIST", "Sicily", "Palermo", "Catania", "km", "x"),
		sh(`nil`, "GEODIST", "nokey", "a", "b"),
		sh(`[nil]`, "GEOPOS", "nokey", "a"),
		sh(`[nil]`, "GEOHASH", "nokey", "a"),
		sh(`:2`, "GEOADD", "Sicily", "CH", "13.361389", "38", "Palermo", "1", "1", "new"),
		sh(`:1`, "GEOADD", "Sicily", "XX", "CH", "13.361389", "38.115556", "Palermo", "2", "2", "other"),
		sh(`:1`, "GEOADD", "Sicily", "NX", "13", "38", "Palermo", "2", "2", "other"),
		sh(`:4`, "ZCARD", "Sicily"),
		sh(`-ERR syntax error`, "GEOADD", "Sicily", "NX", "XX", "1", "1", "x"),
		sh(`-ERR wrong number of arguments for 'geoadd' command`, "GEOADD", "Sicily", "1", "1"),
		sh(`-ERR syntax error`, "GEOADD", "Sicily", "CH", "CH", "CH"),
		sh(`-ERR syntax error`, "GEOADD", "Sicily", "GT", "1", "1", "x"),
		sh(`-ERR invalid longitude,latitude pair 181.000000,0.000000`, "GEOADD", "Sicily", "181", "0", "x"),
		sh(`-ERR invalid longitude,latitude pair 0.000000,85.060000`, "GEOADD", "Sicily", "0", "85.06", "x"),
		sh(`-ERR value is not a valid float`, "GEOADD", "Sicily", "abc", "0", "x"),
		sh(`-ERR value is not a valid float`, "GEOADD", "Sicily", "0", " 1", "x"),
		sh(`:2`, "GEOADD", "Sicily", "180", "85.05112878", "top", "-180", "-85.05112878", "bottom"),
		sh(`"13510798882111488"`, "ZSCORE", "Sicily", "top"),
		sh(`[["180" "85.0511287799999991"] ["-179.99999731779098511" "-85.05112751263942528"]]`, "GEOPOS", "Sicily", "top", "bottom"),
		sh(`["bp05b5048p0" "00bh0hbj200"]`, "GEOHASH", "Sicily", "top", "bottom"),
		sh(`:2`, "ZADD", "plain", "-5", "neg", "0", "zero"),
		sh(`[["180" "85.0511287799999991"] ["-179.99999731779098511" "-85.05112751263942528"]]`, "GEOPOS", "plain", "neg", "zero"),
		sh(`+OK`, "SET", "str", "x"),
		sh(`-WRONGTYPE Operation against a key holding the wrong kind of value`, "GEOADD", "str", "1", "1", "m"),
		sh(`-WRONGTYPE Operation against a key holding the wrong kind of value`, "GEOPOS", "str", "m"),
		sh(`-WRONGTYPE Operation against a key holding the wrong kind of value`, "GEODIST", "str", "a", "b"),
		sh(`-WRONGTYPE Operation against a key holding the wrong kind of value`, "GEOHASH", "str", "a"),
	},
	"geosearch": {
		sh(`:4`, "GEOADD", "Sicily", "13.361389", "38.115556", "Palermo", "15.087269", "37.502669", "Catania", "12.758489", "38.788135", "edge1", "17.241510", "38.788135", "edge2"),
		sh(`["Catania" "Palermo"]`, "GEOSEARCH", "Sicily", "FROMLONLAT", "15", "37", "BYRADIUS", "200", "km", "ASC"),
		sh(`[["Palermo" "190.4424" :3479099956230698 ["13.36138933897018433" "38.11555639549629859"]] ["Catania" "56.4413" :3479447370796909 ["15.08726745843887329" "37.50266842333162032"]]]`, "GEOSEARCH", "Sicily", "FROMLONLAT", "15", "37", "BYRADIUS", "200", "km", "DESC", "WITHCOORD", "WITHDIST", "WITHHASH"),
		sh(`[["Palermo" "0.0000"] ["edge1" "91.4007"] ["Catania" "166.2742"]]`, "GEOSEARCH", "Sicily", "FROMMEMBER", "Palermo", "BYBOX", "400", "400", "km", "ASC", "WITHDIST"),
		sh(`[["Catania" "56.4413"] ["Palermo" "190.4424"]]`, "GEOSEARCH", "Sicily", "FROMLONLAT", "15", "37", "BYBOX", "400", "400", "km", "ASC", "COUNT", "2", "WITHDIST"),
		sh(`["Palermo"]`, "GEOSEARCH", "Sicily", "FROMLONLAT", "15", "37", "BYRADIUS", "200", "km", "COUNT", "1", "ANY"),
		sh(`-ERR the ANY argument requires COUNT argument`, "GEOSEARCH", "Sicily", "FROMLONLAT", "15", "37", "BYRADIUS", "200", "km", "ANY"),
		sh(`-ERR COUNT must be > 0`, "GEOSEARCH", "Sicily", "FROMLONLAT", "15", "37", "BYRADIUS", "200", "km", "COUNT", "0"),
		sh(`-ERR value is not an integer or out of range`, "GEOSEARCH", "Sicily", "FROMLONLAT", "15", "37", "BYRADIUS", "200", "km", "COUNT", "abc"),
		sh(`-ERR could not decode requested zset member`, "GEOSEARCH", "Sicily", "FROMMEMBER", "nosuch", "BYRADIUS", "200", "km"),
		sh(`-ERR syntax error`, "GEOSEARCH", "Sicily", "FROMMEMBER", "Palermo", "FROMLONLAT", "1", "1", "BYRADIUS", "200", "km"),
		sh(`-ERR exactly one of FROMMEMBER or FROMLONLAT can be specified for GEOSEARCH`, "GEOSEARCH", "Sicily", "BYRADIUS", "200", "km", "ASC", "ASC"),
		sh(`-ERR exactly one of BYRADIUS and BYBOX can be specified for GEOSEARCH`, "GEOSEARCH", "Sicily", "FROMLONLAT", "15", "37", "ASC", "ASC"),
		sh(`-ERR radius cannot be negative`, "GEOSEARCH", "Sicily", "FROMLONLAT", "15", "37", "BYRADIUS", "-1", "km"),
		sh(`-ERR need numeric radius`, "GEOSEARCH", "Sicily", "FROMLONLAT", "15", "37", "BYRADIUS", "x", "km"),
		sh(`-ERR unsupported unit provided. please use M, KM, FT, MI`, "GEOSEARCH", "Sicily", "FROMLONLAT", "15", "37", "BYRADIUS", "1", "yd"),
		sh(`-ERR need numeric width`, "GEOSEARCH", "Sicily", "FROMLONLAT", "15", "37", "BYBOX", "x", "1", "km"),
		sh(`-ERR need numeric height`, "GEOSEARCH", "Sicily", "FROMLONLAT", "15", "37", "BYBOX", "1", "x", "km"),
		sh(`-ERR height or width cannot be negative`, "GEOSEARCH", "Sicily", "FROMLONLAT", "15", "37", "BYBOX", "1", "-1", "km"),
		sh(`-ERR syntax error`, "GEOSEARCH", "Sicily", "FROMLONLAT", "15", "37", "BYRADIUS", "1", "km", "BYBOX", "1", "1", "km"),
		sh(`-ERR syntax error`, "GEOSEARCH", "Sicily", "FROMLONLAT", "15", "37", "BYRADIUS", "1", "km", "STORE", "x"),
		sh(`-ERR syntax error`, "GEOSEARCH", "Sicily", "FROMLONLAT", "15", "37", "BYRADIUS", "1", "km", "STOREDIST"),
		sh(`-ERR invalid longitude,latitude pair 200.000000,37.000000`, "GEOSEARCH", "Sicily", "FROMLONLAT", "200", "37", "BYRADIUS", "1", "km"),
		sh(`[]`, "GEOSEARCH", "nokey", "FROMMEMBER", "x", "BYRADIUS", "1", "km"),
		sh(`:2`, "GEOSEARCHSTORE", "dst", "Sicily", "FROMLONLAT", "15", "37", "BYRADIUS", "200", "km", "ASC", "COUNT", "2"),
		sh(`["Palermo" "3479099956230698" "Catania" "3479447370796909"]`, "ZRANGE", "dst", "0", "-1", "WITHSCORES"),
		sh(`:2`, "GEOSEARCHSTORE", "dst", "Sicily", "FROMLONLAT", "15", "37", "BYRADIUS", "200", "km", "STOREDIST"),
		sh(`["Catania" "56.441257870158204" "Palermo" "190.44242984775784"]`, "ZRANGE", "dst", "0", "-1", "WITHSCORES"),
		sh(`-ERR GEOSEARCHSTORE is not compatible with WITHDIST, WITHHASH and WITHCOORD options`, "GEOSEARCHSTORE", "dst", "Sicily", "FROMLONLAT", "15", "37", "BYRADIUS", "200", "km", "WITHDIST"),
		sh(`:0`, "GEOSEARCHSTORE", "dst", "Sicily", "FROMLONLAT", "0", "0", "BYRADIUS", "1", "km"),
		sh(`:0`, "EXISTS", "dst"),
		sh(`:0`, "GEOSEARCHSTORE", "dst", "nokey", "FROMLONLAT", "0", "0", "BYRADIUS", "1", "km"),
		sh(`+OK`, "SET", "str", "x"),
		sh(`-WRONGTYPE Operation against a key holding the wrong kind of value`, "GEOSEARCH", "str", "FROMMEMBER", "x", "BYRADIUS", "1", "km"),
		sh(`-WRONGTYPE Operation against a key holding the wrong kind of value`, "GEOSEARCHSTORE", "dst", "str", "FROMMEMBER", "x", "BYRADIUS", "1", "km"),
	},
	"georadius": {
		sh(`:2`, "GEOADD", "Sicily", "13.361389", "38.115556", "Palermo", "15.087269", "37.502669", "Catania"),
		sh(`[["Catania" "56.4413" ["15.08726745843887329" "37.50266842333162032"]] ["Palermo" "190.4424" ["13.36138933897018433" "38.11555639549629859"]]]`, "GEORADIUS", "Sicily", "15", "37", "200", "km", "WITHDIST", "WITHCOORD", "ASC"),
		sh(`["Palermo"]`, "GEORADIUS", "Sicily", "15", "37", "200", "km", "COUNT", "1", "DESC"),
		sh(`:2`, "GEORADIUS", "Sicily", "15", "37", "200", "km", "STORE", "dst"),
		sh(`["Palermo" "3479099956230698" "Catania" "3479447370796909"]`, "ZRANGE", "dst", "0", "-1", "WITHSCORES"),
		sh(`:1`, "GEORADIUS", "Sicily", "15", "37", "200", "km", "STOREDIST", "dst", "COUNT", "1"),
		sh(`["Catania" "56.441257870158204"]`, "ZRANGE", "dst", "0", "-1", "WITHSCORES"),
		sh(`-ERR STORE option in GEORADIUS is not compatible with WITHDIST, WITHHASH and WITHCOORD options`, "GEORADIUS", "Sicily", "15", "37", "200", "km", "STORE", "dst", "WITHDIST"),
		sh(`-ERR syntax error`, "GEORADIUS", "Sicily", "15", "37", "200", "km", "STORE"),
		sh(`-ERR radius cannot be negative`, "GEORADIUS", "Sicily", "15", "37", "-1", "km"),
		sh(`-ERR invalid longitude,latitude pair 15.000000,91.000000`, "GEORADIUS", "Sicily", "15", "91", "1", "km"),
		sh(`-ERR syntax error`, "GEORADIUS", "Sicily", "15", "37", "1", "km", "FROMMEMBER", "Palermo"),
		sh(`:0`, "GEORADIUS", "nokey", "15", "37", "1", "km", "STORE", "dst"),
		sh(`:0`, "EXISTS", "dst"),
		sh(`["Catania" "Palermo"]`, "GEORADIUS_RO", "Sicily", "15", "37", "200", "km", "ASC"),
		sh(`-ERR syntax error`, "GEORADIUS_RO", "Sicily", "15", "37", "200", "km", "STORE", "dst"),
		sh(`[["Palermo" "0.0000"] ["Catania" "166.2742"]]`, "GEORADIUSBYMEMBER", "Sicily", "Palermo", "200", "km", "WITHDIST", "ASC"),
		sh(`-ERR could not decode requested zset member`, "GEORADIUSBYMEMBER", "Sicily", "nosuch", "200", "km"),
		sh(`[]`, "GEORADIUSBYMEMBER", "nokey", "nosuch", "abc", "km"),
		sh(`-ERR STORE option in GEORADIUS is not compatible with WITHDIST, WITHHASH and WITHCOORD options`, "GEORADIUSBYMEMBER", "nokey", "nosuch", "abc", "km", "STORE", "x", "WITHDIST"),
		sh(`:1`, "GEORADIUSBYMEMBER", "Sicily", "Palermo", "100", "km", "STORE", "dst2"),
		sh(`["Palermo" "3479099956230698"]`, "ZRANGE", "dst2", "0", "-1", "WITHSCORES"),
		sh(`[["Catania" :3479447370796909]]`, "GEORADIUSBYMEMBER_RO", "Sicily", "Palermo", "500", "km", "COUNT", "1", "DESC", "WITHHASH"),
		sh(`-ERR syntax error`, "GEORADIUSBYMEMBER_RO", "Sicily", "Palermo", "500", "km", "STORE", "dst2"),
	},
}

func TestGeoTables(t *testing.T) {
	for name, steps := range geoTables {
		t.Run(name, func(t *testing.T) { shRun(t, steps) })
	}
}

func TestGeoTablesRedis(t *testing.T) {
	ref := shStartRedis(t)
	for name, steps := range geoTables {
		t.Run(name, func(t *testing.T) { shRunRedis(t, ref, steps) })
	}
}

// Geo writes are sorted-set writes: a member's position is its score, so
// concurrent GEOADDs of one member keep the later one (LWW score), and a
// GEOADD concurrent with a ZREM of the same member keeps it (add-wins).
func TestGeoConcurrentAdds(t *testing.T) {
	rs := shReplicas(2)
	a, b := rs[0], rs[1]
	a.expect(t, ":1", "GEOADD", "g", "13.361389", "38.115556", "Palermo")
	shSync(t, a, b)
	a.expect(t, ":0", "GEOADD", "g", "15.087269", "37.502669", "Palermo")
	b.ms += 5
	b.expect(t, ":0", "GEOADD", "g", "2.294481", "48.858370", "Palermo")
	shSync(t, a, b)
	for _, r := range rs {
		r.expect(t, `[["2.29448229074478149" "48.85836876571852372"]]`, "GEOPOS", "g", "Palermo")
	}
	a.expect(t, ":1", "ZREM", "g", "Palermo")
	b.expect(t, ":0", "GEOADD", "g", "13.361389", "38.115556", "Palermo")
	shSync(t, a, b)
	for _, r := range rs {
		r.expect(t, `["sqc8b49rny0"]`, "GEOHASH", "g", "Palermo")
	}
}

// GEOSEARCHSTORE writes its destination as a whole key: what the writer
// observed there goes, the matches are fresh adds.
func TestGeoSearchStoreOverwrites(t *testing.T) {
	rs := shReplicas(2)
	a, b := rs[0], rs[1]
	a.expect(t, ":2", "GEOADD", "g", "13.361389", "38.115556", "Palermo", "15.087269", "37.502669", "Catania")
	a.expect(t, ":1", "ZADD", "dst", "1", "old")
	shSync(t, a, b)
	b.expect(t, ":1", "GEOSEARCHSTORE", "dst", "g", "FROMMEMBER", "Palermo", "BYRADIUS", "10", "km", "STOREDIST")
	a.expect(t, ":1", "ZADD", "dst", "2", "unseen") // concurrent: survives
	shSync(t, a, b)
	for _, r := range rs {
		r.expect(t, `["Palermo" "unseen"]`, "ZRANGE", "dst", "0", "-1")
		r.expect(t, `"0"`, "ZSCORE", "dst", "Palermo")
	}
}

// The geohash arithmetic against values redis-server 7.0.15 printed.
func TestGeoHashArithmetic(t *testing.T) {
	for _, c := range []struct {
		lon, lat float64
		score    float64
		hash     string
	}{
		{13.361389, 38.115556, 3479099956230698, "sqc8b49rny0"},
		{15.087269, 37.502669, 3479447370796909, "sqdtr74hyu0"},
		{180, 85.05112878, 13510798882111488, "bp05b5048p0"}, // the top edge spills past 52 bits, as in Redis
		{-180, -85.05112878, 0, "00bh0hbj200"},
	} {
		if s := geoScore(c.lon, c.lat); s != c.score {
			t.Errorf("geoScore(%v, %v) = %v, want %v", c.lon, c.lat, s, c.score)
		}
		if h := geoHashString(c.score); h != c.hash {
			t.Errorf("geoHashString(%v) = %s, want %s", c.score, h, c.hash)
		}
	}
	if got := formatHumanLD(math.Copysign(0, -1)); got != "0" {
		t.Errorf("formatHumanLD(-0) = %q", got)
	}
	// sin/cos/asin are evaluated to double-double and rounded once: compare
	// with the exact value computed by math/big at a few points.
	for _, x := range []float64{1e-9, 0.1, 0.5, 1, 1.4844222297453322, 3.1} {
		if got, want := crSin(x), bigSin(x); got != want {
			t.Errorf("crSin(%v) = %v, want %v", x, got, want)
		}
	}
}

// bigSin is sin(x) by its Taylor series at 300 bits, rounded to float64.
func bigSin(x float64) float64 {
	const prec = 300
	bx := new(big.Float).SetPrec(prec).SetFloat64(x)
	x2 := new(big.Float).SetPrec(prec).Mul(bx, bx)
	sum := new(big.Float).SetPrec(prec).Set(bx)
	term := new(big.Float).SetPrec(prec).Set(bx)
	for k := 1; k < 80; k++ {
		term.Mul(term, x2)
		term.Quo(term, new(big.Float).SetPrec(prec).SetInt64(int64(2*k*(2*k+1))))
		term.Neg(term)
		sum.Add(sum, term)
	}
	f, _ := sum.Float64()
	return f
}

// geoGens: geo writes (GEOADD, GEOSEARCHSTORE) mixed with ZADD/ZREM/DEL on
// the same keys.
var geoGens = []cmdGen{
	{"zset", []string{"GEOADD"}, func(d draws, k string, _ int64) []string {
		lon := strconv.FormatFloat(13+float64(d.intn(40, "lon"))/10, 'f', 2, 64)
		lat := strconv.FormatFloat(37+float64(d.intn(20, "lat"))/10, 'f', 2, 64)
		args := []string{"GEOADD", k}
		if chance(d, 20, "geoopt") {
			args = append(args, []string{"NX", "XX", "CH"}[d.intn(3, "which")])
		}
		return append(args, lon, lat, "m"+strconv.Itoa(d.intn(4, "member")))
	}},
	{"zset", []string{"GEOSEARCHSTORE"}, func(d draws, k string, _ int64) []string {
		args := []string{"GEOSEARCHSTORE", k, otherKey(d, k), "FROMLONLAT", "14", "38", "BYRADIUS",
			[]string{"50", "150", "400"}[d.intn(3, "radius")], "km"}
		if chance(d, 50, "count") {
			args = append(args, "COUNT", "2")
		}
		if chance(d, 50, "storedist") {
			args = append(args, "STOREDIST")
		}
		return args
	}},
	{"zset", []string{"ZREM"}, func(d draws, k string, _ int64) []string {
		return []string{"ZREM", k, "m" + strconv.Itoa(d.intn(4, "member"))}
	}},
	{"zset", []string{"ZADD"}, func(d draws, k string, _ int64) []string {
		return []string{"ZADD", k, small(d, "score"), "m" + strconv.Itoa(d.intn(4, "member"))}
	}},
	{"keys", []string{"DEL"}, func(d draws, k string, _ int64) []string { return []string{"DEL", k} }},
}

// TestConvergeGeo: the geo writes converge like any sorted-set write.
func TestConvergeGeo(t *testing.T) {
	w := newWorkloadOf(geoGens)
	if len(w.gens) < len(geoGens) {
		t.Skip("geo commands not all registered")
	}
	counts = simCounts{}
	rapid.Check(t, func(rt *rapid.T) {
		if err := runSim(rapidDraws{rt}, w, simOpts{noModel: true}); err != nil {
			rt.Fatal(err)
		}
	})
	t.Logf("exercised: %v", &counts)
}

// pqsort puts in lr..rr exactly the elements a full sort puts there, with
// many ties, for every range.
func TestPqsortRange(t *testing.T) {
	r := NewRand(7)
	for trial := 0; trial < 2000; trial++ {
		n := int(r.Uint64() % 90)
		a := make([]int, n)
		for i := range a {
			a[i] = int(r.Uint64() % 12)
		}
		want := append([]int(nil), a...)
		sort.Ints(want)
		lr := 0
		if n > 0 {
			lr = int(r.Uint64() % uint64(n))
		}
		rr := lr + int(r.Uint64()%5)
		if rr >= n {
			rr = n - 1
		}
		got := append([]int(nil), a...)
		pqsort(got, func(x, y *int) int { return *x - *y }, lr, rr)
		for i := lr; i <= rr; i++ {
			if got[i] != want[i] {
				t.Fatalf("n=%d range %d..%d: got %v, want %v", n, lr, rr, got, want)
			}
		}
	}
}

// BenchmarkGeoDistance measures the double-double distance formula that
// every search candidate goes through.
func BenchmarkGeoDistance(b *testing.B) {
	for i := 0; i < b.N; i++ {
		geoDistance(13.361389, 38.115556, 15.087269+float64(i%7)*1e-3, 37.502669)
	}
}
