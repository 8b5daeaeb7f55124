package crdt

// Rand is a small deterministic generator (splitmix64). Commands that need
// randomness draw from a Rand seeded by the op's stamp, so every node of a
// region makes the same choices; nothing in this package touches a global
// random source.
type Rand struct{ s uint64 }

// NewRand returns a generator seeded with seed.
func NewRand(seed uint64) *Rand { return &Rand{s: seed} }

// Uint64 returns the next value.
func (r *Rand) Uint64() uint64 {
	r.s += 0x9e3779b97f4a7c15
	z := r.s
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}

// Intn returns a value in [0, n); n must be positive.
func (r *Rand) Intn(n int) int {
	if n <= 0 {
		panic("crdt: Intn with non-positive n")
	}
	// Rejection sampling keeps the choice exactly uniform.
	max := ^uint64(0) - ^uint64(0)%uint64(n)
	for {
		if v := r.Uint64(); v < max {
			return int(v % uint64(n))
		}
	}
}
