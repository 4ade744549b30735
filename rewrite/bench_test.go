package rewrite_test

import (
	"context"
	"net/http"
	"strconv"
	"testing"

	"github.com/postern/postern/rewrite"
)

// providerReplies are typical accepted replies for one recipient.
var providerReplies = map[string]string{
	"clickatell-one":  `{"messages":[{"apiMessageId":"a55b8f8d56f33440e993aa614c68bf8b","accepted":true,"to":"15551234567","error":null}],"error":null}`,
	"clickatell-rest": `{"data":{"message":[{"accepted":true,"to":"15551234567","apiMessageId":"a55b8f8d56f33440e993aa614c68bf8b"}]}}`,
}

// BenchmarkRewrite is the whole translation of one message per provider:
// parse ISE's legacy GET, build the provider request, read the provider's
// reply and render the legacy answer. Every iteration is a different
// message. Run: go test -run=^$ -bench=Rewrite -benchmem ./rewrite/
func BenchmarkRewrite(b *testing.B) {
	dialect, err := rewrite.NewDialect("clickatell-http")
	if err != nil {
		b.Fatal(err)
	}
	for _, name := range rewrite.ProviderNames() {
		b.Run(name, func(b *testing.B) {
			p, err := rewrite.NewProvider(name, rewrite.Config{Token: "tok-bench"})
			if err != nil {
				b.Fatal(err)
			}
			reply := rewrite.Response{Status: http.StatusAccepted, Header: http.Header{"Content-Type": {"application/json"}},
				Body: []byte(providerReplies[name])}
			ctx := context.Background()
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				i++
				in := rewrite.Inbound{Method: http.MethodGet, Host: "api.clickatell.com", Path: "/http/sendmsg",
					RawQuery: "user=u&password=p&api_id=1&to=%2B1+555+123+4567&text=Your+password+is+" + strconv.Itoa(i)}
				m, err := dialect.Parse(in)
				if err != nil {
					b.Fatal(err)
				}
				if _, err := p.Build(ctx, m); err != nil {
					b.Fatal(err)
				}
				if rep := dialect.Reply(p.Read(m, reply)); rep.Status != http.StatusOK {
					b.Fatalf("reply %d %q", rep.Status, rep.Body)
				}
			}
		})
	}
}
