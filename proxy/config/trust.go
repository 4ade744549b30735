package config

import (
	"slices"
	"strings"

	"github.com/postern/postern/trust"
)

// trustFile mirrors [trust].
type trustFile struct {
	CAFiles    []string            `toml:"ca_files"`
	AIA        *bool               `toml:"aia"`
	AIATimeout Duration            `toml:"aia_timeout"`
	Pins       map[string][]string `toml:"pins"`
}

// buildTrust has the upstream roots ([trust] ca_files) loaded with the
// [trust] policy, when provisioning.
func (v *validator) buildTrust(tf *trustFile, cfg *Config) {
	v.later(func() {
		if roots, ok := v.loadRoots("trust.ca_files", "", tf.CAFiles); ok {
			cfg.Roots = roots.WithPolicy(v.trustPolicy(tf))
		}
	})
}

// trustPolicy validates aia, aia_timeout and pins.
func (v *validator) trustPolicy(tf *trustFile) trust.Policy {
	p := trust.Policy{AIA: tf.AIA == nil || *tf.AIA, AIATimeout: tf.AIATimeout.Duration}
	if p.AIATimeout == 0 {
		p.AIATimeout = trust.DefaultAIATimeout
	}
	hosts := make([]string, 0, len(tf.Pins))
	for h := range tf.Pins {
		hosts = append(hosts, h)
	}
	slices.Sort(hosts)
	p.Pins = map[string][]trust.Pin{}
	for _, h := range hosts {
		key := "trust.pins." + h
		if !bareHost(h) {
			v.at(key, "pins: %q must be a bare host name, without scheme, port or path", h)
			continue
		}
		if len(tf.Pins[h]) == 0 {
			v.at(key, "pins: %q lists no pin; remove it or add at least one \"sha256/<base64>\"", h)
			continue
		}
		for _, s := range tf.Pins[h] {
			pin, err := trust.ParsePin(s)
			if err != nil {
				v.at(key, "pins for %q: %v", h, err)
				continue
			}
			p.Pins[strings.ToLower(h)] = append(p.Pins[strings.ToLower(h)], pin)
		}
	}
	return p
}
