package deploy_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"go/ast"
	"go/build"
	"go/parser"
	"go/token"
	"io/fs"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
	"text/template"

	"go.yaml.in/yaml/v3"

	"github.com/mizuchi-uploadr/mizuchi/internal/config"
	"github.com/mizuchi-uploadr/mizuchi/internal/testutil/testproc"
)

const module = "github.com/mizuchi-uploadr/mizuchi/"

// root is the repository root (tests run in deploy/).
const root = ".."

func read(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root, path))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// env resolves every ${VAR} of the shipped configurations with a
// plausible value, so that Parse checks structure and rules.
func env(name string) (string, bool) {
	switch name {
	case "JWT_SECRET":
		return "0123456789abcdef0123456789abcdef", true
	case "S3_BUCKET":
		return "my-upload-bucket", true
	case "MIZUCHI_UPLOAD_ID_KEY", "MIZUCHI_SUBJECT_HASH_KEY":
		return "0123456789abcdef0123456789abcdef-" + strings.ToLower(name), true
	case "MIZUCHI_REDIS_URL":
		return "redis://up-mizuchi-valkey:6379/0", true
	}
	return "", false
}

// goPackages lists the directories under internal/ and cmd/ holding a Go
// package (test-only directories included), relative to the root.
func goPackages(t *testing.T) []string {
	t.Helper()
	seen := map[string]bool{}
	for _, top := range []string{"internal", "cmd"} {
		err := filepath.WalkDir(filepath.Join(root, top), func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if d.IsDir() && (d.Name() == "testdata" || strings.HasPrefix(d.Name(), ".")) {
				return filepath.SkipDir
			}
			if !d.IsDir() && strings.HasSuffix(p, ".go") {
				rel, _ := filepath.Rel(root, filepath.Dir(p))
				seen[filepath.ToSlash(rel)] = true
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	var out []string
	for p := range seen {
		out = append(out, p)
	}
	sort.Strings(out)
	return out
}

var pkgRef = regexp.MustCompile("`((?:internal|cmd)/[a-z0-9_/]*[a-z0-9_])`")

func TestArchitectureNamesEveryPackageAndNoOther(t *testing.T) {
	doc := read(t, "docs/ARCHITECTURE.md")
	named := map[string]bool{}
	for _, m := range pkgRef.FindAllStringSubmatch(doc, -1) {
		named[m[1]] = true
	}
	actual := map[string]bool{}
	for _, p := range goPackages(t) {
		actual[p] = true
		if !named[p] {
			t.Errorf("package %s exists but docs/ARCHITECTURE.md does not name it (add it to the package table)", p)
		}
	}
	for p := range named {
		if !actual[p] {
			t.Errorf("docs/ARCHITECTURE.md names %s, which is not a Go package in the repository", p)
		}
	}
}

// documentedImports reads the dependency table of ARCHITECTURE.md.
func documentedImports(t *testing.T) map[string][]string {
	t.Helper()
	doc := read(t, "docs/ARCHITECTURE.md")
	_, section, ok := strings.Cut(doc, "### Dependencies between packages")
	if !ok {
		t.Fatal("docs/ARCHITECTURE.md has no dependency table")
	}
	section, _, _ = strings.Cut(section, "\n## ")
	deps := map[string][]string{}
	for _, line := range strings.Split(section, "\n") {
		cells := strings.Split(line, "|")
		if len(cells) != 4 {
			continue
		}
		pkg := pkgRef.FindStringSubmatch(cells[1])
		if pkg == nil {
			continue
		}
		var imports []string
		for _, m := range pkgRef.FindAllStringSubmatch(cells[2], -1) {
			imports = append(imports, m[1])
		}
		sort.Strings(imports)
		deps[pkg[1]] = imports
	}
	return deps
}

func TestArchitectureDependencyTableMatchesImports(t *testing.T) {
	doc := documentedImports(t)
	for _, p := range goPackages(t) {
		bp, err := build.ImportDir(filepath.Join(root, p), 0)
		var noGo *build.NoGoError
		if err != nil && !errorsAs(err, &noGo) {
			t.Fatalf("%s: %v", p, err)
		}
		var imports []string
		if bp != nil {
			for _, imp := range bp.Imports {
				if rel, ok := strings.CutPrefix(imp, module); ok {
					imports = append(imports, rel)
				}
			}
		}
		sort.Strings(imports)
		if bp == nil || len(bp.GoFiles) == 0 {
			// Test-only package: not in the table.
			continue
		}
		want, listed := doc[p]
		if !listed {
			t.Errorf("docs/ARCHITECTURE.md: dependency table has no row for %s; its imports are %s", p, fmtList(imports))
			continue
		}
		if strings.Join(want, " ") != strings.Join(imports, " ") {
			t.Errorf("docs/ARCHITECTURE.md: %s is documented to import %s but imports %s", p, fmtList(want), fmtList(imports))
		}
	}
}

func errorsAs(err error, target **build.NoGoError) bool {
	e, ok := err.(*build.NoGoError)
	if ok {
		*target = e
	}
	return ok
}

func fmtList(l []string) string {
	if len(l) == 0 {
		return "—"
	}
	return "`" + strings.Join(l, "` `") + "`"
}

// statusByName resolves the net/http constants the error table uses.
var statusByName = map[string]int{
	"StatusBadRequest": http.StatusBadRequest, "StatusUnauthorized": http.StatusUnauthorized,
	"StatusForbidden": http.StatusForbidden, "StatusNotFound": http.StatusNotFound,
	"StatusMethodNotAllowed": http.StatusMethodNotAllowed, "StatusConflict": http.StatusConflict,
	"StatusLengthRequired": http.StatusLengthRequired, "StatusPreconditionFailed": http.StatusPreconditionFailed,
	"StatusRequestEntityTooLarge": http.StatusRequestEntityTooLarge, "StatusInternalServerError": http.StatusInternalServerError,
	"StatusNotImplemented": http.StatusNotImplemented, "StatusServiceUnavailable": http.StatusServiceUnavailable,
	"StatusRequestHeaderFieldsTooLarge": http.StatusRequestHeaderFieldsTooLarge,
}

// errorCodes finds every S3 error the code can answer with its default
// status: def("Code", http.StatusX, …) in the s3err table and
// &s3err.Error{Code: "…", Status: http.StatusX} / &Error{…} literals in
// non-test files of internal/.
func errorCodes(t *testing.T) map[string]int {
	t.Helper()
	codes := map[string]int{}
	status := func(e ast.Expr) int {
		sel, ok := e.(*ast.SelectorExpr)
		if !ok {
			t.Fatalf("error status %#v is not an http.Status constant", e)
		}
		s, ok := statusByName[sel.Sel.Name]
		if !ok {
			t.Fatalf("add http.%s to statusByName", sel.Sel.Name)
		}
		return s
	}
	str := func(e ast.Expr) (string, bool) {
		lit, ok := e.(*ast.BasicLit)
		if !ok || lit.Kind != token.STRING {
			return "", false
		}
		s, err := strconv.Unquote(lit.Value)
		return s, err == nil
	}
	fset := token.NewFileSet()
	err := filepath.WalkDir(filepath.Join(root, "internal"), func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(p, ".go") || strings.HasSuffix(p, "_test.go") ||
			strings.Contains(filepath.ToSlash(p), "/testutil/") || strings.Contains(filepath.ToSlash(p), "/backendtest/") {
			return err
		}
		f, err := parser.ParseFile(fset, p, nil, 0)
		if err != nil {
			return err
		}
		ast.Inspect(f, func(n ast.Node) bool {
			switch n := n.(type) {
			case *ast.CallExpr:
				if id, ok := n.Fun.(*ast.Ident); ok && id.Name == "def" && len(n.Args) == 3 && strings.HasSuffix(p, "s3err.go") {
					if c, ok := str(n.Args[0]); ok {
						codes[c] = status(n.Args[1])
					}
				}
			case *ast.CompositeLit:
				name := ""
				switch ty := n.Type.(type) {
				case *ast.Ident:
					name = ty.Name
				case *ast.SelectorExpr:
					if x, ok := ty.X.(*ast.Ident); ok && x.Name == "s3err" {
						name = ty.Sel.Name
					}
				}
				if name != "Error" || !strings.Contains(filepath.ToSlash(p), "s3") {
					return true
				}
				var code string
				st := 0
				for _, el := range n.Elts {
					kv, ok := el.(*ast.KeyValueExpr)
					if !ok {
						continue
					}
					switch k, _ := kv.Key.(*ast.Ident); {
					case k != nil && k.Name == "Code":
						code, _ = str(kv.Value)
					case k != nil && k.Name == "Status":
						if sel, ok := kv.Value.(*ast.SelectorExpr); ok {
							st = statusByName[sel.Sel.Name]
						}
					}
				}
				if code != "" && st != 0 {
					codes[code] = st
				}
			}
			return true
		})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(codes) < 30 {
		t.Fatalf("found only %d error codes; has the s3err table moved?", len(codes))
	}
	return codes
}

var errorRow = regexp.MustCompile("(?m)^\\| `([A-Za-z0-9]+)` \\| (\\d{3}) \\|")

func TestAPIDocumentsEveryErrorCodeWithItsStatus(t *testing.T) {
	doc := read(t, "docs/API.md")
	rows := map[string][]int{}
	for _, m := range errorRow.FindAllStringSubmatch(doc, -1) {
		s, _ := strconv.Atoi(m[2])
		rows[m[1]] = append(rows[m[1]], s)
	}
	codes := errorCodes(t)
	for code, status := range codes {
		st, ok := rows[code]
		if !ok {
			t.Errorf("docs/API.md: error table lacks %s (%d)", code, status)
			continue
		}
		found := false
		for _, s := range st {
			found = found || s == status
		}
		if !found {
			t.Errorf("docs/API.md: %s is documented with status %v; the code answers %d", code, st, status)
		}
	}
	for code := range rows {
		if _, ok := codes[code]; !ok {
			t.Errorf("docs/API.md documents error %s, which the code never defines", code)
		}
	}
}

func TestAPIDocumentsEveryOperation(t *testing.T) {
	src := read(t, "internal/s3api/classify.go")
	ops := regexp.MustCompile(`Op[A-Za-z]+\s+Operation = "([A-Za-z]+)"`).FindAllStringSubmatch(src, -1)
	if len(ops) < 8 {
		t.Fatalf("found %d operations in classify.go", len(ops))
	}
	doc := read(t, "docs/API.md")
	for _, op := range ops {
		if !strings.Contains(doc, "| "+op[1]+" |") {
			t.Errorf("docs/API.md: the operations table lacks %s", op[1])
		}
	}
}

var mdLink = regexp.MustCompile(`\]\(([^)#\s]+)(#[^)]*)?\)`)

func TestDocLinksResolve(t *testing.T) {
	for _, doc := range []string{"docs/API.md", "docs/ARCHITECTURE.md", "docs/DEPLOYMENT.md", "docs/SECURITY.md", "docs/OPERATIONS.md"} {
		for _, m := range mdLink.FindAllStringSubmatch(read(t, doc), -1) {
			target := m[1]
			if strings.Contains(target, "://") {
				continue
			}
			if _, err := os.Stat(filepath.Join(root, filepath.Dir(doc), target)); err != nil {
				t.Errorf("%s links to %s, which does not exist", doc, target)
			}
		}
	}
}

// parseConfig checks a shipped configuration with the real loader.
func parseConfig(t *testing.T, name string, data []byte) *config.Config {
	t.Helper()
	cfg, err := config.Parse(data, name, env)
	if err != nil {
		t.Fatalf("%s does not parse: %v", name, err)
	}
	return cfg
}

func TestShippedConfigurationsParse(t *testing.T) {
	for _, name := range []string{"deploy/container/config.yaml", "deploy/systemd/config.yaml"} {
		t.Run(name, func(t *testing.T) {
			parseConfig(t, name, []byte(read(t, name)))
		})
	}
}

func TestContainerConfigNeedsTheSecret(t *testing.T) {
	_, err := config.Parse([]byte(read(t, "deploy/container/config.yaml")), "container", func(string) (string, bool) { return "", false })
	if err == nil || !strings.Contains(err.Error(), "JWT_SECRET") {
		t.Fatalf("the image's default config must refuse to start without $JWT_SECRET; got %v", err)
	}
}

func TestDockerfile(t *testing.T) {
	df := read(t, "Dockerfile")
	gomod := read(t, "go.mod")
	goVersion := regexp.MustCompile(`(?m)^go (\S+)$`).FindStringSubmatch(gomod)
	if goVersion == nil {
		t.Fatal("go.mod has no go directive")
	}
	if !strings.Contains(df, "ARG GO_VERSION="+goVersion[1]+"\n") {
		t.Errorf("Dockerfile: ARG GO_VERSION must be go.mod's %s", goVersion[1])
	}
	froms := regexp.MustCompile(`(?m)^FROM (\S+)`).FindAllStringSubmatch(df, -1)
	if len(froms) < 2 {
		t.Fatalf("Dockerfile must be multi-stage; FROM lines: %v", froms)
	}
	final := froms[len(froms)-1][1]
	if !strings.HasPrefix(final, "gcr.io/distroless/static") && final != "scratch" {
		t.Errorf("final stage %s is not distroless/static or scratch", final)
	}
	for _, want := range []string{"CGO_ENABLED=0", "-trimpath", "-X main.version=${VERSION}", "-X main.commit=${COMMIT}",
		"./cmd/mizuchi", "COPY deploy/container/config.yaml /etc/mizuchi/config.yaml", "MIZUCHI_CONFIG=/etc/mizuchi/config.yaml"} {
		if !strings.Contains(df, want) {
			t.Errorf("Dockerfile lacks %q", want)
		}
	}
	user := regexp.MustCompile(`(?m)^USER (\d+):(\d+)$`).FindStringSubmatch(df)
	if user == nil || user[1] == "0" || user[2] == "0" {
		t.Errorf("Dockerfile must end as a numeric non-root USER; got %v", user)
	}
	di := read(t, ".dockerignore")
	for _, want := range []string{".git", "data/", "bin/"} {
		if !strings.Contains(di, want+"\n") {
			t.Errorf(".dockerignore lacks %s", want)
		}
	}
	// main.version and main.commit must exist for the ldflags to matter.
	main := read(t, "cmd/mizuchi/main.go")
	for _, v := range []string{"version", "commit"} {
		if !regexp.MustCompile(`(?m)^\s+` + v + `\s+= "`).MatchString(main) {
			t.Errorf("cmd/mizuchi has no package variable %s for -X main.%s", v, v)
		}
	}
}

// unit parses a systemd unit into section → key → values.
func unit(t *testing.T, text string) map[string]map[string][]string {
	t.Helper()
	out := map[string]map[string][]string{}
	section := ""
	for _, line := range strings.Split(text, "\n") {
		line = strings.TrimSpace(line)
		switch {
		case line == "" || strings.HasPrefix(line, "#"):
		case strings.HasPrefix(line, "["):
			section = strings.Trim(line, "[]")
			out[section] = map[string][]string{}
		default:
			k, v, ok := strings.Cut(line, "=")
			if !ok || section == "" {
				t.Fatalf("bad unit line %q", line)
			}
			out[section][k] = append(out[section][k], v)
		}
	}
	return out
}

func TestSystemdUnitIsHardened(t *testing.T) {
	text := read(t, "deploy/systemd/mizuchi.service")
	svc := unit(t, text)["Service"]
	if svc == nil {
		t.Fatal("no [Service] section")
	}
	want := map[string]string{
		"DynamicUser": "yes", "NoNewPrivileges": "yes", "ProtectSystem": "strict", "ProtectHome": "yes",
		"PrivateTmp": "yes", "PrivateDevices": "yes", "CapabilityBoundingSet": "", "AmbientCapabilities": "",
		"StateDirectory": "mizuchi", "CacheDirectory": "mizuchi", "RestrictSUIDSGID": "yes",
		"MemoryDenyWriteExecute": "yes", "SystemCallArchitectures": "native", "KillSignal": "SIGTERM",
	}
	for k, v := range want {
		got, ok := svc[k]
		if !ok || got[len(got)-1] != v {
			t.Errorf("[Service] %s=%s wanted, got %v", k, v, got)
		}
	}
	if got := strings.Join(svc["ExecStart"], ""); !strings.Contains(got, "mizuchi serve --config /etc/mizuchi/config.yaml") {
		t.Errorf("ExecStart %q", got)
	}
	// The stop timeout must cover the graceful shutdown of the shipped config.
	cfg := parseConfig(t, "deploy/systemd/config.yaml", []byte(read(t, "deploy/systemd/config.yaml")))
	stop := strings.TrimSuffix(svc["TimeoutStopSec"][0], "s")
	n, err := strconv.Atoi(stop)
	if err != nil {
		t.Fatalf("TimeoutStopSec %q: %v", svc["TimeoutStopSec"], err)
	}
	if min := cfg.Server.ShutdownGraceSeconds + 15 + 5; n <= min {
		t.Errorf("TimeoutStopSec=%d must exceed shutdown_grace_seconds + 15 s abort wait + 5 s span flush = %d", n, min)
	}
	// The filesystem root and spool dir are where the unit lets it write.
	for _, b := range cfg.Buckets {
		if b.Filesystem != nil && !strings.HasPrefix(b.Filesystem.Root, "/var/lib/mizuchi/") {
			t.Errorf("bucket %s: root %s is outside the StateDirectory", b.Name, b.Filesystem.Root)
		}
		if sd := b.Upload.SpoolDir; sd != "" && sd != "/var/cache/mizuchi" && !strings.HasPrefix(sd, "/var/cache/mizuchi/") {
			t.Errorf("bucket %s: spool_dir %s is outside the CacheDirectory", b.Name, sd)
		}
	}
}

// TestSystemdUnitVerifies runs systemd-analyze verify on the unit, with
// the binary path pointed at an existing executable.
func TestSystemdUnitVerifies(t *testing.T) {
	analyze := testproc.LookPath(t, "systemd-analyze")
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	text := strings.ReplaceAll(read(t, "deploy/systemd/mizuchi.service"), "/usr/local/bin/mizuchi", self)
	path := filepath.Join(t.TempDir(), "mizuchi.service")
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(analyze, "verify", path).CombinedOutput()
	if err != nil || len(bytes.TrimSpace(out)) > 0 {
		t.Fatalf("systemd-analyze verify: %v\n%s", err, out)
	}
}

// ---- Helm chart ----

func chartYAML(t *testing.T, name string) map[string]any {
	t.Helper()
	var v map[string]any
	if err := yaml.Unmarshal([]byte(read(t, filepath.Join("deploy/helm/mizuchi", name))), &v); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return v
}

// render renders the chart's templates with the subset of Helm's template
// functions the chart uses, the way Helm does (missing values render
// empty), and returns the manifests by template file.
func render(t *testing.T, values map[string]any) map[string][]map[string]any {
	t.Helper()
	chart := chartYAML(t, "Chart.yaml")
	dir := filepath.Join(root, "deploy/helm/mizuchi/templates")
	var tpl *template.Template
	funcs := template.FuncMap{
		"include": func(name string, data any) (string, error) {
			var b bytes.Buffer
			err := tpl.ExecuteTemplate(&b, name, data)
			return b.String(), err
		},
		"toYaml": func(v any) (string, error) {
			b, err := yaml.Marshal(v)
			return strings.TrimSuffix(string(b), "\n"), err
		},
		"indent": func(n int, s string) string {
			pad := strings.Repeat(" ", n)
			return pad + strings.ReplaceAll(s, "\n", "\n"+pad)
		},
		"nindent": func(n int, s string) string {
			pad := strings.Repeat(" ", n)
			return "\n" + pad + strings.ReplaceAll(s, "\n", "\n"+pad)
		},
		"quote": func(v any) string { return strconv.Quote(fmt.Sprint(v)) },
		"default": func(def any, v ...any) any {
			if len(v) == 0 || v[0] == nil || v[0] == "" || v[0] == false || v[0] == 0 {
				return def
			}
			return v[0]
		},
		"trunc": func(n int, s string) string {
			if len(s) > n {
				return s[:n]
			}
			return s
		},
		"trimSuffix": func(suffix, s string) string { return strings.TrimSuffix(s, suffix) },
		"sha256sum": func(s string) string {
			h := sha256.Sum256([]byte(s))
			return hex.EncodeToString(h[:])
		},
	}
	tpl = template.New("chart").Funcs(funcs).Option("missingkey=zero")
	files, err := filepath.Glob(filepath.Join(dir, "*"))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := tpl.New(filepath.Base(f)).Parse(string(b)); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
	}
	data := map[string]any{
		"Values":  values,
		"Chart":   map[string]any{"Name": chart["name"], "Version": chart["version"], "AppVersion": chart["appVersion"]},
		"Release": map[string]any{"Name": "up", "Namespace": "default", "Service": "Helm"},
	}
	out := map[string][]map[string]any{}
	for _, f := range files {
		name := filepath.Base(f)
		if !strings.HasSuffix(name, ".yaml") {
			continue
		}
		var b bytes.Buffer
		if err := tpl.ExecuteTemplate(&b, name, data); err != nil {
			t.Fatalf("render %s: %v", name, err)
		}
		text := strings.ReplaceAll(b.String(), "<no value>", "")
		dec := yaml.NewDecoder(strings.NewReader(text))
		for {
			var doc map[string]any
			err := dec.Decode(&doc)
			if err != nil {
				if err.Error() == "EOF" {
					break
				}
				t.Fatalf("%s renders invalid YAML: %v\n%s", name, err, text)
			}
			if doc != nil {
				out[name] = append(out[name], doc)
			}
		}
	}
	return out
}

// dig walks nested maps and lists ("spec.template.spec.containers.0").
func dig(t *testing.T, v any, path string) any {
	t.Helper()
	for _, p := range strings.Split(path, ".") {
		switch x := v.(type) {
		case map[string]any:
			v = x[p]
		case []any:
			i, err := strconv.Atoi(p)
			if err != nil || i >= len(x) {
				t.Fatalf("%s: no element %s", path, p)
			}
			v = x[i]
		default:
			t.Fatalf("%s: cannot descend into %T at %s", path, v, p)
		}
	}
	return v
}

func intOf(t *testing.T, v any) int {
	t.Helper()
	switch n := v.(type) {
	case int:
		return n
	case uint64:
		return int(n)
	case float64:
		return int(n)
	}
	t.Fatalf("%v (%T) is not a number", v, v)
	return 0
}

func TestHelmChartDefaultConfigParses(t *testing.T) {
	chart := chartYAML(t, "Chart.yaml")
	for _, k := range []string{"apiVersion", "name", "version", "appVersion"} {
		if chart[k] == nil {
			t.Errorf("Chart.yaml lacks %s", k)
		}
	}
	values := chartYAML(t, "values.yaml")
	manifests := render(t, values)
	cm := manifests["configmap.yaml"]
	if len(cm) != 1 {
		t.Fatalf("configmap.yaml renders %d documents", len(cm))
	}
	text, _ := dig(t, cm[0], "data").(map[string]any)["config.yaml"].(string)
	cfg := parseConfig(t, "values.yaml config (rendered ConfigMap)", []byte(text))

	// Ports, grace period and spool directory agree with the config.
	d := manifests["deployment.yaml"][0]
	pod := dig(t, d, "spec.template.spec")
	grace := intOf(t, dig(t, pod, "terminationGracePeriodSeconds"))
	preStop := intOf(t, values["preStopSleepSeconds"])
	if min := preStop + cfg.Server.ShutdownGraceSeconds + 15 + 5; grace <= min {
		t.Errorf("terminationGracePeriodSeconds %d must exceed preStop %d + shutdown_grace_seconds %d + 20 = %d",
			grace, preStop, cfg.Server.ShutdownGraceSeconds, min)
	}
	ports := map[string]int{}
	for _, p := range dig(t, pod, "containers.0.ports").([]any) {
		ports[p.(map[string]any)["name"].(string)] = intOf(t, p.(map[string]any)["containerPort"])
	}
	if !strings.HasSuffix(cfg.Server.Address, ":"+strconv.Itoa(ports["http"])) {
		t.Errorf("config server.address %s does not listen on containerPort http %d", cfg.Server.Address, ports["http"])
	}
	if !strings.HasSuffix(cfg.Metrics.Address, ":"+strconv.Itoa(ports["metrics"])) {
		t.Errorf("config metrics.address %s does not listen on containerPort metrics %d", cfg.Metrics.Address, ports["metrics"])
	}
	for _, b := range cfg.Buckets {
		if sd := b.Upload.SpoolDir; sd != "" && sd != "/tmp" && !strings.HasPrefix(sd, "/tmp/") {
			t.Errorf("bucket %s: spool_dir %s is not on the /tmp volume", b.Name, sd)
		}
	}
	// Every ${VAR} the config needs is provided by the pod's environment.
	provided := map[string]bool{}
	for _, e := range dig(t, pod, "containers.0.env").([]any) {
		provided[e.(map[string]any)["name"].(string)] = true
	}
	for _, m := range regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)\}`).FindAllStringSubmatch(text, -1) {
		if !provided[m[1]] {
			t.Errorf("the config needs $%s but the Deployment does not set it", m[1])
		}
	}
}

func TestHelmChartDeploymentIsLockedDown(t *testing.T) {
	d := render(t, chartYAML(t, "values.yaml"))["deployment.yaml"][0]
	pod := dig(t, d, "spec.template.spec")
	c := dig(t, pod, "containers.0")
	checks := []struct {
		name string
		path string
		root any
		want any
	}{
		{"pod runs as non-root", "securityContext.runAsNonRoot", pod, true},
		{"pod seccomp", "securityContext.seccompProfile.type", pod, "RuntimeDefault"},
		{"no service account token", "automountServiceAccountToken", pod, false},
		{"read-only root filesystem", "securityContext.readOnlyRootFilesystem", c, true},
		{"no privilege escalation", "securityContext.allowPrivilegeEscalation", c, false},
		{"capabilities dropped", "securityContext.capabilities.drop.0", c, "ALL"},
		{"liveness on /healthz", "livenessProbe.httpGet.path", c, "/healthz"},
		{"readiness on /readyz", "readinessProbe.httpGet.path", c, "/readyz"},
		{"config file", "args.2", c, "/etc/mizuchi/config.yaml"},
	}
	for _, tc := range checks {
		t.Run(tc.name, func(t *testing.T) {
			if got := dig(t, tc.root, tc.path); got != tc.want {
				t.Errorf("%s = %v, want %v", tc.path, got, tc.want)
			}
		})
	}
	if uid := intOf(t, dig(t, pod, "securityContext.runAsUser")); uid == 0 {
		t.Error("runAsUser 0")
	}
	// Writable paths are volumes: /tmp (spool) and /var/lib/mizuchi.
	mounts := map[string]bool{}
	for _, m := range dig(t, c, "volumeMounts").([]any) {
		mounts[m.(map[string]any)["mountPath"].(string)] = true
	}
	for _, p := range []string{"/tmp", "/var/lib/mizuchi", "/etc/mizuchi"} {
		if !mounts[p] {
			t.Errorf("no volume mounted at %s", p)
		}
	}
}

func TestHelmChartOptionalResources(t *testing.T) {
	values := chartYAML(t, "values.yaml")
	values["serviceMonitor"].(map[string]any)["enabled"] = true
	values["persistence"].(map[string]any)["enabled"] = true
	values["podDisruptionBudget"].(map[string]any)["enabled"] = true
	values["podAnnotations"] = map[string]any{"a": "b"}
	m := render(t, values)
	for file, kind := range map[string]string{
		"servicemonitor.yaml": "ServiceMonitor", "pvc.yaml": "PersistentVolumeClaim",
		"pdb.yaml": "PodDisruptionBudget", "service.yaml": "Service", "serviceaccount.yaml": "ServiceAccount",
	} {
		if len(m[file]) != 1 || m[file][0]["kind"] != kind {
			t.Errorf("%s does not render one %s: %v", file, kind, m[file])
		}
	}
	claim := dig(t, m["deployment.yaml"][0], "spec.template.spec.volumes.2.persistentVolumeClaim.claimName")
	if claim != dig(t, m["pvc.yaml"][0], "metadata.name") {
		t.Errorf("the Deployment mounts claim %v, the chart creates %v", claim, dig(t, m["pvc.yaml"][0], "metadata.name"))
	}

	values["serviceMonitor"].(map[string]any)["enabled"] = false
	values["persistence"].(map[string]any)["enabled"] = false
	values["podDisruptionBudget"].(map[string]any)["enabled"] = false
	m = render(t, values)
	for _, file := range []string{"servicemonitor.yaml", "pvc.yaml", "pdb.yaml"} {
		if len(m[file]) != 0 {
			t.Errorf("%s renders although disabled", file)
		}
	}
}

// TestHelmChartScalesOut: several replicas share the upload id key and the
// subject hash key from a Secret and a state store (an external URL from a
// Secret, or the bundled Valkey), keep one pod through disruptions, and
// are ready only while the store answers (/readyz).
func TestHelmChartScalesOut(t *testing.T) {
	values := chartYAML(t, "values.yaml")
	if n := intOf(t, values["replicaCount"]); n < 2 {
		t.Fatalf("replicaCount %d: the chart is meant to scale out", n)
	}
	m := render(t, values)
	text := dig(t, m["configmap.yaml"][0], "data").(map[string]any)["config.yaml"].(string)
	cfg := parseConfig(t, "rendered config", []byte(text))
	if cfg.State.Backend != "redis" || len(cfg.Server.UploadIDKeys) == 0 || cfg.Tracing.SubjectHashKey == "" {
		t.Fatalf("the default config does not share state: backend %q, %d upload id keys, subject hash key set %v",
			cfg.State.Backend, len(cfg.Server.UploadIDKeys), cfg.Tracing.SubjectHashKey != "")
	}
	envOf := func(m map[string][]map[string]any) map[string]map[string]any {
		out := map[string]map[string]any{}
		for _, e := range dig(t, m["deployment.yaml"][0], "spec.template.spec.containers.0.env").([]any) {
			out[e.(map[string]any)["name"].(string)] = e.(map[string]any)
		}
		return out
	}
	e := envOf(m)
	for _, name := range []string{"MIZUCHI_UPLOAD_ID_KEY", "MIZUCHI_SUBJECT_HASH_KEY", "MIZUCHI_REDIS_URL"} {
		if e[name] == nil || dig(t, e[name], "valueFrom.secretKeyRef.name") == nil {
			t.Errorf("%s does not come from a Secret: %v", name, e[name])
		}
	}
	if len(m["pdb.yaml"]) != 1 || intOf(t, dig(t, m["pdb.yaml"][0], "spec.minAvailable")) < 1 {
		t.Errorf("no PodDisruptionBudget keeping a replica by default: %v", m["pdb.yaml"])
	}
	if len(m["valkey.yaml"]) != 0 {
		t.Error("the bundled Valkey renders although disabled")
	}

	values["valkey"].(map[string]any)["enabled"] = true
	m = render(t, values)
	if len(m["valkey.yaml"]) != 2 || m["valkey.yaml"][0]["kind"] != "Deployment" || m["valkey.yaml"][1]["kind"] != "Service" {
		t.Fatalf("the bundled Valkey renders %v", m["valkey.yaml"])
	}
	svc := dig(t, m["valkey.yaml"][1], "metadata.name").(string)
	e = envOf(m)
	if v, _ := e["MIZUCHI_REDIS_URL"]["value"].(string); v != "redis://"+svc+":6379/0" || e["MIZUCHI_REDIS_URL"]["valueFrom"] != nil {
		t.Errorf("with the bundled Valkey, MIZUCHI_REDIS_URL = %v, want redis://%s:6379/0", e["MIZUCHI_REDIS_URL"], svc)
	}
	args := fmt.Sprint(dig(t, m["valkey.yaml"][0], "spec.template.spec.containers.0.args"))
	if !strings.Contains(args, "noeviction") {
		t.Errorf("the bundled Valkey may evict replay entries: %s", args)
	}
	if dig(t, m["valkey.yaml"][0], "spec.template.spec.containers.0.securityContext.readOnlyRootFilesystem") != true {
		t.Error("the bundled Valkey has a writable root filesystem")
	}
}
