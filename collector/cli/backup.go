package cli

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/wardhq/ward/collector/pki"
	"github.com/wardhq/ward/collector/server"
	"github.com/wardhq/ward/collector/store/sqlite"
	"github.com/wardhq/ward/collector/store/storeopen"
)

// Backups (docs/operations.md, "Backups"). A backup is a directory: the
// database copy (ward.db, SQLite only), the PKI files (pki/…, modes kept)
// and manifest.json, written last, which names every file with its size,
// mode and SHA-256. It is written under a temporary name next to --to and
// renamed into place, so a directory called --to is always complete.

const (
	manifestName   = "manifest.json"
	backupFormat   = "ward-collector-backup"
	backupFormatV1 = 1
)

// manifest is a backup's manifest.json.
type manifest struct {
	Format           string    `json:"format"`
	FormatVersion    int       `json:"format_version"`
	CollectorVersion string    `json:"collector_version"`
	CreatedAt        time.Time `json:"created_at"`
	// Store is "sqlite" (ward.db is in the backup) or "postgres" (the
	// database is backed up with pg_dump; only the PKI is here).
	Store         string `json:"store"`
	SchemaVersion int    `json:"schema_version,omitempty"`
	Devices       *int64 `json:"devices,omitempty"`
	Reports       *int64 `json:"reports,omitempty"`
	CAFingerprint string `json:"ca_fingerprint"`
	Files         []file `json:"files"`
}

// file is one file of a backup; Path is slash-separated, relative.
type file struct {
	Path   string `json:"path"`
	Size   int64  `json:"size"`
	Mode   string `json:"mode"`
	SHA256 string `json:"sha256"`
}

// postgresSpec reports whether a store spec names PostgreSQL.
func postgresSpec(spec string) bool {
	kind, err := storeopen.Kind(spec)
	return err == nil && kind == "postgres"
}

