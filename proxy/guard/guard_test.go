package guard

import (
	"context"
	"encoding/base64"
	"net/http"
	"testing"
	"time"

	"github.com/postern/postern/proxy/config"
	"github.com/postern/postern/proxy/metrics"
)

func loadGuards(t *testing.T, toml string) *config.Guards {
	t.Helper()
	cfg, err := config.Load("t.toml", []byte(toml), config.LoadOptions{AllowNoRoutes: true})
	if err != nil {
		t.Fatal(err)
	}
	return &cfg.Guards
}

func TestCheckProxyAuth(t *testing.T) {
	g := loadGuards(t, "[server]\nproxy_user = \"ise\"\nproxy_password = \"pw\"\n")
	basic := func(s string) string { return "Basic " + base64.StdEncoding.EncodeToString([]byte(s)) }
	for _, c := range []struct{ header, user, reason string }{
		{"", "", "proxy authentication missing"},
		{"Bearer x", "", "proxy authentication malformed"},
		{"Basic !!!", "", "proxy authentication malformed"},
		{basic("ise:wrong"), "", "proxy authentication failed"},
		{basic("other:pw"), "", "proxy authentication failed"},
		{basic("ise:pw"), "ise", ""},
		{"basic " + base64.StdEncoding.EncodeToString([]byte("ise:pw")), "ise", ""},
	} {
		r, _ := http.NewRequest(http.MethodGet, "http://x/", nil)
		if c.header != "" {
			r.Header.Set("Proxy-Authorization", c.header)
		}
		user, reason := CheckProxyAuth(g, r)
		if user != c.user || reason != c.reason {
			t.Errorf("CheckProxyAuth(%q): got (%q, %q), want (%q, %q)", c.header, user, reason, c.user, c.reason)
		}
	}
	r, _ := http.NewRequest(http.MethodGet, "http://x/", nil)
	if user, reason := CheckProxyAuth(loadGuards(t, ""), r); user != "" || reason != "" {
		t.Errorf("CheckProxyAuth without proxy_user: got (%q, %q), want no refusal", user, reason)
	}
}

func TestCheckDestinations(t *testing.T) {
	open := New(loadGuards(t, ""), nil)
	gb := New(loadGuards(t, "[limits]\nallow_countries = [\"GB\"]\n"), nil)
	for _, c := range []struct {
		gs        *State
		to        []string
		countries []string
		reason    string
	}{
		{open, []string{"4915123456789"}, []string{"DE"}, ""},
		{open, []string{"4915123456789", "449098790123"}, []string{"DE", "GB"}, "premium-rate number refused"},
		{gb, []string{"447400123456"}, []string{"GB"}, ""},
		{gb, []string{"4915123456789"}, []string{"DE"}, "country DE not in allow_countries"},
		{gb, []string{"999"}, []string{""}, "number of unknown country or type refused"},
	} {
		countries, reason := c.gs.CheckDestinations(c.to)
		if reason != c.reason || len(countries) != len(c.countries) || countries[0] != c.countries[0] {
			t.Errorf("CheckDestinations(%v): got (%v, %q), want (%v, %q)", c.to, countries, reason, c.countries, c.reason)
		}
	}
}

// TestAdmitMessageAllOrNothing: a message over per_number takes nothing
// from daily_max, and one over daily_max takes nothing from per_number.
func TestAdmitMessageAllOrNothing(t *testing.T) {
	now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	gs := New(loadGuards(t, "[limits]\nper_number = \"1/1h\"\ndaily_max = 3\n"), func() time.Time { return now })
	steps := []struct {
		to   []string
		want string
	}{
		{[]string{"1"}, ""},
		{[]string{"1", "2"}, metrics.LimitPerNumber}, // 1 is spent; 2 keeps its token
		{[]string{"2", "3"}, ""},                     // daily: 3 of 3
		{[]string{"4"}, metrics.LimitDailyMax},
	}
	for i, s := range steps {
		if got := gs.AdmitMessage(context.Background(), s.to).Limit; got != s.want {
			t.Errorf("step %d AdmitMessage(%v): got %q, want %q", i, s.to, got, s.want)
		}
	}
	now = now.Add(24 * time.Hour)
	if got := gs.AdmitMessage(context.Background(), []string{"4"}).Limit; got != "" {
		t.Errorf("AdmitMessage the next day: got %q, want admitted", got)
	}
}
