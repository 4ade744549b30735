package config

import (
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"strings"
)

// Secret is a config value that must never be printed: a literal, or a
// reference "env:NAME" or "file:/path" resolved once when the config is
// loaded. Its String method never reveals the value, so a Secret that slips
// into a log line or an error prints as <redacted>.
type Secret struct {
	ref string
}

// UnmarshalText keeps the reference; it is resolved during validation so that
// every problem in the file is reported together.
func (s *Secret) UnmarshalText(b []byte) error {
	s.ref = string(b)
	return nil
}

// String never returns the secret.
func (s Secret) String() string { return "<redacted>" }

// GoString never returns the secret, even with %#v.
func (s Secret) GoString() string { return "<redacted>" }

// IsSet reports whether the key was given at all.
func (s Secret) IsSet() bool { return s.ref != "" }

// Source describes where the value comes from without revealing it:
// "env CLICKATELL_API_KEY", "file /run/secrets/key" or "inline".
func (s Secret) Source() string {
	switch {
	case strings.HasPrefix(s.ref, "env:"):
		return "env " + strings.TrimPrefix(s.ref, "env:")
	case strings.HasPrefix(s.ref, "file:"):
		return "file " + strings.TrimPrefix(s.ref, "file:")
	case s.ref == "":
		return "unset"
	}
	return "inline"
}

// TokenStandIn is the token of every provider under LoadOptions.MaskTokens:
// printable, without characters any encoding would escape, accepted
// wherever a token is.
const TokenStandIn = "postern-token-stand-in"

// secretStandIn takes the place of an unresolved secret under
// LoadOptions.SkipSecrets: printable, without spaces, accepted wherever a
// token or password is.
const secretStandIn = "postern-unresolved-secret"

// standIn checks the form of an env: or file: reference without reading
// the environment or the file, and returns secretStandIn; a literal is
// returned as is.
func (s Secret) standIn() (string, error) {
	switch {
	case s.ref == "env:":
		return "", errors.New(`"env:" needs a variable name`)
	case s.ref == "file:":
		return "", errors.New(`"file:" needs a path`)
	case strings.HasPrefix(s.ref, "env:"), strings.HasPrefix(s.ref, "file:"):
		return secretStandIn, nil
	}
	return s.ref, nil
}

// newIDKey derives the HMAC key for message keys from the config's secret
// values, so the same config (a restart, an HA peer) derives the same
// client message ids while nobody without those secrets can test guesses
// against an id in the audit log; a config without any (sandbox) gets a
// random one.
func newIDKey(secrets []string) []byte {
	h := sha256.New()
	h.Write([]byte("postern message key\x00"))
	for _, s := range secrets {
		h.Write([]byte(s))
		h.Write([]byte{0})
	}
	if len(secrets) == 0 {
		var r [32]byte
		rand.Read(r[:])
		h.Write(r[:])
	}
	return h.Sum(nil)
}
