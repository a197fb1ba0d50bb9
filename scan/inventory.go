package scan

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strings"
)

// ErrTooLarge is returned (inside a Problem) for a file larger than the
// bound set for its kind.
var ErrTooLarge = errors.New("scan: file too large")

// Inventory is the software found in one filesystem.
type Inventory struct {
	// OS is the operating system /etc/os-release names, nil if none.
	OS *OS `json:"os,omitempty"`
	// Packages are the packages found, sorted by location, ecosystem,
	// name and version.
	Packages []Package `json:"packages"`
	// Problems are the files that looked like package records but could
	// not be read; the rest of the inventory stands.
	Problems []Problem `json:"problems,omitempty"`
	// Files is the number of files and directories walked.
	Files int `json:"files"`
}

// Problem is a file that could not be inventoried.
type Problem struct {
	Path string `json:"path"`
	Err  string `json:"error"`
}

// Options tune TakeInventory. The zero value takes the defaults.
type Options struct {
	// MaxFileSize bounds what is read whole from one file: a package
	// database, a manifest, a jar that the file system cannot read at
	// offsets. Default 256 MiB (an rpm database of a large image is tens).
	MaxFileSize int64
	// MaxNestedJarSize bounds a jar inside a jar, which is read into
	// memory. Default 64 MiB.
	MaxNestedJarSize int64
	// SkipDirs are directories not walked. Default: proc, sys, dev.
	SkipDirs []string
}

func (o Options) withDefaults() Options {
	if o.MaxFileSize <= 0 {
		o.MaxFileSize = 256 << 20
	}
	if o.MaxNestedJarSize <= 0 {
		o.MaxNestedJarSize = 64 << 20
	}
	if o.SkipDirs == nil {
		o.SkipDirs = []string{"proc", "sys", "dev"}
	}
	return o
}

// inventorier holds one TakeInventory's state.
type inventorier struct {
	ctx  context.Context
	fsys fs.FS
	opts Options
	inv  Inventory
	// osRelease is the os-release file found, by preference.
	osRelease string
}

// TakeInventory walks fsys, the merged filesystem of an image rooted at
// "/", and returns what is installed in it. Only the files that record
// packages are opened: package databases, package manifests, jars, and
// the first bytes of executable files (to find ELF binaries, whose Go
// build information and cargo auditable section are then read in place
// when the files can be read at offsets). An unreadable record is a
// Problem, not an error; the error is for a cancelled context or a
// filesystem that cannot be walked at all.
func TakeInventory(ctx context.Context, fsys fs.FS, opts Options) (*Inventory, error) {
	in := &inventorier{ctx: ctx, fsys: fsys, opts: opts.withDefaults()}
	skip := map[string]bool{}
	for _, d := range in.opts.SkipDirs {
		skip[strings.Trim(d, "/")] = true
	}
	err := fs.WalkDir(fsys, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if p == "." {
				return err
			}
			in.problem(p, err)
			if d != nil && d.IsDir() {
				return fs.SkipDir
			}
			return nil
		}
		in.inv.Files++
		if in.inv.Files%1024 == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		if d.IsDir() {
			if skip[p] {
				return fs.SkipDir
			}
			return nil
		}
		if !d.Type().IsRegular() {
			return nil
		}
		pkgs, err := in.visit(p, d)
		in.add(p, pkgs, err)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("scan: walking the filesystem: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if in.osRelease != "" {
		os, err := readOSRelease(in.fsys, in.osRelease, in.opts.MaxFileSize)
		if err != nil {
			in.problem(in.osRelease, err)
		} else {
			in.inv.OS = os
		}
	}
	in.assignOSEcosystems()
	sortPackages(in.inv.Packages)
	return &in.inv, nil
}

// visit hands a regular file to the reader of its kind, if it has one.
func (in *inventorier) visit(p string, d fs.DirEntry) ([]Package, error) {
	dir, base := path.Split(p)
	dir = strings.TrimSuffix(dir, "/")
	switch {
	case p == "etc/os-release":
		in.osRelease = p
	case p == "usr/lib/os-release":
		if in.osRelease == "" {
			in.osRelease = p
		}
	case p == "var/lib/dpkg/status":
		return readDpkgStatus(in.fsys, p, in.opts.MaxFileSize, true)
	case dir == "var/lib/dpkg/status.d" && !strings.HasSuffix(base, ".md5sums"):
		return readDpkgStatus(in.fsys, p, in.opts.MaxFileSize, false)
	case p == "lib/apk/db/installed" || p == "usr/lib/apk/db/installed":
		return readAPKInstalled(in.fsys, p, in.opts.MaxFileSize)
	case isRPMDatabase(dir, base):
		return readRPMDatabase(in.fsys, p, in.opts.MaxFileSize)
	case strings.HasSuffix(p, ".dist-info/METADATA") || strings.HasSuffix(p, ".egg-info/PKG-INFO"):
		return readPythonMetadata(in.fsys, p)
	case base == "package.json" && isNodeModulePackage(dir):
		return readNodePackage(in.fsys, p)
	case base == "package-lock.json" && !strings.Contains("/"+p, "/node_modules/"):
		return readNodeLock(in.fsys, p, in.opts.MaxFileSize)
	case isJar(base):
		return readJar(in.fsys, p, in.opts)
	default:
		info, err := d.Info()
		if err != nil || info.Mode().Perm()&0o111 == 0 || info.Size() < elfHeaderSize {
			return nil, nil
		}
		if h, ok := info.(BinaryHinter); ok {
			if mayHold, known := h.BinaryHint(); known && !mayHold {
				return nil, nil
			}
		}
		return readBinary(in.fsys, p, in.opts.MaxFileSize)
	}
	return nil, nil
}

// add records what a reader returned for the file at p.
func (in *inventorier) add(p string, pkgs []Package, err error) {
	for i := range pkgs {
		if pkgs[i].Location == "" {
			pkgs[i].Location = "/" + p
		}
	}
	in.inv.Packages = append(in.inv.Packages, pkgs...)
	if err != nil {
		in.problem(p, err)
	}
}

func (in *inventorier) problem(p string, err error) {
	in.inv.Problems = append(in.inv.Problems, Problem{Path: "/" + p, Err: err.Error()})
}

// assignOSEcosystems gives OS packages the ecosystem of the OS found, or
// their family's ecosystem without a release when the OS is not one of
// their family (such packages match no release-specific advisory).
func (in *inventorier) assignOSEcosystems() {
	eco := ""
	family := ""
	if in.inv.OS != nil {
		eco, family = in.inv.OS.Ecosystem, in.inv.OS.family()
	}
	for i := range in.inv.Packages {
		p := &in.inv.Packages[i]
		switch p.Kind {
		case KindDeb:
			p.Ecosystem = pick(family == "deb", eco, "Debian")
		case KindAPK:
			p.Ecosystem = pick(family == "apk", eco, "Alpine")
		case KindRPM:
			p.Ecosystem = pick(family == "rpm", eco, "")
		}
	}
}

func pick(cond bool, a, b string) string {
	if cond && a != "" {
		return a
	}
	return b
}

func sortPackages(pkgs []Package) {
	sort.SliceStable(pkgs, func(i, j int) bool {
		a, b := pkgs[i], pkgs[j]
		if a.Location != b.Location {
			return a.Location < b.Location
		}
		if a.Ecosystem != b.Ecosystem {
			return a.Ecosystem < b.Ecosystem
		}
		if a.Name != b.Name {
			return a.Name < b.Name
		}
		return a.Version < b.Version
	})
}
