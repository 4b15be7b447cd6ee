package server_test

import (
	"context"
	"path/filepath"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/time/rate"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/wardhq/ward/agent/collect"
	"github.com/wardhq/ward/agent/source"
	"github.com/wardhq/ward/collector/server"
	"github.com/wardhq/ward/collector/server/servertest"
	wardv1 "github.com/wardhq/ward/proto/ward/v1"
	"github.com/wardhq/ward/proto/ward/v1/wardv1grpc"
)

// BenchmarkReportKeptConnections is 64 enrolled devices reporting at
// once, each on its own kept mTLS connection, through the whole
// collector (interceptors, evaluation of the baseline policy, store),
// with the facts of a recorded Debian laptop whose collection time
// changes every round.
func BenchmarkReportKeptConnections(b *testing.B) {
	ctx := context.Background()
	c := servertest.Start(b, func(cfg *server.Config) { cfg.RateLimit = rate.Inf })
	m, rec, err := source.OpenBundle(filepath.Join("..", "..", "agent", "testdata", "bundles", "linux-debian12-sandbox"))
	if err != nil {
		b.Fatal(err)
	}
	facts := collect.All(ctx, rec, m.CreatedAt)
	const devices = 64
	tok := c.Token("staff", devices, time.Hour)
	clients := make([]wardv1grpc.AgentServiceClient, devices)
	for i := range clients {
		_, cert := c.Enroll(ctx, tok, nil)
		clients[i] = wardv1grpc.NewAgentServiceClient(c.Dial(&cert))
	}
	var next, failed atomic.Int64
	b.SetParallelism(max(1, devices/runtime.GOMAXPROCS(0)))
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		client := clients[int(next.Add(1)-1)%devices]
		seq := uint64(0)
		for pb.Next() {
			seq++
			f := proto.Clone(facts).(*wardv1.Facts)
			f.CollectedAt = timestamppb.Now()
			req := &wardv1.ReportRequest{Report: &wardv1.Report{Sequence: seq, CollectedAt: timestamppb.Now(),
				AgentVersion: "test", PolicyName: "baseline", PolicyVersion: 1, Facts: f}}
			if _, err := client.Report(ctx, req); err != nil {
				if failed.Add(1) == 1 {
					b.Logf("first failure: %v", err)
				}
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "reports/s")
	b.ReportMetric(float64(failed.Load()), "failed")
}
