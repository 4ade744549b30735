package proxy

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"log/slog"
	"math"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/elazarl/goproxy"

	"github.com/postern/postern/proxy/audit"
	"github.com/postern/postern/proxy/config"
	"github.com/postern/postern/trust"
)

// interceptMode marks requests read from inside an intercepted CONNECT
// tunnel. Each request read there is handed to handle with a ProxyCtx whose
// UserData is the tunnel's session, which is how handle learns where a
// request came from.
const interceptMode = "intercept"

// Limits inside an intercepted tunnel, the same as the plain listener's
// http.Server (see NewHTTPServer): the time to finish reading a request
// once its headers are in, how long an idle tunnel is kept open, and how
// long writing one reply may take.
const (
	tunnelReadTimeout  = 30 * time.Second
	tunnelIdleTimeout  = 120 * time.Second
	tunnelWriteTimeout = 10 * time.Second
	// tunnelDrainBytes is how much of an unread request body is skipped to
	// keep a tunnel open for the next request; past it, the tunnel closes.
	tunnelDrainBytes = 256 << 10
)

// interceptSession is one accepted CONNECT; every request read inside its
// tunnel carries it.
type interceptSession struct {
	proxyUser string // "" when proxy authentication is off
	host      string // the CONNECT's host, lower case, without port
}

// tunnelSession returns the session of a request read inside an intercepted
// CONNECT, or nil.
func tunnelSession(ctx *goproxy.ProxyCtx) *interceptSession {
	if ctx == nil {
		return nil
	}
	sess, _ := ctx.UserData.(*interceptSession)
	return sess
}

// requestMode says how a request reached the pipeline, for the audit line:
// "intercept" inside a CONNECT tunnel, "direct" for origin-form, else
// "proxy".
func requestMode(ctx *goproxy.ProxyCtx) string {
	if tunnelSession(ctx) != nil {
		return interceptMode
	}
	if ctx != nil {
		if _, ok := ctx.UserData.(directRequest); ok {
			return "direct"
		}
	}
	return "proxy"
}

// serveTunnel runs an accepted CONNECT on the hijacked client connection:
// it answers 200, terminates TLS with a leaf for the CONNECT host from the
// interception CA (a tunnel that does not start with a TLS handshake is
// read as plain HTTP), and then reads requests one after another, each
// through handle, until the client closes, goes idle, or sends something
// that ends the connection.
//
// A request that cannot be read is answered 400 "ERR: 101, Invalid or
// missing parameters" and audited as refused, and the tunnel closes (its
// framing is lost). Nothing of what was read is logged: the parser's errors
// quote the request line, which holds the message text and the legacy
// password.
func (s *Server) serveTunnel(connectReq *http.Request, raw net.Conn, sess *interceptSession) {
	defer raw.Close()
	t := s.tunnels.add(raw)
	defer s.tunnels.remove(t)
	client := clientIP(connectReq).String()

	raw.SetWriteDeadline(time.Now().Add(tunnelWriteTimeout))
	if _, err := io.WriteString(raw, "HTTP/1.1 200 OK\r\n\r\n"); err != nil {
		return
	}
	raw.SetDeadline(time.Now().Add(s.Config().Guards.HeaderReadTimeout))
	peek := bufio.NewReader(raw)
	first, err := peek.Peek(1)
	if err != nil {
		return
	}
	var conn net.Conn = &bufferedConn{Conn: raw, r: peek}
	scheme := "http"
	if first[0] == 0x16 { // a TLS handshake record
		tc, err := s.handshakeTunnel(conn, sess.host)
		if err != nil {
			s.log.Info("intercepted CONNECT: TLS handshake with the client failed", "client", client, "host", sess.host,
				"reason", handshakeReason(err))
			return
		}
		conn, scheme = tc, "https"
	}
	t.setConn(conn)

	// Headers are read through a limit (as net/http does), so a client
	// cannot make postern buffer an endless request line or header block.
	limit := &io.LimitedReader{R: conn}
	br := bufio.NewReader(limit)
	bw := bufio.NewWriter(conn)
	for {
		cfg := s.Config()
		conn.SetReadDeadline(time.Now().Add(tunnelIdleTimeout))
		if !t.waitIdle() {
			return // shutting down
		}
		limit.N = maxHeaderBytes + 4096
		if _, err := br.Peek(1); err != nil {
			return // closed, idle too long, or shut down: nothing to answer
		}
		t.busy()
		conn.SetReadDeadline(time.Now().Add(cfg.Guards.HeaderReadTimeout))
		req, err := http.ReadRequest(br)
		if err != nil {
			s.refuseTunnelRequest(conn, bw, client, sess, "", unreadableReason(err, limit.N <= 0))
			closeAfterReply(conn, raw)
			return
		}
		limit.N = math.MaxInt64 // the body is bounded where it is read (max_body_bytes)
		conn.SetReadDeadline(time.Now().Add(tunnelReadTimeout))
		if !s.serveTunnelRequest(conn, bw, req, client, sess, scheme, t) {
			closeAfterReply(conn, raw)
			return
		}
	}
}

