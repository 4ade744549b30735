package audit

import (
	"bytes"
	"context"
	"log/slog"
	"reflect"
	"strings"
	"testing"
)

// TestWriteKeyOrder: the line's keys come in the documented order, empty
// optional keys are left out, and Refusal is never written.
func TestWriteKeyOrder(t *testing.T) {
	var buf bytes.Buffer
	a := deliveredRecord()
	a.ClientMsgID, a.Refusal = "pst0123", "rate_limited"
	Write(context.Background(), slog.New(slog.NewJSONHandler(&buf, nil)), a)
	line := buf.String()
	_, after, _ := strings.Cut(line, `"msg":"message",`)
	want := `"client":"127.0.0.1","mode":"direct","method":"GET","outcome":"delivered","status":200,"route":"bench",` +
		`"provider":"clickatell-one","to":["*******4567"],"country":["US"],"chars":20,"segments":1,` +
		`"ids":["a55b8f8d56f33440e993aa614c68bf8b"],"attempts":[{"route":"bench","provider":"clickatell-one","outcome":"delivered"}],` +
		`"client_msg_id":"pst0123","tls":"TLS 1.3","leaf_sha256":"` + a.Leaf + `","latency_ms":1.234}` + "\n"
	if after != want {
		t.Errorf("Write: got\n%s\nwant\n%s", after, want)
	}
	if strings.Contains(line, "rate_limited") {
		t.Errorf("Write: the refusal label leaked into the line: %s", line)
	}
}

// TestParseLineRoundTrip: what Write writes, parseLine reads back into the
// same Record (Refusal aside), so report and tests share the writer's schema.
func TestParseLineRoundTrip(t *testing.T) {
	var buf bytes.Buffer
	a := deliveredRecord()
	a.Refusal = "x"
	Write(context.Background(), slog.New(slog.NewJSONHandler(&buf, nil)), a)
	l, ok := parseLine(bytes.TrimSpace(buf.Bytes()))
	if !ok {
		t.Fatalf("parseLine(%s): not a message line", buf.Bytes())
	}
	want := *a
	want.Refusal, want.Latency = "", 0
	if !reflect.DeepEqual(l.Record, want) || l.LatencyMS != 1.234 || l.Msg != "message" {
		t.Errorf("parseLine: got %+v (latency %v), want %+v", l.Record, l.LatencyMS, want)
	}
	for _, bad := range []string{"not json", `{"msg":"other","outcome":"x"}`, `{"msg":"message"}`} {
		if _, ok := parseLine([]byte(bad)); ok {
			t.Errorf("parseLine(%s): got ok, want not a message line", bad)
		}
	}
}

func TestMaskNumber(t *testing.T) {
	for in, want := range map[string]string{"": "", "123": "***", "1234": "****", "15551234567": "*******4567"} {
		if got := maskNumber(in); got != want {
			t.Errorf("maskNumber(%q): got %q, want %q", in, got, want)
		}
	}
}
