package scan

import (
	"bufio"
	"bytes"
	"fmt"
	"io/fs"
	"strings"
)

// readDpkgStatus reads a dpkg status file (/var/lib/dpkg/status) or one
// file of a distroless image's /var/lib/dpkg/status.d/. In the status
// file only packages whose Status ends in "installed" count; status.d
// files carry no Status, since they list only what is installed.
func readDpkgStatus(fsys fs.FS, p string, limit int64, needStatus bool) ([]Package, error) {
	data, err := readAll(fsys, p, limit)
	if err != nil {
		return nil, err
	}
	return parseDpkgStatus(data, needStatus)
}

// parseDpkgStatus parses deb822 paragraphs: "Field: value" lines,
// continuation lines starting with a space or a tab, paragraphs separated
// by blank lines.
func parseDpkgStatus(data []byte, needStatus bool) ([]Package, error) {
	var out []Package
	var bad []string
	for _, para := range paragraphs(data) {
		f := deb822Fields(para)
		name, ver := f["Package"], f["Version"]
		if name == "" && ver == "" {
			continue
		}
		if needStatus {
			status := strings.Fields(f["Status"])
			if len(status) == 0 || status[len(status)-1] != "installed" {
				continue
			}
		}
		if name == "" || ver == "" || strings.ContainsAny(name+ver, " \t") {
			bad = append(bad, fmt.Sprintf("%q %q", name, ver))
			continue
		}
		pkg := Package{Name: name, Version: ver, Arch: f["Architecture"], Kind: KindDeb}
		if src := f["Source"]; src != "" {
			srcName, srcVer, _ := strings.Cut(src, " ")
			pkg.SourceName = srcName
			srcVer = strings.TrimSpace(srcVer)
			if strings.HasPrefix(srcVer, "(") && strings.HasSuffix(srcVer, ")") {
				pkg.SourceVersion = strings.TrimSpace(srcVer[1 : len(srcVer)-1])
			}
			if pkg.SourceName == pkg.Name {
				pkg.SourceName = ""
			}
			if pkg.SourceVersion == pkg.Version {
				pkg.SourceVersion = ""
			}
		}
		out = append(out, pkg)
	}
	if len(bad) > 0 {
		return out, fmt.Errorf("dpkg: %d paragraphs without a usable package and version: %s", len(bad), strings.Join(bad[:min(len(bad), 3)], ", "))
	}
	return out, nil
}

// paragraphs splits data at blank lines.
func paragraphs(data []byte) [][]byte {
	var out [][]byte
	data = bytes.ReplaceAll(data, []byte("\r\n"), []byte("\n"))
	for _, p := range bytes.Split(data, []byte("\n\n")) {
		if len(bytes.TrimSpace(p)) > 0 {
			out = append(out, p)
		}
	}
	return out
}

// deb822Fields returns a paragraph's fields, continuation lines dropped
// (no field read here spans lines).
func deb822Fields(para []byte) map[string]string {
	f := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(para))
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == ' ' || line[0] == '\t' || line[0] == '#' {
			continue
		}
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		f[k] = strings.TrimSpace(v)
	}
	return f
}
