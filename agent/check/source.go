package check

import (
	"context"
	"errors"
	"time"
)

// Source is where collectors read the operating system from. Every method
// is safe for concurrent use. Missing things (a file, a registry value, a
// tool that is not installed) are reported with an error that wraps
// fs.ErrNotExist, so collectors can tell "absent" from "could not read".
type Source interface {
	// Host describes the machine the Source reads from.
	Host(ctx context.Context) (Host, error)
	// Command runs an allow-listed tool with argv (never a shell). A non-zero
	// exit status is not an error; it is in the result. An error means the
	// tool could not be run: not allow-listed, not installed, timed out.
	Command(ctx context.Context, tool string, args ...string) (CommandResult, error)
	// ReadFile returns at most limit bytes from the start of a file.
	ReadFile(ctx context.Context, path string, limit int64) ([]byte, error)
	// ReadDir lists the names in a directory, sorted.
	ReadDir(ctx context.Context, path string) ([]string, error)
	// Stat describes a file without reading it.
	Stat(ctx context.Context, path string) (FileInfo, error)
	// Registry reads one value under HKEY_LOCAL_MACHINE (Windows); key is
	// written without the hive, e.g. `SOFTWARE\Microsoft\Windows NT\CurrentVersion`.
	// An empty name asks only whether the key exists: a zero RegistryValue
	// and a nil error when it does, an error wrapping fs.ErrNotExist when not.
	Registry(ctx context.Context, key, name string) (RegistryValue, error)
	// WMI runs a WQL query in a namespace (Windows) and returns its rows.
	WMI(ctx context.Context, namespace, query string) ([]map[string]any, error)
	// Nftables returns the live nftables ruleset read over netlink (Linux).
	Nftables(ctx context.Context) (NftRuleset, error)
}

// Host is the platform a Source reads from.
type Host struct {
	// OS is the GOOS value: linux, darwin or windows.
	OS string `json:"os"`
	// Arch is the GOARCH value.
	Arch string `json:"arch"`
}

// CommandResult is what an allow-listed tool printed and how it exited.
type CommandResult struct {
	// Path is the absolute path that ran.
	Path     string
	ExitCode int
	Stdout   []byte
	Stderr   []byte
	// Truncated is true when the output was cut at the Source's cap.
	Truncated bool
}

// FileInfo is the part of a file's metadata collectors use.
type FileInfo struct {
	Size    int64     `json:"size"`
	ModTime time.Time `json:"mod_time"`
	IsDir   bool      `json:"is_dir"`
}

// RegistryValue is one registry value. Exactly one of the fields is set,
// according to the value's type.
type RegistryValue struct {
	String  *string  `json:"string,omitempty"`
	Integer *uint64  `json:"integer,omitempty"`
	Strings []string `json:"strings,omitempty"`
	Binary  []byte   `json:"binary,omitempty"`
}

// NftRuleset is the part of an nftables ruleset that decides whether
// inbound traffic is filtered: base chains with their hooks and policies,
// and each rule's verdict.
type NftRuleset struct {
	Tables []NftTable `json:"tables"`
}

// NftTable is one nftables table.
type NftTable struct {
	Family string     `json:"family"` // ip, ip6, inet, arp, bridge, netdev
	Name   string     `json:"name"`
	Chains []NftChain `json:"chains"`
}

// NftChain is one chain. Base chains have a hook; regular chains do not.
type NftChain struct {
	Name     string    `json:"name"`
	Type     string    `json:"type,omitempty"` // filter, nat, route
	Hook     string    `json:"hook,omitempty"` // prerouting, input, forward, output, postrouting, ingress
	Priority *int32    `json:"priority,omitempty"`
	Policy   string    `json:"policy,omitempty"` // accept, drop
	Rules    []NftRule `json:"rules"`
}

// NftRule is one rule, reduced to what decides filtering.
type NftRule struct {
	// Verdict is accept, drop, reject, jump, goto, return, continue, queue,
	// or empty when the rule only counts or logs.
	Verdict string `json:"verdict,omitempty"`
	// Target is the chain of a jump or goto.
	Target string `json:"target,omitempty"`
	// Matches counts the expressions that select packets (payload, meta,
	// ct, cmp, lookup, ...). A rule with no matches applies to every packet.
	Matches int `json:"matches"`
	// Exprs names the rule's expressions in order, for the record.
	Exprs []string `json:"exprs,omitempty"`
}

// Errors a Source returns. Collectors test them with errors.Is.
var (
	// ErrNotAllowed is returned for a tool that is not on the allow-list.
	ErrNotAllowed = errors.New("tool is not allow-listed")
	// ErrUnsupported is returned when the platform has no such interface
	// (the registry on Linux, netlink on Windows).
	ErrUnsupported = errors.New("not supported on this platform")
	// ErrNotRecorded is returned by a replayed Source for a read the
	// bundle does not hold.
	ErrNotRecorded = errors.New("not recorded in the bundle")
)
