// Package evidencetest builds evidence files for tests: a CA, devices
// with real keys and certificates, sealed reports (evidence.Seal) and
// the shipped policy documents.
package evidencetest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"math/big"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/wardhq/ward/evidence"
	wardv1 "github.com/wardhq/ward/proto/ward/v1"
)

// CA is a test collector CA.
type CA struct {
	Cert *x509.Certificate
	Key  *ecdsa.PrivateKey
}

// NewCA makes a CA valid from notBefore for ten years.
func NewCA(t testing.TB, notBefore time.Time) *CA {
	t.Helper()
	key := newKey(t)
	tmpl := &x509.Certificate{
		SerialNumber:          serial(t),
		Subject:               pkix.Name{CommonName: "Ward collector CA (test)", Organization: []string{"Ward"}},
		NotBefore:             notBefore,
		NotAfter:              notBefore.Add(10 * 365 * 24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLen:            1,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return &CA{Cert: c, Key: key}
}

// Issue signs a device certificate as the collector does (subject CN the
// device id, client auth).
func (ca *CA) Issue(t testing.TB, deviceID string, pub *ecdsa.PublicKey, notBefore, notAfter time.Time) []byte {
	t.Helper()
	tmpl := &x509.Certificate{
		SerialNumber: serial(t),
		Subject:      pkix.Name{CommonName: deviceID, Organization: []string{"Ward device"}},
		NotBefore:    notBefore,
		NotAfter:     notAfter,
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, pub, ca.Key)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

// CertLifetime is how long Device certificates are valid.
const CertLifetime = 90 * 24 * time.Hour

// Device is a test device: its current key and chain head.
type Device struct {
	ID    string
	Epoch uint64
	Key   *ecdsa.PrivateKey
	// Evidence is what the file will hold for it.
	Evidence evidence.Device

	ca      *CA
	head    []byte
	seq     uint64
	dropped uint64
}

// Enrol enrols a device at at: epoch 1, a certificate and its enrolment
// record; its first report chains to the genesis.
func (ca *CA) Enrol(t testing.TB, id string, at time.Time) *Device {
	t.Helper()
	d := &Device{ID: id, Epoch: 1, Key: newKey(t), ca: ca}
	der := ca.Issue(t, id, &d.Key.PublicKey, at.Add(-5*time.Minute), at.Add(CertLifetime))
	d.Evidence = evidence.Device{DeviceID: id, Hostname: id + ".example.org"}
	d.Evidence.Certificates = append(d.Evidence.Certificates, evidence.Certificate{DER: der, Kind: "enrol", Epoch: 1})
	d.Evidence.Enrolments = append(d.Evidence.Enrolments, evidence.Enrolment{Epoch: 1, At: at, Kind: "enrol", Certificate: der})
	d.head = evidence.Genesis(id, 1, der)
	return d
}

// Report seals a report collected (and observed) at at with facts and
// the policy name@version, received a minute later, and adds it.
func (d *Device) Report(t testing.TB, at time.Time, facts *wardv1.Facts, policy string, version int) *evidence.Report {
	t.Helper()
	d.seq++
	r := &wardv1.Report{
		Epoch: d.Epoch, Sequence: d.seq, CollectedAt: timestamppb.New(at), AgentVersion: "1.0.0-test",
		PolicyName: policy, PolicyVersion: int32(version), Facts: facts,
	}
	hash, err := evidence.Seal(d.Key, d.ID, r, d.head, d.dropped)
	if err != nil {
		t.Fatal(err)
	}
	d.head = hash
	fr, err := evidence.FileReport(d.ID, r, at.Add(time.Minute), at, false)
	if err != nil {
		t.Fatal(err)
	}
	d.Evidence.Reports = append(d.Evidence.Reports, fr)
	return &d.Evidence.Reports[len(d.Evidence.Reports)-1]
}

// Head is the hash the next report chains to; SetHead moves it (a
// state restored from a backup chains to an older report: a fork).
func (d *Device) Head() []byte     { return d.head }
func (d *Device) SetHead(h []byte) { d.head = h }

// Drop skips n sequences the agent counts as dropped (its outbox full).
func (d *Device) Drop(n uint64) { d.seq += n; d.dropped += n }

// Lose skips n sequences the agent does not account for.
func (d *Device) Lose(n uint64) { d.seq += n }

// Renew gives the device a new key at at, introduced by a handover the
// old key signs.
func (d *Device) Renew(t testing.TB, at time.Time) {
	t.Helper()
	key := newKey(t)
	der := d.ca.Issue(t, d.ID, &key.PublicKey, at.Add(-5*time.Minute), at.Add(CertLifetime))
	kid, err := evidence.KeyID(&key.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	h := &wardv1.KeyHandover{DeviceId: d.ID, Epoch: d.Epoch, NewKeyId: kid, At: timestamppb.New(at)}
	if err := evidence.SignHandover(d.Key, h); err != nil {
		t.Fatal(err)
	}
	b, err := proto.Marshal(h)
	if err != nil {
		t.Fatal(err)
	}
	d.Evidence.Certificates = append(d.Evidence.Certificates, evidence.Certificate{DER: der, Kind: "renew", Epoch: d.Epoch, Handover: b})
	d.Key = key
}

// RebindKey re-binds the device at at with a new key the previous one
// proves (a rebind-key record): a new epoch whose chain starts at its
// genesis.
func (d *Device) RebindKey(t testing.TB, at time.Time) {
	t.Helper()
	prevCert := d.Evidence.Certificates[len(d.Evidence.Certificates)-1].DER
	key := newKey(t)
	csr, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: d.ID}}, key)
	if err != nil {
		t.Fatal(err)
	}
	digest := sha256.Sum256(append([]byte("ward-rebind-v1\x00"), csr...))
	proof, err := ecdsa.SignASN1(rand.Reader, d.Key, digest[:])
	if err != nil {
		t.Fatal(err)
	}
	d.Epoch++
	der := d.ca.Issue(t, d.ID, &key.PublicKey, at.Add(-5*time.Minute), at.Add(CertLifetime))
	d.Evidence.Certificates = append(d.Evidence.Certificates, evidence.Certificate{DER: der, Kind: "rebind", Epoch: d.Epoch})
	d.Evidence.Enrolments = append(d.Evidence.Enrolments, evidence.Enrolment{
		Epoch: d.Epoch, At: at, Kind: "rebind-key", Certificate: der,
		PreviousCertificate: prevCert, CSR: csr, RebindProof: proof,
	})
	d.Key = key
	d.head = evidence.Genesis(d.ID, d.Epoch, der)
}

// Build assembles the file for [from, to): the CA, the policy documents,
// the devices with the gaps their reports' sequence jumps make (dropped
// as the agent's signed counts say), and the summary.
func Build(t testing.TB, ca *CA, from, to time.Time, pols []evidence.Policy, devices ...*Device) *evidence.File {
	t.Helper()
	f := &evidence.File{
		Format: evidence.Format, GeneratedAt: to, GeneratedBy: "evidencetest",
		From: from, To: to, CA: [][]byte{ca.Cert.Raw}, Policies: pols,
	}
	for _, d := range devices {
		ev := d.Evidence
		ev.Gaps = Gaps(t, ev.Reports)
		ev.Forks = []evidence.Fork{}
		f.Devices = append(f.Devices, ev)
	}
	Resummarize(t, f)
	return f
}

// Resummarize sets f.Summary to what evidence.Summarize computes.
func Resummarize(t testing.TB, f *evidence.File) {
	t.Helper()
	sum, err := evidence.Summarize(f)
	if err != nil {
		t.Fatal(err)
	}
	f.Summary = sum
}

// Gaps are the gaps between consecutive reports of an epoch, as the
// collector records them.
func Gaps(t testing.TB, reports []evidence.Report) []evidence.Gap {
	t.Helper()
	gaps := []evidence.Gap{}
	var prev *wardv1.ReportStatement
	for _, r := range reports {
		st, err := evidence.DecodeStatement(r.Statement)
		if err != nil {
			t.Fatal(err)
		}
		if prev != nil && prev.GetEpoch() == st.GetEpoch() && st.GetSequence() > prev.GetSequence()+1 {
			missing := st.GetSequence() - prev.GetSequence() - 1
			growth := st.GetDroppedTotal() - prev.GetDroppedTotal()
			gaps = append(gaps, evidence.Gap{Epoch: st.GetEpoch(), After: prev.GetSequence(), Before: st.GetSequence(), Dropped: min(growth, missing)})
		}
		prev = st
	}
	return gaps
}

// Policy is a shipped policy document (policies/NAME.yaml) as a file
// holds it.
func Policy(t testing.TB, name string, version int) evidence.Policy {
	t.Helper()
	_, here, _, _ := runtime.Caller(0)
	doc, err := os.ReadFile(filepath.Join(filepath.Dir(here), "..", "..", "policies", name+".yaml"))
	if err != nil {
		t.Fatal(err)
	}
	return evidence.NewPolicy(name, version, doc)
}

// LinuxFacts are a Debian laptop's facts at at that pass the shipped
// baseline, with its system disk encrypted or not.
func LinuxFacts(at time.Time, encrypted bool) *wardv1.Facts {
	ok := func() *wardv1.Collection {
		return &wardv1.Collection{Status: wardv1.CollectionStatus_COLLECTION_STATUS_OK}
	}
	yes, no := true, false
	prot, conv := wardv1.Protection_PROTECTION_ON, wardv1.Conversion_CONVERSION_FULLY_ENCRYPTED
	if !encrypted {
		prot, conv = wardv1.Protection_PROTECTION_OFF, wardv1.Conversion_CONVERSION_FULLY_DECRYPTED
	}
	zero, four := int32(0), int32(4)
	return &wardv1.Facts{
		CollectedAt: timestamppb.New(at),
		Os: &wardv1.OSFacts{Collection: ok(), Platform: "linux", Name: "Debian GNU/Linux", Id: "debian",
			Version: "13", Build: "13 (trixie)", Kernel: "6.12.57+deb13-amd64", Architecture: "amd64"},
		DiskEncryption: &wardv1.DiskEncryptionFacts{Collection: ok(), Volumes: []*wardv1.Volume{
			{MountPoint: "/", Device: "/dev/mapper/vg-root", System: true, Encrypted: &encrypted, Method: "LUKS2",
				Protection: prot, Conversion: conv, Chain: "dm-1 (LVM) > dm-0 (CRYPT-LUKS2) > nvme0n1p3"},
			{MountPoint: "swap", Device: "/dev/dm-2", Swap: true, Encrypted: &yes, Method: "LUKS2",
				Protection: wardv1.Protection_PROTECTION_ON, Conversion: wardv1.Conversion_CONVERSION_FULLY_ENCRYPTED,
				Chain: "dm-2 (LVM) > dm-0 (CRYPT-LUKS2) > nvme0n1p3"},
		}},
		PatchLevel: &wardv1.PatchFacts{Collection: ok(), Manager: "apt",
			PendingUpdates: &four, PendingSecurityUpdates: &zero,
			LastUpdateInstalledAt: timestamppb.New(at.Add(-2 * 24 * time.Hour)),
			MetadataRefreshedAt:   timestamppb.New(at.Add(-20 * time.Hour)),
			RebootRequired:        &no, AutomaticUpdates: &yes},
		Firewall: &wardv1.FirewallFacts{Collection: ok(), Enabled: &yes, Backend: "nftables",
			Profiles: []*wardv1.FirewallProfile{
				{Name: "ipv4", Enabled: &yes, DefaultInbound: wardv1.FirewallAction_FIREWALL_ACTION_BLOCK},
				{Name: "ipv6", Enabled: &yes, DefaultInbound: wardv1.FirewallAction_FIREWALL_ACTION_BLOCK},
			},
			Summary:            "Inbound traffic is filtered (IPv4: policy drop; IPv6: policy drop).",
			ServicesCollection: ok()},
	}
}

// KeyHex is a key id in hex, as Verify's results show it.
func KeyHex(t testing.TB, key *ecdsa.PrivateKey) string {
	t.Helper()
	kid, err := evidence.KeyID(&key.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(kid)
}

func newKey(t testing.TB) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func serial(t testing.TB) *big.Int {
	t.Helper()
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		t.Fatal(err)
	}
	return n
}
