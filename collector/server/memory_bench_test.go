package server_test

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"os/exec"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/time/rate"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/wardhq/ward/collector/server"
	"github.com/wardhq/ward/collector/server/servertest"
	wardv1 "github.com/wardhq/ward/proto/ward/v1"
	"github.com/wardhq/ward/proto/ward/v1/wardv1grpc"
)

// Memory measurements of the collector (issue 13, item 7). The agents run
// in a child process (this test binary again, TestIdleAgentsProcess), so
// the collector's heap and RSS, read in this process, hold no client side.
//
//	go test ./collector/server -run '^$' -bench IdleConnections -benchtime 1x -idle-conns 1000
//	go test ./collector/server -run '^$' -bench Soak -benchtime 1x -soak-reports 1000000
var (
	idleConns   = flag.Int("idle-conns", 500, "BenchmarkIdleConnections: agent connections kept open")
	soakReports = flag.Int("soak-reports", 20000, "BenchmarkSoak: reports to ingest")
	soakDevices = flag.Int("soak-devices", 100, "BenchmarkSoak: devices reporting, each on its own kept connection")
	idleProfile = flag.String("idle-heapprofile", "", "BenchmarkIdleConnections: write the heap profile of the idle collector to this file (with -memprofilerate 512, say)")
)

func writeHeapProfile(b *testing.B, path string) {
	b.Helper()
	f, err := os.Create(path)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	if err := pprof.Lookup("heap").WriteTo(f, 0); err != nil {
		b.Fatal(err)
	}
}

// memSample is what the collector process holds after a full GC.
type memSample struct {
	heap, stacks, rss uint64
	goroutines        int
}

func sampleMem(tb testing.TB) memSample {
	tb.Helper()
	runtime.GC()
	runtime.GC()
	debug.FreeOSMemory() // RSS without freed spans the scavenger has not yet returned
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return memSample{heap: ms.HeapAlloc, stacks: ms.StackInuse, rss: vmRSS(tb), goroutines: runtime.NumGoroutine()}
}

// vmRSS is this process's resident set size in bytes, from /proc.
func vmRSS(tb testing.TB) uint64 {
	tb.Helper()
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		tb.Skipf("no /proc/self/status (RSS is read on Linux only): %v", err)
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.ParseUint(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			if err != nil {
				tb.Fatalf("parse VmRSS %q: %v", line, err)
			}
			return kb << 10
		}
	}
	tb.Fatal("no VmRSS in /proc/self/status")
	return 0
}

// perConn is (after-before)/n, signed: a shrink shows as a negative figure.
func perConn(after, before uint64, n int) float64 {
	return (float64(after) - float64(before)) / float64(n)
}

// memCollector starts a collector that lets a whole fleet enrol at once
// from one address.
func memCollector(b *testing.B) *servertest.Collector {
	return servertest.Start(b, func(cfg *server.Config) {
		cfg.GRPC.EnrollRate, cfg.GRPC.EnrollBurst = rate.Inf, 1
		cfg.GRPC.EnrollTotalRate, cfg.GRPC.EnrollTotalBurst = rate.Inf, 1
		cfg.RateLimit = rate.Inf
	})
}

// agents is the child process playing a fleet of agents.
type agents struct {
	cmd *exec.Cmd
	in  io.WriteCloser
	out *bufio.Scanner
}

