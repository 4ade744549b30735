package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/BurntSushi/toml"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"sigs.k8s.io/yaml"

	"github.com/postern/postern/internal/testtool"
)

// kubernetesConfig returns the config.toml held by deploy/kubernetes.yaml's
// ConfigMap.
func kubernetesConfig(t *testing.T) string {
	t.Helper()
	objs := kubernetesObjects(t)
	for _, o := range objs {
		if cm, ok := o.(*corev1.ConfigMap); ok {
			if cfg, ok := cm.Data["config.toml"]; ok {
				return cfg
			}
		}
	}
	t.Fatal("no config.toml in the ConfigMap")
	return ""
}

// TestKubernetesConfigMapIsValid: the config shipped in
// deploy/kubernetes.yaml passes `postern check`.
func TestKubernetesConfigMapIsValid(t *testing.T) {
	t.Setenv("CLICKATELL_API_KEY", "k-SECRET-k8s")
	t.Setenv("REDIS_PASSWORD", "r-SECRET-k8s")
	path := filepath.Join(t.TempDir(), "config.toml")
	if err := os.WriteFile(path, []byte(kubernetesConfig(t)), 0o600); err != nil {
		t.Fatal(err)
	}
	if code, stdout, stderr := runCLI(t, "check", "-config", path); code != 0 {
		t.Fatalf("postern check of the ConfigMap's config: exit %d\n%s%s", code, stdout, stderr)
	}
}

// kubernetesKinds maps each apiVersion/kind the manifest may hold to its
// Kubernetes API type.
var kubernetesKinds = map[string]func() any{
	"v1/ConfigMap":                       func() any { return &corev1.ConfigMap{} },
	"v1/Service":                         func() any { return &corev1.Service{} },
	"apps/v1/Deployment":                 func() any { return &appsv1.Deployment{} },
	"policy/v1/PodDisruptionBudget":      func() any { return &policyv1.PodDisruptionBudget{} },
	"networking.k8s.io/v1/NetworkPolicy": func() any { return &networkingv1.NetworkPolicy{} },
}

// decodeKubernetes decodes one YAML document strictly into its API type:
// an unknown or misspelt field, a duplicate key or a wrong type is an error,
// as `kubectl apply --validate=strict` would make it.
func decodeKubernetes(doc []byte) (any, error) {
	var tm metav1.TypeMeta
	if err := yaml.Unmarshal(doc, &tm); err != nil {
		return nil, err
	}
	newObj := kubernetesKinds[tm.APIVersion+"/"+tm.Kind]
	if newObj == nil {
		return nil, fmt.Errorf("unexpected object %s/%s", tm.APIVersion, tm.Kind)
	}
	obj := newObj()
	if err := yaml.UnmarshalStrict(doc, obj); err != nil {
		return nil, fmt.Errorf("%s: %w", tm.Kind, err)
	}
	return obj, nil
}

