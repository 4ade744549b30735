// Package smtpd is postern's SMTP front end: the listener that takes the
// mail Cisco ISE's "SMS Email Gateway" sends (<number>@<domain>, or
// Clickatell's SMTP API) and, for each message, drives the same stages the
// HTTP pipeline does — config routes (match_domain), guard, deliver.Deliver,
// audit and metrics — answering after DATA with the message's outcome
// (reply.go). It never queues and never relays except to [smtp] relay.
// go-smtp speaks the protocol; nothing of SMTP or MIME is written here.
package smtpd

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/postern/postern/proxy/audit"
	"github.com/postern/postern/proxy/config"
	"github.com/postern/postern/proxy/deliver"
	"github.com/postern/postern/proxy/guard"
	"github.com/postern/postern/proxy/metrics"
)

// ModeSMTP is the audit line's mode for mail.
const ModeSMTP = "smtp"

// Runtime is what one transaction uses of the configuration serving when
// it began (its MAIL command): a reload never changes a transaction
// half-way.
type Runtime struct {
	Config  *config.Config
	Guards  *guard.State
	Deliver *deliver.Deliverer
}

// Options are the server's parts it is given: the HTTP pipeline's, shared.
type Options struct {
	// Runtime returns the configuration serving now.
	Runtime func() Runtime
	// Audit counts a in the metrics and writes its audit line.
	Audit func(ctx context.Context, a *audit.Record)
	// Metrics receives rate-limit hits.
	Metrics *metrics.Metrics
	// Track marks one message in flight until the returned func is called.
	Track func() (done func())
	// StopSends is cancelled when the shutdown grace period is over: it
	// cuts off deliveries still running.
	StopSends context.Context
	// TLS is STARTTLS's certificate ([tls]); nil offers no STARTTLS.
	TLS *tls.Config
	Log *slog.Logger
}

// Server is the SMTP listener. Its [smtp] settings other than listen,
// hostname and max_message_bytes (which only a restart applies) are read
// from the serving configuration for each connection or transaction.
type Server struct {
	o   Options
	srv *smtp.Server

	mu       sync.Mutex
	conns    map[net.Conn]*connState // every accepted connection
	stopping atomic.Bool
	shutdown sync.Once
	drained  chan struct{} // closed when every connection has ended
}

// connState is what shutdown needs to know about one connection.
type connState struct {
	busy atomic.Bool // a message is being delivered and answered
}

// readTimeout is how long a client may be silent between commands (RFC
// 5321 4.5.3.2 asks for at least five minutes).
const readTimeout = 5 * time.Minute

// New returns a server for cfg's [smtp]. Nothing listens until Serve.
func New(cfg *config.Config, o Options) *Server {
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.StopSends == nil {
		o.StopSends = context.Background()
	}
	if o.Track == nil {
		o.Track = func() func() { return func() {} }
	}
	s := &Server{o: o, conns: map[net.Conn]*connState{}}
	srv := smtp.NewServer(s)
	srv.Domain = cfg.SMTP.Hostname
	srv.MaxMessageBytes = int64(cfg.SMTP.MaxMessageBytes)
	srv.MaxLineLength = 2000 // twice RFC 5321 4.5.3.1.6 (1000), as go-smtp does: lenient with mailers that overrun it
	srv.ReadTimeout = readTimeout
	srv.WriteTimeout = cfg.RequestTimeout + 30*time.Second
	srv.TLSConfig = o.TLS
	// AUTH only after STARTTLS: go-smtp then answers AUTH on a plain
	// connection with 523 5.7.10 and offers none in EHLO.
	srv.AllowInsecureAuth = false
	srv.ErrorLog = errorLog{o.Log}
	s.srv = srv
	return s
}

// errorLog receives go-smtp's internal errors, which quote the client's
// address and a connection error, never a command or message.
type errorLog struct{ log *slog.Logger }

func (e errorLog) Printf(format string, v ...any) {
	e.log.Debug("smtp connection ended", "err", fmt.Sprintf(format, v...))
}
func (e errorLog) Println(v ...any) { e.log.Debug("smtp connection ended", "err", fmt.Sprint(v...)) }

