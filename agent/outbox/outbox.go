package outbox

import (
	"bytes"
	"cmp"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"google.golang.org/protobuf/proto"

	wardv1 "github.com/wardhq/ward/proto/ward/v1"
)

// Defaults for Options.
const (
	DefaultMaxEntries = 2000
	DefaultMaxBytes   = 32 << 20
	// MaxReportSize is the largest encoded report the outbox accepts.
	MaxReportSize = 4 << 20
	// maxQuarantined bounds the quarantine directory; the oldest go first.
	maxQuarantined = 100
)

// File layout under the outbox directory.
const (
	metaFile      = "meta.json"
	quarantineDir = "quarantine"
	entrySuffix   = ".report"
	seqDigits     = 20
)

// magic starts every entry file; the version is its last byte.
var magic = []byte("WARDOBX1")

// headerSize is magic, payload length (uint32) and CRC-32C (uint32).
var headerSize = len(magic) + 8

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// ErrCorrupt is wrapped by errors about an entry whose checksum, length or
// contents do not hold.
var ErrCorrupt = errors.New("corrupt outbox entry")

// ErrTooLarge is returned by Append for a report larger than MaxReportSize.
var ErrTooLarge = errors.New("report is too large for the outbox")

// Options bound an Outbox. Zero fields take the defaults.
type Options struct {
	// MaxEntries and MaxBytes bound the queue; Append compacts past them.
	MaxEntries int
	MaxBytes   int64
	// Log receives warnings about quarantined entries (default: discard).
	Log *slog.Logger
	// Now is the clock, used only to pick a safe sequence when the
	// sequence file is lost (default time.Now).
	Now func() time.Time
	// Sealer, if set, seals every report Append queues (docs/outbox.md,
	// "Sealed reports"); without one reports are queued unsealed.
	Sealer Sealer
}

// Sealer signs the reports the outbox queues into a chain per epoch.
type Sealer interface {
	// Seal signs r, whose epoch and sequence are set, chained to prev
	// (the previous report's statement hash, or the epoch's genesis) with
	// dropped, the epoch's drop count so far. It sets r.Seal and returns
	// r's statement hash (evidence.Seal does this).
	Seal(r *wardv1.Report, prev []byte, dropped uint64) (hash []byte, err error)
	// Genesis is the hash the first report of epoch chains to: nil when
	// it is not known (an enrolment made before reports were sealed, or
	// an epoch other than the identity's), and that report then carries
	// an empty prev_hash.
	Genesis(epoch uint64) []byte
}

// Outbox is a durable queue of reports in one directory. It is safe for
// concurrent use by the goroutines of one process; two processes must not
// open the same directory.
type Outbox struct {
	dir  string
	opts Options
	log  *slog.Logger

	mu      sync.Mutex
	entries []entry // oldest first
	bytes   int64
	meta    meta
}

type entry struct {
	seq  uint64
	size int64
	// written is when the entry was queued (its file's mtime after Open).
	written time.Time
	// sig identifies the report's verdicts; compaction keeps changes.
	sig string
}

// meta is the outbox's durable counters.
type meta struct {
	// NextSequence is the sequence the next Append uses.
	NextSequence uint64 `json:"next_sequence"`
	// Dropped counts reports compacted away or quarantined and not yet
	// reported as dropped to the collector (Report.dropped_reports, kept
	// for collectors that read only it).
	Dropped uint64 `json:"dropped"`
	// Epoch is the newest report epoch appended, and DroppedTotal every
	// report dropped or quarantined since it began: it only grows, so a
	// redelivered report never counts a drop twice.
	Epoch        uint64 `json:"epoch,omitempty"`
	DroppedTotal uint64 `json:"dropped_total,omitempty"`
	// PrevEpoch and PrevTotal keep the previous epoch's final count for
	// its reports still queued.
	PrevEpoch uint64 `json:"prev_epoch,omitempty"`
	PrevTotal uint64 `json:"prev_total,omitempty"`
	// Head is the chain head of Epoch: the statement hash of the newest
	// report sealed in it (empty before its first), HeadKeyID the key
	// that sealed it; PrevHead is PrevEpoch's. They are written with the
	// sequence that report spent, before its entry file.
	Head      []byte `json:"head,omitempty"`
	HeadKeyID []byte `json:"head_key_id,omitempty"`
	PrevHead  []byte `json:"prev_head,omitempty"`
}

