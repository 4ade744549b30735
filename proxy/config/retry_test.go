package config_test

import (
	"strings"
	"testing"

	"github.com/postern/postern/proxy/config"
)

// TestUpstreamRetriesKey: default 2, 0 turns retries off, out of range is
// an error with its position.
func TestUpstreamRetriesKey(t *testing.T) {
	for _, tc := range []struct {
		server string
		want   int
		err    string
	}{
		{"", 2, ""},
		{"upstream_retries = 0", 0, ""},
		{"upstream_retries = 5", 5, ""},
		{"upstream_retries = 6", 0, "t.toml:2:1: upstream_retries must be between 0 and 5"},
		{"upstream_retries = -1", 0, "t.toml:2:1: upstream_retries must be between 0 and 5"},
	} {
		cfg, err := config.Load("t.toml", []byte("[server]\n"+tc.server+"\n"+minimalRoute), config.LoadOptions{})
		switch {
		case tc.err != "":
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%q: got error %v, want %q", tc.server, err, tc.err)
			}
		case err != nil:
			t.Errorf("%q: %v", tc.server, err)
		case cfg.Retries != tc.want:
			t.Errorf("%q: Retries %d, want %d", tc.server, cfg.Retries, tc.want)
		}
	}
}
