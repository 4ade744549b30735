package main

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"time"

	"github.com/postern/postern/proxy/audit"
	"github.com/postern/postern/proxy/deliver"
	"github.com/postern/postern/proxy/proxytest"
	"github.com/valyala/fasthttp"
)

// The relays are the benchmark's reference for what one extra loopback hop
// costs on this machine: the smallest Go programs that do postern's job
// without any of its checks. Each takes the same legacy GET, builds the same
// One API JSON, sends it over a pooled TLS client and answers "ID: ...". No
// authentication, number parsing, guardrails, audit line or metrics. Two
// stacks: net/http server and client (HTTP/2 to the provider when offered),
// and valyala/fasthttp server and HostClient (HTTP/1.1 keep-alive) — the
// floor a Go proxy reaches here. A third, "relay+own work", is the fasthttp
// relay doing postern's own work for each message (proxytest.OwnWork:
// credentials, parse, number lookup, guardrails, the provider body, the
// reply, the legacy answer, metrics and a chained audit line on postern's
// console sink): what postern's job costs on that stack, so that the gap
// between it and postern is postern's plumbing alone. Each runs as its own
// process (the bench binary re-executed), like postern, so all are
// measured the same way. The relays' peak RSS includes the postern
// packages this binary links (the number metadata among them).

// The relay child is told what to do by environment, so that the benchmark
// binary and the test binary (go test ./bench) can both be re-executed.
const (
	relayProviderEnv = "POSTERN_BENCH_RELAY_PROVIDER"
	relayCAEnv       = "POSTERN_BENCH_RELAY_CA"
	relayKindEnv     = "POSTERN_BENCH_RELAY_KIND"   // relayNetHTTP, relayFastHTTP or relayOwnWork
	relayConfigEnv   = "POSTERN_BENCH_RELAY_CONFIG" // relayOwnWork: postern's config file
)

// The relay kinds.
const (
	relayNetHTTP  = "net/http"
	relayFastHTTP = "fasthttp"
	// relayOwnWork is the fasthttp relay doing postern's own work for each
	// message (proxytest.OwnWork): the floor of postern's job on the
	// cheapest Go HTTP stack measured here.
	relayOwnWork = "fasthttp+own-work"
)

// runRelayIfAsked runs the relay, and never returns, when this process was
// started as one.
func runRelayIfAsked() {
	provider, ca := os.Getenv(relayProviderEnv), os.Getenv(relayCAEnv)
	if provider == "" {
		return
	}
	var err error
	switch os.Getenv(relayKindEnv) {
	case relayFastHTTP:
		err = fastRelayMain(provider, ca, os.Stdout)
	case relayOwnWork:
		err = ownWorkRelayMain(provider, ca, os.Getenv(relayConfigEnv), os.Stdout)
	default:
		err = relayMain(provider, ca, os.Stdout)
	}
	fmt.Fprintf(os.Stderr, "relay: %v\n", err)
	os.Exit(1)
}

// relayMain serves the relay until killed; it prints "listening ADDR" on
// stdout once it accepts connections.
func relayMain(providerURL, caFile string, stdout io.Writer) error {
	pool, err := readPool(caFile)
	if err != nil {
		return err
	}
	client := &http.Client{Transport: &http.Transport{Proxy: nil, TLSClientConfig: &tls.Config{RootCAs: pool},
		ForceAttemptHTTP2: true, MaxIdleConnsPerHost: 64}}
	endpoint := providerURL + "/v1/message"
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		body, _ := json.Marshal(struct {
			Messages []oneAPIMessage `json:"messages"`
		}{[]oneAPIMessage{{Channel: "sms", To: q.Get("to"), Content: q.Get("text")}}})
		req, _ := http.NewRequestWithContext(r.Context(), http.MethodPost, endpoint, bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept", "application/json")
		req.Header.Set("Authorization", "tok-bench")
		resp, err := client.Do(req)
		if err != nil {
			http.Error(w, "ERR: 001, upstream", http.StatusBadGateway)
			return
		}
		defer resp.Body.Close()
		var reply struct {
			Messages []struct {
				APIMessageID string `json:"apiMessageId"`
			} `json:"messages"`
		}
		if err := json.NewDecoder(resp.Body).Decode(&reply); err != nil || len(reply.Messages) == 0 {
			http.Error(w, "ERR: 001, reply", http.StatusBadGateway)
			return
		}
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprintf(w, "ID: %s\n", reply.Messages[0].APIMessageID)
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "listening %s\n", ln.Addr())
	return (&http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}).Serve(ln)
}

func readPool(caFile string) (*x509.CertPool, error) {
	pem, err := os.ReadFile(caFile)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, errors.New("relay: no certificate in " + caFile)
	}
	return pool, nil
}

// oneAPIMessage is one message of the One API's JSON.
type oneAPIMessage struct {
	Channel string `json:"channel"`
	To      string `json:"to"`
	Content string `json:"content"`
}

