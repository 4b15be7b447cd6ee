package cli_test

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/wardhq/ward/collector/cli"
	"github.com/wardhq/ward/collector/dashboard"
	"github.com/wardhq/ward/collector/server/servertest"
	"github.com/wardhq/ward/collector/store"
	wardv1 "github.com/wardhq/ward/proto/ward/v1"
	"github.com/wardhq/ward/proto/ward/v1/wardv1grpc"
)

func runIn(t *testing.T, stdin string, args ...string) (string, string, int) {
	t.Helper()
	var out, errb bytes.Buffer
	code := cli.RunInput(context.Background(), args, strings.NewReader(stdin), &out, &errb)
	return out.String(), errb.String(), code
}

func TestUserAdd(t *testing.T) {
	c := servertest.Start(t)
	st := c.Store().(store.Dashboard)
	out, errs, code := runIn(t, "a-long-enough-password\n", "user", "add", "--data", c.DataDir, "--role", "admin", "amina")
	if code != 0 || !strings.Contains(out, "created admin user amina") || strings.Contains(out, "password:") {
		t.Fatalf("user add: %d %q %q", code, out, errs)
	}
	u, err := st.User(context.Background(), "amina")
	if err != nil || u.Role != store.RoleAdmin || bcrypt.CompareHashAndPassword(u.Hash, []byte("a-long-enough-password")) != nil {
		t.Fatalf("stored user %+v, %v", u, err)
	}
	out, _, code = runIn(t, "", "user", "add", "--data", c.DataDir, "--role", "viewer", "victor")
	pw, ok := strings.CutPrefix(strings.Split(strings.TrimSpace(out), "\n")[1], "password: ")
	if code != 0 || !ok || len(pw) < dashboard.MinPasswordLen {
		t.Fatalf("user add with empty stdin should generate a password: %d %q", code, out)
	}
	if u, _ := st.User(context.Background(), "victor"); bcrypt.CompareHashAndPassword(u.Hash, []byte(pw)) != nil {
		t.Error("the printed password does not match the stored hash")
	}
	if _, errs, code := runIn(t, "short\n", "user", "add", "--data", c.DataDir, "--role", "viewer", "x"); code == 0 || !strings.Contains(errs, "at least") {
		t.Errorf("short password accepted: %d %q", code, errs)
	}
	if _, _, code := runIn(t, "a-long-enough-password\n", "user", "add", "--data", c.DataDir, "--role", "viewer", "amina"); code == 0 {
		t.Error("a second user amina was accepted")
	}
	if _, _, code := runIn(t, "a-long-enough-password\n", "user", "add", "--data", c.DataDir, "--role", "root", "z"); code == 0 {
		t.Error("role root was accepted")
	}
	if es, _ := st.Audit(context.Background(), 10); len(es) != 2 || es[0].Action != "user.add" {
		t.Errorf("audit = %+v", es)
	}
}

func TestExportNowAndAsOf(t *testing.T) {
	ctx := context.Background()
	c := servertest.Start(t)
	before := time.Now().UTC().Add(-time.Minute)
	id, cert := c.Enroll(ctx, c.Token("staff", 1, time.Hour), nil)
	f := false
	ok := &wardv1.Collection{Status: wardv1.CollectionStatus_COLLECTION_STATUS_OK}
	facts := &wardv1.Facts{
		CollectedAt:    timestamppb.Now(),
		Os:             &wardv1.OSFacts{Collection: ok, Platform: "linux", Name: "Debian GNU/Linux", Id: "debian", Version: "12"},
		DiskEncryption: &wardv1.DiskEncryptionFacts{Collection: ok, Volumes: []*wardv1.Volume{{MountPoint: "/", System: true, Encrypted: &f}}},
	}
	if _, err := wardv1grpc.NewAgentServiceClient(c.Dial(&cert)).Report(ctx, &wardv1.ReportRequest{Report: &wardv1.Report{
		Sequence: 1, CollectedAt: timestamppb.Now(), PolicyName: "baseline", PolicyVersion: 1, Facts: facts}}); err != nil {
		t.Fatal(err)
	}
	out, errs, code := runIn(t, "", "export", "--data", c.DataDir, "--format", "csv")
	if code != 0 {
		t.Fatalf("export: %s", errs)
	}
	recs, err := csv.NewReader(strings.NewReader(out)).ReadAll()
	if err != nil || len(recs) < 2 {
		t.Fatalf("export csv: %v\n%s", err, out)
	}
	states, _ := c.Store().RuleStates(ctx, id)
	if len(recs)-1 != len(states) {
		t.Errorf("%d rows, %d rule states", len(recs)-1, len(states))
	}
	var disk []string
	for _, r := range recs[1:] {
		if r[3] == "disk-encrypted" {
			disk = r
		}
	}
	if disk == nil || disk[0] != id || disk[5] != "baseline" || disk[6] != "1" || disk[7] != "FAIL" || disk[10] == "" {
		t.Errorf("disk-encrypted row = %v", disk)
	}
	out, errs, code = runIn(t, "", "export", "--data", c.DataDir, "--format", "json", "--as-of", before.Format(time.RFC3339))
	var rows []store.StateRow
	if code != 0 || json.Unmarshal([]byte(out), &rows) != nil || len(rows) != 0 {
		t.Errorf("export as of before the first report: %d %q %q", code, out, errs)
	}
	if _, _, code := runIn(t, "", "export", "--data", c.DataDir, "--format", "xml"); code == 0 {
		t.Error("--format xml accepted")
	}
}
