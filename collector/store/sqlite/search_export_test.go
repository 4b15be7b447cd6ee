package sqlite

// SetSearchCandidates sets how many devices a hostname search may find
// in the trigram index for its list to be read from them, for tests of
// both paths; the returned func restores it.
func SetSearchCandidates(n int) (restore func()) {
	old := searchCandidates
	searchCandidates = n
	return func() { searchCandidates = old }
}
