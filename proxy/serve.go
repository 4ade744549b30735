package proxy

import (
	"io"
	"net/http"

	"github.com/elazarl/goproxy"
)

// serveHTTP is the listener's handler. Plain requests — absolute-form from
// ISE using postern as its HTTP proxy, and origin-form sent straight to
// postern (see direct) — go to the pipeline without passing through goproxy;
// only CONNECT does, because goproxy owns tunnels and interception. goproxy
// answered the plain requests the same way, but at a cost on every message:
// origin-form entered it twice, and each pass formatted the URL for debug
// logging that is off.
func (s *Server) serveHTTP(w http.ResponseWriter, r *http.Request) {
	switch {
	case r.Method == http.MethodConnect:
		s.gp.ServeHTTP(w, r)
	case !r.URL.IsAbs():
		s.direct(w, r)
	default:
		s.servePipeline(w, r)
	}
}

// servePipeline runs one absolute-form request through handle and writes its
// answer as goproxy would: the response's headers, status and body.
func (s *Server) servePipeline(w http.ResponseWriter, r *http.Request) {
	_, resp := s.handle(r, &goproxy.ProxyCtx{Req: r, Proxy: s.gp})
	defer resp.Body.Close()
	h := w.Header()
	for k, vs := range resp.Header {
		h[k] = append(h[k], vs...)
	}
	w.WriteHeader(resp.StatusCode)
	io.Copy(w, resp.Body)
}