// fastRelayMain is relayMain on fasthttp's server and HostClient.
func fastRelayMain(providerURL, caFile string, stdout io.Writer) error {
	pool, err := readPool(caFile)
	if err != nil {
		return err
	}
	u, err := url.Parse(providerURL)
	if err != nil {
		return err
	}
	client := &fasthttp.HostClient{Addr: u.Host, IsTLS: true, TLSConfig: &tls.Config{RootCAs: pool}, MaxConns: 1024}
	endpoint := providerURL + "/v1/message"
	h := func(ctx *fasthttp.RequestCtx) {
		q := ctx.QueryArgs()
		body, _ := json.Marshal(struct {
			Messages []oneAPIMessage `json:"messages"`
		}{[]oneAPIMessage{{Channel: "sms", To: string(q.Peek("to")), Content: string(q.Peek("text"))}}})
		req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
		defer fasthttp.ReleaseRequest(req)
		defer fasthttp.ReleaseResponse(resp)
		req.SetRequestURI(endpoint)
		req.Header.SetMethod(fasthttp.MethodPost)
		req.Header.SetContentType("application/json")
		req.Header.Set("Accept", "application/json")
		req.Header.Set("Authorization", "tok-bench")
		req.SetBodyRaw(body)
		if err := client.Do(req, resp); err != nil {
			ctx.Error("ERR: 001, upstream", fasthttp.StatusBadGateway)
			return
		}
		var reply struct {
			Messages []struct {
				APIMessageID string `json:"apiMessageId"`
			} `json:"messages"`
		}
		if err := json.Unmarshal(resp.Body(), &reply); err != nil || len(reply.Messages) == 0 {
			ctx.Error("ERR: 001, reply", fasthttp.StatusBadGateway)
			return
		}
		ctx.SetContentType("text/plain; charset=utf-8")
		fmt.Fprintf(ctx, "ID: %s\n", reply.Messages[0].APIMessageID)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "listening %s\n", ln.Addr())
	return (&fasthttp.Server{Handler: h, ReadTimeout: 10 * time.Second, NoDefaultServerHeader: true}).Serve(ln)
}

// ownWorkRelayMain is fastRelayMain doing postern's own work for each
// message (proxytest.OwnWork, with the config postern is measured with):
// admit, route, legacy credentials, parse, guardrails, the provider body
// after the prepared head's headers, reading the reply, the legacy answer,
// metrics and the audit line, queued to postern's own console sink on
// stdout. What it leaves out is postern's plumbing: its front, its
// HTTP/1.1 pool, contexts and deadlines per send, single-flight, the
// upstream slots.
func ownWorkRelayMain(providerURL, caFile, configFile string, stdout io.Writer) error {
	text, err := os.ReadFile(configFile)
	if err != nil {
		return err
	}
	sinks, err := audit.OpenSinks(audit.Config{Console: "stdout", Queue: 4096}, stdout, os.Stderr, nil)
	if err != nil {
		return err
	}
	work, err := proxytest.NewOwnWork(string(text), audit.NewLogger(sinks), time.Now)
	if err != nil {
		return err
	}
	u, err := url.Parse(providerURL)
	if err != nil {
		return err
	}
	pool, err := readPool(caFile)
	if err != nil {
		return err
	}
	endpoint, header, err := work.PostTarget()
	if err != nil {
		return err
	}
	client := &fasthttp.HostClient{Addr: u.Host, IsTLS: true, TLSConfig: &tls.Config{RootCAs: pool}, MaxConns: 1024}
	x := fastExchange{client: client, endpoint: endpoint.String(), header: header}
	h := func(ctx *fasthttp.RequestCtx) {
		rep, err := work.Message(ctx, string(ctx.Host()), string(ctx.Path()), string(ctx.URI().QueryString()),
			x)
		if err != nil {
			ctx.Error("ERR: 001, "+err.Error(), fasthttp.StatusBadGateway)
			return
		}
		ctx.SetStatusCode(rep.Status)
		ctx.SetContentType("text/plain; charset=utf-8")
		ctx.SetBodyString(rep.Body)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "listening %s\n", ln.Addr())
	return (&fasthttp.Server{Handler: h, ReadTimeout: 10 * time.Second, NoDefaultServerHeader: true}).Serve(ln)
}

// fastExchange sends the own work's provider request on a fasthttp
// HostClient: the prepared head's headers, then the body.
type fastExchange struct {
	client   *fasthttp.HostClient
	endpoint string
	header   http.Header // the Poster's fixed headers
}

func (x fastExchange) Exchange(_ *deliver.PreparedPost, body []byte) (int, []byte, error) {
	req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
	defer fasthttp.ReleaseRequest(req)
	defer fasthttp.ReleaseResponse(resp)
	req.SetRequestURI(x.endpoint)
	req.Header.SetMethod(fasthttp.MethodPost)
	for name, values := range x.header {
		req.Header.Set(name, values[0])
	}
	req.Header.Set("User-Agent", "postern/bench")
	req.SetBodyRaw(body)
	if err := x.client.Do(req, resp); err != nil {
		return 0, nil, err
	}
	return resp.StatusCode(), append([]byte(nil), resp.Body()...), nil
}

// relayProc is the relay running as a child process.
type relayProc struct {
	cmd  *exec.Cmd
	addr string
}

// startRelay re-executes this benchmark binary as the relay of kind.
func startRelay(kind, providerURL, caFile, configFile string) (*relayProc, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(self)
	cmd.Env = append(os.Environ(), relayProviderEnv+"="+providerURL, relayCAEnv+"="+caFile, relayKindEnv+"="+kind, relayConfigEnv+"="+configFile)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	// Audit lines (relayOwnWork's chain_start) may come before it.
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		if addr, ok := strings.CutPrefix(sc.Text(), "listening "); ok {
			go io.Copy(io.Discard, out)
			return &relayProc{cmd: cmd, addr: addr}, nil
		}
	}
	cmd.Process.Kill()
	cmd.Wait()
	return nil, errors.New("relay exited before listening")
}

func (p *relayProc) stop() {
	p.cmd.Process.Kill()
	p.cmd.Wait()
}
