package trust

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/postern/postern/trust/trusttest"
)

var (
	loopPeer    = netip.MustParseAddr("127.0.0.1")
	privatePeer = netip.MustParseAddr("10.1.2.3")
	cgnatPeer   = netip.MustParseAddr("100.64.9.9")
	publicPeer  = netip.MustParseAddr("203.0.113.7")
)

// errNotDialled is what the test dialer answers for any address but the
// test's own AIA server: the tests never connect anywhere else.
var errNotDialled = errors.New("test dialer: not dialled")

// aiaRig is Roots with AIA on whose fetcher resolves names from a fixed
// table and records every address it asks to dial after its own checks.
// Only the rig's AIA server (on loopback) is really dialled.
type aiaRig struct {
	r   *Roots
	srv *trusttest.AIAServer

	mu    sync.Mutex
	dials []string
}

func newAIARig(t *testing.T, root *trusttest.CA, srv *trusttest.AIAServer, names map[string][]netip.Addr) *aiaRig {
	t.Helper()
	rig := &aiaRig{r: rootsWith(t, root).WithPolicy(Policy{AIA: true}), srv: srv}
	realDial := rig.r.aia.dial
	rig.r.aia.lookup = func(_ context.Context, host string) ([]netip.Addr, error) {
		if ips, ok := names[host]; ok {
			return ips, nil
		}
		return nil, fmt.Errorf("test resolver: no such host %q", host)
	}
	rig.r.aia.dial = func(ctx context.Context, peer netip.Addr, network, addr string) (net.Conn, error) {
		rig.mu.Lock()
		rig.dials = append(rig.dials, addr)
		rig.mu.Unlock()
		if srv != nil && addr == srv.Addr() {
			return realDial(ctx, peer, network, addr)
		}
		return nil, errNotDialled
	}
	return rig
}

func (rig *aiaRig) dialed() []string {
	rig.mu.Lock()
	defer rig.mu.Unlock()
	return append([]string(nil), rig.dials...)
}

// verify checks the chain leaf serves as if it came from peer.
func (rig *aiaRig) verify(peer netip.Addr, leaf tls.Certificate) (Verification, error) {
	var served []*x509.Certificate
	for _, der := range leaf.Certificate {
		c, err := x509.ParseCertificate(der)
		if err != nil {
			panic(err)
		}
		served = append(served, c)
	}
	return rig.r.VerifyFrom(context.Background(), "localhost", peer, served, time.Now())
}

// wantIssuerFetchFailure checks err is the error a provider call reports
// as a failed AIA fetch, and that its text holds every one of want.
func wantIssuerFetchFailure(t *testing.T, err error, want ...string) {
	t.Helper()
	if err == nil {
		t.Fatal("verified, want an AIA failure")
	}
	if reason, _ := DescribeTLSError(err); reason != ReasonIssuerFetch {
		t.Errorf("DescribeTLSError = %q, want %q (err: %v)", reason, ReasonIssuerFetch, err)
	}
	for _, w := range want {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error lacks %q:\n%v", w, err)
		}
	}
}

func redirect(to string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, to, http.StatusFound) })
}

// TestAIARepairsAndCaches: a missing intermediate is fetched once, from
// the URL that served it, and later handshakes use the cached copy.
func TestAIARepairsAndCaches(t *testing.T) {
	root := trusttest.NewCA(t)
	inter := root.Intermediate(t)
	srv := trusttest.NewAIAServer(t)
	u := srv.Publish("/inter.crt", inter)
	leaf := inter.Leaf(t, trusttest.LeafOptions{LeafOnly: true, IssuerURLs: []string{u}})
	rig := newAIARig(t, root, srv, nil)

	for i := range 2 {
		v, err := rig.verify(loopPeer, leaf)
		if err != nil {
			t.Fatalf("handshake %d: %v", i, err)
		}
		if len(v.Chains) == 0 || !v.Chains[0][1].Equal(inter.Cert()) {
			t.Errorf("handshake %d: chain does not go through the fetched intermediate", i)
		}
		if !slices.Equal(v.FetchedFrom, []string{u}) {
			t.Errorf("handshake %d: FetchedFrom = %v, want [%s]", i, v.FetchedFrom, u)
		}
	}
	if got := srv.Requests(); !slices.Equal(got, []string{"/inter.crt"}) {
		t.Errorf("requests = %v, want one for /inter.crt", got)
	}
	if rig.r.aia.good.len() != 1 {
		t.Errorf("good cache holds %d entries, want 1", rig.r.aia.good.len())
	}
}

