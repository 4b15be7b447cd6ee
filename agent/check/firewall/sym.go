package firewall

import (
	"bytes"
	"encoding/binary"
	"fmt"
)

// sym is what a register holds while a rule is evaluated over a region:
// bytes of one packet field, a constant, a value that depends on which
// class of a dimension the packet is in, or something Ward cannot follow.
type sym struct {
	kind symKind
	// symField: bytes [off, off+n) of dimension dim's big-endian value of
	// flen bytes, then AND mask (n bytes, nil for none).
	dim, flen, off, n int
	mask              []byte
	// symConst: the value.
	val []byte
	// symClass: the value per class of dimension dim; a nil value is
	// unknown for that class.
	classes []class
	// symUnknown: why.
	why string
	// symMulti: the fields, in register order.
	parts []sym
}

// byteLen is how many bytes of a register s fills; 0 when unknown.
func (s sym) byteLen() int {
	switch s.kind {
	case symField:
		return s.n
	case symConst:
		return len(s.val)
	case symClass:
		for _, c := range s.classes {
			if c.val != nil {
				return len(c.val)
			}
		}
	case symNonzero:
		return 4
	case symMulti:
		n := 0
		for _, p := range s.parts {
			n += p.byteLen()
		}
		return n
	}
	return 0
}

type class struct {
	set iset
	val []byte
}

type symKind int

const (
	symUnknown symKind = iota
	symField
	symConst
	symClass
	// symNonzero is a route lookup's output interface for a remote
	// source: some interface, which one unknown (reverse-path filter).
	symNonzero
	// symFree is a header field the sender chooses and the model does not
	// track (TTL, length, options, IPv6 extension headers): a remote
	// host can send either value, so a test on it holds for some packets
	// and not others, like a rate limit.
	symFree
	// symMulti is one load spanning several fields (th sport and dport
	// in one 4-byte load): parts gives each field's bytes.
	symMulti
)

func unknownSym(format string, args ...any) sym {
	return sym{kind: symUnknown, why: fmt.Sprintf(format, args...)}
}

func constSym(b []byte) sym { return sym{kind: symConst, val: b} }

func le32(v uint32) []byte { return binary.LittleEndian.AppendUint32(nil, v) }
func le16(v uint16) []byte { return binary.LittleEndian.AppendUint16(nil, v) }

// bitwise applies (x & mask) ^ xor.
func (s sym) bitwise(mask, xor []byte) sym {
	apply := func(v []byte) []byte {
		if v == nil {
			return nil
		}
		out := make([]byte, len(mask))
		for i := range out {
			var b byte
			if i < len(v) {
				b = v[i]
			}
			out[i] = b & mask[i]
			if i < len(xor) {
				out[i] ^= xor[i]
			}
		}
		return out
	}
	switch s.kind {
	case symConst:
		return constSym(apply(s.val))
	case symClass:
		cs := make([]class, len(s.classes))
		for i, c := range s.classes {
			cs[i] = class{c.set, apply(c.val)}
		}
		return sym{kind: symClass, dim: s.dim, classes: cs}
	case symField:
		if len(mask) != s.n || (len(xor) > 0 && !allZero(xor)) {
			return unknownSym("a bitwise operation on the %s", dimNames[s.dim])
		}
		m := append([]byte(nil), mask...)
		for i := range m {
			if s.mask != nil {
				m[i] &= s.mask[i]
			}
		}
		s.mask = m
		return s
	}
	return s
}

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

// pred is a test on a register's bytes.
type pred func(v []byte) bool

func cmpPred(op string, data []byte) (pred, error) {
	n := len(data)
	c := func(v []byte) int {
		w := make([]byte, n)
		copy(w, v)
		return bytes.Compare(w, data)
	}
	switch op {
	case "eq":
		return func(v []byte) bool { return c(v) == 0 }, nil
	case "neq":
		return func(v []byte) bool { return c(v) != 0 }, nil
	case "lt":
		return func(v []byte) bool { return c(v) < 0 }, nil
	case "lte":
		return func(v []byte) bool { return c(v) <= 0 }, nil
	case "gt":
		return func(v []byte) bool { return c(v) > 0 }, nil
	case "gte":
		return func(v []byte) bool { return c(v) >= 0 }, nil
	}
	return nil, fmt.Errorf("comparison %q", op)
}

// cond is a condition on packets: those with dimension dim's value in in
// match, in out do not, in neither Ward cannot tell. A constant condition
// has dim -1 and always (or never) holds.
type cond struct {
	dim     int
	in, out iset
	always  bool
	unknown string // non-empty: Ward cannot evaluate the condition at all
	partial string // why the part in neither is unknown
	// sometimes: the sender decides (a field it chooses), so both
	// branches are real.
	sometimes bool
}

