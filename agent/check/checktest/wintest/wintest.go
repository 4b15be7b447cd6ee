// Package wintest holds a fake Windows Source for collector tests: registry
// values, WMI rows and command outputs loaded from captured testdata, with
// the live Source's error semantics (a registry key or value that is not
// there wraps fs.ErrNotExist).
package wintest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"strings"
	"testing"

	"github.com/wardhq/ward/agent/check"
)

// Registry is registry values by key and value name, as testdata files
// hold them. A key mapped to an empty object exists with no values.
type Registry map[string]map[string]check.RegistryValue

// Fake is a check.Source for Windows collector tests. Reads it has no data
// for fail with check.ErrNotRecorded, except registry reads, which fail
// with fs.ErrNotExist as on a live machine.
type Fake struct {
	Reg Registry
	// RegistryErr fails every registry read under a key with an error.
	RegistryErr map[string]error
	wmi         map[string][]map[string]any
	wmiErr      map[string]error
	cmds        map[string]check.CommandResult
	cmdErr      map[string]error
	// Ifaces and Sockets answer Interfaces and Listening; nil fails with
	// check.ErrNotRecorded.
	Ifaces  []check.Interface
	Sockets []check.Socket
}

// New returns an empty Fake.
func New() *Fake {
	return &Fake{Reg: Registry{}, RegistryErr: map[string]error{},
		wmi: map[string][]map[string]any{}, wmiErr: map[string]error{},
		cmds: map[string]check.CommandResult{}, cmdErr: map[string]error{}}
}

func wmiKey(namespace, query string) string { return strings.ToLower(namespace) + "\x00" + query }
func cmdKey(tool string, args []string) string {
	return tool + "\x00" + strings.Join(args, "\x00")
}

// SetWMI makes a query return rows (or err, when not nil).
func (f *Fake) SetWMI(namespace, query string, rows []map[string]any, err error) {
	if err != nil {
		f.wmiErr[wmiKey(namespace, query)] = err
		return
	}
	f.wmi[wmiKey(namespace, query)] = rows
}

// SetCommand makes a command print stdout and exit with code (or fail with
// err, when not nil).
func (f *Fake) SetCommand(tool string, args []string, code int, stdout []byte, err error) {
	if err != nil {
		f.cmdErr[cmdKey(tool, args)] = err
		return
	}
	f.cmds[cmdKey(tool, args)] = check.CommandResult{Path: `C:\Windows\System32\WindowsPowerShell\v1.0\powershell.exe`, ExitCode: code, Stdout: stdout}
}

// Host implements check.Source.
func (f *Fake) Host(context.Context) (check.Host, error) {
	return check.Host{OS: "windows", Arch: "amd64"}, nil
}

// Command implements check.Source.
func (f *Fake) Command(_ context.Context, tool string, args ...string) (check.CommandResult, error) {
	k := cmdKey(tool, args)
	if err, ok := f.cmdErr[k]; ok {
		return check.CommandResult{}, err
	}
	if res, ok := f.cmds[k]; ok {
		return res, nil
	}
	return check.CommandResult{}, fmt.Errorf("command %s: %w", tool, check.ErrNotRecorded)
}

// ReadFile implements check.Source.
func (f *Fake) ReadFile(context.Context, string, int64) ([]byte, error) {
	return nil, check.ErrUnsupported
}

// ReadDir implements check.Source.
func (f *Fake) ReadDir(context.Context, string) ([]string, error) {
	return nil, check.ErrUnsupported
}

// Stat implements check.Source.
func (f *Fake) Stat(context.Context, string) (check.FileInfo, error) {
	return check.FileInfo{}, check.ErrUnsupported
}

// Registry implements check.Source.
func (f *Fake) Registry(_ context.Context, key, name string) (check.RegistryValue, error) {
	for k, err := range f.RegistryErr {
		if strings.EqualFold(k, key) {
			return check.RegistryValue{}, err
		}
	}
	for k, vals := range f.Reg {
		if !strings.EqualFold(k, key) {
			continue
		}
		if name == "" {
			return check.RegistryValue{}, nil
		}
		for n, v := range vals {
			if strings.EqualFold(n, name) {
				return v, nil
			}
		}
		return check.RegistryValue{}, fmt.Errorf("registry %s\\%s: %w", key, name, fs.ErrNotExist)
	}
	return check.RegistryValue{}, fmt.Errorf("registry %s: %w", key, fs.ErrNotExist)
}

// WMI implements check.Source.
func (f *Fake) WMI(_ context.Context, namespace, query string) ([]map[string]any, error) {
	k := wmiKey(namespace, query)
	if err, ok := f.wmiErr[k]; ok {
		return nil, err
	}
	if rows, ok := f.wmi[k]; ok {
		return rows, nil
	}
	return nil, fmt.Errorf("wmi %s: %s: %w", namespace, query, check.ErrNotRecorded)
}

// Nftables implements check.Source.
func (f *Fake) Nftables(context.Context) (check.NftRuleset, error) {
	return check.NftRuleset{}, check.ErrUnsupported
}

// ReadJSON decodes a testdata JSON file into v, numbers as json.Number
// (as a replayed bundle decodes them).
func ReadJSON(t testing.TB, path string, v any) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := DecodeJSON(data, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

// DecodeJSON decodes data into v with numbers as json.Number.
func DecodeJSON(data []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	return dec.Decode(v)
}

// Interfaces implements check.Source.
func (f *Fake) Interfaces(context.Context) ([]check.Interface, error) {
	if f.Ifaces == nil {
		return nil, fmt.Errorf("interfaces: %w", check.ErrNotRecorded)
	}
	return f.Ifaces, nil
}

// Listening implements check.Source.
func (f *Fake) Listening(context.Context) ([]check.Socket, error) {
	if f.Sockets == nil {
		return nil, fmt.Errorf("sockets: %w", check.ErrNotRecorded)
	}
	return f.Sockets, nil
}
