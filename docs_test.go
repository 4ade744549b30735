package main

import (
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"unicode"
)

// The README's limit: a front door, not a manual (issue 11).
const readmeMaxBytes = 16 * 1024

// TestReadmeIsShort: README.md stays a front door; topics belong in docs/.
func TestReadmeIsShort(t *testing.T) {
	fi, err := os.Stat("README.md")
	if err != nil {
		t.Fatal(err)
	}
	if fi.Size() > readmeMaxBytes {
		t.Errorf("README.md is %d bytes, more than %d: move the detail to docs/", fi.Size(), readmeMaxBytes)
	}
}

// mdSection returns the part of a markdown document under the heading
// line heading, up to the next heading of the same or a higher level
// (headings inside code blocks do not count), or "" when there is none.
func mdSection(doc, heading string) string {
	level := strings.IndexFunc(heading, func(r rune) bool { return r != '#' })
	var b strings.Builder
	in, fence := false, false
	for _, line := range strings.SplitAfter(doc, "\n") {
		text := strings.TrimRight(line, "\n")
		if strings.HasPrefix(text, "```") {
			fence = !fence
		}
		if !fence && strings.HasPrefix(text, "#") {
			l := strings.IndexFunc(text, func(r rune) bool { return r != '#' })
			if in && l > 0 && l <= level {
				break
			}
			if text == heading {
				in = true
			}
		}
		if in {
			b.WriteString(line)
		}
	}
	return b.String()
}

// codeBlock is one fenced block of a markdown document.
type codeBlock struct {
	info, body string
}

func codeBlocks(doc string) []codeBlock {
	var blocks []codeBlock
	var cur *codeBlock
	for _, line := range strings.SplitAfter(doc, "\n") {
		if info, ok := strings.CutPrefix(strings.TrimRight(line, "\n"), "```"); ok {
			if cur == nil {
				cur = &codeBlock{info: info}
			} else {
				blocks = append(blocks, *cur)
				cur = nil
			}
			continue
		}
		if cur != nil {
			cur.body += line
		}
	}
	return blocks
}

// consoleStep is one "$ command" of a console block and the output shown
// under it.
type consoleStep struct {
	args   []string
	output string
}

func consoleSteps(body string) []consoleStep {
	var steps []consoleStep
	for _, line := range strings.SplitAfter(body, "\n") {
		if cmd, ok := strings.CutPrefix(line, "$ "); ok {
			steps = append(steps, consoleStep{args: shellWords(strings.TrimSpace(cmd))})
			continue
		}
		if len(steps) > 0 {
			steps[len(steps)-1].output += line
		}
	}
	return steps
}

// firstMessage is the README's walkthrough and the example config it shows.
const (
	firstMessageHeading = "## Your first real message in ten minutes"
	firstMessageConfig  = "docs/examples/first-message.toml"
)

// oneAPIFake is a TLS fake of Clickatell's One API that accepts every
// message with the id it is given and records what it read.
func oneAPIFake(t *testing.T, id string) (*httptest.Server, chan string) {
	t.Helper()
	got := make(chan string, 4)
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		got <- r.Method + " " + r.URL.Path + " " + r.Header.Get("Authorization") + " " + string(body)
		var req struct {
			Messages []struct {
				To string `json:"to"`
			} `json:"messages"`
		}
		to := ""
		if json.Unmarshal(body, &req) == nil && len(req.Messages) == 1 {
			to = req.Messages[0].To
		}
		w.WriteHeader(http.StatusAccepted)
		fmt.Fprintf(w, `{"messages":[{"apiMessageId":%q,"accepted":true,"to":%q,"error":null}],"error":null}`, id, to)
	}))
	t.Cleanup(srv.Close)
	return srv, got
}

var embeddedRoots = regexp.MustCompile(`embedded Mozilla set \([0-9]+ roots\)`)

