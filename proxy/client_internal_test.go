package proxy

import (
	"net/http"
	"testing"
)

// TestClientStringIsNetipsString: the audit log's client is netip's
// canonical form of the address, whichever way it was obtained.
func TestClientStringIsNetipsString(t *testing.T) {
	for _, remote := range []string{
		"127.0.0.1:49152", "10.20.30.40:1", "0.0.0.0:0", "255.255.255.255:65535",
		"[::1]:443", "[::ffff:127.0.0.1]:80", "[2001:db8::1]:8080", "[fe80::1%eth0]:22",
		"", "garbage", "127.0.0.1", "1.2.3.4:notaport", "01.2.3.4:5", "1.2.3.4%eth0:80", "1.2.3.4:80:90",
	} {
		r := &http.Request{RemoteAddr: remote}
		ip := clientIP(r)
		if got, want := clientString(r, ip), ip.String(); got != want {
			t.Errorf("RemoteAddr %q: client %q, want %q", remote, got, want)
		}
	}
}

func TestClientStringAllocatesNothingForIPv4(t *testing.T) {
	r := &http.Request{RemoteAddr: "192.0.2.7:51234"}
	ip := clientIP(r)
	if n := testing.AllocsPerRun(100, func() { _ = clientString(r, ip) }); n != 0 {
		t.Errorf("%v allocations, want 0", n)
	}
}
