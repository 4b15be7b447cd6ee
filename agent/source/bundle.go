package source

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/wardhq/ward/agent/check"
)

// BundleFormat is the version of the bundle layout this package writes and
// reads. docs/bundle.md describes it.
const BundleFormat = 1

// Bundle size limits, so a hostile or broken bundle cannot exhaust memory.
const (
	maxBundleFile  = 16 << 20
	maxBundleTotal = 128 << 20
	maxBundleFiles = 10000
)

// Manifest is a bundle's manifest.json.
type Manifest struct {
	Format       int        `json:"format"`
	CreatedAt    time.Time  `json:"created_at"`
	AgentVersion string     `json:"agent_version"`
	Host         check.Host `json:"host"`
	// Note says where the bundle came from (for captured test bundles: the
	// provenance of the captures).
	Note    string         `json:"note,omitempty"`
	Records []BundleRecord `json:"records"`
}

// BundleRecord is a Record as stored in the manifest; its outputs live in
// separate files under data/ so a person can read them.
type BundleRecord struct {
	Record
	StdoutFile string `json:"stdout_file,omitempty"`
	StderrFile string `json:"stderr_file,omitempty"`
	// Ruleset shadows Record.Ruleset so a reader can tell the register
	// form from the reduced form bundles held before it (rules with a
	// verdict and a match count), which it replays as not recorded.
	Ruleset json.RawMessage `json:"ruleset,omitempty"`
}

// Files returns the bundle's files (manifest.json and data/*) by name.
func (m *Manifest) files(records []Record) (map[string][]byte, error) {
	files := make(map[string][]byte)
	m.Records = m.Records[:0]
	for i, rec := range records {
		br := BundleRecord{Record: rec}
		if rec.Ruleset != nil {
			js, err := json.Marshal(rec.Ruleset)
			if err != nil {
				return nil, fmt.Errorf("encode ruleset: %w", err)
			}
			br.Ruleset = js
		}
		base := fmt.Sprintf("data/%03d-%s", i, slug(rec))
		if rec.Stdout != nil {
			br.StdoutFile = base + ".out"
			files[br.StdoutFile] = rec.Stdout
		}
		if len(rec.Stderr) > 0 {
			br.StderrFile = base + ".err"
			files[br.StderrFile] = rec.Stderr
		}
		m.Records = append(m.Records, br)
	}
	js, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("encode manifest: %w", err)
	}
	files["manifest.json"] = append(js, '\n')
	return files, nil
}

func slug(rec Record) string {
	var s string
	switch rec.Kind {
	case KindCommand:
		s = rec.Tool
		if len(rec.Args) > 0 {
			s += "-" + strings.Join(rec.Args, "-")
		}
	case KindFile, KindDir, KindStat:
		s = rec.Path
	default:
		s = rec.Kind
	}
	var b strings.Builder
	for _, r := range s {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '.', r == '_':
			b.WriteRune(r)
		default:
			b.WriteByte('-')
		}
	}
	out := strings.Trim(b.String(), "-")
	if len(out) > 60 {
		out = out[:60]
	}
	return out
}

// WriteBundle writes rec as a gzipped tar to w.
func WriteBundle(w io.Writer, m Manifest, rec *Recorded) error {
	m.Format = BundleFormat
	files, err := m.files(rec.Records())
	if err != nil {
		return err
	}
	gz := gzip.NewWriter(w)
	tw := tar.NewWriter(gz)
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		hdr := &tar.Header{Name: n, Mode: 0o644, Size: int64(len(files[n])), ModTime: m.CreatedAt, Typeflag: tar.TypeReg}
		if err := tw.WriteHeader(hdr); err != nil {
			return fmt.Errorf("write bundle: %w", err)
		}
		if _, err := tw.Write(files[n]); err != nil {
			return fmt.Errorf("write bundle: %w", err)
		}
	}
	if err := tw.Close(); err != nil {
		return fmt.Errorf("write bundle: %w", err)
	}
	return gz.Close()
}

// WriteBundleDir writes rec as an unpacked bundle directory (the layout
// test bundles under testdata use).
func WriteBundleDir(dir string, m Manifest, rec *Recorded) error {
	m.Format = BundleFormat
	files, err := m.files(rec.Records())
	if err != nil {
		return err
	}
	if err := os.RemoveAll(filepath.Join(dir, "data")); err != nil {
		return err
	}
	for n, data := range files {
		p := filepath.Join(dir, filepath.FromSlash(n))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(p, data, 0o644); err != nil {
			return err
		}
	}
	return nil
}