// countDrops adds n dropped or quarantined reports to both counters.
func (m *meta) countDrops(n uint64) {
	m.Dropped += n
	m.DroppedTotal += n
}

// totalFor is the cumulative drop count a report of epoch carries.
func (m meta) totalFor(epoch uint64) uint64 {
	switch epoch {
	case m.Epoch:
		return m.DroppedTotal
	case m.PrevEpoch:
		return m.PrevTotal
	}
	return 0
}

// Entry is the oldest queued report, ready to send. Report.Sequence is set,
// Report.DroppedReports carries the drops not yet acknowledged as reported
// and Report.DroppedTotal every drop of the report's epoch so far.
type Entry struct {
	Report *wardv1.Report
	// Queued is when the report was written to the outbox.
	Queued  time.Time
	carried uint64
}

// Sequence is the entry's sequence number.
func (e Entry) Sequence() uint64 { return e.Report.GetSequence() }

// Open opens (creating if needed) the outbox in dir. It removes temporary
// files left by a crash and quarantines entries that fail their checksum.
func Open(dir string, opts Options) (*Outbox, error) {
	if opts.MaxEntries <= 0 {
		opts.MaxEntries = DefaultMaxEntries
	}
	if opts.MaxBytes <= 0 {
		opts.MaxBytes = DefaultMaxBytes
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	o := &Outbox{dir: dir, opts: opts, log: opts.Log}
	if o.log == nil {
		o.log = slog.New(slog.DiscardHandler)
	}
	o.log = o.log.With("outbox", dir)
	if err := os.MkdirAll(filepath.Join(dir, quarantineDir), 0o700); err != nil {
		return nil, fmt.Errorf("open outbox: %w", err)
	}
	names, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("open outbox: %w", err)
	}
	var maxSeq uint64
	type quarantined struct {
		seq uint64
		err error
	}
	var corrupt []quarantined
	for _, de := range names {
		name := de.Name()
		if strings.HasPrefix(name, ".tmp-") {
			// An interrupted write: it was never acknowledged.
			os.Remove(filepath.Join(dir, name))
			continue
		}
		seq, ok := parseName(name)
		if !ok {
			continue
		}
		maxSeq = max(maxSeq, seq)
		r, size, err := o.read(seq)
		if err != nil {
			corrupt = append(corrupt, quarantined{seq, err})
			continue
		}
		var written time.Time
		if fi, err := de.Info(); err == nil {
			written = fi.ModTime()
		}
		o.entries = append(o.entries, entry{seq: seq, size: size, written: written, sig: signature(r)})
		o.bytes += size
	}
	slices.SortFunc(o.entries, func(a, b entry) int { return cmp.Compare(a.seq, b.seq) })
	if q, err := os.ReadDir(filepath.Join(dir, quarantineDir)); err == nil {
		for _, de := range q {
			if seq, ok := parseName(strings.SplitN(de.Name(), ".", 2)[0] + entrySuffix); ok {
				maxSeq = max(maxSeq, seq)
			}
		}
	}
	m, err := o.readMeta()
	switch {
	case errors.Is(err, fs.ErrNotExist):
		m = meta{NextSequence: 1}
	case err != nil:
		// The counters are lost. Go on after the highest sequence on disk
		// or in quarantine. That may reuse one the collector already
		// acknowledged; it then answers AlreadyExists with its highest
		// sequence and the client renumbers after it (SkipTo). A jump (a
		// clock-based sequence) would be refused outright.
		m = meta{NextSequence: maxSeq + 1}
		o.log.Error("outbox counters are unreadable; continuing after the highest sequence on disk", "err", err, "next_sequence", m.NextSequence)
	}
	m.NextSequence = max(m.NextSequence, maxSeq+1, 1)
	o.meta = m
	// Open writes nothing it needs: Append spends a sequence durably
	// before using it, so a raised next_sequence need not be saved here,
	// and a full disk must not keep the agent from starting.
	for _, q := range corrupt {
		o.quarantine(q.seq, q.err)
	}
	return o, nil
}

