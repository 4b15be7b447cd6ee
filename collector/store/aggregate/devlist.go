package aggregate

import (
	"cmp"
	"context"
	"encoding/base64"
	"encoding/json"
	"slices"
	"strconv"
	"strings"

	"github.com/wardhq/ward/collector/store"
)

// The device list's sorts that no index of the devices table walks
// (docs/device-list.md) are put together here, once for both stores,
// from pieces that each walk an index:
//
//   - status: one hostname-ordered list per status, in store.StatusOrder;
//   - failing since and next deadline: a device's key is the earliest
//     failing since (or deadline) of its failing rules. agg_failing
//     holds every failing state ordered by (group, rule, since, device),
//     so each (group, rule) is a stream ordered by key; the streams are
//     merged, and a state is the device's place when its key is the
//     device's smallest, so a device is listed once. A deadline is
//     failing since plus grace, except for a connected-grace state
//     (docs/connectivity.md), due at its report's time plus what is left
//     of grace (store.ConnectedDeadline), paused or not: by deadline,
//     each (group, rule) is two streams, its wall-clock states on
//     agg_failing's key and its connected ones by report time less grace
//     used (StreamConnected). Devices without a key (not failing, no
//     rule with a deadline, revoked) follow, by hostname; descending is
//     the exact reverse.
//
// A page reads about a page of each stream, so it costs the same deep in
// the list as at its start; filters that match few of the failing
// devices make it read further, as a filter on an index walk does.

// Rest restricts a plain list to the devices that have no key of a
// merged sort.
type Rest int

// Rests.
const (
	RestAll        Rest = iota // no restriction
	RestNotFailing             // revoked, or no failing rule
	RestNoDeadline             // revoked, or no failing rule with a deadline (q.Deadlines)
)

// Keyed is one failing state of a (group, rule) stream.
type Keyed struct {
	Since    int64 // failing since, nanoseconds (StreamConnected: the report's time less grace used)
	DeviceID string
}

// Stream is which failing states of a (group, rule) a stream holds.
type Stream int

// Streams.
const (
	// StreamAll: every failing state, by failing since.
	StreamAll Stream = iota
	// StreamWallClock: the states whose grace is not connected, by
	// failing since.
	StreamWallClock
	// StreamConnected: the connected-grace states, paused or not, by
	// the time their deadline counts grace from: the report's time less
	// the connected time used (store.ConnectedDeadline). No index holds
	// that order: a read sorts the (group, rule)'s failing states.
	StreamConnected
)

// ListBackend is what a store gives List.
type ListBackend interface {
	// ListPlain lists q, whose sort an index walks, restricted by rest,
	// without its total.
	ListPlain(ctx context.Context, q store.DeviceQuery, rest Rest) (store.DevicePage, error)
	// PlainCursor is ListPlain's cursor after d in the order of sortKey.
	PlainCursor(sortKey string, d store.Device) string
	// Count is ListDevices' total of q.
	Count(ctx context.Context, q store.DeviceQuery) (int, bool, error)
	// FailingParts lists the (group, rule) pairs that have failing states.
	FailingParts(ctx context.Context) ([][2]string, error)
	// FailingAfter returns at most n failing states of (group, rule) in
	// kind after (since, device) in the direction (before it when desc),
	// or from the start (the end when desc) when first.
	FailingAfter(ctx context.Context, kind Stream, group, rule string, since int64, device string, first, desc bool, n int) ([]Keyed, error)
	// FailStates returns the failing states of the devices among ids
	// that are not revoked.
	FailStates(ctx context.Context, ids []string) ([]store.FailState, error)
	// Match returns the devices among ids that pass q's filters.
	Match(ctx context.Context, q store.DeviceQuery, ids []string) ([]store.Device, error)
}

