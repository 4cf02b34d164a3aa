package cns

import (
	"strings"

	"github.com/ponte-id/ponte/internal/logmask"
)

// What the CNS logs of a card's holder (STYLE rule 7): never a whole codice
// fiscale. The adapter masks what it logs itself, as the PIN and SPID do,
// rather than relying on the process logger's masking (logmask.Handler),
// which a logger built elsewhere — a test's, a library user's — may lack.

// maskCF hides a codice fiscale for the log: the first three and the last
// character remain (RSS************U), as the PIN masks it.
func maskCF(cf string) string {
	if len(cf) <= 4 {
		return strings.Repeat("*", len(cf))
	}
	return cf[:3] + strings.Repeat("*", len(cf)-4) + cf[len(cf)-1:]
}

// maskCN hides the codice fiscale a subject CN carries. A CNS CN is
// <codice fiscale>/<card id>.<hash>: what comes before the first '/' is
// masked whatever its shape (a malformed code is still personal data), the
// card id and hash stay. Anything codice-fiscale-shaped left elsewhere (a CN
// of another shape, a CA's name) is masked too (logmask.String).
func maskCN(cn string) string {
	if cf, rest, ok := strings.Cut(cn, "/"); ok {
		return maskCF(cf) + "/" + logmask.String(rest)
	}
	return logmask.String(cn)
}
