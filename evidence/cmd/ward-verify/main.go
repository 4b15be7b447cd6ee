// Command ward-verify checks a Ward evidence file offline: the
// signatures, the chains, the certificates against the CA, the policy
// documents' hashes, and the summary recomputed from the facts
// (docs/evidence.md). It needs no collector, database or network.
//
//	ward-verify FILE [--ca CA.pem] [--previous OLD.json] [--json] [--reports]
//
// With --previous, FILE must carry a consistency proof of the collector's
// evidence log from OLD's checkpoint: the collector did not rewrite the
// log between the two exports.
//
// Exit status: 0 verified (the summary is printed), 1 not verified (each
// problem is printed with its place), 2 usage or an unreadable file.
package main

import (
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/wardhq/ward/evidence"
)

func main() { os.Exit(run(os.Args[1:], os.Stdout, os.Stderr)) }

const usage = "usage: ward-verify FILE [--ca CA.pem] [--previous OLD.json] [--json] [--reports]"

func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("ward-verify", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintln(stderr, usage)
		fs.PrintDefaults()
	}
	caFile := fs.String("ca", "", "trust this CA (PEM, one or more certificates) instead of the file's own CA chain")
	asJSON := fs.Bool("json", false, "print the result as JSON")
	previous := fs.String("previous", "", "an earlier evidence file of the same collector: FILE's log must prove it extends OLD's checkpoint")
	reports := fs.Bool("reports", false, "list every report: what it signs and what the collector asserts")
	// The file may come before or after the flags.
	var files []string
	for {
		if err := fs.Parse(args); err != nil {
			return 2
		}
		if fs.NArg() == 0 {
			break
		}
		files = append(files, fs.Arg(0))
		args = fs.Args()[1:]
	}
	if len(files) != 1 {
		fmt.Fprintln(stderr, usage)
		return 2
	}
	var opts evidence.VerifyOptions
	if *caFile != "" {
		cas, err := readCA(*caFile)
		if err != nil {
			fmt.Fprintf(stderr, "ward-verify: %v\n", err)
			return 2
		}
		opts.CA = cas
	}
	f, err := readFile(files[0])
	if err != nil {
		fmt.Fprintf(stderr, "ward-verify: %v\n", err)
		return 2
	}
	if *previous != "" {
		if opts.Previous, err = readFile(*previous); err != nil {
			fmt.Fprintf(stderr, "ward-verify: --previous: %v\n", err)
			return 2
		}
	}
	res, err := evidence.Verify(f, opts)
	if err != nil && !errors.Is(err, evidence.ErrNotVerified) {
		fmt.Fprintf(stderr, "ward-verify: %v\n", err)
		return 2
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(struct {
			Verified bool `json:"verified"`
			*evidence.Result
		}{res.OK(), res}); err != nil {
			fmt.Fprintf(stderr, "ward-verify: %v\n", err)
			return 2
		}
	} else {
		printText(stdout, f, res, *reports)
	}
	if !res.OK() {
		return 1
	}
	return 0
}

func readFile(path string) (*evidence.File, error) {
	in, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer in.Close()
	f, err := evidence.Decode(in)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return f, nil
}

func readCA(path string) ([]*x509.Certificate, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var out []*x509.Certificate
	for {
		var b *pem.Block
		b, data = pem.Decode(data)
		if b == nil {
			break
		}
		if b.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		out = append(out, c)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s: no PEM certificate in it", path)
	}
	return out, nil
}

func printText(w io.Writer, f *evidence.File, res *evidence.Result, reports bool) {
	n := 0
	for _, d := range f.Devices {
		n += len(d.Reports)
	}
	if res.OK() {
		fmt.Fprintf(w, "VERIFIED %s: %d device(s), %d report(s), %s to %s\n", f.Format, len(f.Devices), n, stamp(f.From), stamp(f.To))
	} else {
		fmt.Fprintf(w, "NOT VERIFIED: %d problem(s)\n", len(res.Problems))
		for _, p := range res.Problems {
			fmt.Fprintf(w, "  %s\n", p)
		}
		fmt.Fprintln(w)
		fmt.Fprintln(w, "what the file claims, recomputed from its facts (not verified):")
	}
	fmt.Fprintf(w, "generated %s by %s (the collector's word)\n", stamp(f.GeneratedAt), f.GeneratedBy)
	fmt.Fprintf(w, "trust: %s\n", res.Trust)
	if l := f.Log; l != nil {
		fmt.Fprintf(w, "log: checkpoint of %d report(s) at %s, root %x", l.Checkpoint.Size, stamp(l.Checkpoint.At), l.Checkpoint.Root)
		if c := l.Consistency; c != nil {
			fmt.Fprintf(w, ", extends the log of %d report(s) with root %x", c.FromSize, c.FromRoot)
		}
		fmt.Fprintln(w)
	}
	fmt.Fprintf(w, "release feeds: %d\n", len(f.Feeds))
	for _, fd := range res.Feeds {
		fmt.Fprintf(w, "  %s: generated %s, expires %s, judged %d report(s)", fd.Place, stamp(fd.GeneratedAt), stamp(fd.ExpiresAt), fd.Reports)
		if fd.BuiltIn {
			fmt.Fprint(w, ", the collector's built-in feed")
		}
		fmt.Fprintln(w)
	}
	for i, ds := range res.Summary.Devices {
		fmt.Fprintln(w)
		fmt.Fprintf(w, "device %s", ds.DeviceID)
		if i < len(res.Devices) && res.Devices[i].Hostname != "" {
			fmt.Fprintf(w, " (hostname %q, the collector's word)", res.Devices[i].Hostname)
		}
		fmt.Fprintln(w)
		for _, line := range ds.Text {
			fmt.Fprintf(w, "  %s\n", line)
		}
		if reports && i < len(res.Devices) {
			for _, r := range res.Devices[i].Reports {
				fmt.Fprintf(w, "  %s: collected %s, policy %s v%d, key %.16s (signed); observed %s, received %s", r.Place, stamp(r.CollectedAt), r.PolicyName, r.PolicyVersion, r.KeyID, stamp(r.Asserted.ObservedAt), stamp(r.Asserted.ReceivedAt))
				if r.Asserted.ClockSuspect {
					fmt.Fprint(w, ", agent clock suspect")
				}
				if r.Asserted.FeedSerial != 0 {
					fmt.Fprintf(w, ", judged by release feed %d", r.Asserted.FeedSerial)
				}
				fmt.Fprintln(w, " (the collector's word)")
			}
		}
	}
	if len(res.Notes) > 0 {
		fmt.Fprintln(w)
		fmt.Fprintln(w, "notes:")
		for _, p := range res.Notes {
			fmt.Fprintf(w, "  %s\n", p)
		}
	}
}

func stamp(t time.Time) string { return t.UTC().Format(time.RFC3339) }
