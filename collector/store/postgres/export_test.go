package postgres

// Migrations is the versions of the embedded migrations, for tests.
func Migrations() []int {
	var vs []int
	for _, m := range migrations() {
		vs = append(vs, m.version)
	}
	return vs
}