// TestAIAURLsPerCertificate: only the first two of a certificate's AIA
// URLs are tried; the error names the ones tried and counts the rest.
func TestAIAURLsPerCertificate(t *testing.T) {
	root := trusttest.NewCA(t)
	inter := root.Intermediate(t)

	t.Run("second URL serves the issuer", func(t *testing.T) {
		srv := trusttest.NewAIAServer(t)
		u := srv.Publish("/inter.crt", inter)
		leaf := inter.Leaf(t, trusttest.LeafOptions{LeafOnly: true, IssuerURLs: []string{srv.URL("/gone"), u, u}})
		v, err := newAIARig(t, root, srv, nil).verify(loopPeer, leaf)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(v.FetchedFrom, []string{u}) {
			t.Errorf("FetchedFrom = %v, want [%s]", v.FetchedFrom, u)
		}
		if got := srv.Requests(); !slices.Equal(got, []string{"/gone", "/inter.crt"}) {
			t.Errorf("requests = %v", got)
		}
	})

	t.Run("issuer behind the third URL is never fetched", func(t *testing.T) {
		srv := trusttest.NewAIAServer(t)
		urls := []string{srv.URL("/gone-1"), srv.URL("/gone-2")}
		for i := range 19 {
			urls = append(urls, srv.Publish(fmt.Sprintf("/inter-%d.crt", i), inter))
		}
		leaf := inter.Leaf(t, trusttest.LeafOptions{LeafOnly: true, IssuerURLs: urls})
		_, err := newAIARig(t, root, srv, nil).verify(loopPeer, leaf)
		wantIssuerFetchFailure(t, err,
			"AIA URL "+urls[0]+": HTTP status 404", "AIA URL "+urls[1]+": HTTP status 404",
			"19 more AIA URL(s) not tried: at most 2 per certificate")
		if got := srv.Requests(); !slices.Equal(got, []string{"/gone-1", "/gone-2"}) {
			t.Errorf("requests = %v, want only the first two URLs", got)
		}
	})
}

// TestAIARequestsPerHandshake: a chain missing three intermediates, each
// behind a second URL, needs more than four requests: exactly four are
// sent and the error names the URL that was not fetched and why.
func TestAIARequestsPerHandshake(t *testing.T) {
	srv := trusttest.NewAIAServer(t)
	root := trusttest.NewCA(t)
	i3 := root.Intermediate(t)
	i2 := i3.IntermediateAIA(t, srv.URL("/i3.crt"))
	i1 := i2.IntermediateAIA(t, srv.URL("/gone-b"), srv.URL("/i2.crt"))
	leaf := i1.Leaf(t, trusttest.LeafOptions{LeafOnly: true, IssuerURLs: []string{srv.URL("/gone-a"), srv.URL("/i1.crt")}})
	srv.Publish("/i1.crt", i1)
	srv.Publish("/i2.crt", i2)
	srv.Publish("/i3.crt", i3)

	v, err := newAIARig(t, root, srv, nil).verify(loopPeer, leaf)
	wantIssuerFetchFailure(t, err, "AIA URL "+srv.URL("/i3.crt")+": refused: not fetched: at most 4 AIA requests per handshake")
	if got, want := srv.Requests(), []string{"/gone-a", "/i1.crt", "/gone-b", "/i2.crt"}; !slices.Equal(got, want) {
		t.Errorf("requests = %v, want %v", got, want)
	}
	if len(v.Fetched) != 2 {
		t.Errorf("fetched %d intermediates, want 2", len(v.Fetched))
	}
}