// OpenBundle reads a bundle from a .tar.gz file or an unpacked directory.
func OpenBundle(p string) (*Manifest, *Recorded, error) {
	fi, err := os.Stat(p)
	if err != nil {
		return nil, nil, fmt.Errorf("open bundle: %w", err)
	}
	files := make(map[string][]byte)
	if fi.IsDir() {
		err = readBundleDir(p, files)
	} else {
		err = readBundleTar(p, files)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("open bundle %s: %w", p, err)
	}
	m, rec, err := decodeBundle(files)
	if err != nil {
		return nil, nil, fmt.Errorf("open bundle %s: %w", p, err)
	}
	return m, rec, nil
}

func readBundleDir(dir string, files map[string][]byte) error {
	var total int64
	return filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		if info.Size() > maxBundleFile || len(files) >= maxBundleFiles {
			return fmt.Errorf("%s: bundle file too large or too many files", rel)
		}
		total += info.Size()
		if total > maxBundleTotal {
			return errors.New("bundle too large")
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		files[filepath.ToSlash(rel)] = data
		return nil
	})
}

func readBundleTar(p string, files map[string][]byte) error {
	f, err := os.Open(p)
	if err != nil {
		return err
	}
	defer f.Close()
	gz, err := gzip.NewReader(f)
	if err != nil {
		return fmt.Errorf("not a gzipped bundle: %w", err)
	}
	tr := tar.NewReader(gz)
	var total int64
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("read tar: %w", err)
		}
		if hdr.Typeflag != tar.TypeReg {
			continue
		}
		name := path.Clean(hdr.Name)
		if hdr.Size > maxBundleFile || len(files) >= maxBundleFiles {
			return fmt.Errorf("%s: bundle file too large or too many files", name)
		}
		total += hdr.Size
		if total > maxBundleTotal {
			return errors.New("bundle too large")
		}
		var buf bytes.Buffer
		if _, err := io.Copy(&buf, io.LimitReader(tr, maxBundleFile+1)); err != nil {
			return fmt.Errorf("read %s: %w", name, err)
		}
		files[name] = buf.Bytes()
	}
}

func decodeBundle(files map[string][]byte) (*Manifest, *Recorded, error) {
	raw, ok := files["manifest.json"]
	if !ok {
		return nil, nil, errors.New("no manifest.json")
	}
	var m Manifest
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if err := dec.Decode(&m); err != nil {
		return nil, nil, fmt.Errorf("manifest.json: %w", err)
	}
	if m.Format != BundleFormat {
		return nil, nil, fmt.Errorf("manifest.json: bundle format %d, this agent reads %d", m.Format, BundleFormat)
	}
	if m.Host.OS == "" {
		return nil, nil, errors.New("manifest.json: host.os is empty")
	}
	rec := NewRecorded(m.Host)
	for i, br := range m.Records {
		r := br.Record
		if br.StdoutFile != "" {
			data, ok := files[br.StdoutFile]
			if !ok {
				return nil, nil, fmt.Errorf("manifest.json: record %d: missing %s", i, br.StdoutFile)
			}
			r.Stdout = data
		}
		if br.StderrFile != "" {
			data, ok := files[br.StderrFile]
			if !ok {
				return nil, nil, fmt.Errorf("manifest.json: record %d: missing %s", i, br.StderrFile)
			}
			r.Stderr = data
		}
		if len(br.Ruleset) > 0 {
			rs, err := decodeRuleset(br.Ruleset)
			if err != nil {
				r.Ruleset, r.Err = nil, &RecordedError{Class: "not_recorded", Message: err.Error()}
			} else {
				r.Ruleset = rs
			}
		}
		rec.Add(r)
	}
	return &m, rec, nil
}

// decodeRuleset decodes a bundle's ruleset. The reduced form of earlier
// bundles (each rule a verdict, a match count and expression names) cannot
// be evaluated over packet space; it is refused, not guessed at.
func decodeRuleset(raw json.RawMessage) (*check.NftRuleset, error) {
	var probe struct {
		Tables []struct {
			Chains []struct {
				Rules []map[string]json.RawMessage `json:"rules"`
			} `json:"chains"`
		} `json:"tables"`
	}
	if err := json.Unmarshal(raw, &probe); err != nil {
		return nil, fmt.Errorf("nftables ruleset: %w", err)
	}
	for _, t := range probe.Tables {
		for _, c := range t.Chains {
			for _, r := range c.Rules {
				_, matches := r["matches"]
				_, verdict := r["verdict"]
				if matches || verdict {
					return nil, errors.New("nftables ruleset in the reduced form of older agents (verdict and match count per rule); re-record the bundle")
				}
			}
		}
	}
	var rs check.NftRuleset
	if err := json.Unmarshal(raw, &rs); err != nil {
		return nil, fmt.Errorf("nftables ruleset: %w", err)
	}
	return &rs, nil
}

func sortStrings(s []string) { sort.Strings(s) }
