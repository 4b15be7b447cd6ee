package firewall

import (
	"math/bits"
	"slices"
)

// u128 is an unsigned 128-bit number: an IPv6 address, or any smaller
// header field zero-extended. Every dimension of packet space is a range
// of u128 so one interval-set type serves them all.
type u128 struct{ hi, lo uint64 }

func u64(v uint64) u128 { return u128{lo: v} }

func (a u128) cmp(b u128) int {
	switch {
	case a.hi < b.hi:
		return -1
	case a.hi > b.hi:
		return 1
	case a.lo < b.lo:
		return -1
	case a.lo > b.lo:
		return 1
	}
	return 0
}

func (a u128) add1() u128 {
	lo, c := bits.Add64(a.lo, 1, 0)
	return u128{hi: a.hi + c, lo: lo}
}

func (a u128) sub1() u128 {
	lo, b := bits.Sub64(a.lo, 1, 0)
	return u128{hi: a.hi - b, lo: lo}
}

func (a u128) sub(b u128) u128 {
	lo, br := bits.Sub64(a.lo, b.lo, 0)
	return u128{hi: a.hi - b.hi - br, lo: lo}
}

func (a u128) and(b u128) u128 { return u128{a.hi & b.hi, a.lo & b.lo} }
func (a u128) or(b u128) u128  { return u128{a.hi | b.hi, a.lo | b.lo} }

// shl shifts left by n bits (n < 128).
func (a u128) shl(n uint) u128 {
	switch {
	case n == 0:
		return a
	case n >= 64:
		return u128{hi: a.lo << (n - 64)}
	}
	return u128{hi: a.hi<<n | a.lo>>(64-n), lo: a.lo << n}
}

// ones returns a number with the low n bits set (n ≤ 128).
func ones(n uint) u128 {
	switch {
	case n >= 128:
		return u128{^uint64(0), ^uint64(0)}
	case n >= 64:
		return u128{hi: 1<<(n-64) - 1, lo: ^uint64(0)}
	}
	return u128{lo: 1<<n - 1}
}

// fromBytes reads a big-endian number of up to 16 bytes.
func fromBytes(b []byte) u128 {
	var v u128
	for _, c := range b {
		v = v.shl(8).or(u64(uint64(c)))
	}
	return v
}

// ival is an inclusive interval [lo, hi].
type ival struct{ lo, hi u128 }

// iset is a set of numbers as sorted, disjoint, non-adjacent intervals.
// The nil set is empty. Sets are values: operations return new slices and
// never modify their operands.
type iset []ival

func point(v u128) iset     { return iset{{v, v}} }
func span(lo, hi u128) iset { return iset{{lo, hi}} }
func (s iset) empty() bool  { return len(s) == 0 }
func (s iset) equal(t iset) bool {
	return slices.Equal(s, t)
}

// normalize sorts and merges intervals into canonical form.
func normalize(in []ival) iset {
	if len(in) == 0 {
		return nil
	}
	s := slices.Clone(in)
	slices.SortFunc(s, func(a, b ival) int { return a.lo.cmp(b.lo) })
	out := s[:1]
	for _, iv := range s[1:] {
		last := &out[len(out)-1]
		if last.hi.cmp(ones(128)) == 0 || iv.lo.cmp(last.hi.add1()) <= 0 {
			if iv.hi.cmp(last.hi) > 0 {
				last.hi = iv.hi
			}
			continue
		}
		out = append(out, iv)
	}
	return out
}

func (s iset) union(t iset) iset {
	if len(s) == 0 {
		return t
	}
	if len(t) == 0 {
		return s
	}
	return normalize(append(slices.Clone(s), t...))
}

func (s iset) intersect(t iset) iset {
	if s.subset(t) {
		return s
	}
	var out iset
	i, j := 0, 0
	for i < len(s) && j < len(t) {
		lo, hi := s[i].lo, s[i].hi
		if t[j].lo.cmp(lo) > 0 {
			lo = t[j].lo
		}
		if t[j].hi.cmp(hi) < 0 {
			hi = t[j].hi
		}
		if lo.cmp(hi) <= 0 {
			out = append(out, ival{lo, hi})
		}
		if s[i].hi.cmp(t[j].hi) < 0 {
			i++
		} else {
			j++
		}
	}
	return out
}

// overlaps reports whether s and t share a number, without allocating.
func (s iset) overlaps(t iset) bool {
	i, j := 0, 0
	for i < len(s) && j < len(t) {
		if s[i].hi.cmp(t[j].lo) < 0 {
			i++
			continue
		}
		if t[j].hi.cmp(s[i].lo) < 0 {
			j++
			continue
		}
		return true
	}
	return false
}

// subset reports whether every number of s is in t.
func (s iset) subset(t iset) bool {
	j := 0
	for _, iv := range s {
		for j < len(t) && t[j].hi.cmp(iv.lo) < 0 {
			j++
		}
		if j == len(t) || t[j].lo.cmp(iv.lo) > 0 || t[j].hi.cmp(iv.hi) < 0 {
			return false
		}
	}
	return true
}

func (s iset) minus(t iset) iset {
	if len(t) == 0 || len(s) == 0 || !s.overlaps(t) {
		return s
	}
	var out iset
	j := 0
	for _, iv := range s {
		lo := iv.lo
		done := false
		for j < len(t) && t[j].hi.cmp(lo) < 0 {
			j++
		}
		for k := j; k < len(t) && t[k].lo.cmp(iv.hi) <= 0; k++ {
			if t[k].lo.cmp(lo) > 0 {
				out = append(out, ival{lo, t[k].lo.sub1()})
			}
			if t[k].hi.cmp(iv.hi) >= 0 {
				done = true
				break
			}
			lo = t[k].hi.add1()
		}
		if !done {
			out = append(out, ival{lo, iv.hi})
		}
	}
	return out
}

// size counts the numbers in s, saturating at 2^64-1.
func (s iset) size() uint64 {
	var n uint64
	for _, iv := range s {
		d := iv.hi.sub(iv.lo)
		if d.hi != 0 || d.lo == ^uint64(0) {
			return ^uint64(0)
		}
		var c uint64
		n, c = bits.Add64(n, d.lo+1, 0)
		if c != 0 {
			return ^uint64(0)
		}
	}
	return n
}
