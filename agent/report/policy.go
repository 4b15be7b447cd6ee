package report

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/wardhq/ward/agent/outbox"
	"github.com/wardhq/ward/policies"
	wardv1 "github.com/wardhq/ward/proto/ward/v1"
)

// Cache files in the state directory: the policy document, or, when the
// collector assigns a policy shipped with Ward without sending its text,
// that policy's name.
const (
	PolicyFile         = "policy.yaml"
	EmbeddedPolicyFile = "policy.embedded"
	// PolicyMetaFile keeps the policy's content hash and the device's
	// waivers as the collector sent them with it.
	PolicyMetaFile = "policy.meta.json"
)

// Waiver is a failing rule the organisation accepted on this device until
// ExpiresAt; the agent stops prompting about it until then.
type Waiver struct {
	RuleID    string    `json:"rule_id"`
	Reason    string    `json:"reason"`
	ExpiresAt time.Time `json:"expires_at"`
}

// policyMeta is PolicyMetaFile.
type policyMeta struct {
	// Name and Version are the policy the hash was sent with: a meta file
	// left beside another policy is ignored.
	Name        string   `json:"name"`
	Version     int      `json:"version"`
	ContentHash string   `json:"content_hash"`
	Waivers     []Waiver `json:"waivers"`
}

// Policy is the device's policy as last fetched from the collector, cached
// in the state directory so that the agent evaluates offline.
type Policy struct {
	path, embeddedPath, metaPath string
	log                          *slog.Logger

	mu      sync.Mutex
	current *policies.Policy
	// hash is the collector's content hash of current and waivers ("" when
	// unknown: the policy came from an older collector or an older cache).
	hash    string
	waivers []Waiver
	// refusedName, refusedVersion and refusedHash are the last policy the
	// collector offered that did not parse; it is not fetched again.
	refusedName    string
	refusedVersion int
	refusedHash    string
}

// LoadPolicy opens the cached policy in dir. A missing or invalid cache
// leaves Current nil (the caller falls back to the embedded baseline).
func LoadPolicy(dir string, log *slog.Logger) *Policy {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	p := &Policy{path: filepath.Join(dir, PolicyFile), embeddedPath: filepath.Join(dir, EmbeddedPolicyFile),
		metaPath: filepath.Join(dir, PolicyMetaFile), log: log}
	pol, err := policies.Load(p.path)
	if errors.Is(err, fs.ErrNotExist) {
		var name []byte
		if name, err = os.ReadFile(p.embeddedPath); err == nil {
			pol, err = policies.Embedded(strings.TrimSpace(string(name)))
		}
	}
	switch {
	case err == nil:
		p.current = pol
		p.loadMeta()
	case errors.Is(err, fs.ErrNotExist):
	default:
		log.Warn("cached policy is unusable; using the embedded baseline until the collector sends one", "path", p.path, "err", err)
	}
	return p
}

// loadMeta reads the hash and waivers of the cached policy; a missing,
// unreadable or mismatched file leaves them empty (the next round then
// fetches them).
func (p *Policy) loadMeta() {
	data, err := os.ReadFile(p.metaPath)
	if err != nil {
		if !errors.Is(err, fs.ErrNotExist) {
			p.log.Warn("cached policy hash and waivers are unreadable; fetching them again", "path", p.metaPath, "err", err)
		}
		return
	}
	var m policyMeta
	if err := json.Unmarshal(data, &m); err != nil || m.Name != p.current.Name || m.Version != p.current.Version {
		p.log.Warn("cached policy hash and waivers do not match the cached policy; fetching them again", "path", p.metaPath, "err", err)
		return
	}
	p.hash, p.waivers = m.ContentHash, m.Waivers
}

// Hash is the collector's content hash of the cached policy and waivers,
// or "" when unknown.
func (p *Policy) Hash() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.hash
}

// Waivers are the waivers that came with the cached policy, expired ones
// included (whoever shows them judges expiry at the time they show).
func (p *Policy) Waivers() []Waiver {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]Waiver(nil), p.waivers...)
}

// Current is the cached policy, or nil when there is none.
func (p *Policy) Current() *policies.Policy {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.current
}

