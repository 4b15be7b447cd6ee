package policies

import (
	"context"
	"testing"

	"github.com/wardhq/ward/feed/snapshot"
	wardv1 "github.com/wardhq/ward/proto/ward/v1"
)

// BenchmarkEvaluateFeed is what judging by the release feed costs: the
// shipped baseline on each platform's facts with the built-in snapshot
// (179 lines) and with no feed (the feed rules then stop at UNKNOWN), in
// one run; compare the with-feed ns/op with the no-feed yardstick.
func BenchmarkEvaluateFeed(b *testing.B) {
	snap, err := snapshot.Feed()
	if err != nil {
		b.Fatal(err)
	}
	p, err := Embedded("baseline")
	if err != nil {
		b.Fatal(err)
	}
	now := snap.GeneratedAt.AddDate(0, 1, 0)
	for _, pf := range []struct {
		name  string
		facts func() *wardv1.Facts
	}{{"windows", windowsFacts}, {"darwin", darwinFacts}, {"linux", linuxFacts}} {
		facts := pf.facts()
		for _, in := range []struct {
			name string
			in   *FeedInput
		}{{"no-feed", nil}, {"snapshot", &FeedInput{Feed: snap}}} {
			b.Run(pf.name+"/"+in.name, func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					Evaluate(context.Background(), p, facts, Options{Now: now, Feed: in.in})
				}
			})
		}
	}
}
