package cli_test

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
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
	cr := csv.NewReader(strings.NewReader(out))
	cr.Comment = '#'
	recs, err := cr.ReadAll()
	if err != nil || len(recs) < 2 || !strings.HasPrefix(out, "# ward-export/3") {
		t.Fatalf("export csv: %v\n%s", err, out)
	}
	states, _ := c.Store().RuleStates(ctx, id)
	if len(recs)-1 != len(states) {
		t.Errorf("%d rows, %d rule states", len(recs)-1, len(states))
	}
	col := map[string]int{}
	for i, h := range recs[0] {
		col[h] = i
	}
	var disk []string
	for _, r := range recs[1:] {
		if r[col["rule_id"]] == "disk-encrypted" {
			disk = r
		}
	}
	if disk == nil || disk[col["device_id"]] != id || disk[col["policy_name"]] != "baseline" || disk[col["policy_version"]] != "1" || disk[col["verdict"]] != "FAIL" ||
		disk[col["severity"]] != "critical" || disk[col["device_status"]] != "fresh" || disk[col["deadline"]] == "" || disk[col["overdue"]] != "no" || disk[col["since"]] == "" {
		t.Errorf("disk-encrypted row = %v", disk)
	}

	// Before the first report: refused (exit 3) with the reason, nothing
	// on stdout; in the future, refused too.
	for _, at := range []string{before.Format(time.RFC3339), "2001-01-01", "2999-12-31", "last tuesday"} {
		var o, e bytes.Buffer
		code := cli.Run(ctx, []string{"export", "--data", c.DataDir, "--format", "json", "--as-of", at}, &o, &e)
		if code != 3 || o.Len() != 0 || !strings.Contains(e.String(), "--as-of "+at) {
			t.Errorf("export --as-of %s: exit %d, stdout %q, stderr %q; want 3 and the reason", at, code, o.String(), e.String())
		}
	}

	// Into a directory: the dated file name; JSON an object.
	dir := t.TempDir()
	if _, errs, code := runIn(t, "", "export", "--data", c.DataDir, "--format", "json", "--output", dir); code != 0 || !strings.Contains(errs, "wrote ") {
		t.Fatalf("export --output DIR: %d %s", code, errs)
	}
	name := filepath.Join(dir, "ward-export-"+time.Now().UTC().Format("2006-01-02")+".json")
	b, err := os.ReadFile(name)
	var doc struct {
		Metadata struct {
			GeneratedAt time.Time `json:"generated_at"`
			Collector   struct{ Host, Version string }
			Rows        int
		}
		Rows []map[string]any
	}
	if err != nil || json.Unmarshal(b, &doc) != nil || doc.Metadata.Rows != len(states) || len(doc.Rows) != len(states) || doc.Metadata.Collector.Host == "" {
		t.Errorf("%s: %v\n%s", name, err, b)
	}
	// Never over an existing file.
	if code := cli.Run(ctx, []string{"export", "--data", c.DataDir, "--format", "json", "--output", dir}, io.Discard, io.Discard); code != 3 {
		t.Errorf("export over an existing file: exit %d, want 3", code)
	}
	if b2, _ := os.ReadFile(name); !bytes.Equal(b, b2) {
		t.Error("the existing export was changed")
	}
	if _, _, code := runIn(t, "", "export", "--data", c.DataDir, "--format", "xml"); code != 3 {
		t.Errorf("--format xml: exit %d, want 3", code)
	}
}
