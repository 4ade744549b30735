package proxy

import (
	"io"
	"net/http"

	"github.com/elazarl/goproxy"
)

// servePipeline runs one origin-form request, already made absolute by
// direct, through handle and writes its answer as goproxy would: the
// response's headers, status and body. goproxy hands origin-form requests to
// its NonproxyHandler (direct); sending them back into goproxy would only
// repeat its per-request work (URL formatting for a debug log that is off)
// before reaching the same handle. Absolute-form requests and CONNECT go
// through goproxy itself.
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
