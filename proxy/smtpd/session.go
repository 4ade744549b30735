package smtpd

import (
	"bytes"
	"context"
	"errors"
	"io"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	"github.com/postern/postern/proxy/audit"
	"github.com/postern/postern/proxy/config"
	"github.com/postern/postern/proxy/deliver"
	"github.com/postern/postern/proxy/metrics"
	"github.com/postern/postern/proxy/store"
	"github.com/postern/postern/rewrite"
)

// maxRelayRecipients bounds the recipients of one relayed transaction
// (RFC 5321 4.5.3.1.8's minimum). SMS recipients are bounded by their
// route's max_recipients.
const maxRelayRecipients = 100

// maxAsked bounds what a refused command's audit line repeats of it.
const maxAsked = 256

// session is one client connection, from EHLO to QUIT. A transaction
// (MAIL to the end of DATA or RSET) collects its recipients by route; DATA
// sends one message per route.
type session struct {
	s      *Server
	conn   *smtp.Conn
	client string
	state  *connState
	authed bool

	// The transaction.
	rt      Runtime
	from    string
	groups  []*group
	relay   *relay
	relayed int
}

// group is the recipients of one transaction that one route takes.
type group struct {
	route   *config.Route
	rcpts   []string // envelope addresses, as given
	numbers []string // their numbers, admitted by the guardrails ("" entries never)
}

var (
	_ smtp.Session     = (*session)(nil)
	_ smtp.AuthSession = (*session)(nil)
)

func (ss *session) record(method string) *audit.Record {
	return &audit.Record{Client: ss.client, Mode: ModeSMTP, Method: method, MailFrom: asked(ss.from)}
}

func (ss *session) refuse(a *audit.Record, r *reply) error {
	ss.s.refused(a, r, time.Now())
	return r.err()
}

// AuthMechanisms offers PLAIN and LOGIN when [smtp] auth_user is set;
// go-smtp offers them only over TLS.
func (ss *session) AuthMechanisms() []string {
	if ss.s.o.Runtime().Config.SMTP.AuthUser == "" {
		return nil
	}
	return []string{sasl.Plain, sasl.Login}
}

// Auth checks auth_user and auth_password.
func (ss *session) Auth(mech string) (sasl.Server, error) {
	cfg := ss.s.o.Runtime().Config
	if cfg.SMTP.AuthUser == "" {
		return nil, smtp.ErrAuthUnsupported
	}
	check := func(user, password string) error {
		if !cfg.SMTP.AuthMatch(user, password) {
			a := ss.record("AUTH")
			ss.s.refused(a, &reply{535, smtp.EnhancedCode{5, 7, 8}, "", metrics.RefusalAuthFailed, "smtp authentication failed"}, time.Now())
			return smtp.ErrAuthFailed
		}
		ss.authed = true
		return nil
	}
	switch mech {
	case sasl.Plain:
		return sasl.NewPlainServer(func(identity, user, password string) error {
			if identity != "" && identity != user {
				return smtp.ErrAuthFailed
			}
			return check(user, password)
		}), nil
	case sasl.Login:
		return &loginServer{check: check}, nil
	}
	return nil, smtp.ErrAuthUnknownMechanism
}

// loginServer is the server side of SASL LOGIN (draft-murchison-sasl-login),
// which go-sasl only has a client for: a username and a password prompt.
type loginServer struct {
	step  int
	user  string
	check func(user, password string) error
}

func (l *loginServer) Next(resp []byte) ([]byte, bool, error) {
	switch l.step {
	case 0:
		l.step = 1
		if resp == nil {
			return []byte("Username:"), false, nil
		}
		fallthrough
	case 1:
		l.user, l.step = string(resp), 2
		return []byte("Password:"), false, nil
	}
	return nil, true, l.check(l.user, string(resp))
}

// Mail starts a transaction on the configuration serving now.
func (ss *session) Mail(from string, opts *smtp.MailOptions) error {
	ss.Reset()
	rt := ss.s.o.Runtime()
	cfg := &rt.Config.SMTP
	ss.from = from
	a := ss.record("MAIL")
	_, isTLS := ss.conn.TLSConnectionState()
	switch {
	case cfg.RequireTLS && !isTLS:
		return ss.refuse(a, replyNeedTLS)
	case cfg.AuthUser != "" && !ss.authed:
		return ss.refuse(a, replyNeedAuth)
	case opts != nil && opts.Size > int64(cfg.MaxMessageBytes):
		return ss.refuse(a, replyTooBig)
	}
	v := rt.Guards.AllowClient(context.Background(), ss.client)
	a.Store = store.Note(a.Store, v.Store)
	switch {
	case v.Err != nil:
		return ss.refuse(a, replyStoreDown)
	case v.Limit != "":
		ss.s.o.Metrics.RateLimitHit(metrics.LimitPerClient)
		return ss.refuse(a, replyPerClient)
	}
	ss.rt = rt
	return nil
}