// TestFirstMessageWalkthrough runs README.md's "Your first real message in
// ten minutes" as written: the config it shows is docs/examples/first-message.toml
// byte for byte; every `$ ./postern ...` and `$ curl ...` it shows is run
// (check and translate in-process, serve as the real binary against a
// loopback fake of the One API, curl as an HTTP GET to it) and must print
// what the README shows; the audit line it shows has exactly the fields
// the real one has, with the same values except those that depend on the
// machine and the moment. `postern trust` is not run: it would contact
// Clickatell, and the README labels its output an example.
// userAgentVersion is the version in a translated request's User-Agent.
var userAgentVersion = regexp.MustCompile(`User-Agent: postern/\S+`)

func TestFirstMessageWalkthrough(t *testing.T) {
	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	walk := mdSection(string(readme), firstMessageHeading)
	if walk == "" {
		t.Fatalf("README.md has no %q section", firstMessageHeading)
	}
	config, err := os.ReadFile(firstMessageConfig)
	if err != nil {
		t.Fatal(err)
	}
	blocks := codeBlocks(walk)
	var tomls, audits []string
	var steps []consoleStep
	for _, b := range blocks {
		switch b.info {
		case "toml":
			tomls = append(tomls, b.body)
		case "json":
			audits = append(audits, b.body)
		case "console":
			steps = append(steps, consoleSteps(b.body)...)
		}
	}
	if len(tomls) != 1 || tomls[0] != string(config) {
		t.Errorf("the README's config block is not %s byte for byte:\n--- README\n%s--- %s\n%s", firstMessageConfig, strings.Join(tomls, "\n"), firstMessageConfig, config)
	}
	if len(audits) != 1 {
		t.Fatalf("want one json block (the audit line) in the walkthrough, found %d", len(audits))
	}
	// The binary for `serve` is built here, in the repository.
	bin := ""
	if !testing.Short() {
		bin = buildDockerBinary(t)
	}
	// The walkthrough's commands run where the example config was copied.
	key := "test-ONE-API-KEY-4711"
	t.Setenv("CLICKATELL_API_KEY", key)
	dir := t.TempDir()
	writeFile(t, dir, "first-message.toml", string(config))
	t.Chdir(dir)

	// check, also without the secret as CI would run it.
	if code, out, errOut := runCLI(t, "check", "-skip-secrets", "first-message.toml"); code != 0 || !strings.Contains(out, "OK.") {
		t.Errorf("check -skip-secrets: exit %d\n%s%s", code, out, errOut)
	}
	os.Unsetenv("CLICKATELL_API_KEY")
	if code, out, errOut := runCLI(t, "check", "-skip-secrets", "first-message.toml"); code != 0 {
		t.Errorf("check -skip-secrets without CLICKATELL_API_KEY: exit %d\n%s%s", code, out, errOut)
	}
	if code, _, _ := runCLI(t, "check", "first-message.toml"); code != 1 {
		t.Errorf("check without CLICKATELL_API_KEY: exit %d, want 1 (the secret is resolved)", code)
	}
	t.Setenv("CLICKATELL_API_KEY", key)

	var d *daemon
	var sent chan string
	replyID := "unset"
	if m := regexp.MustCompile(`"ids":\["([^"]+)"\]`).FindStringSubmatch(audits[0]); m != nil {
		replyID = m[1]
	}
	ran := map[string]bool{}
	translated := "" // the body `translate` printed: what the provider must receive
	for _, s := range steps {
		if len(s.args) == 0 {
			continue
		}
		name := s.args[0]
		if name == "./postern" && len(s.args) > 1 {
			name += " " + s.args[1]
		}
		ran[name] = true
		switch name {
		case "export":
			// The key: set above, never a real one.
		case "./postern check", "./postern translate":
			code, out, errOut := runCLI(t, s.args[1:]...)
			// A machine without system roots uses the embedded set; the
			// README shows what a usual machine prints.
			out = embeddedRoots.ReplaceAllString(out, "system trust store")
			// The README cannot know the reader's build: it shows
			// postern/<version> where the binary names its own.
			out = userAgentVersion.ReplaceAllString(out, "User-Agent: postern/<version>")
			if code != 0 {
				t.Errorf("%s: exit %d\n%s%s", strings.Join(s.args, " "), code, out, errOut)
			}
			if out != s.output {
				t.Errorf("%s prints\n%s\nbut README.md shows\n%s", strings.Join(s.args, " "), out, s.output)
			}
			mustNotContain(t, name, out, key)
			if name == "./postern translate" {
				lines := strings.Split(strings.TrimSpace(out), "\n")
				translated = lines[len(lines)-1]
			}
		case "./postern trust":
			// Contacts the provider: not run in tests. The README must say
			// that what it shows is an example.
			if !strings.Contains(walk, "Example output") {
				t.Error("the README shows `postern trust` output without saying it is an example")
			}
		case "./postern serve", "curl":
			if bin == "" {
				continue // -short: no binary
			}
			if name == "curl" {
				if d == nil {
					t.Fatal("the walkthrough sends before it starts postern")
				}
				curlStep(t, d, s, "POST /v1/message "+key+" "+translated, sent)
				continue
			}
			if d != nil {
				t.Fatal("the walkthrough starts postern twice")
			}
			var srv *httptest.Server
			srv, sent = oneAPIFake(t, replyID)
			d = startFirstMessage(t, bin, dir, srv, s.args[2:])
		default:
			t.Errorf("the walkthrough shows a command this test does not know how to check: %q", strings.Join(s.args, " "))
		}
	}
	for _, want := range []string{"./postern check", "./postern translate", "./postern trust", "./postern serve", "curl"} {
		if !ran[want] {
			t.Errorf("the walkthrough does not show `%s`", want)
		}
	}
	if d == nil {
		return
	}
	var real string
	// The message's line, after the audit chain's chain_start.
	waitFor(t, "the audit line", func() bool {
		for _, l := range strings.Split(d.stdout.String(), "\n") {
			if strings.Contains(l, `"msg":"message"`) {
				real = l
				return true
			}
		}
		return false
	})
	compareAudit(t, audits[0], real, string(config))
}

