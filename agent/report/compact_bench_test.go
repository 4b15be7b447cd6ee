package report_test

import (
	"bytes"
	"context"
	"path/filepath"
	"testing"
	"time"

	"google.golang.org/grpc/encoding"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/wardhq/ward/agent/collect"
	"github.com/wardhq/ward/agent/source"
	"github.com/wardhq/ward/policies"
	wardv1 "github.com/wardhq/ward/proto/ward/v1"
)

// BenchmarkReportEncoding measures what gzip costs the agent per full
// report in the compact form (the largest bundle's), against marshalling
// it alone as the yardstick: the bytes it saves are in TestReportBytes.
func BenchmarkReportEncoding(b *testing.B) {
	_, rec, err := source.OpenBundle(filepath.Join("..", "testdata", "bundles", "windows-bitlocker-suspended-firewall-public-off"))
	if err != nil {
		b.Fatal(err)
	}
	now := time.Now()
	f := collect.All(context.Background(), rec, now)
	pol, err := policies.Embedded("baseline")
	if err != nil {
		b.Fatal(err)
	}
	r := &wardv1.Report{Sequence: 1, CollectedAt: timestamppb.New(now), PolicyName: pol.Name, PolicyVersion: 1, Facts: f}
	for _, v := range policies.Evaluate(context.Background(), pol, f, policies.Options{Now: now}) {
		r.Results = append(r.Results, &wardv1.RuleResult{RuleId: v.RuleID})
	}
	req := &wardv1.ReportRequest{Report: r}
	gz := encoding.GetCompressor("gzip")
	b.Run("marshal", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := proto.Marshal(req); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("marshal+gzip", func(b *testing.B) {
		b.ReportAllocs()
		var out bytes.Buffer
		for b.Loop() {
			msg, err := proto.Marshal(req)
			if err != nil {
				b.Fatal(err)
			}
			out.Reset()
			w, err := gz.Compress(&out)
			if err != nil {
				b.Fatal(err)
			}
			w.Write(msg)
			w.Close()
		}
		b.ReportMetric(float64(out.Len()), "bytes/report")
		b.ReportMetric(float64(proto.Size(req)), "bytes/uncompressed")
	})
}
