package guard

import (
	"encoding/base64"
	"net/http"
	"strings"

	"github.com/postern/postern/proxy/config"
	"github.com/postern/postern/rewrite"
)

// CheckProxyAuth verifies Proxy-Authorization: Basic against [server]
// proxy_user and proxy_password. It returns the user the client claimed
// (for the audit line, only when it matched) and a refusal reason, "" when
// the request may proceed. goproxy only strips proxy headers when it
// forwards a request itself, which postern never lets it do, so the header
// is still present here, in all three ways in.
func CheckProxyAuth(g *config.Guards, r *http.Request) (user, reason string) {
	if g.ProxyUser == "" {
		return "", ""
	}
	h := r.Header.Get("Proxy-Authorization")
	if h == "" {
		return "", "proxy authentication missing"
	}
	scheme, cred, _ := strings.Cut(h, " ")
	raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(cred))
	if !strings.EqualFold(scheme, "Basic") || err != nil {
		return "", "proxy authentication malformed"
	}
	u, p, _ := strings.Cut(string(raw), ":")
	if !g.ProxyCredentialsMatch(u, p) {
		return "", "proxy authentication failed"
	}
	return g.ProxyUser, ""
}

// CheckLegacyAuth verifies the legacy credentials a route requires. It
// reports false when the route requires them and in does not carry them.
func CheckLegacyAuth(route *config.Route, in rewrite.Inbound) bool {
	if !route.Legacy.Required() {
		return true
	}
	cr, ok := route.Dialect.(rewrite.CredentialReader)
	return ok && route.Legacy.Match(cr.Credentials(in))
}
