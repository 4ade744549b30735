package audit

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"reflect"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

// hostileStrings break naive JSON encoders; slog and encoding/json each
// have their own rules for some of them (\b, \f).
var hostileStrings = []string{
	"", `He said "hi"`, `C:\temp\new \" \u0041`, "a&b=c<script>", "1+1=2 100% #1", "line1\nline2\r\nline3\ttab",
	"\b\f\x00\x01\x1f\x7f", "Café 🔑 👨‍👩‍👧", "كلمة المرور", "sep\u2028para\u2029", "bad \xff\xfe utf8 \xc3", "<redacted>",
}

// slogLine is what slog's JSON handler writes for a's attributes at t.
func slogLine(t *testing.T, at time.Time, a *Record) string {
	t.Helper()
	var buf bytes.Buffer
	r := slog.NewRecord(at, slog.LevelInfo, "message", 0)
	r.AddAttrs(attrs(a)...)
	if err := slog.NewJSONHandler(&buf, nil).Handle(context.Background(), r); err != nil {
		t.Fatal(err)
	}
	return buf.String()
}

// TestLineSameAsSlog: the appended line is byte for byte the line slog's
// JSON handler writes, for every field holding every hostile string, at
// times in and out of UTC with and without sub-second digits.
func TestLineSameAsSlog(t *testing.T) {
	times := []time.Time{
		time.Date(2026, 12, 3, 4, 5, 6, 789000000, time.UTC),
		time.Date(2026, 1, 2, 3, 4, 5, 0, time.FixedZone("CET", 3600)),
		time.Now(),
	}
	records := []*Record{deliveredRecord(), {Client: "::1", Mode: "proxy", Method: "CONNECT", Outcome: "refused", Status: 403}}
	refused := deliveredRecord()
	refused.To, refused.Country, refused.IDs, refused.Joined = []string{"*******4567", "****"}, nil, nil, true
	refused.Attempts = []Attempt{{Route: "a", Provider: "b", Outcome: "refused", Code: "105", Retry: "not sent", RetryInMS: 250}, {Route: "c"}}
	records = append(records, refused)
	for _, s := range hostileStrings {
		a := deliveredRecord()
		a.Client, a.ProxyUser, a.Mode, a.Method, a.Route, a.Provider = s, s, s, s, s, s
		a.To, a.Country, a.IDs = []string{s, s}, []string{s}, []string{s}
		a.Code, a.Reason, a.Host, a.Path, a.Target, a.ClientMsgID, a.TLS, a.Leaf = s, s, s, s, s, s, s, s
		a.Attempts = []Attempt{{Route: s, Provider: s, Outcome: s, Code: s, Retry: s, RetryInMS: -1}}
		records = append(records, a)
	}
	for _, d := range []time.Duration{0, time.Microsecond, 999 * time.Microsecond, 1234567 * time.Microsecond, 1<<63 - 1, -5 * time.Millisecond} {
		a := deliveredRecord()
		a.Latency = d
		records = append(records, a)
	}
	for _, at := range times {
		for _, a := range records {
			if got, want := string(appendLine(nil, at, a)), slogLine(t, at, a); got != want {
				t.Errorf("appendLine:\n%s\nslog:\n%s", got, want)
			}
		}
	}
}

// FuzzLineSameAsSlog is TestLineSameAsSlog for any strings and numbers.
func FuzzLineSameAsSlog(f *testing.F) {
	for _, s := range hostileStrings {
		f.Add(s, s, 200, int64(1234), int64(0))
	}
	f.Fuzz(func(t *testing.T, s, list string, status int, latencyUS, retry int64) {
		a := deliveredRecord()
		a.Client, a.Reason, a.Status, a.Latency = s, s, status, time.Duration(latencyUS)*time.Microsecond
		a.To, a.Country, a.IDs = strings.Split(list, ","), nil, []string{list}
		a.Attempts = []Attempt{{Route: s, Provider: list, Outcome: s, RetryInMS: retry}}
		at := time.Unix(0, latencyUS).UTC()
		if got, want := string(appendLine(nil, at, a)), slogLine(t, at, a); got != want {
			t.Fatalf("appendLine:\n%s\nslog:\n%s", got, want)
		}
	})
}

