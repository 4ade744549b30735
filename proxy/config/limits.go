package config

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/binary"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/postern/postern/rewrite"
)

// limitsFile mirrors [limits].
type limitsFile struct {
	PerNumber      Rate     `toml:"per_number"`
	PerClient      Rate     `toml:"per_client"`
	DailyMax       *int     `toml:"daily_max"`
	AllowCountries []string `toml:"allow_countries"`
}

// Rate is a limit written "COUNT/DURATION" ("5/10m", "600/1m") or "off".
type Rate struct {
	Count int           // events allowed per Per; 0 = off
	Per   time.Duration // the window
	set   bool          // written in the file (as a rate or "off")
}

// Off reports whether the limit is disabled.
func (r Rate) Off() bool { return r.Count == 0 }

func (r Rate) String() string {
	if r.Off() {
		return "off"
	}
	return fmt.Sprintf("%d/%s", r.Count, r.Per)
}

// UnmarshalText parses "COUNT/DURATION" or "off".
func (r *Rate) UnmarshalText(b []byte) error {
	s := strings.TrimSpace(string(b))
	if s == "off" {
		*r = Rate{set: true}
		return nil
	}
	count, per, ok := strings.Cut(s, "/")
	n, err := strconv.Atoi(count)
	if !ok || err != nil || n < 1 {
		return fmt.Errorf("invalid rate %q: write COUNT/DURATION with COUNT at least 1, e.g. \"5/10m\", or \"off\"", b)
	}
	d, err := time.ParseDuration(per)
	if err != nil || d <= 0 {
		return fmt.Errorf("invalid rate %q: the duration after \"/\" needs a unit, e.g. \"5/10m\"", b)
	}
	*r = Rate{Count: n, Per: d, set: true}
	return nil
}

// Guards are the runtime values of every guardrail key: who may send, how
// large and slow a request may be, and how much may be sent.
type Guards struct {
	ProxyUser             string // "" = no proxy authentication
	HeaderReadTimeout     time.Duration
	MaxURLBytes           int
	MaxBodyBytes          int
	MaxConcurrentUpstream int
	UpstreamQueueWait     time.Duration
	PerNumber             Rate
	PerClient             Rate
	DailyMax              int      // recipients per UTC day; 0 = off
	AllowCountries        []string // ISO codes; empty = any country

	proxyPassword string
}

// LegacyAuth is the legacy credentials a route requires. Only the parts
// that are set are checked.
type LegacyAuth struct {
	User  string
	APIID string

	password string
	// need says which parts are configured (legacyUser, ...) and digest
	// is legacyDigest of them, both made when the route is loaded: Match
	// reads nothing else, so the configured values are neither hashed per
	// message nor read in a way their content could time.
	need   uint8
	digest [sha256.Size]byte
}

// The parts of LegacyAuth, in the order legacyDigest takes them.
const (
	legacyUser uint8 = 1 << iota
	legacyPassword
	legacyAPIID
)

// seal records which parts are configured and their digest; it runs
// whenever a part is set at load.
func (l *LegacyAuth) seal() {
	l.need = 0
	if l.User != "" {
		l.need |= legacyUser
	}
	if l.password != "" {
		l.need |= legacyPassword
	}
	if l.APIID != "" {
		l.need |= legacyAPIID
	}
	l.digest = legacyDigest(l.need, rewrite.Credentials{User: l.User, Password: l.password, APIID: l.APIID})
}

// legacyDigest is the SHA-256 of c's parts that need names, each after
// its length (uvarint), in a fixed order: two credentials have the same
// digest exactly when the parts compared are equal one by one (a
// different split between parts changes a length).
func legacyDigest(need uint8, c rewrite.Credentials) [sha256.Size]byte {
	var buf [192]byte // longer credentials only cost an allocation
	b := buf[:0]
	for _, p := range [...]struct {
		bit uint8
		v   string
	}{{legacyUser, c.User}, {legacyPassword, c.Password}, {legacyAPIID, c.APIID}} {
		if need&p.bit != 0 {
			b = binary.AppendUvarint(b, uint64(len(p.v)))
			b = append(b, p.v...)
		}
	}
	return sha256.Sum256(b)
}

// Required reports whether the route checks legacy credentials at all. (A
// LegacyAuth not made by Load, never sealed, is required and matches
// nothing.)
func (l LegacyAuth) Required() bool { return l.User != "" || l.password != "" || l.APIID != "" }

// Match compares c with the required credentials in constant time: the
// configured parts of c are hashed as the configured values were at load
// (legacyDigest) and the two digests compared with
// subtle.ConstantTimeCompare, so every configured part is compared,
// whatever the others gave, the digests hide the lengths, and only what
// the client sent is hashed per message.
func (l LegacyAuth) Match(c rewrite.Credentials) bool {
	d := legacyDigest(l.need, c)
	return subtle.ConstantTimeCompare(d[:], l.digest[:]) == 1
}

