package proxy_test

import (
	"context"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestSMTP_ShutdownFinishesMessagesInFlight: on shutdown the SMTP listener
// stops accepting and closes idle connections, while a message being
// delivered finishes and its client still gets the outcome; with a
// provider that never answers, the grace period cuts the message off and
// it is answered as outcome unknown.
func TestSMTP_ShutdownFinishesMessagesInFlight(t *testing.T) {
	for _, tc := range []struct {
		name     string
		hold     time.Duration // how long the provider takes
		grace    time.Duration
		code     int
		enhanced string
	}{
		{"finishes within grace", 300 * time.Millisecond, 5 * time.Second, 250, "2.0.0"},
		{"cut off after grace", time.Hour, 300 * time.Millisecond, 554, "5.0.0"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			arrived := make(chan struct{}, 1)
			release := make(chan struct{})
			fp := newFakeProvider(t, func(w http.ResponseWriter, r received) {
				arrived <- struct{}{}
				select {
				case <-time.After(tc.hold):
				case <-release:
				}
				oneAPIReply()(w, r)
			})
			t.Cleanup(func() { close(release) }) // before the provider's own cleanup waits for its handler
			p := startPostern(t, smtpConfig(fp.CAFile(t), fp.URL("/messages"), `request_timeout = "2h"`, "", ""), smtpEnv)
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() { done <- p.Srv.ServeSMTP(ctx, ln, nil, tc.grace) }()

			idle := dialSMTP(t, ln.Addr().String())
			idle.greet()
			busy := dialSMTP(t, ln.Addr().String())
			busy.greet()
			busy.expect("MAIL FROM:<"+iseSender+">", 250, "")
			busy.expect("RCPT TO:<"+smtpNumber+"@"+smsDomain+">", 250, "")
			busy.expect("DATA", 354, "")
			busy.conn.Write([]byte(mailData("in flight") + ".\r\n"))
			<-arrived
			cancel()
			code, msg := busy.read()
			if code != tc.code || !strings.HasPrefix(msg, tc.enhanced) {
				t.Errorf("reply during shutdown: %d %s, want %d %s", code, msg, tc.code, tc.enhanced)
			}
			if err := <-done; err != nil {
				t.Errorf("ServeSMTP: %v", err)
			}
			if _, err := idle.tp.ReadLine(); err == nil {
				t.Error("idle connection still open after shutdown")
			}
			if _, err := net.DialTimeout("tcp", ln.Addr().String(), time.Second); err == nil {
				t.Error("still accepting after shutdown")
			}
		})
	}
}
