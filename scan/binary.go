package scan

import (
	"bytes"
	"compress/zlib"
	"debug/buildinfo"
	"debug/elf"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"regexp"
	"strings"
)

// elfHeaderSize is the smallest ELF file there is: its header.
const elfHeaderSize = 52

// maxAuditSize bounds the decompressed cargo auditable data of a binary.
const maxAuditSize = 16 << 20

// BinaryHinter is implemented by the fs.FileInfo of a filesystem that
// recorded, when it indexed its files, what an executable file's bytes
// hold (the engine's image filesystem does, from its layer tables).
// TakeInventory then opens only the executables that may be Go or Rust
// binaries, instead of reading the first bytes of every one.
type BinaryHinter interface {
	// BinaryHint reports whether the file's bytes were looked at (known)
	// and, if so, whether it may be a binary the inventory reads: an ELF
	// file holding the name of a Go build information section
	// (".go.buildinfo") or of a cargo auditable one (".dep-v0"). A file
	// that is not is one readBinary finds nothing in.
	BinaryHint() (mayHold, known bool)
}

// readBinary reads the Go build information and the cargo auditable
// dependency list of an executable, if it is an ELF binary that has them.
// It reads the first four bytes to tell an ELF file from a script, then
// the ELF section headers and the two sections, in place: a binary is
// never read whole when the filesystem can read at offsets.
func readBinary(fsys fs.FS, p string, limit int64) ([]Package, error) {
	if !isELF(fsys, p) {
		return nil, nil
	}
	ra, _, closeFn, err := openAt(fsys, p, limit)
	if err != nil {
		return nil, err
	}
	defer closeFn()
	ef, err := elf.NewFile(ra)
	if err != nil {
		return nil, nil // an ELF magic without an ELF file: not a binary of ours
	}
	var out []Package
	var errs []error
	if ef.Section(".go.buildinfo") != nil {
		pkgs, err := goBinaryPackages(ra)
		out = append(out, pkgs...)
		if err != nil {
			errs = append(errs, err)
		}
	}
	if s := ef.Section(".dep-v0"); s != nil {
		pkgs, err := rustAuditPackages(s)
		out = append(out, pkgs...)
		if err != nil {
			errs = append(errs, err)
		}
	}
	return out, errors.Join(errs...)
}

func isELF(fsys fs.FS, p string) bool {
	f, err := fsys.Open(p)
	if err != nil {
		return false
	}
	defer f.Close()
	var magic [4]byte
	if _, err := io.ReadFull(f, magic[:]); err != nil {
		return false
	}
	return string(magic[:]) == elf.ELFMAG
}

// goBinaryPackages lists what a Go binary was built from: the standard
// library at the toolchain's version, the main module (unless built from
// a work tree, "(devel)"), and every dependency, replacements applied.
func goBinaryPackages(ra io.ReaderAt) ([]Package, error) {
	bi, err := buildinfo.Read(ra)
	if err != nil {
		return nil, fmt.Errorf("go build info: %w", err)
	}
	var out []Package
	if v, ok := goStdlibVersion(bi.GoVersion); ok {
		out = append(out, Package{Ecosystem: "Go", Name: "stdlib", Version: v, Kind: KindGoStdlib})
	}
	if bi.Main.Path != "" && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		out = append(out, Package{Ecosystem: "Go", Name: bi.Main.Path, Version: bi.Main.Version, Kind: KindGoModule})
	}
	for _, d := range bi.Deps {
		m := d
		if d.Replace != nil {
			m = d.Replace
		}
		if m.Version == "" {
			continue // replaced by a directory: no version to match
		}
		out = append(out, Package{Ecosystem: "Go", Name: m.Path, Version: m.Version, Kind: KindGoModule})
	}
	return out, nil
}

var goRelease = regexp.MustCompile(`^go([0-9]+)\.([0-9]+)(?:\.([0-9]+))?(?:(rc|beta)([0-9]+))?$`)

// goStdlibVersion turns a toolchain version ("go1.21.5", "go1.21rc2",
// "go1.20 X:boringcrypto") into the semantic version OSV's Go advisories
// give the standard library ("1.21.5", "1.21.0-rc.2", "1.20.0").
func goStdlibVersion(v string) (string, bool) {
	v, _, _ = strings.Cut(v, " ")
	m := goRelease.FindStringSubmatch(v)
	if m == nil {
		return "", false // a development toolchain has no release to match
	}
	patch := m[3]
	if patch == "" {
		patch = "0"
	}
	out := m[1] + "." + m[2] + "." + patch
	if m[4] != "" {
		out += "-" + m[4] + "." + m[5]
	}
	return out, true
}

// rustAudit is the JSON cargo auditable compresses into .dep-v0.
type rustAudit struct {
	Packages []struct {
		Name    string `json:"name"`
		Version string `json:"version"`
		Source  string `json:"source"`
	} `json:"packages"`
}

// rustAuditPackages lists the crates.io crates a Rust binary built with
// cargo auditable records. Local and git crates are not in crates.io's
// advisories and are left out.
func rustAuditPackages(s *elf.Section) ([]Package, error) {
	if s.Size > maxAuditSize {
		return nil, fmt.Errorf("cargo auditable: %w: section of %d bytes", ErrTooLarge, s.Size)
	}
	zr, err := zlib.NewReader(s.Open())
	if err != nil {
		return nil, fmt.Errorf("cargo auditable: %w", err)
	}
	defer zr.Close()
	data, err := io.ReadAll(io.LimitReader(zr, maxAuditSize+1))
	if err != nil {
		return nil, fmt.Errorf("cargo auditable: %w", err)
	}
	if len(data) > maxAuditSize {
		return nil, fmt.Errorf("cargo auditable: %w: more than %d bytes decompressed", ErrTooLarge, maxAuditSize)
	}
	var a rustAudit
	if err := json.NewDecoder(bytes.NewReader(data)).Decode(&a); err != nil {
		return nil, fmt.Errorf("cargo auditable: %w", err)
	}
	var out []Package
	for _, p := range a.Packages {
		if p.Source != "crates.io" || p.Name == "" || p.Version == "" {
			continue
		}
		out = append(out, Package{Ecosystem: "crates.io", Name: p.Name, Version: p.Version, Kind: KindCargo})
	}
	return out, nil
}
