package main

// This build tool runs programs (go build, wixl, osslsigncode) on the
// developer's or CI's machine. It is not part of the agent, so the agent's
// rule that only agent/source runs programs does not bind it.

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"text/template"
	"time"

	"github.com/goreleaser/nfpm/v2"
	"github.com/goreleaser/nfpm/v2/deb"
	"github.com/goreleaser/nfpm/v2/files"
	"github.com/goreleaser/nfpm/v2/rpm"
)

// Options is one build.
type Options struct {
	Version string
	// Out is the output directory (default <repo>/dist).
	Out string
	// Arch is the Go architecture of the Linux and Windows packages.
	Arch string
	// Formats: deb, rpm, msi, macos (the agent's), collector-deb,
	// collector-rpm.
	Formats []string
	// SignCert and SignKey sign the MSI with osslsigncode.
	SignCert, SignKey string
	Log               *slog.Logger
}

var semver = regexp.MustCompile(`^(\d+)\.(\d+)\.(\d+)(-[0-9A-Za-z.-]+)?$`)

// Build writes the packages and returns their paths.
func Build(ctx context.Context, o Options) ([]string, error) {
	m := semver.FindStringSubmatch(o.Version)
	if m == nil {
		return nil, fmt.Errorf("version %q: want MAJOR.MINOR.PATCH[-PRE]", o.Version)
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	repo, err := repoRoot()
	if err != nil {
		return nil, err
	}
	if o.Out == "" {
		o.Out = filepath.Join(repo, "dist")
	}
	if err := os.MkdirAll(o.Out, 0o755); err != nil {
		return nil, err
	}
	tmp, err := os.MkdirTemp("", "ward-build-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	b := &builder{o: o, repo: repo, res: filepath.Join(repo, "installer"), tmp: tmp,
		msiVersion: m[1] + "." + m[2] + "." + m[3]}
	var out []string
	for _, f := range o.Formats {
		var paths []string
		switch strings.TrimSpace(f) {
		case "deb", "rpm":
			var p string
			p, err = b.linux(ctx, f)
			paths = []string{p}
		case "msi":
			var p string
			p, err = b.msi(ctx)
			paths = []string{p}
		case "macos":
			paths, err = b.macos(ctx)
		case "collector-deb", "collector-rpm":
			var p string
			p, err = b.collectorLinux(ctx, strings.TrimPrefix(f, "collector-"))
			paths = []string{p}
		default:
			err = fmt.Errorf("unknown format %q", f)
		}
		if err != nil {
			return out, fmt.Errorf("%s: %w", f, err)
		}
		for _, p := range paths {
			o.Log.Info("built", "package", p)
		}
		out = append(out, paths...)
	}
	return out, nil
}

type builder struct {
	o              Options
	repo, res, tmp string
	msiVersion     string
	built          map[string]string
}

// repoRoot finds the Ward repository from the working directory up.
func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "agent", "cmd", "ward-agent")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("run from inside the Ward repository")
		}
		dir = parent
	}
}

// agent builds ward-agent for goos/goarch once.
func (b *builder) agent(ctx context.Context, goos, goarch string) (string, error) {
	key := goos + "/" + goarch
	if p, ok := b.built[key]; ok {
		return p, nil
	}
	name := "ward-agent-" + goos + "-" + goarch
	if goos == "windows" {
		name += ".exe"
	}
	out := filepath.Join(b.tmp, name)
	// Stripped (-s -w) and without build paths: the release binary that
	// agent/cli's memory figures are measured on.
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath",
		"-ldflags", "-s -w -X main.version="+b.o.Version, "-o", out, "./agent/cmd/ward-agent")
	cmd.Dir = b.repo
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS="+goos, "GOARCH="+goarch)
	if msg, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build %s: %w: %s", key, err, msg)
	}
	if b.built == nil {
		b.built = map[string]string{}
	}
	b.built[key] = out
	return out, nil
}

// script returns a maintainer script with @VERSION@ filled in.
func (b *builder) script(name string) (string, error) {
	raw, err := os.ReadFile(filepath.Join(b.res, "linux", name))
	if err != nil {
		return "", err
	}
	p := filepath.Join(b.tmp, name)
	return p, os.WriteFile(p, bytes.ReplaceAll(raw, []byte("@VERSION@"), []byte(b.o.Version)), 0o755)
}

