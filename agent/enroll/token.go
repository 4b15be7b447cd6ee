package enroll

import (
	"errors"
	"fmt"
	"strings"
)

// tokenPrefix starts every enrolment and re-bind token ward-collector
// makes: "wet_" and 52 base32 letters (32 random bytes).
const (
	tokenPrefix = "wet_"
	tokenLen    = len(tokenPrefix) + 52
)

// ErrTokenRefused is wrapped by the error of an enrolment whose collector
// refused the token: unknown, expired, used up or revoked. A new token is
// the fix (ward-collector token create), not a retry.
var ErrTokenRefused = errors.New("refused the enrolment token")

// CheckToken refuses what cannot be a token ward-collector made, before
// anything is sent: a token cut short or pasted with its neighbours is
// told apart from one the collector refuses. It says nothing about
// whether the collector will accept it.
func CheckToken(tok string) error {
	t := strings.TrimSpace(tok)
	switch {
	case t == "":
		return errors.New("the enrolment token is empty")
	case !strings.HasPrefix(t, tokenPrefix):
		return fmt.Errorf("enrolment token %s: not a Ward token (they start with %s; ward-collector token create makes one)", redact(t), tokenPrefix)
	case len(t) != tokenLen:
		return fmt.Errorf("enrolment token %s: %d characters, a Ward token has %d (cut short, or pasted with something else?)", redact(t), len(t), tokenLen)
	}
	for _, r := range t[len(tokenPrefix):] {
		if (r < 'a' || r > 'z') && (r < '2' || r > '7') {
			return fmt.Errorf("enrolment token %s: %q is not a token character (lower-case letters and 2-7)", redact(t), r)
		}
	}
	return nil
}

// redact shows enough of a token to recognise it in an error, never the
// secret: its first 8 characters.
func redact(t string) string {
	if len(t) > 8 {
		return fmt.Sprintf("%q…", t[:8])
	}
	return fmt.Sprintf("%q", t)
}
