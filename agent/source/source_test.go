package source

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/wardhq/ward/agent/check"
)

func TestLiveCommandAllowList(t *testing.T) {
	l := &Live{Tools: map[string][]string{"missing": {"/nonexistent/tool"}}, Timeout: time.Second, MaxOutput: 1024}
	if _, err := l.Command(context.Background(), "rm", "-rf", "/"); !errors.Is(err, check.ErrNotAllowed) {
		t.Errorf("not allow-listed tool: err = %v, want ErrNotAllowed", err)
	}
	if _, err := l.Command(context.Background(), "missing"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("absent tool: err = %v, want fs.ErrNotExist", err)
	}
}

func TestLiveCommandExitOutputAndCap(t *testing.T) {
	sh := "/bin/sh"
	if _, err := os.Stat(sh); err != nil {
		t.Fatal("no /bin/sh")
	}
	l := &Live{Tools: map[string][]string{"sh": {sh}}, Timeout: 5 * time.Second, MaxOutput: 8}
	res, err := l.Command(context.Background(), "sh", "-c", "printf 0123456789abcdef; printf oops >&2; exit 7")
	if err != nil {
		t.Fatal(err)
	}
	if res.ExitCode != 7 || string(res.Stdout) != "01234567" || string(res.Stderr) != "oops" || !res.Truncated || res.Path != sh {
		t.Errorf("got exit %d stdout %q stderr %q truncated %v path %q", res.ExitCode, res.Stdout, res.Stderr, res.Truncated, res.Path)
	}
	// The environment is fixed: a C locale, no inherited variables.
	t.Setenv("WARD_SECRET", "leak")
	res, err = l.Command(context.Background(), "sh", "-c", "echo $LC_ALL:$WARD_SECRET")
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.TrimSpace(string(res.Stdout)); got != "C:" {
		t.Errorf("env = %q, want C locale and nothing inherited", got)
	}
}

func TestLiveCommandTimeout(t *testing.T) {
	l := &Live{Tools: map[string][]string{"sh": {"/bin/sh"}}, Timeout: 100 * time.Millisecond, MaxOutput: 1024}
	_, err := l.Command(context.Background(), "sh", "-c", "sleep 10")
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("err = %v, want DeadlineExceeded", err)
	}
}

