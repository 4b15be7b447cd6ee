// Package feed is Ward's release feed, ward-release-feed/1 (docs/feed.md):
// per platform line (a macOS major, a Windows feature release and
// edition, a Linux distribution release) its end-of-life dates, its
// latest security release and the dated list of its security releases,
// with a serial, the times it was made and expires, and the hashes of
// the public source files it was built from.
//
// feed.go is the format as Go types; Validate checks a feed against the
// format's rules and names each problem by its path
// (lines[3].releases[2].released). Decode reads a feed strictly (errors
// give line:column) and Encode writes it for people; Canonical is the
// one encoding a signature covers. Sign signs a feed with a collector
// feed key (ECDSA P-256 over a domain-separated SHA-256), Verify checks
// the signature before it parses anything, and CheckImport decides
// whether a verified feed may replace the current one: it refuses a
// rollback (ErrRollback), an expired feed (ErrExpired) and one made in
// the future (ErrFromFuture).
//
// Nothing builds feeds from the public sources yet, and nothing imports
// this package; docs/feed.md says what the next steps add.
package feed
