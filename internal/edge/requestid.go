package edge

import (
	"fmt"
	"net"
	"net/netip"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/ponte-id/ponte/internal/requestid"
)

// requestIDs gives every request its ID (internal/requestid): the one a
// trusted proxy sent, when well-formed, or a fresh one.
type requestIDs struct {
	proxies []netip.Prefix
}

// newRequestIDs trusts the X-Request-ID of the TCP peers in proxies (IPs or
// CIDRs, as the edge's trusted proxies).
func newRequestIDs(proxies []string) (*requestIDs, error) {
	ids := &requestIDs{}
	for _, p := range proxies {
		var (
			pfx netip.Prefix
			err error
		)
		if strings.Contains(p, "/") {
			pfx, err = netip.ParsePrefix(p)
		} else {
			var a netip.Addr
			if a, err = netip.ParseAddr(p); err == nil {
				pfx = netip.PrefixFrom(a, a.BitLen())
			}
		}
		if err != nil {
			return nil, fmt.Errorf("edge: trusted proxy %q: %w", p, err)
		}
		ids.proxies = append(ids.proxies, pfx.Masked())
	}
	return ids, nil
}

// trusted reports whether the TCP peer remoteAddr is a trusted proxy.
func (ids *requestIDs) trusted(remoteAddr string) bool {
	if len(ids.proxies) == 0 {
		return false
	}
	host, _, err := net.SplitHostPort(remoteAddr)
	if err != nil {
		return false
	}
	a, err := netip.ParseAddr(host)
	if err != nil {
		return false
	}
	a = a.Unmap()
	for _, p := range ids.proxies {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// middleware runs first, before any rewrite of the client address: the ID
// is believed only from the TCP peer itself.
func (ids *requestIDs) middleware(c *gin.Context) {
	r := c.Request
	id := r.Header.Get(requestid.Header)
	if id == "" || !requestid.WellFormed(id) || !ids.trusted(r.RemoteAddr) {
		id = requestid.New()
	}
	// Handlers read the ID from the context (requestid.From), not the header.
	ctx := requestid.With(r.Context(), id)
	c.Writer.Header()[requestid.CanonicalHeader] = requestid.HeaderValues(ctx)
	c.Request = r.WithContext(ctx)
	c.Next()
}
