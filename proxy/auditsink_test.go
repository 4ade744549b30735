package proxy_test

import (
	"bufio"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/postern/postern/proxy/audit"
	"github.com/postern/postern/trust/trusttest"
)

// waitFor polls cond for up to 10 seconds: audit sinks write from their own
// goroutines. It is a bound on waiting, not a timing assertion.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for range 1000 {
		if cond() {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("timed out waiting for %s", what)
}

// syslogReceiver is a minimal RFC 5424 collector on loopback: UDP
// datagrams, or octet-counted frames over TCP or TLS.
type syslogReceiver struct {
	addr string
	mu   sync.Mutex
	msgs []string
}

func (s *syslogReceiver) add(m string) {
	s.mu.Lock()
	s.msgs = append(s.msgs, m)
	s.mu.Unlock()
}

func (s *syslogReceiver) messages() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.msgs...)
}

func startSyslogUDP(t *testing.T) *syslogReceiver {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	s := &syslogReceiver{addr: pc.LocalAddr().String()}
	go func() {
		buf := make([]byte, 65536)
		for {
			n, _, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			s.add(string(buf[:n]))
		}
	}()
	return s
}

func startSyslogStream(t *testing.T, cfg *tls.Config) *syslogReceiver {
	var ln net.Listener
	var err error
	if cfg != nil {
		ln, err = tls.Listen("tcp", "127.0.0.1:0", cfg)
	} else {
		ln, err = net.Listen("tcp", "127.0.0.1:0")
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	s := &syslogReceiver{addr: ln.Addr().String()}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				r := bufio.NewReader(c)
				for {
					// RFC 6587 octet counting: "LEN SP MSG".
					lenText, err := r.ReadString(' ')
					if err != nil {
						return
					}
					n, err := strconv.Atoi(strings.TrimSuffix(lenText, " "))
					if err != nil || n <= 0 || n > 1<<20 {
						s.add("BAD FRAME: " + lenText)
						return
					}
					msg := make([]byte, n)
					if _, err := io.ReadFull(r, msg); err != nil {
						return
					}
					s.add(string(msg))
				}
			}()
		}
	}()
	return s
}

// rfc5424 is the SYSLOG-MSG grammar of RFC 5424 section 6 for a message
// without structured data: PRI VERSION TIMESTAMP HOSTNAME APP-NAME PROCID
// MSGID STRUCTURED-DATA MSG.
var rfc5424 = regexp.MustCompile(`^<(\d{1,3})>1 (\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d{1,6})?(?:Z|[+-]\d\d:\d\d)) ([!-~]{1,255}) ([!-~]{1,48}) ([!-~]{1,128}) ([!-~]{1,32}) (-|\[[^\]]*\]) (.*)$`)

// TestSyslogSink: each audit line reaches a real syslog listener as a
// well-formed RFC 5424 message whose MSG is the JSON audit line, over UDP,
// TCP and TLS.
func TestSyslogSink(t *testing.T) {
	ca := trusttest.NewCA(t)
	for _, tc := range []struct {
		scheme string
		start  func(t *testing.T) *syslogReceiver
		extra  string
	}{
		{"udp", startSyslogUDP, ""},
		{"tcp", func(t *testing.T) *syslogReceiver { return startSyslogStream(t, nil) }, ""},
		{"tls", func(t *testing.T) *syslogReceiver {
			return startSyslogStream(t, &tls.Config{Certificates: []tls.Certificate{ca.Leaf(t, trusttest.LeafOptions{})}})
		}, fmt.Sprintf("syslog_ca_files = [%q]\n", ca.WritePEM(t, t.TempDir()))},
	} {
		t.Run(tc.scheme, func(t *testing.T) {
			rcv := tc.start(t)
			fp := newFakeProvider(t, oneAPIReply())
			cfg := fmt.Sprintf("[audit]\nsyslog = %q\nsyslog_facility = \"local3\"\n%s", tc.scheme+"://"+rcv.addr, tc.extra) +
				routeConfig(fp.CAFile(t), "r", "clickatell-one", fp.URL("/v1/message"), "")
			p := startPostern(t, cfg, env())
			if status, body := p.Get(t, "proxy", clickatellIn, "/http/sendmsg?"+legacyQuery("15551234567", "marker text 7q")); status != 200 {
				t.Fatalf("got %d %q", status, body)
			}
			p.Get(t, "proxy", "evil.example", "/")
			// The sink's chain_start, then the two audit lines.
			waitFor(t, "three syslog messages", func() bool { return len(rcv.messages()) >= 3 })
			for i, m := range rcv.messages() {
				f := rfc5424.FindStringSubmatch(m)
				if f == nil {
					t.Fatalf("message %d is not RFC 5424: %q", i, m)
				}
				if f[1] != strconv.Itoa(19*8+6) {
					t.Errorf("PRI %s, want local3.info = %d", f[1], 19*8+6)
				}
				if _, err := time.Parse(time.RFC3339Nano, f[2]); err != nil {
					t.Errorf("TIMESTAMP %q: %v", f[2], err)
				}
				if f[4] != "postern" || f[5] != strconv.Itoa(os.Getpid()) || f[6] != "audit" || f[7] != "-" {
					t.Errorf("APP-NAME PROCID MSGID SD = %s %s %s %s, want postern <pid> audit -", f[4], f[5], f[6], f[7])
				}
				var line map[string]any
				if err := json.Unmarshal([]byte(f[8]), &line); err != nil {
					t.Errorf("MSG is not the JSON audit line: %q", f[8])
				}
				if want := []string{"", "delivered", "refused"}[i]; line["outcome"] != want && (i > 0 || line["msg"] != audit.MsgChainStart) {
					t.Errorf("message %d outcome %v msg %v, want %s", i, line["outcome"], line["msg"], want)
				}
				if line["seq"] != float64(i+1) || line["mac"] == nil {
					t.Errorf("message %d: seq %v mac %v, want seq %d and a mac", i, line["seq"], line["mac"], i+1)
				}
				mustNotContain(t, "syslog message", m, testToken, legacyPass, "marker text 7q")
			}
		})
	}
}

