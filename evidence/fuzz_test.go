package evidence_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"testing"
	"time"

	"github.com/wardhq/ward/evidence"
	"github.com/wardhq/ward/evidence/evidencetest"
)

// FuzzDecode: no input (the seeds include a file with a log) makes the
// decoder or Verify panic, and whatever
// Verify accepts decodes again to the same verdict.
func FuzzDecode(f *testing.F) {
	file, _, _ := small(f)
	var buf bytes.Buffer
	if err := evidence.Encode(&buf, file); err != nil {
		f.Fatal(err)
	}
	f.Add(buf.Bytes())
	// With a log: a checkpoint, inclusions and a consistency proof.
	logged, ca, _ := small(f)
	log := ca.NewLog(f, t0.Add(-day))
	log.Attach(f, logged, t0.Add(day), &evidence.Checkpoint{Size: 1, Root: evidence.LeafHash(logged.Devices[0].Reports[0].Statement)})
	buf.Reset()
	if err := evidence.Encode(&buf, logged); err != nil {
		f.Fatal(err)
	}
	f.Add(buf.Bytes())
	// With a release feed the reports were judged by.
	withFeed := feedFile(f, evidencetest.Feed(f).Serial, true)
	buf.Reset()
	if err := evidence.Encode(&buf, withFeed); err != nil {
		f.Fatal(err)
	}
	f.Add(buf.Bytes())
	f.Add([]byte(`{"format":"ward-evidence/1"}`))
	f.Add([]byte(`{"format":"ward-evidence/1","devices":[{"device_id":"x","reports":[{"statement":"AA==","signature":"","facts":""}]}]}`))
	f.Add([]byte(`{"format":"ward-evidence/1","policies":[{"name":"a","version":1,"sha256":"00","document":"name: a"}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		file, err := evidence.Decode(bytes.NewReader(data))
		if err != nil {
			return
		}
		done := make(chan struct{})
		go func() {
			defer close(done)
			res, err := evidence.Verify(file, evidence.VerifyOptions{})
			if err == nil && !res.OK() {
				panic("Verify returned no error with problems")
			}
		}()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Fatalf("SLOWINPUT %q", data)
		}
	})
}

// small is two reports of one device, for the fuzzer's seed.
func small(tb testing.TB) (*evidence.File, *evidencetest.CA, *evidencetest.Device) {
	ca := evidencetest.NewCA(tb, t0.Add(-day))
	d := ca.Enrol(tb, "dev-f", t0.Add(-time12h))
	d.Report(tb, t0, evidencetest.LinuxFacts(t0, true), "baseline", 3)
	d.Report(tb, t0.Add(time12h), evidencetest.LinuxFacts(t0.Add(time12h), false), "baseline", 3)
	return evidencetest.Build(tb, ca, t0, t0.Add(day), []evidence.Policy{evidencetest.Policy(tb, "baseline", 3)}, d), ca, d
}

const time12h = 12 * 60 * 60 * 1e9

// FuzzDecodeStrict is the decoder alone, fast enough for many inputs: no
// input panics it, and whatever it accepts encodes and decodes again to
// the same file.
func FuzzDecodeStrict(f *testing.F) {
	file, _, _ := small(f)
	var buf bytes.Buffer
	if err := evidence.Encode(&buf, file); err != nil {
		f.Fatal(err)
	}
	f.Add(buf.Bytes())
	f.Add([]byte(`{"format":"ward-evidence/1","devices":[{"device_id":"x","reports":[{"statement":"AA==","signature":"","facts":""}]}]}`))
	f.Add([]byte(`{"format":"ward-evidence/1"} {}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		file, err := evidence.Decode(bytes.NewReader(data))
		if err != nil {
			return
		}
		var again bytes.Buffer
		if err := evidence.Encode(&again, file); err != nil {
			t.Fatalf("a decoded file does not encode: %v", err)
		}
		if _, err := evidence.Decode(bytes.NewReader(again.Bytes())); err != nil {
			t.Fatalf("an encoded file does not decode: %v", err)
		}
	})
}

// FuzzDecodeFeed: no document panics DecodeFeed, and whatever it accepts
// is the canonical encoding NewFeed writes again byte for byte, of the
// serial it was given.
func FuzzDecodeFeed(f *testing.F) {
	e := evidencetest.FileFeed(f)
	f.Add(e.Serial, []byte(e.Document))
	f.Add(uint64(1), []byte(`{"format":"ward-release-feed/1","serial":1}`))
	f.Add(uint64(0), []byte(`{}`))
	f.Add(e.Serial, []byte(e.Document+" "))
	f.Fuzz(func(t *testing.T, serial uint64, doc []byte) {
		sum := sha256.Sum256(doc)
		in := evidence.Feed{Serial: serial, SHA256: hex.EncodeToString(sum[:]), Document: string(doc)}
		fd, err := evidence.DecodeFeed(in)
		if err != nil {
			return
		}
		if fd.Serial != serial {
			t.Fatalf("accepted the feed of serial %d as %d", fd.Serial, serial)
		}
		again, err := evidence.NewFeed(fd, false)
		if err != nil {
			t.Fatalf("an accepted feed does not encode: %v", err)
		}
		if again != in {
			t.Fatalf("an accepted feed encodes to other bytes")
		}
	})
}
