package proxy

import (
	"io"
	"mime"
	"net/http"
	"net/netip"
	"strings"

	"github.com/elazarl/goproxy"

	"github.com/postern/postern/proxy/config"
	"github.com/postern/postern/rewrite"
)

// maxHeaderBytes limits request headers. ISE's requests are a few hundred
// bytes; anything far larger is a mistake or an attack. URL and body limits
// are configurable (max_url_bytes, max_body_bytes).
const maxHeaderBytes = 32 << 10

// directRequest is the UserData of the ProxyCtx an origin-form request is
// handled with: it marks the request "direct" for the audit line.
type directRequest struct{}

// direct serves origin-form requests ("GET /http/sendmsg?..."), sent when
// ISE's SMS URL names postern or when DNS points the provider's name at
// postern. The URL is made absolute from the Host header, so all three ways
// in share one pipeline.
func (s *Server) direct(w http.ResponseWriter, r *http.Request) {
	makeAbsolute(r)
	s.servePipeline(w, r)
}

// makeAbsolute makes an origin-form request's URL absolute from its Host
// header.
func makeAbsolute(r *http.Request) {
	r.URL.Scheme = "http"
	r.URL.Host = r.Host
}

// serveFront answers a request the plain listener's front (proxy/inbound)
// read itself, as net/http and goproxy would have passed it to handle: an
// origin-form request as direct does, an absolute-form one (http:// only)
// as goproxy's proxy path does, with a ProxyCtx of no session.
func (s *Server) serveFront(r *http.Request) *http.Response {
	pctx := &goproxy.ProxyCtx{Req: r, Proxy: s.gp}
	if !r.URL.IsAbs() {
		makeAbsolute(r)
		pctx.UserData = directRequest{}
	}
	return s.serve(r, pctx, true)
}

// servePipeline runs one origin-form request, already made absolute by
// direct, through handle and writes its answer as goproxy would: the
// response's headers, status and body. goproxy hands origin-form requests to
// its NonproxyHandler (direct); sending them back into goproxy would only
// repeat its per-request work (URL formatting for a debug log that is off)
// before reaching the same handle. Absolute-form requests and CONNECT go
// through goproxy itself.
func (s *Server) servePipeline(w http.ResponseWriter, r *http.Request) {
	_, resp := s.handle(r, &goproxy.ProxyCtx{Req: r, Proxy: s.gp, UserData: directRequest{}})
	defer resp.Body.Close()
	h := w.Header()
	for k, vs := range resp.Header {
		h[k] = append(h[k], vs...)
	}
	w.WriteHeader(resp.StatusCode)
	io.Copy(w, resp.Body)
}

// readInbound copies what a dialect may look at out of r, within limits.
func readInbound(r *http.Request, g *config.Guards) (rewrite.Inbound, *rewrite.Error) {
	in := rewrite.Inbound{Method: r.Method, Host: config.HostOnly(r.URL.Host), Path: r.URL.Path, RawQuery: r.URL.RawQuery}
	if len(r.URL.RawQuery)+len(r.URL.Path) > g.MaxURLBytes {
		return in, &rewrite.Error{Status: http.StatusRequestURITooLong, Code: rewrite.CodeMissingParams,
			Description: "Invalid or missing parameters: URL too long", Outcome: rewrite.Refused}
	}
	if ct := r.Header.Get("Content-Type"); ct != "" {
		if mt, _, err := mime.ParseMediaType(ct); err == nil {
			in.ContentType = mt
		}
	}
	if r.Body != nil && r.Method != http.MethodGet && r.Method != http.MethodHead {
		body, err := io.ReadAll(io.LimitReader(r.Body, int64(g.MaxBodyBytes)+1))
		switch {
		case err != nil:
			return in, rewrite.BadRequest(rewrite.CodeMissingParams, "Invalid or missing parameters: unreadable body")
		case len(body) > g.MaxBodyBytes:
			return in, &rewrite.Error{Status: http.StatusRequestEntityTooLarge, Code: rewrite.CodeMissingParams,
				Description: "Invalid or missing parameters: body too large", Outcome: rewrite.Refused}
		}
		in.Body = body
	}
	return in, nil
}

