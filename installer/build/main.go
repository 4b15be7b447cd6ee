// Command build makes Ward's packages in dist/: for the agent a .deb and an
// .rpm (nfpm) with a systemd unit and maintainer scripts, an MSI (wixl,
// signed with osslsigncode when -sign-cert is given), and a macOS payload
// with the pkgbuild/productbuild recipe (a flat .pkg needs macOS tools);
// for the collector a .deb and an .rpm with its systemd service.
//
//	go run ./installer/build -version 1.2.0 [-out dist] [-arch amd64] [-formats deb,rpm,msi,macos,collector-deb,collector-rpm]
//
// Files it packages live next to it: linux/, windows/, macos/, collector/.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"strings"
)

func main() {
	var o Options
	var formats string
	flag.StringVar(&o.Version, "version", "0.0.0", "package version (semver: 1.2.3 or 1.2.3-rc.1)")
	flag.StringVar(&o.Out, "out", "", "output directory (default: dist/ in the repository)")
	flag.StringVar(&o.Arch, "arch", "amd64", "architecture: amd64 or arm64")
	flag.StringVar(&formats, "formats", "deb,rpm,msi,macos,collector-deb,collector-rpm", "what to build")
	flag.StringVar(&o.SignCert, "sign-cert", os.Getenv("WARD_SIGN_CERT"), "code-signing certificate (PEM or SPC) for the MSI; unsigned when empty")
	flag.StringVar(&o.SignKey, "sign-key", os.Getenv("WARD_SIGN_KEY"), "private key for -sign-cert")
	flag.Parse()
	o.Formats = strings.Split(formats, ",")
	o.Log = slog.New(slog.NewTextHandler(os.Stderr, nil))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	paths, err := Build(ctx, o)
	if err != nil {
		fmt.Fprintf(os.Stderr, "build: %v\n", err)
		os.Exit(1)
	}
	for _, p := range paths {
		fmt.Println(p)
	}
}