// Serve accepts connections on ln until Shutdown. A client outside
// allow_clients is answered 554 5.7.1 before the greeting and let go.
func (s *Server) Serve(ln net.Listener) error {
	err := s.srv.Serve(&admitListener{Listener: ln, s: s})
	if s.stopping.Load() || errors.Is(err, smtp.ErrServerClosed) {
		return nil
	}
	return err
}

// Shutdown stops accepting, closes idle connections at once and those
// delivering a message once their answer is written, and waits until none
// is left or ctx ends (then it returns ctx's error; call it again to wait
// longer, or Close).
func (s *Server) Shutdown(ctx context.Context) error {
	s.stopping.Store(true)
	s.shutdown.Do(func() {
		s.drained = make(chan struct{})
		go func() {
			s.srv.Shutdown(context.Background()) // returns once every connection has ended
			close(s.drained)
		}()
	})
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		s.closeIdle()
		select {
		case <-s.drained:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
	}
}

// Close closes the listener and every connection at once.
func (s *Server) Close() error {
	s.stopping.Store(true)
	if err := s.srv.Close(); err != nil && !errors.Is(err, smtp.ErrServerClosed) {
		return err
	}
	return nil
}

func (s *Server) closeIdle() {
	var idle []net.Conn
	s.mu.Lock()
	for c, st := range s.conns {
		if !st.busy.Load() {
			idle = append(idle, c)
		}
	}
	s.mu.Unlock()
	// Closing untracks, which takes s.mu.
	for _, c := range idle {
		c.Close()
	}
}

func (s *Server) track(c net.Conn) {
	s.mu.Lock()
	s.conns[c] = &connState{}
	s.mu.Unlock()
}

func (s *Server) untrack(c net.Conn) {
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
}

func (s *Server) state(c *smtp.Conn) *connState {
	raw := c.Conn()
	if tc, ok := raw.(*tls.Conn); ok {
		raw = tc.NetConn()
	}
	if tc, ok := raw.(*trackedConn); ok {
		raw = tc
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if st := s.conns[raw]; st != nil {
		return st
	}
	return &connState{}
}

// admitListener refuses clients outside allow_clients before go-smtp
// greets them, and tracks every connection it lets through.
type admitListener struct {
	net.Listener
	s *Server
}

func (l *admitListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		ip := addrOf(c.RemoteAddr())
		rt := l.s.o.Runtime()
		if !rt.Config.ClientAllowed(ip) {
			go l.s.refuseConn(c, ip)
			continue
		}
		tc := &trackedConn{Conn: c, s: l.s}
		l.s.track(tc)
		return tc, nil
	}
}

// refuseConn answers a client outside allow_clients and audits it.
func (s *Server) refuseConn(c net.Conn, ip netip.Addr) {
	defer c.Close()
	r := replyClientNotAllowed
	c.SetWriteDeadline(time.Now().Add(10 * time.Second))
	fmt.Fprintf(c, "%d %d.%d.%d %s\r\n", r.code, r.ec[0], r.ec[1], r.ec[2], r.text)
	a := &audit.Record{Client: ip.String(), Mode: ModeSMTP, Method: "CONN"}
	s.refused(a, r, time.Now())
}

// trackedConn leaves the server's set when closed.
type trackedConn struct {
	net.Conn
	s    *Server
	once sync.Once
}

func (c *trackedConn) Close() error {
	c.once.Do(func() { c.s.untrack(c) })
	return c.Conn.Close()
}

func addrOf(a net.Addr) netip.Addr {
	if ta, ok := a.(*net.TCPAddr); ok {
		ip, _ := netip.AddrFromSlice(ta.IP)
		return ip.Unmap()
	}
	ap, err := netip.ParseAddrPort(a.String())
	if err != nil {
		return netip.Addr{}
	}
	return ap.Addr().Unmap()
}

// NewSession starts a session at EHLO or HELO.
func (s *Server) NewSession(c *smtp.Conn) (smtp.Session, error) {
	return &session{s: s, conn: c, client: addrOf(c.Conn().RemoteAddr()).String(), state: s.state(c)}, nil
}

// refused counts and audits a refusal answered with r.
func (s *Server) refused(a *audit.Record, r *reply, start time.Time) {
	a.Outcome, a.Status, a.Reason, a.Refusal = "refused", r.code, r.reason, r.label
	a.Latency = time.Since(start)
	s.o.Audit(context.Background(), a)
}
