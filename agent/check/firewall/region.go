package firewall

import (
	"encoding/binary"
	"fmt"
	"hash/maphash"
	"strings"
)

// Dimensions of the space of new inbound connections from a remote host.
// Every other property of such a packet is fixed (conntrack state new,
// TCP flags SYN, mark 0, no output interface) or not modelled (then an
// expression reading it is uncertain).
const (
	dimProto = iota // L4 protocol number, 0–255
	dimSport        // first two bytes of the transport header (ICMP: type, code)
	dimDport        // bytes 2–3 of the transport header
	dimSaddr        // source address
	dimDaddr        // destination address
	dimIif          // input interface: index into the space's interface list
	numDims
)

var dimNames = [numDims]string{"protocol", "source port", "destination port", "source address", "destination address", "input interface"}

// box is a product of one set per dimension: the packets whose every
// field lies in its set. It carries what happened to it on its way:
// tag is non-empty when it went down one branch of a rule Ward could not
// decide (it names the expression), by names the rule or policy that
// last gave it a verdict.
type box struct {
	d   [numDims]iset
	tag string
	by  string
}

func (b box) empty() bool {
	for _, s := range b.d {
		if s.empty() {
			return true
		}
	}
	return false
}

// with returns b with dimension i replaced.
func (b box) with(i int, s iset) box {
	b.d[i] = s
	return b
}

// region is a union of boxes (they may overlap).
type region []box

// split divides every box of r by a condition on one dimension: the part
// whose field is in in, the part whose field is in out, the part in
// neither (uncertain). in and out need not cover the domain.
func (r region) split(dim int, in, out iset) (match, nomatch, unsure region) {
	for _, b := range r {
		switch x := b.d[dim]; {
		case x.subset(in):
			match = append(match, b)
			continue
		case x.subset(out):
			nomatch = append(nomatch, b)
			continue
		}
		if m := b.with(dim, b.d[dim].intersect(in)); !m.empty() {
			match = append(match, m)
		}
		if n := b.with(dim, b.d[dim].intersect(out)); !n.empty() {
			nomatch = append(nomatch, n)
		}
		rest := b.d[dim].minus(in).minus(out)
		if u := b.with(dim, rest); !u.empty() {
			unsure = append(unsure, u)
		}
	}
	return match, nomatch, unsure
}

// tagged returns r with every untagged box tagged with tag.
func (r region) tagged(tag string) region {
	out := make(region, len(r))
	for i, b := range r {
		if b.tag == "" {
			b.tag = tag
		}
		out[i] = b
	}
	return out
}

// decided returns r with by set on every box.
func (r region) decided(by string) region {
	out := make(region, len(r))
	for i, b := range r {
		b.by = by
		out[i] = b
	}
	return out
}

// minus returns the part of r outside every box of s (tags and verdicts
// of r are kept).
func (r region) minus(s region) region {
	out := r
	for _, sb := range s {
		var next region
		for _, b := range out {
			next = append(next, boxMinus(b, sb)...)
		}
		out = next
	}
	return out
}

// boxMinus returns b minus m as at most numDims disjoint boxes.
func boxMinus(b, m box) region {
	for i := range numDims {
		if !b.d[i].overlaps(m.d[i]) {
			return region{b}
		}
	}
	var out region
	cur := b
	for i := range numDims {
		if rest := cur.d[i].minus(m.d[i]); !rest.empty() {
			out = append(out, cur.with(i, rest))
		}
		cur = cur.with(i, cur.d[i].intersect(m.d[i]))
	}
	return out
}

// compact merges boxes that differ in one dimension only and carry the
// same tag, until no more merge; a merged box names the first box's
// verdict ("… and other rules" when they differ). It keeps regions small as
// rules fragment them. Boxes are bucketed by a hash of everything but the
// dimension being merged, so a pass is linear in the number of boxes.
func (r region) compact() region {
	if len(r) < 2 {
		return r
	}
	out := append(region(nil), r...)
	seed := maphash.MakeSeed()
	for pass := 0; pass < 4; pass++ {
		changed := false
		for d := range numDims {
			idx := make(map[uint64][]int, len(out))
			var groups []region
		next:
			for _, b := range out {
				k := boxHash(seed, b, d)
				for _, i := range idx[k] {
					if sameBut(groups[i][0], b, d) {
						groups[i] = append(groups[i], b)
						changed = true
						continue next
					}
				}
				idx[k] = append(idx[k], len(groups))
				groups = append(groups, region{b})
			}
			merged := make(region, 0, len(groups))
			for _, g := range groups {
				if len(g) == 1 {
					merged = append(merged, g[0])
					continue
				}
				var all []ival
				for _, b := range g {
					all = append(all, b.d[d]...)
				}
				m := g[0].with(d, normalize(all))
				for _, b := range g[1:] {
					if b.by != m.by && !strings.HasSuffix(m.by, andOthers) {
						m.by += andOthers
					}
				}
				merged = append(merged, m)
			}
			out = merged
		}
		if !changed {
			break
		}
	}
	return out
}

// boxHash hashes a box's tag, verdict and every dimension but skip.
func boxHash(seed maphash.Seed, b box, skip int) uint64 {
	var h maphash.Hash
	h.SetSeed(seed)
	h.WriteString(b.tag)
	var buf [8]byte
	for d := range numDims {
		h.WriteByte(1)
		if d == skip {
			continue
		}
		for _, iv := range b.d[d] {
			for _, x := range [4]uint64{iv.lo.hi, iv.lo.lo, iv.hi.hi, iv.hi.lo} {
				binary.LittleEndian.PutUint64(buf[:], x)
				h.Write(buf[:])
			}
		}
	}
	return h.Sum64()
}

const andOthers = " and other rules"

func sameBut(a, b box, skip int) bool {
	if a.tag != b.tag {
		return false
	}
	for d := range numDims {
		if d != skip && !a.d[d].equal(b.d[d]) {
			return false
		}
	}
	return true
}

// maxBoxes bounds a region. Rules can fragment packet space faster than
// compaction joins it; past this, the region is replaced by its hull (the
// smallest box holding it), tagged uncertain. The hull holds every packet
// the region did, so nothing accepted is lost and nothing is called
// blocked that was not: only precision is.
const maxBoxes = 256

// bounded compacts r and, if it is still too large, returns its hull.
func (r region) bounded() region {
	if len(r) <= maxBoxes {
		return r
	}
	r = r.compact()
	if len(r) <= maxBoxes {
		return r
	}
	h := box{tag: r[0].tag, by: r[0].by}
	for _, b := range r {
		for d := range numDims {
			h.d[d] = h.d[d].union(b.d[d])
		}
		if h.tag == "" && b.tag != "" {
			h.tag = b.tag
		}
	}
	if h.tag == "" {
		h.tag = fmt.Sprintf("the ruleset splits this traffic into more than %d slices, more than Ward follows exactly", maxBoxes)
	}
	return region{h}
}
