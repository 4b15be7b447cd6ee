package server_test

import (
	"context"
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/wardhq/ward/collector/server/servertest"
	wardv1 "github.com/wardhq/ward/proto/ward/v1"
)

// pad appends n bytes of an unknown length-delimited field to m.
func pad(t *testing.T, m proto.Message, n int) {
	t.Helper()
	b, err := proto.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	b = protowire.AppendTag(b, 9999, protowire.BytesType)
	b = protowire.AppendBytes(b, make([]byte, n))
	proto.Reset(m)
	if err := proto.Unmarshal(b, m); err != nil {
		t.Fatal(err)
	}
	if len(m.ProtoReflect().GetUnknown()) < n {
		t.Fatal("padding not kept as an unknown field")
	}
}

func TestUnknownFieldsDiscardedBeforeStoring(t *testing.T) {
	ctx := context.Background()
	c := servertest.Start(t)
	id, cert := c.Enroll(ctx, c.Token("staff", 1, time.Hour), nil)
	req := newReport(1, simpleFacts())
	// About 4 MiB in all, at three depths, within the 4 MiB limit.
	pad(t, req.Report.Facts.Os, 1<<20)
	pad(t, req.Report.Facts, 1<<20)
	pad(t, req.Report, 2<<20-64<<10)
	if n := proto.Size(req); n < 4<<20-128<<10 || n > 4<<20 {
		t.Fatalf("request is %d bytes", n)
	}
	clean := proto.Clone(req).(*wardv1.ReportRequest)
	clean.Report.Facts.Os.ProtoReflect().SetUnknown(nil)
	clean.Report.Facts.ProtoReflect().SetUnknown(nil)
	clean.Report.ProtoReflect().SetUnknown(nil)
	if _, err := agentClient(c, &cert).Report(ctx, req); err != nil {
		t.Fatal(err)
	}
	reps := c.Reports(id)
	if len(reps) != 1 {
		t.Fatalf("%d reports", len(reps))
	}
	want, _ := proto.MarshalOptions{Deterministic: true}.Marshal(clean.Report.Facts)
	if got := len(reps[0].Facts); got != len(want) || got > 4<<10 {
		t.Fatalf("stored facts are %d bytes, want %d (the padding discarded)", got, len(want))
	}
	t.Logf("request %d bytes, stored facts %d bytes", proto.Size(req), len(reps[0].Facts))
	// The same report without the padding is the same report.
	if _, err := agentClient(c, &cert).Report(ctx, clean); err != nil {
		t.Fatalf("the unpadded redelivery: %v", err)
	}
	if n := len(c.Reports(id)); n != 1 {
		t.Fatalf("%d reports after the redelivery", n)
	}
}