// TestAIAHops: at most three missing issuers are fetched one after the
// other.
func TestAIAHops(t *testing.T) {
	srv := trusttest.NewAIAServer(t)
	root := trusttest.NewCA(t)
	i4 := root.Intermediate(t)
	i3 := i4.IntermediateAIA(t, srv.URL("/i4.crt"))
	i2 := i3.IntermediateAIA(t, srv.URL("/i3.crt"))
	i1 := i2.IntermediateAIA(t, srv.URL("/i2.crt"))
	leaf := i1.Leaf(t, trusttest.LeafOptions{LeafOnly: true, IssuerURLs: []string{srv.URL("/i1.crt")}})
	for i, ca := range []*trusttest.CA{i1, i2, i3, i4} {
		srv.Publish(fmt.Sprintf("/i%d.crt", i+1), ca)
	}
	_, err := newAIARig(t, root, srv, nil).verify(loopPeer, leaf)
	var unknown x509.UnknownAuthorityError
	if !errors.As(err, &unknown) {
		t.Fatalf("err = %v, want an unknown authority after 3 hops", err)
	}
	if got, want := srv.Requests(), []string{"/i1.crt", "/i2.crt", "/i3.crt"}; !slices.Equal(got, want) {
		t.Errorf("requests = %v, want %v", got, want)
	}
}

// TestAIASchemesRefused: only plain http is fetched; anything else is
// refused before any lookup or dial.
func TestAIASchemesRefused(t *testing.T) {
	root := trusttest.NewCA(t)
	inter := root.Intermediate(t)
	srv := trusttest.NewAIAServer(t)
	srv.Publish("/inter.crt", inter)
	host := srv.Addr()
	for _, tc := range []struct{ url, why string }{
		{"https://" + host + "/inter.crt", `scheme "https" is not http`},
		{"ftp://" + host + "/inter.crt", `scheme "ftp" is not http`},
		{"ldap://ldap.example.test/cn=CA?cACertificate", `scheme "ldap" is not http`},
		{"file:///etc/passwd", `scheme "file" is not http`},
		{host + "/inter.crt", "not a valid URL"},
		{"//" + host + "/inter.crt", `scheme "" is not http`},
		{"http:///inter.crt", "the URL has no host"},
		{"http://[::1/inter.crt", "not a valid URL"},
	} {
		t.Run(tc.url, func(t *testing.T) {
			rig := newAIARig(t, root, srv, map[string][]netip.Addr{"ldap.example.test": {loopPeer}})
			leaf := inter.Leaf(t, trusttest.LeafOptions{LeafOnly: true, IssuerURLs: []string{tc.url}})
			_, err := rig.verify(loopPeer, leaf)
			wantIssuerFetchFailure(t, err, "AIA URL "+tc.url+": refused: ", tc.why)
			if d := rig.dialed(); len(d) != 0 {
				t.Errorf("dialled %v, want nothing", d)
			}
			if r := srv.Requests(); len(r) != 0 {
				t.Errorf("server got %v, want nothing", r)
			}
		})
	}
}

