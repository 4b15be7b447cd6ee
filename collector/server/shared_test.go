package server_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/wardhq/ward/collector/pki"
	"github.com/wardhq/ward/collector/server"
	"github.com/wardhq/ward/collector/server/servertest"
	"github.com/wardhq/ward/collector/store/postgres"
	"github.com/wardhq/ward/collector/store/postgres/pgtest"
	wardv1 "github.com/wardhq/ward/proto/ward/v1"
	"github.com/wardhq/ward/proto/ward/v1/wardv1grpc"
)

// TestRevocationElsewhereReachesTheIdentityCache: with the identity cache
// trusting a connection's device for an hour, a revocation made through
// another collector's store still refuses the next call on the kept
// connection, within moments: the notification drops the entry.
func TestRevocationElsewhereReachesTheIdentityCache(t *testing.T) {
	ctx := context.Background()
	dsn := pgtest.DSN(t)
	keyFile := filepath.Join(t.TempDir(), "ca.key")
	if err := pki.WriteCAKeyFile(keyFile); err != nil {
		t.Fatal(err)
	}
	key, err := pki.ReadCAKeyFile(keyFile)
	if err != nil {
		t.Fatal(err)
	}
	open := func() *postgres.Store {
		st, err := postgres.Open(ctx, dsn, postgres.Options{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		return st
	}
	a := servertest.Start(t, func(c *server.Config) { c.Store, c.CAKey, c.IdentityTTL = open(), key, time.Hour })
	b := open() // the other collector's store
	id, cert := a.Enroll(ctx, a.Token("staff", 1, time.Hour), nil)
	cli := wardv1grpc.NewAgentServiceClient(a.Dial(&cert))
	if _, err := cli.GetPolicy(ctx, &wardv1.GetPolicyRequest{}); err != nil {
		t.Fatal(err) // the identity is cached now
	}
	if err := b.RevokeDevice(ctx, id, time.Now()); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		_, err := cli.GetPolicy(ctx, &wardv1.GetPolicyRequest{})
		if status.Code(err) == codes.PermissionDenied {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("5 s after a revocation elsewhere, the kept connection's call: %v, want PermissionDenied", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
