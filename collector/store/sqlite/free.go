package sqlite

// minFree is the free space Health requires on a filesystem of size
// bytes: 64 MiB, or 5 % of a filesystem smaller than 1.25 GiB. A report
// and its rule states take a few kilobytes, so this leaves room for
// thousands of reports, a WAL checkpoint and an operator's fix.
func minFree(size uint64) uint64 {
	return min(64<<20, size/20)
}
