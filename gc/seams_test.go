package gc

import (
	"go/parser"
	"go/token"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestBlobsOnlyThroughRoles keeps the collector and the checker on the
// blob store's role interfaces (blob.Inventory): no file of the package
// reaches the file system itself, so gc and fsck run over any backend
// (files, an object store).
func TestBlobsOnlyThroughRoles(t *testing.T) {
	files, err := filepath.Glob("*.go")
	require.NoError(t, err)
	fset := token.NewFileSet()
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, parser.ImportsOnly)
		require.NoError(t, err)
		for _, imp := range f.Imports {
			p, _ := strconv.Unquote(imp.Path.Value)
			require.NotContains(t, []string{"os", "path/filepath", "syscall"}, p,
				"%s imports %s: reach blobs through blob.Inventory", name, p)
		}
	}
}
