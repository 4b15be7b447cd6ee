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
