package config

import (
	"crypto/sha256"
	"crypto/subtle"
	"strings"
	"testing"

	"github.com/postern/postern/rewrite"
)

// refLegacyMatch is LegacyAuth.Match as it was before issue 13: each
// configured part compared with equalSecret (SHA-256 of both sides).
func refLegacyMatch(user, password, apiID string, c rewrite.Credentials) bool {
	ok := 1
	for _, p := range [][2]string{{user, c.User}, {password, c.Password}, {apiID, c.APIID}} {
		if p[0] == "" {
			continue
		}
		ha, hb := sha256.Sum256([]byte(p[0])), sha256.Sum256([]byte(p[1]))
		ok &= subtle.ConstantTimeCompare(ha[:], hb[:])
	}
	return ok == 1
}

func sealed(user, password, apiID string) LegacyAuth {
	l := LegacyAuth{User: user, APIID: apiID, password: password}
	l.seal()
	return l
}

var legacyCases = []struct{ user, password, apiID string }{
	{"", "", ""}, {"ise", "", ""}, {"", "S3cret!", ""}, {"", "", "3512345"},
	{"ise", "S3cret!", "3512345"}, {"ise", "S3cret!", ""}, {"ab", "c", "1"}, {"a", "bc", "1"},
	{"ise", strings.Repeat("long password ", 40), "3512345"}, {"\x00", "\x00\x00", "\xff"},
}

// TestLegacyMatchSameAsPerPart: the one digest over the configured parts
// answers exactly as comparing part by part did, for every configured set
// against every given set (parts moved between fields, missing, extra,
// unconfigured parts given anything).
func TestLegacyMatchSameAsPerPart(t *testing.T) {
	for _, want := range legacyCases {
		l := sealed(want.user, want.password, want.apiID)
		if l.Required() != (want.user != "" || want.password != "" || want.apiID != "") {
			t.Errorf("%+v: Required() = %v", want, l.Required())
		}
		for _, got := range legacyCases {
			c := rewrite.Credentials{User: got.user, Password: got.password, APIID: got.apiID}
			if m, ref := l.Match(c), refLegacyMatch(want.user, want.password, want.apiID, c); m != ref {
				t.Errorf("configured %+v, given %+v: Match = %v, part by part %v", want, got, m, ref)
			}
		}
	}
	// A part moved into its neighbour is not the same credentials.
	if sealed("ab", "c", "").Match(rewrite.Credentials{User: "a", Password: "bc"}) {
		t.Error(`user "a" + password "bc" matched user "ab" + password "c"`)
	}
}

func FuzzLegacyMatchSameAsPerPart(f *testing.F) {
	for _, c := range legacyCases {
		f.Add(c.user, c.password, c.apiID, c.user, c.password, c.apiID)
		f.Add(c.user, c.password, c.apiID, c.password, c.user, "")
	}
	f.Fuzz(func(t *testing.T, user, password, apiID, gUser, gPassword, gAPIID string) {
		c := rewrite.Credentials{User: gUser, Password: gPassword, APIID: gAPIID}
		if m, ref := sealed(user, password, apiID).Match(c), refLegacyMatch(user, password, apiID, c); m != ref {
			t.Errorf("configured %q %q %q, given %+v: Match = %v, part by part %v", user, password, apiID, c, m, ref)
		}
		// The right credentials always match.
		if !sealed(user, password, apiID).Match(rewrite.Credentials{User: user, Password: password, APIID: apiID}) {
			t.Errorf("configured %q %q %q: the same credentials do not match", user, password, apiID)
		}
	})
}

// TestLegacyMatchReadsOnlyTheDigest: Match does not look at the configured
// values themselves (which would cost a hash per message and could time
// their content): with them overwritten after load, every answer is the
// same.
func TestLegacyMatchReadsOnlyTheDigest(t *testing.T) {
	for _, want := range legacyCases {
		l := sealed(want.user, want.password, want.apiID)
		blind := l
		blind.User, blind.password, blind.APIID = "x", "y", "z"
		for _, got := range legacyCases {
			c := rewrite.Credentials{User: got.user, Password: got.password, APIID: got.apiID}
			if l.Match(c) != blind.Match(c) {
				t.Errorf("configured %+v, given %+v: the answer depends on the configured values after load", want, got)
			}
		}
	}
}

// TestLegacyPasswordFromSecretIsSealed: a legacy_password read from the
// environment (set after the route, at the end of Load) takes part in the
// check.
func TestLegacyPasswordFromSecretIsSealed(t *testing.T) {
	cfg, err := Load("t.toml", []byte(`
[[route]]
name = "r"
match_path = "/http/sendmsg"
inbound = "clickatell-http"
provider = "sandbox"
legacy_user = "ise"
legacy_password = "env:PW"
`), LoadOptions{LookupEnv: func(k string) (string, bool) { return "S3cret!", k == "PW" }})
	if err != nil {
		t.Fatal(err)
	}
	l := cfg.Routes[0].Legacy
	if !l.Match(rewrite.Credentials{User: "ise", Password: "S3cret!"}) {
		t.Error("the configured user and password do not match")
	}
	if l.Match(rewrite.Credentials{User: "ise"}) || l.Match(rewrite.Credentials{User: "ise", Password: "S3cret"}) {
		t.Error("a missing or wrong password matched")
	}
}

// TestUnsealedLegacyAuthFailsClosed: credentials set without seal (not by
// Load) are required and match nothing, never let everything through.
func TestUnsealedLegacyAuthFailsClosed(t *testing.T) {
	l := LegacyAuth{User: "ise"}
	if !l.Required() || l.Match(rewrite.Credentials{User: "ise"}) || l.Match(rewrite.Credentials{}) {
		t.Errorf("unsealed %+v: Required %v, matches", l, l.Required())
	}
}