// TestAIARedirects: one redirect on the same host and port is followed; a
// second one, or one to another host, port or scheme, is not.
func TestAIARedirects(t *testing.T) {
	root := trusttest.NewCA(t)
	inter := root.Intermediate(t)
	other := trusttest.NewAIAServer(t)
	other.Publish("/inter.crt", inter)
	names := map[string][]netip.Addr{"localhost": {loopPeer}}

	for _, tc := range []struct {
		name     string
		location func(srv *trusttest.AIAServer) string
		ok       bool
		requests []string
		why      string
	}{
		{"same host, once", func(srv *trusttest.AIAServer) string { return "/inter.crt" }, true,
			[]string{"/start", "/inter.crt"}, ""},
		{"same host, absolute URL", func(srv *trusttest.AIAServer) string { return srv.URL("/inter.crt") }, true,
			[]string{"/start", "/inter.crt"}, ""},
		{"same host, twice", func(srv *trusttest.AIAServer) string { return "/again" }, false,
			[]string{"/start", "/again"}, "redirected a second time: at most one redirect is followed"},
		{"another host name", func(srv *trusttest.AIAServer) string {
			return "http://localhost:" + strings.Split(srv.Addr(), ":")[1] + "/inter.crt"
		}, false, []string{"/start"}, "redirected to another host or scheme (http://localhost:"},
		{"another port", func(*trusttest.AIAServer) string { return other.URL("/inter.crt") }, false,
			[]string{"/start"}, "redirected to another host or scheme"},
		{"https", func(srv *trusttest.AIAServer) string { return "https://" + srv.Addr() + "/inter.crt" }, false,
			[]string{"/start"}, "redirected to another host or scheme (https://"},
		{"a private address", func(*trusttest.AIAServer) string { return "http://10.0.0.1/inter.crt" }, false,
			[]string{"/start"}, "redirected to another host or scheme (http://10.0.0.1/inter.crt)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := trusttest.NewAIAServer(t)
			srv.Publish("/inter.crt", inter)
			srv.Handle("/start", redirect(tc.location(srv)))
			srv.Handle("/again", redirect("/inter.crt"))
			rig := newAIARig(t, root, srv, names)
			start := srv.URL("/start")
			leaf := inter.Leaf(t, trusttest.LeafOptions{LeafOnly: true, IssuerURLs: []string{start}})
			v, err := rig.verify(loopPeer, leaf)
			if tc.ok {
				if err != nil {
					t.Fatal(err)
				}
				if !slices.Equal(v.FetchedFrom, []string{start}) {
					t.Errorf("FetchedFrom = %v, want the URL in the certificate", v.FetchedFrom)
				}
			} else {
				wantIssuerFetchFailure(t, err, "AIA URL "+start+": ", tc.why)
			}
			if got := srv.Requests(); !slices.Equal(got, tc.requests) {
				t.Errorf("requests = %v, want %v", got, tc.requests)
			}
			if r := other.Requests(); len(r) != 0 {
				t.Errorf("the other server got %v", r)
			}
			for _, d := range rig.dialed() {
				if d != srv.Addr() {
					t.Errorf("dialled %s, want only %s", d, srv.Addr())
				}
			}
		})
	}
}