func (a *app) backupCommand() *cobra.Command {
	var to string
	cmd := &cobra.Command{
		Use:   "backup --to DIR",
		Short: "Copy the database and the PKI to a new directory, consistently, while the collector serves",
		Long: `backup writes a new directory DIR holding a consistent copy of the
collector: the SQLite database as of one commit (VACUUM INTO, which lets
a serving collector go on reading and writing), the PKI files under
--data/pki with their modes (the CA key stays 0600), and manifest.json with
the version, time, schema version and the SHA-256 of every file. The copy
passes SQLite's integrity check before backup succeeds. DIR must not exist
(or be empty); it appears only once complete.

With a PostgreSQL store (--store postgres://… or WARD_STORE) the database
is not copied here: backup saves the PKI and prints the pg_dump command
that backs up the database.

restore --from DIR puts a backup into an empty data directory.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if to == "" {
				return inputError{errors.New("--to DIR is required")}
			}
			return a.backup(cmd, to, a.spec())
		},
	}
	cmd.Flags().StringVar(&to, "to", "", "new directory to write the backup to")
	return cmd
}

func (a *app) backup(cmd *cobra.Command, to, storeSpec string) error {
	ctx := cmd.Context()
	if _, err := storeopen.Kind(storeSpec); err != nil {
		return inputError{err}
	}
	pg := postgresSpec(storeSpec)
	if err := checkNewDir(to); err != nil {
		return err
	}
	now := a.now().UTC()
	ca, err := pki.Load(a.dataDir, now)
	if errors.Is(err, pki.ErrNoCA) && pg {
		// Several collectors keep the CA in the database, its key
		// encrypted with a key file (docs/multi-collector.md): then
		// pg_dump holds the CA and the key file is the operator's.
		return inputError{fmt.Errorf("%w in %s: if the CA is in the PostgreSQL store, back the database up with pg_dump --format=custom --no-owner --file FILE %s and keep the CA key file (--ca-key-file) apart from it",
			err, filepath.Join(a.dataDir, "pki"), shellQuote(storeopen.Describe(storeSpec)))}
	}
	if errors.Is(err, pki.ErrNoCA) {
		return inputError{fmt.Errorf("%w (no collector has run with --data %s)", err, a.dataDir)}
	}
	if err != nil {
		return err
	}
	pkiDir := filepath.Join(a.dataDir, "pki")
	before, err := hashTree(pkiDir, "pki")
	if err != nil {
		return err
	}
	// The directory backups go into (/var/backups/ward-collector) may not
	// exist yet; it holds CA keys, so only its owner may enter it.
	if err := os.MkdirAll(filepath.Dir(filepath.Clean(to)), 0o700); err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	stage, err := os.MkdirTemp(filepath.Dir(filepath.Clean(to)), "."+filepath.Base(filepath.Clean(to))+".partial-")
	if err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	done := false
	defer func() {
		if !done {
			os.RemoveAll(stage)
		}
	}()
	m := manifest{Format: backupFormat, FormatVersion: backupFormatV1, CollectorVersion: version(), CreatedAt: now,
		Store: "sqlite", CAFingerprint: ca.Fingerprint()}
	if pg {
		m.Store = "postgres"
	} else {
		db := filepath.Join(a.dataDir, server.DatabaseFile)
		info, err := sqlite.Backup(ctx, db, filepath.Join(stage, server.DatabaseFile))
		giveBackJournals(db)
		if err != nil {
			return err
		}
		if err := os.Chmod(filepath.Join(stage, server.DatabaseFile), 0o600); err != nil {
			return err
		}
		m.SchemaVersion, m.Devices, m.Reports = info.SchemaVersion, &info.Devices, &info.Reports
		f, err := hashFile(filepath.Join(stage, server.DatabaseFile), server.DatabaseFile)
		if err != nil {
			return err
		}
		m.Files = append(m.Files, f)
	}
	for _, f := range before {
		if err := copyFile(filepath.Join(a.dataDir, filepath.FromSlash(f.Path)), filepath.Join(stage, filepath.FromSlash(f.Path)), f); err != nil {
			return err
		}
	}
	// serve's settings (the report interval the admin commands judge
	// staleness by), when it wrote them.
	if sf, err := hashFile(filepath.Join(a.dataDir, settingsFile), settingsFile); err == nil {
		if err := copyFile(filepath.Join(a.dataDir, settingsFile), filepath.Join(stage, settingsFile), sf); err != nil {
			return err
		}
		m.Files = append(m.Files, sf)
	} else if !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	// A CA rotation or a server certificate renewal between the hash and
	// the copy would pair the copy with other keys than the ones hashed.
	after, err := hashTree(pkiDir, "pki")
	if err != nil {
		return err
	}
	if !sameFiles(before, after) {
		return errors.New("the PKI changed while it was copied (a CA rotation or a server certificate renewal): run backup again")
	}
	m.Files = append(m.Files, before...)
	raw, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return err
	}
	if err := writeSynced(filepath.Join(stage, manifestName), append(raw, '\n'), 0o600); err != nil {
		return err
	}
	if err := syncDirs(stage); err != nil {
		return err
	}
	if err := renameInto(stage, to); err != nil {
		return err
	}
	done = true
	fmt.Fprintf(a.stdout, "backup in %s (%s store, CA fingerprint %s)\n", to, m.Store, m.CAFingerprint)
	for _, f := range m.Files {
		fmt.Fprintf(a.stdout, "  %-20s %10d bytes  %s  sha256:%s\n", f.Path, f.Size, f.Mode, f.SHA256)
	}
	if pg {
		dump := filepath.Join(to, "ward.pgdump")
		fmt.Fprintf(a.stdout, `the database is in PostgreSQL, not in this backup: back it up now with pg_dump (one consistent snapshot, taken while collectors serve):
  pg_dump --format=custom --no-owner --file %s %s
to restore: create an empty database (createdb), then
  pg_restore --exit-on-error --single-transaction --no-owner --dbname %s %s
  ward-collector restore --from %s --data DATA
`, shellQuote(dump), shellQuote(storeopen.Describe(storeSpec)), shellQuote(storeopen.Describe(storeSpec)), shellQuote(dump), shellQuote(to))
		return nil
	}
	fmt.Fprintf(a.stdout, "schema version %d, %d devices, %d reports; integrity check ok\n", m.SchemaVersion, *m.Devices, *m.Reports)
	return nil
}

func (a *app) restoreCommand() *cobra.Command {
	var from string
	var force bool
	cmd := &cobra.Command{
		Use:   "restore --from DIR",
		Short: "Put a backup into an empty data directory, after checking every file's hash and the database's integrity",
		Long: `restore checks the backup DIR (made by backup) before it writes anything:
every file in its manifest has the size and SHA-256 the manifest gives,
the database passes SQLite's integrity check at a schema version this
collector knows, and the CA key matches the CA certificate. It then
writes the files to a temporary directory next to --data and renames it
into place, so --data is never half restored.

--data must not exist or be empty. With --force a non-empty --data is
renamed to DATA.replaced-TIME (never deleted) first. Stop the collector
first. When run as root, the restored files take the owner of the
--data directory they replace, so the service's user can open them.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if from == "" {
				return inputError{errors.New("--from DIR is required")}
			}
			return a.restore(cmd, from, force)
		},
	}
	cmd.Flags().StringVar(&from, "from", "", "backup directory (made by ward-collector backup)")
	cmd.Flags().BoolVar(&force, "force", false, "replace a non-empty --data (renamed to DATA.replaced-TIME, not deleted)")
	return cmd
}

