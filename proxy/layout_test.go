package proxy_test

import (
	"go/build"
	"slices"
	"strings"
	"testing"
)

// TestImportsRunOneWay: main -> proxy -> proxy/{smtpd,config,guard,deliver,
// audit,metrics} -> rewrite, trust, and each subpackage imports only the ones
// docs/architecture.md draws below it; no subpackage imports proxy. A new
// import that breaks the layering fails here, not in review.
func TestImportsRunOneWay(t *testing.T) {
	const mod = "github.com/postern/postern/"
	allowed := map[string][]string{
		"proxy/audit":       {"internal/jsonenc", "internal/sysconn"},
		"proxy/metrics":     {"proxy/audit", "trust"},
		"proxy/config":      {"proxy/audit", "rewrite", "trust"},
		"proxy/guard":       {"proxy/config", "proxy/metrics", "proxy/store", "rewrite"},
		"proxy/deliver":     {"internal/deadline", "internal/macpool", "proxy/audit", "proxy/config", "proxy/metrics", "proxy/store", "rewrite", "trust"},
		"proxy/store":       {"internal/macpool", "proxy/config", "proxy/metrics", "trust"},
		"proxy/inbound":     {"internal/deadline", "internal/sysconn"},
		"proxy/smtpd":       {"proxy/audit", "proxy/config", "proxy/deliver", "proxy/guard", "proxy/metrics", "proxy/store", "rewrite", "trust"},
		"rewrite":           {"internal/jsonenc"},
		"internal/deadline": {},
		"internal/jsonenc":  {},
		"internal/macpool":  {},
		"internal/sysconn":  {},
		"trust":             {"internal/sysconn"},
	}
	for pkg, ok := range allowed {
		p, err := build.ImportDir("../"+pkg, 0) // non-test files only
		if err != nil {
			t.Fatalf("%s: %v", pkg, err)
		}
		for _, imp := range p.Imports {
			own, isOwn := strings.CutPrefix(imp, mod)
			if isOwn && !slices.Contains(ok, own) {
				t.Errorf("%s imports %s; it may import only %v", pkg, own, ok)
			}
		}
	}
}