// maxAsked bounds the client-chosen host, path or CONNECT target an audit
// line repeats, so a refused request cannot make its line arbitrarily long.
const maxAsked = 256

// asked returns s for an audit line, cut to maxAsked bytes.
func asked(s string) string {
	if len(s) <= maxAsked {
		return s
	}
	return strings.ToValidUTF8(s[:maxAsked], "") + "..."
}

func clientIP(r *http.Request) netip.Addr {
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		return netip.Addr{}
	}
	return ap.Addr().Unmap()
}

// clientString is ip (clientIP(r)) as the audit log writes it. For IPv4,
// the usual client, that is RemoteAddr's host part as it stands: netip
// parsed it as a dotted quad, which it accepts only in the canonical form
// String would write, so no new string is made per request.
func clientString(r *http.Request, ip netip.Addr) string {
	if ip.Is4() && r.RemoteAddr != "" && r.RemoteAddr[0] != '[' {
		if i := strings.LastIndexByte(r.RemoteAddr, ':'); i > 0 {
			return r.RemoteAddr[:i]
		}
	}
	return ip.String()
}

func textResponse(r *http.Request, status int, body string) *http.Response {
	return replyResponse(r, rewrite.Reply{Status: status, ContentType: "text/plain; charset=utf-8", Body: body})
}

// replyResponse is the answer rep to r, as goproxy.NewResponse builds it
// (status, headers, body and its length), with the headers every reply
// carries, in three allocations fewer: the map is made at its size and
// the fixed values are shared.
func replyResponse(r *http.Request, rep rewrite.Reply) *http.Response {
	return replyWithHeader(r, rep, replyHeader(contentTypeValue(rep.ContentType)))
}

// replyHeader is the headers every reply carries, for a Content-Type
// value.
func replyHeader(contentType []string) http.Header {
	return http.Header{
		"Content-Type": contentType,
		// Replies carry message ids; no cache between ISE and postern
		// keeps them.
		"Cache-Control":          noStore,
		"X-Content-Type-Options": noSniff,
	}
}

// replyWithHeader is the answer rep to r with header.
func replyWithHeader(r *http.Request, rep rewrite.Reply, header http.Header) *http.Response {
	a := new(answer) // the response and its body in one allocation
	a.body.Reset(rep.Body)
	a.resp = http.Response{
		Request:          r,
		TransferEncoding: r.TransferEncoding,
		StatusCode:       rep.Status,
		Status:           http.StatusText(rep.Status),
		Proto:            "HTTP/1.1",
		ProtoMajor:       1,
		ProtoMinor:       1,
		Header:           header,
		ContentLength:    int64(len(rep.Body)),
		Body:             &a.body,
	}
	return &a.resp
}

// answer is a response with its body, allocated together.
type answer struct {
	resp http.Response
	body replyBody
}

// replyBody is an answer's body: io.NopCloser(strings.NewReader(s)) as
// one value.
type replyBody struct{ strings.Reader }

func (*replyBody) Close() error { return nil }

// contentTypeValue is the Content-Type header's value: the dialects'
// usual type is one shared slice (never changed in place, like noStore).
func contentTypeValue(ct string) []string {
	if ct == plainText[0] {
		return plainText
	}
	return []string{ct}
}

// frontAnswerResponse is replyResponse for an answer to the front whose
// type is plain text (every dialect's): its header map is shared, one map
// less a message, because the front only reads an answer's headers
// (inbound.Server.Handler) and nothing between the pipeline and the front
// changes them. Every other answer gets a map of its own, as goproxy's
// paths and refusals (Proxy-Authenticate) add to it.
func frontAnswerResponse(r *http.Request, rep rewrite.Reply) *http.Response {
	if rep.ContentType != plainText[0] {
		return replyResponse(r, rep)
	}
	return replyWithHeader(r, rep, frontPlainHeader)
}

// frontPlainHeader is the headers of a plain-text answer to the front,
// shared and never changed (see frontAnswerResponse).
var frontPlainHeader = replyHeader(plainText)

// The values of the headers every reply carries. Shared between replies:
// headers are only ever replaced, deleted or appended to (which copies a
// full slice), never changed in place.
var (
	noStore   = []string{"no-store"}
	noSniff   = []string{"nosniff"}
	plainText = []string{"text/plain; charset=utf-8"}
)