// linux builds the deb or rpm.
func (b *builder) linux(ctx context.Context, format string) (string, error) {
	bin, err := b.agent(ctx, "linux", b.o.Arch)
	if err != nil {
		return "", err
	}
	scripts := map[string]string{}
	for _, s := range []string{"preinst", "postinst", "prerm", "postrm"} {
		if scripts[s], err = b.script(s); err != nil {
			return "", err
		}
	}
	unitDir := "/lib/systemd/system"
	if format == "rpm" {
		unitDir = "/usr/lib/systemd/system"
	}
	mtime := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	mode := func(m os.FileMode) *files.ContentFileInfo {
		return &files.ContentFileInfo{Owner: "root", Group: "root", Mode: m, MTime: mtime}
	}
	info := &nfpm.Info{
		Name:        "ward-agent",
		Arch:        b.o.Arch,
		Platform:    "linux",
		Version:     b.o.Version,
		Section:     "admin",
		Priority:    "optional",
		Maintainer:  "Ward maintainers <ward@wardhq.org>",
		Vendor:      "Ward",
		Homepage:    "https://github.com/wardhq/ward",
		License:     "Apache-2.0",
		Description: "Ward endpoint compliance agent\nChecks disk encryption, patch level and firewall against policy, tells the\nperson at the keyboard what to fix, and reports to a Ward collector.",
		MTime:       mtime,
		Overridables: nfpm.Overridables{
			Contents: files.Contents{
				{Source: bin, Destination: "/usr/bin/ward-agent", FileInfo: mode(0o755)},
				{Source: filepath.Join(b.res, "linux", "ward-agent.service"), Destination: unitDir + "/ward-agent.service", FileInfo: mode(0o644)},
				{Source: filepath.Join(b.res, "linux", "ward-notify.desktop"), Destination: "/etc/xdg/autostart/ward-notify.desktop", FileInfo: mode(0o644)},
				{Destination: "/etc/ward", Type: files.TypeDir, FileInfo: mode(0o755)},
				{Destination: "/var/lib/ward", Type: files.TypeDir, FileInfo: mode(0o700)},
			},
			Scripts: nfpm.Scripts{
				PreInstall: scripts["preinst"], PostInstall: scripts["postinst"],
				PreRemove: scripts["prerm"], PostRemove: scripts["postrm"],
			},
		},
	}
	var pkgr nfpm.Packager = deb.Default
	if format == "rpm" {
		pkgr = rpm.DefaultRPM
	}
	if err := nfpm.PrepareForPackager(info, format); err != nil {
		return "", err
	}
	info = nfpm.WithDefaults(info)
	if err := nfpm.Validate(info); err != nil {
		return "", err
	}
	out := filepath.Join(b.o.Out, pkgr.ConventionalFileName(info))
	return out, writeAtomic(out, func(w io.Writer) error { return pkgr.Package(info, w) })
}

// msi builds the Windows installer with wixl and signs it when asked.
func (b *builder) msi(ctx context.Context) (string, error) {
	wixl, err := exec.LookPath("wixl")
	if err != nil {
		return "", errors.New("wixl not found: apt-get install wixl msitools")
	}
	exe, err := b.agent(ctx, "windows", b.o.Arch)
	if err != nil {
		return "", err
	}
	tpl, err := template.ParseFiles(filepath.Join(b.res, "windows", "ward-agent.wxs"))
	if err != nil {
		return "", err
	}
	var wxs bytes.Buffer
	err = tpl.Execute(&wxs, map[string]string{
		"Version": b.msiVersion, "Exe": filepath.Base(exe), "ProductCode": productCode(b.o.Version),
	})
	if err != nil {
		return "", err
	}
	src := filepath.Join(b.tmp, "ward-agent.wxs")
	if err := os.WriteFile(src, wxs.Bytes(), 0o644); err != nil {
		return "", err
	}
	arch := map[string]string{"amd64": "x64", "arm64": "x64"}[b.o.Arch]
	out := filepath.Join(b.o.Out, fmt.Sprintf("ward-agent-%s-%s.msi", b.o.Version, b.o.Arch))
	unsigned := filepath.Join(b.tmp, "unsigned.msi")
	cmd := exec.CommandContext(ctx, wixl, "-a", arch, "-o", unsigned, src)
	cmd.Dir = b.tmp // wixl resolves File sources relative to here
	if msg, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("wixl: %w: %s", err, msg)
	}
	if b.o.SignCert != "" {
		signed := filepath.Join(b.tmp, "signed.msi")
		args := []string{"sign", "-certs", b.o.SignCert, "-key", b.o.SignKey, "-n", "Ward agent",
			"-i", "https://github.com/wardhq/ward", "-in", unsigned, "-out", signed}
		if msg, err := exec.CommandContext(ctx, "osslsigncode", args...).CombinedOutput(); err != nil {
			return "", fmt.Errorf("osslsigncode: %w: %s", err, msg)
		}
		unsigned = signed
	}
	return out, copyFile(unsigned, out)
}

