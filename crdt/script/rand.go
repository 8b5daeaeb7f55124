package script

// lrand48 is Redis's redisLrand48 (src/rand.c): the 48-bit linear
// congruential generator of drand48, x = (0x5DEECE66D*x + 0xB) mod 2^48,
// returning the top 31 bits. Redis's math.random is built on it, so with the
// same seed (math.randomseed) scripts get exactly Redis's numbers.
type lrand48 struct{ x uint64 }

const (
	lrandMask = 1<<48 - 1
	// lrandMax is Redis's REDIS_LRAND48_MAX (INT32_MAX).
	lrandMax = 1<<31 - 1
)

// seed is redisSrand48: the low 16 bits are 0x330E, the seed's 32 bits go
// above them.
func (r *lrand48) seed(s int32) { r.x = (uint64(uint32(s))<<16 | 0x330E) & lrandMask }

func (r *lrand48) next() int32 {
	r.x = (0x5DEECE66D*r.x + 0xB) & lrandMask
	return int32(r.x >> 17)
}
