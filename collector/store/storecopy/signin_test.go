package storecopy_test

import (
	"bytes"
	"context"
	"database/sql"
	"path/filepath"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/wardhq/ward/collector/store"
	"github.com/wardhq/ward/collector/store/postgres"
	"github.com/wardhq/ward/collector/store/postgres/pgtest"
	"github.com/wardhq/ward/collector/store/sqlite"
	"github.com/wardhq/ward/collector/store/storecopy"
)

// TestCopyKeepsSignIn: moving to PostgreSQL keeps second factors (sealed
// secret, last used step) and OpenID Connect links, so no user loses
// either.
func TestCopyKeepsSignIn(t *testing.T) {
	ctx := context.Background()
	t0 := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
	path := filepath.Join(t.TempDir(), "ward.db")
	st, err := sqlite.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.CreateUser(ctx, store.User{Name: "amina", Role: store.RoleAdmin, Hash: []byte("$2a$x"), CreatedAt: t0}); err != nil {
		t.Fatal(err)
	}
	if err := st.SetTOTP(ctx, "amina", []byte("sealed-secret"), t0); err != nil {
		t.Fatal(err)
	}
	if err := st.ConfirmTOTP(ctx, "amina", 1234, t0); err != nil {
		t.Fatal(err)
	}
	if _, err := st.LinkOIDC(ctx, store.OIDCLink{Issuer: "https://idp.example", Subject: "s-1", Name: "lee@example.com", Role: store.RoleViewer, At: t0}); err != nil {
		t.Fatal(err)
	}
	st.Close()
	src, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(10000)")
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	url := pgtest.URL(t)
	pst, err := postgres.Open(ctx, url, postgres.Options{})
	if err != nil {
		t.Fatal(err)
	}
	pst.Close()
	dst, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer dst.Close(ctx)
	if _, err := storecopy.SQLiteToPostgres(ctx, src, dst); err != nil {
		t.Fatal(err)
	}
	pst, err = postgres.Open(ctx, url, postgres.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer pst.Close()
	got, err := pst.TOTP(ctx, "amina")
	if err != nil || !bytes.Equal(got.Secret, []byte("sealed-secret")) || got.LastStep != 1234 || got.ConfirmedAt == nil || !got.ConfirmedAt.Equal(t0) {
		t.Fatalf("TOTP after the copy = %+v, %v", got, err)
	}
	if ok, err := pst.UseTOTPStep(ctx, "amina", 1234); err != nil || ok {
		t.Fatalf("the used step is usable again after the copy: %v, %v", ok, err)
	}
	u, err := pst.LinkOIDC(ctx, store.OIDCLink{Issuer: "https://idp.example", Subject: "s-1", Name: "lee.new@example.com", Role: store.RoleAdmin, At: t0.Add(time.Hour)})
	if err != nil || u.Name != "lee@example.com" || !u.CreatedAt.Equal(t0) {
		t.Fatalf("OIDC link after the copy: %+v, %v", u, err)
	}
}
