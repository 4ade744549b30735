package audit

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"
)

func deliveredRecord() *Record {
	return &Record{Client: "127.0.0.1", Mode: "direct", Method: "GET", Route: "bench", Provider: "clickatell-one",
		To: []string{"*******4567"}, Country: []string{"US"}, Chars: 20, Segments: 1, Outcome: "delivered", Status: 200,
		IDs: []string{"a55b8f8d56f33440e993aa614c68bf8b"}, TLS: "TLS 1.3", Leaf: "3f1d2a9c0b7e4f6a8d5c1b2e9f0a7d3c6b8e1f4a2d9c7b5e0f3a6d8c1b4e7f2a",
		Latency: 1234 * time.Microsecond, Attempts: []Attempt{{Route: "bench", Provider: "clickatell-one", Outcome: "delivered"}}}
}

// BenchmarkWrite is one delivered message's audit line written to
// io.Discard: through the audit logger (NewLogger, as the daemon writes
// it) and through a plain slog JSON logger (the attributes path).
func BenchmarkWrite(b *testing.B) {
	a := deliveredRecord()
	ctx := context.Background()
	for _, bc := range []struct {
		name string
		log  *slog.Logger
	}{
		{"audit", NewLogger(io.Discard)},
		{"slog", slog.New(slog.NewJSONHandler(io.Discard, nil))},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				Write(ctx, bc.log, a)
			}
		})
	}
}