// OnlyOverdue reports whether q's filters are Overdue and at most a
// group: its total is then counted from agg_failing (OverdueParts).
func OnlyOverdue(q store.DeviceQuery) bool {
	return q.Overdue && q.Status == "" && q.Seen == "" && q.RuleID == "" && q.OS == "" && q.Search == "" && !q.CertExpiring &&
		q.CertWithin == 0 && q.AgentVersion == "" && q.Groups == nil
}

// OverdueParts are the (group, rule, cut) ranges of agg_failing that hold
// q's overdue states: those whose grace is not connected failing since
// at or before the cut, the connected-grace ones not paused and whose
// report's time less grace used is at or before it (store.RuleState.Overdue).
func OverdueParts(q store.DeviceQuery) (parts [][2]string, cuts []int64) {
	for k, g := range store.Graces(q.Deadlines) {
		if q.Group == "" || k[0] == q.Group {
			parts, cuts = append(parts, k), append(cuts, q.Now.Add(-g).UnixNano())
		}
	}
	return parts, cuts
}

// Merged reports whether sortKey is one of List's own sorts.
func Merged(sortKey string) bool {
	switch strings.TrimPrefix(sortKey, "-") {
	case store.SortStatus, store.SortFailingSince, store.SortDeadline:
		return true
	}
	return false
}

// Reverse is the sort key of the exact reverse order of sortKey, for
// the page before a cursor: "-" toggled, or for the sorts whose
// descending order keeps hostnames ascending (group, fail), "~" before
// the key, which sortCols reads as every column's direction flipped.
func Reverse(sortKey string) string {
	if k, ok := strings.CutPrefix(sortKey, "~"); ok {
		return k
	}
	switch strings.TrimPrefix(sortKey, "-") {
	case store.SortGroup, store.SortFail:
		return "~" + sortKey
	}
	if k, ok := strings.CutPrefix(sortKey, "-"); ok {
		return k
	}
	if sortKey == "" {
		return "-" + store.SortHostname
	}
	return "-" + sortKey
}

// List is ListDevices for every sort: the plain ones through
// b.ListPlain, the merged ones put together; then the page's listings
// and the cursors of the pages before and after it. The page before a
// cursor (q.Before) is the page after it in the reverse order, turned
// round.
func List(ctx context.Context, b ListBackend, q store.DeviceQuery) (store.DevicePage, error) {
	if q.Limit <= 0 {
		q.Limit = 50
	}
	if q.Before == "" || q.After != "" {
		q.Before = ""
		page, err := list(ctx, b, q)
		if err != nil {
			return store.DevicePage{}, err
		}
		if len(page.Devices) > 0 && (q.After != "" || q.Offset > 0) {
			page.Prev = cursorOf(b, q, Reverse(q.Sort), page.Devices[0], page.Listing[page.Devices[0].ID])
		}
		return page, nil
	}
	rq := q
	rq.Sort, rq.After, rq.Before, rq.Offset = Reverse(q.Sort), q.Before, "", 0
	page, err := list(ctx, b, rq)
	if err != nil {
		return store.DevicePage{}, err
	}
	slices.Reverse(page.Devices)
	before := page.Next
	page.Next, page.Prev = "", ""
	if n := len(page.Devices); n > 0 {
		page.Next = cursorOf(b, q, q.Sort, page.Devices[n-1], page.Listing[page.Devices[n-1].ID])
		if before != "" {
			page.Prev = cursorOf(b, q, rq.Sort, page.Devices[0], page.Listing[page.Devices[0].ID])
		}
	}
	return page, nil
}

// cursorOf is the cursor after d in the order of sortKey.
func cursorOf(b ListBackend, q store.DeviceQuery, sortKey string, d store.Device, l store.DeviceListing) string {
	desc := strings.HasPrefix(sortKey, "-")
	switch strings.TrimPrefix(sortKey, "-") {
	case store.SortStatus:
		return encodeMerged(sortKey, string(d.Status(q.Now, q.StaleAfter)), b.PlainCursor(hostSort(desc), d))
	case store.SortFailingSince, store.SortDeadline:
		key := l.NextDeadline
		if strings.TrimPrefix(sortKey, "-") == store.SortFailingSince {
			key = l.FailingSince
		}
		if key == nil {
			return encodeMerged(sortKey, "r", b.PlainCursor(hostSort(desc), d))
		}
		return encodeMerged(sortKey, "k", strconv.FormatInt(key.UnixNano(), 10), d.ID)
	}
	return b.PlainCursor(sortKey, d)
}