// startAgents runs the fleet: devices enrol, each reports once on a
// connection it closes, then the child waits for commands on stdin.
func startAgents(b *testing.B, c *servertest.Collector, devices int) *agents {
	b.Helper()
	ca := hex.EncodeToString(c.CACertDER)
	cmd := exec.Command(os.Args[0], "-test.run=^TestIdleAgentsProcess$", "-test.v=false")
	cmd.Env = append(os.Environ(), "WARD_MEM_AGENTS=1", "WARD_MEM_ADDR="+c.Addr, "WARD_MEM_CA="+ca,
		"WARD_MEM_TOKEN="+c.Token("staff", devices, time.Hour), "WARD_MEM_DEVICES="+strconv.Itoa(devices))
	cmd.Stderr = os.Stderr
	in, err := cmd.StdinPipe()
	if err != nil {
		b.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	a := &agents{cmd: cmd, in: in, out: bufio.NewScanner(out)}
	b.Cleanup(func() {
		a.in.Close()
		a.cmd.Wait()
	})
	a.await(b, "enrolled")
	return a
}

// do sends a command and waits for its answer line.
func (a *agents) do(b *testing.B, cmd, want string) string {
	b.Helper()
	if _, err := fmt.Fprintln(a.in, cmd); err != nil {
		b.Fatalf("agents: send %q: %v", cmd, err)
	}
	return a.await(b, want)
}

// await waits for the answer line starting with want and returns the
// rest of it.
func (a *agents) await(b *testing.B, want string) string {
	b.Helper()
	for a.out.Scan() {
		line := a.out.Text()
		if rest, ok := strings.CutPrefix(line, want); ok {
			return strings.TrimSpace(rest)
		}
		if strings.HasPrefix(line, "error: ") {
			b.Fatalf("agents: %s", line)
		}
	}
	b.Fatalf("agents: exited before %q: %v", want, a.out.Err())
	return ""
}

// BenchmarkIdleConnections measures what one idle agent connection costs
// the collector: the fleet enrols and reports once on throwaway
// connections (so per-device state is in the "before" sample), then every
// device opens a connection, reports once on it and keeps it idle. It
// reports heap, goroutine stacks and RSS per idle connection. Run it with
// -benchtime 1x; b.N is not used.
func BenchmarkIdleConnections(b *testing.B) {
	n := *idleConns
	c := memCollector(b)
	a := startAgents(b, c, n)
	before := sampleMem(b)
	a.do(b, "connect", "idle")
	time.Sleep(time.Second) // let handlers return and connections settle
	after := sampleMem(b)
	if *idleProfile != "" {
		writeHeapProfile(b, *idleProfile)
	}
	a.do(b, "close", "closed")
	b.ReportMetric(perConn(after.heap, before.heap, n), "heap-B/conn")
	b.ReportMetric(perConn(after.stacks, before.stacks, n), "stack-B/conn")
	b.ReportMetric(perConn(after.rss, before.rss, n), "rss-B/conn")
	b.ReportMetric(perConn(uint64(after.goroutines), uint64(before.goroutines), n), "goroutines/conn")
	b.Logf("%d idle connections: heap %d → %d KiB, stacks %d → %d KiB, RSS %d → %d KiB, goroutines %d → %d",
		n, before.heap>>10, after.heap>>10, before.stacks>>10, after.stacks>>10, before.rss>>10, after.rss>>10, before.goroutines, after.goroutines)
}

// BenchmarkSoak ingests -soak-reports reports from -soak-devices devices,
// each on its own kept connection, and samples the collector's RSS after
// every tenth of the run; the first tenth is the warm-up. It reports the
// growth after warm-up (issue 13: ≤ 5 MiB over 1M reports). Run it with
// -benchtime 1x; b.N is not used.
func BenchmarkSoak(b *testing.B) {
	n, devices := *soakReports, *soakDevices
	c := memCollector(b)
	a := startAgents(b, c, devices)
	a.do(b, "connect", "idle")
	const steps = 10
	var warm, peak memSample
	start := time.Now()
	var retries string
	for i := range steps {
		retries = a.do(b, "report "+strconv.Itoa(n/steps), "reported")
		s := sampleMem(b)
		b.Logf("after %8d reports (%s): RSS %6d KiB, heap %6d KiB, goroutines %d, resent %s",
			(i+1)*(n/steps), time.Since(start).Round(time.Second), s.rss>>10, s.heap>>10, s.goroutines, retries)
		if i == 0 {
			warm = s
		}
		peak.rss, peak.heap = max(peak.rss, s.rss), max(peak.heap, s.heap)
	}
	b.ReportMetric(float64(n)/time.Since(start).Seconds(), "reports/s")
	b.ReportMetric((float64(peak.rss)-float64(warm.rss))/(1<<20), "rss-growth-MiB")
	b.ReportMetric((float64(peak.heap)-float64(warm.heap))/(1<<20), "heap-growth-MiB")
}

// TestIdleAgentsProcess is the agents' side of the memory benchmarks, run
// in a child process; run directly, it has nothing to do and returns.
// Commands on stdin: "connect" (every device opens its own connection and
// reports once on it), "report N" (N more reports, round-robin over the
// kept connections, in parallel), "close".
func TestIdleAgentsProcess(t *testing.T) {
	if os.Getenv("WARD_MEM_AGENTS") != "1" {
		return
	}
	out := bufio.NewWriter(os.Stdout)
	say := func(s string) { fmt.Fprintln(out, s); out.Flush() }
	if err := runAgents(os.Getenv("WARD_MEM_ADDR"), os.Getenv("WARD_MEM_CA"), os.Getenv("WARD_MEM_TOKEN"), os.Getenv("WARD_MEM_DEVICES"), os.Stdin, say); err != nil {
		say("error: " + err.Error())
		os.Exit(1)
	}
	os.Exit(0)
}

func runAgents(addr, caHex, tok, devicesStr string, in io.Reader, say func(string)) error {
	ctx := context.Background()
	devices, err := strconv.Atoi(devicesStr)
	if err != nil {
		return fmt.Errorf("devices: %w", err)
	}
	der, err := hex.DecodeString(caHex)
	if err != nil {
		return fmt.Errorf("CA: %w", err)
	}
	ca, err := x509.ParseCertificate(der)
	if err != nil {
		return fmt.Errorf("CA: %w", err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	dial := func(cert *tls.Certificate) (*grpc.ClientConn, error) {
		cfg := &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS13, ServerName: "127.0.0.1"}
		if cert != nil {
			cfg.Certificates = []tls.Certificate{*cert}
		}
		return grpc.NewClient(addr, grpc.WithTransportCredentials(credentials.NewTLS(cfg)))
	}
	anon, err := dial(nil)
	if err != nil {
		return err
	}
	enrol := wardv1grpc.NewEnrollmentServiceClient(anon)
	// Two rounds of facts in turn: a supported and an unsupported OS
	// version, so every report changes a verdict.
	facts := [2]*wardv1.Facts{
		{CollectedAt: timestamppb.Now(), Os: &wardv1.OSFacts{Platform: "linux", Name: "Debian GNU/Linux", Version: "12"}},
		{CollectedAt: timestamppb.Now(), Os: &wardv1.OSFacts{Platform: "linux", Name: "Debian GNU/Linux", Version: "9"}},
	}
	certs := make([]tls.Certificate, devices)
	seqs := make([]uint64, devices)
	// report sends device i's next report; like an agent's outbox, it
	// sends the same report again after a refusal the collector may get
	// over (a busy store), for up to a minute.
	var retries atomic.Int64
	report := func(cl wardv1grpc.AgentServiceClient, i int) error {
		seqs[i]++
		req := &wardv1.ReportRequest{Report: &wardv1.Report{
			Sequence: seqs[i], CollectedAt: timestamppb.Now(), AgentVersion: "test", PolicyName: "baseline", PolicyVersion: 1, Facts: facts[seqs[i]%2],
		}}
		for try := 0; ; try++ {
			_, err := cl.Report(ctx, req)
			switch status.Code(err) {
			case codes.OK:
				return nil
			case codes.Internal, codes.Unavailable, codes.ResourceExhausted:
				if try < 60 {
					retries.Add(1)
					time.Sleep(min(time.Duration(try+1)*100*time.Millisecond, time.Second))
					continue
				}
			}
			return err
		}
	}
	for i := range certs {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			return err
		}
		csr, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "ward-agent"}}, key)
		if err != nil {
			return err
		}
		resp, err := enrol.Enroll(ctx, &wardv1.EnrollRequest{Token: tok, CsrDer: csr, Device: &wardv1.DeviceInfo{
			Hostname: fmt.Sprintf("host-%d", i), Platform: "linux", OsName: "Debian GNU/Linux", OsVersion: "12", Architecture: "amd64", AgentVersion: "test"}})
		if err != nil {
			return fmt.Errorf("enrol device %d: %w", i, err)
		}
		certs[i] = tls.Certificate{Certificate: [][]byte{resp.CertificateDer}, PrivateKey: key}
		conn, err := dial(&certs[i])
		if err != nil {
			return err
		}
		if err := report(wardv1grpc.NewAgentServiceClient(conn), i); err != nil {
			return fmt.Errorf("first report of device %d: %w", i, err)
		}
		conn.Close()
	}
	anon.Close()
	say("enrolled")
	var conns []*grpc.ClientConn
	var clients []wardv1grpc.AgentServiceClient
	sc := bufio.NewScanner(in)
	for sc.Scan() {
		cmd, arg, _ := strings.Cut(sc.Text(), " ")
		switch cmd {
		case "connect":
			for i := range certs {
				conn, err := dial(&certs[i])
				if err != nil {
					return err
				}
				cl := wardv1grpc.NewAgentServiceClient(conn)
				if err := report(cl, i); err != nil {
					return fmt.Errorf("report of device %d: %w", i, err)
				}
				conns, clients = append(conns, conn), append(clients, cl)
			}
			say("idle")
		case "report":
			n, err := strconv.Atoi(arg)
			if err != nil {
				return fmt.Errorf("report: %w", err)
			}
			// One worker per device, so a device's sequence numbers are
			// sent in order; the fleet reports in parallel.
			errs := make(chan error, len(clients))
			per := int(math.Ceil(float64(n) / float64(len(clients))))
			for i, cl := range clients {
				go func() {
					for range per {
						if err := report(cl, i); err != nil {
							errs <- fmt.Errorf("report of device %d: %w", i, err)
							return
						}
					}
					errs <- nil
				}()
			}
			for range clients {
				if err := <-errs; err != nil {
					return err
				}
			}
			say(fmt.Sprintf("reported %d", retries.Load()))
		case "close":
			for _, c := range conns {
				c.Close()
			}
			conns, clients = nil, nil
			say("closed")
		}
	}
	return sc.Err()
}
