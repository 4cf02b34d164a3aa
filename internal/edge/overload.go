package edge

import (
	"errors"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/ponte-id/ponte/internal/admission"
	"github.com/ponte-id/ponte/internal/ui"
)

// admit bounds the node's requests with g: those for which continues
// reports true as admission.Continuing (a login under way: the whole
// capacity, and the line), the others, and all when continues is nil, as
// admission.Starting (new work: only below the gate's start watermark). A
// request the gate refuses is answered at once with 503 and Retry-After,
// before any handler runs: nothing of it was done, so a login in progress
// stays where it was and the same request can be sent again. Browsers
// (Accept: text/html) get the come-back page in their language; everyone
// else an OAuth-style JSON error (ui.ComeBack).
func admit(g *admission.Gate, continues func(*http.Request) bool) gin.HandlerFunc {
	return func(c *gin.Context) {
		class := admission.Starting
		if continues != nil && continues(c.Request) {
			class = admission.Continuing
		}
		release, err := g.AcquireClass(c.Request.Context(), class)
		if err != nil {
			if errors.Is(err, admission.ErrBusy) {
				ui.ComeBack(c.Writer, c.Request, time.Duration(g.RetryAfter())*time.Second, ui.Busy)
			}
			// A client that went away gets nothing.
			c.Abort()
			return
		}
		defer release()
		c.Next()
	}
}
