package trust

import (
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"fmt"
	"strings"
)

// Pin is the SHA-256 digest of a certificate's SubjectPublicKeyInfo, written
// "sha256/<base64>" as in HPKP and curl's --pinnedpubkey. Pinning the key
// rather than the certificate survives renewals that keep the key.
type Pin [sha256.Size]byte

const pinPrefix = "sha256/"

// ParsePin reads a pin in "sha256/<base64>" form.
func ParsePin(s string) (Pin, error) {
	var p Pin
	b64, ok := strings.CutPrefix(s, pinPrefix)
	if !ok {
		return p, fmt.Errorf("pin %q must start with %q", s, pinPrefix)
	}
	raw, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		return p, fmt.Errorf("pin %q: not valid base64", s)
	}
	if len(raw) != sha256.Size {
		return p, fmt.Errorf("pin %q: a SHA-256 digest is %d bytes, this is %d", s, sha256.Size, len(raw))
	}
	copy(p[:], raw)
	return p, nil
}

// PinOf returns the SPKI pin of c.
func PinOf(c *x509.Certificate) Pin {
	return sha256.Sum256(c.RawSubjectPublicKeyInfo)
}

// String renders the pin as "sha256/<base64>".
func (p Pin) String() string { return pinPrefix + base64.StdEncoding.EncodeToString(p[:]) }

// PinMismatchError means a chain verified against the roots but no
// certificate in it carries a key pinned for the host.
type PinMismatchError struct {
	Host string
	// Seen holds the pins of every certificate in the verified chains, so
	// `postern trust` and the log can show what would have to be pinned.
	Seen []Pin
}

func (e *PinMismatchError) Error() string {
	return fmt.Sprintf("no certificate in the verified chain for %s matches a configured pin", e.Host)
}

// matchPins reports whether any certificate of any verified chain carries
// one of pins. Matching any level lets an operator pin the leaf key, the
// issuing CA or the root, and list a backup for the next key.
func matchPins(host string, chains [][]*x509.Certificate, pins []Pin) error {
	var seen []Pin
	for _, chain := range chains {
		for _, c := range chain {
			got := PinOf(c)
			for _, want := range pins {
				if got == want {
					return nil
				}
			}
			seen = append(seen, got)
		}
	}
	return &PinMismatchError{Host: host, Seen: seen}
}