// Rcpt takes a recipient only when a route takes its domain and its
// number passes the guardrails, or when [smtp] relay takes what no route
// does; anything else is refused here, before DATA.
func (ss *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	cfg := ss.rt.Config
	a := ss.record("RCPT")
	domain := ""
	if i := strings.LastIndexByte(to, '@'); i >= 0 {
		domain = to[i+1:]
	}
	route := cfg.MatchMail(domain)
	if route == nil {
		a.Host = asked(domain)
		if cfg.SMTP.Relay == "" {
			return ss.refuse(a, replyRelayDenied)
		}
		return ss.relayRcpt(a, to)
	}
	a.Route, a.Provider = route.Name, route.ProviderName
	if ss.relay != nil {
		return ss.refuse(a, replyMixed)
	}
	g := ss.group(route)
	if len(g.rcpts) >= route.MaxRecipients {
		return ss.refuse(a, replyTooManyRcpts)
	}
	n, err := route.Mail.Recipient(to)
	if err != nil {
		return ss.refuse(a, replyBadMailbox)
	}
	if n != "" && !slices.Contains(g.numbers, n) {
		a.To = audit.MaskAll([]string{n})
		countries, reason := ss.rt.Guards.CheckDestinations([]string{n})
		a.Country = countries
		if reason != "" {
			return ss.refuse(a, replyDestination(reason, false))
		}
		v := ss.rt.Guards.AdmitMessage(context.Background(), []string{n})
		a.Store = store.Note(a.Store, v.Store)
		if v.Err != nil {
			return ss.refuse(a, replyStoreDown)
		}
		if v.Limit != "" {
			ss.s.o.Metrics.RateLimitHit(v.Limit)
			return ss.refuse(a, replyRateLimit(v.Limit, false))
		}
		g.numbers = append(g.numbers, n)
	}
	g.rcpts = append(g.rcpts, to)
	return nil
}

func (ss *session) group(r *config.Route) *group {
	for _, g := range ss.groups {
		if g.route == r {
			return g
		}
	}
	g := &group{route: r}
	ss.groups = append(ss.groups, g)
	return g
}

// relayRcpt passes a recipient no route takes to [smtp] relay, opening
// the relay's transaction with the first one.
func (ss *session) relayRcpt(a *audit.Record, to string) error {
	if len(ss.groups) > 0 {
		return ss.refuse(a, replyMixed)
	}
	if ss.relayed >= maxRelayRecipients {
		return ss.refuse(a, replyTooManyRcpts)
	}
	if ss.relay == nil {
		cfg := ss.rt.Config
		r, err := dialRelay(context.Background(), cfg.SMTP.Relay, cfg.SMTP.Hostname, cfg.Roots)
		if err != nil {
			ss.s.o.Log.Warn("cannot reach the SMTP relay", "relay", cfg.SMTP.Relay, "err", err)
			return ss.refuse(a, replyRelayUnreachable)
		}
		if err := r.mail(ss.from); err != nil {
			r.close()
			return relayReply(err)
		}
		ss.relay = r
	}
	if err := ss.relay.rcpt(to); err != nil {
		return relayReply(err)
	}
	ss.relayed++
	return nil
}

// Data reads the message and answers with its outcome: the relay's answer
// for relayed mail, else one message per route sent and the worst of
// their outcomes (reply.go). It never answers before the outcome is known.
func (ss *session) Data(r io.Reader) error {
	ss.state.busy.Store(true) // until Reset, which go-smtp calls after the answer
	defer ss.s.o.Track()()
	start := time.Now()
	data, err := io.ReadAll(r)
	if err != nil {
		var se *smtp.SMTPError
		if errors.As(err, &se) && se.Code == smtp.ErrDataTooLarge.Code {
			ss.s.refused(ss.record("DATA"), replyTooBig, start)
			return replyTooBig.err()
		}
		return err
	}
	if bareLF(data) {
		ss.s.refused(ss.record("DATA"), replyBareLF, start)
		return replyBareLF.err()
	}
	if ss.relay != nil {
		return ss.relayData(data, start)
	}
	replies := make([]*reply, 0, len(ss.groups))
	for _, g := range ss.groups {
		replies = append(replies, ss.message(g, data, start))
	}
	return worst(replies).err()
}

func (ss *session) relayData(data []byte, start time.Time) error {
	a := ss.record("DATA")
	a.Outcome, a.Reason = "relayed", "passed to [smtp] relay"
	text, err := ss.relay.data(data)
	var answer *smtp.SMTPError
	if err != nil {
		e := relayReply(err)
		answer, _ = e.(*smtp.SMTPError)
		a.Outcome, a.Reason = "refused", "relay refused the message"
	} else {
		answer = &smtp.SMTPError{Code: 250, EnhancedCode: smtp.EnhancedCode{2, 0, 0}, Message: text}
	}
	a.Status, a.Latency = answer.Code, time.Since(start)
	ss.s.o.Audit(context.Background(), a)
	return answer
}