func TestLiveFilesUnderRoot(t *testing.T) {
	root := t.TempDir()
	if err := os.MkdirAll(filepath.Join(root, "etc"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "etc", "os-release"), []byte("ID=debian\nVERSION_ID=12\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	l := &Live{Root: root}
	ctx := context.Background()
	data, err := l.ReadFile(ctx, "/etc/os-release", 5)
	if err != nil || string(data) != "ID=de" {
		t.Errorf("ReadFile limit 5 = %q, %v", data, err)
	}
	names, err := l.ReadDir(ctx, "/etc")
	if err != nil || len(names) != 1 || names[0] != "os-release" {
		t.Errorf("ReadDir = %v, %v", names, err)
	}
	if _, err := l.Stat(ctx, "/etc/nope"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Stat missing: %v", err)
	}
}

// recordAll drives every Source method through a Recorder.
func recordAll(t *testing.T, src check.Source) *Recorded {
	t.Helper()
	ctx := context.Background()
	rec, err := NewRecorder(ctx, src)
	if err != nil {
		t.Fatal(err)
	}
	rec.Command(ctx, "tool", "-a", "b")
	rec.Command(ctx, "absent")
	rec.ReadFile(ctx, "/etc/os-release", 100)
	rec.ReadFile(ctx, "/nope", 100)
	rec.ReadDir(ctx, "/boot")
	rec.Stat(ctx, "/var/run/reboot-required")
	rec.Registry(ctx, `SOFTWARE\Microsoft\Windows NT\CurrentVersion`, "UBR")
	rec.WMI(ctx, `ROOT\CIMV2`, "SELECT State FROM Win32_Service")
	rec.Nftables(ctx)
	rec.Interfaces(ctx)
	rec.Listening(ctx)
	return rec.Recorded()
}

func fixtureSource() *Recorded {
	src := NewRecorded(check.Host{OS: "windows", Arch: "arm64"})
	src.Add(Record{Kind: KindCommand, Tool: "tool", Args: []string{"-a", "b"}, Path: "/usr/bin/tool", ExitCode: 3,
		Stdout: []byte("out\x00\xff binary"), Stderr: []byte("warn")})
	src.AddError(Record{Kind: KindCommand, Tool: "absent"}, fs.ErrNotExist)
	src.AddFile("/etc/os-release", []byte("ID=debian\n"))
	src.AddError(Record{Kind: KindFile, Path: "/nope"}, fs.ErrPermission)
	src.Add(Record{Kind: KindDir, Path: "/boot", Names: []string{"vmlinuz-6.1.0-25-amd64"}})
	mt := time.Date(2026, 9, 22, 4, 55, 0, 0, time.UTC)
	src.Add(Record{Kind: KindStat, Path: "/var/run/reboot-required", Info: &check.FileInfo{Size: 32, ModTime: mt}})
	ubr := uint64(4169)
	src.Add(Record{Kind: KindRegistry, Key: `SOFTWARE\Microsoft\Windows NT\CurrentVersion`, Name: "UBR", Value: &check.RegistryValue{Integer: &ubr}})
	src.Add(Record{Kind: KindWMI, Namespace: `ROOT\CIMV2`, Query: "SELECT State FROM Win32_Service",
		Rows: []map[string]any{{"State": "Running", "ProcessId": 1234}}})
	src.Add(Record{Kind: KindNftables, Ruleset: fixtureRuleset()})
	src.Add(Record{Kind: KindInterfaces, Interfaces: []check.Interface{
		{Name: "lo", Index: 1, Loopback: true, Up: true, Type: 772, Addrs: []string{"127.0.0.1/8", "::1/128"}},
		{Name: "eth0", Index: 2, Up: true, Type: 1, Addrs: []string{"192.168.1.20/24"}},
	}})
	src.AddError(Record{Kind: KindListening}, fmt.Errorf("sockets: %w", fs.ErrPermission))
	return src
}

// hx decodes a hex literal in a test table.
func hx(s string) check.HexBytes {
	b, err := hex.DecodeString(s)
	if err != nil {
		panic(err)
	}
	return b
}

// fixtureRuleset sets every field of the ruleset IR, so a round trip that
// loses one shows.
func fixtureRuleset() *check.NftRuleset {
	prio := int32(-150)
	return &check.NftRuleset{Tables: []check.NftTable{
		{Family: "inet", Name: "filter", Chains: []check.NftChain{
			{Name: "input", Type: "filter", Hook: "input", Priority: &prio, Policy: "drop", Rules: []check.NftRule{
				{Exprs: []check.NftExpr{
					{Kind: "meta", Key: "l4proto", Dreg: 1},
					{Kind: "cmp", Sreg: 1, Op: "eq", Data: check.HexBytes{6}},
					{Kind: "payload", Base: "th", Offset: 2, Len: 2, Dreg: 9},
					{Kind: "range", Sreg: 9, Op: "neq", Data: check.HexBytes{0, 22}, DataTo: check.HexBytes{0, 25}},
					{Kind: "bitwise", Sreg: 1, Dreg: 1, Len: 4, Mask: check.HexBytes{6, 0, 0, 0}, Xor: check.HexBytes{0, 0, 0, 0}},
					{Kind: "lookup", Sreg: 1, Set: "__set0", Invert: true},
					{Kind: "fib", Dreg: 1, Flags: []string{"daddr"}, Result: "type"},
					{Kind: "limit", Over: true},
					{Kind: "match", Name: "multiport", Data: check.HexBytes{1, 2}},
					{Kind: "verdict", Verdict: "jump", Chain: "web"},
				}},
			}},
			{Name: "web", Rules: []check.NftRule{}},
		}, Sets: []check.NftSet{
			{Name: "__set0", Anonymous: true, Interval: true, KeyLen: 2, Elements: []check.NftElement{
				{Key: check.HexBytes{0, 0}, IntervalEnd: true}, {Key: check.HexBytes{0, 80}}, {Key: check.HexBytes{0, 81}, IntervalEnd: true},
			}},
			{Name: "pairs", Interval: true, Concat: true, KeyLen: 8, Elements: []check.NftElement{
				{Key: hx("0a00000000160000"), KeyEnd: hx("0affffff00190000")},
			}},
			{Name: "vm", KeyLen: 2, Map: true, DataType: "verdict", Elements: []check.NftElement{
				{Key: check.HexBytes{}, Verdict: "drop"}, {Key: check.HexBytes{0, 22}, Verdict: "goto", Chain: "ssh"},
			}},
			{Name: "dm", KeyLen: 4, Map: true, DataType: "ipv4_addr", Elements: []check.NftElement{
				{Key: check.HexBytes{10, 0, 0, 1}, Data: check.HexBytes{192, 168, 0, 1}},
			}},
		}},
		{Family: "netdev", Name: "edge", Chains: []check.NftChain{
			{Name: "ingress", Type: "filter", Hook: "ingress", Priority: &prio, Policy: "accept", Devices: []string{"eth0", "wl*"}, Rules: []check.NftRule{}},
		}},
		{Family: "ip", Name: "filter", Origin: "iptables-save", Chains: []check.NftChain{
			{Name: "INPUT", Type: "filter", Hook: "input", Policy: "accept", Rules: []check.NftRule{
				{Exprs: []check.NftExpr{{Kind: "counter"}}, Text: "-A INPUT -j ACCEPT"},
			}},
		}},
	}}
}

// TestBundleRoundTrip records every kind of read, writes a bundle as a
// tarball and as a directory, and replays both: every answer, error class
// included, must come back the same.
func TestBundleRoundTrip(t *testing.T) {
	recorded := recordAll(t, fixtureSource())
	m := Manifest{CreatedAt: time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC), AgentVersion: "test", Host: check.Host{OS: "windows", Arch: "arm64"}}
	dir := t.TempDir()
	tarball := filepath.Join(dir, "b.tar.gz")
	var buf bytes.Buffer
	if err := WriteBundle(&buf, m, recorded); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(tarball, buf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	unpacked := filepath.Join(dir, "unpacked")
	if err := WriteBundleDir(unpacked, m, recorded); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{tarball, unpacked} {
		t.Run(filepath.Base(p), func(t *testing.T) {
			gotM, replay, err := OpenBundle(p)
			if err != nil {
				t.Fatal(err)
			}
			if gotM.Host.OS != "windows" || gotM.AgentVersion != "test" || !gotM.CreatedAt.Equal(m.CreatedAt) {
				t.Errorf("manifest = %+v", gotM)
			}
			ctx := context.Background()
			res, err := replay.Command(ctx, "tool", "-a", "b")
			if err != nil || res.ExitCode != 3 || string(res.Stdout) != "out\x00\xff binary" || string(res.Stderr) != "warn" {
				t.Errorf("command = %+v, %v", res, err)
			}
			if _, err := replay.Command(ctx, "absent"); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("absent command err = %v, want fs.ErrNotExist", err)
			}
			if _, err := replay.Command(ctx, "tool", "-a"); !errors.Is(err, check.ErrNotRecorded) {
				t.Errorf("other argv err = %v, want ErrNotRecorded", err)
			}
			if data, err := replay.ReadFile(ctx, "/etc/os-release", 100); err != nil || string(data) != "ID=debian\n" {
				t.Errorf("file = %q, %v", data, err)
			}
			if _, err := replay.ReadFile(ctx, "/nope", 100); !errors.Is(err, fs.ErrPermission) {
				t.Errorf("file err = %v, want fs.ErrPermission", err)
			}
			if names, _ := replay.ReadDir(ctx, "/boot"); len(names) != 1 {
				t.Errorf("dir = %v", names)
			}
			if fi, err := replay.Stat(ctx, "/var/run/reboot-required"); err != nil || fi.Size != 32 || fi.ModTime.Year() != 2026 {
				t.Errorf("stat = %+v, %v", fi, err)
			}
			if v, err := replay.Registry(ctx, `software\microsoft\windows nt\currentversion`, "ubr"); err != nil || v.Integer == nil || *v.Integer != 4169 {
				t.Errorf("registry = %+v, %v", v, err)
			}
			rows, err := replay.WMI(ctx, `ROOT\CIMV2`, "SELECT State FROM Win32_Service")
			if err != nil || len(rows) != 1 {
				t.Fatalf("wmi = %v, %v", rows, err)
			}
			if pid, ok := check.RowInt(rows[0], "ProcessId"); !ok || pid != 1234 {
				t.Errorf("wmi ProcessId = %v %v", pid, ok)
			}
			rs, err := replay.Nftables(ctx)
			if err != nil || !reflect.DeepEqual(&rs, fixtureRuleset()) {
				got, _ := json.Marshal(rs)
				want, _ := json.Marshal(fixtureRuleset())
				t.Errorf("nftables = %s, %v\nwant %s", got, err, want)
			}
			ifs, err := replay.Interfaces(ctx)
			if err != nil || len(ifs) != 2 || ifs[0].Type != 772 || ifs[1].Addrs[0] != "192.168.1.20/24" {
				t.Errorf("interfaces = %+v, %v", ifs, err)
			}
			if socks, err := replay.Listening(ctx); !errors.Is(err, fs.ErrPermission) {
				t.Errorf("listening = %v, %v, want fs.ErrPermission", socks, err)
			}
		})
	}
}

// TestBundleBeforeSockets replays a bundle written before interfaces and
// sockets were recorded, whose ruleset is in the old reduced form: those
// reads fail with ErrNotRecorded, the rest still replays.
func TestBundleBeforeSockets(t *testing.T) {
	dir := t.TempDir()
	manifest := `{"format":1,"created_at":"2026-05-01T10:00:00Z","agent_version":"0.4.0","host":{"os":"linux","arch":"amd64"},
	"records":[
	  {"kind":"file","path":"/etc/os-release","stdout_file":"data/000-etc-os-release.out"},
	  {"kind":"nftables","ruleset":{"tables":[{"family":"inet","name":"filter","chains":[{"name":"input","type":"filter","hook":"input","priority":0,"policy":"drop",
	    "rules":[{"verdict":"accept","matches":2,"exprs":["meta","cmp","verdict"]}]}]}]}}
	]}`
	if err := os.MkdirAll(filepath.Join(dir, "data"), 0o755); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, "manifest.json"), []byte(manifest), 0o644)
	os.WriteFile(filepath.Join(dir, "data", "000-etc-os-release.out"), []byte("ID=debian\n"), 0o644)
	_, replay, err := OpenBundle(dir)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if data, err := replay.ReadFile(ctx, "/etc/os-release", 100); err != nil || string(data) != "ID=debian\n" {
		t.Errorf("file = %q, %v", data, err)
	}
	if rs, err := replay.Nftables(ctx); !errors.Is(err, check.ErrNotRecorded) || !strings.Contains(err.Error(), "reduced form") {
		t.Errorf("reduced ruleset = %+v, %v, want ErrNotRecorded", rs, err)
	}
	if ifs, err := replay.Interfaces(ctx); !errors.Is(err, check.ErrNotRecorded) {
		t.Errorf("interfaces = %v, %v, want ErrNotRecorded", ifs, err)
	}
	if socks, err := replay.Listening(ctx); !errors.Is(err, check.ErrNotRecorded) {
		t.Errorf("listening = %v, %v, want ErrNotRecorded", socks, err)
	}
	// Written again, the refused ruleset stays refused.
	var buf bytes.Buffer
	if err := WriteBundle(&buf, Manifest{Host: check.Host{OS: "linux"}}, replay); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "again.tar.gz")
	os.WriteFile(p, buf.Bytes(), 0o600)
	if _, again, err := OpenBundle(p); err != nil {
		t.Fatal(err)
	} else if _, err := again.Nftables(ctx); !errors.Is(err, check.ErrNotRecorded) {
		t.Errorf("rewritten: %v, want ErrNotRecorded", err)
	}
}

