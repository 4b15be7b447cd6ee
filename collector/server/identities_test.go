package server_test

import (
	"context"
	"testing"
	"time"

	"google.golang.org/grpc/codes"

	"github.com/wardhq/ward/collector/server"
	"github.com/wardhq/ward/collector/server/servertest"
)

// TestRevocationReachesKeptConnections revokes a device through the
// store directly, as an administrator command or another collector on
// the same database would, while the device keeps its connection open.
func TestRevocationReachesKeptConnections(t *testing.T) {
	ctx := context.Background()
	t.Run("within the TTL", func(t *testing.T) {
		const ttl = 200 * time.Millisecond
		c := servertest.Start(t, func(cfg *server.Config) { cfg.IdentityTTL = ttl })
		id, cert := c.Enroll(ctx, c.Token("staff", 1, time.Hour), nil)
		kept := agentClient(c, &cert)
		if _, err := kept.Report(ctx, newReport(1, simpleFacts())); err != nil {
			t.Fatal(err)
		}
		if err := c.Store().RevokeDevice(ctx, id, time.Now()); err != nil {
			t.Fatal(err)
		}
		time.Sleep(ttl + 50*time.Millisecond)
		_, err := kept.Report(ctx, newReport(2, simpleFacts()))
		wantCode(t, err, codes.PermissionDenied)
		if rs := c.Reports(id); len(rs) != 1 {
			t.Errorf("%d reports stored, want 1", len(rs))
		}
	})
	t.Run("cached per connection", func(t *testing.T) {
		// With a long TTL the kept connection still passes (its identity
		// is cached), but a new connection is checked in full.
		c := servertest.Start(t, func(cfg *server.Config) { cfg.IdentityTTL = time.Hour })
		id, cert := c.Enroll(ctx, c.Token("staff", 1, time.Hour), nil)
		kept := agentClient(c, &cert)
		if _, err := kept.Report(ctx, newReport(1, simpleFacts())); err != nil {
			t.Fatal(err)
		}
		if err := c.Store().RevokeDevice(ctx, id, time.Now()); err != nil {
			t.Fatal(err)
		}
		if _, err := kept.Report(ctx, newReport(2, simpleFacts())); err != nil {
			t.Errorf("kept connection within its TTL: %v", err)
		}
		_, err := agentClient(c, &cert).Report(ctx, newReport(3, simpleFacts()))
		wantCode(t, err, codes.PermissionDenied)
	})
	t.Run("no cache", func(t *testing.T) {
		c := servertest.Start(t, func(cfg *server.Config) { cfg.IdentityTTL = -1 })
		id, cert := c.Enroll(ctx, c.Token("staff", 1, time.Hour), nil)
		kept := agentClient(c, &cert)
		if _, err := kept.Report(ctx, newReport(1, simpleFacts())); err != nil {
			t.Fatal(err)
		}
		if err := c.Store().RevokeDevice(ctx, id, time.Now()); err != nil {
			t.Fatal(err)
		}
		_, err := kept.Report(ctx, newReport(2, simpleFacts()))
		wantCode(t, err, codes.PermissionDenied)
	})
}
