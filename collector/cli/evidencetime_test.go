package cli_test

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/wardhq/ward/collector/dashboard"
	"github.com/wardhq/ward/collector/server"
	"github.com/wardhq/ward/collector/server/servertest"
	"github.com/wardhq/ward/collector/store/postgres/pgtest"
	wardv1 "github.com/wardhq/ward/proto/ward/v1"
	"github.com/wardhq/ward/proto/ward/v1/wardv1grpc"
)

// TestExportAsOfLateReports: a device reports an encrypted disk on day 0,
// then is offline for ten days, collecting a report each day that finds
// the disk unencrypted, and delivers them all on day 11 (over real gRPC
// and mTLS, queued_millis saying how long each waited). export --as-of
// day 5 shows the FAIL collected on day 5, with received_at day 11
// alongside, not the PASS received before the device went offline; on
// SQLite and PostgreSQL.
func TestExportAsOfLateReports(t *testing.T) {
	for _, backend := range []string{"sqlite", "postgres"} {
		t.Run(backend, func(t *testing.T) {
			ctx := context.Background()
			var mu sync.Mutex
			now := time.Now().UTC().Truncate(time.Second)
			clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
			set := func(t time.Time) { mu.Lock(); now = t; mu.Unlock() }
			var args []string
			opts := func(cfg *server.Config) { cfg.Now = clock }
			if backend == "postgres" {
				url := pgtest.URL(t)
				opts = func(cfg *server.Config) { cfg.Now, cfg.StoreSpec = clock, url }
				args = []string{"--store", url}
			}
			c := servertest.Start(t, opts)
			id, cert := c.Enroll(ctx, c.Token("staff", 1, time.Hour), nil)
			client := wardv1grpc.NewAgentServiceClient(c.Dial(&cert))
			start := clock().Add(time.Minute)
			day := func(n int) time.Time { return start.Add(time.Duration(n) * 24 * time.Hour) }
			ok := &wardv1.Collection{Status: wardv1.CollectionStatus_COLLECTION_STATUS_OK}
			send := func(seq uint64, collected time.Time, encrypted bool) {
				t.Helper()
				facts := &wardv1.Facts{
					CollectedAt:    timestamppb.New(collected),
					Os:             &wardv1.OSFacts{Collection: ok, Platform: "linux", Name: "Debian GNU/Linux", Id: "debian", Version: "12"},
					DiskEncryption: &wardv1.DiskEncryptionFacts{Collection: ok, Volumes: []*wardv1.Volume{{MountPoint: "/", System: true, Encrypted: &encrypted}}},
				}
				if v := facts.DiskEncryption.Volumes[0]; encrypted {
					v.Protection, v.Conversion = wardv1.Protection_PROTECTION_ON, wardv1.Conversion_CONVERSION_FULLY_ENCRYPTED
				}
				queued := uint64(clock().Sub(collected) / time.Millisecond)
				if _, err := client.Report(ctx, &wardv1.ReportRequest{QueuedMillis: queued, Report: &wardv1.Report{
					Sequence: seq, CollectedAt: timestamppb.New(collected), PolicyName: "baseline", PolicyVersion: 2, Facts: facts}}); err != nil {
					t.Fatal(err)
				}
			}
			set(start)
			send(1, start, true)
			set(day(11))
			for n := 1; n <= 10; n++ {
				send(uint64(n+1), day(n), false)
			}
			export := func(format string, at time.Time) string {
				t.Helper()
				a := append([]string{"export", "--data", c.DataDir, "--format", format, "--as-of", at.Format(time.RFC3339), "--now", day(11).Add(time.Hour).Format(time.RFC3339)}, args...)
				out, errs, code := runIn(t, "", a...)
				if code != 0 {
					t.Fatalf("export --as-of %s: %d %s", at, code, errs)
				}
				return out
			}
			// CSV: the disk-encrypted row, by the header's names.
			out := export("csv", day(5).Add(time.Hour))
			if !strings.HasPrefix(out, "# "+dashboard.ExportFormat+":") {
				t.Errorf("export starts %q, want the format %s", out[:min(len(out), 40)], dashboard.ExportFormat)
			}
			cr := csv.NewReader(strings.NewReader(out))
			cr.Comment = '#'
			recs, err := cr.ReadAll()
			if err != nil || len(recs) < 2 {
				t.Fatalf("export CSV: %v\n%s", err, out)
			}
			col := func(name string) int {
				i := slices.Index(recs[0], name)
				if i < 0 {
					t.Fatalf("no column %s in %v", name, recs[0])
				}
				return i
			}
			var disk []string
			for _, r := range recs[1:] {
				if r[col("rule_id")] == "disk-encrypted" {
					disk = r
				}
			}
			if disk == nil {
				t.Fatalf("no disk-encrypted row in\n%s", out)
			}
			if got := [4]string{disk[col("verdict")], disk[col("last_report")], disk[col("received_at")], disk[col("since")]}; got !=
				[4]string{"FAIL", day(5).Format(time.RFC3339), day(11).Format(time.RFC3339), day(1).Format(time.RFC3339)} {
				t.Errorf("as of day 5: verdict, last_report (collected), received_at, since = %q; want FAIL collected on day 5, received day 11, failing since day 1", got)
			}
			if recs[0][len(recs[0])-1] != "received_at" {
				t.Errorf("received_at is not the last column (readers by position): %v", recs[0])
			}
			// JSON: the same row; as of day 0, the PASS received then.
			var e dashboard.Export
			if err := json.Unmarshal([]byte(export("json", day(5).Add(time.Hour))), &e); err != nil {
				t.Fatal(err)
			}
			for _, r := range e.Rows {
				if r.RuleID == "disk-encrypted" && (r.Verdict != "FAIL" || r.LastReport == nil || !r.LastReport.Equal(day(5)) || r.ReceivedAt == nil || !r.ReceivedAt.Equal(day(11)) || r.DeviceStatus != dashboard.ExportFresh) {
					t.Errorf("JSON as of day 5: %s %s last_report %v received_at %v, want fresh FAIL collected day 5, received day 11", r.DeviceStatus, r.Verdict, r.LastReport, r.ReceivedAt)
				}
			}
			if err := json.Unmarshal([]byte(export("json", start.Add(time.Hour))), &e); err != nil {
				t.Fatal(err)
			}
			for _, r := range e.Rows {
				if r.RuleID == "disk-encrypted" && (r.Verdict != "PASS" || r.ReceivedAt == nil || !r.ReceivedAt.Equal(start)) {
					t.Errorf("JSON as of day 0: %s received_at %v, want PASS received %v", r.Verdict, r.ReceivedAt, start)
				}
			}
			// The device's history says the change came late.
			show, errs, code := runIn(t, "", append([]string{"device", "show", "--data", c.DataDir, "--now", day(11).Add(time.Hour).Format(time.RFC3339), id}, args...)...)
			if code != 0 || !strings.Contains(show, day(1).Format(time.RFC3339)+"  disk-encrypted  PASS -> FAIL (report 2, received "+day(11).Format(time.RFC3339)+")") {
				t.Errorf("device show (%d %s):\n%s\nwant the change to FAIL at day 1, received day 11", code, errs, show)
			}
		})
	}
}
