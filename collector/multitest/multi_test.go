package multitest

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/wardhq/ward/collector/pki"
	"github.com/wardhq/ward/collector/store/postgres/pgtest"
	wardv1 "github.com/wardhq/ward/proto/ward/v1"
	"github.com/wardhq/ward/proto/ward/v1/wardv1grpc"
)

// collector is one `ward-collector serve` process.
type collector struct {
	cmd        *exec.Cmd
	grpc, http string
	ca         string // fingerprint it printed
	stderr     *bytes.Buffer
	exited     chan struct{}
}

// env is the test's fleet: the binary, the database, the CA key file.
type env struct {
	t       *testing.T
	bin     string
	store   string
	keyFile string
	admin   string // --data of the admin commands
}

// built is the ward-collector binary, built once for the package's tests.
var built struct {
	once sync.Once
	dir  string
	bin  string
	err  error
}

func TestMain(m *testing.M) {
	code := m.Run()
	if built.dir != "" {
		os.RemoveAll(built.dir)
	}
	os.Exit(code)
}

func build(t *testing.T) string {
	t.Helper()
	built.once.Do(func() {
		if built.dir, built.err = os.MkdirTemp("", "ward-multitest-"); built.err != nil {
			return
		}
		built.bin = filepath.Join(built.dir, "ward-collector")
		out, err := exec.Command("go", "build", "-o", built.bin, "github.com/wardhq/ward/collector/cmd/ward-collector").CombinedOutput()
		if err != nil {
			built.err = fmt.Errorf("go build ward-collector: %v\n%s", err, out)
		}
	})
	if built.err != nil {
		t.Fatal(built.err)
	}
	return built.bin
}

// refusedBurst is each collector's allowance of refused enrolments per
// address; shared, the three together allow no more.
const refusedBurst = 4

var listening = regexp.MustCompile(`^gRPC on (\S+), HTTP on (\S+) `)

// start starts a collector on a data directory of its own, sharing the
// CA in the store, and waits until it listens.
func (e *env) start(name string) *collector {
	e.t.Helper()
	return e.startWith(name, filepath.Join(e.t.TempDir(), name), "--ca-key-file", e.keyFile)
}

// serveArgs are the flags of serve every collector of the tests gets.
func (e *env) serveArgs(dir string) []string {
	return []string{"serve", "--data", dir, "--store", e.store,
		"--grpc-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0", "--hostname", "127.0.0.1", "--insecure-cookies", "--log-level", "warn",
		"--enroll-refused-burst", fmt.Sprint(refusedBurst), "--enroll-refused-rate", "0.01"}
}

// startWith starts a collector on dir with more flags.
func (e *env) startWith(name, dir string, more ...string) *collector {
	e.t.Helper()
	cmd := exec.Command(e.bin, append(e.serveArgs(dir), more...)...)
	c := &collector{cmd: cmd, stderr: &bytes.Buffer{}, exited: make(chan struct{})}
	cmd.Stderr = &lockedWriter{w: c.stderr}
	out, err := cmd.StdoutPipe()
	if err != nil {
		e.t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		e.t.Fatal(err)
	}
	go func() { cmd.Wait(); close(c.exited) }()
	e.t.Cleanup(func() {
		cmd.Process.Kill()
		<-c.exited
		if e.t.Failed() {
			e.t.Logf("%s stderr:\n%s", name, c.stderr.String())
		}
	})
	return e.await(name, c, out)
}

// stop kills a collector and waits for it.
func (c *collector) stop() {
	c.cmd.Process.Kill()
	<-c.exited
}

// await waits until c prints where it listens.
func (e *env) await(name string, c *collector, out io.Reader) *collector {
	e.t.Helper()
	lines := bufio.NewScanner(out)
	ready := make(chan error, 1)
	go func() {
		for lines.Scan() {
			l := lines.Text()
			if fp, ok := strings.CutPrefix(l, "CA fingerprint: "); ok {
				c.ca = fp
			}
			if m := listening.FindStringSubmatch(l); m != nil {
				c.grpc, c.http = m[1], m[2]
				ready <- nil
			}
		}
		ready <- errors.New("serve exited before listening")
		io.Copy(io.Discard, out)
	}()
	select {
	case err := <-ready:
		if err != nil {
			<-c.exited
			e.t.Fatalf("%s: %v\n%s", name, err, c.stderr.String())
		}
	case <-time.After(30 * time.Second):
		e.t.Fatalf("%s did not start in 30 s:\n%s", name, c.stderr.String())
	}
	return c
}

