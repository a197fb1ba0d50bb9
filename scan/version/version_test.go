package version

import (
	"bufio"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// comparison is one line of a table in testdata: A OP B in Ecosystem.
type comparison struct {
	Ecosystem string
	A, B      string
	Want      int
	Line      string
}

// readTable reads testdata/name: "# comments", an "ecosystem E..." line
// naming the ecosystems the following lines hold for, and "A < B",
// "A = B" or "A > B" lines.
func readTable(t testing.TB, name string) []comparison {
	t.Helper()
	f, err := os.Open(filepath.Join("testdata", name))
	require.NoError(t, err)
	defer f.Close()
	var ecosystems []string
	var out []comparison
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if rest, ok := strings.CutPrefix(line, "ecosystem "); ok {
			ecosystems = splitEcosystems(rest)
			continue
		}
		f := strings.Fields(line)
		require.Len(t, f, 3, "line %q", line)
		want := map[string]int{"<": -1, "=": 0, ">": 1}[f[1]]
		require.Contains(t, []string{"<", "=", ">"}, f[1], "line %q", line)
		for _, e := range ecosystems {
			out = append(out, comparison{Ecosystem: e, A: f[0], B: f[2], Want: want, Line: line})
		}
	}
	require.NoError(t, sc.Err())
	require.NotEmpty(t, out)
	return out
}

// splitEcosystems splits "Red Hat" as one name and "npm crates.io" as two.
func splitEcosystems(s string) []string {
	if supported[s] {
		return []string{s}
	}
	return strings.Fields(s)
}

var tables = []string{"apk.txt", "dpkg.txt", "go.txt", "maven.txt", "pypi.txt", "rpm.txt", "semver.txt"}

// TestDocumentedOrder checks every documented example in both directions.
func TestDocumentedOrder(t *testing.T) {
	for _, table := range tables {
		t.Run(table, func(t *testing.T) {
			for _, c := range readTable(t, table) {
				got, err := Compare(c.Ecosystem, c.A, c.B)
				require.NoError(t, err, "%s: %s", c.Ecosystem, c.Line)
				require.Equal(t, c.Want, got, "%s: %s", c.Ecosystem, c.Line)
				got, err = Compare(c.Ecosystem, c.B, c.A)
				require.NoError(t, err)
				require.Equal(t, -c.Want, got, "%s: reversed %s", c.Ecosystem, c.Line)
			}
		})
	}
}

// TestDistroEcosystemsShareTheirFamilysOrder checks that a release suffix
// and each member of a family order alike.
func TestDistroEcosystemsShareTheirFamilysOrder(t *testing.T) {
	for _, e := range []string{"Debian:12", "Ubuntu:22.04:LTS"} {
		c, err := Compare(e, "1.0~rc1", "1.0")
		require.NoError(t, err)
		require.Equal(t, -1, c, e)
	}
	for _, e := range []string{"AlmaLinux:9", "Rocky Linux:9", "Red Hat:enterprise_linux:9::appstream", "openSUSE", "SUSE"} {
		c, err := Compare(e, "1:1.0-1", "2.0-1")
		require.NoError(t, err)
		require.Equal(t, 1, c, e)
	}
	for _, e := range []string{"Alpine:v3.19", "Wolfi", "Chainguard"} {
		c, err := Compare(e, "1.0_rc1-r0", "1.0-r0")
		require.NoError(t, err)
		require.Equal(t, -1, c, e)
	}
}

func TestErrors(t *testing.T) {
	_, err := Compare("Hackage:foo", "1", "2")
	require.True(t, errors.Is(err, ErrUnsupported), "%v", err)
	_, err = Parse("PyPI", "not a version")
	require.True(t, errors.Is(err, ErrInvalid), "%v", err)
	// A string outside PEP 440 is a legacy version (as setuptools and
	// packaging before 22 had them): it orders before every PEP 440 one.
	c, err := Compare("PyPI", "1.0.blah", "0.1")
	require.NoError(t, err)
	require.Equal(t, -1, c)
	_, err = Parse("Debian", "")
	require.True(t, errors.Is(err, ErrInvalid), "%v", err)
	_, err = Parse("npm", strings.Repeat("1", maxLen+1))
	require.True(t, errors.Is(err, ErrInvalid), "%v", err)
	for _, bad := range []string{"A", "1a0", "1.0_foo", "1.0-r", ""} {
		_, err = Parse("Alpine", bad)
		require.True(t, errors.Is(err, ErrInvalid), "%q: %v", bad, err)
	}
	require.True(t, Supported("Debian:12"))
	require.False(t, Supported("GIT"))
}

