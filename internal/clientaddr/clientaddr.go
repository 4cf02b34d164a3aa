// Package clientaddr says who a request comes from, for the limits that count
// requests per client: one IPv4 address, or one IPv6 /64 (the network one
// subscriber gets, so a single client cannot spread its requests over the
// addresses of its own /64).
package clientaddr

import (
	"net"
	"net/http"
	"net/netip"
)

// Of returns the client of r as a limit counts it: "192.0.2.7" or
// "2001:db8:1:2::/64"; "" if RemoteAddr is not an address. The edge sets
// RemoteAddr from trusted proxies' headers only.
func Of(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	return Key(host)
}

// Key returns the client an address belongs to, as Of does; "" if ip is not
// an address.
func Key(ip string) string {
	addr, err := netip.ParseAddr(ip)
	if err != nil {
		return ""
	}
	addr = addr.Unmap().WithZone("")
	if addr.Is6() {
		prefix, _ := addr.Prefix(64)
		return prefix.String()
	}
	return addr.String()
}
