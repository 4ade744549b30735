package proxytest

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/net/html"

	"github.com/postern/postern/internal/testtool"
)

// ReportPage is what `postern report -html` put in its page, read back
// from the data- attributes that mark every number.
type ReportPage struct {
	Bars     map[string]map[string]int // day -> outcome -> count (the SVG chart)
	Values   map[string]string         // element id -> data-value
	Outcomes map[string]int
	Refusals map[string]int
	Leaves   map[string]map[string]int // host -> leaf -> count
	TLS      map[string]map[string]int // host -> version -> count
	Unknown  int                       // rows of the unknown-outcome table
	Intact   string                    // the chain's data-intact
	Closing  string                    // the closing statement's text
	Text     string                    // all text, for searching
}

// ReadReportPage parses page with a real HTML parser, fails the test if the
// page is not self-contained (a script, or anything loaded from elsewhere),
// and returns its numbers.
func ReadReportPage(t testing.TB, page []byte) *ReportPage {
	t.Helper()
	doc, err := html.Parse(bytes.NewReader(page))
	if err != nil {
		t.Fatalf("report page does not parse: %v", err)
	}
	p := &ReportPage{Bars: map[string]map[string]int{}, Values: map[string]string{}, Outcomes: map[string]int{},
		Refusals: map[string]int{}, Leaves: map[string]map[string]int{}, TLS: map[string]map[string]int{}}
	var text strings.Builder
	var walk func(n *html.Node, host string, inUnknown bool)
	walk = func(n *html.Node, host string, inUnknown bool) {
		if n.Type == html.TextNode {
			text.WriteString(n.Data)
		}
		if n.Type == html.ElementNode {
			a := map[string]string{}
			for _, at := range n.Attr {
				a[at.Key] = at.Val
				if strings.HasPrefix(at.Key, "on") {
					t.Errorf("report page has an event handler %s: it must need no script", at.Key)
				}
			}
			switch n.Data {
			case "script", "link", "img", "iframe", "object", "embed", "image", "use":
				t.Errorf("report page has a <%s>: it must be self-contained and need no script", n.Data)
			}
			for _, k := range []string{"src", "href", "xlink:href"} {
				if _, ok := a[k]; ok {
					t.Errorf("report page loads or links %s=%q: it must be self-contained", k, a[k])
				}
			}
			if strings.Contains(a["style"], "url(") {
				t.Errorf("report page style loads a url: %q", a["style"])
			}
			count, _ := strconv.Atoi(a["data-count"])
			switch {
			case n.Data == "rect" && a["data-day"] != "":
				if p.Bars[a["data-day"]] == nil {
					p.Bars[a["data-day"]] = map[string]int{}
				}
				p.Bars[a["data-day"]][a["data-outcome"]] += count
			case a["id"] != "" && a["data-value"] != "":
				p.Values[a["id"]] = a["data-value"]
			case n.Data == "tr" && a["data-outcome"] != "":
				p.Outcomes[a["data-outcome"]] = count
			case n.Data == "tr" && a["data-reason"] != "":
				p.Refusals[a["data-reason"]] = count
			case n.Data == "section" && a["data-host"] != "":
				host = a["data-host"]
				p.Leaves[host], p.TLS[host] = map[string]int{}, map[string]int{}
			case n.Data == "tr" && a["data-leaf"] != "":
				p.Leaves[host][a["data-leaf"]] = count
			case n.Data == "tr" && a["data-tls"] != "":
				p.TLS[host][a["data-tls"]] = count
			case a["id"] == "unknown":
				inUnknown = true
			case n.Data == "tr" && inUnknown && a["data-at"] != "":
				p.Unknown++
			}
			if a["id"] == "chain" {
				p.Intact = a["data-intact"]
			}
			if a["id"] == "closing" {
				p.Closing = strings.TrimSpace(textOf(n))
			}
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c, host, inUnknown)
		}
	}
	walk(doc, "", false)
	p.Text = text.String()
	return p
}

func textOf(n *html.Node) string {
	var b strings.Builder
	var walk func(*html.Node)
	walk = func(n *html.Node) {
		if n.Type == html.TextNode {
			b.WriteString(n.Data)
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c)
		}
	}
	walk(n)
	return b.String()
}

// RenderInBrowser opens the page at path in headless Chromium (skipped
// where it is not installed, failed in CI): it returns the DOM the browser
// built and checks that it painted a screenshot.
func RenderInBrowser(t testing.TB, path string) string {
	t.Helper()
	chromium := testtool.Require(t, "chromium")
	abs, err := filepath.Abs(path)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	shot := filepath.Join(dir, "report.png")
	// --no-sandbox: tests may run as root, where Chromium's sandbox refuses
	// to start; the page is our own and has no script.
	common := []string{"--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
		"--user-data-dir=" + filepath.Join(dir, "profile"), "--window-size=1100,1600"}
	run := func(args ...string) []byte {
		cmd := exec.Command(chromium, append(common, args...)...)
		cmd.Dir = dir
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("chromium %v: %v\n%s", args, err, out)
		}
		return out
	}
	run("--screenshot="+shot, "file://"+abs)
	st, err := os.Stat(shot)
	if err != nil || st.Size() < 10_000 {
		t.Fatalf("chromium painted no screenshot of the report (%v)", err)
	}
	return string(run("--dump-dom", "file://"+abs))
}
