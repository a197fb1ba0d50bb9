package scan

import (
	"encoding/json"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strings"
)

// maxPackageJSON bounds a package.json.
const maxPackageJSON = 8 << 20

// isNodeModulePackage reports whether dir is a package's own directory in
// a node_modules tree (node_modules/name or node_modules/@scope/name), not
// a directory inside a package (a test fixture's package.json).
func isNodeModulePackage(dir string) bool {
	parent, name := path.Split(dir)
	parent = strings.TrimSuffix(parent, "/")
	if name == "" {
		return false
	}
	if path.Base(parent) == "node_modules" {
		return true
	}
	if strings.HasPrefix(path.Base(parent), "@") {
		return path.Base(path.Dir(parent)) == "node_modules"
	}
	return false
}

// readNodePackage reads an installed npm package's package.json.
func readNodePackage(fsys fs.FS, p string) ([]Package, error) {
	data, err := readAll(fsys, p, maxPackageJSON)
	if err != nil {
		return nil, err
	}
	var pj struct {
		Name    string          `json:"name"`
		Version string          `json:"version"`
		License json.RawMessage `json:"license"`
	}
	if err := json.Unmarshal(data, &pj); err != nil {
		return nil, fmt.Errorf("package.json: %w", err)
	}
	if pj.Name == "" || pj.Version == "" {
		return nil, nil // a package.json of a directory that is not a package
	}
	var license string
	_ = json.Unmarshal(pj.License, &license) // a string; the old {"type": ...} form is left out
	return []Package{{Ecosystem: "npm", Name: pj.Name, Version: pj.Version, License: license, Kind: KindNPM}}, nil
}

// lockEntry is a package of a package-lock.json: an entry of "packages"
// (lockfile versions 2 and 3), or of the "dependencies" tree (version 1),
// whose own dependencies nest.
type lockEntry struct {
	Version string `json:"version"`
	Dev     bool   `json:"dev"`
	Link    bool   `json:"link"`
}

type lockTreeEntry struct {
	lockEntry
	Dependencies map[string]lockTreeEntry `json:"dependencies"`
}

// readNodeLock reads an application's package-lock.json: lockfile
// version 2 and 3 list packages by their node_modules path ("packages"),
// version 1 as a tree of "dependencies". Development dependencies are left
// out (a production image installs without them; those it does install
// are found in node_modules), and so are links to local directories.
func readNodeLock(fsys fs.FS, p string, limit int64) ([]Package, error) {
	data, err := readAll(fsys, p, limit)
	if err != nil {
		return nil, err
	}
	var lock struct {
		LockfileVersion int                      `json:"lockfileVersion"`
		Packages        map[string]lockEntry     `json:"packages"`
		Dependencies    map[string]lockTreeEntry `json:"dependencies"`
	}
	if err := json.Unmarshal(data, &lock); err != nil {
		return nil, fmt.Errorf("package-lock.json: %w", err)
	}
	var out []Package
	add := func(name string, e lockEntry) {
		if name == "" || e.Version == "" || e.Dev || e.Link || strings.HasPrefix(e.Version, "file:") {
			return
		}
		out = append(out, Package{Ecosystem: "npm", Name: name, Version: e.Version, Kind: KindNPM})
	}
	if len(lock.Packages) > 0 {
		for _, key := range sortedKeys(lock.Packages) {
			i := strings.LastIndex(key, "node_modules/")
			if i < 0 {
				continue // the root package, or a workspace directory
			}
			add(key[i+len("node_modules/"):], lock.Packages[key])
		}
		return out, nil
	}
	var walk func(deps map[string]lockTreeEntry, depth int)
	walk = func(deps map[string]lockTreeEntry, depth int) {
		if depth > 64 {
			return
		}
		for _, name := range sortedKeys(deps) {
			add(name, deps[name].lockEntry)
			walk(deps[name].Dependencies, depth+1)
		}
	}
	walk(lock.Dependencies, 0)
	return out, nil
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
