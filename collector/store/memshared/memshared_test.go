package memshared_test

import (
	"context"
	"testing"
	"time"

	"github.com/wardhq/ward/collector/store"
	"github.com/wardhq/ward/collector/store/memshared"
	"github.com/wardhq/ward/collector/store/storetest"
)

func TestConformance(t *testing.T) {
	storetest.RunSharedConformance(t, func(*testing.T) (storetest.Shared, func() storetest.Shared) {
		return memshared.New(0), nil
	})
}

func TestBounded(t *testing.T) {
	s := memshared.New(100)
	ctx := context.Background()
	now := time.Now()
	r := store.Rate{Every: time.Hour, Burst: 1}
	for i := range 1000 {
		if ok, _, err := s.TakeTokens(ctx, string(rune('a'+i%26))+string(rune(i)), r, 1, now); !ok || err != nil {
			t.Fatalf("take %d: %v %v", i, ok, err)
		}
	}
	if n := s.Keys(); n > 100 {
		t.Fatalf("%d keys kept, bound 100", n)
	}
}

func TestPublish(t *testing.T) {
	s := memshared.New(0)
	ctx, cancel := context.WithCancel(context.Background())
	got := make(chan store.Change, 1)
	listening := make(chan bool, 1)
	done := make(chan error)
	go func() {
		done <- s.SubscribeChanges(ctx, func(c store.Change) { got <- c }, func(b bool) { listening <- b })
	}()
	if !<-listening {
		t.Fatal("not listening")
	}
	s.Publish(store.Change{Kind: store.ChangeDevice, ID: "d1"})
	if c := <-got; c != (store.Change{Kind: store.ChangeDevice, ID: "d1"}) {
		t.Fatalf("got %+v", c)
	}
	cancel()
	if err := <-done; err != context.Canceled {
		t.Fatalf("SubscribeChanges returned %v, want context.Canceled", err)
	}
}