// closeAfterReply ends a tunnel whose last reply was just written, as
// net/http does after a reply it closes on: the client may still be sending
// (the rest of an oversized or unread request), and closing a socket with
// unread input makes the kernel send a reset, which can destroy the reply
// before the client reads it. So postern signals the end (TLS
// close_notify, then a TCP half-close) and reads and discards what still
// arrives, for a moment, before the deferred close.
func closeAfterReply(conn, raw net.Conn) {
	if tc, ok := conn.(*tls.Conn); ok {
		tc.SetWriteDeadline(time.Now().Add(tunnelWriteTimeout))
		tc.CloseWrite()
	}
	if cw, ok := raw.(interface{ CloseWrite() error }); ok {
		cw.CloseWrite()
	}
	raw.SetReadDeadline(time.Now().Add(closeLinger))
	io.CopyN(io.Discard, raw, closeLingerBytes)
}

// How long and how much closeAfterReply reads before closing (net/http
// waits 500 ms).
const (
	closeLinger      = 500 * time.Millisecond
	closeLingerBytes = 1 << 20
)

// handshakeReason is the log's account of a failed handshake with the
// client. A TLS error can quote what the client offered (its ALPN
// protocols), so only fixed texts are passed on: the alert the client sent
// (for example "remote error: tls: unknown certificate authority" when ISE
// does not trust the interception CA yet) or a timeout.
func handshakeReason(err error) string {
	var ne net.Error
	switch {
	case errors.As(err, &ne) && ne.Timeout(), errors.Is(err, context.DeadlineExceeded):
		return "no TLS handshake within header_read_timeout"
	case strings.HasPrefix(err.Error(), "remote error: tls: ") && len(err.Error()) < 80:
		return err.Error()
	}
	return "TLS handshake failed"
}

// handshakeTunnel terminates the client's TLS inside the tunnel with a leaf
// for host.
func (s *Server) handshakeTunnel(conn net.Conn, host string) (*tls.Conn, error) {
	cfg, err := s.opts.InterceptCA.ServerTLSConfig(host)
	if err != nil {
		return nil, err
	}
	cfg.NextProtos = []string{"http/1.1"} // postern reads HTTP/1.x only
	tc := tls.Server(conn, cfg)
	ctx, cancel := context.WithTimeout(context.Background(), s.Config().Guards.HeaderReadTimeout)
	defer cancel()
	if err := tc.HandshakeContext(ctx); err != nil {
		return nil, err
	}
	return tc, nil
}

// unreadableReason is the audit reason for a request that could not be
// read: a fixed phrase chosen by the kind of failure, never the parser's
// error, which quotes the offending bytes.
func unreadableReason(err error, overLimit bool) string {
	var ne net.Error
	switch {
	case overLimit:
		return "unreadable request: headers too large"
	case errors.As(err, &ne) && ne.Timeout():
		return "unreadable request: headers not received in time"
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "unreadable request: connection closed mid-request"
	}
	return "unreadable request: malformed request line or headers"
}