// test turns a predicate on a register into a condition on packets. lo and
// hi, when hiOK, give the predicate as a closed range of register values
// compared as big-endian numbers over the first len(lo) bytes (eq: lo ==
// hi), which lets field loads be converted without enumerating values.
func (sp *space) test(s sym, p pred, rng *valueRange) cond {
	switch s.kind {
	case symUnknown:
		return cond{dim: -1, unknown: s.why}
	case symFree:
		return cond{dim: -1, sometimes: true}
	case symMulti:
		return cond{dim: -1, unknown: "a comparison across several fields"}
	case symConst:
		return cond{dim: -1, always: p(s.val)}
	case symNonzero:
		// Only "is there a route back" is known: some interface.
		if rng != nil && rng.isZeroPoint() {
			return cond{dim: -1, always: rng.negate}
		}
		return cond{dim: -1, unknown: "a route lookup's result"}
	case symClass:
		c := cond{dim: s.dim}
		for _, cl := range s.classes {
			switch {
			case cl.val == nil:
				c.partial = fmt.Sprintf("the %s for some values", dimNames[s.dim])
			case p(cl.val):
				c.in = c.in.union(cl.set)
			default:
				c.out = c.out.union(cl.set)
			}
		}
		return c
	}
	// symField.
	dom := sp.dom[s.dim]
	if rng != nil && s.off == 0 {
		if c, ok := sp.fieldCond(s, rng); ok {
			return c
		}
	}
	if s.flen <= 2 {
		return enumerate(s, p, dom)
	}
	return cond{dim: -1, unknown: fmt.Sprintf("a test on part of the %s Ward does not model", dimNames[s.dim])}
}

// fieldCond is the condition "field s's register value in rng", when the
// register holds the field's leading bytes under a prefix mask.
func (sp *space) fieldCond(s sym, rng *valueRange) (cond, bool) {
	in, ok := fieldRange(s, rng)
	if !ok {
		return cond{}, false
	}
	dom := sp.dom[s.dim]
	in = in.intersect(dom)
	if rng.negate {
		return cond{dim: s.dim, in: dom.minus(in), out: in}, true
	}
	return cond{dim: s.dim, in: in, out: dom.minus(in)}, true
}

// valueRange is the predicate "register value (its first len(lo) bytes,
// big-endian) in [lo, hi]", negated when negate.
type valueRange struct {
	lo, hi []byte
	negate bool
}

func (r *valueRange) isZeroPoint() bool {
	return allZero(r.lo) && allZero(r.hi)
}

// fieldRange converts a range test on the leading bytes of a field, under
// a prefix-shaped mask, into the set of field values that pass.
func fieldRange(s sym, r *valueRange) (iset, bool) {
	n := len(r.lo)
	if n == 0 || n > s.n || len(r.hi) != n {
		return nil, false
	}
	// Only the first n bytes are compared: the register holds the field's
	// leading bytes, so compare those.
	bitsKept := 8 * n
	if s.mask != nil {
		k, ok := prefixLen(s.mask[:n])
		if !ok {
			return nil, false
		}
		bitsKept = k
	}
	lo, hi := fromBytes(r.lo), fromBytes(r.hi)
	// The register's value is top(v) << (8n - bitsKept), where top(v) is
	// the field's leading bitsKept bits.
	q := uint(8*s.flen - bitsKept) // bits of the field below the kept ones
	unit := uint(8*n - bitsKept)   // zero bits at the register's low end
	// smallest top with top<<unit >= lo, largest with top<<unit <= hi.
	tlo := shr(lo, unit)
	if shl(tlo, unit).cmp(lo) < 0 {
		tlo = tlo.add1()
	}
	thi := shr(hi, unit)
	maxTop := ones(uint(bitsKept))
	if tlo.cmp(maxTop) > 0 || tlo.cmp(thi) > 0 {
		return nil, true
	}
	if thi.cmp(maxTop) > 0 {
		thi = maxTop
	}
	return span(shl(tlo, q), shl(thi, q).or(ones(q))), true
}

func shl(a u128, n uint) u128 {
	if n >= 128 {
		return u128{}
	}
	return a.shl(n)
}

func shr(a u128, n uint) u128 {
	switch {
	case n == 0:
		return a
	case n >= 128:
		return u128{}
	case n >= 64:
		return u128{lo: a.hi >> (n - 64)}
	}
	return u128{hi: a.hi >> n, lo: a.lo>>n | a.hi<<(64-n)}
}

// prefixLen returns k when mask is k one bits followed by zero bits.
func prefixLen(mask []byte) (int, bool) {
	k := 0
	seenZero := false
	for _, b := range mask {
		for bit := 7; bit >= 0; bit-- {
			if b&(1<<bit) != 0 {
				if seenZero {
					return 0, false
				}
				k++
			} else {
				seenZero = true
			}
		}
	}
	return k, true
}

// enumerate evaluates p on every value of a small field.
func enumerate(s sym, p pred, dom iset) cond {
	c := cond{dim: s.dim}
	var in, out []ival
	buf := make([]byte, s.flen)
	for _, iv := range dom {
		for v := iv.lo.lo; ; v++ {
			for i := range buf {
				buf[s.flen-1-i] = byte(v >> (8 * i))
			}
			reg := append([]byte(nil), buf[s.off:s.off+s.n]...)
			for i := range reg {
				if s.mask != nil {
					reg[i] &= s.mask[i]
				}
			}
			x := ival{u64(v), u64(v)}
			if p(reg) {
				in = appendIval(in, x)
			} else {
				out = appendIval(out, x)
			}
			if v == iv.hi.lo {
				break
			}
		}
	}
	c.in, c.out = iset(in), iset(out)
	return c
}

// appendIval appends x to sorted intervals, merging when adjacent.
func appendIval(s []ival, x ival) []ival {
	if n := len(s); n > 0 && s[n-1].hi.add1().cmp(x.lo) == 0 {
		s[n-1].hi = x.hi
		return s
	}
	return append(s, x)
}
