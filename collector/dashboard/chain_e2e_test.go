package dashboard_test

import (
	"context"
	"crypto"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/wardhq/ward/evidence"
	wardv1 "github.com/wardhq/ward/proto/ward/v1"
	"github.com/wardhq/ward/proto/ward/v1/wardv1grpc"
)

// TestChainSectionInBrowser: a device whose sealed reports 2 to 4 never
// arrive (its agent counted two of them dropped) and whose report 7
// claims the predecessor report 5 already claims. Its device page shows a
// Chain section with the gap told apart (2 dropped, 1 unexplained) and
// the fork; a device with an unbroken chain (or none) shows no section.
func TestChainSectionInBrowser(t *testing.T) {
	f := startFleet(t)
	ctx := context.Background()
	resp, cert, err := f.c.TryEnroll(ctx, f.c.Token("staff", 1, time.Hour), &wardv1.DeviceInfo{Hostname: "lin-chain", Platform: "linux", OsName: "Debian GNU/Linux", OsVersion: "12", Architecture: "amd64", AgentVersion: "test", MachineId: "lin-chain"})
	if err != nil {
		t.Fatal(err)
	}
	id, key := resp.DeviceId, cert.PrivateKey.(crypto.Signer)
	agent := wardv1grpc.NewAgentServiceClient(f.c.Dial(&cert))
	hashes := map[uint64][]byte{0: evidence.Genesis(id, resp.Epoch, resp.CertificateDer)}
	seal := func(seq uint64, prev []byte, dropped uint64) *wardv1.ReportRequest {
		t.Helper()
		r := &wardv1.Report{Epoch: resp.Epoch, Sequence: seq, CollectedAt: timestamppb.Now(), AgentVersion: "test", PolicyName: "baseline", PolicyVersion: 1,
			Facts: &wardv1.Facts{CollectedAt: timestamppb.Now(), Os: &wardv1.OSFacts{Platform: "linux", Name: "Debian GNU/Linux", Version: "12"}}}
		h, err := evidence.Seal(key, id, r, prev, dropped)
		if err != nil {
			t.Fatal(err)
		}
		hashes[seq] = h
		return &wardv1.ReportRequest{Report: r}
	}
	send := func(req *wardv1.ReportRequest) {
		t.Helper()
		if _, err := agent.Report(ctx, req); err != nil {
			t.Fatalf("report %d: %v", req.Report.Sequence, err)
		}
	}
	send(seal(1, hashes[0], 0))
	seal(2, hashes[1], 0)
	seal(3, hashes[2], 1)
	seal(4, hashes[3], 2)
	send(seal(5, hashes[4], 2))
	send(seal(7, hashes[4], 2))

	viewer := newClient(t, f.base)
	viewer.login("victor", "victor-correct-horse")
	if _, page := viewer.do("GET", "/devices/"+f.devices["win-ok"], nil); strings.Contains(page, `id="chain"`) {
		t.Error("a device with nothing to show has a Chain section")
	}

	bctx := browser(t)
	signIn(t, bctx, f.base, "victor")
	run(t, bctx, "open the device page",
		chromedp.Navigate(f.base+"/devices/"+id),
		chromedp.WaitVisible(chromedp.CSS("#chain")),
	)
	screenshot(t, bctx, "chain")
	if got, want := text(t, bctx, "#chain-summary"), "4 missing (2 dropped by the agent, 2 unexplained); 1 fork."; !strings.Contains(got, want) {
		t.Errorf("summary %q lacks %q", got, want)
	}
	rows := strings.Split(text(t, bctx, "#chain-gaps tbody"), "\n")
	if len(rows) != 2 {
		t.Fatalf("gap rows %q, want 2", rows)
	}
	for i, want := range []string{
		"1\treports 2 to 4 (between 1 and 5)\t3\t2\t1\t",
		"1\treport 6 (between 5 and 7)\t1\t0\t1\t",
	} {
		if !strings.Contains(rows[i], want) {
			t.Errorf("gap row %d %q lacks %q", i, rows[i], want)
		}
	}
	fork := text(t, bctx, "#chain-forks tbody")
	if want := "7\treport 7 names predecessor " + short(hashes[4]) + ", which report 5 (" + short(hashes[5]) + ") also claims"; !strings.Contains(fork, want) {
		t.Errorf("fork row %q lacks %q", fork, want)
	}
}

func short(b []byte) string {
	const hex = "0123456789abcdef"
	var s strings.Builder
	for _, c := range b[:8] {
		s.WriteByte(hex[c>>4])
		s.WriteByte(hex[c&15])
	}
	return s.String() + "…"
}