// Append assigns r the next sequence number, writes it durably and returns
// the sequence. When the queue is then over its bounds, the oldest reports
// whose verdicts repeat the report before them are dropped first, then the
// oldest reports; drops are counted in the next Entry's DroppedReports.
// The new report is never dropped.
func (o *Outbox) Append(r *wardv1.Report) (uint64, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	seq := o.meta.NextSequence
	r.Sequence = seq
	// The sequence is spent before the report is written, so a crash in
	// between leaves a gap, never a reuse.
	next := o.meta
	next.NextSequence = seq + 1
	if e := r.GetEpoch(); e > next.Epoch {
		// A new epoch counts its drops from zero and starts its chain
		// afresh; the old count and head stay with the old epoch's
		// queued reports.
		next.PrevEpoch, next.PrevTotal, next.PrevHead = next.Epoch, next.DroppedTotal, next.Head
		next.Epoch, next.DroppedTotal, next.Head, next.HeadKeyID = e, 0, nil, nil
	}
	payload, err := o.seal(r, &next)
	if err != nil {
		return 0, err
	}
	// The chain head moves with the sequence, in the same write: a crash
	// before the entry file is written leaves one report missing, whose
	// successor names it as its predecessor (the collector records a gap
	// of one missing report).
	if err := o.writeMeta(next); err != nil {
		return 0, err
	}
	o.meta = next
	if err := WriteFile(o.path(seq), encode(payload), 0o600); err != nil {
		return 0, fmt.Errorf("append report %d: %w", seq, err)
	}
	size := int64(headerSize + len(payload))
	o.entries = append(o.entries, entry{seq: seq, size: size, written: o.opts.Now(), sig: signature(r)})
	o.bytes += size
	return seq, o.compact()
}

// seal seals r (its sequence set) into the chain of its epoch, moves
// that chain's head in m and returns r's encoding. Without a Sealer it
// clears r's seal (a report queued again under a new sequence keeps no
// seal that no longer holds). A report of epoch 0, from a state saved
// before epochs, is not sealed either: a statement must name the epoch
// the collector files the report under, which such an agent does not
// know (it is sealed again once re-enrolled). Called with o.mu held.
func (o *Outbox) seal(r *wardv1.Report, m *meta) ([]byte, error) {
	r.Seal = nil
	if s := o.opts.Sealer; s != nil && r.GetEpoch() != 0 {
		e := r.GetEpoch()
		head := &m.Head
		switch e {
		case m.Epoch:
		case m.PrevEpoch:
			head = &m.PrevHead
		default:
			head = nil // an older epoch still: chain it to its genesis
		}
		prev := s.Genesis(e)
		if head != nil && len(*head) > 0 {
			prev = *head
		}
		hash, err := s.Seal(r, prev, m.totalFor(e))
		if err != nil {
			return nil, fmt.Errorf("seal report %d: %w", r.GetSequence(), err)
		}
		if head != nil {
			*head = hash
			if e == m.Epoch {
				m.HeadKeyID = r.GetSeal().GetKeyId()
			}
		}
	}
	payload, err := proto.MarshalOptions{Deterministic: true}.Marshal(r)
	if err != nil {
		return nil, fmt.Errorf("encode report: %w", err)
	}
	if len(payload) > MaxReportSize {
		return nil, fmt.Errorf("%d bytes: %w", len(payload), ErrTooLarge)
	}
	return payload, nil
}

// compact drops reports until the queue is within its bounds.
func (o *Outbox) compact() error {
	var victims []entry
	kept := slices.Clone(o.entries)
	bytes := o.bytes
	for len(kept) > 1 && (len(kept) > o.opts.MaxEntries || bytes > o.opts.MaxBytes) {
		i := victim(kept)
		victims = append(victims, kept[i])
		bytes -= kept[i].size
		kept = slices.Delete(kept, i, i+1)
	}
	if len(victims) == 0 {
		return nil
	}
	// Count first: a crash before the files go may over-count drops, it
	// never under-counts them.
	m := o.meta
	m.countDrops(uint64(len(victims)))
	if err := o.writeMeta(m); err != nil {
		return err
	}
	o.meta = m
	o.entries, o.bytes = kept, bytes
	for _, v := range victims {
		if err := os.Remove(o.path(v.seq)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("compact outbox: %w", err)
		}
	}
	o.log.Info("outbox compacted", "dropped", len(victims), "pending_dropped", m.Dropped)
	return SyncDir(o.dir)
}

// victim picks the entry to drop from entries (oldest first, at least
// two): the oldest one whose verdicts equal those of the entry before it,
// else the oldest. The newest entry is never picked.
func victim(entries []entry) int {
	for i := 1; i < len(entries)-1; i++ {
		if entries[i].sig == entries[i-1].sig {
			return i
		}
	}
	return 0
}