func list(ctx context.Context, b ListBackend, q store.DeviceQuery) (store.DevicePage, error) {
	if q.CertExpiring && (q.CertWithin <= 0 || q.CertWithin > store.CertWarning) {
		q.CertWithin = store.CertWarning
	}
	// An offset without a cursor reads what it skips, as it does in the
	// plain sorts' queries.
	skip := 0
	if Merged(q.Sort) && q.After == "" && q.Offset > 0 {
		skip, q.Limit = q.Offset, q.Limit+q.Offset
	}
	var page store.DevicePage
	var err error
	switch strings.TrimPrefix(q.Sort, "-") {
	case store.SortStatus:
		page, err = listStatus(ctx, b, q)
	case store.SortFailingSince, store.SortDeadline:
		page, err = listKeyed(ctx, b, q)
	default:
		page, err = b.ListPlain(ctx, q, RestAll)
	}
	if err != nil {
		return store.DevicePage{}, err
	}
	page.Devices = page.Devices[min(skip, len(page.Devices)):]
	if page.Total, page.TotalExact, err = b.Count(ctx, q); err != nil {
		return store.DevicePage{}, err
	}
	ids := make([]string, len(page.Devices))
	for i, d := range page.Devices {
		ids[i] = d.ID
	}
	states, err := b.FailStates(ctx, ids)
	if err != nil {
		return store.DevicePage{}, err
	}
	page.Listing = store.Listings(states, store.Graces(q.Deadlines), q.Now)
	return page, nil
}

func encodeMerged(vals ...string) string {
	b, _ := json.Marshal(vals)
	return base64.RawURLEncoding.EncodeToString(b)
}

func decodeMerged(cursor, sortKey string) ([]string, error) {
	b, err := base64.RawURLEncoding.DecodeString(cursor)
	var vals []string
	if err == nil {
		err = json.Unmarshal(b, &vals)
	}
	if err != nil || len(vals) < 3 || vals[0] != sortKey {
		return nil, store.ErrBadCursor
	}
	return vals[1:], nil
}

// hostSort is the order within a merged sort's pieces.
func hostSort(desc bool) string {
	if desc {
		return "-" + store.SortHostname
	}
	return store.SortHostname
}

// listStatus lists by status, then hostname. Cursor: status, then the
// cursor of that status's hostname list.
func listStatus(ctx context.Context, b ListBackend, q store.DeviceQuery) (store.DevicePage, error) {
	desc := strings.HasPrefix(q.Sort, "-")
	order := slices.Clone(store.StatusOrder)
	if desc {
		slices.Reverse(order)
	}
	start, inner := 0, ""
	if q.After != "" {
		vals, err := decodeMerged(q.After, q.Sort)
		if err != nil || len(vals) != 2 {
			return store.DevicePage{}, store.ErrBadCursor
		}
		start = slices.Index(order, store.DeviceStatus(vals[0]))
		if start < 0 {
			return store.DevicePage{}, store.ErrBadCursor
		}
		inner = vals[1]
	}
	var out []store.Device
	var segs []store.DeviceStatus
	for i := start; i < len(order) && len(out) <= q.Limit; i++ {
		st := order[i]
		if q.Status != "" && q.Status != st {
			continue
		}
		sub := q
		sub.Status, sub.Sort, sub.Limit, sub.Offset, sub.After = st, hostSort(desc), q.Limit+1-len(out), 0, ""
		if i == start {
			sub.After = inner
		}
		p, err := b.ListPlain(ctx, sub, RestAll)
		if err != nil {
			return store.DevicePage{}, err
		}
		for _, d := range p.Devices {
			out, segs = append(out, d), append(segs, st)
		}
	}
	page := store.DevicePage{Devices: out}
	if len(out) > q.Limit {
		last := out[q.Limit-1]
		page.Devices = out[:q.Limit]
		page.Next = encodeMerged(q.Sort, string(segs[q.Limit-1]), b.PlainCursor(hostSort(desc), last))
	}
	return page, nil
}