var lineTime = regexp.MustCompile(`^\{"time":"[^"]*"`)

// TestNewLoggerWritesSlogLines: through an audit logger and through a plain
// slog JSON logger, Write writes the same line (times aside), and other
// records logged through the audit logger are slog's own.
func TestNewLoggerWritesSlogLines(t *testing.T) {
	var fast, plain bytes.Buffer
	a := deliveredRecord()
	Write(context.Background(), NewLogger(&fast), a)
	Write(context.Background(), slog.New(slog.NewJSONHandler(&plain, nil)), a)
	if got, want := lineTime.ReplaceAllString(fast.String(), ""), lineTime.ReplaceAllString(plain.String(), ""); got != want || got == "" {
		t.Errorf("audit logger wrote\n%s\nslog\n%s", fast.String(), plain.String())
	}
	fast.Reset()
	NewLogger(&fast).With("k", "v").Warn("other", "n", 1)
	var l map[string]any
	if err := json.Unmarshal(fast.Bytes(), &l); err != nil || l["msg"] != "other" || l["k"] != "v" || l["level"] != "WARN" {
		t.Errorf("other record: %s (%v)", fast.Bytes(), err)
	}
}

// TestNewLoggerOneWritePerLine: concurrent lines arrive whole, one Write
// each, however many goroutines write.
func TestNewLoggerOneWritePerLine(t *testing.T) {
	w := &countingWriter{}
	log := NewLogger(w)
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 50 {
				Write(context.Background(), log, deliveredRecord())
			}
			log.Info("other")
		})
	}
	wg.Wait()
	if w.writes != 8*51 || strings.Count(w.buf.String(), "\n") != 8*51 {
		t.Fatalf("%d writes, %d lines; want %d", w.writes, strings.Count(w.buf.String(), "\n"), 8*51)
	}
	for line := range strings.SplitSeq(strings.TrimSpace(w.buf.String()), "\n") {
		if !json.Valid([]byte(line)) {
			t.Fatalf("torn line %q", line)
		}
	}
}

// countingWriter counts Write calls; it is not safe for concurrent use,
// so a race between two lines shows under -race.
type countingWriter struct {
	buf    bytes.Buffer
	writes int
}

func (c *countingWriter) Write(p []byte) (int, error) {
	c.writes++
	return c.buf.Write(p)
}

var _ io.Writer = (*countingWriter)(nil)

// TestLineCoversEveryField: with every field of Record set, the appended
// line is slog's line and names every field's JSON key, so a field added
// to Record (and to attrs) cannot go missing from the audit log's own
// encoder. Fields are set by reflection: the test follows Record.
func TestLineCoversEveryField(t *testing.T) {
	a := &Record{}
	v := reflect.ValueOf(a).Elem()
	var keys []string
	for i := range v.NumField() {
		f, sf := v.Field(i), v.Type().Field(i)
		switch f.Kind() {
		case reflect.String:
			f.SetString("v-" + sf.Name)
		case reflect.Int, reflect.Int64:
			f.SetInt(int64(i + 1))
		case reflect.Bool:
			f.SetBool(true)
		case reflect.Slice:
			if sf.Type.Elem().Kind() == reflect.String {
				f.Set(reflect.ValueOf([]string{"v-" + sf.Name}))
			} else {
				f.Set(reflect.MakeSlice(sf.Type, 1, 1))
			}
		default:
			t.Fatalf("Record.%s: kind %s not covered by this test", sf.Name, f.Kind())
		}
		name, _, _ := strings.Cut(sf.Tag.Get("json"), ",")
		if name != "-" && name != "" {
			keys = append(keys, name)
		}
	}
	at := time.Date(2026, 12, 3, 4, 5, 6, 0, time.UTC)
	got := string(appendLine(nil, at, a))
	if want := slogLine(t, at, a); got != want {
		t.Errorf("appendLine:\n%s\nslog:\n%s", got, want)
	}
	for _, k := range keys {
		if !strings.Contains(got, `"`+k+`":`) {
			t.Errorf("the line has no %q: %s", k, got)
		}
	}
}
