package proxy_test

import (
	"fmt"
	"maps"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/postern/postern/internal/redistest"
)

// smtpStep is one SMTP conversation: its commands with the reply codes
// they must get ("DATA" sends a small message and expects the code of
// its end).
type smtpStep struct {
	name string
	cmds []smtpCmd
}

type smtpCmd struct {
	line string
	code int
}

// clusterSMTPSteps depend on every limit the SMTP listener asks the
// store (per_client "4/24h" at MAIL; per_number "1/1h" and daily_max 3 at
// each RCPT): a replica that counted on its own would admit what the
// other replica already spent.
func clusterSMTPSteps() []smtpStep {
	rcpt := func(n string) string { return "RCPT TO:<" + n + "@" + smsDomain + ">" }
	mail := "MAIL FROM:<" + iseSender + ">"
	return []smtpStep{
		{"delivered (per_client 1, 15551230001 spent, daily 1)", []smtpCmd{{mail, 250}, {rcpt("15551230001"), 250}, {"DATA", 250}}},
		{"15551230001 over per_number; 15551230002 delivered (per_client 2, daily 2)",
			[]smtpCmd{{mail, 250}, {rcpt("15551230001"), 550}, {rcpt("15551230002"), 250}, {"DATA", 250}}},
		{"15551230003 delivered, 15551230004 over daily_max (per_client 3, daily 3)",
			[]smtpCmd{{mail, 250}, {rcpt("15551230003"), 250}, {rcpt("15551230004"), 550}, {"DATA", 250}}},
		{"over daily_max (per_client 4)", []smtpCmd{{mail, 250}, {rcpt("15551230005"), 550}}},
		{"over per_client at MAIL", []smtpCmd{{mail, 451}}},
	}
}

// TestClusterSMTPLimitsAnswerAsLocal: two replicas sharing a redis-server,
// each SMTP conversation on the other replica from the one before, answer
// every MAIL (per_client), RCPT (per_number, daily_max) and DATA exactly
// as one replica counting on its own, with the same audit lines (but for
// "store", which says "redis"), and send the same messages.
func TestClusterSMTPLimitsAnswerAsLocal(t *testing.T) {
	redisAddr := redistest.Shared(t)
	steps := clusterSMTPSteps()
	type answer struct {
		replies []string
		audit   []map[string]any
	}
	run := func(cluster string, replicas int) ([]answer, int) {
		fp := newFakeProvider(t, oneAPIReply())
		cfg := cluster + strings.Replace(smtpConfig(fp.CAFile(t), fp.URL("/messages"), "", "", ""),
			"per_number = \"off\"", "per_client = \"4/24h\"\nper_number = \"1/1h\"\ndaily_max = 3", 1)
		var ps []*smtpPostern
		for range replicas {
			p := startSMTP(t, cfg, smtpEnv, nil)
			t.Cleanup(func() { p.Srv.Close() })
			ps = append(ps, p)
		}
		var out []answer
		for i, s := range steps {
			p := ps[i%len(ps)]
			before := len(smtpAuditLines(t, p.postern))
			c := dialSMTP(t, p.SMTPAddr)
			c.greet()
			var a answer
			for _, cmd := range s.cmds {
				var code int
				var msg string
				if cmd.line == "DATA" {
					code, msg = c.data(mailData("step " + fmt.Sprint(i)))
				} else {
					code, msg = c.cmd(cmd.line)
				}
				if code != cmd.code {
					t.Errorf("%q step %d (%s): %q got %d %s, want %d", cluster, i, s.name, cmd.line, code, msg, cmd.code)
				}
				a.replies = append(a.replies, fmt.Sprint(code, " ", msg))
			}
			c.expect("QUIT", 221, "")
			lines := smtpAuditLines(t, p.postern)
			a.audit = lines[before:]
			out = append(out, a)
		}
		return out, len(fp.Requests())
	}
	local, localSent := run("", 1)
	cluster := fmt.Sprintf("[cluster]\nredis = %q\nkey_prefix = %q\nstore_timeout = \"5s\"\n",
		"redis://"+redisAddr+"/0", "smtplimits-"+fmt.Sprint(time.Now().UnixNano())+":")
	shared, sharedSent := run(cluster, 2)
	for i, s := range steps {
		l, c := local[i], shared[i]
		for _, a := range c.audit {
			if a["store"] != "redis" {
				t.Errorf("step %d (%s): audit store %v, want redis: %v", i, s.name, a["store"], a)
			}
		}
		for _, lines := range [][]map[string]any{l.audit, c.audit} {
			for _, a := range lines {
				maps.DeleteFunc(a, func(k string, _ any) bool { return k == "time" || k == "latency_ms" || k == "store" })
			}
		}
		if !reflect.DeepEqual(l.replies, c.replies) || !reflect.DeepEqual(l.audit, c.audit) {
			t.Errorf("step %d (%s):\n local   %q %v\n cluster %q %v", i, s.name, l.replies, l.audit, c.replies, c.audit)
		}
	}
	if localSent != 3 || sharedSent != 3 {
		t.Errorf("provider got %d messages locally, %d across two replicas; want 3 each", localSent, sharedSent)
	}
}