// productCode is a stable MSI ProductCode per version (major upgrades need
// a new one per version).
func productCode(version string) string {
	h := sha256.Sum256([]byte("ward-agent msi " + version))
	h[6] = h[6]&0x0f | 0x50 // name-based
	h[8] = h[8]&0x3f | 0x80
	return strings.ToUpper(fmt.Sprintf("%x-%x-%x-%x-%x", h[0:4], h[4:6], h[6:8], h[8:10], h[10:16]))
}

// macos stages the pkg payload (binary, LaunchDaemon, LaunchAgent),
// scripts and the recipe as one tar.gz per architecture; build-pkg.sh turns
// it into a signed flat .pkg on a Mac.
func (b *builder) macos(ctx context.Context) ([]string, error) {
	var out []string
	for _, arch := range []string{"arm64", "amd64"} {
		bin, err := b.agent(ctx, "darwin", arch)
		if err != nil {
			return nil, err
		}
		stage := filepath.Join(b.tmp, "macos-"+arch)
		m := filepath.Join(b.res, "macos")
		for src, dst := range map[string]string{
			bin: "root/usr/local/bin/ward-agent",
			filepath.Join(m, "org.wardhq.ward.agent.plist"):  "root/Library/LaunchDaemons/org.wardhq.ward.agent.plist",
			filepath.Join(m, "org.wardhq.ward.notify.plist"): "root/Library/LaunchAgents/org.wardhq.ward.notify.plist",
			filepath.Join(m, "scripts", "preinstall"):        "scripts/preinstall",
			filepath.Join(m, "scripts", "postinstall"):       "scripts/postinstall",
			filepath.Join(m, "build-pkg.sh"):                 "build-pkg.sh",
		} {
			if err := copyFile(src, filepath.Join(stage, dst)); err != nil {
				return nil, err
			}
		}
		if err := os.WriteFile(filepath.Join(stage, "VERSION"), []byte(b.o.Version+"\n"), 0o644); err != nil {
			return nil, err
		}
		p := filepath.Join(b.o.Out, fmt.Sprintf("ward-agent-%s-macos-%s.tar.gz", b.o.Version, arch))
		cmd := exec.CommandContext(ctx, "tar", "-czf", p, "--owner=0", "--group=0", "-C", stage, ".")
		if msg, err := cmd.CombinedOutput(); err != nil {
			return nil, fmt.Errorf("tar: %w: %s", err, msg)
		}
		out = append(out, p)
	}
	return out, nil
}

// copyFile copies src to dst, keeping the executable bit.
func copyFile(src, dst string) error {
	st, err := os.Stat(src)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	perm := os.FileMode(0o644)
	if st.Mode()&0o100 != 0 {
		perm = 0o755
	}
	return writeAtomic(dst, func(w io.Writer) error {
		_, err := io.Copy(w, in)
		return err
	}, perm)
}

// writeAtomic writes a file through a temporary one in the same directory.
func writeAtomic(path string, write func(io.Writer) error, perm ...os.FileMode) error {
	f, err := os.CreateTemp(filepath.Dir(path), ".tmp-")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	if err := write(f); err != nil {
		f.Close()
		return err
	}
	mode := os.FileMode(0o644)
	if len(perm) > 0 {
		mode = perm[0]
	}
	if err := f.Chmod(mode); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(f.Name(), path)
}
