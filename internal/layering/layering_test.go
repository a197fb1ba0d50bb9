package layering

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"path"
	"sort"
	"strings"
	"testing"
)

// layers ranks the module's top-level directories, lowest first.
var layers = map[string]int{
	"internal":  0,
	"crypt":     1,
	"blob":      2,
	"index":     2,
	"gc":        3,
	"scan":      3,
	"engine":    4,
	"registryd": 5,
	"fuse":      5,
	"bench":     5,
	"examples":  5,
	"replicate": 5,
}

// consumers use engine and nothing below it.
var consumers = map[string]bool{"registryd": true, "fuse": true, "bench": true, "examples": true, "replicate": true}

// sidewaysImports are the imports allowed between consumers, each with
// its reason.
var sidewaysImports = map[[2]string]string{
	{"registryd", "fuse"}:      "registryd mount and serve --mount mount the FUSE view",
	{"bench", "registryd"}:     "the bench harness runs the daemon in process to measure it",
	{"registryd", "replicate"}: "registryd serve runs the replicator of its configured destinations",
}

// upwardImports are the imports of an ancestor allowed within a tree,
// each with its reason. The ancestor never imports the package back (Go
// refuses the cycle), so the package is a consumer of its parent's
// output kept beside it, not an internal the parent is built on.
var upwardImports = map[[2]string]string{
	{"scan/sbom", "scan"}: "SBOMs are written from scan's inventories; scan and the engine's scans do not need them",
	{"blob/s3", "blob"}:   "the object-store backend implements blob's roles over blob's format, reader and writer; blob and the file store do not need it",
}

// pkg is what the rules need of one package of `go list -json`.
type pkg struct {
	ImportPath   string
	Name         string
	Imports      []string
	TestImports  []string
	XTestImports []string
}

// violation is one import that breaks a rule.
type violation struct {
	Importer, Import, Rule string
}

func (v violation) String() string { return v.Importer + " imports " + v.Import + ": " + v.Rule }

// check applies the rules to pkgs, packages of module mod, and returns
// every violation, sorted.
func check(mod string, pkgs []pkg) []violation {
	var out []violation
	for _, p := range pkgs {
		src, ok := strings.CutPrefix(p.ImportPath, mod+"/")
		if !ok {
			continue
		}
		seen := map[string]bool{}
		for _, list := range [][]string{p.Imports, p.TestImports, p.XTestImports} {
			for _, imp := range list {
				dst, ok := strings.CutPrefix(imp, mod+"/")
				if !ok || dst == src || seen[dst] {
					continue
				}
				seen[dst] = true
				if p.Name == "main" && isAncestor(dst, src) {
					continue // a command below a package (a generator) is a program of it, not a layer
				}
				if rule := checkImport(src, dst); rule != "" {
					out = append(out, violation{Importer: src, Import: dst, Rule: rule})
				}
			}
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].String() < out[j].String() })
	return out
}

// checkImport returns the rule that src importing dst (both relative to
// the module) breaks, or "".
func checkImport(src, dst string) string {
	st, dt := top(src), top(dst)
	sl, ok := layers[st]
	if !ok {
		return fmt.Sprintf("top-level directory %s has no layer (add it to layers, with its reason in docs/)", st)
	}
	dl, ok := layers[dt]
	if !ok {
		return fmt.Sprintf("top-level directory %s has no layer (add it to layers, with its reason in docs/)", dt)
	}
	if st == "internal" && !isAncestor(src, dst) && !(strings.HasSuffix(src, "test") && dst == "internal/testenv") {
		return "internal/... packages are leaves: they import nothing of Berth"
	}
	if st == dt {
		if isAncestor(dst, src) && !strings.HasSuffix(path.Base(src), "test") {
			if _, ok := upwardImports[[2]string{src, dst}]; ok {
				return ""
			}
			return "imports run down: a package never imports its ancestor (" + dst + ")"
		}
		return ""
	}
	switch {
	case consumers[st]:
		if dt == "engine" && !strings.HasPrefix(dst, "engine/internal/") {
			return ""
		}
		if dt == "internal" {
			return ""
		}
		if _, ok := sidewaysImports[[2]string{st, dt}]; ok {
			return ""
		}
		return "registryd, fuse, bench and examples use engine and nothing below it"
	case dl >= sl:
		return fmt.Sprintf("imports point down: %s (layer %d) may not import %s (layer %d)", st, sl, dt, dl)
	}
	return ""
}

// top is the top-level directory of a module-relative package path.
func top(p string) string {
	t, _, _ := strings.Cut(p, "/")
	return t
}

// isAncestor reports whether a is a proper ancestor directory of p.
func isAncestor(a, p string) bool { return strings.HasPrefix(p, a+"/") }

