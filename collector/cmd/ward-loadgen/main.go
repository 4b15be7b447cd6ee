// Command ward-loadgen measures a running collector the way a fleet uses
// it: it enrols simulated devices through the real EnrollmentService and
// sends reports built from the agent's replay bundles, over kept mTLS
// connections or a fresh connection per report, then verifies that the
// store holds exactly what was acknowledged. In the same run it drives an
// in-process no-op gRPC server with the same mTLS setup, loop and
// payloads, and quotes the collector's throughput as a share of it.
//
//	ward-loadgen --addr 127.0.0.1:8443 --ca-fingerprint sha256:… --token … \
//	    --devices 2000 --mode kept --duration 20s --data ward-data
//	ward-loadgen --devices 10000 --duration 0 …   # enrolment rate only
//	ward-loadgen table run1.json run2.json         # one table of --json outputs
//
// scripts/loadbench.sh starts a collector on a fresh data directory and
// runs both modes flat out and at half the peak rate, printing one table.
//
// Figures: reports/s counts acknowledged reports; latency runs from when
// a report was due (at a --rate, its scheduled time) to its
// acknowledgement; bytes are counted on the TCP connection, below TLS,
// both ways, in the measured part only (fresh mode: the handshakes too);
// key generation is timed apart from enrolment, which a real fleet does
// on its own machines. Exit status: 0 when every step ran and the store
// matched, 1 otherwise, 2 for bad flags.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"time"

	"github.com/wardhq/ward/collector/loadgen"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 && args[0] == "table" {
		return table(args[1:], stdout, stderr)
	}
	fs := flag.NewFlagSet("ward-loadgen", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		cfg    loadgen.Config
		mode   string
		data   string
		asJSON bool
	)
	fs.StringVar(&cfg.Addr, "addr", "127.0.0.1:8443", "collector gRPC address, HOST:PORT")
	fs.StringVar(&cfg.Fingerprint, "ca-fingerprint", "", "collector CA fingerprint, sha256:<hex> (as for ward-agent enroll)")
	fs.StringVar(&cfg.Token, "token", "", "enrolment token with a use per device")
	fs.IntVar(&cfg.Devices, "devices", 2000, "simulated devices to enrol and report")
	fs.IntVar(&cfg.EnrollConcurrency, "enroll-concurrency", 64, "enrolments in flight at once")
	fs.StringVar(&cfg.Bundles, "bundles", "agent/testdata/bundles", "directory of replay bundles the reports are built from")
	fs.StringVar(&mode, "mode", "kept", "kept (a connection per device, kept) or fresh (a new TLS connection per report)")
	fs.Float64Var(&cfg.Run.Rate, "rate", 0, "reports per second in total; 0: flat out, bounded by --concurrency")
	fs.IntVar(&cfg.Run.Concurrency, "concurrency", 64, "reports in flight at most")
	fs.DurationVar(&cfg.Run.Duration, "duration", 20*time.Second, "how long reports are sent; 0 only enrols")
	fs.DurationVar(&cfg.Run.Timeout, "timeout", 15*time.Second, "bound of each report call")
	fs.BoolVar(&cfg.Ceiling, "ceiling", true, "also measure the no-op gRPC ceiling with the same loop and payloads")
	fs.StringVar(&data, "data", "", "the collector's SQLite data directory, opened read-only to verify stored = acknowledged")
	fs.BoolVar(&asJSON, "json", false, "print the summary as JSON")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "ward-loadgen: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	m, err := loadgen.ParseMode(mode)
	if err != nil {
		fmt.Fprintln(stderr, "ward-loadgen:", err)
		return 2
	}
	cfg.Run.Mode = m
	if cfg.Fingerprint == "" || cfg.Token == "" {
		fmt.Fprintln(stderr, "ward-loadgen: --ca-fingerprint and --token are required")
		return 2
	}
	if data != "" {
		cfg.Stored = func(context.Context) (loadgen.Stored, error) { return loadgen.OpenSQLite(data) }
	}
	cfg.Progress = stderr
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	s, err := loadgen.Bench(ctx, cfg)
	if s != nil {
		if asJSON {
			enc := json.NewEncoder(stdout)
			enc.SetIndent("", "  ")
			enc.Encode(s)
		} else {
			loadgen.WriteTable(stdout, []*loadgen.Summary{s})
		}
	}
	if err != nil {
		fmt.Fprintln(stderr, "ward-loadgen:", err)
		return 1
	}
	if data == "" && cfg.Run.Duration > 0 {
		fmt.Fprintln(stderr, "ward-loadgen: the store was not verified (no --data)")
	}
	return 0
}

// table prints the --json summaries in files as one table.
func table(files []string, stdout, stderr io.Writer) int {
	if len(files) == 0 {
		fmt.Fprintln(stderr, "usage: ward-loadgen table SUMMARY.json...")
		return 2
	}
	var all []*loadgen.Summary
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			fmt.Fprintln(stderr, "ward-loadgen:", err)
			return 1
		}
		var s loadgen.Summary
		if err := json.Unmarshal(data, &s); err != nil {
			fmt.Fprintf(stderr, "ward-loadgen: %s: %v\n", f, err)
			return 1
		}
		all = append(all, &s)
	}
	if err := loadgen.WriteTable(stdout, all); err != nil {
		fmt.Fprintln(stderr, "ward-loadgen:", err)
		return 1
	}
	return 0
}
