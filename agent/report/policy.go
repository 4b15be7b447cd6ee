package report

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"

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
)

// Policy is the device's policy as last fetched from the collector, cached
// in the state directory so that the agent evaluates offline.
type Policy struct {
	path, embeddedPath string
	log                *slog.Logger

	mu      sync.Mutex
	current *policies.Policy
	// refusedName and refusedVersion are the last policy the collector
	// offered that did not parse; it is not fetched again.
	refusedName    string
	refusedVersion int
}

// LoadPolicy opens the cached policy in dir. A missing or invalid cache
// leaves Current nil (the caller falls back to the embedded baseline).
func LoadPolicy(dir string, log *slog.Logger) *Policy {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	p := &Policy{path: filepath.Join(dir, PolicyFile), embeddedPath: filepath.Join(dir, EmbeddedPolicyFile), log: log}
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
	case errors.Is(err, fs.ErrNotExist):
	default:
		log.Warn("cached policy is unusable; using the embedded baseline until the collector sends one", "path", p.path, "err", err)
	}
	return p
}

// Current is the cached policy, or nil when there is none.
func (p *Policy) Current() *policies.Policy {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.current
}

// Differs reports whether the collector's policy (name, version) is not the
// cached one and not one already refused.
func (p *Policy) Differs(name string, version int) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
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
// document is logged and refused; the cached policy stays.
func (p *Policy) Refresh(ctx context.Context, c *Client) (bool, error) {
	name, version := "", 0
	if cur := p.Current(); cur != nil {
		name, version = cur.Name, cur.Version
	}
	resp, err := c.GetPolicy(ctx, name, version)
	if err != nil {
		return false, fmt.Errorf("fetch policy: %w", err)
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
		p.refusedName, p.refusedVersion = resp.Name, int(resp.Version)
		p.mu.Unlock()
		p.log.Warn("collector sent an invalid policy; keeping the current one", "policy", resp.Name, "version", resp.Version, "err", err)
		return false, nil
	}
	if err := p.cache(resp); err != nil {
		return false, fmt.Errorf("cache policy: %w", err)
	}
	p.mu.Lock()
	p.current = pol
	p.mu.Unlock()
	p.log.Info("policy adopted", "policy", pol.Name, "version", pol.Version)
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
