package rewrite_test

import (
	"context"
	"net/http"
	"net/url"
	"strconv"
	"testing"

	"github.com/postern/postern/rewrite"
)

// benchProviders are every provider's config and a typical accepted reply
// for one recipient.
var benchProviders = map[string]struct {
	cfg    rewrite.Config
	keys   *rewrite.RouteKeys
	status int
	reply  string
}{
	"clickatell-one": {rewrite.Config{Token: "tok-bench"}, nil, http.StatusAccepted,
		`{"messages":[{"apiMessageId":"a55b8f8d56f33440e993aa614c68bf8b","accepted":true,"to":"15551234567","error":null}],"error":null}`},
	"clickatell-platform": {rewrite.Config{Token: "tok-bench"}, nil, http.StatusAccepted,
		`{"messages":[{"apiMessageId":"a55b8f8d56f33440e993aa614c68bf8b","accepted":true,"to":"15551234567","error":null}],"error":null}`},
	"clickatell-rest": {rewrite.Config{Token: "tok-bench"}, nil, http.StatusAccepted,
		`{"data":{"message":[{"accepted":true,"to":"15551234567","apiMessageId":"a55b8f8d56f33440e993aa614c68bf8b"}]}}`},
	"twilio": {rewrite.Config{Token: "tok-bench", From: "+15550001111"}, &rewrite.RouteKeys{TwilioConfig: rewrite.TwilioConfig{AccountSID: "AC0123456789abcdef0123456789abcdef"}}, http.StatusCreated,
		`{"sid":"SM0123456789abcdef0123456789abcdef","status":"queued","to":"+15551234567","error_code":null}`},
	"template": {rewrite.Config{Token: "tok-bench", Endpoint: &url.URL{Scheme: "https", Host: "sms.gateway.test", Path: "/v1/send"}}, &rewrite.RouteKeys{TemplateConfig: rewrite.TemplateConfig{Auth: "bearer",
		Body: map[string]any{"to": []any{"{{.To}}"}, "body": "{{.Text}}"}, IDPointer: "/id"}}, http.StatusCreated,
		`{"id":"batch-0123456789"}`},
}

// BenchmarkRewrite is the whole translation of one message per provider:
// parse ISE's legacy GET, build the provider request, read the provider's
// reply and render the legacy answer. Every iteration is a different
// message. Run: go test -run=^$ -bench=Rewrite -benchmem ./rewrite/
func BenchmarkRewrite(b *testing.B) {
	dialect, err := rewrite.NewDialect("clickatell-http", rewrite.DialectSettings{})
	if err != nil {
		b.Fatal(err)
	}
	for _, name := range rewrite.ProviderNames() {
		b.Run(name, func(b *testing.B) {
			bp, ok := benchProviders[name]
			if !ok {
				b.Fatalf("no benchmark config for provider %q", name)
			}
			p, err := rewrite.NewProvider(name, rewrite.ProviderSettings{Config: bp.cfg, Keys: bp.keys})
			if err != nil {
				b.Fatal(err)
			}
			reply := rewrite.Response{Status: bp.status, Header: http.Header{"Content-Type": {"application/json"}},
				Body: []byte(bp.reply)}
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
