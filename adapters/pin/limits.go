package pin

import "github.com/ponte-id/ponte/idp"

var _ idp.BodyLimit = authenticator{}

// MaxBodyBytes lets the conversion upload through the edge: two documents of
// up to MaxUpload each, and a MiB for the form's other fields and the
// multipart framing. Handler caps its pages at the same size.
func (a authenticator) MaxBodyBytes() int64 { return 2*a.s.cfg.MaxUpload + (1 << 20) }