// TestRules shows each rule failing on a deliberate bad import, naming
// the importer and the import, and the imports the tree has passing.
func TestRules(t *testing.T) {
	const mod = "example.com/m"
	p := func(path string, imports ...string) pkg {
		out := pkg{ImportPath: mod + "/" + path}
		for _, i := range imports {
			if strings.Contains(i, ".") || strings.HasPrefix(i, "os") {
				out.Imports = append(out.Imports, i) // not the module's
				continue
			}
			out.Imports = append(out.Imports, mod+"/"+i)
		}
		return out
	}
	tests := []struct {
		name string
		pkgs []pkg
		want []string // violations, as "importer imports import: rule" prefixes
	}{
		{"the tree's shape", []pkg{
			p("crypt", "crypt/internal/aesgcm"),
			p("blob", "crypt", "github.com/klauspost/compress/zstd"),
			p("gc", "blob", "index"),
			p("engine", "blob", "index", "crypt", "gc", "engine/internal/manifest"),
			p("engine/internal/manifest", "engine/internal/reference", "os"),
			p("engine/enginetest", "engine", "crypt"),
			p("fuse", "engine"),
			p("registryd/cli", "engine", "fuse", "registryd/server"),
			p("registryd/server", "engine", "internal/testenv"),
			p("bench", "engine", "registryd/server"),
			p("examples/embed", "engine"),
			p("internal/testenv", "os"),
			p("internal/leaf", "internal/leaf/sub"),
		}, nil},
		{"registryd imports gc", []pkg{p("registryd/server", "engine", "gc")},
			[]string{"registryd/server imports gc: registryd, fuse, bench and examples use engine"}},
		{"fuse imports an engine internal", []pkg{p("fuse", "engine/internal/layertoc")},
			[]string{"fuse imports engine/internal/layertoc: registryd, fuse, bench and examples use engine"}},
		{"a test of fuse imports crypt", []pkg{{ImportPath: mod + "/fuse", XTestImports: []string{mod + "/crypt"}}},
			[]string{"fuse imports crypt: registryd, fuse, bench and examples use engine"}},
		{"fuse imports registryd", []pkg{p("fuse", "registryd/server")},
			[]string{"fuse imports registryd/server: registryd, fuse, bench and examples use engine"}},
		{"gc imports engine", []pkg{{ImportPath: mod + "/gc", TestImports: []string{mod + "/engine"}}},
			[]string{"gc imports engine: imports point down: gc (layer 3) may not import engine (layer 4)"}},
		{"blob imports index, same layer", []pkg{p("blob", "index")},
			[]string{"blob imports index: imports point down"}},
		{"crypt imports fuse", []pkg{p("crypt", "fuse")},
			[]string{"crypt imports fuse: imports point down"}},
		{"internal imports engine", []pkg{p("internal/testenv", "engine")},
			[]string{"internal/testenv imports engine: internal/... packages are leaves"}},
		{"internal imports internal", []pkg{p("internal/layering", "internal/testenv")},
			[]string{"internal/layering imports internal/testenv: internal/... packages are leaves"}},
		{"engine internal imports engine", []pkg{p("engine/internal/manifest", "engine")},
			[]string{"engine/internal/manifest imports engine: imports run down"}},
		{"an allowed upward import (scan/sbom takes scan's inventories)", []pkg{p("scan/sbom", "scan", "internal/scanfixture")}, nil},
		{"another package of scan imports scan", []pkg{p("scan/osv", "scan")},
			[]string{"scan/osv imports scan: imports run down"}},
		{"a command below a package (a generator) may import it", []pkg{{ImportPath: mod + "/blob/internal/gen", Name: "main",
			Imports: []string{mod + "/blob"}}}, nil},
		{"unknown top-level directory", []pkg{p("tools/gen", "engine")},
			[]string{"tools/gen imports engine: top-level directory tools has no layer"}},
		{"all three lists, each import once", []pkg{{ImportPath: mod + "/examples/x",
			Imports: []string{mod + "/index"}, TestImports: []string{mod + "/index", mod + "/blob"}}},
			[]string{"examples/x imports blob:", "examples/x imports index:"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := check(mod, tt.pkgs)
			if len(got) != len(tt.want) {
				t.Fatalf("got %d violations, want %d:\n%s", len(got), len(tt.want), list(got))
			}
			for i, v := range got {
				if !strings.HasPrefix(v.String(), tt.want[i]) {
					t.Errorf("violation %d is %q, want it to start with %q", i, v, tt.want[i])
				}
			}
		})
	}
}

// TestLayering checks the rules on the module, with and without the
// pkcs11 build tag (the HSM code and its tests).
func TestLayering(t *testing.T) {
	mod := goList(t, "list", "-m")
	mod = strings.TrimSpace(mod)
	byPath := map[string]*pkg{}
	var pkgs []pkg
	for _, tags := range []string{"", "pkcs11"} {
		out := goList(t, "list", "-json", "-tags="+tags, mod+"/...")
		dec := json.NewDecoder(strings.NewReader(out))
		for {
			var p pkg
			err := dec.Decode(&p)
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatalf("decoding go list: %v", err)
			}
			if q := byPath[p.ImportPath]; q != nil {
				q.Imports = append(q.Imports, p.Imports...)
				q.TestImports = append(q.TestImports, p.TestImports...)
				q.XTestImports = append(q.XTestImports, p.XTestImports...)
				continue
			}
			byPath[p.ImportPath] = &p
		}
	}
	for _, p := range byPath {
		pkgs = append(pkgs, *p)
	}
	if len(pkgs) < 20 {
		t.Fatalf("go list found %d packages; expected the whole module", len(pkgs))
	}
	if vs := check(mod, pkgs); len(vs) > 0 {
		t.Errorf("%d imports break the layering (internal/layering/doc.go):\n%s", len(vs), list(vs))
	}
}

func goList(t *testing.T, args ...string) string {
	t.Helper()
	cmd := exec.Command("go", args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
	return string(out)
}

func list(vs []violation) string {
	var b strings.Builder
	for _, v := range vs {
		fmt.Fprintf(&b, "\t%s\n", v)
	}
	return b.String()
}
