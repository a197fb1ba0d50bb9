package scan

import (
	"bufio"
	"bytes"
	"errors"
	"io/fs"
	"strings"
)

// maxPythonMetadata bounds a METADATA or PKG-INFO file: its headers come
// first and are small, but the long description after them may not be.
const maxPythonMetadata = 8 << 20

// readPythonMetadata reads an installed distribution's core metadata
// (name-version.dist-info/METADATA, name.egg-info/PKG-INFO): email-style
// headers, of which Name and Version identify the distribution.
func readPythonMetadata(fsys fs.FS, p string) ([]Package, error) {
	data, err := readAll(fsys, p, maxPythonMetadata)
	if err != nil {
		return nil, err
	}
	name, ver, license := "", "", ""
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 64<<10), maxPythonMetadata)
	for sc.Scan() {
		line := strings.TrimRight(sc.Text(), "\r")
		if line == "" {
			break // the headers end at the first blank line
		}
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		switch strings.ToLower(k) {
		case "name":
			name = strings.TrimSpace(v)
		case "version":
			ver = strings.TrimSpace(v)
		case "license-expression":
			license = strings.TrimSpace(v)
		case "license":
			if license == "" {
				license = strings.TrimSpace(v)
			}
		}
	}
	if name == "" || ver == "" {
		return nil, errors.New("python metadata: no Name or no Version")
	}
	return []Package{{Ecosystem: "PyPI", Name: name, Version: ver, License: license, Kind: KindPython}}, nil
}
