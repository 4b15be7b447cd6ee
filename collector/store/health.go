package store

import "errors"

// Sentinel errors of start-up and Health. Backends return them wrapped,
// with the file and the detail; test with errors.Is.
var (
	// ErrEmpty: the database holds no fleet (missing, zero-length or
	// without the collector's tables) where one was expected.
	ErrEmpty = errors.New("database holds no fleet")
	// ErrCorrupt: the database failed its integrity check.
	ErrCorrupt = errors.New("database is corrupt")
	// ErrDiskFull: the database's filesystem is (nearly) full.
	ErrDiskFull = errors.New("disk is full")
)