// keyedDevice is a device in a keyed sort's order.
type keyedDevice struct {
	key int64
	dev store.Device
}

func cmpKey(ak int64, aid string, bk int64, bid string) int {
	return cmp.Or(cmp.Compare(ak, bk), cmp.Compare(aid, bid))
}

// listKeyed lists by failing since or next deadline. Cursor: "k", key
// and device id in the keyed part; "r" and the hostname list's cursor in
// the rest.
func listKeyed(ctx context.Context, b ListBackend, q store.DeviceQuery) (store.DevicePage, error) {
	desc := strings.HasPrefix(q.Sort, "-")
	byDeadline := strings.TrimPrefix(q.Sort, "-") == store.SortDeadline
	rest := RestNotFailing
	if byDeadline {
		rest = RestNoDeadline
	}
	seg, inner := "", ""
	var ck int64
	var cdev string
	if q.After != "" {
		vals, err := decodeMerged(q.After, q.Sort)
		if err != nil {
			return store.DevicePage{}, err
		}
		switch {
		case vals[0] == "r" && len(vals) == 2:
			seg, inner = "r", vals[1]
		case vals[0] == "k" && len(vals) == 3:
			seg, cdev = "k", vals[2]
			if ck, err = strconv.ParseInt(vals[1], 10, 64); err != nil {
				return store.DevicePage{}, store.ErrBadCursor
			}
		default:
			return store.DevicePage{}, store.ErrBadCursor
		}
	}
	want := q.Limit + 1
	var out []keyedDevice
	var segs []string
	restPart := func(after string) error {
		sub := q
		sub.Sort, sub.Limit, sub.Offset, sub.After = hostSort(desc), want-len(out), 0, after
		p, err := b.ListPlain(ctx, sub, rest)
		if err != nil {
			return err
		}
		for _, d := range p.Devices {
			out, segs = append(out, keyedDevice{dev: d}), append(segs, "r")
		}
		return nil
	}
	keyedPart := func(first bool) error {
		ks, err := mergeKeyed(ctx, b, q, byDeadline, desc, ck, cdev, first, want-len(out))
		for _, k := range ks {
			out, segs = append(out, k), append(segs, "k")
		}
		return err
	}
	var err error
	switch {
	case !desc && seg != "r":
		if err = keyedPart(seg == ""); err == nil && len(out) < want {
			err = restPart("")
		}
	case !desc:
		err = restPart(inner)
	case seg != "k":
		if err = restPart(inner); err == nil && len(out) < want {
			err = keyedPart(true)
		}
	default:
		err = keyedPart(false)
	}
	if err != nil {
		return store.DevicePage{}, err
	}
	page := store.DevicePage{}
	for _, k := range out[:min(len(out), q.Limit)] {
		page.Devices = append(page.Devices, k.dev)
	}
	if len(out) > q.Limit {
		last := out[q.Limit-1]
		if segs[q.Limit-1] == "k" {
			page.Next = encodeMerged(q.Sort, "k", strconv.FormatInt(last.key, 10), last.dev.ID)
		} else {
			page.Next = encodeMerged(q.Sort, "r", b.PlainCursor(hostSort(desc), last.dev))
		}
	}
	return page, nil
}

// stream is one (group, rule) of a keyed merge.
type stream struct {
	group, rule string
	kind        Stream
	grace       int64
	buf         []Keyed
	since       int64 // position: the last state read
	dev         string
	first       bool // nothing read yet and no cursor
	done        bool
	fetch       int // how many states the next read asks for
}

