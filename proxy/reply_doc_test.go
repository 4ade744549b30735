package proxy

import (
	"fmt"
	"github.com/postern/postern/internal/testtool"
	"go/ast"
	"go/constant"
	"go/parser"
	"go/token"
	"go/types"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// replyDoc holds the table of every reply ISE can get.
const (
	replyDoc     = "../docs/dialects.md"
	replyHeading = "## Replies to ISE"
	module       = "github.com/postern/postern/"
)

// A reply ISE can get, as the source makes it: a legacy error
// ("ERR: <code>, <description>"; code is "" where the source does not fix
// it next to the description) or a fixed body.
type codeReply struct {
	code, desc string // a legacy error
	body       string // a fixed body (textResponse)
	pos        string // where the source makes it
}

func (r codeReply) String() string {
	if r.body != "" {
		return r.body
	}
	return "ERR: " + r.code + ", " + r.desc
}

// dynamicReplies are the places where a reply's description is not a
// constant the analysis can follow, each with what it can be. A new such
// place fails TestEveryReplyIsDocumented until it is listed here, so a
// reply cannot escape the documentation by being computed.
var dynamicReplies map[string]func(f *replyFinder) []string

// init fills dynamicReplies, whose functions use the finder that reads it.
func init() {
	dynamicReplies = map[string]func(f *replyFinder) []string{
		// "Upstream TLS verification failed: " + reason, where reason is what
		// trust.DescribeTLSError returns: one of trust's Reason* constants.
		"proxy/deliver/upstream.go reason": func(f *replyFinder) []string {
			trust := f.trust
			var reasons []string
			for _, name := range trust.Scope().Names() {
				if c, ok := trust.Scope().Lookup(name).(*types.Const); ok && strings.HasPrefix(name, "Reason") && c.Val().Kind() == constant.String {
					reasons = append(reasons, constant.StringVal(c.Val()))
				}
			}
			return reasons
		},
		// A refusal before routing answers its body field: every body a
		// refusal literal in proxy is made with, followed like any other reply.
		"proxy/refuse.go ref.body": func(f *replyFinder) []string {
			var out []string
			for _, sp := range f.pkgs {
				if sp.pkg == nil || sp.pkg.Path() != module+"proxy" {
					continue
				}
				for _, file := range sp.files {
					ast.Inspect(file, func(n ast.Node) bool {
						lit, ok := n.(*ast.CompositeLit)
						if !ok {
							return true
						}
						if typ, isIdent := lit.Type.(*ast.Ident); !isIdent || typ.Name != "refusal" {
							return true
						}
						for _, el := range lit.Elts {
							kv, ok := el.(*ast.KeyValueExpr)
							if !ok {
								continue
							}
							if id, isIdent := kv.Key.(*ast.Ident); isIdent && id.Name == "body" {
								out = append(out, f.resolve(sp, kv.Value, 0)...)
							}
						}
						return true
					})
				}
			}
			return out
		},
		// A reply another replica published through the [cluster] store
		// (deliver's sharedReply): its description is one that replica's
		// same source made, each of which is found where it is made.
		"proxy/deliver/shared.go e.Description": func(*replyFinder) []string { return nil },
		// The refusal of an unreadable request or of an absolute-form URL
		// whose scheme is not http: the clickatell-http reply for
		// BadRequest(CodeMissingParams, "Invalid or missing parameters").
		"proxy/refuse.go unreadableReply.Body": func(*replyFinder) []string {
			return []string{"ERR: 101, Invalid or missing parameters"}
		},
	}
}

// sourcePackage is one package of this module, parsed and type-checked
// from its non-test source.
type sourcePackage struct {
	pkg   *types.Package
	files []*ast.File
	info  *types.Info
}

// loadSource type-checks this module's trust, rewrite and proxy packages
// from source. Every other import (the standard library included) is an
// empty stand-in: the analysis needs only this module's own types and
// constants, and the type errors the stand-ins cause are ignored.
func loadSource(t *testing.T, fset *token.FileSet) map[string]*sourcePackage {
	t.Helper()
	loaded := map[string]*sourcePackage{}
	imp := importerFunc(func(p string) (*types.Package, error) {
		if sp, ok := loaded[p]; ok {
			return sp.pkg, nil
		}
		name := path.Base(p)
		if regexp.MustCompile(`^v[0-9]+$`).MatchString(name) {
			name = path.Base(path.Dir(p))
		}
		pkg := types.NewPackage(p, name)
		pkg.MarkComplete()
		return pkg, nil
	})
	// Dependencies first, so each package type-checks against the ones it
	// imports.
	for _, dir := range []string{"trust", "rewrite", "proxy/audit", "proxy/metrics", "proxy/config", "proxy/guard", "proxy/deliver", "proxy"} {
		names, err := filepath.Glob(filepath.Join("..", dir, "*.go"))
		if err != nil {
			t.Fatal(err)
		}
		var files []*ast.File
		for _, name := range names {
			if strings.HasSuffix(name, "_test.go") {
				continue
			}
			f, err := parser.ParseFile(fset, name, nil, parser.SkipObjectResolution)
			if err != nil {
				t.Fatal(err)
			}
			files = append(files, f)
		}
		info := &types.Info{
			Types: map[ast.Expr]types.TypeAndValue{},
			Defs:  map[*ast.Ident]types.Object{},
			Uses:  map[*ast.Ident]types.Object{},
		}
		conf := types.Config{Importer: imp, Error: func(error) {}}
		pkg, _ := conf.Check(module+dir, fset, files, info)
		loaded[module+dir] = &sourcePackage{pkg: pkg, files: files, info: info}
	}
	return loaded
}

type importerFunc func(path string) (*types.Package, error)

func (f importerFunc) Import(path string) (*types.Package, error) { return f(path) }

// replyFinder follows reply descriptions and bodies through the source.
type replyFinder struct {
	t       *testing.T
	fset    *token.FileSet
	pkgs    []*sourcePackage
	trust   *types.Package
	errType types.Type // rewrite.Error
	params  map[types.Object]paramOf
	varCode map[types.Object]string // an Error variable's code, from the literal it was made with
	replies []codeReply
	dynamic map[string]bool // dynamicReplies keys met
	unknown []string        // places the finder cannot follow
}

// paramOf says which function a parameter belongs to and where.
type paramOf struct {
	fn    types.Object // the *types.Func, or the variable holding a func literal
	index int
}

// codeReplies enumerates every reply the trust, rewrite and proxy packages
// can give ISE: each description a rewrite.Error is built or assigned
// with (following constants, concatenations, and parameters back to every
// call), each body passed to textResponse, and each "ERR: ..." constant.
func codeReplies(t *testing.T) (replies []codeReply, unknown []string) {
	t.Helper()
	fset := token.NewFileSet()
	loaded := loadSource(t, fset)
	f := &replyFinder{t: t, fset: fset, params: map[types.Object]paramOf{}, varCode: map[types.Object]string{},
		dynamic: map[string]bool{}, trust: loaded[module+"trust"].pkg}
	f.pkgs = []*sourcePackage{loaded[module+"rewrite"], loaded[module+"proxy/config"], loaded[module+"proxy/guard"],
		loaded[module+"proxy/deliver"], loaded[module+"proxy"]}
	errObj := loaded[module+"rewrite"].pkg.Scope().Lookup("Error")
	if errObj == nil {
		t.Fatal("rewrite has no Error type")
	}
	f.errType = errObj.Type()
	for _, sp := range f.pkgs {
		f.indexParams(sp)
		f.indexVarCodes(sp)
	}
	for _, sp := range f.pkgs {
		for _, file := range sp.files {
			f.scan(sp, file)
		}
	}
	for key := range dynamicReplies {
		if !f.dynamic[key] {
			f.unknown = append(f.unknown, "dynamicReplies lists "+key+", which the source no longer has")
		}
	}
	return f.replies, f.unknown
}

// indexParams maps each parameter of a function declaration, or of a
// function literal assigned to a variable, to its function and position.
func (f *replyFinder) indexParams(sp *sourcePackage) {
	add := func(fn types.Object, ft *ast.FuncType) {
		i := 0
		for _, field := range ft.Params.List {
			if len(field.Names) == 0 {
				i++
			}
			for _, name := range field.Names {
				if obj := sp.info.Defs[name]; obj != nil {
					f.params[obj] = paramOf{fn, i}
				}
				i++
			}
		}
	}
	for _, file := range sp.files {
		ast.Inspect(file, func(n ast.Node) bool {
			switch n := n.(type) {
			case *ast.FuncDecl:
				if obj := sp.info.Defs[n.Name]; obj != nil {
					add(obj, n.Type)
				}
			case *ast.AssignStmt:
				for i, rhs := range n.Rhs {
					if lit, ok := rhs.(*ast.FuncLit); ok && i < len(n.Lhs) {
						if id, ok := n.Lhs[i].(*ast.Ident); ok {
							obj := sp.info.Defs[id]
							if obj == nil {
								obj = sp.info.Uses[id]
							}
							if obj != nil {
								add(obj, lit.Type)
							}
						}
					}
				}
			}
			return true
		})
	}
}

// indexVarCodes notes, for each variable made from an Error literal with a
// constant Code ("e := &rewrite.Error{Code: rewrite.CodeInternal, ...}"),
// that code, so a later "e.Description = ..." pairs with it. A variable
// whose Code is also set on its own elsewhere gets no code.
func (f *replyFinder) indexVarCodes(sp *sourcePackage) {
	ambiguous := map[types.Object]bool{}
	for _, file := range sp.files {
		ast.Inspect(file, func(n ast.Node) bool {
			as, ok := n.(*ast.AssignStmt)
			if !ok || len(as.Lhs) != len(as.Rhs) {
				return true
			}
			setsDesc := slices.ContainsFunc(as.Lhs, func(l ast.Expr) bool {
				sel, ok := l.(*ast.SelectorExpr)
				return ok && sel.Sel.Name == "Description"
			})
			for i, lhs := range as.Lhs {
				switch l := lhs.(type) {
				case *ast.Ident:
					rhs := as.Rhs[i]
					if u, ok := rhs.(*ast.UnaryExpr); ok {
						rhs = u.X
					}
					lit, ok := rhs.(*ast.CompositeLit)
					obj := sp.info.Defs[l]
					if !ok || obj == nil || !f.isError(sp.info.TypeOf(lit)) {
						continue
					}
					for _, elt := range lit.Elts {
						if kv, ok := elt.(*ast.KeyValueExpr); ok && kv.Key.(*ast.Ident).Name == "Code" {
							if tv := sp.info.Types[kv.Value]; tv.Value != nil && tv.Value.Kind() == constant.String {
								f.varCode[obj] = constant.StringVal(tv.Value)
							}
						}
					}
				case *ast.SelectorExpr:
					if id, ok := l.X.(*ast.Ident); ok && l.Sel.Name == "Code" && !setsDesc {
						ambiguous[sp.info.Uses[id]] = true
					}
				}
			}
			return true
		})
	}
	for obj := range ambiguous {
		delete(f.varCode, obj)
	}
}

func (f *replyFinder) isError(tv types.Type) bool {
	if tv == nil {
		return false
	}
	if p, ok := tv.(*types.Pointer); ok {
		tv = p.Elem()
	}
	return types.Identical(tv, f.errType)
}

func (f *replyFinder) where(pos token.Pos) string {
	p := f.fset.Position(pos)
	return filepath.ToSlash(strings.TrimPrefix(p.Filename, "../")) + ":" + fmt.Sprint(p.Line)
}

// scan finds the places in file where a reply is made.
func (f *replyFinder) scan(sp *sourcePackage, file *ast.File) {
	ast.Inspect(file, func(n ast.Node) bool {
		switch n := n.(type) {
		case *ast.CompositeLit:
			if !f.isError(sp.info.TypeOf(n)) {
				return true
			}
			var code, desc ast.Expr
			for _, elt := range n.Elts {
				if kv, ok := elt.(*ast.KeyValueExpr); ok {
					switch kv.Key.(*ast.Ident).Name {
					case "Code":
						code = kv.Value
					case "Description":
						desc = kv.Value
					}
				}
			}
			if desc != nil {
				f.addErrors(sp, code, desc)
			}
		case *ast.AssignStmt:
			var code, desc ast.Expr
			var target types.Object // the Error variable assigned to
			for i, lhs := range n.Lhs {
				sel, ok := lhs.(*ast.SelectorExpr)
				if !ok || len(n.Lhs) != len(n.Rhs) || !f.isError(sp.info.TypeOf(sel.X)) {
					continue
				}
				if id, ok := sel.X.(*ast.Ident); ok {
					target = sp.info.Uses[id]
				}
				switch sel.Sel.Name {
				case "Code":
					code = n.Rhs[i]
				case "Description":
					desc = n.Rhs[i]
				}
			}
			if desc != nil && code == nil && f.varCode[target] != "" {
				code = &ast.BasicLit{Kind: token.STRING, Value: fmt.Sprintf("%q", f.varCode[target]), ValuePos: desc.Pos()}
			}
			if desc != nil {
				f.addErrors(sp, code, desc)
			}
		case *ast.CallExpr:
			if id, ok := n.Fun.(*ast.Ident); ok && id.Name == "textResponse" && len(n.Args) == 3 {
				for _, body := range f.resolve(sp, n.Args[2], 0) {
					f.replies = append(f.replies, codeReply{body: strings.TrimSuffix(body, "\n"), pos: f.where(n.Pos())})
				}
			}
		case ast.Expr:
			// A reply written out whole: "ERR: 901, Internal error\n".
			if tv, ok := sp.info.Types[n]; ok && tv.Value != nil && tv.Value.Kind() == constant.String {
				s := constant.StringVal(tv.Value)
				if m := regexp.MustCompile(`^ERR: ([0-9]{3}), ([^{%\n]+)\n?$`).FindStringSubmatch(s); m != nil {
					f.replies = append(f.replies, codeReply{code: m[1], desc: m[2], pos: f.where(n.Pos())})
				}
				return false
			}
		}
		return true
	})
}

// addErrors records the legacy errors an Error's code and description
// expressions can make. When both are parameters of one function
// (rewrite.BadRequest(code, description)), each call gives one pair.
func (f *replyFinder) addErrors(sp *sourcePackage, code, desc ast.Expr) {
	f.replies = append(f.replies, f.pairs(sp, code, desc, 0)...)
}

// pairs resolves a code and a description expression into the replies
// they make, each at the place that fixes its description.
func (f *replyFinder) pairs(sp *sourcePackage, code, desc ast.Expr, depth int) []codeReply {
	cid, cok := code.(*ast.Ident)
	did, dok := desc.(*ast.Ident)
	if cok && dok && depth < 4 {
		cp, cIsParam := f.params[sp.info.Uses[cid]]
		dp, dIsParam := f.params[sp.info.Uses[did]]
		if cIsParam && dIsParam && cp.fn == dp.fn {
			var out []codeReply
			f.eachCall(cp.fn, func(csp *sourcePackage, call *ast.CallExpr) {
				if cp.index < len(call.Args) && dp.index < len(call.Args) {
					out = append(out, f.pairs(csp, call.Args[cp.index], call.Args[dp.index], depth+1)...)
				}
			})
			return out
		}
	}
	c := ""
	if code != nil {
		if tv, ok := sp.info.Types[code]; ok && tv.Value != nil && tv.Value.Kind() == constant.String {
			c = constant.StringVal(tv.Value)
		} else if lit, ok := code.(*ast.BasicLit); ok { // a variable's code, see indexVarCodes
			c = strings.Trim(lit.Value, `"`)
		}
	}
	var out []codeReply
	for _, d := range f.resolve(sp, desc, depth) {
		out = append(out, codeReply{code: c, desc: d, pos: f.where(desc.Pos())})
	}
	return out
}

// resolve returns every string expr can be: a constant, a concatenation
// of resolvable parts, a parameter (followed to every call of its
// function), or a place listed in dynamicReplies. Anything else is
// recorded as unknown.
func (f *replyFinder) resolve(sp *sourcePackage, expr ast.Expr, depth int) []string {
	if tv, ok := sp.info.Types[expr]; ok && tv.Value != nil && tv.Value.Kind() == constant.String {
		return []string{constant.StringVal(tv.Value)}
	}
	switch e := expr.(type) {
	case *ast.ParenExpr:
		return f.resolve(sp, e.X, depth)
	case *ast.BinaryExpr:
		if e.Op == token.ADD {
			var out []string
			for _, x := range f.resolve(sp, e.X, depth) {
				for _, y := range f.resolve(sp, e.Y, depth) {
					out = append(out, x+y)
				}
			}
			return out
		}
	case *ast.Ident:
		obj := sp.info.Uses[e]
		if p, ok := f.params[obj]; ok && depth < 4 {
			return f.callArgs(p, depth+1)
		}
		file := strings.TrimPrefix(filepath.ToSlash(f.fset.Position(e.Pos()).Filename), "../")
		if key := file + " " + e.Name; dynamicReplies[key] != nil {
			f.dynamic[key] = true
			return dynamicReplies[key](f)
		}
	case *ast.SelectorExpr:
		file := strings.TrimPrefix(filepath.ToSlash(f.fset.Position(e.Pos()).Filename), "../")
		if key := file + " " + types.ExprString(e); dynamicReplies[key] != nil {
			f.dynamic[key] = true
			return dynamicReplies[key](f)
		}
	}
	f.unknown = append(f.unknown, fmt.Sprintf("%s: a reply made of %s, which the test cannot follow: list it in dynamicReplies",
		f.where(expr.Pos()), types.ExprString(expr)))
	return nil
}

// callArgs resolves the argument given for parameter p at every call of
// its function, in every package scanned.
func (f *replyFinder) callArgs(p paramOf, depth int) []string {
	var out []string
	f.eachCall(p.fn, func(sp *sourcePackage, call *ast.CallExpr) {
		if p.index < len(call.Args) {
			out = append(out, f.resolve(sp, call.Args[p.index], depth)...)
		}
	})
	return out
}

// eachCall calls do for every call of the function fn in the packages
// scanned.
func (f *replyFinder) eachCall(fn types.Object, do func(*sourcePackage, *ast.CallExpr)) {
	for _, sp := range f.pkgs {
		for _, file := range sp.files {
			ast.Inspect(file, func(n ast.Node) bool {
				call, ok := n.(*ast.CallExpr)
				if !ok {
					return true
				}
				var id *ast.Ident
				switch fun := call.Fun.(type) {
				case *ast.Ident:
					id = fun
				case *ast.SelectorExpr:
					id = fun.Sel
				}
				if id != nil && sp.info.Uses[id] == fn {
					do(sp, call)
				}
				return true
			})
		}
	}
}

// docReplies reads the bodies in the reply table of docs/dialects.md: the
// code spans of its last column.
func docReplies(t testing.TB, doc string) []string {
	t.Helper()
	i := strings.Index(doc, "\n"+replyHeading+"\n")
	if i < 0 {
		t.Fatalf("%s has no %q section", replyDoc, replyHeading)
	}
	section := doc[i+1:]
	if j := strings.Index(section, "\n## "); j >= 0 {
		section = section[:j]
	}
	var bodies []string
	for _, line := range strings.Split(section, "\n") {
		if !strings.HasPrefix(line, "| ") || strings.HasPrefix(line, "|---") {
			continue
		}
		cells := strings.Split(strings.Trim(line, "| "), " | ")
		last := cells[len(cells)-1]
		for _, m := range regexp.MustCompile("`([^`]+)`").FindAllStringSubmatch(last, -1) {
			bodies = append(bodies, m[1])
		}
	}
	return bodies
}

// checkReplyDoc: every reply the code makes is a body in the table, with
// its code where the source fixes it; every ERR body in the table is one
// the code makes (placeholders such as <code> aside).
func checkReplyDoc(t testing.TB, replies []codeReply, bodies []string) {
	t.Helper()
	documented := func(r codeReply) bool {
		return slices.ContainsFunc(bodies, func(b string) bool {
			switch {
			case r.body != "":
				return b == r.body
			case r.code != "":
				return b == r.String()
			default:
				return regexp.MustCompile(`^ERR: [0-9]{3}, ` + regexp.QuoteMeta(r.desc) + `$`).MatchString(b)
			}
		})
	}
	seen := map[string]bool{}
	for _, r := range replies {
		if !seen[r.String()] && !documented(r) {
			t.Errorf("%s: the reply %q is not in %s's reply table", r.pos, r.String(), replyDoc)
		}
		seen[r.String()] = true
	}
	for _, b := range bodies {
		if !strings.HasPrefix(b, "ERR: ") || strings.Contains(b, "<") {
			continue
		}
		if !slices.ContainsFunc(replies, func(r codeReply) bool {
			return r.body == "" && (b == r.String() || r.code == "" && strings.HasSuffix(b, ", "+r.desc))
		}) {
			t.Errorf("%s's reply table shows %q, which postern never answers", replyDoc, b)
		}
	}
}

// TestEveryReplyIsDocumented: every reply ISE can get from postern, as
// enumerated from the source, is in the reply table of docs/dialects.md,
// and the table shows no reply postern cannot give.
func TestEveryReplyIsDocumented(t *testing.T) {
	replies, unknown := codeReplies(t)
	for _, u := range unknown {
		t.Error(u)
	}
	// The enumeration itself works: it finds replies of every kind.
	for _, want := range []string{
		"ERR: 105, Invalid destination address",                                       // a rewrite parse error
		"ERR: 001, Authentication failed",                                             // a provider refusal and the legacy credentials
		"ERR: 901, Upstream TLS verification failed: certificate is for another host", // dynamic
		"ERR: 130, Maximum MT limit exceeded",                                         // a guard in proxy
		"Forbidden: client not allowed",                                               // a fixed body
		"Forbidden: no route matches this request",                                    // through refuse()
	} {
		if !slices.ContainsFunc(replies, func(r codeReply) bool { return r.String() == want }) {
			t.Errorf("the source analysis did not find %q; it found:\n%s", want, listReplies(replies))
		}
	}
	src, err := os.ReadFile(replyDoc)
	if err != nil {
		t.Fatal(err)
	}
	checkReplyDoc(t, replies, docReplies(t, string(src)))
	if t.Failed() {
		t.Logf("replies found in the source:\n%s", listReplies(replies))
	}
}

func listReplies(replies []codeReply) string {
	var lines []string
	for _, r := range replies {
		lines = append(lines, r.pos+": "+r.String())
	}
	slices.Sort(lines)
	return strings.Join(slices.Compact(lines), "\n")
}

// TestReplyDocCheckFails: the check fails for a reply missing from the
// table, one shown with the wrong code, and one postern never gives.
func TestReplyDocCheckFails(t *testing.T) {
	replies, _ := codeReplies(t)
	src, err := os.ReadFile(replyDoc)
	if err != nil {
		t.Fatal(err)
	}
	good := string(src)
	missing := "`ERR: 901, Upstream timeout, message not sent`"
	if !strings.Contains(good, missing) {
		t.Fatalf("%s lacks %s", replyDoc, missing)
	}
	for name, tc := range map[string]struct{ doc, want string }{
		"reply missing": {strings.Replace(good, missing, "`ERR: 901, Upstream timeout, outcome unknown`", 1),
			`the reply "ERR: 901, Upstream timeout, message not sent" is not in`},
		"wrong code": {strings.Replace(good, "`ERR: 106, Invalid source address`", "`ERR: 105, Invalid source address`", 1),
			`the reply "ERR: 106, Invalid source address" is not in`},
		"never given": {strings.Replace(good, missing, missing+" · `ERR: 901, Upstream on fire`", 1),
			`shows "ERR: 901, Upstream on fire", which postern never answers`},
	} {
		rec := &testtool.Recorder{TB: t}
		checkReplyDoc(rec, replies, docReplies(t, tc.doc))
		if !slices.ContainsFunc(rec.Errors, func(e string) bool { return strings.Contains(e, tc.want) }) {
			t.Errorf("%s: want an error containing %q, got %q", name, tc.want, rec.Errors)
		}
	}
}
