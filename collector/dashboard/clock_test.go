package dashboard_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	wardv1 "github.com/wardhq/ward/proto/ward/v1"
	"github.com/wardhq/ward/proto/ward/v1/wardv1grpc"
)

// A report dated by a wrong agent clock is flagged on the device page;
// one with a plausible date is not.
func TestDevicePageFlagsAgentClock(t *testing.T) {
	ctx := context.Background()
	f := startFleet(t)
	id, cert := f.c.Enroll(ctx, f.c.Token("field", 1, time.Hour), nil)
	_, err := wardv1grpc.NewAgentServiceClient(f.c.Dial(&cert)).Report(ctx, &wardv1.ReportRequest{Report: &wardv1.Report{
		Sequence: 1, CollectedAt: timestamppb.New(time.Date(1600, 1, 1, 0, 0, 0, 0, time.UTC)), AgentVersion: "test",
		PolicyName: "baseline", PolicyVersion: 1, Facts: &wardv1.Facts{Os: &wardv1.OSFacts{Platform: "linux"}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	viewer := newClient(t, f.base)
	viewer.login("victor", "victor-correct-horse")
	if _, page := viewer.do("GET", "/devices/"+id, nil); !strings.Contains(page, `id="clock-suspect"`) || !strings.Contains(page, "1600-01-01 00:00 UTC") {
		t.Errorf("device page does not flag the agent's clock:\n%s", page)
	}
	if _, page := viewer.do("GET", "/devices/"+f.devices["win-ok"], nil); strings.Contains(page, `id="clock-suspect"`) {
		t.Error("a device with a plausible clock is flagged")
	}
}
