package deliver

import (
	"github.com/postern/postern/proxy/audit"
	"github.com/postern/postern/rewrite"
)

// Summarize reduces per-recipient outcomes to the audit line's outcome.
// Recipients the sandbox took count as "sandbox", not delivered: nothing
// left the box.
func Summarize(res rewrite.Result) (outcome, code, reason string) {
	delivered, unknown, sandbox := 0, 0, 0
	var first *rewrite.Error
	for _, rc := range res.Recipients {
		switch {
		case rc.Err == nil && rc.Sandbox:
			sandbox++
		case rc.Err == nil:
			delivered++
		case rc.Err.Outcome == rewrite.Unknown:
			unknown++
			fallthrough
		default:
			if first == nil {
				first = rc.Err
			}
		}
	}
	switch {
	case first == nil && sandbox == 0:
		return "delivered", "", ""
	case first == nil && delivered == 0:
		return audit.OutcomeSandbox, "", ""
	case first == nil:
		// Only a route whose fallback is a sandbox route gets here.
		return "partial", "", "sandbox: some recipients were not sent"
	case delivered > 0 || sandbox > 0:
		outcome = "partial"
	case unknown > 0:
		outcome = "unknown"
	default:
		outcome = "refused"
	}
	reason = first.Description
	if first.Cause != nil {
		reason += ": " + first.Cause.Error()
	}
	return outcome, first.Code, reason
}