// Differs reports whether the collector's policy is not the cached one
// and not one already refused: by content hash when the collector gives
// one, else (an older collector) by name and version.
func (p *Policy) Differs(name string, version int, hash string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if hash != "" {
		return hash != p.hash && hash != p.refusedHash
	}
	if name == "" {
		return false
	}
	if name == p.refusedName && version == p.refusedVersion {
		return false
	}
	return p.current == nil || p.current.Name != name || p.current.Version != version
}

// Refresh asks the collector for the device's policy and adopts it when it
// changed and parses. It returns whether the policy changed. An invalid
// document is logged and refused; the cached policy stays. With f not
// nil, it asks for the release feed too and hands what comes to
// f.Accept (whether or not the policy changed).
func (p *Policy) Refresh(ctx context.Context, c *Client, f *Feed) (bool, error) {
	name, version := "", 0
	if cur := p.Current(); cur != nil {
		name, version = cur.Name, cur.Version
	}
	// A hash is always sent, so the collector compares content; "none"
	// (a cache from before hashes) matches nothing and fetches.
	hash := p.Hash()
	if hash == "" {
		hash = "none"
	}
	resp, err := c.GetPolicy(ctx, name, version, hash, f.Serial())
	if err != nil {
		return false, fmt.Errorf("fetch policy: %w", err)
	}
	if _, err := f.Accept(resp, time.Now()); err != nil {
		return false, err
	}
	if !resp.Changed {
		return false, nil
	}
	var pol *policies.Policy
	if len(resp.Document) == 0 {
		// A policy shipped with Ward: the agent has the same text.
		pol, err = policies.Embedded(resp.Name)
	} else {
		pol, err = policies.Parse(p.path, resp.Document)
	}
	if err == nil && (pol.Name != resp.Name || pol.Version != int(resp.Version)) {
		err = fmt.Errorf("document is %s v%d, the collector called it %s v%d", pol.Name, pol.Version, resp.Name, resp.Version)
	}
	if err != nil {
		p.mu.Lock()
		p.refusedName, p.refusedVersion, p.refusedHash = resp.Name, int(resp.Version), resp.ContentHash
		p.mu.Unlock()
		p.log.Warn("collector sent an invalid policy; keeping the current one", "policy", resp.Name, "version", resp.Version, "err", err)
		return false, nil
	}
	ws := make([]Waiver, 0, len(resp.Waivers))
	for _, w := range resp.Waivers {
		ws = append(ws, Waiver{RuleID: w.RuleId, Reason: w.Reason, ExpiresAt: w.ExpiresAt.AsTime().UTC()})
	}
	if err := p.cache(resp); err != nil {
		return false, fmt.Errorf("cache policy: %w", err)
	}
	// The meta file goes after the document: a crash in between leaves
	// the old hash, so the next round fetches again.
	meta, _ := json.MarshalIndent(policyMeta{Name: pol.Name, Version: pol.Version, ContentHash: resp.ContentHash, Waivers: ws}, "", "  ")
	if err := outbox.WriteFile(p.metaPath, meta, 0o644); err != nil {
		return false, fmt.Errorf("cache policy hash and waivers: %w", err)
	}
	p.mu.Lock()
	p.current, p.hash, p.waivers = pol, resp.ContentHash, ws
	p.mu.Unlock()
	p.log.Info("policy adopted", "policy", pol.Name, "version", pol.Version, "content_hash", resp.ContentHash, "waivers", len(ws))
	return true, nil
}

// cache stores the adopted policy: its document, or the name of the
// shipped policy it is. The other file is removed afterwards, so a crash
// in between leaves the new policy in force (policy.yaml wins).
func (p *Policy) cache(resp *wardv1.GetPolicyResponse) error {
	if len(resp.Document) == 0 {
		if err := outbox.WriteFile(p.embeddedPath, []byte(resp.Name+"\n"), 0o644); err != nil {
			return err
		}
		if err := os.Remove(p.path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		return nil
	}
	if err := outbox.WriteFile(p.path, resp.Document, 0o644); err != nil {
		return err
	}
	if err := os.Remove(p.embeddedPath); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}