func kubernetesDocs(t *testing.T) [][]byte {
	t.Helper()
	src, err := os.ReadFile("deploy/kubernetes.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var docs [][]byte
	for _, d := range regexp.MustCompile(`(?m)^---\s*$`).Split(string(src), -1) {
		if strings.TrimSpace(regexp.MustCompile(`(?m)^#.*$`).ReplaceAllString(d, "")) != "" {
			docs = append(docs, []byte(d))
		}
	}
	return docs
}

func kubernetesObjects(t *testing.T) []any {
	t.Helper()
	var objs []any
	for i, d := range kubernetesDocs(t) {
		o, err := decodeKubernetes(d)
		if err != nil {
			t.Fatalf("deploy/kubernetes.yaml document %d: %v", i+1, err)
		}
		objs = append(objs, o)
	}
	return objs
}

// TestKubernetesManifest decodes every object of deploy/kubernetes.yaml
// strictly with the Kubernetes API types and checks what docs/operations.md
// promises: two replicas kept one-available through disruptions, a
// NetworkPolicy that admits the SMS port from exactly the ISE nodes of
// allow_clients and the admin port from the monitoring namespace only,
// probes and a Service on the ports the container and config really use,
// and an image reference docs/operations.md explains how to build and push.
func TestKubernetesManifest(t *testing.T) {
	// The decoder is strict: a misspelt field fails. (Proves this test
	// would catch one in the manifest.)
	for _, d := range kubernetesDocs(t) {
		if bytes.Contains(d, []byte("minAvailable: 1")) {
			if _, err := decodeKubernetes(bytes.Replace(d, []byte("minAvailable:"), []byte("minAvailible:"), 1)); err == nil ||
				!strings.Contains(err.Error(), "minAvailible") {
				t.Fatalf("strict decoding accepted a misspelt field (%v)", err)
			}
		}
	}

	var (
		dep  *appsv1.Deployment
		svc  *corev1.Service
		pdb  *policyv1.PodDisruptionBudget
		netp *networkingv1.NetworkPolicy
	)
	for _, o := range kubernetesObjects(t) {
		switch o := o.(type) {
		case *appsv1.Deployment:
			if o.Name == "postern" {
				dep = o
			}
		case *corev1.Service:
			if o.Name == "postern" {
				svc = o
			}
		case *policyv1.PodDisruptionBudget:
			pdb = o
		case *networkingv1.NetworkPolicy:
			if o.Name == "postern" {
				netp = o
			}
		}
	}
	if dep == nil || svc == nil || pdb == nil || netp == nil {
		t.Fatalf("want a Deployment, Service, PodDisruptionBudget and NetworkPolicy; got %v %v %v %v", dep != nil, svc != nil, pdb != nil, netp != nil)
	}
	podLabels := dep.Spec.Template.Labels
	selects := func(what string, sel *metav1.LabelSelector) {
		t.Helper()
		s, err := metav1.LabelSelectorAsSelector(sel)
		if err != nil || s.Empty() || !s.Matches(labels.Set(podLabels)) {
			t.Errorf("%s selector %v does not select the postern pods %v (%v)", what, sel, podLabels, err)
		}
	}
	selects("Deployment", dep.Spec.Selector)
	selects("PodDisruptionBudget", pdb.Spec.Selector)
	selects("NetworkPolicy", &netp.Spec.PodSelector)
	if dep.Spec.Replicas == nil || *dep.Spec.Replicas < 2 {
		t.Errorf("replicas %v, want at least 2", dep.Spec.Replicas)
	}
	if pdb.Spec.MinAvailable == nil || pdb.Spec.MinAvailable.IntValue() != 1 || pdb.Spec.MaxUnavailable != nil {
		t.Errorf("PodDisruptionBudget minAvailable %v, maxUnavailable %v; want minAvailable 1", pdb.Spec.MinAvailable, pdb.Spec.MaxUnavailable)
	}

	// The config the pods run: its ports and its ISE nodes.
	var cfg struct {
		Server struct {
			Listen       string   `toml:"listen"`
			AdminListen  string   `toml:"admin_listen"`
			AllowClients []string `toml:"allow_clients"`
		} `toml:"server"`
	}
	if _, err := toml.Decode(kubernetesConfig(t), &cfg); err != nil {
		t.Fatal(err)
	}
	if len(dep.Spec.Template.Spec.Containers) != 1 {
		t.Fatalf("%d containers, want 1", len(dep.Spec.Template.Spec.Containers))
	}
	ctr := dep.Spec.Template.Spec.Containers[0]
	ports := map[string]int32{}
	for _, p := range ctr.Ports {
		ports[p.Name] = p.ContainerPort
	}
	if want := ":" + fmt.Sprint(ports["sms"]); !strings.HasSuffix(cfg.Server.Listen, want) {
		t.Errorf("container port sms %d, but the config listens on %q", ports["sms"], cfg.Server.Listen)
	}
	if want := ":" + fmt.Sprint(ports["admin"]); !strings.HasSuffix(cfg.Server.AdminListen, want) || !strings.HasPrefix(cfg.Server.AdminListen, "0.0.0.0:") {
		t.Errorf("container port admin %d, but the config's admin_listen is %q (probes need the pod IP)", ports["admin"], cfg.Server.AdminListen)
	}
	for name, probe := range map[string]*corev1.Probe{"readiness": ctr.ReadinessProbe, "liveness": ctr.LivenessProbe} {
		if probe == nil || probe.HTTPGet == nil || probe.HTTPGet.Port.String() != "admin" {
			t.Errorf("%s probe %+v, want an HTTP GET on the admin port", name, probe)
		}
	}
	if len(svc.Spec.Ports) != 1 || svc.Spec.Ports[0].TargetPort.String() != "sms" || svc.Spec.ExternalTrafficPolicy != corev1.ServiceExternalTrafficPolicyLocal {
		t.Errorf("Service %+v, want only the sms port, externalTrafficPolicy Local (keeps ISE's address)", svc.Spec)
	}

	// NetworkPolicy: SMS from exactly allow_clients, admin from the
	// monitoring namespace, nothing else.
	if !slices.Equal(netp.Spec.PolicyTypes, []networkingv1.PolicyType{networkingv1.PolicyTypeIngress}) {
		t.Errorf("NetworkPolicy policyTypes %v, want [Ingress]", netp.Spec.PolicyTypes)
	}
	var allowed []string
	for _, c := range cfg.Server.AllowClients {
		p, err := netip.ParsePrefix(c)
		if err != nil {
			a, err := netip.ParseAddr(c)
			if err != nil {
				t.Fatalf("allow_clients %q", c)
			}
			p = netip.PrefixFrom(a, a.BitLen())
		}
		allowed = append(allowed, p.String())
	}
	slices.Sort(allowed)
	var sms, admin bool
	for _, rule := range netp.Spec.Ingress {
		if len(rule.Ports) != 1 || rule.Ports[0].Port == nil {
			t.Errorf("NetworkPolicy rule %+v: want exactly one port", rule)
			continue
		}
		switch port := rule.Ports[0].Port.String(); port {
		case "sms", fmt.Sprint(ports["sms"]):
			sms = true
			var blocks []string
			for _, peer := range rule.From {
				if peer.IPBlock == nil || peer.NamespaceSelector != nil || peer.PodSelector != nil || len(peer.IPBlock.Except) > 0 {
					t.Errorf("SMS port admits %+v; want only the ISE nodes' ipBlocks", peer)
					continue
				}
				blocks = append(blocks, peer.IPBlock.CIDR)
			}
			slices.Sort(blocks)
			if !slices.Equal(blocks, allowed) {
				t.Errorf("SMS port admits %v, but allow_clients is %v: they must match", blocks, allowed)
			}
		case "admin", fmt.Sprint(ports["admin"]):
			admin = true
			if len(rule.From) != 1 || rule.From[0].NamespaceSelector == nil || rule.From[0].IPBlock != nil || rule.From[0].PodSelector != nil ||
				rule.From[0].NamespaceSelector.MatchLabels["kubernetes.io/metadata.name"] != "monitoring" {
				t.Errorf("admin port admits %+v, want the monitoring namespace only", rule.From)
			}
		default:
			t.Errorf("NetworkPolicy admits port %s, which postern does not serve", port)
		}
	}
	if !sms || !admin {
		t.Errorf("NetworkPolicy rules for sms %v, admin %v; want both", sms, admin)
	}

	// The image: one docs/operations.md says how to build and push.
	readme, err := os.ReadFile("docs/operations.md")
	if err != nil {
		t.Fatal(err)
	}
	repo, _, _ := strings.Cut(ctr.Image, ":")
	for _, want := range []string{"docker build", "-t " + repo + ":", "docker push " + repo + ":", ctr.Image} {
		if !strings.Contains(string(readme), want) {
			t.Errorf("docs/operations.md does not explain the image %s: no %q", ctr.Image, want)
		}
	}
}

// TestKubernetesStore: the manifest's optional store is what its config's
// [cluster] names: a Service at redis's host and port selecting a Redis
// Deployment that listens there, started with the password postern reads
// (the same Secret key as redis_password's env:), and reachable only from
// the postern pods.
func TestKubernetesStore(t *testing.T) {
	var cfg struct {
		Cluster struct {
			Redis         string `toml:"redis"`
			RedisPassword string `toml:"redis_password"`
		} `toml:"cluster"`
	}
	if _, err := toml.Decode(kubernetesConfig(t), &cfg); err != nil {
		t.Fatal(err)
	}
	u, err := url.Parse(cfg.Cluster.Redis)
	if err != nil || u.Hostname() == "" {
		t.Fatalf("[cluster] redis %q", cfg.Cluster.Redis)
	}
	passwordEnv, ok := strings.CutPrefix(cfg.Cluster.RedisPassword, "env:")
	if !ok {
		t.Fatalf("redis_password %q, want env: from the Secret", cfg.Cluster.RedisPassword)
	}
	var dep, postern *appsv1.Deployment
	var svc *corev1.Service
	var netp *networkingv1.NetworkPolicy
	for _, o := range kubernetesObjects(t) {
		switch o := o.(type) {
		case *appsv1.Deployment:
			if o.Name == u.Hostname() {
				dep = o
			}
			if o.Name == "postern" {
				postern = o
			}
		case *corev1.Service:
			if o.Name == u.Hostname() {
				svc = o
			}
		case *networkingv1.NetworkPolicy:
			if o.Name == u.Hostname() {
				netp = o
			}
		}
	}
	if dep == nil || svc == nil || netp == nil || postern == nil {
		t.Fatalf("want a Deployment, Service and NetworkPolicy named %s; got %v %v %v", u.Hostname(), dep != nil, svc != nil, netp != nil)
	}
	storeLabels := labels.Set(dep.Spec.Template.Labels)
	if !labels.SelectorFromSet(svc.Spec.Selector).Matches(storeLabels) || len(svc.Spec.Ports) != 1 ||
		fmt.Sprint(svc.Spec.Ports[0].Port) != u.Port() {
		t.Errorf("Service %s %+v does not serve the store at port %s", svc.Name, svc.Spec, u.Port())
	}
	ctr := dep.Spec.Template.Spec.Containers[0]
	if len(ctr.Ports) != 1 || ctr.Ports[0].Name != svc.Spec.Ports[0].TargetPort.String() || fmt.Sprint(ctr.Ports[0].ContainerPort) != "6379" {
		t.Errorf("store container ports %+v, Service targetPort %s", ctr.Ports, svc.Spec.Ports[0].TargetPort.String())
	}
	if !slices.Contains(ctr.Args, "--requirepass") || !slices.Contains(ctr.Args, "$("+passwordEnv+")") {
		t.Errorf("store args %v: want --requirepass $(%s)", ctr.Args, passwordEnv)
	}
	var secretOK bool
	for _, e := range ctr.Env {
		if e.Name == passwordEnv && e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil && e.ValueFrom.SecretKeyRef.Key == passwordEnv &&
			e.ValueFrom.SecretKeyRef.Name == postern.Spec.Template.Spec.Containers[0].EnvFrom[0].SecretRef.Name {
			secretOK = true
		}
	}
	if !secretOK {
		t.Errorf("store env %+v: want %s from the Secret postern reads", ctr.Env, passwordEnv)
	}
	s, err := metav1.LabelSelectorAsSelector(&netp.Spec.PodSelector)
	if err != nil || !s.Matches(storeLabels) || len(netp.Spec.Ingress) != 1 || len(netp.Spec.Ingress[0].From) != 1 {
		t.Fatalf("store NetworkPolicy %+v", netp.Spec)
	}
	from := netp.Spec.Ingress[0].From[0]
	fs, err := metav1.LabelSelectorAsSelector(from.PodSelector)
	if err != nil || from.IPBlock != nil || from.NamespaceSelector != nil || !fs.Matches(labels.Set(postern.Spec.Template.Labels)) || fs.Matches(storeLabels) {
		t.Errorf("store NetworkPolicy admits %+v, want only the postern pods", from)
	}
}

// systemdVerify runs `systemd-analyze verify` on unit text with the
// binary at /usr/local/bin/postern replaced by bin (verify checks that
// every Exec*= command exists), and returns what it reported: nothing for a
// clean unit. Warnings (an unknown key, a bad value) exit 0 but print, so
// any output counts.
func systemdVerify(t *testing.T, unit, bin string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "postern.service")
	if err := os.WriteFile(p, []byte(strings.ReplaceAll(unit, "/usr/local/bin/postern", bin)), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("systemd-analyze", "verify", "--man=no", p).CombinedOutput()
	if err != nil && len(out) == 0 {
		return fmt.Sprintf("systemd-analyze verify: %v", err)
	}
	return strings.TrimSpace(string(out))
}

// TestSystemdUnit: deploy/postern.service verifies cleanly with systemd's
// own checker, keeps its hardening, gives postern the directories a
// config needs under ProtectSystem=strict, and reloads with `postern
// reload` so that `systemctl reload` fails when the config is rejected.
func TestSystemdUnit(t *testing.T) {
	src, err := os.ReadFile("deploy/postern.service")
	if err != nil {
		t.Fatal(err)
	}
	unit := string(src)
	lines := map[string]bool{}
	for _, l := range strings.Split(unit, "\n") {
		lines[strings.TrimSpace(l)] = true
	}
	const reload = "ExecReload=/usr/local/bin/postern reload -config /etc/postern/config.toml"
	for _, want := range []string{"DynamicUser=yes", "ProtectSystem=strict", "NoNewPrivileges=yes", "CapabilityBoundingSet=",
		"AmbientCapabilities=", "PrivateTmp=yes", "StateDirectory=postern", "LogsDirectory=postern", "ConfigurationDirectory=postern",
		reload} {
		if !lines[want] {
			t.Errorf("deploy/postern.service lacks %q", want)
		}
	}
	for _, l := range strings.Split(unit, "\n") {
		if strings.HasPrefix(l, "ReadWritePaths=") {
			t.Errorf("%q: the writable directories are StateDirectory and LogsDirectory", l)
		}
	}
	if testing.Short() {
		t.Skip("builds the binary")
	}
	bin := buildDockerBinary(t)

	if _, err := exec.LookPath("systemd-analyze"); err != nil {
		if testtool.InCI() {
			t.Fatal("systemd-analyze is not installed, and CI (CI=true) requires its check: .ci/run installs it")
		}
		t.Log("systemd-analyze is not installed (.ci/run installs it): skipping systemd's own check")
	} else {
		if out := systemdVerify(t, unit, bin); out != "" {
			t.Errorf("systemd-analyze verify deploy/postern.service:\n%s", out)
		}
		// The checker is live: a broken directive is reported.
		if out := systemdVerify(t, strings.Replace(unit, "StateDirectory=postern", "StateDirectory=/var/lib/postern", 1), bin); !strings.Contains(out, "StateDirectory") {
			t.Errorf("systemd-analyze verify did not report an absolute StateDirectory: %q", out)
		}
	}

	// data_dir and the audit file in the unit's directories are a valid
	// config (the paths docs/operations.md tells systemd users to set).
	dir := t.TempDir()
	stateDir, logsDir := filepath.Join(dir, "var/lib/postern"), filepath.Join(dir, "var/log/postern")
	for _, d := range []string{stateDir, logsDir} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}

	// ExecReload as systemd runs it: exit 0 when the new config serves,
	// non-zero (systemctl reload fails) when it is rejected.
	admin := "127.0.0.1:" + freeLoopbackPort(t)
	good := fmt.Sprintf("[server]\nadmin_listen = %q\ndata_dir = %q\n\n[audit]\nfile = %q\n%s", admin, stateDir, filepath.Join(logsDir, "audit.log"), sandboxRouteTOML)
	cfg := writeFile(t, dir, "config.toml", good)
	d := startDaemon(t, bin, dir, []string{}, "serve", "-config", cfg, "-admin-listen", admin)
	execReload := strings.Fields(strings.TrimPrefix(reload, "ExecReload="))
	execReload[0] = bin
	execReload[len(execReload)-1] = cfg
	reloadRun := func() (int, string) {
		out, err := exec.Command(execReload[0], execReload[1:]...).CombinedOutput()
		if ee, ok := err.(*exec.ExitError); ok {
			return ee.ExitCode(), string(out)
		} else if err != nil {
			t.Fatal(err)
		}
		return 0, string(out)
	}
	if code, out := reloadRun(); code != 0 {
		t.Errorf("ExecReload with a good config: exit %d %q, want 0", code, out)
	}
	if err := os.WriteFile(cfg, []byte(good+"\nnot toml at all\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if code, out := reloadRun(); code == 0 || !strings.Contains(out, "config.toml:") {
		t.Errorf("ExecReload with a rejected config: exit %d %q, want non-zero and the reason", code, out)
	}
	if _, err := http.Get("http://" + d.addr + "/http/sendmsg?to=15551234567&text=x"); err != nil {
		t.Fatal(err)
	}
	auditFile := filepath.Join(logsDir, "audit.log")
	waitFor(t, "the audit file in LogsDirectory", func() bool {
		b, _ := os.ReadFile(auditFile)
		return bytes.Contains(b, []byte(`"outcome":"sandbox"`))
	})
	// postern report (the real binary) on that file: the sandbox message is
	// counted as sandbox and said to be not sent, never as delivered.
	out, err := exec.Command(bin, "report", auditFile).CombinedOutput()
	if err != nil || !regexp.MustCompile(`(?m)^\s+1  sandbox$`).Match(out) || bytes.Contains(out, []byte("delivered")) ||
		!bytes.Contains(out, []byte("1 message(s) went to the sandbox provider and were NOT sent.")) {
		t.Errorf("postern report: %v\n%s", err, out)
	}
}

const sandboxRouteTOML = `
[[route]]
name = "sandbox"
match_path = "/http/sendmsg"
inbound = "clickatell-http"
provider = "sandbox"
`

// promMetricName finds the postern metric names a PromQL expression reads.
var promMetricName = regexp.MustCompile(`\bpostern_[a-zA-Z0-9_]+`)

// promLabels finds label names in "by (...)" groupings and {...} matchers.
var (
	promBy      = regexp.MustCompile(`\b(?:by|without)\s*\(([^)]*)\)`)
	promMatcher = regexp.MustCompile(`([a-zA-Z_][a-zA-Z0-9_]*)\s*(?:=~|!~|!=|=)\s*"`)
)

// TestGrafanaDashboard: every metric deploy/grafana-dashboard.json queries
// exists in a real /metrics scrape of a postern that has delivered,
// refused, rate-limited and reloaded, and every label it groups or filters
// by is a label of those series (instance and job come from Prometheus).
// The dashboard covers what docs/operations.md promises.
func TestGrafanaDashboard(t *testing.T) {
	src, err := os.ReadFile("deploy/grafana-dashboard.json")
	if err != nil {
		t.Fatal(err)
	}
	type panel struct {
		Title   string `json:"title"`
		Type    string `json:"type"`
		Targets []struct {
			Expr string `json:"expr"`
		} `json:"targets"`
		Panels []json.RawMessage `json:"panels"` // rows
	}
	var dash struct {
		UID    string  `json:"uid"`
		Title  string  `json:"title"`
		Panels []panel `json:"panels"`
	}
	if err := json.Unmarshal(src, &dash); err != nil {
		t.Fatalf("deploy/grafana-dashboard.json: %v", err)
	}
	var exprs []string
	var walk func([]panel)
	walk = func(ps []panel) {
		for _, p := range ps {
			for _, tg := range p.Targets {
				exprs = append(exprs, tg.Expr)
			}
			for _, raw := range p.Panels {
				var sub panel
				if err := json.Unmarshal(raw, &sub); err != nil {
					t.Fatal(err)
				}
				walk([]panel{sub})
			}
		}
	}
	walk(dash.Panels)
	if dash.UID == "" || len(exprs) == 0 {
		t.Fatalf("dashboard uid %q with %d queries", dash.UID, len(exprs))
	}
	all := strings.Join(exprs, "\n")
	for _, want := range []string{"postern_messages_total", "by (outcome)", "by (provider, outcome)", "postern_upstream_request_duration_seconds_bucket",
		"postern_refusals_total", "by (reason)", "postern_rate_limit_hits_total", "postern_upstream_certificate_expiry_timestamp_seconds",
		"postern_config_reloads_total"} {
		if !strings.Contains(all, want) {
			t.Errorf("the dashboard has no query with %q", want)
		}
	}

	series := scrapeBusyPostern(t)
	for _, e := range exprs {
		names := promMetricName.FindAllString(e, -1)
		if len(names) == 0 {
			t.Errorf("query reads no postern metric: %s", e)
		}
		have := map[string]bool{}
		for _, n := range names {
			ls, ok := series[n]
			if !ok {
				t.Errorf("query reads %s, which /metrics does not have: %s", n, e)
			}
			for l := range ls {
				have[l] = true
			}
		}
		var used []string
		for _, m := range promBy.FindAllStringSubmatch(e, -1) {
			for _, l := range strings.Split(m[1], ",") {
				used = append(used, strings.TrimSpace(l))
			}
		}
		for _, m := range promMatcher.FindAllStringSubmatch(e, -1) {
			used = append(used, m[1])
		}
		for _, l := range used {
			if l != "" && l != "instance" && l != "job" && !have[l] {
				t.Errorf("query uses label %q, which %v do not have: %s", l, names, e)
			}
		}
	}
}

// scrapeBusyPostern runs the real binary with a provider route, a sandbox
// route and a tight per-number limit; sends a delivered message, a sandbox
// one, a rate-limited one and a refused one; reloads; and returns each
// series name in /metrics with its label names.
func scrapeBusyPostern(t *testing.T) map[string]map[string]bool {
	t.Helper()
	if testing.Short() {
		t.Skip("builds the binary")
	}
	bin := buildDockerBinary(t)
	provider := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusAccepted)
		io.WriteString(w, `{"messages":[{"apiMessageId":"m1","accepted":true,"to":"15551234567","error":null}],"error":null}`)
	}))
	defer provider.Close()
	dir := t.TempDir()
	ca := writeFile(t, dir, "ca.pem", certPEM(provider.Certificate().Raw))
	cfg := writeFile(t, dir, "postern.toml", fmt.Sprintf(`
[limits]
per_number = "1/1h"

[trust]
ca_files = [%q]

[[route]]
name = "one"
match_host = "api.clickatell.com"
match_path = "/http/sendmsg"
inbound = "clickatell-http"
provider = "clickatell-one"
endpoint = "%s/v1/message"
token = "env:CLICKATELL_API_KEY"

[[route]]
name = "try"
match_path = "/try/sendmsg"
inbound = "clickatell-http"
provider = "sandbox"
`, ca, provider.URL))
	d := startDaemon(t, bin, dir, []string{"CLICKATELL_API_KEY=k-dash"}, "serve", "-config", cfg)
	get := func(host, path string) {
		req, _ := http.NewRequest(http.MethodGet, "http://"+d.addr+path, nil)
		req.Host = host
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	get("api.clickatell.com", "/http/sendmsg?to=15551234567&text=one") // delivered
	get("api.clickatell.com", "/http/sendmsg?to=15551234567&text=two") // per_number limit
	get("postern.example", "/try/sendmsg?to=15557654321&text=sandbox") // sandbox
	get("postern.example", "/nowhere")                                 // no route
	if code, out, errOut := runCLI(t, "reload", "-url", "http://"+d.admin+"/-/reload"); code != 0 {
		t.Fatalf("reload: exit %d %s%s", code, out, errOut)
	}
	resp, err := http.Get("http://" + d.admin + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	series := map[string]map[string]bool{}
	line := regexp.MustCompile(`^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s`)
	label := regexp.MustCompile(`([a-zA-Z_][a-zA-Z0-9_]*)="`)
	for _, l := range strings.Split(string(body), "\n") {
		m := line.FindStringSubmatch(l)
		if m == nil {
			continue
		}
		if series[m[1]] == nil {
			series[m[1]] = map[string]bool{}
		}
		for _, lm := range label.FindAllStringSubmatch(m[2], -1) {
			series[m[1]][lm[1]] = true
		}
	}
	// The scrape saw the traffic, so the check above is against live series.
	for _, want := range []string{`postern_messages_total{outcome="delivered"`, `outcome="sandbox"`, `postern_rate_limit_hits_total{limit="per_number"} 1`,
		`postern_refusals_total{reason="no_route"} 1`, `postern_config_reloads_total{result="success"} 1`, "postern_upstream_request_duration_seconds_bucket{"} {
		if !strings.Contains(string(body), want) {
			t.Errorf("/metrics lacks %s after the traffic:\n%s", want, body)
		}
	}
	return series
}