// mergeKeyed returns up to n devices after (ck, cdev) (from the start
// when first) in key order, each at its smallest key, that pass q's
// filters.
func mergeKeyed(ctx context.Context, b ListBackend, q store.DeviceQuery, byDeadline, desc bool, ck int64, cdev string, first bool, n int) ([]keyedDevice, error) {
	var streams []*stream
	inGroups := func(g string) bool {
		if q.Group != "" && g != q.Group {
			return false
		}
		return len(q.Groups) == 0 || slices.Contains(q.Groups, g)
	}
	graces := store.Graces(q.Deadlines)
	if byDeadline {
		for k, g := range graces {
			if inGroups(k[0]) {
				streams = append(streams, &stream{group: k[0], rule: k[1], kind: StreamWallClock, grace: int64(g)},
					&stream{group: k[0], rule: k[1], kind: StreamConnected, grace: int64(g)})
			}
		}
	} else {
		parts, err := b.FailingParts(ctx)
		if err != nil {
			return nil, err
		}
		for _, k := range parts {
			if inGroups(k[0]) {
				streams = append(streams, &stream{group: k[0], rule: k[1]})
			}
		}
	}
	for _, s := range streams {
		s.since, s.dev, s.first = ck-s.grace, cdev, first
	}
	// Candidates are checked a batch at a time; each stream is read a
	// few states at first (a page's worth spread over the streams), then
	// four times more at each refill: the streams a page draws on most
	// are the ones read further.
	batch := max(2*n, 32)
	for _, s := range streams {
		s.fetch = max(8, 2*n/max(len(streams), 1)+1)
	}
	head := func(s *stream) (Keyed, bool, error) {
		if len(s.buf) == 0 && !s.done {
			ks, err := b.FailingAfter(ctx, s.kind, s.group, s.rule, s.since, s.dev, s.first, desc, s.fetch)
			if err != nil {
				return Keyed{}, false, err
			}
			s.buf, s.first, s.done = ks, false, len(ks) < s.fetch
			s.fetch = min(4*s.fetch, 4096)
			if len(ks) > 0 {
				s.since, s.dev = ks[len(ks)-1].Since, ks[len(ks)-1].DeviceID
			}
		}
		if len(s.buf) == 0 {
			return Keyed{}, false, nil
		}
		return s.buf[0], true, nil
	}
	keyOf := func(st store.FailState) (int64, bool) {
		since := st.Since.UnixNano()
		if !byDeadline {
			return since, true
		}
		g, ok := graces[[2]string{st.Group, st.RuleID}]
		if ok && st.GraceConnected {
			d, _ := store.ConnectedDeadline(st.At, g, st.GraceUsed, st.DeadlinePaused)
			return d.UnixNano(), true
		}
		return since + int64(g), ok
	}
	var out []keyedDevice
	seen := map[string]bool{}
	for len(out) < n {
		// The next batch of candidates, in order.
		type cand struct {
			key int64
			id  string
		}
		var cands []cand
		for len(cands) < batch {
			var best *stream
			var bk Keyed
			for _, s := range streams {
				k, ok, err := head(s)
				if err != nil {
					return nil, err
				}
				if !ok {
					continue
				}
				c := 0
				if best != nil {
					c = cmpKey(k.Since+s.grace, k.DeviceID, bk.Since+best.grace, bk.DeviceID)
					if desc {
						c = -c
					}
				}
				if best == nil || c < 0 {
					best, bk = s, k
				}
			}
			if best == nil {
				break
			}
			best.buf = best.buf[1:]
			cands = append(cands, cand{bk.Since + best.grace, bk.DeviceID})
		}
		if len(cands) == 0 {
			break
		}
		var ids []string
		for _, c := range cands {
			if !seen[c.id] && !slices.Contains(ids, c.id) {
				ids = append(ids, c.id)
			}
		}
		states, err := b.FailStates(ctx, ids)
		if err != nil {
			return nil, err
		}
		least := map[string]int64{}
		for _, st := range states {
			if k, ok := keyOf(st); ok {
				if cur, had := least[st.DeviceID]; !had || k < cur {
					least[st.DeviceID] = k
				}
			}
		}
		var valid []string
		for _, c := range cands {
			if k, ok := least[c.id]; ok && k == c.key && !seen[c.id] && !slices.Contains(valid, c.id) {
				valid = append(valid, c.id)
			}
		}
		matched, err := b.Match(ctx, q, valid)
		if err != nil {
			return nil, err
		}
		byID := map[string]store.Device{}
		for _, d := range matched {
			byID[d.ID] = d
		}
		for _, c := range cands {
			d, ok := byID[c.id]
			if !ok || seen[c.id] || least[c.id] != c.key {
				continue
			}
			seen[c.id] = true
			out = append(out, keyedDevice{key: c.key, dev: d})
			if len(out) == n {
				break
			}
		}
	}
	return out, nil
}

