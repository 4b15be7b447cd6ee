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
//	ward-loadgen … --store postgres://ward@/ward?host=/var/run/postgresql
//	ward-loadgen --devices 10000 --duration 0 …   # enrolment rate only
//	ward-loadgen … --seal=false                     # reports unsealed, to compare
//	ward-loadgen table run1.json run2.json         # one table of --json outputs
//
// scripts/loadbench.sh starts a collector on a fresh data directory and
// runs both modes flat out and at half the peak rate, printing one table;
// scripts/loadbench.sh --seal-compare runs sealed and unsealed in turn.
//
// Reports are sealed as the agent seals them (each device's key, chained
// per epoch from its enrolment certificate's genesis, one seal per
// report whatever its form or attempts); the store's verification then
// also requires that no chain gap or fork was recorded.
//
// Figures: reports/s counts acknowledged reports; latency runs from when
// a report was due (at a --rate, its scheduled time) to its
// acknowledgement; bytes are counted on the TCP connection, below TLS,
// both ways, in the measured part only (fresh mode: the handshakes too);
// key generation is timed apart from enrolment, which a real fleet does
// on its own machines. The ceiling is served by a child process
// (ward-loadgen ceiling-serve), so that it, like the collector, has a
// process of its own: served in the client's process it got half the CPU
// on a loaded machine (fresh mode at load 22: 57 against 121 reports/s). Exit status: 0 when every step ran and the store
// matched, 1 otherwise, 2 for bad flags.
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"strings"
	"time"

	"github.com/wardhq/ward/collector/loadgen"
	"github.com/wardhq/ward/collector/store/storeopen"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 {
		switch args[0] {
		case "table":
			return table(args[1:], stdout, stderr)
		case ceilingCommand:
			return serveCeiling(args[1:], stdout, stderr)
		}
	}
	fs := flag.NewFlagSet("ward-loadgen", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		cfg    loadgen.Config
		mode   string
		data   string
		spec   string
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
	fs.BoolVar(&cfg.Run.Warmup, "warmup", true, "send every device's first report before the clock starts (so both targets measure steady-state rounds)")
	fs.IntVar(&cfg.Run.Rounds, "rounds", 0, "instead of --duration: run flat out until every device had this many reports acknowledged")
	fs.DurationVar(&cfg.Run.Timeout, "timeout", 15*time.Second, "bound of each report call")
	seal := fs.Bool("seal", true, "seal every report with its device's key, chained per epoch, as the agent does; --seal=false sends them unsealed, to compare")
	fs.BoolVar(&cfg.Ceiling, "ceiling", true, "also measure the no-op gRPC ceiling with the same loop and payloads")
	inProcess := fs.Bool("ceiling-in-process", false, "serve the ceiling in this process instead of a child process of its own (as the collector has)")
	fs.StringVar(&data, "data", "", "the collector's data directory: its SQLite store is opened read-only to verify stored = acknowledged")
	fs.StringVar(&spec, "store", "", "the collector's store, as its --store: sqlite (in --data) or a postgres:// URL, opened read-only to verify stored = acknowledged")
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
	cfg.Run.Mode, cfg.Run.Unsealed = m, !*seal
	if cfg.Fingerprint == "" || cfg.Token == "" {
		fmt.Fprintln(stderr, "ward-loadgen: --ca-fingerprint and --token are required")
		return 2
	}
	verify := data != "" || !storeopen.IsSQLite(spec)
	if _, err := storeopen.Kind(spec); err != nil {
		fmt.Fprintln(stderr, "ward-loadgen:", err)
		return 2
	}
	if verify {
		cfg.Stored = func(ctx context.Context) (loadgen.Stored, error) { return loadgen.Open(ctx, spec, data) }
	}
	if !*inProcess {
		cfg.StartCeiling = startCeiling
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
	if !verify && (cfg.Run.Duration > 0 || cfg.Run.Rounds > 0) {
		fmt.Fprintln(stderr, "ward-loadgen: the store was not verified (no --data or --store)")
	}
	return 0
}

// ceilingCommand serves the no-op ceiling in a child process: it prints
// its address on a line and serves until its standard input closes, so
// it never outlives ward-loadgen.
const ceilingCommand = "ceiling-serve"

func serveCeiling(args []string, stdout, stderr io.Writer) int {
	if len(args) != 1 {
		fmt.Fprintf(stderr, "usage: ward-loadgen %s DIR\n", ceilingCommand)
		return 2
	}
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		io.Copy(io.Discard, os.Stdin)
		cancel()
	}()
	err := loadgen.ServeCeiling(ctx, args[0], func(addr string) { fmt.Fprintln(stdout, addr) })
	if err != nil {
		fmt.Fprintln(stderr, "ward-loadgen:", err)
		return 1
	}
	return 0
}

// startCeiling runs this program's ceilingCommand with its CA in dir.
func startCeiling(dir string) (*loadgen.Ceiling, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(self, ceilingCommand, dir)
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start the ceiling: %w", err)
	}
	stop := func() {
		stdin.Close()
		cmd.Wait()
	}
	addr, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		stop()
		return nil, fmt.Errorf("the ceiling did not start: %w", err)
	}
	c, err := loadgen.AttachCeiling(dir, strings.TrimSpace(addr), stop)
	if err != nil {
		stop()
		return nil, err
	}
	return c, nil
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
