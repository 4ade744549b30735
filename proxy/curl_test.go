package proxy_test

import (
	"context"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/postern/postern/internal/testtool"
)

// TestCurlAsISE drives postern with curl, a client that is not Go's, in
// proxy mode (-x: absolute-form) and direct mode.
func TestCurlAsISE(t *testing.T) {
	curl := testtool.Require(t, "curl") // .ci/run installs it
	fp := newFakeProvider(t, oneAPIReply())
	cfg := routeConfig(fp.CAFile(t), "clickatell", "clickatell-one", fp.URL("/v1/message"), "")
	p := startPostern(t, cfg, env())
	q := "/http/sendmsg?" + legacyQuery("+44 20 7946 0958", "Café & crème: 100% #1")
	for _, args := range [][]string{
		{"-x", "http://" + p.Addr, "http://api.clickatell.com" + q},
		{"-H", "Host: api.clickatell.com", "http://" + p.Addr + q},
	} {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		out, err := exec.CommandContext(ctx, curl, append([]string{"-sS", "--noproxy", "", "-w", " %{http_code}"}, args...)...).CombinedOutput()
		cancel()
		if err != nil {
			t.Fatalf("curl %v: %v\n%s", args, err, out)
		}
		if !strings.HasPrefix(string(out), "ID: one") || !strings.HasSuffix(string(out), " 200") {
			t.Errorf("curl %v: got %q, want ID line and 200", args, out)
		}
	}
	for i, r := range fp.Requests() {
		texts, tos, err := oneAPIBody(r.Body)
		if err != nil || len(texts) != 1 || texts[0] != "Café & crème: 100% #1" || tos[0] != "442079460958" {
			t.Errorf("request %d: provider got %q to %v (%v)", i, texts, tos, err)
		}
	}
}
