package deliver

import (
	"testing"

	"github.com/postern/postern/rewrite"
)

// TestSummarizeSandbox: recipients the sandbox took never count as
// delivered, alone or mixed with real deliveries and failures.
func TestSummarizeSandbox(t *testing.T) {
	ok := rewrite.Recipient{To: "1", ID: "real-1"}
	sb := rewrite.Recipient{To: "2", ID: "sandbox-1", Sandbox: true}
	bad := rewrite.Recipient{To: "3", Err: rewrite.BadRequest(rewrite.CodeInvalidDestination, "Invalid destination address")}
	for _, tc := range []struct {
		name string
		rcs  []rewrite.Recipient
		want string
	}{
		{"real only", []rewrite.Recipient{ok}, "delivered"},
		{"sandbox only", []rewrite.Recipient{sb, sb}, "sandbox"},
		{"real and sandbox", []rewrite.Recipient{ok, sb}, "partial"},
		{"sandbox and failed", []rewrite.Recipient{sb, bad}, "partial"},
		{"failed only", []rewrite.Recipient{bad}, "refused"},
	} {
		if got, _, _ := Summarize(rewrite.Result{Recipients: tc.rcs}); got != tc.want {
			t.Errorf("%s: outcome %q, want %q", tc.name, got, tc.want)
		}
	}
}
