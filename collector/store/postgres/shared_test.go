package postgres_test

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/wardhq/ward/collector/store"
	"github.com/wardhq/ward/collector/store/postgres"
	"github.com/wardhq/ward/collector/store/postgres/pgtest"
	"github.com/wardhq/ward/collector/store/storetest"
)

func sharedPool(t *testing.T, dsn string) *postgres.Shared {
	t.Helper()
	pool, err := pgxpool.New(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	if _, err := pool.Exec(context.Background(), postgres.SharedSchema); err != nil {
		t.Fatal(err)
	}
	return postgres.NewShared(pool)
}

func TestSharedConformance(t *testing.T) {
	storetest.RunSharedConformance(t, func(t *testing.T) (storetest.Shared, func() storetest.Shared) {
		dsn := pgtest.DSN(t)
		return sharedPool(t, dsn), func() storetest.Shared { return sharedPool(t, dsn) }
	})
}

// TestChangesAcrossConnections: a change notified in one collector's
// transaction reaches another's subscription on commit, not on rollback,
// and a lost listening connection comes back with ChangeAll.
func TestChangesAcrossConnections(t *testing.T) {
	dsn := pgtest.DSN(t)
	a, b := sharedPool(t, dsn), sharedPool(t, dsn)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	got := make(chan store.Change, 16)
	listening := make(chan bool, 16)
	go b.SubscribeChanges(ctx, func(c store.Change) { got <- c }, func(l bool) { listening <- l })
	if !<-listening {
		t.Fatal("not listening")
	}
	pool, err := pgxpool.New(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	tx, _ := pool.Begin(ctx)
	postgres.NotifyChange(ctx, tx, store.Change{Kind: store.ChangePolicy, ID: "rolled-back"})
	tx.Rollback(ctx)
	tx, _ = pool.Begin(ctx)
	postgres.NotifyChange(ctx, tx, store.Change{Kind: store.ChangeDevice, ID: "dev_1"})
	select {
	case c := <-got:
		t.Fatalf("a change arrived before its commit: %+v", c)
	case <-time.After(200 * time.Millisecond):
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	select {
	case c := <-got:
		if c != (store.Change{Kind: store.ChangeDevice, ID: "dev_1"}) {
			t.Fatalf("got %+v, want the committed device change (not the rolled-back one)", c)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no change arrived")
	}
	// Kill the listener's backend: it reconnects and says ChangeAll.
	if _, err := pool.Exec(ctx, `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE query LIKE 'LISTEN %' AND pid <> pg_backend_pid()`); err != nil {
		t.Fatal(err)
	}
	if <-listening {
		t.Fatal("the subscription did not notice its connection was lost")
	}
	if !<-listening {
		t.Fatal("not listening again")
	}
	select {
	case c := <-got:
		if c.Kind != store.ChangeAll {
			t.Fatalf("after reconnecting: %+v, want ChangeAll", c)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no ChangeAll after reconnecting")
	}
	_ = a
}
