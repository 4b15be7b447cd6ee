// Package pgtest gives tests a fresh PostgreSQL database of their own on
// the server named by WARD_TEST_POSTGRES (a libpq URL or keyword DSN of a
// role that may CREATE DATABASE). Without the variable it tries Debian's
// default cluster over its Unix socket as the current OS user (peer
// authentication), which scripts/test.sh starts and gives a role.
//
// When no server answers, tests are skipped with the reason, except under
// CI=true, where a missing PostgreSQL fails the run: the PostgreSQL store
// must be tested there.
package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// DefaultServer is the server tried when WARD_TEST_POSTGRES is unset.
const DefaultServer = "host=/var/run/postgresql dbname=postgres"

// Server returns the DSN of the test server's maintenance database.
func Server() string {
	if s := os.Getenv("WARD_TEST_POSTGRES"); s != "" {
		return s
	}
	return DefaultServer
}

// DSN creates a database named ward_test_<random> on the test server and
// returns a DSN for it; t.Cleanup drops it (with any connections still
// open to it). Without a server, DSN skips the test, or under CI=true
// fails it, saying how to start one.
func DSN(t testing.TB) string {
	t.Helper()
	server := Server()
	cfg, err := pgx.ParseConfig(server)
	if err != nil {
		t.Fatalf("pgtest: WARD_TEST_POSTGRES: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		unavailable(t, err)
	}
	defer conn.Close(context.Background())
	b := make([]byte, 8)
	rand.Read(b)
	name := "ward_test_" + hex.EncodeToString(b)
	if _, err := conn.Exec(ctx, `CREATE DATABASE `+name); err != nil {
		t.Fatalf("pgtest: create database: %v", err)
	}
	t.Cleanup(func() { drop(t, cfg, name) })
	db := cfg.Copy()
	db.Database = name
	return configDSN(db)
}

// unavailable skips the test, or fails it under CI=true.
func unavailable(t testing.TB, err error) {
	t.Helper()
	msg := fmt.Sprintf("pgtest: no PostgreSQL at %q (%v); start one (Debian: pg_ctlcluster 15 main start, and a role for this user: "+
		"runuser -u postgres -- createuser --superuser $(id -un)) or set WARD_TEST_POSTGRES; scripts/test.sh does both", Redact(Server()), err)
	if os.Getenv("CI") == "true" {
		t.Fatal(msg)
	}
	t.Skip(msg)
}

// drop drops the test database, ending connections a failed test left.
func drop(t testing.TB, cfg *pgx.ConnConfig, name string) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		t.Errorf("pgtest: drop %s: %v", name, err)
		return
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctx, `DROP DATABASE IF EXISTS `+name+` WITH (FORCE)`); err != nil {
		t.Errorf("pgtest: drop %s: %v", name, err)
	}
}

// configDSN is a keyword DSN for the config's server, user and database.
// The server's password, if any, comes from the original DSN's fields,
// which pgx has parsed into cfg.
func configDSN(cfg *pgx.ConnConfig) string {
	kv := []string{"host=" + quote(cfg.Host), fmt.Sprintf("port=%d", cfg.Port), "dbname=" + quote(cfg.Database)}
	if cfg.User != "" {
		kv = append(kv, "user="+quote(cfg.User))
	}
	if cfg.Password != "" {
		kv = append(kv, "password="+quote(cfg.Password))
	}
	if cfg.TLSConfig == nil {
		kv = append(kv, "sslmode=disable")
	}
	return strings.Join(kv, " ")
}

// URL is DSN as a postgres:// URL, the form `serve --store` takes.
func URL(t testing.TB) string {
	t.Helper()
	cfg, err := pgx.ParseConfig(DSN(t))
	if err != nil {
		t.Fatal(err)
	}
	u := url.URL{Scheme: "postgres", Path: "/" + cfg.Database}
	q := url.Values{}
	if strings.HasPrefix(cfg.Host, "/") {
		q.Set("host", cfg.Host)
		q.Set("port", fmt.Sprint(cfg.Port))
	} else {
		u.Host = net.JoinHostPort(cfg.Host, fmt.Sprint(cfg.Port))
	}
	if cfg.TLSConfig == nil {
		q.Set("sslmode", "disable")
	}
	switch {
	case cfg.Password != "":
		u.User = url.UserPassword(cfg.User, cfg.Password)
	case cfg.User != "":
		u.User = url.User(cfg.User)
	}
	u.RawQuery = q.Encode()
	return u.String()
}

func quote(v string) string {
	if v != "" && !strings.ContainsAny(v, ` '\`) {
		return v
	}
	return "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(v) + "'"
}

// Redact is a DSN with its password replaced by "xxxxx", for messages.
func Redact(dsn string) string {
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil || cfg.Password == "" {
		if err != nil {
			return "(unparsable DSN)"
		}
		return dsn
	}
	return strings.ReplaceAll(dsn, cfg.Password, "xxxxx")
}