// TestAIAAddressClasses: AIA reaches public addresses, and internal ones
// only of the provider's own class; names are refused for what they
// resolve to, and the checked address is what gets dialled. Refused
// addresses are never dialled.
func TestAIAAddressClasses(t *testing.T) {
	root := trusttest.NewCA(t)
	inter := root.Intermediate(t)
	srv := trusttest.NewAIAServer(t)
	good := srv.Publish("/inter.crt", inter)
	port := strings.Split(srv.Addr(), ":")[1]
	byName := "http://localhost:" + port + "/inter.crt"
	names := map[string][]netip.Addr{
		"localhost":         {loopPeer},
		"aia.corp.test":     {netip.MustParseAddr("10.0.0.5")},
		"mixed.test":        {netip.MustParseAddr("198.51.100.9"), netip.MustParseAddr("10.0.0.5")},
		"v6.corp.test":      {netip.MustParseAddr("fd12:3456::1")},
		"aia.public.test":   {netip.MustParseAddr("198.51.100.2")},
		"metadata.cgn.test": {netip.MustParseAddr("100.100.100.200")},
	}
	for _, tc := range []struct {
		name    string
		peer    netip.Addr
		url     string
		refused string // "" means allowed
		dial    string // allowed: the address dialled
	}{
		{"RFC 1918 10/8", loopPeer, "http://10.0.0.1/i.crt",
			"10.0.0.1 is a private address, and the provider's address 127.0.0.1 is loopback", ""},
		{"RFC 1918 172.16/12", loopPeer, "http://172.16.5.4/i.crt", "172.16.5.4 is a private address", ""},
		{"RFC 1918 192.168/16", loopPeer, "http://192.168.1.1:8080/i.crt", "192.168.1.1 is a private address", ""},
		{"RFC 4193", loopPeer, "http://[fd00::1]/i.crt", "fd00::1 is a private address", ""},
		{"cloud metadata", loopPeer, "http://169.254.169.254/latest/meta-data/", "169.254.169.254 is a link-local address", ""},
		{"IPv6 link-local", loopPeer, "http://[fe80::1]/i.crt", "fe80::1 is a link-local address", ""},
		{"CGNAT", loopPeer, "http://100.64.0.1/i.crt", "100.64.0.1 is a carrier-grade NAT address", ""},
		{"multicast", loopPeer, "http://224.0.0.1/i.crt", "224.0.0.1 is a multicast address", ""},
		{"IPv6 multicast", loopPeer, "http://[ff02::1]/i.crt", "ff02::1 is a multicast address", ""},
		{"unspecified", loopPeer, "http://0.0.0.0/i.crt", "0.0.0.0 is an unspecified address", ""},
		{"IPv6 unspecified", loopPeer, "http://[::]/i.crt", ":: is an unspecified address", ""},
		{"IPv4-mapped private", loopPeer, "http://[::ffff:10.0.0.1]/i.crt", "::ffff:10.0.0.1 is a private address", ""},
		{"NAT64 of a private address", loopPeer, "http://[64:ff9b::a00:1]/i.crt", "64:ff9b::a00:1 is a private address", ""},
		{"name resolving to a private address", loopPeer, "http://aia.corp.test/i.crt",
			"aia.corp.test resolves to 10.0.0.5, a private address, and the provider's address 127.0.0.1 is loopback", ""},
		{"name resolving to ULA", loopPeer, "http://v6.corp.test/i.crt", "v6.corp.test resolves to fd12:3456::1, a private address", ""},
		{"name with one private answer among public ones", publicPeer, "http://mixed.test/i.crt",
			"mixed.test resolves to 10.0.0.5, a private address, and the provider's address 203.0.113.7 is public", ""},
		{"name resolving to CGNAT", publicPeer, "http://metadata.cgn.test/i.crt", "metadata.cgn.test resolves to 100.100.100.200, a carrier-grade NAT address", ""},
		{"loopback from a public provider", publicPeer, good,
			"127.0.0.1 is a loopback address, and the provider's address 203.0.113.7 is public", ""},
		{"loopback name from a public provider", publicPeer, byName, "localhost resolves to 127.0.0.1, a loopback address", ""},
		{"loopback from an unknown provider address", netip.Addr{}, good,
			"127.0.0.1 is a loopback address, and the provider's address is unknown", ""},
		{"loopback from a private provider", privatePeer, good, "127.0.0.1 is a loopback address, and the provider's address 10.1.2.3 is private", ""},
		{"CGNAT from a private provider", privatePeer, "http://100.64.0.1/i.crt", "100.64.0.1 is a carrier-grade NAT address", ""},
		{"link-local from a private provider", privatePeer, "http://169.254.169.254/i.crt", "169.254.169.254 is a link-local address, and the provider's address 10.1.2.3 is private", ""},

		{"loopback from a loopback provider", loopPeer, good, "", srv.Addr()},
		{"loopback name from a loopback provider", loopPeer, byName, "", srv.Addr()},
		{"IPv4-mapped loopback provider", netip.MustParseAddr("::ffff:127.0.0.1"), good, "", srv.Addr()},
		{"private from a private provider", privatePeer, "http://192.168.1.1/i.crt", "", "192.168.1.1:80"},
		{"RFC 4193 from an RFC 1918 provider", privatePeer, "http://[fd00::1]:8080/i.crt", "", "[fd00::1]:8080"},
		{"private name from a private provider", privatePeer, "http://aia.corp.test/i.crt", "", "10.0.0.5:80"},
		{"CGNAT from a CGNAT provider", cgnatPeer, "http://100.64.0.1/i.crt", "", "100.64.0.1:80"},
		{"public from a loopback provider", loopPeer, "http://198.51.100.1/i.crt", "", "198.51.100.1:80"},
		{"public name from a public provider", publicPeer, "http://aia.public.test/i.crt", "", "198.51.100.2:80"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rig := newAIARig(t, root, srv, names)
			leaf := inter.Leaf(t, trusttest.LeafOptions{LeafOnly: true, IssuerURLs: []string{tc.url}})
			_, err := rig.verify(tc.peer, leaf)
			if tc.refused != "" {
				wantIssuerFetchFailure(t, err, "AIA URL "+tc.url+": refused: "+tc.refused)
				if d := rig.dialed(); len(d) != 0 {
					t.Errorf("dialled %v, want nothing", d)
				}
				return
			}
			if d := rig.dialed(); !slices.Equal(d, []string{tc.dial}) {
				t.Errorf("dialled %v, want [%s]", d, tc.dial)
			}
			if tc.dial == srv.Addr() && err != nil {
				t.Errorf("verify: %v", err)
			}
			if tc.dial != srv.Addr() && !errors.Is(err, errNotDialled) {
				t.Errorf("err = %v, want the test dialer's", err)
			}
		})
	}
}

