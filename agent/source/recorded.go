package source

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"slices"
	"strings"
	"sync"

	"github.com/wardhq/ward/agent/check"
)

// Kinds of records in a bundle.
const (
	KindCommand  = "command"
	KindFile     = "file"
	KindDir      = "dir"
	KindStat     = "stat"
	KindRegistry = "registry"
	KindWMI      = "wmi"
	KindNftables = "nftables"
	// KindInterfaces and KindListening were added in format 1 without a
	// version bump: a bundle without them replays those reads as
	// check.ErrNotRecorded.
	KindInterfaces = "interfaces"
	KindListening  = "listening"
)

// Record is one read a collector made and what it returned.
type Record struct {
	Kind string `json:"kind"`
	// Command
	Tool     string   `json:"tool,omitempty"`
	Args     []string `json:"args,omitempty"`
	Path     string   `json:"path,omitempty"` // file, dir, stat path; command's resolved path
	ExitCode int      `json:"exit_code,omitempty"`
	// Stdout holds a command's standard output, or a file's contents.
	Stdout    []byte `json:"-"`
	Stderr    []byte `json:"-"`
	Truncated bool   `json:"truncated,omitempty"`
	// File
	Limit int64 `json:"limit,omitempty"`
	// Dir
	Names []string `json:"names,omitempty"`
	// Stat
	Info *check.FileInfo `json:"info,omitempty"`
	// Registry
	Key   string               `json:"key,omitempty"`
	Name  string               `json:"name,omitempty"`
	Value *check.RegistryValue `json:"value,omitempty"`
	// WMI
	Namespace string           `json:"namespace,omitempty"`
	Query     string           `json:"query,omitempty"`
	Rows      []map[string]any `json:"rows,omitempty"`
	// Nftables
	Ruleset *check.NftRuleset `json:"ruleset,omitempty"`
	// Interfaces
	Interfaces []check.Interface `json:"interfaces,omitempty"`
	// Listening
	Sockets []check.Socket `json:"sockets,omitempty"`
	// Reduced says the answer (or the error) holds only what the
	// collectors use of the input (check.Trim): package histories.
	Reduced bool `json:"reduced,omitempty"`
	// Err is the error the read returned, if any.
	Err *RecordedError `json:"error,omitempty"`
}

// RecordedError keeps an error's class across a bundle, so a replayed
// "file not found" still satisfies errors.Is(err, fs.ErrNotExist).
type RecordedError struct {
	// Class is not_exist, permission, not_allowed, unsupported, timeout,
	// not_recorded or other.
	Class   string `json:"class"`
	Message string `json:"message"`
}

func (e *RecordedError) Error() string { return e.Message }

// Unwrap maps the class back to the sentinel it came from.
func (e *RecordedError) Unwrap() error {
	switch e.Class {
	case "not_exist":
		return fs.ErrNotExist
	case "permission":
		return fs.ErrPermission
	case "not_allowed":
		return check.ErrNotAllowed
	case "unsupported":
		return check.ErrUnsupported
	case "timeout":
		return context.DeadlineExceeded
	case "not_recorded":
		return check.ErrNotRecorded
	}
	return nil
}

func recordError(err error) *RecordedError {
	if err == nil {
		return nil
	}
	class := "other"
	switch {
	case errors.Is(err, fs.ErrNotExist):
		class = "not_exist"
	case errors.Is(err, fs.ErrPermission):
		class = "permission"
	case errors.Is(err, check.ErrNotAllowed):
		class = "not_allowed"
	case errors.Is(err, check.ErrUnsupported):
		class = "unsupported"
	case errors.Is(err, context.DeadlineExceeded):
		class = "timeout"
	case errors.Is(err, check.ErrNotRecorded):
		class = "not_recorded"
	}
	return &RecordedError{Class: class, Message: err.Error()}
}

// key identifies a read, so a replay finds the record a live read made.
func (r *Record) key() string {
	switch r.Kind {
	case KindCommand:
		return KindCommand + "\x00" + r.Tool + "\x00" + strings.Join(r.Args, "\x00")
	case KindFile, KindDir, KindStat:
		return r.Kind + "\x00" + r.Path
	case KindRegistry:
		return KindRegistry + "\x00" + strings.ToLower(r.Key) + "\x00" + strings.ToLower(r.Name)
	case KindWMI:
		return KindWMI + "\x00" + strings.ToLower(r.Namespace) + "\x00" + r.Query
	}
	return r.Kind
}

// Recorded is a Source that answers from records: a replayed support
// bundle, or captured outputs in tests. A read it holds no record of fails
// with check.ErrNotRecorded (which collectors treat as "could not tell").
type Recorded struct {
	host    check.Host
	mu      sync.RWMutex
	records map[string]*Record
}

// NewRecorded returns a Recorded Source for host holding records.
func NewRecorded(host check.Host, records ...Record) *Recorded {
	r := &Recorded{host: host, records: make(map[string]*Record)}
	for _, rec := range records {
		r.Add(rec)
	}
	return r
}

// Add adds or replaces a record.
func (r *Recorded) Add(rec Record) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.records[rec.key()] = &rec
}

