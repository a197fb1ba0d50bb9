package index

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestPrefixesDistinct: every key prefix the package declares (a byte
// constant named prefix...) is used once, so that key ranges added by
// different changes cannot share a letter.
func TestPrefixesDistinct(t *testing.T) {
	fset := token.NewFileSet()
	pkgs, err := parser.ParseDir(fset, ".", func(fi fs.FileInfo) bool {
		return !strings.HasSuffix(fi.Name(), "_test.go")
	}, 0)
	require.NoError(t, err)
	seen := map[string]string{}
	for _, p := range pkgs {
		for _, f := range p.Files {
			ast.Inspect(f, func(n ast.Node) bool {
				vs, ok := n.(*ast.ValueSpec)
				if !ok || len(vs.Values) != len(vs.Names) {
					return true
				}
				for i, name := range vs.Names {
					lit, ok := vs.Values[i].(*ast.BasicLit)
					if !ok || lit.Kind != token.CHAR || !strings.HasPrefix(name.Name, "prefix") {
						continue
					}
					if other, dup := seen[lit.Value]; dup {
						t.Errorf("prefix %s is both %s and %s", lit.Value, other, name.Name)
					}
					seen[lit.Value] = name.Name
				}
				return true
			})
		}
	}
	require.Contains(t, seen, "'s'", "the scan records' prefix is found")
	require.Greater(t, len(seen), 15)
}