// Next returns the oldest queued report, or ok false when the queue is
// empty. An entry that no longer passes its checksum is quarantined and
// skipped.
func (o *Outbox) Next() (e Entry, ok bool, err error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	for len(o.entries) > 0 {
		head := o.entries[0]
		r, _, err := o.read(head.seq)
		if err != nil {
			if errors.Is(err, ErrCorrupt) || errors.Is(err, fs.ErrNotExist) {
				o.quarantine(head.seq, err)
				o.drop(head.seq)
				continue
			}
			return Entry{}, false, err
		}
		r.DroppedReports += o.meta.Dropped
		r.DroppedTotal = o.meta.totalFor(r.GetEpoch())
		return Entry{Report: r, Queued: head.written, carried: o.meta.Dropped}, true, nil
	}
	return Entry{}, false, nil
}

// Ack removes a delivered entry. The drops it carried are no longer
// pending. Acknowledging an entry that is gone (compacted meanwhile) only
// settles its drop count. The entry goes first and a failure to save the
// settled count (a full disk) is only logged: delivery never waits for
// meta.json, whose saved pending count then stays high (an over-count of
// the old dropped_reports, never a lost drop) and DroppedTotal, which
// only grows, stays right.
func (o *Outbox) Ack(e Entry) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	seq := e.Sequence()
	if err := os.Remove(o.path(seq)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("ack report %d: %w", seq, err)
	}
	o.drop(seq)
	if e.carried > 0 {
		o.meta.Dropped -= min(e.carried, o.meta.Dropped)
		o.saveMeta()
	}
	return SyncDir(o.dir)
}

// saveMeta writes the counters, logging a failure: used where the
// counters on disk may lag (they then over-count pending drops).
// Called with o.mu held.
func (o *Outbox) saveMeta() {
	if err := o.writeMeta(o.meta); err != nil {
		o.log.Warn("cannot save outbox counters; continuing", "err", err)
	}
}

// Quarantine moves an entry the collector refused out of the queue, into
// the quarantine directory, so that it is kept for inspection but never
// blocks the reports after it.
func (o *Outbox) Quarantine(seq uint64, reason error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.quarantine(seq, reason)
	o.drop(seq)
}

// Len is the number of queued reports.
func (o *Outbox) Len() int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return len(o.entries)
}

// Sequences lists the queued sequence numbers, oldest first.
func (o *Outbox) Sequences() []uint64 {
	o.mu.Lock()
	defer o.mu.Unlock()
	out := make([]uint64, len(o.entries))
	for i, e := range o.entries {
		out[i] = e.seq
	}
	return out
}

// Read returns the queued report with sequence seq.
func (o *Outbox) Read(seq uint64) (*wardv1.Report, error) {
	r, _, err := o.read(seq)
	return r, err
}

// PendingDropped is the count of compacted or quarantined reports not yet
// acknowledged as reported.
func (o *Outbox) PendingDropped() uint64 {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.meta.Dropped
}

// DroppedTotal is the count of reports dropped or quarantined in the
// current epoch.
func (o *Outbox) DroppedTotal() uint64 {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.meta.DroppedTotal
}

// Head is the chain head of the current epoch: the statement hash of the
// newest report sealed in it and the key id that sealed it (both empty
// before its first sealed report).
func (o *Outbox) Head() (epoch uint64, hash, keyID []byte) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.meta.Epoch, slices.Clone(o.meta.Head), slices.Clone(o.meta.HeadKeyID)
}

// NextSequence is the sequence the next Append will use.
func (o *Outbox) NextSequence() uint64 {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.meta.NextSequence
}

// drop forgets seq in the index. Called with o.mu held.
func (o *Outbox) drop(seq uint64) {
	i := slices.IndexFunc(o.entries, func(e entry) bool { return e.seq == seq })
	if i < 0 {
		return
	}
	o.bytes -= o.entries[i].size
	o.entries = slices.Delete(o.entries, i, i+1)
}

