package service

import (
	"context"
	"regexp"
	"testing"
	"time"

	"github.com/wardhq/ward/agent/enroll"
	"github.com/wardhq/ward/agent/report/reporttest"
)

// onceDelivery runs one round on the enrolled state in dir and returns the
// delivery the service published.
func onceDelivery(t *testing.T, dir string) Delivery {
	t.Helper()
	var got []Delivery
	s, err := New(Config{StateDir: dir, Source: bundle(t, "linux-plain-nft-empty"), CallTimeout: 2 * time.Second,
		Delivered: func(d Delivery) { got = append(got, d) }})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := s.Once(context.Background()); err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 {
		t.Fatalf("%d deliveries published, want 1: %+v", len(got), got)
	}
	return got[0]
}

// Each way a real collector fails a delivery is said in plain words, with
// the collector's address where it matters.
func TestDeliveryProblemInPlainWords(t *testing.T) {
	t.Run("delivered", func(t *testing.T) {
		c := fastCollector(t)
		_, dir := reporttest.Enrolled(t, c, "staff")
		d := onceDelivery(t, dir)
		if d.Problem != "" || d.Detail != "" || d.Delivered != 1 || d.Waiting != 0 || time.Since(d.At) > time.Minute {
			t.Errorf("delivery = %+v", d)
		}
	})
	t.Run("revoked", func(t *testing.T) {
		c := fastCollector(t)
		id, dir := reporttest.Enrolled(t, c, "staff")
		if err := c.Store().RevokeDevice(context.Background(), id.DeviceID, time.Now()); err != nil {
			t.Fatal(err)
		}
		d := onceDelivery(t, dir)
		want := "the collector refused this device's certificate (client certificate was revoked); enrol it again with ward-agent install --reenroll"
		if d.Problem != want || d.Delivered != 0 || d.Waiting != 1 || !regexp.MustCompile(`permission_denied`).MatchString(d.Detail) {
			t.Errorf("delivery = %+v, want problem %q", d, want)
		}
	})
	t.Run("unreachable", func(t *testing.T) {
		c := fastCollector(t)
		_, dir := reporttest.Enrolled(t, c, "staff")
		c.Stop()
		d := onceDelivery(t, dir)
		if want := "collector unreachable at " + c.Addr + ": connection refused"; d.Problem != want || d.Waiting != 1 {
			t.Errorf("delivery = %+v, want problem %q", d, want)
		}
	})
	t.Run("another collector", func(t *testing.T) {
		c, other := fastCollector(t), fastCollector(t)
		id, dir := reporttest.Enrolled(t, c, "staff")
		id.Collector = other.Addr
		if err := enroll.Save(dir, id); err != nil {
			t.Fatal(err)
		}
		d := onceDelivery(t, dir)
		want := regexp.MustCompile(`^the collector at ` + regexp.QuoteMeta(other.Addr) + ` is not the one this device enrolled with: its certificate is not trusted \(x509: .+\)$`)
		if !want.MatchString(d.Problem) {
			t.Errorf("delivery = %+v, want problem matching %s", d, want)
		}
	})
}
