package cli

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/wardhq/ward/collector/feedstate"
	"github.com/wardhq/ward/collector/store"
	"github.com/wardhq/ward/feed"
)

func init() { feedSubcommands = append(feedSubcommands, (*app).feedImportCommand) }

// maxFeedSourceFile bounds one --source file of feed import (an MSRC
// CVRF document is a few megabytes, SOFA's feed under one).
const maxFeedSourceFile = 64 << 20

// feedImportCommand is "ward-collector feed import": an unsigned feed
// (feed build's output) checked against the current one, signed with
// the collector's feed key and stored (docs/feed.md, "Importing a
// feed").
func (a *app) feedImportCommand() *cobra.Command {
	var sources []string
	cmd := &cobra.Command{
		Use:   "import FILE [--source FILE...]",
		Short: "Check an unsigned release feed, sign it with the collector's feed key and make it the current feed",
		Long: `import reads FILE, an unsigned release feed (ward-release-feed/1, as feed build
writes it; at most 8 MiB), decodes it strictly and validates it. It refuses
a rollback (a serial not greater than the current feed's: the greatest
stored one, or the built-in feed's when that is greater), a feed that has
expired and one generated in the future (more than 10 minutes ahead of the
clock, or of --now). Importing the current feed again, byte for byte the
same, says so and changes nothing (exit 0); another feed under the current
serial is a rollback.

--source FILE (repeatable) keeps a file the feed was built from with it in
the store; its SHA-256 must be one of the feed's sources[].sha256.

The feed is then signed with the collector's feed key (--data/pki/feed.key,
made on first use, certified by the collector CA) and stored; running
collectors on the store send it to their agents on their next policy
fetch. A refused feed changes nothing and exits 3; a store or key failure
exits 1.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.feedImport(cmd.Context(), args[0], sources)
		},
	}
	cmd.Flags().StringArrayVar(&sources, "source", nil, "a source file the feed was built from, kept with it (repeatable; its SHA-256 must be in the feed's sources)")
	cmd.Flags().StringVar(&a.caKeyFile, "ca-key-file", os.Getenv("WARD_CA_KEY_FILE"), "with --store: the CA shared in the store, opened with this key file (default $WARD_CA_KEY_FILE)")
	return cmd
}

// feedImport is the work of feed import.
func (a *app) feedImport(ctx context.Context, path string, sourcePaths []string) error {
	now := a.now().UTC()
	data, err := readCapped(path, feed.MaxSize)
	if err != nil {
		return inputError{err}
	}
	next, err := decodeImportFeed(data)
	if err != nil {
		return inputError{fmt.Errorf("%s: %w", path, err)}
	}
	if err := feed.Validate(next); err != nil {
		return inputError{fmt.Errorf("%s: %w", path, err)}
	}
	files, err := readFeedSources(next, sourcePaths)
	if err != nil {
		return inputError{err}
	}
	ca, err := a.loadCA(now)
	if err != nil {
		return err
	}
	st, err := a.open(ctx)
	if err != nil {
		return err
	}
	defer st.Close()
	fs, ok := st.(store.FeedStore)
	if !ok {
		return errors.New("this store keeps no release feeds")
	}
	current, builtIn, err := currentFeedForImport(ctx, st, a.stderr)
	if err != nil {
		return err
	}
	if current != nil && current.Serial == next.Serial && sameFeed(current, next) {
		where := "stored"
		if builtIn {
			where = "the collector's built-in feed"
		}
		fmt.Fprintf(a.stdout, "%s: serial %d is already the current feed (%s, identical); nothing imported\n", path, next.Serial, where)
		return nil
	}
	if err := feed.CheckImport(current, next, now); err != nil {
		if errors.Is(err, feed.ErrRollback) {
			what := "the stored feed"
			if builtIn {
				what = "the built-in feed"
			}
			if current.Serial == next.Serial {
				return inputError{fmt.Errorf("%s: serial %d is already imported (%s) with other content; a changed feed needs a greater serial: %w", path, next.Serial, what, err)}
			}
			return inputError{fmt.Errorf("%s: refused, %s has serial %d: %w", path, what, current.Serial, err)}
		}
		return inputError{fmt.Errorf("%s: refused: %w", path, err)}
	}
	key, _, err := ca.FeedKey(a.dataDir, now)
	if err != nil {
		return fmt.Errorf("release feed key: %w", err)
	}
	signed, err := feed.Sign(next, key)
	if err != nil {
		return err
	}
	var sb bytes.Buffer
	if err := feed.EncodeSigned(&sb, signed); err != nil {
		return err
	}
	srcJSON, err := json.Marshal(next.Sources)
	if err != nil {
		return fmt.Errorf("encode the feed's sources: %w", err)
	}
	rec := store.Feed{Serial: next.Serial, GeneratedAt: next.GeneratedAt.UTC(), ExpiresAt: next.ExpiresAt.UTC(), ImportedAt: now, Signed: sb.Bytes(), Sources: srcJSON}
	if ff, ok := st.(store.FeedFiles); ok {
		err = ff.AddFeedWithFiles(ctx, rec, files)
	} else if len(files) > 0 {
		return errors.New("this store cannot keep a feed's source files (--source)")
	} else {
		err = fs.AddFeed(ctx, rec)
	}
	if errors.Is(err, store.ErrFeedRollback) {
		return inputError{fmt.Errorf("%s: refused: another import stored a feed meanwhile: %w", path, err)}
	}
	if err != nil {
		return err
	}
	if n, ok := st.(interface {
		Notify(context.Context, store.Change) error
	}); ok {
		n.Notify(ctx, store.Change{Kind: store.ChangeFeed, ID: fmt.Sprint(next.Serial)}) //nolint:errcheck // collectors also notice the new serial on their next look-up
	}
	releases := 0
	for _, l := range next.Lines {
		releases += len(l.Releases)
	}
	if d, ok := st.(store.Dashboard); ok {
		detail := fmt.Sprintf("%d lines, %d releases, generated %s, expires %s, key %s, %d source files kept",
			len(next.Lines), releases, next.GeneratedAt.UTC().Format(time.RFC3339), next.ExpiresAt.UTC().Format(time.RFC3339), signed.KeyID, len(files))
		if err := d.AddAudit(ctx, store.AuditEntry{At: now, Actor: actor(), Action: "feed.import", Target: fmt.Sprint(next.Serial), Detail: detail}); err != nil {
			return fmt.Errorf("imported serial %d, but the audit log refused its entry: %w", next.Serial, err)
		}
	}
	fmt.Fprintf(a.stdout, "imported %s: serial %d, %d lines, %d releases, generated %s, expires %s, signed with feed key %s",
		path, next.Serial, len(next.Lines), releases, next.GeneratedAt.UTC().Format(time.RFC3339), next.ExpiresAt.UTC().Format(time.RFC3339), signed.KeyID)
	if len(files) > 0 {
		fmt.Fprintf(a.stdout, ", %d source %s kept", len(files), plural(len(files), "file", "files"))
	}
	fmt.Fprintln(a.stdout)
	return nil
}

// readCapped reads path, refusing a file larger than limit bytes.
func readCapped(path string, limit int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	if int64(len(data)) > limit {
		return nil, fmt.Errorf("%s: larger than %d bytes", path, limit)
	}
	return data, nil
}

// decodeImportFeed decodes an unsigned feed strictly, refusing a signed
// feed file by name: the collector signs what it imports itself.
func decodeImportFeed(data []byte) (*feed.Feed, error) {
	var head struct {
		Format string `json:"format"`
	}
	if json.Unmarshal(data, &head) == nil && head.Format == feed.SignedFormat {
		return nil, fmt.Errorf("a signed release feed (%s); feed import takes the unsigned feed (%s) that feed build writes, and signs it with this collector's feed key", feed.SignedFormat, feed.Format)
	}
	return feed.Decode(bytes.NewReader(data))
}

// readFeedSources reads each --source file and names it by the source of
// f whose SHA-256 it has.
func readFeedSources(f *feed.Feed, paths []string) ([]store.FeedSourceFile, error) {
	byHash := map[string]string{}
	for _, s := range f.Sources {
		byHash[s.SHA256] = s.Name
	}
	var files []store.FeedSourceFile
	kept := map[string]string{}
	for _, p := range paths {
		data, err := readCapped(p, maxFeedSourceFile)
		if err != nil {
			return nil, fmt.Errorf("--source: %w", err)
		}
		sum := sha256.Sum256(data)
		h := hex.EncodeToString(sum[:])
		name, ok := byHash[h]
		if !ok {
			return nil, fmt.Errorf("--source %s: its SHA-256 %s is none of the feed's sources (is it the file the feed was built from, unchanged?)", p, h)
		}
		if prev, dup := kept[h]; dup {
			return nil, fmt.Errorf("--source %s: the same file as --source %s (source %s)", p, prev, name)
		}
		kept[h] = p
		files = append(files, store.FeedSourceFile{Name: name, SHA256: sum[:], Data: data})
	}
	return files, nil
}

// currentFeedForImport is the feed an import must be newer than: the
// current feed as the server chooses it (feedstate.Current: the stored
// one with the greatest serial, or the built-in snapshot when its serial
// is greater; builtIn), nil when there is neither. A stored feed that
// cannot be decoded still counts by its serial, with a warning on w.
func currentFeedForImport(ctx context.Context, st store.Store, w io.Writer) (cur *feed.Feed, builtIn bool, err error) {
	cs, err := feedstate.Current(ctx, st)
	if err != nil {
		return nil, false, err
	}
	if cs.StoredErr != nil {
		fmt.Fprintf(w, "warning: %v; judging the import by its serial only\n", cs.StoredErr)
		if cs.Feed == nil || cs.Feed.Serial < cs.StoredSerial {
			return &feed.Feed{Serial: cs.StoredSerial}, false, nil
		}
	}
	return cs.Feed, cs.BuiltIn, nil
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

// sameFeed reports whether a and b have the same canonical encoding.
func sameFeed(a, b *feed.Feed) bool {
	ca, err1 := feed.Canonical(a)
	cb, err2 := feed.Canonical(b)
	return err1 == nil && err2 == nil && bytes.Equal(ca, cb)
}