func (a *app) restore(cmd *cobra.Command, from string, force bool) error {
	ctx := cmd.Context()
	raw, err := os.ReadFile(filepath.Join(from, manifestName))
	if err != nil {
		return fmt.Errorf("%s is not a ward-collector backup: %w", from, err)
	}
	var m manifest
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&m); err != nil {
		return fmt.Errorf("backup %s is damaged: %s: %w; nothing was restored", from, manifestName, err)
	}
	if m.Format != backupFormat || m.FormatVersion != backupFormatV1 {
		return fmt.Errorf("backup %s: format %q version %d; this collector reads %q version %d", from, m.Format, m.FormatVersion, backupFormat, backupFormatV1)
	}
	if m.Store != "sqlite" && m.Store != "postgres" {
		return fmt.Errorf("backup %s: unknown store %q", from, m.Store)
	}
	if m.Store == "sqlite" && m.SchemaVersion > sqlite.SchemaVersion() {
		return fmt.Errorf("backup %s was made by collector %s at schema version %d, newer than this collector's %d: restore it with ward-collector %s or newer", from, m.CollectorVersion, m.SchemaVersion, sqlite.SchemaVersion(), m.CollectorVersion)
	}
	seen := map[string]bool{}
	hasDB := false
	for _, f := range m.Files {
		if !validBackupPath(f.Path) || seen[f.Path] {
			return fmt.Errorf("backup %s is damaged: manifest names %q, which is not a file a backup holds; nothing was restored", from, f.Path)
		}
		seen[f.Path] = true
		hasDB = hasDB || f.Path == server.DatabaseFile
	}
	if !seen["pki/ca.key"] || !seen["pki/ca.crt"] {
		return fmt.Errorf("backup %s holds no CA (pki/ca.key and pki/ca.crt); nothing was restored", from)
	}
	if hasDB != (m.Store == "sqlite") {
		return fmt.Errorf("backup %s is damaged: a %s backup with%s %s; nothing was restored", from, m.Store, map[bool]string{true: "", false: "out"}[hasDB], server.DatabaseFile)
	}
	data := filepath.Clean(a.dataDir)
	existing, err := dirEntries(data)
	if err != nil {
		return err
	}
	if len(existing) > 0 && !force {
		return fmt.Errorf("%s is not empty (%s): restore writes only into an empty or missing data directory; stop the collector and pass --force to set %s aside (it is renamed, not deleted)", data, strings.Join(existing, ", "), data)
	}
	if err := os.MkdirAll(filepath.Dir(data), 0o755); err != nil {
		return err
	}
	stage, err := os.MkdirTemp(filepath.Dir(data), "."+filepath.Base(data)+".restore-")
	if err != nil {
		return fmt.Errorf("restore: %w", err)
	}
	done := false
	defer func() {
		if !done {
			os.RemoveAll(stage)
		}
	}()
	// Copy each file once, hashing it on the way: what is checked is what
	// is renamed into place, not a file that could change between a check
	// and a copy.
	for _, f := range m.Files {
		dst := filepath.Join(stage, filepath.FromSlash(f.Path))
		got, err := copyHashed(filepath.Join(from, filepath.FromSlash(f.Path)), dst, f)
		if err != nil {
			return fmt.Errorf("backup %s: %w; nothing was restored", from, err)
		}
		if got.Size != f.Size || got.SHA256 != f.SHA256 {
			return fmt.Errorf("backup %s is damaged: %s has %d bytes with SHA-256 %s, the manifest says %d bytes with %s; nothing was restored",
				from, f.Path, got.Size, got.SHA256, f.Size, f.SHA256)
		}
	}
	var info sqlite.BackupInfo
	if hasDB {
		if info, err = sqlite.CheckCopy(ctx, filepath.Join(stage, server.DatabaseFile)); err != nil {
			return fmt.Errorf("backup %s: %w; nothing was restored", from, err)
		}
	}
	ca, err := pki.Load(stage, a.now())
	if err != nil {
		return fmt.Errorf("backup %s: the CA does not load: %w; nothing was restored", from, err)
	}
	if ca.Fingerprint() != m.CAFingerprint {
		return fmt.Errorf("backup %s is damaged: its CA is %s, the manifest says %s; nothing was restored", from, ca.Fingerprint(), m.CAFingerprint)
	}
	if err := giveToOwnerOf(stage, data); err != nil {
		return err
	}
	if err := syncDirs(stage); err != nil {
		return err
	}
	var setAside string
	if len(existing) > 0 {
		setAside = data + ".replaced-" + a.now().UTC().Format("20060102T150405Z")
		if err := os.Rename(data, setAside); err != nil {
			return fmt.Errorf("set %s aside: %w", data, err)
		}
	} else if err := os.Remove(data); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	if err := os.Rename(stage, data); err != nil {
		if setAside != "" {
			os.Rename(setAside, data)
		}
		return fmt.Errorf("restore into %s: %w", data, err)
	}
	done = true
	if err := syncDir(filepath.Dir(data)); err != nil {
		return err
	}
	if setAside != "" {
		fmt.Fprintf(a.stdout, "moved the previous %s to %s\n", data, setAside)
	}
	fmt.Fprintf(a.stdout, "restored %s (made %s by collector %s) into %s; CA fingerprint %s\n", from, m.CreatedAt.Format(time.RFC3339), m.CollectorVersion, data, ca.Fingerprint())
	if hasDB {
		fmt.Fprintf(a.stdout, "schema version %d, %d devices, %d reports; integrity check ok; start the collector: ward-collector serve --data %s\n", info.SchemaVersion, info.Devices, info.Reports, data)
		return nil
	}
	fmt.Fprintf(a.stdout, "this is a PostgreSQL backup: only the PKI was restored; restore the database with pg_restore (docs/operations.md, \"Backups\") before you start the collector\n")
	return nil
}