type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// run runs an admin command against the shared store and returns stdout.
func (e *env) run(args ...string) string {
	e.t.Helper()
	args = append(args, "--store", e.store)
	if !slices.Contains(args, "--data") {
		args = append(args, "--data", e.admin)
	}
	cmd := exec.Command(e.bin, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		e.t.Fatalf("ward-collector %s: %v\n%s%s", strings.Join(args, " "), err, stdout.String(), stderr.String())
	}
	return stdout.String()
}

// agent is an enrolled device with its own gRPC connection through the
// proxy, so the proxy spreads the agents over the collectors.
type agent struct {
	id    string
	epoch uint64
	cert  tls.Certificate
	roots *x509.CertPool
	chain []*x509.Certificate
	conn  *grpc.ClientConn
	cli   wardv1grpc.AgentServiceClient

	mu      sync.Mutex
	acked   map[uint64]time.Time // sequence → when acknowledged
	retried int                  // reports acknowledged after a failed attempt
}

// pinned is a TLS config for enrolment: the server's chain must hold the
// CA with this fingerprint and the leaf must verify against it.
func pinned(fp string) *tls.Config {
	return &tls.Config{
		MinVersion:         tls.VersionTLS13,
		InsecureSkipVerify: true, // verified below against the pinned CA, as the agent does
		VerifyConnection: func(cs tls.ConnectionState) error {
			for _, c := range cs.PeerCertificates[1:] {
				if pki.Fingerprint(c.Raw) == fp {
					roots, inter := x509.NewCertPool(), x509.NewCertPool()
					roots.AddCert(c)
					for _, i := range cs.PeerCertificates[1:] {
						inter.AddCert(i) // a rotated CA's cross certificate
					}
					_, err := cs.PeerCertificates[0].Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter, DNSName: "127.0.0.1"})
					return err
				}
			}
			return fmt.Errorf("no CA %s in the server's chain", fp)
		},
	}
}

func enrol(ctx context.Context, addr, fp, tok string, n int) (*agent, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	csr, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "ward-agent"}}, key)
	if err != nil {
		return nil, err
	}
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(credentials.NewTLS(pinned(fp))))
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	info := &wardv1.DeviceInfo{Hostname: fmt.Sprintf("laptop-%02d", n), Platform: "linux", OsName: "Debian GNU/Linux", OsVersion: "12",
		Architecture: "amd64", AgentVersion: "test", MachineId: fmt.Sprintf("machine-%02d", n)}
	resp, err := wardv1grpc.NewEnrollmentServiceClient(conn).Enroll(ctx, &wardv1.EnrollRequest{Token: tok, CsrDer: csr, Device: info})
	if err != nil {
		return nil, err
	}
	leaf, err := x509.ParseCertificate(resp.CertificateDer)
	if err != nil {
		return nil, err
	}
	a := &agent{id: resp.DeviceId, epoch: resp.Epoch, roots: x509.NewCertPool(), acked: map[uint64]time.Time{},
		cert: tls.Certificate{Certificate: [][]byte{resp.CertificateDer}, PrivateKey: key, Leaf: leaf}}
	for _, der := range resp.CaChainDer {
		c, err := x509.ParseCertificate(der)
		if err != nil {
			return nil, err
		}
		a.roots.AddCert(c)
		a.chain = append(a.chain, c)
	}
	if a.conn, err = a.dial(addr); err != nil {
		return nil, err
	}
	a.cli = wardv1grpc.NewAgentServiceClient(a.conn)
	return a, nil
}

// issuedBy reports whether the agent's certificate was signed by the CA
// with this fingerprint (one of the chain it was sent).
func (a *agent) issuedBy(fp string) bool {
	for _, c := range a.chain {
		if pki.Fingerprint(c.Raw) == fp {
			return a.cert.Leaf.CheckSignatureFrom(c) == nil
		}
	}
	return false
}

