package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/goreleaser/nfpm/v2"
	"github.com/goreleaser/nfpm/v2/deb"
	"github.com/goreleaser/nfpm/v2/files"
	"github.com/goreleaser/nfpm/v2/rpm"
)

// collectorVersionFlag sets the collector's version (collector/cli.Version).
const collectorVersionFlag = "github.com/wardhq/ward/collector/cli.Version"

// collectorBinary builds a static ward-collector for linux/arch once.
func (b *builder) collectorBinary(ctx context.Context) (string, error) {
	key := "collector/linux/" + b.o.Arch
	if p, ok := b.built[key]; ok {
		return p, nil
	}
	out := filepath.Join(b.tmp, "ward-collector-linux-"+b.o.Arch)
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath",
		"-ldflags", "-s -w -X "+collectorVersionFlag+"="+b.o.Version, "-o", out, "./collector/cmd/ward-collector")
	cmd.Dir = b.repo
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+b.o.Arch)
	if msg, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build ward-collector: %w: %s", err, msg)
	}
	if b.built == nil {
		b.built = map[string]string{}
	}
	b.built[key] = out
	return out, nil
}

// collectorScript returns a collector maintainer script with @VERSION@
// filled in.
func (b *builder) collectorScript(name string) (string, error) {
	raw, err := os.ReadFile(filepath.Join(b.res, "collector", name))
	if err != nil {
		return "", err
	}
	p := filepath.Join(b.tmp, "collector-"+name)
	return p, os.WriteFile(p, []byte(strings.ReplaceAll(string(raw), "@VERSION@", b.o.Version)), 0o755)
}

// collectorLinux builds the collector's deb or rpm (format "deb" or
// "rpm"). The data directory is not a package file: the postinst makes it
// owned by the ward-collector user, so that no package operation ever
// changes its owner, mode or contents; the env file is a configuration
// file, kept on upgrade.
func (b *builder) collectorLinux(ctx context.Context, format string) (string, error) {
	bin, err := b.collectorBinary(ctx)
	if err != nil {
		return "", err
	}
	scripts := map[string]string{}
	for _, s := range []string{"preinst", "postinst", "prerm", "postrm"} {
		if scripts[s], err = b.collectorScript(s); err != nil {
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
	res := filepath.Join(b.res, "collector")
	info := &nfpm.Info{
		Name:        "ward-collector",
		Arch:        b.o.Arch,
		Platform:    "linux",
		Version:     b.o.Version,
		Section:     "admin",
		Priority:    "optional",
		Maintainer:  "Ward maintainers <ward@wardhq.org>",
		Vendor:      "Ward",
		Homepage:    "https://github.com/wardhq/ward",
		License:     "Apache-2.0",
		Description: "Ward collector\nEnrols Ward agents, stores their compliance reports (SQLite or PostgreSQL)\nand serves the dashboard, as the systemd service ward-collector.",
		MTime:       mtime,
		Overridables: nfpm.Overridables{
			Contents: files.Contents{
				{Source: bin, Destination: "/usr/bin/ward-collector", FileInfo: mode(0o755)},
				{Source: filepath.Join(res, "ward-collector.service"), Destination: unitDir + "/ward-collector.service", FileInfo: mode(0o644)},
				// 0600: a postgres:// --store may carry a password.
				{Source: filepath.Join(res, "ward-collector.env"), Destination: "/etc/ward-collector/ward-collector.env", Type: files.TypeConfigNoReplace, FileInfo: mode(0o600)},
				{Destination: "/etc/ward-collector", Type: files.TypeDir, FileInfo: mode(0o755)},
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
