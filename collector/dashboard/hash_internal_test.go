package dashboard

import "golang.org/x/crypto/bcrypt"

// UseCheapHashes makes the comparison for unknown users bcrypt's cheapest
// (cost 4), so fuzzing the sign-in runs more than a few inputs a second.
// Tests only.
func UseCheapHashes() {
	dummyHash, _ = bcrypt.GenerateFromPassword([]byte("ward-no-such-user"), bcrypt.MinCost)
}
