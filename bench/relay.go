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

	"github.com/valyala/fasthttp"
)

// The relays are the benchmark's reference for what one extra loopback hop
// costs on this machine: the smallest Go programs that do postern's job
// without any of its checks. Each takes the same legacy GET, builds the same
// One API JSON, sends it over a pooled TLS client and answers "ID: ...". No
// authentication, number parsing, guardrails, audit line or metrics. Two
// stacks: net/http server and client (HTTP/2 to the provider when offered),
// and valyala/fasthttp server and HostClient (HTTP/1.1 keep-alive) — the
// floor a Go proxy reaches here. Each runs as its own process (the bench
// binary re-executed), like postern, so all are measured the same way.

// The relay child is told what to do by environment, so that the benchmark
// binary and the test binary (go test ./bench) can both be re-executed.
const (
	relayProviderEnv = "POSTERN_BENCH_RELAY_PROVIDER"
	relayCAEnv       = "POSTERN_BENCH_RELAY_CA"
	relayKindEnv     = "POSTERN_BENCH_RELAY_KIND" // relayNetHTTP or relayFastHTTP
)

// The relay kinds.
const (
	relayNetHTTP  = "net/http"
	relayFastHTTP = "fasthttp"
)

// runRelayIfAsked runs the relay, and never returns, when this process was
// started as one.
func runRelayIfAsked() {
	provider, ca := os.Getenv(relayProviderEnv), os.Getenv(relayCAEnv)
	if provider == "" {
		return
	}
	var err error
	if os.Getenv(relayKindEnv) == relayFastHTTP {
		err = fastRelayMain(provider, ca, os.Stdout)
	} else {
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

// relayProc is the relay running as a child process.
type relayProc struct {
	cmd  *exec.Cmd
	addr string
}

// startRelay re-executes this benchmark binary as the relay of kind.
func startRelay(kind, providerURL, caFile string) (*relayProc, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(self)
	cmd.Env = append(os.Environ(), relayProviderEnv+"="+providerURL, relayCAEnv+"="+caFile, relayKindEnv+"="+kind)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	sc := bufio.NewScanner(out)
	if sc.Scan() {
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
