package selfclient

import "testing"

// TestSafeReturn: a login comes back only to a local path below the pages.
func TestSafeReturn(t *testing.T) {
	c := &Client{cfg: Config{Path: "/account"}}
	cases := []struct{ in, want string }{
		{"/account/a?b=c", "/account/a?b=c"},
		{"/account/", "/account/"},
		{"/account", "/account/"},
		{"/accounts/x", "/account/"},
		{"/other/", "/account/"},
		{"//evil.example/account/", "/account/"},
		{"https://evil.example/account/", "/account/"},
		{"/account/\\evil", "/account/"},
		{"/account/callback", "/account/"},
		{"", "/account/"},
		{"%zz", "/account/"},
	}
	for _, tc := range cases {
		if got := c.safeReturn(tc.in); got != tc.want {
			t.Errorf("safeReturn(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}
