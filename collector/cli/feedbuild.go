package cli

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/wardhq/ward/feed"
	"github.com/wardhq/ward/feed/build"
)

func init() { feedSubcommands = append(feedSubcommands, (*app).feedBuildCommand) }

// feedBuildCommand is "ward-collector feed build": a feed from public
// source files (docs/feed.md, "Building a feed"). It reads files only.
func (a *app) feedBuildCommand() *cobra.Command {
	var (
		sofa, out, generatedAt string
		cvrf, eol, describe    []string
		serial                 uint64
		valid                  = build.DefaultValid
	)
	cmd := &cobra.Command{
		Use:   "build --eol PRODUCT=FILE... [--sofa FILE] [--cvrf FILE...] --out FILE",
		Short: "Build an unsigned release feed from SOFA, MSRC CVRF and endoflife.date files",
		Long: "Build an unsigned release feed (ward-release-feed/1) from the files given: SOFA's macOS data feed (--sofa),\n" +
			"MSRC's monthly CVRF documents in JSON form (--cvrf, repeatable) and endoflife.date products (--eol PRODUCT=FILE,\n" +
			"repeatable; its API JSON or the product's file from its repository; products: " + strings.Join(build.EOLProducts(), ", ") + ").\n" +
			"--describe FILE=TEXT says what a file is and when it was fetched (no addresses); the feed's sources carry it.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if out == "" {
				return inputError{fmt.Errorf("--out is required")}
			}
			if len(eol) == 0 {
				return inputError{fmt.Errorf("at least one --eol PRODUCT=FILE is required (the lines and their ends of life come from endoflife.date)")}
			}
			notes := map[string]string{}
			for _, d := range describe {
				file, text, ok := strings.Cut(d, "=")
				if !ok || strings.TrimSpace(text) == "" {
					return inputError{fmt.Errorf("--describe %q: want FILE=TEXT", d)}
				}
				notes[file] = text
			}
			gen := a.now().UTC()
			if generatedAt != "" {
				t, err := time.Parse(time.RFC3339, generatedAt)
				if err != nil {
					return inputError{fmt.Errorf("--generated-at %q: want an RFC 3339 time", generatedAt)}
				}
				gen = t
			}
			var inputs []build.Input
			read := func(kind build.Kind, product, file, what string) error {
				data, err := os.ReadFile(file)
				if err != nil {
					return inputError{err}
				}
				desc := notes[file]
				delete(notes, file)
				if desc == "" {
					desc = fmt.Sprintf("%s, file %s, read %s", what, filepath.Base(file), gen.Format(time.DateOnly))
				}
				inputs = append(inputs, build.Input{Kind: kind, Product: product, Description: desc, Data: data})
				return nil
			}
			for _, e := range eol {
				product, file, ok := strings.Cut(e, "=")
				if !ok || product == "" || file == "" {
					return inputError{fmt.Errorf("--eol %q: want PRODUCT=FILE", e)}
				}
				if err := read(build.EndOfLife, product, file, "endoflife.date product "+product); err != nil {
					return err
				}
			}
			if sofa != "" {
				if err := read(build.SOFA, "", sofa, "SOFA macOS data feed"); err != nil {
					return err
				}
			}
			for _, c := range cvrf {
				if err := read(build.CVRF, "", c, "MSRC CVRF document (JSON)"); err != nil {
					return err
				}
			}
			for file := range notes {
				return inputError{fmt.Errorf("--describe %s: not a file given to --sofa, --cvrf or --eol", file)}
			}
			f, err := build.Build(inputs, build.Options{GeneratedAt: gen, Serial: serial, Valid: valid})
			if err != nil {
				return inputError{err}
			}
			var b bytes.Buffer
			if err := feed.Encode(&b, f); err != nil {
				return err
			}
			if err := writeFeedBuildFile(out, b.Bytes()); err != nil {
				return err
			}
			releases := 0
			for _, l := range f.Lines {
				releases += len(l.Releases)
			}
			fmt.Fprintf(a.stdout, "wrote %s: serial %d, %d lines, %d releases, %d sources, expires %s\n",
				out, f.Serial, len(f.Lines), releases, len(f.Sources), f.ExpiresAt.Format(time.RFC3339))
			return nil
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&sofa, "sofa", "", "SOFA's macOS data feed (macos_data_feed.json)")
	fl.StringArrayVar(&cvrf, "cvrf", nil, "an MSRC CVRF document in JSON form (repeatable)")
	fl.StringArrayVar(&eol, "eol", nil, "an endoflife.date product as PRODUCT=FILE (repeatable)")
	fl.StringArrayVar(&describe, "describe", nil, "FILE=TEXT: what a source file is and when it was fetched (repeatable)")
	fl.Uint64Var(&serial, "serial", 0, "the feed's serial (default: generated_at as YYYYMMDDHHMM)")
	fl.StringVar(&generatedAt, "generated-at", "", "the feed's generated_at, RFC 3339 (default: now)")
	fl.Var(lifetimeFlag{d: &valid, min: time.Minute}, "valid", "how long the feed is valid after generated_at, in days (180d) or as a duration")
	fl.StringVar(&out, "out", "", "the feed file to write")
	return cmd
}

// writeFeedBuildFile writes data to path through a temporary file in its
// directory, so a reader never sees half a feed.
func writeFeedBuildFile(path string, data []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Chmod(tmp.Name(), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}
