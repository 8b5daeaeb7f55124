package crdt

// pqsort is Redis's partial quicksort (pqsort.c, after Bentley and
// McIlroy's "Engineering a Sort Function"): it sorts a enough that the
// elements at positions lr..rr are the ones a full sort would put there,
// skipping partitions outside that range. It is not stable, and which of
// several equal elements lands in the range depends on its exact steps, so
// GEOSEARCH ... COUNT and SORT ... BY ... LIMIT follow them to return the
// same members as Redis when distances or weights tie.
func pqsort[T any](a []T, cmp func(x, y *T) int, lr, rr int) {
	pqsortRange(a, 0, len(a), cmp, lr, rr)
}

// pqsortRange sorts a[lo:lo+n].
func pqsortRange[T any](a []T, lo, n int, cmp func(x, y *T) int, lr, rr int) {
	c := func(i, j int) int { return cmp(&a[i], &a[j]) }
	swap := func(i, j int) { a[i], a[j] = a[j], a[i] }
	vecswap := func(i, j, k int) {
		for ; k > 0; k-- {
			swap(i, j)
			i, j = i+1, j+1
		}
	}
	insertion := func() {
		for m := lo + 1; m < lo+n; m++ {
			for l := m; l > lo && c(l-1, l) > 0; l-- {
				swap(l, l-1)
			}
		}
	}
	med3 := func(x, y, z int) int {
		if c(x, y) < 0 {
			if c(y, z) < 0 {
				return y
			}
			if c(x, z) < 0 {
				return z
			}
			return x
		}
		if c(y, z) > 0 {
			return y
		}
		if c(x, z) < 0 {
			return x
		}
		return z
	}
	for {
		if n < 7 {
			insertion()
			return
		}
		m := lo + n/2
		if n > 7 {
			l, h := lo, lo+n-1
			if n > 40 {
				d := n / 8
				l = med3(l, l+d, l+2*d)
				m = med3(m-d, m, m+d)
				h = med3(h-2*d, h-d, h)
			}
			m = med3(l, m, h)
		}
		swap(lo, m)
		pa, pb := lo+1, lo+1
		pc, pd := lo+n-1, lo+n-1
		swapped := false
		for {
			for pb <= pc {
				r := c(pb, lo)
				if r > 0 {
					break
				}
				if r == 0 {
					swapped = true
					swap(pa, pb)
					pa++
				}
				pb++
			}
			for pb <= pc {
				r := c(pc, lo)
				if r < 0 {
					break
				}
				if r == 0 {
					swapped = true
					swap(pc, pd)
					pd--
				}
				pc--
			}
			if pb > pc {
				break
			}
			swap(pb, pc)
			swapped = true
			pb++
			pc--
		}
		if !swapped {
			insertion()
			return
		}
		pn := lo + n
		r := min(pa-lo, pb-pa)
		vecswap(lo, pb-r, r)
		r = min(pd-pc, pn-pd-1)
		vecswap(pb, pn-r, r)
		outside := func(first, count int) bool {
			last := first + count - 1
			return lr < first && rr < first || lr > last && rr > last
		}
		if r = pb - pa; r > 1 && !outside(lo, r) {
			pqsortRange(a, lo, r, cmp, lr, rr)
		}
		r = pd - pc
		if r <= 1 {
			return
		}
		lo, n = pn-r, r
		if outside(lo, n) {
			return
		}
	}
}
