package check

// A Trim keeps, of one raw input a collector reads, only the part the
// collector uses, so that a support bundle records no more than that.
// Package histories are the reason: they list every package a person
// installed, and apt's also names who asked for it, while the checks use
// one date from them.
type Trim struct {
	// File is the path of a file read; or Tool and Args name the
	// allow-listed command run (only a run that exited 0 is trimmed).
	File string
	Tool string
	Args []string
	// Keep returns the part of data the collector uses: read instead of
	// data (from a file read with at most limit bytes; -1 for a command),
	// it gives the same facts. An error is recorded instead of the data,
	// and a replay's read fails with it: Keep returns one when the
	// collector itself fails on data (with the very message the collector
	// gives), and one that wraps ErrNotRecorded when it could not reduce
	// data to an equivalent part, so a replay says "not recorded" rather
	// than holding the whole history.
	Keep func(data []byte, limit int64) ([]byte, error)
}
