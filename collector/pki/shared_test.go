package pki

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wardhq/ward/collector/store/memshared"
)

func testKey(t *testing.T) *CAKey {
	t.Helper()
	path := filepath.Join(t.TempDir(), "ca.key")
	if err := WriteCAKeyFile(path); err != nil {
		t.Fatal(err)
	}
	if err := WriteCAKeyFile(path); err == nil {
		t.Fatal("WriteCAKeyFile overwrote a key file")
	}
	k, err := ReadCAKeyFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestCAKeyFile(t *testing.T) {
	dir := t.TempDir()
	for name, content := range map[string]string{
		"short":  "abcd\n",
		"nothex": strings.Repeat("zz", 32),
		"zeros":  strings.Repeat("00", 32),
	} {
		p := filepath.Join(dir, name)
		os.WriteFile(p, []byte(content), 0o600)
		if _, err := ReadCAKeyFile(p); err == nil || !strings.Contains(err.Error(), p) {
			t.Errorf("%s: ReadCAKeyFile = %v, want an error naming the file", name, err)
		}
	}
	raw := filepath.Join(dir, "raw")
	os.WriteFile(raw, bytes.Repeat([]byte{1, 2, 3, 4}, 8), 0o600)
	if _, err := ReadCAKeyFile(raw); err != nil {
		t.Errorf("32 raw bytes: %v", err)
	}
}

func TestSharedCAOneWinner(t *testing.T) {
	ctx := context.Background()
	sec := memshared.New(0)
	key := testKey(t)
	const n = 8
	cas := make([]*Authority, n)
	created := make([]bool, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			var err error
			if cas[i], created[i], err = LoadOrCreateShared(ctx, sec, key, t0, 0); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	winners := 0
	for i := range n {
		if created[i] {
			winners++
		}
		if cas[i] == nil || cas[i].Fingerprint() != cas[0].Fingerprint() {
			t.Fatalf("collector %d has another CA", i)
		}
		if !cas[i].key.Equal(cas[0].key) {
			t.Fatalf("collector %d has another CA key", i)
		}
	}
	if winners != 1 {
		t.Fatalf("%d collectors created the CA, want 1", winners)
	}
	// A device certificate one collector signs is accepted by another.
	dev := deviceCert(t, cas[3], "dev_a", t0)
	if !cas[5].Issued(dev.Leaf) {
		t.Fatal("another collector does not accept the device certificate")
	}
	// Nothing in the store is the key in the clear.
	sealed, _ := sec.Secret(ctx, SecretCA)
	kder, _ := cas[0].marshal()
	if bytes.Contains(sealed, cas[0].Cert.Raw) || bytes.Contains(sealed, kder) {
		t.Fatal("the stored CA is not encrypted")
	}
}

func TestSharedCAWrongKeyIsAnError(t *testing.T) {
	ctx := context.Background()
	sec := memshared.New(0)
	if _, _, err := LoadOrCreateShared(ctx, sec, testKey(t), t0, 0); err != nil {
		t.Fatal(err)
	}
	before, _ := sec.Secret(ctx, SecretCA)
	_, created, err := LoadOrCreateShared(ctx, sec, testKey(t), t0, 0)
	if !errors.Is(err, ErrWrongCAKey) || created {
		t.Fatalf("another key: created %v, %v; want ErrWrongCAKey", created, err)
	}
	if after, _ := sec.Secret(ctx, SecretCA); !bytes.Equal(before, after) {
		t.Fatal("a wrong key replaced the stored CA")
	}
	// A damaged record is told apart from a wrong key.
	key := testKey(t)
	sec2 := memshared.New(0)
	LoadOrCreateShared(ctx, sec2, key, t0, 0)
	v, _ := sec2.Secret(ctx, SecretCA)
	bad := bytes.Clone(v)
	bad[len(bad)-1] ^= 1
	sec2.ReplaceSecret(ctx, SecretCA, v, bad)
	if _, err := LoadShared(ctx, sec2, key, t0); err == nil || errors.Is(err, ErrWrongCAKey) || !strings.Contains(err.Error(), "damaged") {
		t.Fatalf("damaged record: %v", err)
	}
}

func TestSharedCARotateAndImportExport(t *testing.T) {
	ctx := context.Background()
	sec := memshared.New(0)
	key := testKey(t)
	old, _, err := LoadOrCreateShared(ctx, sec, key, t0, 0)
	if err != nil {
		t.Fatal(err)
	}
	before := deviceCert(t, old, "dev_before", t1.Add(-time.Hour))
	o, ca, err := RotateShared(ctx, sec, key, t1, 0)
	if err != nil {
		t.Fatal(err)
	}
	if o.Fingerprint() != old.Fingerprint() || ca.Fingerprint() == old.Fingerprint() {
		t.Fatal("RotateShared did not replace the CA")
	}
	loaded, err := LoadShared(ctx, sec, key, t1)
	if err != nil {
		t.Fatal(err)
	}
	if loaded.Fingerprint() != ca.Fingerprint() || len(loaded.Previous) != 1 || !bytes.Equal(loaded.Previous[0].Raw, old.Cert.Raw) || len(loaded.Cross) != 1 {
		t.Fatalf("after rotation: CA %s, previous %d, cross %d", loaded.Fingerprint(), len(loaded.Previous), len(loaded.Cross))
	}
	if !loaded.Issued(before.Leaf) {
		t.Fatal("a device certificate of the previous CA is refused")
	}
	// An agent that trusts only the old CA verifies the new server
	// certificate through the cross certificate; one of the new CA too.
	dir := t.TempDir()
	os.Mkdir(filepath.Join(dir, "pki"), 0o700)
	sc, err := loaded.ServerCerts(dir, hosts, 0, func() time.Time { return t1 })
	if err != nil {
		t.Fatal(err)
	}
	for name, roots := range map[string]*Authority{"old": old, "new": loaded} {
		if _, cerr, serr := handshake(t, loaded, sc, roots.Pool(), &before, t1); cerr != nil || serr != nil {
			t.Fatalf("agent trusting the %s CA: client %v, server %v", name, cerr, serr)
		}
	}
	// Export to files and load them back: the same CA.
	if err := Export(loaded, dir); err != nil {
		t.Fatal(err)
	}
	if err := Export(loaded, dir); err == nil {
		t.Fatal("Export wrote over a CA")
	}
	files, err := Load(dir, t1)
	if err != nil || files.Fingerprint() != loaded.Fingerprint() || len(files.Previous) != 1 || len(files.Cross) != 1 {
		t.Fatalf("exported CA loads as %v, %v", files, err)
	}
	// Import into a new store; again is no change, another CA is refused.
	sec2 := memshared.New(0)
	if created, err := ImportShared(ctx, sec2, key, files, t1); err != nil || !created {
		t.Fatalf("ImportShared: %v %v", created, err)
	}
	if created, err := ImportShared(ctx, sec2, key, files, t1); err != nil || created {
		t.Fatalf("ImportShared again: %v %v", created, err)
	}
	if _, err := ImportShared(ctx, sec2, key, old, t1); !errors.Is(err, ErrCAExists) {
		t.Fatalf("ImportShared of another CA: %v, want ErrCAExists", err)
	}
	// A rotation that read the CA before another rotation loses.
	v, _ := sec2.Secret(ctx, SecretCA)
	if _, _, err := RotateShared(ctx, sec2, key, t1.Add(time.Hour), 0); err != nil {
		t.Fatal(err)
	}
	if err := sec2.ReplaceSecret(ctx, SecretCA, v, v); err == nil {
		t.Fatal("a stale compare-and-swap won")
	}
}

func TestFileCAClaim(t *testing.T) {
	ctx := context.Background()
	sec := memshared.New(0)
	dir := t.TempDir()
	a, _, err := LoadOrCreate(dir, t0)
	if err != nil {
		t.Fatal(err)
	}
	if err := ClaimFileCA(ctx, sec, a); err != nil {
		t.Fatal(err)
	}
	if err := ClaimFileCA(ctx, sec, a); err != nil {
		t.Fatalf("the same file CA again: %v", err)
	}
	other, _, _ := LoadOrCreate(t.TempDir(), t0)
	if err := ClaimFileCA(ctx, sec, other); !errors.Is(err, ErrCAExists) {
		t.Fatalf("another file CA: %v, want ErrCAExists", err)
	}
	key := testKey(t)
	if _, _, err := LoadOrCreateShared(ctx, sec, key, t0, 0); !errors.Is(err, ErrFileCA) {
		t.Fatalf("a shared CA beside a file CA: %v, want ErrFileCA", err)
	}
	rotated, err := Rotate(dir, t1, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := ClaimFileCA(ctx, sec, rotated); err != nil {
		t.Fatalf("the file CA after rotation: %v", err)
	}
	if _, err := ImportShared(ctx, sec, key, other, t1); !errors.Is(err, ErrCAExists) {
		t.Fatalf("importing another CA over the file CA: %v", err)
	}
	if created, err := ImportShared(ctx, sec, key, rotated, t1); err != nil || !created {
		t.Fatalf("importing the file CA: %v %v", created, err)
	}
	got, _, err := LoadOrCreateShared(ctx, sec, key, t1, 0)
	if err != nil || got.Fingerprint() != rotated.Fingerprint() {
		t.Fatalf("after import: %v, %v", got, err)
	}
	if err := ClaimFileCA(ctx, sec, rotated); !errors.Is(err, ErrCAExists) {
		t.Fatalf("a file CA collector on a store with a sealed CA: %v", err)
	}
}