// shellQuote quotes s for a POSIX shell when it needs it.
func shellQuote(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789@%+=:,./-_") == "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// validBackupPath reports whether p is a path a backup may hold: ward.db,
// settings.json or a file directly under pki/.
func validBackupPath(p string) bool {
	if p == server.DatabaseFile || p == settingsFile {
		return true
	}
	name, ok := strings.CutPrefix(p, "pki/")
	return ok && name != "" && path.Clean(p) == p && !strings.ContainsAny(name, `/\`) && name != "." && name != ".."
}

// checkNewDir refuses a path that exists unless it is an empty directory.
func checkNewDir(p string) error {
	names, err := dirEntries(p)
	if err != nil {
		return err
	}
	if len(names) > 0 {
		return inputError{fmt.Errorf("--to %s exists and is not empty: a backup goes into a new directory", p)}
	}
	return nil
}

// dirEntries lists the names in directory p (nil when p does not exist);
// a p that is not a directory is an error.
func dirEntries(p string) ([]string, error) {
	st, err := os.Stat(p)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	if !st.IsDir() {
		return nil, fmt.Errorf("%s exists and is not a directory", p)
	}
	ents, err := os.ReadDir(p)
	if err != nil {
		return nil, err
	}
	names := make([]string, len(ents))
	for i, e := range ents {
		names[i] = e.Name()
	}
	return names, nil
}

// renameInto renames stage to dst, which may be an empty directory.
func renameInto(stage, dst string) error {
	if err := os.Remove(dst); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("backup into %s: %w", dst, err)
	}
	if err := os.Rename(stage, dst); err != nil {
		return fmt.Errorf("backup into %s: %w", dst, err)
	}
	return syncDir(filepath.Dir(filepath.Clean(dst)))
}

// hashTree hashes the regular files directly in dir, named prefix/NAME,
// sorted by name.
func hashTree(dir, prefix string) ([]file, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var out []file
	for _, e := range ents {
		if !e.Type().IsRegular() || strings.HasPrefix(e.Name(), ".") {
			continue // temporary files of an atomic write
		}
		f, err := hashFile(filepath.Join(dir, e.Name()), prefix+"/"+e.Name())
		if err != nil {
			return nil, err
		}
		out = append(out, f)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Path < out[j].Path })
	return out, nil
}

func hashFile(p, name string) (file, error) {
	in, err := os.Open(p)
	if err != nil {
		return file{}, err
	}
	defer in.Close()
	st, err := in.Stat()
	if err != nil {
		return file{}, err
	}
	h := sha256.New()
	n, err := io.Copy(h, in)
	if err != nil {
		return file{}, fmt.Errorf("read %s: %w", p, err)
	}
	return file{Path: name, Size: n, Mode: fmt.Sprintf("%04o", st.Mode().Perm()), SHA256: hex.EncodeToString(h.Sum(nil))}, nil
}

func sameFiles(a, b []file) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// copyFile copies src to dst with f's mode and checks it against f.
func copyFile(src, dst string, f file) error {
	got, err := copyHashed(src, dst, f)
	if err != nil {
		return err
	}
	if got.SHA256 != f.SHA256 {
		return fmt.Errorf("%s changed while it was copied: run backup again", src)
	}
	return nil
}

// copyHashed copies src to dst (created with f's mode, fsynced) and
// returns what it copied: size and SHA-256.
func copyHashed(src, dst string, f file) (file, error) {
	mode, err := strconv.ParseUint(f.Mode, 8, 32)
	if err != nil || mode&^0o777 != 0 {
		return file{}, fmt.Errorf("%s: mode %q is not a file mode", f.Path, f.Mode)
	}
	in, err := os.Open(src)
	if err != nil {
		return file{}, err
	}
	defer in.Close()
	if err := os.MkdirAll(filepath.Dir(dst), 0o700); err != nil {
		return file{}, err
	}
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, os.FileMode(mode))
	if err != nil {
		return file{}, err
	}
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(out, h), in)
	if err == nil {
		// The umask may have narrowed the mode; the backup keeps it exact.
		err = out.Chmod(os.FileMode(mode))
	}
	if err == nil {
		err = out.Sync()
	}
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return file{}, fmt.Errorf("copy %s: %w", src, err)
	}
	return file{Path: f.Path, Size: n, Mode: f.Mode, SHA256: hex.EncodeToString(h.Sum(nil))}, nil
}

// writeSynced writes data to a new file p and fsyncs it.
func writeSynced(p string, data []byte, mode os.FileMode) error {
	out, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
	if err != nil {
		return err
	}
	_, err = out.Write(data)
	if err == nil {
		err = out.Sync()
	}
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	return err
}

// syncDirs fsyncs dir and the directories in it, so the names of the
// files written there survive a crash before the rename.
func syncDirs(dir string) error {
	return filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			return syncDir(p)
		}
		return nil
	})
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil && !errors.Is(err, os.ErrInvalid) {
		return fmt.Errorf("sync %s: %w", dir, err)
	}
	return nil
}