// startFirstMessage runs `postern serve` with the walkthrough's config,
// changed only so that it can run here: loopback listeners, the test as an
// allowed client, and the route sending to srv (trusted through ca_files)
// instead of Clickatell.
func startFirstMessage(t *testing.T, bin, dir string, srv *httptest.Server, args []string) *daemon {
	t.Helper()
	src, err := os.ReadFile(filepath.Join(dir, "first-message.toml"))
	if err != nil {
		t.Fatal(err)
	}
	ca := writeFile(t, dir, "fake-ca.pem", string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})))
	cfg := regexp.MustCompile(`(?m)^allow_clients = \[`).ReplaceAllString(string(src), `allow_clients = ["127.0.0.1", `)
	cfg += fmt.Sprintf("endpoint = %q\n\n[trust]\nca_files = [%q]\n", srv.URL+"/v1/message", ca)
	writeFile(t, dir, "test.toml", cfg)
	if i := slices.Index(args, "-config"); i < 0 || i+1 >= len(args) || args[i+1] != "first-message.toml" {
		t.Fatalf("the walkthrough's serve command %q does not use first-message.toml", args)
	}
	return startDaemon(t, bin, dir, []string{"CLICKATELL_API_KEY=" + os.Getenv("CLICKATELL_API_KEY")},
		"serve", "-config", "test.toml")
}

// curlStep sends the walkthrough's curl request to d and checks the reply,
// and that the provider received want: the key and the body `translate`
// printed.
func curlStep(t *testing.T, d *daemon, s consoleStep, want string, sent chan string) {
	t.Helper()
	if len(s.args) != 2 {
		t.Fatalf("the walkthrough's curl %q is not `curl URL`", s.args)
	}
	u := s.args[1]
	i := strings.Index(u, "/http/sendmsg")
	if !strings.HasPrefix(u, "http://") || i < 0 {
		t.Fatalf("the walkthrough's curl URL %q is not ISE's origin-form request", u)
	}
	resp, err := http.Get("http://" + d.addr + u[i:])
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || string(body) != s.output {
		t.Errorf("curl %s: %d %q, README.md shows %q", u, resp.StatusCode, body, s.output)
	}
	select {
	case got := <-sent:
		if got != want {
			t.Errorf("the provider received\n%s\nwant\n%s", got, want)
		}
	default:
		t.Error("the provider received nothing")
	}
}