// TestAIARefusalNotCached: a refusal depends on the provider's address,
// so it is not remembered for the next provider.
func TestAIARefusalNotCached(t *testing.T) {
	root := trusttest.NewCA(t)
	inter := root.Intermediate(t)
	rig := newAIARig(t, root, nil, nil)
	leaf := inter.Leaf(t, trusttest.LeafOptions{LeafOnly: true, IssuerURLs: []string{"http://10.0.0.1/i.crt"}})
	_, err := rig.verify(loopPeer, leaf)
	wantIssuerFetchFailure(t, err, "refused: 10.0.0.1 is a private address")
	if _, err := rig.verify(privatePeer, leaf); !errors.Is(err, errNotDialled) {
		t.Errorf("from a private provider: err = %v, want a dial", err)
	}
	if d := rig.dialed(); !slices.Equal(d, []string{"10.0.0.1:80"}) {
		t.Errorf("dialled %v, want only the private provider's attempt", d)
	}
}

func TestClassify(t *testing.T) {
	for _, tc := range []struct {
		addr string
		want addrClass
	}{
		{"127.0.0.1", classLoopback}, {"127.255.255.254", classLoopback}, {"::1", classLoopback},
		{"::ffff:127.0.0.1", classLoopback}, {"64:ff9b::7f00:1", classLoopback},
		{"10.0.0.0", classPrivate}, {"10.255.255.255", classPrivate}, {"172.16.0.1", classPrivate},
		{"172.31.255.255", classPrivate}, {"192.168.0.1", classPrivate}, {"fc00::1", classPrivate},
		{"fdff:ffff::1", classPrivate}, {"fec0::1", classPrivate}, {"::ffff:192.168.1.1", classPrivate},
		{"169.254.0.1", classLinkLocal}, {"fe80::1", classLinkLocal}, {"fe80::1%eth0", classLinkLocal},
		{"100.64.0.0", classCGNAT}, {"100.127.255.255", classCGNAT},
		{"0.0.0.0", classUnspecified}, {"0.1.2.3", classUnspecified}, {"::", classUnspecified},
		{"224.0.0.1", classMulticast}, {"239.255.255.250", classMulticast}, {"ff02::1", classMulticast},
		{"255.255.255.255", classMulticast},
		{"8.8.8.8", classPublic}, {"172.32.0.1", classPublic}, {"100.128.0.0", classPublic},
		{"100.63.255.255", classPublic}, {"2001:db8::1", classPublic}, {"64:ff9b::808:808", classPublic},
		{"2a00:1450::1", classPublic},
	} {
		if got := classify(netip.MustParseAddr(tc.addr)); got != tc.want {
			t.Errorf("classify(%s) = %v, want %v", tc.addr, got, tc.want)
		}
	}
	if got := classify(netip.Addr{}); got != classUnspecified {
		t.Errorf("classify(invalid) = %v", got)
	}
}

// TestGuardControl: the default dialer's last check, on the address the
// socket is about to connect to.
func TestGuardControl(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		peer    netip.Addr
		address string
		ok      bool
	}{
		{loopPeer, "127.0.0.1:80", true},
		{loopPeer, "[::1]:443", true},
		{loopPeer, "198.51.100.1:80", true},
		{loopPeer, "10.0.0.1:80", false},
		{loopPeer, "[fd00::1]:80", false},
		{publicPeer, "127.0.0.1:80", false},
		{privatePeer, "192.168.0.1:80", true},
		{loopPeer, "not an address", false},
	} {
		err := guardControl(tc.peer)(ctx, "tcp", tc.address, nil)
		if (err == nil) != tc.ok {
			t.Errorf("peer %v, %s: err = %v, want ok=%v", tc.peer, tc.address, err, tc.ok)
		}
		var ref *AIARefusal
		if err != nil && !errors.As(err, &ref) {
			t.Errorf("peer %v, %s: err = %T, want *AIARefusal", tc.peer, tc.address, err)
		}
	}
}