// AddCommand records a command's exit code and output.
func (r *Recorded) AddCommand(tool string, args []string, exitCode int, stdout, stderr []byte) {
	r.Add(Record{Kind: KindCommand, Tool: tool, Args: args, ExitCode: exitCode, Stdout: stdout, Stderr: stderr})
}

// AddFile records a file's contents.
func (r *Recorded) AddFile(path string, data []byte) {
	r.Add(Record{Kind: KindFile, Path: path, Stdout: data})
}

// AddError records that a read failed with err.
func (r *Recorded) AddError(rec Record, err error) {
	rec.Err = recordError(err)
	r.Add(rec)
}

func (r *Recorded) lookup(rec Record) (*Record, error) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	got, ok := r.records[rec.key()]
	if !ok {
		return nil, fmt.Errorf("%s %s: %w", rec.Kind, describe(rec), check.ErrNotRecorded)
	}
	if got.Err != nil {
		return got, got.Err
	}
	return got, nil
}

func describe(rec Record) string {
	switch rec.Kind {
	case KindCommand:
		return strings.TrimSpace(rec.Tool + " " + strings.Join(rec.Args, " "))
	case KindRegistry:
		return rec.Key + `\` + rec.Name
	case KindWMI:
		return rec.Namespace + ": " + rec.Query
	}
	return rec.Path
}

// Host implements check.Source.
func (r *Recorded) Host(context.Context) (check.Host, error) { return r.host, nil }

// Command implements check.Source.
func (r *Recorded) Command(_ context.Context, tool string, args ...string) (check.CommandResult, error) {
	got, err := r.lookup(Record{Kind: KindCommand, Tool: tool, Args: args})
	if err != nil {
		return check.CommandResult{}, err
	}
	return check.CommandResult{Path: got.Path, ExitCode: got.ExitCode, Stdout: got.Stdout, Stderr: got.Stderr, Truncated: got.Truncated}, nil
}

// ReadFile implements check.Source.
func (r *Recorded) ReadFile(_ context.Context, path string, limit int64) ([]byte, error) {
	got, err := r.lookup(Record{Kind: KindFile, Path: path})
	if err != nil {
		return nil, err
	}
	data := got.Stdout
	if limit >= 0 && int64(len(data)) > limit {
		data = data[:limit]
	}
	return data, nil
}

// ReadDir implements check.Source.
func (r *Recorded) ReadDir(_ context.Context, path string) ([]string, error) {
	got, err := r.lookup(Record{Kind: KindDir, Path: path})
	if err != nil {
		return nil, err
	}
	return got.Names, nil
}

// Stat implements check.Source.
func (r *Recorded) Stat(_ context.Context, path string) (check.FileInfo, error) {
	got, err := r.lookup(Record{Kind: KindStat, Path: path})
	if err != nil {
		return check.FileInfo{}, err
	}
	if got.Info == nil {
		return check.FileInfo{}, fmt.Errorf("stat %s: record has no info: %w", path, check.ErrNotRecorded)
	}
	return *got.Info, nil
}

// Registry implements check.Source.
func (r *Recorded) Registry(_ context.Context, key, name string) (check.RegistryValue, error) {
	got, err := r.lookup(Record{Kind: KindRegistry, Key: key, Name: name})
	if err != nil {
		return check.RegistryValue{}, err
	}
	if got.Value == nil {
		return check.RegistryValue{}, fmt.Errorf("registry %s\\%s: %w", key, name, fs.ErrNotExist)
	}
	return *got.Value, nil
}

// WMI implements check.Source.
func (r *Recorded) WMI(_ context.Context, namespace, query string) ([]map[string]any, error) {
	got, err := r.lookup(Record{Kind: KindWMI, Namespace: namespace, Query: query})
	if err != nil {
		return nil, err
	}
	return got.Rows, nil
}

// Nftables implements check.Source.
func (r *Recorded) Nftables(context.Context) (check.NftRuleset, error) {
	got, err := r.lookup(Record{Kind: KindNftables})
	if err != nil {
		return check.NftRuleset{}, err
	}
	if got.Ruleset == nil {
		return check.NftRuleset{}, nil
	}
	return *got.Ruleset, nil
}

// Interfaces implements check.Source.
func (r *Recorded) Interfaces(context.Context) ([]check.Interface, error) {
	got, err := r.lookup(Record{Kind: KindInterfaces})
	if err != nil {
		return nil, err
	}
	if got.Interfaces == nil {
		return []check.Interface{}, nil
	}
	return slices.Clone(got.Interfaces), nil
}

// Listening implements check.Source.
func (r *Recorded) Listening(context.Context) ([]check.Socket, error) {
	got, err := r.lookup(Record{Kind: KindListening})
	if err != nil {
		return nil, err
	}
	if got.Sockets == nil {
		return []check.Socket{}, nil
	}
	return slices.Clone(got.Sockets), nil
}

// Records returns the records in a stable order.
func (r *Recorded) Records() []Record {
	r.mu.RLock()
	defer r.mu.RUnlock()
	keys := make([]string, 0, len(r.records))
	for k := range r.records {
		keys = append(keys, k)
	}
	sortStrings(keys)
	out := make([]Record, 0, len(keys))
	for _, k := range keys {
		out = append(out, *r.records[k])
	}
	return out
}