func (a *agent) dial(addr string) (*grpc.ClientConn, error) {
	return grpc.NewClient(addr, grpc.WithTransportCredentials(credentials.NewTLS(&tls.Config{
		MinVersion: tls.VersionTLS13, RootCAs: a.roots, ServerName: "127.0.0.1", Certificates: []tls.Certificate{a.cert}})))
}

func report(a *agent, seq uint64) *wardv1.ReportRequest {
	now := timestamppb.Now()
	return &wardv1.ReportRequest{Report: &wardv1.Report{Sequence: seq, Epoch: a.epoch, CollectedAt: now, AgentVersion: "test",
		PolicyName: "baseline", PolicyVersion: 1,
		Facts: &wardv1.Facts{CollectedAt: now, Os: &wardv1.OSFacts{Platform: "linux", Name: "Debian GNU/Linux", Version: "12"}}}}
}

// send delivers one report as the agent does: retried (same epoch and
// sequence) until acknowledged; a retry after a lost answer is
// acknowledged as a duplicate. It fails only after 20 s.
func (a *agent) send(ctx context.Context, seq uint64) error {
	deadline := time.Now().Add(20 * time.Second)
	req := report(a, seq) // a retry resends the same report, as the outbox does
	for attempts := 0; ; attempts++ {
		cctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		resp, err := a.cli.Report(cctx, req, grpc.WaitForReady(true))
		cancel()
		if err == nil {
			if resp.AckedSequence != seq || resp.AckedEpoch != a.epoch {
				return fmt.Errorf("report %d acknowledged as %d/%d", seq, resp.AckedEpoch, resp.AckedSequence)
			}
			a.mu.Lock()
			a.acked[seq] = time.Now()
			if attempts > 0 {
				a.retried++
			}
			a.mu.Unlock()
			return nil
		}
		if ctx.Err() != nil || time.Now().After(deadline) {
			return fmt.Errorf("report %d: %w", seq, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func TestThreeCollectorsOnePostgres(t *testing.T) {
	t.Parallel()
	e := &env{t: t, store: pgtest.URL(t), bin: build(t), admin: t.TempDir()}
	e.keyFile = filepath.Join(t.TempDir(), "ca.key")
	if err := pki.WriteCAKeyFile(e.keyFile); err != nil {
		t.Fatal(err)
	}
	// Three collectors start at once: one creates the CA, the others load it.
	cs := make([]*collector, 3)
	var wg sync.WaitGroup
	for i := range cs {
		wg.Go(func() { cs[i] = e.start(fmt.Sprintf("collector-%d", i)) })
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	for i, c := range cs {
		if c.ca == "" || c.ca != cs[0].ca {
			t.Fatalf("collector %d has CA %q, collector 0 %q: not one CA", i, c.ca, cs[0].ca)
		}
	}
	fp := cs[0].ca
	backends := []string{cs[0].grpc, cs[1].grpc, cs[2].grpc}
	lb := newProxy(t, backends)

	tok := strings.TrimSpace(e.run("token", "create", "--group", "staff", "--uses", "100", "--ttl", "1h"))
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	const nAgents = 24
	agents := make([]*agent, nAgents)
	for i := range agents {
		wg.Go(func() {
			a, err := enrol(ctx, lb.addr(), fp, tok, i)
			if err != nil {
				t.Errorf("agent %d: enrol through the proxy: %v", i, err)
				return
			}
			agents[i] = a
			t.Cleanup(func() { a.conn.Close() })
		})
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	for i := range backends {
		if lb.accepted[i].Load() == 0 {
			t.Fatalf("the proxy sent no enrolment to collector %d", i)
		}
	}

	// Load: every agent reports in a loop; collector 1 is killed -9
	// while they do.
	stop := make(chan struct{})
	var sendErrs sync.Map
	for _, a := range agents {
		wg.Go(func() {
			for seq := uint64(1); ; seq++ {
				select {
				case <-stop:
					return
				default:
				}
				if err := a.send(ctx, seq); err != nil {
					sendErrs.Store(a.id, err)
					return
				}
				time.Sleep(150 * time.Millisecond) // under the per-device rate limit
			}
		})
	}
	time.Sleep(4 * time.Second)
	killedAt := time.Now()
	if err := cs[1].cmd.Process.Kill(); err != nil { // SIGKILL
		t.Fatal(err)
	}
	<-cs[1].exited
	time.Sleep(5 * time.Second)
	close(stop)
	wg.Wait()
	sendErrs.Range(func(k, v any) bool {
		t.Errorf("agent %s: %v", k, v)
		return true
	})

	// Every acknowledged report is stored exactly once, and every agent
	// was served after the kill.
	total, retried := 0, 0
	for _, a := range agents {
		retried += a.retried
		after := 0
		for _, at := range a.acked {
			if at.After(killedAt.Add(time.Second)) {
				after++
			}
		}
		if after == 0 {
			t.Errorf("agent %s: no report acknowledged after the kill", a.id)
		}
		stored := storedSequences(t, e, a.id)
		seen := map[uint64]int{}
		for _, s := range stored {
			seen[s]++
		}
		for seq := range a.acked {
			switch seen[seq] {
			case 1:
			case 0:
				t.Errorf("agent %s: acknowledged report %d is not stored (lost)", a.id, seq)
			default:
				t.Errorf("agent %s: report %d stored %d times", a.id, seq, seen[seq])
			}
		}
		for seq, n := range seen {
			if _, ok := a.acked[seq]; !ok {
				t.Errorf("agent %s: report %d stored but never acknowledged (%d times)", a.id, seq, n)
			}
		}
		total += len(a.acked)
	}
	t.Logf("%d agents, %d reports acknowledged (%d after a failed attempt), connections per collector %v", nAgents, total, retried,
		[]int64{lb.accepted[0].Load(), lb.accepted[1].Load(), lb.accepted[2].Load()})

	alive := []*collector{cs[0], cs[2]}
	// A revocation made through the store reaches both live collectors
	// within seconds.
	victim := agents[0]
	e.run("device", "revoke", victim.id)
	for _, c := range alive {
		eventually(t, 5*time.Second, func() error {
			conn, err := victim.dial(c.grpc)
			if err != nil {
				return err
			}
			defer conn.Close()
			cctx, cancel := context.WithTimeout(ctx, 3*time.Second)
			defer cancel()
			_, err = wardv1grpc.NewAgentServiceClient(conn).Report(cctx, report(victim, 100000))
			if status.Code(err) != codes.PermissionDenied {
				return fmt.Errorf("collector %s: revoked device's report: %v, want PermissionDenied", c.grpc, err)
			}
			return nil
		})
	}
	// A policy set for the group is what every live collector answers with.
	doc, err := os.ReadFile(filepath.Join("..", "..", "policies", "baseline.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	doc = regexp.MustCompile(`(?m)^name: baseline$`).ReplaceAll(doc, []byte("name: staff-multi"))
	pf := filepath.Join(t.TempDir(), "staff.yaml")
	os.WriteFile(pf, doc, 0o600)
	e.run("policy", "set", "--group", "staff", pf)
	other := agents[1]
	for _, c := range alive {
		eventually(t, 5*time.Second, func() error {
			conn, err := other.dial(c.grpc)
			if err != nil {
				return err
			}
			defer conn.Close()
			cctx, cancel := context.WithTimeout(ctx, 3*time.Second)
			defer cancel()
			resp, err := wardv1grpc.NewAgentServiceClient(conn).GetPolicy(cctx, &wardv1.GetPolicyRequest{CurrentName: "baseline", CurrentVersion: 1})
			if err != nil {
				return err
			}
			if resp.Name != "staff-multi" {
				return fmt.Errorf("collector %s answers with policy %q, want staff-multi", c.grpc, resp.Name)
			}
			return nil
		})
	}

	// The dashboard: signed in on one collector, the session works on the
	// other, and both show the same fleet.
	out := e.run("user", "add", "--role", "admin", "amina")
	pw := regexp.MustCompile(`password: (\S+)`).FindStringSubmatch(out)
	if pw == nil {
		t.Fatalf("user add printed no password:\n%s", out)
	}
	jar, _ := cookiejar.New(nil) // cookies are per host, not per port: one session for both
	web := &http.Client{Jar: jar, Timeout: 10 * time.Second}
	signIn(t, web, cs[0].http, "amina", pw[1])
	day := time.Now().UTC().Format(time.DateOnly)
	var exports []string
	for _, c := range alive {
		resp, err := web.Get("http://" + c.http + "/export?format=csv&as_of=" + day)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || !bytes.Contains(body, []byte(agents[2].id)) {
			t.Fatalf("collector %s: export with the session of collector 0: %s\n%.300s", c.http, resp.Status, body)
		}
		// The rows, without the metadata lines (each says when it was made).
		exports = append(exports, regexp.MustCompile(`(?m)^# .*\n`).ReplaceAllString(string(body), ""))
	}
	if exports[0] != exports[1] {
		t.Errorf("the two collectors export different fleets:\n%.500s\n---\n%.500s", exports[0], exports[1])
	}
	if n := strings.Count(exports[0], "\n") - 1; n < nAgents {
		t.Errorf("the export has %d rows, want at least one per device (%d)", n, nAgents)
	}

	// A collector given another CA key file refuses to start.
	wrong := filepath.Join(t.TempDir(), "other.key")
	if err := pki.WriteCAKeyFile(wrong); err != nil {
		t.Fatal(err)
	}
	out4, err := exec.Command(e.bin, "serve", "--data", t.TempDir(), "--store", e.store, "--ca-key-file", wrong,
		"--grpc-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0").CombinedOutput()
	if err == nil || !strings.Contains(string(out4), "not the one the CA in the store was sealed with") {
		t.Errorf("serve with another CA key file: %v\n%s", err, out4)
	}

	// A CA rotation in the store reaches the live collectors: new
	// enrolments get the new CA, agents that trust only the old one still
	// verify the collectors (cross certificate) and are still accepted.
	e.run("ca", "rotate", "--ca-key-file", e.keyFile)
	next := regexp.MustCompile(`"fingerprint": "([^"]+)"`).FindStringSubmatch(e.run("ca", "show", "--json", "--ca-key-file", e.keyFile))
	if next == nil || next[1] == fp {
		t.Fatalf("ca show after the rotation: %v", next)
	}
	fresh, err := enrol(ctx, lb.addr(), fp, tok, 100) // pinned to the old CA: found in the chain
	if err != nil {
		t.Fatalf("enrol after the rotation: %v", err)
	}
	defer fresh.conn.Close()
	for _, c := range alive {
		eventually(t, 5*time.Second, func() error {
			n, err := enrol(ctx, c.grpc, fp, tok, 101)
			if err != nil {
				return err
			}
			n.conn.Close()
			if !n.issuedBy(next[1]) {
				return fmt.Errorf("collector %s still signs with the old CA", c.grpc)
			}
			return nil
		})
		old := agents[3]
		conn, err := old.dial(c.grpc)
		if err != nil {
			t.Fatal(err)
		}
		cctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		_, err = wardv1grpc.NewAgentServiceClient(conn).GetPolicy(cctx, &wardv1.GetPolicyRequest{})
		cancel()
		conn.Close()
		if err != nil {
			t.Errorf("collector %s after the rotation: an agent trusting only the old CA: %v", c.grpc, err)
		}
	}

	// Last, since it leaves this address throttled:
	// Refused enrolments are counted once for all collectors: through the
	// proxy (spread over both live collectors) the address has
	// refusedBurst refusals in total, not refusedBurst per collector.
	refused, throttled := 0, 0
	for range 3 * refusedBurst {
		_, err := enrol(ctx, lb.addr(), fp, "wrong-token-"+tok[:8], 99)
		switch status.Code(err) {
		case codes.ResourceExhausted:
			throttled++
		case codes.OK:
			t.Fatal("a wrong token enrolled")
		default:
			refused++
		}
	}
	if refused != refusedBurst || throttled != 2*refusedBurst {
		t.Errorf("wrong tokens through two collectors: %d refused, %d throttled; want %d refused (one shared allowance), %d throttled", refused, throttled, refusedBurst, 2*refusedBurst)
	}
}

// storedSequences lists the device's stored report sequences through
// the admin CLI.
func storedSequences(t *testing.T, e *env, id string) []uint64 {
	t.Helper()
	return reportSequences(t, e, id)
}

func signIn(t *testing.T, c *http.Client, addr, user, password string) {
	t.Helper()
	resp, err := c.Get("http://" + addr + "/login")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	m := regexp.MustCompile(`name="csrf" value="([^"]+)"`).FindSubmatch(body)
	if m == nil {
		t.Fatalf("no CSRF token on the sign-in page:\n%.500s", body)
	}
	resp, err = c.PostForm("http://"+addr+"/login", url.Values{"user": {user}, "password": {password}, "csrf": {string(m[1])}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || strings.HasSuffix(resp.Request.URL.Path, "/login") {
		t.Fatalf("sign in on %s: %s at %s", addr, resp.Status, resp.Request.URL)
	}
}

func eventually(t *testing.T, within time.Duration, f func() error) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("not within %s: %v", within, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// reportSequences reads the device's stored report sequences straight
// from the database, so that nothing of the collectors stands between
// the test and what is stored.
func reportSequences(t *testing.T, e *env, id string) []uint64 {
	t.Helper()
	conn, err := pgx.Connect(context.Background(), e.store)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	rows, err := conn.Query(context.Background(), `SELECT sequence FROM reports WHERE device_id = $1`, id)
	if err != nil {
		t.Fatal(err)
	}
	seqs, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	if err != nil {
		t.Fatal(err)
	}
	out := make([]uint64, len(seqs))
	for i, s := range seqs {
		out[i] = uint64(s)
	}
	return out
}

// refuse runs serve with args and wants it to exit with an error saying want.
func (e *env) refuse(want string, args ...string) {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, e.bin, args...).CombinedOutput()
	if err == nil || !strings.Contains(string(out), want) {
		e.t.Errorf("ward-collector %s: %v, want a refusal saying %q:\n%s", strings.Join(args, " "), err, want, out)
	}
}

// TestMoveFileCAIn: a collector that ran on PostgreSQL with the CA in its
// data directory moves the CA into the store (ca import); collectors with
// the key file then share it, and the devices it enrolled report to them.
// Meanwhile no second CA can appear beside the first.
func TestMoveFileCAIn(t *testing.T) {
	t.Parallel()
	e := &env{t: t, store: pgtest.URL(t), bin: build(t), admin: t.TempDir()}
	e.keyFile = filepath.Join(t.TempDir(), "ca.key")
	if err := pki.WriteCAKeyFile(e.keyFile); err != nil {
		t.Fatal(err)
	}
	first := filepath.Join(t.TempDir(), "first")
	c := e.startWith("first", first)
	fp := c.ca
	tok := strings.TrimSpace(e.run("token", "create", "--group", "staff", "--uses", "5", "--ttl", "1h"))
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	a, err := enrol(ctx, c.grpc, fp, tok, 1)
	if err != nil {
		t.Fatal(err)
	}
	defer a.conn.Close()
	if err := a.send(ctx, 1); err != nil {
		t.Fatal(err)
	}
	// While the file CA is the fleet's, a collector with the key file
	// would make a second CA: refused, as is another file CA.
	e.refuse("ca import", append(e.serveArgs(filepath.Join(t.TempDir(), "early")), "--ca-key-file", e.keyFile)...)
	e.refuse("use the file CA "+fp, e.serveArgs(filepath.Join(t.TempDir(), "other"))...)
	c.stop()

	if out := e.run("ca", "import", "--data", first, "--ca-key-file", e.keyFile); !strings.Contains(out, "imported CA "+fp) {
		t.Fatalf("ca import:\n%s", out)
	}
	// The first data directory still holds the key: refused with the key file.
	e.refuse("holds a CA of its own", append(e.serveArgs(first), "--ca-key-file", e.keyFile)...)
	shared := e.start("shared")
	if shared.ca != fp {
		t.Fatalf("after ca import, a collector with the key file has CA %s, want the imported %s", shared.ca, fp)
	}
	b, err := a.dial(shared.grpc)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	a.cli = wardv1grpc.NewAgentServiceClient(b)
	if err := a.send(ctx, 2); err != nil {
		t.Fatalf("a device enrolled under the file CA, reporting to a collector with the imported CA: %v", err)
	}
	// And back: ca export writes the store's CA as a data directory's files.
	back := t.TempDir()
	if out := e.run("ca", "export", "--data", back, "--ca-key-file", e.keyFile); !strings.Contains(out, fp) {
		t.Fatalf("ca export:\n%s", out)
	}
	ca, err := pki.Load(back, time.Now())
	if err != nil || ca.Fingerprint() != fp {
		t.Fatalf("the exported CA loads as %v, %v; want %s", ca, err, fp)
	}
}
