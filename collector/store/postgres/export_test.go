package postgres

// Migrations is the versions of the embedded migrations, for tests.
func Migrations() []int {
	var vs []int
	for _, m := range migrations() {
		vs = append(vs, m.version)
	}
	return vs
}

// ReportBatches is the report writer's counts, for tests.
func (s *Store) ReportBatches() (batches, jobs int64) {
	st := s.reports.Stats()
	return st.Batches, st.Jobs
}

// SetSearchCandidates sets how many devices a hostname search may find
// in device_hostnames for its list to be read from them, for tests of
// both paths; the returned func restores it.
func SetSearchCandidates(n int) (restore func()) {
	old := searchCandidates
	searchCandidates = n
	return func() { searchCandidates = old }
}
