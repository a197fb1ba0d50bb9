package scan

import (
	"bufio"
	"bytes"
	"fmt"
	"io/fs"
	"strings"
)

// readAPKInstalled reads apk's database of installed packages
// (/lib/apk/db/installed): one block of "X:value" lines per package,
// blocks separated by blank lines; P is the name, V the version, o the
// origin (source) package, A the architecture.
func readAPKInstalled(fsys fs.FS, p string, limit int64) ([]Package, error) {
	data, err := readAll(fsys, p, limit)
	if err != nil {
		return nil, err
	}
	return parseAPKInstalled(data)
}

func parseAPKInstalled(data []byte) ([]Package, error) {
	var out []Package
	var bad int
	for _, para := range paragraphs(data) {
		var pkg Package
		pkg.Kind = KindAPK
		sc := bufio.NewScanner(bytes.NewReader(para))
		sc.Buffer(make([]byte, 64<<10), 16<<20)
		for sc.Scan() {
			line := sc.Text()
			if len(line) < 2 || line[1] != ':' {
				continue
			}
			v := strings.TrimSpace(line[2:])
			switch line[0] {
			case 'P':
				pkg.Name = v
			case 'V':
				pkg.Version = v
			case 'o':
				pkg.SourceName = v
			case 'A':
				pkg.Arch = v
			case 'L':
				pkg.License = v
			}
		}
		if pkg.Name == "" && pkg.Version == "" {
			continue
		}
		if pkg.Name == "" || pkg.Version == "" {
			bad++
			continue
		}
		if pkg.SourceName == pkg.Name {
			pkg.SourceName = ""
		}
		out = append(out, pkg)
	}
	if bad > 0 {
		return out, fmt.Errorf("apk: %d blocks without a name or a version", bad)
	}
	return out, nil
}
