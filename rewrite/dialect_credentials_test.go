package rewrite

import "testing"

func TestClickatellHTTPCredentials(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   Inbound
		want Credentials
	}{
		{"GET", Inbound{Method: "GET", RawQuery: "user=u%20x&password=p%26w&api_id=42&to=1&text=t"}, Credentials{"u x", "p&w", "42"}},
		{"form POST body wins", Inbound{Method: "POST", RawQuery: "user=q", Body: []byte("user=b&password=bp&to=1")}, Credentials{"b", "bp", ""}},
		{"bare message POST keeps query", Inbound{Method: "POST", RawQuery: "user=q&password=qp", Body: []byte("password%3Dtext")}, Credentials{"q", "qp", ""}},
		{"malformed query", Inbound{Method: "GET", RawQuery: "user=%zz&password=p"}, Credentials{}},
		{"none", Inbound{Method: "GET", RawQuery: "to=1"}, Credentials{}},
	} {
		if got := (ClickatellHTTP{}).Credentials(tc.in); got != tc.want {
			t.Errorf("%s: got %+v, want %+v", tc.name, got, tc.want)
		}
	}
}
