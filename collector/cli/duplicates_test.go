package cli_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/wardhq/ward/collector/cli"
	"github.com/wardhq/ward/collector/server/servertest"
	"github.com/wardhq/ward/collector/store"
	wardv1 "github.com/wardhq/ward/proto/ward/v1"
	"github.com/wardhq/ward/proto/ward/v1/wardv1grpc"
)

func TestDuplicatesRetireAndRebindToken(t *testing.T) {
	ctx := context.Background()
	c := servertest.Start(t)
	data := c.DataDir
	info := &wardv1.DeviceInfo{Hostname: "laptop-7", Platform: "linux", MachineId: "m-7"}
	first, firstCert := c.Enroll(ctx, c.Token("staff", 1, time.Hour), info)
	second, _ := c.Enroll(ctx, c.Token("staff", 1, time.Hour), info)
	c.Enroll(ctx, c.Token("staff", 1, time.Hour), &wardv1.DeviceInfo{Hostname: "other", MachineId: "m-8"})

	out, code := run(t, "device", "duplicates", "--data", data, "--json")
	if code != 0 {
		t.Fatal("device duplicates failed")
	}
	var sets []store.DuplicateSet
	if err := json.Unmarshal([]byte(out), &sets); err != nil {
		t.Fatalf("duplicates --json: %v\n%s", err, out)
	}
	if len(sets) != 1 || sets[0].MachineID != "m-7" || len(sets[0].Devices) != 2 || sets[0].Devices[0].ID != first || sets[0].Devices[1].ID != second {
		t.Fatalf("duplicates = %+v, want m-7: %s, %s", sets, first, second)
	}
	if out, _ := run(t, "device", "duplicates", "--data", data); !strings.Contains(out, first) || !strings.Contains(out, "device retire") {
		t.Errorf("duplicates table:\n%s", out)
	}

	sumOf := func() cli.Summary {
		out, _ := run(t, "fleet", "summary", "--data", data, "--json")
		var s cli.Summary
		if err := json.Unmarshal([]byte(out), &s); err != nil {
			t.Fatal(err)
		}
		return s
	}
	if out, _ := run(t, "device", "show", "--data", data, second); !strings.Contains(out, "likely duplicate: same machine id and group as "+first) {
		t.Errorf("device show lacks the likely-duplicate line:\n%s", out)
	}
	before := sumOf()
	if out, code := run(t, "device", "retire", "--data", data, first); code != 0 || !strings.Contains(out, "retired device "+first) {
		t.Fatalf("device retire: %d %q", code, out)
	}
	if _, code := run(t, "device", "retire", "--data", data, "dev_nope"); code == 0 {
		t.Error("retiring an unknown device succeeded")
	}
	if after := sumOf(); after.Devices != before.Devices-1 {
		t.Errorf("fleet devices %d → %d, want one fewer", before.Devices, after.Devices)
	}
	_, err := wardv1grpc.NewAgentServiceClient(c.Dial(&firstCert)).Report(ctx, &wardv1.ReportRequest{Report: &wardv1.Report{Sequence: 1}})
	if status.Code(err) != codes.PermissionDenied {
		t.Errorf("retired device's certificate: %v, want PERMISSION_DENIED", err)
	}
	if out, _ := run(t, "device", "duplicates", "--data", data, "--json"); strings.TrimSpace(out) != "[]" {
		t.Errorf("duplicates after retiring: %s", out)
	}
	if d, err := c.Store().Device(ctx, first); err != nil || !d.Revoked() {
		t.Errorf("retired device = %+v, %v (its record must stay)", d, err)
	}

	// A re-bind token re-binds exactly the second device, once.
	if _, code := run(t, "token", "create", "--data", data, "--rebind", second, "--group", "staff"); code == 0 {
		t.Error("--rebind with --group accepted")
	}
	if _, code := run(t, "token", "create", "--data", data, "--rebind", first); code == 0 {
		t.Error("re-bind token for a retired device created")
	}
	out, code = run(t, "token", "create", "--data", data, "--rebind", second, "--json")
	if code != 0 {
		t.Fatal("token create --rebind failed")
	}
	var tok struct {
		Token, ID string
		Dev       string `json:"rebind_device"`
		Uses      int
	}
	if err := json.Unmarshal([]byte(out), &tok); err != nil || tok.Dev != second || tok.Uses != 1 || !strings.HasPrefix(tok.Token, "wet_") {
		t.Fatalf("token create --rebind --json: %s (%v)", out, err)
	}
	id, _ := c.Enroll(ctx, tok.Token, &wardv1.DeviceInfo{Hostname: "laptop-7-new-disk", MachineId: "m-new"})
	if id != second {
		t.Fatalf("re-bind token enrolled %s, want %s", id, second)
	}
	if _, _, err := c.TryEnroll(ctx, tok.Token, nil); status.Code(err) != codes.PermissionDenied {
		t.Errorf("second use of the re-bind token: %v", err)
	}
	if out, _ := run(t, "token", "list", "--data", data); !strings.Contains(out, second) {
		t.Errorf("token list does not show the re-bound device:\n%s", out)
	}
	es, err := c.Store().(store.Dashboard).Audit(ctx, 100)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]bool{"device.retire": false, "token.create": false, "device.rebind": false, "device.duplicate": false}
	for _, e := range es {
		if _, ok := want[e.Action]; ok {
			want[e.Action] = true
		}
	}
	for a, ok := range want {
		if !ok {
			t.Errorf("audit lacks %s", a)
		}
	}
}