func TestOpenBundleRejectsBadInput(t *testing.T) {
	dir := t.TempDir()
	cases := map[string]string{
		"not-gzip":                     "hello",
		"no-host.d/manifest.json":      `{"format":1,"records":[]}`,
		"future.d/manifest.json":       `{"format":99,"host":{"os":"linux"}}`,
		"missing-data.d/manifest.json": `{"format":1,"host":{"os":"linux"},"records":[{"kind":"file","path":"/x","stdout_file":"data/000.out"}]}`,
		"garbage.d/manifest.json":      `{"format":1,"host":`,
	}
	for name, content := range cases {
		p := filepath.Join(dir, name)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		open := p
		if strings.Contains(name, ".d/") {
			open = filepath.Dir(p)
		}
		if _, _, err := OpenBundle(open); err == nil {
			t.Errorf("%s: OpenBundle accepted a bad bundle", name)
		}
	}
}

func TestMergeEnv(t *testing.T) {
	got := mergeEnv([]string{"LC_ALL=C", "LANG=C", "PATH=/bin"}, []string{"LC_ALL=C.UTF-8", "DISPLAY=:0"})
	want := []string{"LANG=C", "PATH=/bin", "LC_ALL=C.UTF-8", "DISPLAY=:0"}
	if !slices.Equal(got, want) {
		t.Errorf("mergeEnv = %q, want %q", got, want)
	}
	if got := mergeEnv([]string{"A=1"}, nil); !slices.Equal(got, []string{"A=1"}) {
		t.Errorf("no extra: %q", got)
	}
}