// TestAuditFileRotation: the file sink appends, follows a rotation tool
// that moves the file away, and reopens on Reopen (SIGHUP).
func TestAuditFileRotation(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "audit.log")
	fp := newFakeProvider(t, oneAPIReply())
	cfg := fmt.Sprintf("[audit]\nfile = %q\n", path) + routeConfig(fp.CAFile(t), "r", "clickatell-one", fp.URL("/v1/message"), "")
	p := startPostern(t, cfg, env())
	send := func() {
		if status, body := p.Get(t, "proxy", clickatellIn, "/http/sendmsg?"+legacyQuery("15551234567", "hi")); status != 200 {
			t.Fatalf("got %d %q", status, body)
		}
	}
	// lines counts audit lines; every file also begins with a chain_start.
	lines := func(name string) int {
		b, _ := os.ReadFile(name)
		return strings.Count(string(b), `"msg":"message"`)
	}
	send()
	send()
	waitFor(t, "two lines in the audit file", func() bool { return lines(path) == 2 })

	// logrotate without copytruncate: move, then the next line goes to a new file.
	if err := os.Rename(path, path+".1"); err != nil {
		t.Fatal(err)
	}
	send()
	waitFor(t, "a new audit file after rotation", func() bool { return lines(path) == 1 })
	if n := lines(path + ".1"); n != 2 {
		t.Errorf("rotated file has %d lines, want the 2 it had", n)
	}

	// SIGHUP: Reopen creates the file at once, before any line.
	if err := os.Rename(path, path+".2"); err != nil {
		t.Fatal(err)
	}
	p.Sinks.Reopen()
	waitFor(t, "the file reopened on Reopen", func() bool { _, err := os.Stat(path); return err == nil })
	send()
	waitFor(t, "a line in the reopened file", func() bool { return lines(path) == 1 })
	if st, err := os.Stat(path); err != nil || st.Mode().Perm()&0o007 != 0 {
		t.Errorf("audit file mode %v, want no access for others", st.Mode())
	}
}

// blockingWriter never returns until released: a console whose reader hung.
type blockingWriter struct{ release chan struct{} }

func (b blockingWriter) Write(p []byte) (int, error) { <-b.release; return len(p), nil }

// TestStuckSinkNeverBlocks: a sink that hangs or is down costs nothing but
// dropped (and counted) lines.
func TestStuckSinkNeverBlocks(t *testing.T) {
	bw := blockingWriter{release: make(chan struct{})}
	sinks, err := audit.OpenSinks(audit.Config{Console: "stdout", Queue: 2}, bw, io.Discard, nil)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		for range 10 {
			sinks.Write([]byte(`{"msg":"message"}` + "\n"))
		}
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Write blocked on a stuck sink")
	}
	if d := sinks.Dropped(); d < 7 {
		t.Errorf("dropped %d lines, want at least 7 (queue 2, one in the stuck write)", d)
	}
	close(bw.release)
	if err := sinks.Close(); err != nil {
		t.Fatal(err)
	}
	st := sinks.Stats()
	if len(st) != 1 || st[0].Written+st[0].Dropped != 10 {
		t.Errorf("stats %+v, want written+dropped = 10", st)
	}
}

// TestSyslogDownNeverBlocksDelivery: with the SIEM unreachable, messages
// are delivered and the lost audit lines are counted.
func TestSyslogDownNeverBlocksDelivery(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := ln.Addr().String()
	ln.Close() // nothing listens here now
	fp := newFakeProvider(t, oneAPIReply())
	cfg := fmt.Sprintf("[audit]\nsyslog = %q\n", "tcp://"+dead) + routeConfig(fp.CAFile(t), "r", "clickatell-one", fp.URL("/v1/message"), "")
	p := startPostern(t, cfg, env())
	for range 5 {
		if status, body := p.Get(t, "proxy", clickatellIn, "/http/sendmsg?"+legacyQuery("15551234567", "hi")); status != http.StatusOK {
			t.Fatalf("got %d %q, want delivery despite the syslog sink", status, body)
		}
	}
	waitFor(t, "5 dropped lines", func() bool { return p.Sinks.Dropped() == 5 })
	if !strings.Contains(p.Log.String(), "audit sink failing") {
		t.Errorf("the operational log does not say the sink is failing:\n%s", p.Log)
	}
}
