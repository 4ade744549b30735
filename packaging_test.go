package main

import (
	"crypto/sha256"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/BurntSushi/toml"

	"github.com/postern/postern/internal/testtool"
)

// The image's unprivileged user, and where its config and data live.
const (
	imageUID        = 65532
	imageConfigPath = "/etc/postern/config.toml"
	imageVolume     = "/var/lib/postern"
)

// dockerInstr is one Dockerfile instruction: its keyword and the rest.
type dockerInstr struct{ op, args string }

// dockerStages parses the Dockerfile into stages (one per FROM), joining
// continuation lines and dropping comments.
func dockerStages(t *testing.T) [][]dockerInstr {
	t.Helper()
	src, err := os.ReadFile("Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	var stages [][]dockerInstr
	var cur strings.Builder
	for _, line := range strings.Split(string(src), "\n") {
		trimmed := strings.TrimSpace(line)
		if cur.Len() == 0 && (trimmed == "" || strings.HasPrefix(trimmed, "#")) {
			continue
		}
		if rest, ok := strings.CutSuffix(trimmed, `\`); ok {
			cur.WriteString(rest + " ")
			continue
		}
		cur.WriteString(trimmed)
		op, args, _ := strings.Cut(cur.String(), " ")
		cur.Reset()
		in := dockerInstr{strings.ToUpper(op), strings.TrimSpace(args)}
		if in.op == "FROM" {
			stages = append(stages, nil)
		}
		if len(stages) == 0 {
			t.Fatalf("Dockerfile: %s before the first FROM", in.op)
		}
		stages[len(stages)-1] = append(stages[len(stages)-1], in)
	}
	if len(stages) < 2 {
		t.Fatalf("Dockerfile has %d stages, want a build stage and the image", len(stages))
	}
	return stages
}

// only returns the arguments of the one op instruction in stage.
func only(t *testing.T, stage []dockerInstr, op string) string {
	t.Helper()
	var found []string
	for _, in := range stage {
		if in.op == op {
			found = append(found, in.args)
		}
	}
	if len(found) != 1 {
		t.Fatalf("Dockerfile's image stage has %d %s instructions, want 1: %q", len(found), op, found)
	}
	return found[0]
}

// execForm decodes an exec-form (JSON array) argument list.
func execForm(t *testing.T, op, args string) []string {
	t.Helper()
	var out []string
	if err := json.Unmarshal([]byte(args), &out); err != nil {
		t.Fatalf("Dockerfile %s %s: not exec form (a scratch image has no shell): %v", op, args, err)
	}
	return out
}

// imageClaims is what the Dockerfile says about the image it builds.
type imageClaims struct {
	configSrc   string   // file copied to imageConfigPath
	run         []string // ENTRYPOINT + CMD
	healthcheck []string // HEALTHCHECK CMD
}

// checkDockerfileClaims checks, statically, what the image promises: an
// unprivileged user, a data_dir volume made writable for that user, the
// built-in config and the commands run, all in exec form.
func checkDockerfileClaims(t *testing.T) imageClaims {
	t.Helper()
	stages := dockerStages(t)
	build, image := stages[len(stages)-2], stages[len(stages)-1]
	var c imageClaims
	if u := only(t, image, "USER"); u != fmt.Sprintf("%d:%d", imageUID, imageUID) {
		t.Errorf("USER %s, want %d:%d", u, imageUID, imageUID)
	}
	if v := execForm(t, "VOLUME", only(t, image, "VOLUME")); !slices.Equal(v, []string{imageVolume}) {
		t.Errorf("VOLUME %q, want [%q]", v, imageVolume)
	}
	volumeOwned := false
	for _, in := range image {
		if in.op != "COPY" {
			continue
		}
		f := strings.Fields(in.args)
		src, dst, opts := f[len(f)-2], f[len(f)-1], f[:len(f)-2]
		if dst == imageConfigPath && len(opts) == 0 {
			c.configSrc = src
		}
		// COPY --from=build --chown=U:G /out/data/ /var/lib/ with the build
		// stage making /out/data/postern: the volume's mount point exists
		// and belongs to the image's user.
		if slices.Contains(opts, "--from=build") && slices.Contains(opts, fmt.Sprintf("--chown=%d:%d", imageUID, imageUID)) &&
			path.Join(dst, path.Base(imageVolume)) == imageVolume {
			made := path.Join(src, path.Base(imageVolume))
			for _, b := range build {
				if b.op == "RUN" && strings.Contains(b.args, "mkdir") && slices.Contains(strings.Fields(b.args), made) {
					volumeOwned = true
				}
			}
		}
	}
	if !volumeOwned {
		t.Errorf("no COPY --from=build --chown=%d:%d creates %s from a directory the build stage makes", imageUID, imageUID, imageVolume)
	}
	if c.configSrc == "" {
		t.Fatalf("no COPY of the built-in config to %s", imageConfigPath)
	}
	if ports := strings.Fields(strings.Join(func() (p []string) {
		for _, in := range image {
			if in.op == "EXPOSE" {
				p = append(p, in.args)
			}
		}
		return p
	}(), " ")); !slices.Contains(ports, "8080") {
		t.Errorf("EXPOSE %q lacks 8080", ports)
	}
	c.run = append(execForm(t, "ENTRYPOINT", only(t, image, "ENTRYPOINT")), execForm(t, "CMD", only(t, image, "CMD"))...)
	if want := []string{"/postern", "serve", "-config", imageConfigPath}; !slices.Equal(c.run, want) {
		t.Errorf("ENTRYPOINT+CMD %q, want %q", c.run, want)
	}
	hc := only(t, image, "HEALTHCHECK")
	_, hcCmd, ok := strings.Cut(hc, "CMD ")
	if !ok {
		t.Fatalf("HEALTHCHECK %q has no CMD", hc)
	}
	c.healthcheck = execForm(t, "HEALTHCHECK", hcCmd)
	// The health check must read the config the server serves, so it
	// follows that config's admin_listen.
	if want := []string{"/postern", "health", "-config", imageConfigPath}; !slices.Equal(c.healthcheck, want) {
		t.Errorf("HEALTHCHECK CMD %q, want %q", c.healthcheck, want)
	}

	// The built-in config: the sandbox on 0.0.0.0:8080, saying how to
	// mount a real one.
	src, err := os.ReadFile(c.configSrc)
	if err != nil {
		t.Fatal(err)
	}
	var fc struct {
		Server struct {
			Listen string `toml:"listen"`
		} `toml:"server"`
		Route []struct {
			Provider string `toml:"provider"`
		} `toml:"route"`
	}
	if _, err := toml.Decode(string(src), &fc); err != nil {
		t.Fatalf("%s: %v", c.configSrc, err)
	}
	if fc.Server.Listen != "0.0.0.0:8080" {
		t.Errorf("%s: listen %q, want 0.0.0.0:8080", c.configSrc, fc.Server.Listen)
	}
	if len(fc.Route) == 0 {
		t.Errorf("%s has no route", c.configSrc)
	}
	for _, r := range fc.Route {
		if r.Provider != "sandbox" {
			t.Errorf("%s: a route with provider %q; the built-in config must send nothing", c.configSrc, r.Provider)
		}
	}
	if !strings.Contains(string(src), ":"+imageConfigPath+":ro") {
		t.Errorf("%s does not say how to mount a real config over %s", c.configSrc, imageConfigPath)
	}
	return c
}

// TestContainerImage: the image works as shipped. With a running container
// runtime it builds and runs the image; without one it builds the binary
// with the Dockerfile's exact `go build` line and runs it as the image
// would — as uid 65532, with the image's config, entrypoint and health
// check — and checks that the sandbox answers on 0.0.0.0:8080's port and
// sends nothing, that the health check follows admin_listen, and that the
// data_dir volume is writable.
func TestContainerImage(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	c := checkDockerfileClaims(t)
	if t.Failed() {
		return
	}
	if runtime := containerRuntime(); runtime != "" {
		testImageWithRuntime(t, runtime)
		return
	}
	t.Log("no running container runtime: checking the Dockerfile's claims with its go build line and uid 65532")
	testImageWithoutRuntime(t, c)
}

// containerRuntime returns docker or podman when one is installed and its
// daemon answers, else "".
func containerRuntime() string {
	for _, rt := range []string{"docker", "podman"} {
		if _, err := exec.LookPath(rt); err == nil && exec.Command(rt, "info").Run() == nil {
			return rt
		}
	}
	return ""
}

// freeLoopbackPort returns a port nothing listens on right now.
func freeLoopbackPort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	return port
}

// imageRoot lays out the image's files under a fresh directory every user
// can traverse: /postern, the built-in config and the volume owned by the
// image's user. mapPath turns an image path into its place there.
type imageRoot struct {
	dir string
}

func (r imageRoot) mapPath(p string) string {
	if strings.HasPrefix(p, "/") {
		return filepath.Join(r.dir, p)
	}
	return p
}

func (r imageRoot) mapArgs(args []string) []string {
	out := make([]string, len(args))
	for i, a := range args {
		out[i] = r.mapPath(a)
	}
	return out
}

// asImageUser runs cmd as the image's user when the test runs as root (as
// the image does), else as the current user.
func asImageUser(t *testing.T, cmd *exec.Cmd) *exec.Cmd {
	t.Helper()
	if os.Geteuid() == 0 {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: imageUID, Gid: imageUID, NoSetGroups: true}}
	}
	return cmd
}

// startImageProcess starts cmd and waits for its "postern listening" line;
// SIGTERM ends it, as a container runtime stops it.
func startImageProcess(t *testing.T, cmd *exec.Cmd) *daemon {
	t.Helper()
	return startProcess(t, cmd, func() { cmd.Process.Signal(syscall.SIGTERM) })
}

func testImageWithoutRuntime(t *testing.T, c imageClaims) {
	bin := buildDockerBinary(t)
	dir, err := os.MkdirTemp("", "postern-image-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	root := imageRoot{dir}
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	copyFile(t, bin, root.mapPath("/postern"), 0o755)
	// The built-in config as shipped, except for the two ports: the SMS
	// listener keeps 0.0.0.0 (any free port, so parallel test runs never
	// collide) and the admin listener moves to a free port the health
	// check must find by reading the config.
	cfg, err := os.ReadFile(c.configSrc)
	if err != nil {
		t.Fatal(err)
	}
	adminPort := freeLoopbackPort(t)
	cfgText := replaceOnce(t, string(cfg), "\nlisten = \"0.0.0.0:8080\"\n", "\nlisten = \"0.0.0.0:0\"\n")
	cfgText = regexp.MustCompile(`(?m)^admin_listen = ".*"$`).ReplaceAllString(cfgText, `admin_listen = "127.0.0.1:`+adminPort+`"`)
	if !strings.Contains(cfgText, adminPort) {
		t.Fatalf("%s has no admin_listen line to move", c.configSrc)
	}
	writeImageFile(t, root.mapPath(imageConfigPath), cfgText)
	volume := root.mapPath(imageVolume)
	if err := os.MkdirAll(volume, 0o755); err != nil {
		t.Fatal(err)
	}
	if os.Geteuid() == 0 {
		if err := os.Chown(volume, imageUID, imageUID); err != nil {
			t.Fatal(err)
		}
	} else {
		t.Log("not root: running as the current user instead of uid 65532")
	}

	run := root.mapArgs(c.run)
	cmd := asImageUser(t, exec.Command(run[0], run[1:]...))
	cmd.Dir, cmd.Env = "/", []string{} // the image sets neither
	d := startImageProcess(t, cmd)
	if os.Geteuid() == 0 {
		status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", d.cmd.Process.Pid))
		if err != nil || !regexp.MustCompile(`(?m)^Uid:\s+65532\s`).Match(status) {
			t.Errorf("postern does not run as uid %d (%v):\n%s", imageUID, err, status)
		}
	}
	host, port, err := net.SplitHostPort(d.addr)
	if err != nil || (host != "0.0.0.0" && host != "::") {
		t.Fatalf("listening on %q, want 0.0.0.0 (all addresses)", d.addr)
	}
	resp, err := http.Get("http://127.0.0.1:" + port + "/http/sendmsg?user=a&password=b&api_id=1&to=15551234567&text=hello+image")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || string(body) != "ID: sandbox-1\n" {
		t.Errorf("sandbox answered %d %q, want 200 ID: sandbox-1", resp.StatusCode, body)
	}
	waitFor(t, "the audit line", func() bool { return strings.Contains(d.stdout.String(), `"outcome":"sandbox"`) })

	hc := root.mapArgs(c.healthcheck)
	health := func() (int, string) {
		cmd := asImageUser(t, exec.Command(hc[0], hc[1:]...))
		cmd.Dir = "/"
		out, err := cmd.CombinedOutput()
		if err != nil {
			if ee, ok := err.(*exec.ExitError); ok {
				return ee.ExitCode(), string(out)
			}
			t.Fatal(err)
		}
		return 0, string(out)
	}
	if code, out := health(); code != 0 || out != "ok\n" {
		t.Errorf("HEALTHCHECK %q: exit %d %q, want 0 ok", hc, code, out)
	}
	if out, err := exec.Command(root.mapPath("/postern"), "version").Output(); err != nil || !strings.HasPrefix(string(out), "postern test (commit ") {
		t.Errorf("postern version of the image build: %q %v, want the -X main.version value", out, err)
	}
	d.cmd.Process.Signal(syscall.SIGTERM)
	<-d.exited
	if code, _ := health(); code != 1 {
		t.Errorf("HEALTHCHECK with postern stopped: exit %d, want 1", code)
	}

	// data_dir on the volume: the interception CA is created there by the
	// image's user.
	withData := replaceOnce(t, cfgText, "[server]\n", fmt.Sprintf("[server]\ndata_dir = %q\n", volume)) +
		"\n[intercept]\nhosts = [\"api.clickatell.com\"]\n"
	writeImageFile(t, root.mapPath(imageConfigPath), withData)
	cmd = asImageUser(t, exec.Command(run[0], run[1:]...))
	cmd.Dir, cmd.Env = "/", []string{}
	startImageProcess(t, cmd)
	entries, err := os.ReadDir(volume)
	if err != nil || len(entries) == 0 {
		t.Fatalf("nothing written to the data_dir volume (%v)", err)
	}
	if os.Geteuid() == 0 {
		for _, e := range entries {
			fi, err := os.Stat(filepath.Join(volume, e.Name()))
			if err != nil {
				t.Fatal(err)
			}
			if st := fi.Sys().(*syscall.Stat_t); st.Uid != imageUID {
				t.Errorf("%s in the volume belongs to uid %d, want %d", e.Name(), st.Uid, imageUID)
			}
		}
	}
}

// testImageWithRuntime builds and runs the real image.
func testImageWithRuntime(t *testing.T, rt string) {
	tag := fmt.Sprintf("postern-test:%d", time.Now().UnixNano())
	runOut := func(args ...string) string {
		t.Helper()
		out, err := exec.Command(rt, args...).CombinedOutput()
		if err != nil {
			t.Fatalf("%s %s: %v\n%s", rt, strings.Join(args, " "), err, out)
		}
		return strings.TrimSpace(string(out))
	}
	runOut("build", "--build-arg", "VERSION=test", "-t", tag, ".")
	t.Cleanup(func() { exec.Command(rt, "rmi", "-f", tag).Run() })
	if u := runOut("image", "inspect", "-f", "{{.Config.User}}", tag); u != fmt.Sprintf("%d:%d", imageUID, imageUID) {
		t.Errorf("image user %q", u)
	}
	if v := runOut("run", "--rm", tag, "version"); !strings.HasPrefix(v, "postern test (commit ") {
		t.Errorf("version in the image: %q", v)
	}
	start := func(extra ...string) (id, port string) {
		t.Helper()
		args := append([]string{"run", "-d", "-p", "127.0.0.1::8080", "--health-interval", "1s", "--health-start-period", "1s"}, extra...)
		id = runOut(append(args, tag)...)
		t.Cleanup(func() { exec.Command(rt, "rm", "-f", id).Run() })
		mapped := runOut("port", id, "8080/tcp")
		_, port, err := net.SplitHostPort(strings.Split(mapped, "\n")[0])
		if err != nil {
			t.Fatalf("%s port: %q", rt, mapped)
		}
		healthy := false
		for range 120 {
			if runOut("inspect", "-f", "{{.State.Health.Status}}", id) == "healthy" {
				healthy = true
				break
			}
			time.Sleep(500 * time.Millisecond)
		}
		if !healthy {
			t.Fatalf("container never became healthy; logs:\n%s", runOut("logs", id))
		}
		return id, port
	}
	_, port := start()
	resp, err := http.Get("http://127.0.0.1:" + port + "/http/sendmsg?user=a&password=b&api_id=1&to=15551234567&text=hello+image")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || string(body) != "ID: sandbox-1\n" {
		t.Errorf("sandbox answered %d %q, want 200 ID: sandbox-1", resp.StatusCode, body)
	}

	// A mounted config with data_dir on the volume and a moved admin
	// listener: the container starts (the volume is writable) and the
	// health check finds the new admin port.
	cfg, err := os.ReadFile("deploy/container.toml")
	if err != nil {
		t.Fatal(err)
	}
	mounted := strings.Replace(string(cfg), "[server]\n", "[server]\ndata_dir = \""+imageVolume+"\"\n", 1)
	mounted = strings.Replace(mounted, `admin_listen = "127.0.0.1:9090"`, `admin_listen = "127.0.0.1:9191"`, 1) +
		"\n[intercept]\nhosts = [\"api.clickatell.com\"]\n"
	dir := t.TempDir()
	os.Chmod(dir, 0o755)
	writeImageFile(t, filepath.Join(dir, "config.toml"), mounted)
	start("-v", filepath.Join(dir, "config.toml")+":"+imageConfigPath+":ro")
}

func certPEM(der []byte) string {
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
}

func replaceOnce(t *testing.T, s, old, new string) string {
	t.Helper()
	if strings.Count(s, old) != 1 {
		t.Fatalf("want exactly one %q in:\n%s", old, s)
	}
	return strings.Replace(s, old, new, 1)
}

func writeImageFile(t *testing.T, p, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func copyFile(t *testing.T, from, to string, mode os.FileMode) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Dir(to), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, mode); err != nil {
		t.Fatal(err)
	}
}

// dockerignored reports whether .dockerignore's patterns keep name (a
// slash-separated path relative to the context) out of the build context,
// with Docker's rules: each pattern matches from the context root, "**"
// matches any number of directories, a match on a directory excludes what
// is inside, and a later "!pattern" re-includes.
func dockerignored(patterns []string, name string) bool {
	excluded := false
	for _, p := range patterns {
		neg := strings.HasPrefix(p, "!")
		p = strings.TrimPrefix(strings.TrimPrefix(p, "!"), "/")
		re := dockerignoreRegexp(path.Clean(p))
		// The path itself or any directory above it.
		parts := strings.Split(name, "/")
		for i := range parts {
			if re.MatchString(strings.Join(parts[:i+1], "/")) {
				excluded = !neg
				break
			}
		}
	}
	return excluded
}

func dockerignoreRegexp(p string) *regexp.Regexp {
	var b strings.Builder
	b.WriteString("^")
	for i := 0; i < len(p); i++ {
		switch {
		case strings.HasPrefix(p[i:], "**/"):
			b.WriteString("(.*/)?")
			i += 2
		case strings.HasPrefix(p[i:], "**"):
			b.WriteString(".*")
			i++
		case p[i] == '*':
			b.WriteString("[^/]*")
		case p[i] == '?':
			b.WriteString("[^/]")
		default:
			b.WriteString(regexp.QuoteMeta(p[i : i+1]))
		}
	}
	b.WriteString("$")
	return regexp.MustCompile(b.String())
}

// TestDockerignore: the build context carries the sources the Dockerfile
// needs and none of the history, local binaries, keys or certificates.
func TestDockerignore(t *testing.T) {
	src, err := os.ReadFile(".dockerignore")
	if err != nil {
		t.Fatal(err)
	}
	var patterns []string
	for _, l := range strings.Split(string(src), "\n") {
		if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "#") {
			patterns = append(patterns, l)
		}
	}
	for _, name := range []string{".git", ".git/HEAD", ".git/objects/ab/cdef", "postern", "postern-linux-amd64", "postern.test",
		"proxy/proxy.test", "server.pem", "server.key", "deploy/tls/ise.key", "trust/trusttest/leaf.pem", "certs/ca.crt",
		"deploy/postern.env", ".env", "cpu.prof"} {
		if !dockerignored(patterns, name) {
			t.Errorf(".dockerignore lets %s into the build context", name)
		}
	}
	// Everything the build needs: go.mod, go.sum, every package and the
	// built-in config (and the embedded sandbox config).
	needed := []string{"go.mod", "go.sum", "main.go", "proxy/sandbox.toml", "deploy/container.toml"}
	for _, pkg := range []string{"proxy", "rewrite", "trust"} {
		files, _ := filepath.Glob(pkg + "/*.go")
		needed = append(needed, files...)
	}
	for _, name := range needed {
		if dockerignored(patterns, filepath.ToSlash(name)) {
			t.Errorf(".dockerignore keeps %s, which the image build needs, out of the build context", name)
		}
	}
}

// TestVersionFromGitCheckout: a plain `go build` in a git checkout gives a
// binary whose `postern version` names the release tag (or a
// pseudo-version), the commit and local modifications, and whose provider
// requests carry User-Agent: postern/<that version>. The checkout is a
// copy of this tree committed into a fresh repository (a worktree's .git
// is a file, which the go command does not stamp from).
func TestVersionFromGitCheckout(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	testtool.Require(t, "git")
	repo := t.TempDir()
	files, err := exec.Command("git", "ls-files", "-z", "--cached", "--others", "--exclude-standard").Output()
	if err != nil {
		t.Fatalf("git ls-files: %v", err)
	}
	for _, f := range strings.Split(strings.TrimRight(string(files), "\x00"), "\x00") {
		if fi, err := os.Stat(f); err == nil && fi.Mode().IsRegular() {
			copyFile(t, f, filepath.Join(repo, f), 0o644)
		}
	}
	git := func(args ...string) string {
		t.Helper()
		cmd := exec.Command("git", append([]string{"-c", "user.name=t", "-c", "user.email=t@example.invalid", "-c", "commit.gpgsign=false", "-c", "tag.gpgsign=false"}, args...)...)
		cmd.Dir = repo
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return strings.TrimSpace(string(out))
	}
	git("init", "-q")
	git("add", "-A")
	git("commit", "-q", "-m", "release")
	git("tag", "v1.4.2")
	commit := git("rev-parse", "HEAD")

	bin := filepath.Join(t.TempDir(), "postern")
	build := func() string {
		t.Helper()
		// -buildvcs=true: what a fresh Go install does by default ("auto"),
		// spelled out so a GOFLAGS=-buildvcs=false elsewhere cannot hide a
		// regression.
		cmd := exec.Command("go", "build", "-buildvcs=true", "-o", bin, ".")
		cmd.Dir = repo
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("go build: %v\n%s", err, out)
		}
		out, err := exec.Command(bin, "version").Output()
		if err != nil {
			t.Fatal(err)
		}
		return strings.TrimSpace(string(out))
	}
	if got, want := build(), "postern v1.4.2 (commit "+commit+", go"; !strings.HasPrefix(got, want) {
		t.Errorf("postern version of a tagged checkout: %q, want prefix %q", got, want)
	}

	// The version reaches providers.
	var mu sync.Mutex
	var agents []string
	provider := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		agents = append(agents, r.Header.Get("User-Agent"))
		mu.Unlock()
		w.WriteHeader(http.StatusAccepted)
		io.WriteString(w, `{"messages":[{"apiMessageId":"ua1","accepted":true,"to":"15551234567","error":null}],"error":null}`)
	}))
	defer provider.Close()
	dir := t.TempDir()
	ca := writeFile(t, dir, "ca.pem", certPEM(provider.Certificate().Raw))
	cfg := writeFile(t, dir, "postern.toml", fmt.Sprintf(`
[trust]
ca_files = [%q]

[[route]]
name = "one"
match_path = "/http/sendmsg"
inbound = "clickatell-http"
provider = "clickatell-one"
endpoint = "%s/v1/message"
token = "env:CLICKATELL_API_KEY"
`, ca, provider.URL))
	d := startDaemon(t, bin, dir, []string{"CLICKATELL_API_KEY=k-ua"}, "serve", "-config", cfg)
	if resp, err := http.Get("http://" + d.addr + "/http/sendmsg?to=15551234567&text=hi"); err != nil {
		t.Fatal(err)
	} else {
		resp.Body.Close()
	}
	mu.Lock()
	if len(agents) != 1 || agents[0] != "postern/v1.4.2" {
		t.Errorf("provider saw User-Agent %q, want [postern/v1.4.2]", agents)
	}
	mu.Unlock()

	// Uncommitted changes show in both the version and the commit.
	if err := os.WriteFile(filepath.Join(repo, "LOCAL-CHANGE"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if got, want := build(), "postern v1.4.2+dirty (commit "+commit+"-modified, go"; !strings.HasPrefix(got, want) {
		t.Errorf("postern version of a modified checkout: %q, want prefix %q", got, want)
	}
}

// TestAdminURLFollowsConfig: `postern health` and `postern reload` reach
// the admin listener the config names; a wildcard address is reached on
// loopback, and a disabled listener is a clear error.
func TestAdminURLFollowsConfig(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct{ config, want, wantErr string }{
		{"[server]\nadmin_listen = \"127.0.0.1:9191\"\n", "http://127.0.0.1:9191/healthz", ""},
		{"[server]\nadmin_listen = \"0.0.0.0:9292\"\n", "http://127.0.0.1:9292/healthz", ""},
		{"[server]\nadmin_listen = \"[::]:9393\"\n", "http://[::1]:9393/healthz", ""},
		{"[server]\nadmin_listen = \":9494\"\n", "http://127.0.0.1:9494/healthz", ""},
		{"[server]\nlisten = \"0.0.0.0:8080\"\n", "http://127.0.0.1:9090/healthz", ""},
		// Only admin_listen is read: route secrets need not be set.
		{"[[route]]\nname = \"r\"\ntoken = \"env:POSTERN_NOT_SET\"\n", "http://127.0.0.1:9090/healthz", ""},
		{"[server]\nadmin_listen = \"off\"\n", "", `admin_listen = "off"`},
		{"[server]\nadmin_listen = \"9090\"\n", "", "missing port"},
	} {
		p := writeFile(t, dir, "c.toml", tc.config)
		got, err := adminURL("", p, "/healthz")
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("%q: got %q, %v; want an error with %q", tc.config, got, err, tc.wantErr)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("%q: got %q, %v; want %q", tc.config, got, err, tc.want)
		}
	}
	if got, _ := adminURL("http://10.0.0.1:1/healthz", "/nonexistent", "/healthz"); got != "http://10.0.0.1:1/healthz" {
		t.Errorf("-url should win over -config, got %q", got)
	}
	if code, _, stderr := runCLI(t, "health", "-config", writeFile(t, dir, "off.toml", "[server]\nadmin_listen = \"off\"\n")); code != 1 || !strings.Contains(stderr, "admin listener is disabled") {
		t.Errorf("health with admin_listen off: exit %d %q, want 1 and why", code, stderr)
	}
}

// TestLicenseAndChangelog: LICENSE is the unmodified Apache License 2.0
// text, and CHANGELOG.md starts with what is not yet released.
func TestLicenseAndChangelog(t *testing.T) {
	lic, err := os.ReadFile("LICENSE")
	if err != nil {
		t.Fatal(err)
	}
	// SHA-256 of https://www.apache.org/licenses/LICENSE-2.0.txt as
	// distributed (Debian's /usr/share/common-licenses/Apache-2.0).
	const apache2 = "cfc7749b96f63bd31c3c42b5c471bf756814053e847c10f3eb003417bc523d30"
	if sum := fmt.Sprintf("%x", sha256.Sum256(lic)); sum != apache2 {
		t.Errorf("LICENSE is not the Apache License 2.0 text (sha256 %s)", sum)
	}
	cl, err := os.ReadFile("CHANGELOG.md")
	if err != nil {
		t.Fatal(err)
	}
	headings := regexp.MustCompile(`(?m)^## .*$`).FindAllString(string(cl), -1)
	if len(headings) < 2 || !strings.HasPrefix(headings[0], "## Unreleased") {
		t.Errorf("CHANGELOG.md sections %q: want Unreleased first, then the history", headings)
	}
}