// ProxyCredentialsMatch compares a client's proxy credentials with
// proxy_user and proxy_password in constant time.
func (g *Guards) ProxyCredentialsMatch(user, password string) bool {
	return equalSecret(user, g.ProxyUser)&equalSecret(password, g.proxyPassword) == 1
}

// equalSecret is 1 when a == b, in time independent of where they differ.
func equalSecret(a, b string) int {
	ha, hb := sha256.Sum256([]byte(a)), sha256.Sum256([]byte(b))
	return subtle.ConstantTimeCompare(ha[:], hb[:])
}

// headerSafe reports whether s can be written into a header or a log field
// as it is: no control characters (CR, LF, NUL, ...).
func headerSafe(s string) bool {
	return strings.IndexFunc(s, func(c rune) bool { return c < 0x20 || c == 0x7f }) < 0
}

func (v *validator) buildGuards(fc *fileConfig, cfg *Config) {
	sf, lf := &fc.Server, &fc.Limits
	g := Guards{
		ProxyUser:             sf.ProxyUser,
		HeaderReadTimeout:     orDuration(sf.HeaderReadTimeout.Duration, defaultHeaderReadTimeout),
		MaxURLBytes:           orInt(sf.MaxURLBytes, defaultMaxURLBytes),
		MaxBodyBytes:          orInt(sf.MaxBodyBytes, defaultMaxBodyBytes),
		MaxConcurrentUpstream: orInt(sf.MaxConcurrentUpstream, defaultMaxConcurrentUpstream),
		UpstreamQueueWait:     orDuration(sf.UpstreamQueueWait.Duration, defaultUpstreamQueueWait),
		PerNumber:             lf.PerNumber,
		PerClient:             lf.PerClient,
		DailyMax:              defaultDailyMax,
	}
	if !g.PerNumber.set {
		g.PerNumber = defaultPerNumber
	}
	if !g.PerClient.set {
		g.PerClient = defaultPerClient
	}
	switch {
	case sf.ProxyUser != "" && !sf.ProxyPassword.IsSet():
		v.at("server.proxy_user", "proxy_user is set but proxy_password is not")
	case sf.ProxyUser == "" && sf.ProxyPassword.IsSet():
		v.at("server.proxy_password", "proxy_password is set but proxy_user is not")
	case strings.Contains(sf.ProxyUser, ":") || !headerSafe(sf.ProxyUser):
		v.at("server.proxy_user", "proxy_user may not contain ':' or control characters")
	case sf.ProxyUser != "":
		v.later(func() {
			pw, err := v.secret(sf.ProxyPassword)
			switch {
			case err != nil:
				v.at("server.proxy_password", "proxy_password: %v", err)
			case !headerSafe(pw):
				v.at("server.proxy_password", "proxy_password may not contain control characters")
			default:
				cfg.Guards.proxyPassword = pw
				cfg.secrets = append(cfg.secrets, pw)
			}
		})
	}
	if g.MaxURLBytes < 256 || g.MaxURLBytes > 1<<20 {
		v.at("server.max_url_bytes", "max_url_bytes must be between 256 and 1048576")
	}
	if g.MaxBodyBytes < 1<<10 || g.MaxBodyBytes > 16<<20 {
		v.at("server.max_body_bytes", "max_body_bytes must be between 1024 and 16777216")
	}
	if g.MaxConcurrentUpstream < 1 || g.MaxConcurrentUpstream > 1000 {
		v.at("server.max_concurrent_upstream", "max_concurrent_upstream must be between 1 and 1000")
	}
	if lf.DailyMax != nil {
		g.DailyMax = *lf.DailyMax
		if g.DailyMax < 0 {
			v.at("limits.daily_max", "daily_max must be 0 (off) or a positive number of messages")
		}
	}
	for _, c := range lf.AllowCountries {
		switch {
		case rewrite.IsCountryCode(c):
			g.AllowCountries = append(g.AllowCountries, c)
		case rewrite.IsCountryCode(strings.ToUpper(c)):
			v.at("limits.allow_countries", "allow_countries: %q must be upper case (%q)", c, strings.ToUpper(c))
		default:
			v.at("limits.allow_countries", "allow_countries: %q is not an ISO 3166 country code libphonenumber knows (e.g. \"US\", \"GB\")", c)
		}
	}
	cfg.Guards = g
}

func (v *validator) buildLegacy(i int, label string, rf *routeFile, r *Route, cfg *Config) {
	r.Legacy = LegacyAuth{User: rf.LegacyUser, APIID: rf.LegacyAPIID}
	r.Legacy.seal()
	if !rf.LegacyPassword.IsSet() {
		return
	}
	v.later(func() {
		pw, err := v.secret(rf.LegacyPassword)
		if err != nil {
			v.at(fmt.Sprintf("route.%d.legacy_password", i), "%s: legacy_password: %v", label, err)
			return
		}
		r.Legacy.password = pw
		r.Legacy.seal()
		cfg.secrets = append(cfg.secrets, pw)
	})
}

func orInt(v, def int) int {
	if v == 0 {
		return def
	}
	return v
}

func orDuration(v, def time.Duration) time.Duration {
	if v == 0 {
		return def
	}
	return v
}