// TestAIAFailureCache: a failed fetch is remembered for a minute, in a
// bounded cache of its own; no number of failures (or of fetched
// certificates that never complete a trusted chain) evicts a good
// intermediate.
func TestAIAFailureCache(t *testing.T) {
	root := trusttest.NewCA(t)
	inter := root.Intermediate(t)
	srv := trusttest.NewAIAServer(t)
	good := srv.Publish("/inter.crt", inter)
	rig := newAIARig(t, root, srv, nil)
	now := time.Now()
	rig.r.aia.now = func() time.Time { return now }
	count := func(path string) int {
		n := 0
		for _, p := range srv.Requests() {
			if p == path {
				n++
			}
		}
		return n
	}

	goodLeaf := inter.Leaf(t, trusttest.LeafOptions{LeafOnly: true, IssuerURLs: []string{good}})
	if _, err := rig.verify(loopPeer, goodLeaf); err != nil {
		t.Fatal(err)
	}

	gone := inter.Leaf(t, trusttest.LeafOptions{LeafOnly: true, IssuerURLs: []string{srv.URL("/gone")}})
	for range 2 {
		_, err := rig.verify(loopPeer, gone)
		wantIssuerFetchFailure(t, err, "HTTP status 404")
	}
	if n := count("/gone"); n != 1 {
		t.Errorf("/gone fetched %d times within a minute, want 1", n)
	}
	now = now.Add(aiaCacheFail + time.Second)
	rig.verify(loopPeer, gone)
	if n := count("/gone"); n != 2 {
		t.Errorf("/gone fetched %d times after a minute, want 2", n)
	}

	// A certificate that is fetched but completes no trusted chain (its
	// root is not trusted) is not a good intermediate.
	stranger := trusttest.NewCA(t).Intermediate(t)
	strangeURL := srv.Publish("/stranger.crt", stranger)
	strangeLeaf := stranger.Leaf(t, trusttest.LeafOptions{LeafOnly: true, IssuerURLs: []string{strangeURL}})
	if _, err := rig.verify(loopPeer, strangeLeaf); err == nil {
		t.Fatal("a chain to an untrusted root verified")
	}

	// Flood: many more failing URLs than either cache holds.
	for i := range 3 * aiaCacheSize {
		s := rig.r.aia.session(loopPeer)
		if _, err := rig.r.aia.fetch(context.Background(), s, srv.URL(fmt.Sprintf("/junk-%d", i))); err == nil {
			t.Fatalf("junk %d fetched", i)
		}
	}
	rig.r.aia.mu.Lock()
	goodN, recentN := rig.r.aia.good.len(), rig.r.aia.recent.len()
	_, goodKept := rig.r.aia.good.get(good, now)
	_, strangerGood := rig.r.aia.good.get(strangeURL, now)
	rig.r.aia.mu.Unlock()
	if goodN != 1 || !goodKept || strangerGood {
		t.Errorf("good cache: %d entries, good intermediate kept %v, untrusted one kept %v; want 1, true, false", goodN, goodKept, strangerGood)
	}
	if recentN > aiaRecentSize {
		t.Errorf("failure cache holds %d entries, more than %d", recentN, aiaRecentSize)
	}
	if _, err := rig.verify(loopPeer, goodLeaf); err != nil {
		t.Fatal(err)
	}
	if n := count("/inter.crt"); n != 1 {
		t.Errorf("good intermediate fetched %d times, want 1 (then cached)", n)
	}
}