// compareAudit: the README's audit line has exactly the real line's fields
// (nested ones too) and the same values, except for the fields that depend
// on when and where it ran; its client is one of the config's allow_clients.
func compareAudit(t *testing.T, shown, real, config string) {
	t.Helper()
	var s, r map[string]any
	if err := json.Unmarshal([]byte(shown), &s); err != nil {
		t.Fatalf("README.md's audit line is not JSON: %v\n%s", err, shown)
	}
	if strings.Count(strings.TrimSpace(shown), "\n") != 0 {
		t.Error("README.md's audit line is not one line, as postern writes it")
	}
	if err := json.Unmarshal([]byte(real), &r); err != nil {
		t.Fatalf("real audit line is not one JSON line: %v\n%s", err, real)
	}
	keys := func(m map[string]any) []string {
		var k []string
		for name, v := range m {
			k = append(k, name)
			if list, ok := v.([]any); ok {
				for _, e := range list {
					if obj, ok := e.(map[string]any); ok {
						for sub := range obj {
							k = append(k, name+"."+sub)
						}
					}
				}
			}
		}
		slices.Sort(k)
		return slices.Compact(k)
	}
	if ks, kr := keys(s), keys(r); !slices.Equal(ks, kr) {
		t.Errorf("README.md's audit line has fields\n%v\nthe real one\n%v\nreal line: %s", ks, kr, real)
	}
	varies := map[string]bool{"time": true, "latency_ms": true, "client": true, "leaf_sha256": true, "client_msg_id": true,
		"upstream_host": true, "mac": true}
	for k, rv := range r {
		if varies[k] {
			continue
		}
		if sv, _ := json.Marshal(s[k]); string(sv) != mustJSON(t, rv) {
			t.Errorf("audit field %s: README.md shows %s, postern wrote %s", k, sv, mustJSON(t, rv))
		}
	}
	if c, _ := s["client"].(string); c == "" || !strings.Contains(config, `"`+c+`"`) {
		t.Errorf("README.md's audit line's client %q is not in the config's allow_clients", s["client"])
	}
	if id, _ := s["client_msg_id"].(string); !regexp.MustCompile(`^pst[0-9a-f]{24}$`).MatchString(id) {
		t.Errorf("README.md's client_msg_id %q is not a derived id (pst + 24 hex digits)", id)
	}
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// mustNotContain fails when haystack holds any needle (a secret).
func mustNotContain(t *testing.T, where, haystack string, needles ...string) {
	t.Helper()
	for _, n := range needles {
		if strings.Contains(haystack, n) {
			t.Errorf("%s contains %q", where, n)
		}
	}
}

// githubSlug is the anchor GitHub gives a heading: the rendered text in
// lower case, without punctuation or symbols (letters, digits, "_", "-"
// and spaces stay), spaces turned into "-".
func githubSlug(heading string) string {
	text := mdLink.ReplaceAllString(heading, "$1") // a link renders as its text
	var b strings.Builder
	for _, r := range strings.ToLower(text) {
		switch {
		case r == ' ':
			b.WriteByte('-')
		case r == '-' || r == '_' || unicode.IsLetter(r) || unicode.IsDigit(r) || unicode.IsMark(r):
			b.WriteRune(r)
		}
	}
	return b.String()
}

var (
	mdLink     = regexp.MustCompile(`\[([^\]]*)\]\(([^)\s]*)\)`)
	codeSpan   = regexp.MustCompile("`[^`\n]*`")
	mdHeadingR = regexp.MustCompile(`^(#{1,6}) +(.*?)#*\s*$`)
)

// mdAnchors lists the anchors of a markdown document's headings as GitHub
// makes them: a repeated slug gets -1, -2, ...
func mdAnchors(doc string) map[string]bool {
	anchors := map[string]bool{}
	seen := map[string]int{}
	fence := false
	for _, line := range strings.Split(doc, "\n") {
		if strings.HasPrefix(line, "```") {
			fence = !fence
			continue
		}
		m := mdHeadingR.FindStringSubmatch(line)
		if fence || m == nil {
			continue
		}
		slug := githubSlug(m[2])
		if n := seen[slug]; n > 0 {
			anchors[fmt.Sprintf("%s-%d", slug, n)] = true
		} else {
			anchors[slug] = true
		}
		seen[slug]++
	}
	return anchors
}

// mdLinks lists the link targets of a markdown document outside code
// blocks and code spans, each with its line number.
func mdLinks(doc string) map[int][]string {
	links := map[int][]string{}
	fence := false
	for i, line := range strings.Split(doc, "\n") {
		if strings.HasPrefix(line, "```") {
			fence = !fence
			continue
		}
		if fence {
			continue
		}
		for _, m := range mdLink.FindAllStringSubmatch(line, -1) {
			if codeSpanHolds(line, m[0]) {
				continue
			}
			links[i+1] = append(links[i+1], m[2])
		}
	}
	return links
}

// codeSpanHolds reports whether link sits entirely inside a code span of
// line (so it is example text, not a link).
func codeSpanHolds(line, link string) bool {
	for _, span := range codeSpan.FindAllString(line, -1) {
		if strings.Contains(span, link) {
			return true
		}
	}
	return false
}

// TestDocLinks: every relative link in README.md and docs/*.md names a file
// that exists, and every #anchor a heading of the document it points into,
// as GitHub renders them. Moving a section cannot leave a dead link.
func TestDocLinks(t *testing.T) {
	files, err := filepath.Glob("docs/*.md")
	if err != nil {
		t.Fatal(err)
	}
	files = append([]string{"README.md"}, files...)
	anchorsOf := map[string]map[string]bool{}
	anchors := func(path string) (map[string]bool, error) {
		if a, ok := anchorsOf[path]; ok {
			return a, nil
		}
		src, err := os.ReadFile(path)
		if err != nil {
			return nil, err
		}
		anchorsOf[path] = mdAnchors(string(src))
		return anchorsOf[path], nil
	}
	checked := 0
	for _, file := range files {
		src, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		for line, targets := range mdLinks(string(src)) {
			for _, target := range targets {
				if strings.Contains(target, "://") || strings.HasPrefix(target, "mailto:") {
					continue
				}
				checked++
				path, anchor, _ := strings.Cut(target, "#")
				resolved := file
				if path != "" {
					resolved = filepath.Join(filepath.Dir(file), path)
					if _, err := os.Stat(resolved); err != nil {
						t.Errorf("%s:%d: link %q: %v", file, line, target, err)
						continue
					}
				}
				if anchor == "" {
					continue
				}
				if !strings.HasSuffix(resolved, ".md") {
					t.Errorf("%s:%d: link %q: an anchor into a file that is not markdown", file, line, target)
					continue
				}
				a, err := anchors(resolved)
				if err != nil {
					t.Fatal(err)
				}
				if !a[anchor] {
					t.Errorf("%s:%d: link %q: %s has no heading #%s", file, line, target, resolved, anchor)
				}
			}
		}
	}
	if checked < 20 {
		t.Errorf("only %d relative links checked: the link parser is broken", checked)
	}
}

// TestReadmeTestCommand: the README's Testing section gives the test
// command, and .ci/run (which the Quick start names) runs exactly it.
func TestReadmeTestCommand(t *testing.T) {
	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	const cmd = "go test -race -count=1 ./..."
	blocks := codeBlocks(mdSection(string(readme), "## Testing"))
	if len(blocks) == 0 || strings.TrimSpace(blocks[0].body) != cmd {
		t.Errorf("README.md's Testing section does not start with the test command %q: %v", cmd, blocks)
	}
	if !strings.Contains(mdSection(string(readme), "## Quick start"), ".ci/run") {
		t.Error("README.md's Quick start does not name .ci/run")
	}
	ci, err := os.ReadFile(".ci/run")
	if err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(".ci/run"); err != nil || fi.Mode()&0o111 == 0 {
		t.Errorf(".ci/run is not executable: %v", err)
	}
	if !strings.Contains(string(ci), "\n"+strings.TrimSuffix(cmd, " ./...")+" ") {
		t.Errorf(".ci/run does not run %q", cmd)
	}
}
