// Package redistest runs real redis-server processes for tests: on a free
// loopback port, without persistence, each owned by one test, which may
// kill (SIGKILL), pause (SIGSTOP), resume and restart it. Without
// redis-server the test is skipped, or fails in CI (internal/testtool).
package redistest

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/postern/postern/internal/testtool"
)

// SharedEnv names the variable holding host:port of a redis-server that
// .ci/run started for the whole run; tests that only need a server (and
// do not kill it) use it, each under its own key prefix.
const SharedEnv = "POSTERN_TEST_REDIS"

// Server is one redis-server process on loopback.
type Server struct {
	t    testing.TB
	bin  string
	dir  string
	Port int
	cmd  *exec.Cmd
	tls  []string // redis-server's TLS arguments; nil for plain TCP
}

// Start runs a redis-server on a free loopback port until the test ends.
func Start(t testing.TB) *Server {
	t.Helper()
	s := &Server{t: t, bin: testtool.Require(t, "redis-server"), dir: t.TempDir(), Port: freePort(t)}
	s.start()
	t.Cleanup(s.stop)
	return s
}

// StartTLS runs a redis-server that speaks only TLS, with the PEM
// certificate chain and key in certFile and keyFile (clients are not asked
// for certificates).
func StartTLS(t testing.TB, certFile, keyFile string) *Server {
	t.Helper()
	s := &Server{t: t, bin: testtool.Require(t, "redis-server"), dir: t.TempDir(), Port: freePort(t),
		tls: []string{"--tls-cert-file", certFile, "--tls-key-file", keyFile, "--tls-auth-clients", "no"}}
	s.start()
	t.Cleanup(s.stop)
	return s
}

// Shared returns the address of the run's shared redis-server (SharedEnv),
// or starts one for this test.
func Shared(t testing.TB) string {
	t.Helper()
	if addr := os.Getenv(SharedEnv); addr != "" {
		return addr
	}
	return Start(t).Addr()
}

// Prefix is a key prefix of the test's own on a shared server: the test's
// name and the time, so a second run of the test (go test -count=2, or a
// developer's long-lived server) never reads what an earlier run left in
// keys that have not expired yet.
func Prefix(t testing.TB, kind string) string {
	return fmt.Sprintf("%s-%s-%d:", kind, t.Name(), time.Now().UnixNano())
}

// Addr is the server's host:port.
func (s *Server) Addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(s.Port)) }

// URL is the server's redis:// URL.
func (s *Server) URL() string { return "redis://" + s.Addr() + "/0" }

func (s *Server) start() {
	s.t.Helper()
	args := []string{"--port", strconv.Itoa(s.Port)}
	if s.tls != nil {
		args = append([]string{"--port", "0", "--tls-port", strconv.Itoa(s.Port)}, s.tls...)
	}
	cmd := exec.Command(s.bin, append(args, "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--dir", s.dir, "--loglevel", "warning")...)
	out, err := cmd.StdoutPipe()
	if err != nil {
		s.t.Fatal(err)
	}
	cmd.Stderr = cmd.Stdout
	if err := cmd.Start(); err != nil {
		s.t.Fatalf("starting redis-server: %v", err)
	}
	go func() { // drain, so the server never blocks on its log
		sc := bufio.NewScanner(out)
		for sc.Scan() {
		}
	}()
	s.cmd = cmd
	deadline := time.Now().Add(10 * time.Second)
	for s.tls != nil { // a TLS server: wait for the port
		if c, err := net.DialTimeout("tcp", s.Addr(), time.Second); err == nil {
			c.Close()
			return
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("redis-server (TLS) on %s did not listen within 10s", s.Addr())
		}
		time.Sleep(20 * time.Millisecond)
	}
	for {
		if c, err := net.DialTimeout("tcp", s.Addr(), time.Second); err == nil {
			fmt.Fprint(c, "PING\r\n")
			line, _ := bufio.NewReader(c).ReadString('\n')
			c.Close()
			if strings.HasPrefix(line, "+PONG") {
				return
			}
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("redis-server on %s did not answer PING within 10s", s.Addr())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (s *Server) stop() {
	if s.cmd == nil {
		return
	}
	s.cmd.Process.Signal(syscall.SIGCONT)
	s.cmd.Process.Kill()
	s.cmd.Wait()
	s.cmd = nil
}

// Kill ends the server with SIGKILL: its data is gone.
func (s *Server) Kill() { s.t.Helper(); s.stop() }

// Pause stops the server with SIGSTOP: connections stay open, nothing is
// answered.
func (s *Server) Pause() {
	s.t.Helper()
	if err := s.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		s.t.Fatal(err)
	}
}

// Resume continues a paused server.
func (s *Server) Resume() {
	s.t.Helper()
	if err := s.cmd.Process.Signal(syscall.SIGCONT); err != nil {
		s.t.Fatal(err)
	}
}

// Restart starts a killed server again on the same port (empty).
func (s *Server) Restart() { s.t.Helper(); s.start() }

func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}