// checkOrder asserts what any ordering must satisfy on a, b and c:
// reflexivity, antisymmetry and transitivity (of < and of =).
func checkOrder(t *testing.T, ecosystem, a, b, c string) {
	va, err1 := Parse(ecosystem, a)
	vb, err2 := Parse(ecosystem, b)
	vc, err3 := Parse(ecosystem, c)
	if err1 != nil || err2 != nil || err3 != nil {
		return
	}
	if va.Compare(va) != 0 {
		t.Fatalf("%s: %q != itself", ecosystem, a)
	}
	ab, ba := va.Compare(vb), vb.Compare(va)
	if ab != -ba {
		t.Fatalf("%s: antisymmetry: cmp(%q,%q)=%d, cmp(%q,%q)=%d", ecosystem, a, b, ab, b, a, ba)
	}
	bc, ac := vb.Compare(vc), va.Compare(vc)
	if ab <= 0 && bc <= 0 && ac > 0 {
		t.Fatalf("%s: transitivity: %q <= %q <= %q but %q > %q", ecosystem, a, b, c, a, c)
	}
	if ab >= 0 && bc >= 0 && ac < 0 {
		t.Fatalf("%s: transitivity: %q >= %q >= %q but %q < %q", ecosystem, a, b, c, a, c)
	}
	if ab == 0 && bc == 0 && ac != 0 {
		t.Fatalf("%s: equality: %q = %q = %q but %q != %q", ecosystem, a, b, c, a, c)
	}
}

// fuzzOrder runs checkOrder over triples seeded from a table.
func fuzzOrder(f *testing.F, ecosystem, table string) {
	rows := readTable(f, table)
	for i, r := range rows {
		next := rows[(i+1)%len(rows)]
		f.Add(r.A, r.B, next.B)
	}
	f.Fuzz(func(t *testing.T, a, b, c string) {
		checkOrder(t, ecosystem, a, b, c)
	})
}

func FuzzDebian(f *testing.F) { fuzzOrder(f, "Debian", "dpkg.txt") }
func FuzzRPM(f *testing.F)    { fuzzOrder(f, "Red Hat", "rpm.txt") }
func FuzzAlpine(f *testing.F) { fuzzOrder(f, "Alpine", "apk.txt") }
func FuzzPyPI(f *testing.F)   { fuzzOrder(f, "PyPI", "pypi.txt") }

// FuzzMaven checks the order on versions of the form Maven recommends
// (numbers separated by dots, then qualifiers after a hyphen). Maven's
// ComparableVersion is not transitive across mixed separators: in Maven
// itself "2.a" < "2rc" < "2" < "2.a" (a string item after a dot sorts
// below a sub-list, "rc" below the release, an unknown qualifier above it),
// and this package orders as Maven does rather than inventing an order.
func FuzzMaven(f *testing.F) {
	rows := readTable(f, "maven.txt")
	for i, r := range rows {
		f.Add(r.A, r.B, rows[(i+1)%len(rows)].B)
	}
	f.Fuzz(func(t *testing.T, a, b, c string) {
		if !mavenRecommended.MatchString(a) || !mavenRecommended.MatchString(b) || !mavenRecommended.MatchString(c) {
			return
		}
		checkOrder(t, "Maven", a, b, c)
	})
}

var mavenRecommended = regexp.MustCompile(`^[0-9]+(\.[0-9]+)*(-[A-Za-z][A-Za-z0-9]*(\.[0-9]+)*)?$`)

func FuzzNPM(f *testing.F)    { fuzzOrder(f, "npm", "semver.txt") }
func FuzzCrates(f *testing.F) { fuzzOrder(f, "crates.io", "semver.txt") }
func FuzzGo(f *testing.F)     { fuzzOrder(f, "Go", "go.txt") }
