package events

import (
	"context"
	"crypto/sha256"
	"errors"
	"slices"
	"sync"

	"github.com/wardhq/ward/collector/store"
	"github.com/wardhq/ward/policies"
)

// policyCache parses each group's policy once per document: parsing
// compiles every rule's CEL expression, and events only need the rules'
// grace, titles and severities.
type policyCache struct {
	def string // the embedded policy of a group without one
	mu  sync.Mutex
	m   map[[sha256.Size]byte]*policies.Policy
}

func newPolicyCache(def string) *policyCache {
	return &policyCache{def: def, m: map[[sha256.Size]byte]*policies.Policy{}}
}

// maxParsed bounds the cache; it starts again when full.
const maxParsed = 64

// of returns the group's policy, parsed, and how events name it.
func (c *policyCache) of(ctx context.Context, st store.Store, group string) (*policies.Policy, PolicyRef, error) {
	gp, err := st.Policy(ctx, group)
	var key [sha256.Size]byte
	var parse func() (*policies.Policy, error)
	switch {
	case errors.Is(err, store.ErrNotFound):
		key = sha256.Sum256([]byte("embedded\x00" + c.def))
		parse = func() (*policies.Policy, error) { return policies.Embedded(c.def) }
	case err != nil:
		return nil, PolicyRef{}, err
	default:
		key = sha256.Sum256(append([]byte("group\x00"+group+"\x00"), gp.Document...))
		parse = func() (*policies.Policy, error) { return policies.Parse("group "+group, gp.Document) }
	}
	c.mu.Lock()
	p, ok := c.m[key]
	c.mu.Unlock()
	if !ok {
		if p, err = parse(); err != nil {
			return nil, PolicyRef{}, err
		}
		c.mu.Lock()
		if len(c.m) >= maxParsed {
			c.m = map[[sha256.Size]byte]*policies.Policy{}
		}
		c.m[key] = p
		c.mu.Unlock()
	}
	ref := PolicyRef{Name: p.Name, Version: p.Version}
	if gp.Name != "" {
		ref = PolicyRef{Name: gp.Name, Version: gp.Version}
	}
	return p, ref, nil
}

// groupRules is every group's policy: the groups with devices and those
// with a policy set.
func (c *policyCache) groupRules(ctx context.Context, st store.Dashboard) (map[string]*policies.Policy, map[string]PolicyRef, error) {
	groups, err := st.Groups(ctx)
	if err != nil {
		return nil, nil, err
	}
	ps, err := st.Policies(ctx)
	if err != nil {
		return nil, nil, err
	}
	for _, p := range ps {
		if !slices.Contains(groups, p.Group) {
			groups = append(groups, p.Group)
		}
	}
	out, refs := map[string]*policies.Policy{}, map[string]PolicyRef{}
	for _, g := range groups {
		p, ref, err := c.of(ctx, st, g)
		if err != nil {
			return nil, nil, err
		}
		out[g], refs[g] = p, ref
	}
	return out, refs, nil
}

// ruleOf returns the policy's rule with this id, or nil.
func ruleOf(p *policies.Policy, id string) *policies.Rule {
	for i := range p.Rules {
		if p.Rules[i].ID == id {
			return &p.Rules[i]
		}
	}
	return nil
}