// message sends what one route takes of the transaction, audits it and
// returns its reply.
func (ss *session) message(g *group, data []byte, start time.Time) *reply {
	route, cfg := g.route, ss.rt.Config
	a := ss.record("DATA")
	a.Route, a.Provider = route.Name, route.ProviderName
	refuse := func(r *reply, code string) *reply {
		a.Code = code
		ss.s.refused(a, r, start)
		return r
	}
	msg, creds, err := route.Mail.ParseMail(rewrite.Mail{Recipients: g.rcpts, Data: data})
	if err != nil {
		var e *rewrite.Error
		if !errors.As(err, &e) {
			e = rewrite.BadRequest(rewrite.CodeMissingParams, "Invalid or missing parameters")
		}
		r := replyParse(e)
		r.reason = cfg.Redact(errorReason(e))
		return refuse(r, e.Code)
	}
	if route.Legacy.Required() && !route.Legacy.Match(creds) {
		return refuse(replyLegacyAuth, rewrite.CodeAuthFailed)
	}
	a.To, a.Chars = audit.MaskAll(msg.To), utf8.RuneCountInString(msg.Text)
	a.Segments = rewrite.CountSegments(msg.Text).Count
	if a.Segments > route.MaxSegments {
		return refuse(replyParse(rewrite.BadRequest(rewrite.CodeTooManyParts, "Maximum message parts exceeded")), rewrite.CodeTooManyParts)
	}
	countries, reason := ss.rt.Guards.CheckDestinations(msg.To)
	a.Country = countries
	if len(g.numbers) == 0 {
		// The numbers came with the body: the guardrails apply now.
		if reason != "" {
			return refuse(replyDestination(reason, true), rewrite.CodeCannotRoute)
		}
		v := ss.rt.Guards.AdmitMessage(context.Background(), msg.To)
		a.Store = store.Note(a.Store, v.Store)
		if v.Err != nil {
			return refuse(replyStoreDown, rewrite.CodeInternal)
		}
		if v.Limit != "" {
			ss.s.o.Metrics.RateLimitHit(v.Limit)
			return refuse(replyRateLimit(v.Limit, true), rewrite.CodeThrottled)
		}
	}
	d := ss.deliver(route, msg)
	a.ClientMsgID, a.Joined = d.ClientMsgID, d.Joined
	a.Store = store.Note(a.Store, d.Store)
	if d.Busy {
		return refuse(replyBusy, rewrite.CodeInternal)
	}
	if d.StoreDown {
		return refuse(replyStoreDown, rewrite.CodeInternal)
	}
	a.TLS, a.Leaf, a.Attempts = d.Info.TLSVersion, d.Info.LeafSHA256, d.Attempts
	outcome, code, why := deliver.Summarize(d.Result)
	var r *reply
	switch outcome {
	case "delivered", audit.OutcomeSandbox:
		for _, rc := range d.Result.Recipients {
			a.IDs = append(a.IDs, rc.ID)
		}
		r = replyDelivered(a.IDs)
	case "partial":
		r = replyPartial
	case "unknown":
		r = replyUnknown
	default:
		r = replyUnknown
		for _, rc := range d.Result.Recipients {
			if rc.Err != nil {
				r = replyProvider(rc.Err)
				break
			}
		}
	}
	for _, rc := range d.Result.Recipients {
		if rc.ID != "" && outcome == "partial" {
			a.IDs = append(a.IDs, rc.ID)
		}
	}
	a.Outcome, a.Status, a.Code, a.Reason = outcome, r.code, code, cfg.Redact(why)
	a.Latency = time.Since(start)
	ss.s.o.Audit(context.Background(), a)
	return r
}

// deliver sends msg like the HTTP pipeline does: once accepted it is
// finished whatever the client does, within request_timeout, and only the
// end of the shutdown grace period cuts it short.
func (ss *session) deliver(route *config.Route, msg rewrite.Message) deliver.Delivery {
	ctx := deliver.NewSendContext(ss.s.o.StopSends, ss.rt.Config.RequestTimeout)
	defer ctx.End()
	return ss.rt.Deliver.Deliver(ctx, route, msg)
}

// Reset ends the transaction (RSET, a new MAIL, the end of DATA).
func (ss *session) Reset() {
	ss.relay.close()
	ss.rt, ss.groups, ss.relay, ss.relayed = Runtime{}, nil, nil, 0
	ss.state.busy.Store(false)
}

// Logout ends the session.
func (ss *session) Logout() error {
	ss.Reset()
	return nil
}

// bareLF reports whether data has a line feed not preceded by a carriage
// return: SMTP ends lines with CRLF, and a bare LF is how SMTP smuggling
// hides a second message in the first.
func bareLF(data []byte) bool {
	for i := bytes.IndexByte(data, '\n'); i >= 0; {
		if i == 0 || data[i-1] != '\r' {
			return true
		}
		j := bytes.IndexByte(data[i+1:], '\n')
		if j < 0 {
			return false
		}
		i += 1 + j
	}
	return false
}

// errorReason is an error's description and cause, as the audit line
// states it.
func errorReason(e *rewrite.Error) string {
	if e.Cause == nil {
		return e.Description
	}
	return e.Description + ": " + e.Cause.Error()
}

// asked returns s for an audit line, cut to maxAsked bytes.
func asked(s string) string {
	if len(s) <= maxAsked {
		return s
	}
	return strings.ToValidUTF8(s[:maxAsked], "") + "..."
}