// quarantine counts seq as dropped, moves its file into the quarantine
// directory and trims that directory to maxQuarantined files. The count
// is saved first, so a crash over-counts rather than under-counts; when
// it cannot be saved (a full disk) the entry still goes, and the count
// is saved with the next counters that are. Called with o.mu held.
func (o *Outbox) quarantine(seq uint64, reason error) {
	o.log.Warn("outbox entry quarantined", "sequence", seq, "reason", reason)
	o.meta.countDrops(1)
	o.saveMeta()
	qdir := filepath.Join(o.dir, quarantineDir)
	dst := filepath.Join(qdir, fmt.Sprintf("%0*d.%d%s", seqDigits, seq, o.opts.Now().UnixNano(), entrySuffix))
	if err := os.Rename(o.path(seq), dst); err != nil && !errors.Is(err, fs.ErrNotExist) {
		o.log.Error("cannot quarantine outbox entry; removing it", "sequence", seq, "err", err)
		os.Remove(o.path(seq))
	}
	if q, err := os.ReadDir(qdir); err == nil && len(q) > maxQuarantined {
		for _, de := range q[:len(q)-maxQuarantined] { // ReadDir sorts by name: oldest first
			os.Remove(filepath.Join(qdir, de.Name()))
		}
	}
	SyncDir(qdir)
	SyncDir(o.dir)
}

func (o *Outbox) path(seq uint64) string {
	return filepath.Join(o.dir, fmt.Sprintf("%0*d%s", seqDigits, seq, entrySuffix))
}

func parseName(name string) (uint64, bool) {
	num, ok := strings.CutSuffix(name, entrySuffix)
	if !ok || len(num) != seqDigits {
		return 0, false
	}
	seq, err := strconv.ParseUint(num, 10, 64)
	return seq, err == nil && seq > 0
}

// read loads and verifies the entry of seq.
func (o *Outbox) read(seq uint64) (*wardv1.Report, int64, error) {
	f, err := os.Open(o.path(seq))
	if err != nil {
		return nil, 0, fmt.Errorf("read report %d: %w", seq, err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, int64(headerSize+MaxReportSize+1)))
	if err != nil {
		return nil, 0, fmt.Errorf("read report %d: %w", seq, err)
	}
	payload, err := decode(data)
	if err != nil {
		return nil, 0, fmt.Errorf("report %d: %w", seq, err)
	}
	r := &wardv1.Report{}
	if err := proto.Unmarshal(payload, r); err != nil {
		return nil, 0, fmt.Errorf("report %d: %w: %v", seq, ErrCorrupt, err)
	}
	if r.Sequence != seq {
		return nil, 0, fmt.Errorf("report %d: %w: it holds sequence %d", seq, ErrCorrupt, r.Sequence)
	}
	return r, int64(len(data)), nil
}

// encode frames a payload: magic, length, CRC-32C, payload.
func encode(payload []byte) []byte {
	buf := make([]byte, 0, headerSize+len(payload))
	buf = append(buf, magic...)
	buf = binary.BigEndian.AppendUint32(buf, uint32(len(payload)))
	buf = binary.BigEndian.AppendUint32(buf, crc32.Checksum(payload, castagnoli))
	return append(buf, payload...)
}

// decode checks a frame and returns its payload.
func decode(data []byte) ([]byte, error) {
	if len(data) < headerSize || !bytes.Equal(data[:len(magic)], magic) {
		return nil, fmt.Errorf("%w: bad header", ErrCorrupt)
	}
	n := binary.BigEndian.Uint32(data[len(magic):])
	sum := binary.BigEndian.Uint32(data[len(magic)+4:])
	payload := data[headerSize:]
	if uint64(len(payload)) != uint64(n) {
		return nil, fmt.Errorf("%w: %d payload bytes, header says %d", ErrCorrupt, len(payload), n)
	}
	if crc32.Checksum(payload, castagnoli) != sum {
		return nil, fmt.Errorf("%w: checksum mismatch", ErrCorrupt)
	}
	return payload, nil
}

func (o *Outbox) readMeta() (meta, error) {
	data, err := os.ReadFile(filepath.Join(o.dir, metaFile))
	if err != nil {
		return meta{}, err
	}
	var m meta
	if err := json.Unmarshal(data, &m); err != nil {
		return meta{}, fmt.Errorf("%s: %w", metaFile, err)
	}
	return m, nil
}

func (o *Outbox) writeMeta(m meta) error {
	data, err := json.Marshal(m)
	if err != nil {
		return fmt.Errorf("encode outbox counters: %w", err)
	}
	return WriteFile(filepath.Join(o.dir, metaFile), data, 0o600)
}

// signature identifies a report's verdicts: each rule with its status.
func signature(r *wardv1.Report) string {
	parts := make([]string, 0, len(r.GetResults()))
	for _, res := range r.GetResults() {
		parts = append(parts, res.GetRuleId()+"="+res.GetStatus().String())
	}
	slices.Sort(parts)
	sum := sha256.Sum256([]byte(strings.Join(parts, "\n")))
	return hex.EncodeToString(sum[:8])
}