// serveTunnelRequest checks one request read inside the tunnel, runs it
// through handle, and writes the reply. It reports whether the tunnel may
// carry another request.
func (s *Server) serveTunnelRequest(conn net.Conn, bw *bufio.Writer, req *http.Request, client string, sess *interceptSession,
	scheme string, t *tunnel) bool {
	// The tunnel was accepted, and its certificate minted, for one host: a
	// request inside it names that host or none.
	host := req.Host
	if req.URL.IsAbs() {
		if req.URL.Scheme != scheme {
			s.refuseTunnelRequest(conn, bw, client, sess, req.Method, "request URL scheme does not match the tunnel")
			return false
		}
		host = req.URL.Host
	}
	if host == "" {
		host = sess.host
	}
	if !namesHost(host, sess.host) {
		s.refuseTunnelRequest(conn, bw, client, sess, req.Method, "Host does not name the tunnel's host")
		return false
	}
	req.URL.Scheme, req.URL.Host = scheme, host
	req.RemoteAddr = conn.RemoteAddr().String()
	// The hijacked connection has no net/http server to send 100 Continue
	// when the body is first read.
	body := &continueBody{ReadCloser: req.Body, conn: conn,
		expect: req.ProtoAtLeast(1, 1) && req.ContentLength != 0 && strings.EqualFold(req.Header.Get("Expect"), "100-continue")}
	req.Body = body
	req = req.WithContext(context.Background())

	_, resp := s.handle(req, &goproxy.ProxyCtx{Req: req, Proxy: s.gp, UserData: sess})
	defer resp.Body.Close()

	// The next request starts where this one's body ends: skip what handle
	// did not read, or close if that is too much or was never sent.
	keep := !req.Close && !t.draining()
	if body.expect && !body.sent {
		keep = false // the client may or may not send the body now
	} else if _, err := io.CopyN(io.Discard, req.Body, tunnelDrainBytes); err != io.EOF {
		keep = false
	}
	resp.Close = resp.Close || !keep
	resp.Proto, resp.ProtoMajor, resp.ProtoMinor = "HTTP/1.1", 1, 1
	conn.SetWriteDeadline(time.Now().Add(tunnelWriteTimeout))
	if err := resp.Write(bw); err != nil {
		return false
	}
	return bw.Flush() == nil && !resp.Close
}

// namesHost reports whether a request's host (a Host header or an
// absolute URL's host, with an optional numeric port) is want.
func namesHost(host, want string) bool {
	if h, port, err := net.SplitHostPort(host); err == nil {
		if _, err := strconv.ParseUint(port, 10, 16); err != nil {
			return false
		}
		host = h
	}
	return strings.EqualFold(strings.Trim(host, "[]"), want)
}

// refuseTunnelRequest answers a request inside the tunnel that postern will
// not take with 400 "ERR: 101, Invalid or missing parameters", audits it as
// refused, and ends the tunnel: after such a request the connection's
// framing cannot be trusted.
func (s *Server) refuseTunnelRequest(conn net.Conn, bw *bufio.Writer, client string, sess *interceptSession, method, reason string) {
	ref := refuseInTunnel(reason)
	a := &audit.Record{Client: client, ProxyUser: sess.proxyUser, Mode: interceptMode, Method: method}
	ref.record(a, ref.status, nil)
	s.writeAudit(context.Background(), a)
	resp := &http.Response{
		StatusCode: ref.status, ProtoMajor: 1, ProtoMinor: 1,
		Header: http.Header{"Content-Type": {unreadableReply.ContentType}, "Cache-Control": {"no-store"},
			"X-Content-Type-Options": {"nosniff"}, "Content-Length": {strconv.Itoa(len(ref.body))}},
		ContentLength: int64(len(ref.body)),
		Body:          io.NopCloser(strings.NewReader(ref.body)),
		Close:         true,
	}
	conn.SetWriteDeadline(time.Now().Add(tunnelWriteTimeout))
	if resp.Write(bw) == nil {
		bw.Flush()
	}
}

// ReportInterceptCA logs, at start-up, whether the interception CA can
// serve hosts: an error for hosts outside its name constraints (their
// CONNECTs are refused), a warning for a CA without constraints (made by an
// earlier postern), each with how to make a new CA.
func ReportInterceptCA(log *slog.Logger, ic *trust.InterceptCA, hosts []string) {
	f := ic.Fit(hosts)
	if len(f.Outside) > 0 {
		log.Error("the interception CA does not permit every [intercept] host; CONNECT to those is refused",
			"outside", f.Outside, "ca_permits", f.Permitted, "ca_file", f.CertFile, "fix", f.NewCAHowTo())
	}
	if !f.Constrained {
		log.Warn("the interception CA has no name constraints (made by an earlier postern): whoever trusts it trusts it for every host name",
			"ca_file", f.CertFile, "fix", f.NewCAHowTo())
	}
}

// InterceptCAReport is `postern check`'s verdict on the interception CA in
// c's data_dir against [intercept] hosts: msg is "" when there is nothing to
// say; problem is true when some hosts cannot be intercepted with it.
func InterceptCAReport(c *config.Config) (msg string, problem bool) {
	if len(c.InterceptHosts) == 0 || c.DataDir == "" {
		return "", false
	}
	f, exists, err := trust.InspectInterceptCA(c.DataDir, c.InterceptHosts)
	switch {
	case err != nil:
		return "note: cannot check the interception CA's name constraints: " + err.Error(), false
	case !exists:
		return "", false
	case len(f.Outside) > 0:
		return "problem: " + f.Problem(), true
	case !f.Constrained:
		return "note: " + f.Notice(), false
	}
	return "", false
}
