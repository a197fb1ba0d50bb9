package scan

import (
	"errors"
	"fmt"
	"io/fs"
	"path"

	"github.com/berthstore/berth/scan/rpmdb"
)

// rpmDatabaseDirs are where rpm keeps its database: /var/lib/rpm, and
// /usr/lib/sysimage/rpm since Fedora 36 and SUSE.
var rpmDatabaseDirs = map[string]bool{"var/lib/rpm": true, "usr/lib/sysimage/rpm": true}

// isRPMDatabase reports whether dir/base is an rpm database: rpmdb.sqlite
// (sqlite), Packages (Berkeley DB) or Packages.db (NDB).
func isRPMDatabase(dir, base string) bool {
	if !rpmDatabaseDirs[dir] {
		return false
	}
	switch base {
	case "rpmdb.sqlite", "Packages", "Packages.db":
		return true
	}
	return false
}

// readRPMDatabase lists the packages of an rpm database, read in place
// with its write-ahead log (rpmdb.sqlite-wal) when there is one. The
// gpg-pubkey entries rpm keeps for imported signing keys are not software
// and are left out.
func readRPMDatabase(fsys fs.FS, p string, limit int64) ([]Package, error) {
	ra, size, closeFn, err := openAt(fsys, p, limit)
	if err != nil {
		return nil, err
	}
	defer closeFn()
	var pkgs []rpmdb.Package
	walPath := p + "-wal"
	if st, err := fs.Stat(fsys, walPath); err == nil && path.Base(p) == "rpmdb.sqlite" && st.Size() > 0 {
		wra, wsize, wclose, err := openAt(fsys, walPath, limit)
		if err != nil {
			return nil, fmt.Errorf("rpm database's write-ahead log: %w", err)
		}
		defer wclose()
		pkgs, err = rpmdb.ReadWithWAL(ra, size, wra, wsize)
		if err != nil {
			return nil, err
		}
	} else {
		pkgs, err = rpmdb.Read(ra, size)
		if errors.Is(err, rpmdb.ErrFormat) && path.Base(p) == "Packages" {
			// rpm 4.16+ leaves an empty or stale Packages beside its
			// sqlite database; a file that is no database is not a problem.
			return nil, nil
		}
		if err != nil {
			return nil, err
		}
	}
	out := make([]Package, 0, len(pkgs))
	for _, rp := range pkgs {
		if rp.Name == "gpg-pubkey" {
			continue
		}
		pkg := Package{Name: rp.Name, Version: rp.EVR(), Arch: rp.Arch, License: rp.License, Kind: KindRPM, SourceName: rp.SourceName()}
		if pkg.SourceName == pkg.Name {
			pkg.SourceName = ""
		}
		out = append(out, pkg)
	}
	return out, nil
}