// TestAIACacheEviction: a full cache drops expired entries first, then
// the one closest to expiry, never the entry just stored.
func TestAIACacheEviction(t *testing.T) {
	now := time.Now()
	c := aiaCache{max: 3}
	c.put("a", aiaEntry{expires: now.Add(3 * time.Minute)}, now)
	c.put("b", aiaEntry{expires: now.Add(time.Minute)}, now)
	c.put("c", aiaEntry{expires: now.Add(2 * time.Minute)}, now)
	c.put("d", aiaEntry{expires: now.Add(time.Second)}, now)
	if _, ok := c.get("b", now); ok || c.len() != 3 {
		t.Errorf("b kept or len %d: want b evicted and 3 left", c.len())
	}
	if _, ok := c.get("d", now); !ok {
		t.Error("the new entry was evicted")
	}
	later := now.Add(150 * time.Second) // d and c expired
	c.put("e", aiaEntry{expires: later.Add(time.Hour)}, later)
	if c.len() != 2 {
		t.Errorf("len %d after storing into a cache with expired entries, want 2 (a, e)", c.len())
	}
	c.put("a", aiaEntry{expires: later.Add(time.Hour)}, later)
	if c.len() != 2 {
		t.Errorf("len %d after replacing an entry, want 2", c.len())
	}
}

// TestTransportAIA: through real TLS connections, the address actually
// dialled decides what AIA may reach: a provider on loopback may have its
// issuer fetched from loopback; a TLS config that cannot know the address
// refuses it.
func TestTransportAIA(t *testing.T) {
	root := trusttest.NewCA(t)
	inter := root.Intermediate(t)
	srv := trusttest.NewAIAServer(t)
	leaf := inter.Leaf(t, trusttest.LeafOptions{LeafOnly: true, IssuerURLs: []string{srv.Publish("/inter.crt", inter)}})
	provider := trusttest.NewTLSServer(t, http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}), leaf)
	roots := rootsWith(t, root).WithPolicy(Policy{AIA: true})

	// The caller's trace sees its own request only, not the AIA fetch: the
	// proxy decides from it whether a message may have been sent.
	var wrote, conns atomic.Int32
	trace := &httptrace.ClientTrace{
		GotConn:      func(httptrace.GotConnInfo) { conns.Add(1) },
		WroteRequest: func(httptrace.WroteRequestInfo) { wrote.Add(1) },
	}
	req, err := http.NewRequestWithContext(httptrace.WithClientTrace(context.Background(), trace), http.MethodGet, provider.URL, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := client(NewTransport(roots)).Do(req)
	if err != nil {
		t.Fatalf("via NewTransport: %v", err)
	}
	resp.Body.Close()
	if got := srv.Requests(); !slices.Equal(got, []string{"/inter.crt"}) {
		t.Errorf("requests = %v", got)
	}
	if wrote.Load() != 1 || conns.Load() != 1 {
		t.Errorf("caller's trace saw %d requests written on %d connections, want 1 and 1", wrote.Load(), conns.Load())
	}

	cfg := rootsWith(t, root).WithPolicy(Policy{AIA: true}).ClientTLSConfig()
	cfg.ServerName = "localhost"
	conn, err := tls.Dial("tcp", provider.Listener.Addr().String(), cfg)
	if err == nil {
		conn.Close()
		t.Fatal("ClientTLSConfig fetched from loopback for a server whose address it does not know")
	}
	wantIssuerFetchFailure(t, err, "127.0.0.1 is a loopback address, and the provider's address is unknown")
	if got := srv.Requests(); len(got) != 1 {
		t.Errorf("requests = %v, want no new one", got)
	}
}

// TestAIAStopsWithCaller: AIA fetches end when the caller's context does
// (the handshake's deadline), not only at aia_timeout.
func TestAIAStopsWithCaller(t *testing.T) {
	root := trusttest.NewCA(t)
	inter := root.Intermediate(t)
	srv := trusttest.NewAIAServer(t)
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	u := srv.Handle("/hangs", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	rig := newAIARig(t, root, srv, nil)
	rig.r.aia.timeout = time.Hour
	leaf := inter.Leaf(t, trusttest.LeafOptions{LeafOnly: true, IssuerURLs: []string{u}})
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		for len(srv.Requests()) == 0 {
			time.Sleep(time.Millisecond)
		}
		cancel()
	}()
	_, err := rig.r.VerifyFrom(ctx, "localhost", loopPeer, []*x509.Certificate{leaf.Leaf}, time.Now())
	wantIssuerFetchFailure(t, err, "AIA URL "+u+": ", "context canceled")
}
