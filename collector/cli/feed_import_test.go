package cli_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/wardhq/ward/collector/pki"
	"github.com/wardhq/ward/collector/server/servertest"
	"github.com/wardhq/ward/collector/store"
	"github.com/wardhq/ward/collector/store/storeopen"
	"github.com/wardhq/ward/feed"
	"github.com/wardhq/ward/feed/snapshot"
)

// importFeed is a copy of the built-in feed with serial, generated at
// gen and valid for 180 days, written to a file in dir.
func importFeed(t *testing.T, dir string, serial uint64, gen time.Time, edit ...func(*feed.Feed)) (string, *feed.Feed) {
	t.Helper()
	snap, err := snapshot.Feed()
	if err != nil {
		t.Fatal(err)
	}
	f := *snap
	f.Lines = append([]feed.Line(nil), snap.Lines...)
	f.Sources = append([]feed.Source(nil), snap.Sources...)
	f.Serial, f.GeneratedAt, f.ExpiresAt = serial, gen, gen.Add(180*24*time.Hour)
	for _, e := range edit {
		e(&f)
	}
	var b bytes.Buffer
	if err := feed.Encode(&b, &f); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "feed-"+time.Now().Format("150405.000000000")+".json")
	if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return path, &f
}

// storedFeeds opens the collector's store (spec, "" for dir's SQLite)
// and returns its feeds
// (newest first) and the current one.
func storedFeeds(t *testing.T, dir, spec string) ([]store.Feed, store.Feed) {
	t.Helper()
	st, err := storeopen.Open(context.Background(), spec, dir, true)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	fs := st.(store.FeedStore)
	all, err := fs.Feeds(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	cur, err := fs.CurrentFeed(context.Background())
	if err != nil && len(all) > 0 {
		t.Fatal(err)
	}
	return all, cur
}

// backend is where a test collector keeps its fleet: the data directory
// and the --store spec ("" for its SQLite database).
type backend struct{ dir, spec string }

// importArgs are "feed import" with the flags that point it at b.
func (b backend) importArgs() []string {
	args := []string{"feed", "import", "--data", b.dir}
	if b.spec != "" {
		args = append(args, "--store", b.spec)
	}
	return args
}

// importRefused runs feed import expecting exit 3 with every want in its
// error, and that the store's feeds did not change.
func importRefused(t *testing.T, b backend, args []string, wants ...string) {
	t.Helper()
	before, _ := storedFeeds(t, b.dir, b.spec)
	out, errOut, code := runErr(append(b.importArgs(), args...)...)
	if code != 3 {
		t.Fatalf("feed import %v: exit %d, want 3 (stdout %q, stderr %q)", args, code, out, errOut)
	}
	for _, w := range wants {
		if !strings.Contains(errOut, w) {
			t.Errorf("feed import %v: error %q does not say %q", args, errOut, w)
		}
	}
	after, _ := storedFeeds(t, b.dir, b.spec)
	if len(after) != len(before) {
		t.Errorf("a refused import changed the store: %d feeds, then %d", len(before), len(after))
	}
}

// TestFeedImport: an unsigned feed newer than the built-in one is signed
// with the collector's feed key and stored with the source files given;
// a rollback (lower or equal serial), an expired feed, one generated in
// the future, an invalid one, a signed file and a --source that is not
// among the feed's sources are refused and change nothing; re-importing
// the same feed says so and exits 0; a newer serial is imported after.
func TestFeedImport(t *testing.T) {
	backends(t, func(t *testing.T, c *servertest.Collector, args []string) {
		b := backend{dir: c.DataDir}
		if len(args) == 4 && args[2] == "--store" {
			b.spec = args[3]
		}
		testFeedImport(t, b)
	})
}

func testFeedImport(t *testing.T, b backend) {
	dir := b.dir
	files := t.TempDir()
	gen := time.Date(2026, 9, 1, 6, 0, 0, 0, time.UTC)
	now := gen.Add(time.Hour).Format(time.RFC3339)
	snap, err := snapshot.Feed()
	if err != nil {
		t.Fatal(err)
	}

	// Older than the built-in feed: a rollback even with nothing stored.
	older, _ := importFeed(t, files, snap.Serial-1, gen)
	importRefused(t, b, []string{older, "--now", now}, "rollback", "the built-in feed has serial 202608221855", "serial 202608221854")
	// The built-in feed itself: already current, nothing stored.
	same, _ := importFeed(t, files, snap.Serial, snap.GeneratedAt)
	out, errOut, code := runErr(append(b.importArgs(), same, "--now", now)...)
	if code != 0 || !strings.Contains(out, "serial 202608221855 is already the current feed (the collector's built-in feed, identical)") {
		t.Fatalf("importing the built-in feed: exit %d, %q %q", code, out, errOut)
	}

	eolSource := filepath.Join("..", "..", "feed", "build", "testdata", "endoflife-ubuntu.md")
	sofaSource := filepath.Join("..", "..", "feed", "build", "testdata", "sofa-macos_data_feed.json")
	first, firstFeed := importFeed(t, files, 202609010600, gen)
	out, errOut, code = runErr(append(b.importArgs(), first, "--source", eolSource, "--source", sofaSource, "--now", now)...)
	if code != 0 {
		t.Fatalf("feed import: exit %d: %s", code, errOut)
	}
	ca, err := pki.Load(dir, gen)
	if err != nil {
		t.Fatal(err)
	}
	key, _, err := ca.FeedKey(dir, gen)
	if err != nil {
		t.Fatal(err)
	}
	kid, err := feed.KeyID(&key.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	releases := 0
	for _, l := range firstFeed.Lines {
		releases += len(l.Releases)
	}
	for _, w := range []string{"serial 202609010600", "generated 2026-09-01T06:00:00Z", "expires 2027-02-28T06:00:00Z", "signed with feed key " + kid, "2 source files kept"} {
		if !strings.Contains(out, w) {
			t.Errorf("feed import said %q, not %q", out, w)
		}
	}
	if want := " " + strconv.Itoa(len(firstFeed.Lines)) + " lines, " + strconv.Itoa(releases) + " releases"; !strings.Contains(out, want) {
		t.Errorf("feed import said %q, not %q", out, want)
	}
	all, cur := storedFeeds(t, dir, b.spec)
	if len(all) != 1 || cur.Serial != 202609010600 || !cur.GeneratedAt.Equal(gen) || !cur.ExpiresAt.Equal(firstFeed.ExpiresAt) {
		t.Fatalf("stored feeds %+v, current %d", all, cur.Serial)
	}
	sf, err := feed.DecodeSigned(bytes.NewReader(cur.Signed))
	if err != nil {
		t.Fatal(err)
	}
	verified, err := feed.Verify(sf, &key.PublicKey)
	if err != nil {
		t.Fatalf("the stored feed does not verify with the collector's feed key: %v", err)
	}
	wantCanon, _ := feed.Canonical(firstFeed)
	gotCanon, _ := feed.Canonical(verified)
	if !bytes.Equal(wantCanon, gotCanon) {
		t.Error("the stored feed is not the feed imported")
	}
	var srcs []feed.Source
	if err := json.Unmarshal(cur.Sources, &srcs); err != nil || len(srcs) != len(firstFeed.Sources) || srcs[0] != firstFeed.Sources[0] {
		t.Errorf("stored sources %s (%v)", cur.Sources, err)
	}
	st, err := storeopen.Open(context.Background(), b.spec, dir, true)
	if err != nil {
		t.Fatal(err)
	}
	kept, err := st.(store.FeedFiles).FeedFiles(context.Background(), 202609010600)
	if err != nil {
		t.Fatal(err)
	}
	audit := lastAudit(t, st.(store.Dashboard), "feed.import")
	st.Close()
	ubuntu, _ := os.ReadFile(eolSource)
	ubuntuSum := sha256.Sum256(ubuntu)
	if len(kept) != 2 || kept[0].Name != "endoflife-ubuntu" || !bytes.Equal(kept[0].Data, ubuntu) || !bytes.Equal(kept[0].SHA256, ubuntuSum[:]) || kept[1].Name != "sofa-macos" {
		t.Errorf("kept source files %v", names(kept))
	}
	if audit.Target != "202609010600" || !strings.Contains(audit.Detail, kid) {
		t.Errorf("audit entry %+v", audit)
	}

	// The same file again: already imported, exit 0, nothing stored.
	out, errOut, code = runErr(append(b.importArgs(), first, "--now", now)...)
	if code != 0 || !strings.Contains(out, "serial 202609010600 is already the current feed (stored, identical)") {
		t.Fatalf("re-import: exit %d, %q %q", code, out, errOut)
	}
	// Another feed under the same serial, and a lower serial.
	changed, _ := importFeed(t, files, 202609010600, gen.Add(-time.Minute))
	importRefused(t, b, []string{changed, "--now", now}, "serial 202609010600 is already imported (the stored feed) with other content", "rollback")
	lower, _ := importFeed(t, files, 202608300000, gen)
	importRefused(t, b, []string{lower, "--now", now}, "rollback", "the stored feed has serial 202609010600", "serial 202608300000 is not newer")

	// Expired and from the future (by --now).
	expired, _ := importFeed(t, files, 202609020000, gen)
	importRefused(t, b, []string{expired, "--now", "2027-03-01T00:00:00Z"}, "expired", "serial 202609020000 expired at 2027-02-28T06:00:00Z", "it is 2027-03-01T00:00:00Z")
	future, _ := importFeed(t, files, 202609020000, gen.Add(24*time.Hour))
	importRefused(t, b, []string{future, "--now", now}, "generated in the future", "generated at 2026-09-02T06:00:00Z", "it is 2026-09-01T07:00:00Z")

	// Invalid: the error names the file and the field.
	invalid, _ := importFeed(t, files, 202609020000, gen, func(f *feed.Feed) { f.Sources[0].SHA256 = "abc" })
	importRefused(t, b, []string{invalid, "--now", now}, invalid, "sources[0].sha256", `"abc" is not a lower-case hex SHA-256`)
	unknown := filepath.Join(files, "unknown-field.json")
	if err := os.WriteFile(unknown, []byte(`{"format":"ward-release-feed/1","serial":202609020000,"colour":1}`), 0o644); err != nil {
		t.Fatal(err)
	}
	importRefused(t, b, []string{unknown, "--now", now}, unknown, "colour")
	// A signed file is refused by name; so is its body altered.
	signedFile := filepath.Join(files, "signed.json")
	if err := os.WriteFile(signedFile, bytes.Replace(cur.Signed, []byte(`"feed": "`), []byte(`"feed": "AA`), 1), 0o644); err != nil {
		t.Fatal(err)
	}
	importRefused(t, b, []string{signedFile, "--now", now}, "a signed release feed (ward-signed-release-feed/1)", "takes the unsigned feed")

	// A --source that is not one of the feed's sources (a tampered
	// file, or another), named with its hash.
	next, _ := importFeed(t, files, 202609020600, gen.Add(24*time.Hour))
	tampered := filepath.Join(files, "endoflife-ubuntu.md")
	if err := os.WriteFile(tampered, append(bytes.Clone(ubuntu), '\n'), 0o644); err != nil {
		t.Fatal(err)
	}
	later := gen.Add(25 * time.Hour).Format(time.RFC3339)
	tamperedSum := sha256.Sum256(append(bytes.Clone(ubuntu), '\n'))
	importRefused(t, b, []string{next, "--source", tampered, "--now", later}, "--source "+tampered, "is none of the feed's sources", hex.EncodeToString(tamperedSum[:]))
	importRefused(t, b, []string{next, "--source", eolSource, "--source", eolSource, "--now", later}, "the same file as --source")

	// A newer serial is imported, and becomes the current feed.
	out, errOut, code = runErr(append(b.importArgs(), next, "--now", later)...)
	if code != 0 || !strings.Contains(out, "serial 202609020600") {
		t.Fatalf("second import: exit %d, %q %q", code, out, errOut)
	}
	all, cur = storedFeeds(t, dir, b.spec)
	if len(all) != 2 || cur.Serial != 202609020600 || all[1].Serial != 202609010600 {
		t.Fatalf("after the second import: %d feeds, current %d", len(all), cur.Serial)
	}
}

// TestFeedImportInputErrors: a missing file, a file over 8 MiB and a
// wrong number of arguments are usage errors.
func TestFeedImportInputErrors(t *testing.T) {
	dir, _ := ranOnce(t)
	big := filepath.Join(t.TempDir(), "big.json")
	if err := os.WriteFile(big, bytes.Repeat([]byte(" "), feed.MaxSize+1), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{filepath.Join(dir, "none.json")}, "none.json"},
		{[]string{big}, "larger than 8388608 bytes"},
		{nil, "accepts 1 arg"},
	} {
		_, errOut, code := runErr(append([]string{"feed", "import", "--data", dir}, c.args...)...)
		if code != 3 || !strings.Contains(errOut, c.want) {
			t.Errorf("feed import %v: exit %d, %q; want 3 and %q", c.args, code, errOut, c.want)
		}
	}
}

func names(fs []store.FeedSourceFile) []string {
	var n []string
	for _, f := range fs {
		n = append(n, f.Name)
	}
	return n
}