// Rows is what a query returns in either store's driver (database/sql's
// *sql.Rows, pgx's Rows), so both read the list's keys with one loop.
type Rows interface {
	Next() bool
	Scan(dest ...any) error
	Err() error
}

// FailingPartsQuery lists the (group, rule) pairs that have failing
// states (ListBackend.FailingParts); read it with ScanParts.
const FailingPartsQuery = `SELECT DISTINCT grp, rule_id FROM agg_failing_hours`

// ScanParts reads (group, rule) rows.
func ScanParts(rows Rows) ([][2]string, error) {
	var out [][2]string
	for rows.Next() {
		var k [2]string
		if err := rows.Scan(&k[0], &k[1]); err != nil {
			return nil, err
		}
		out = append(out, k)
	}
	return out, rows.Err()
}

// FailingAfterQuery is ListBackend.FailingAfter's query, with ?
// placeholders; read it with ScanKeyed. ruleStates is the store's
// rule_states r as a state's (device_id, rule_id) looks it up. StreamAll
// and StreamWallClock walk agg_failing's key (since, device_id), the
// latter looking each state's rule state up; StreamConnected sorts the
// (group, rule)'s connected-grace states.
func FailingAfterQuery(kind Stream, ruleStates, group, rule string, since int64, device string, first, desc bool, n int) (string, []any) {
	from, key := `agg_failing f WHERE f.grp = ? AND f.rule_id = ?`, `f.since`
	switch kind {
	case StreamWallClock:
		from += ` AND NOT EXISTS (SELECT 1 FROM ` + ruleStates + ` WHERE r.device_id = f.device_id AND r.rule_id = f.rule_id AND r.grace_connected)`
	case StreamConnected:
		from = `(SELECT coalesce(d.states_at, r.updated_at) - r.grace_used AS since, f.device_id FROM agg_failing f
			JOIN ` + ruleStates + ` ON r.device_id = f.device_id AND r.rule_id = f.rule_id JOIN devices d ON d.id = f.device_id
			WHERE f.grp = ? AND f.rule_id = ? AND r.grace_connected) f WHERE 1 = 1`
	}
	cond, dir := ` AND (`+key+`, f.device_id) > (?, ?)`, ` ASC`
	if desc {
		cond, dir = ` AND (`+key+`, f.device_id) < (?, ?)`, ` DESC`
	}
	args := []any{group, rule}
	if first {
		cond = ``
	} else {
		args = append(args, since, device)
	}
	return `SELECT ` + key + `, f.device_id FROM ` + from + cond +
		` ORDER BY ` + key + dir + `, f.device_id` + dir + ` LIMIT ?`, append(args, n)
}

// ScanKeyed reads (since, device_id) rows.
func ScanKeyed(rows Rows) ([]Keyed, error) {
	var out []Keyed
	for rows.Next() {
		var k Keyed
		if err := rows.Scan(&k.Since, &k.DeviceID); err != nil {
			return nil, err
		}
		out = append(out, k)
	}
	return out, rows.Err()
}
