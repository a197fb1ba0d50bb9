package scan

import (
	"archive/zip"
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"strings"
)

// maxPomProperties bounds a pom.properties file.
const maxPomProperties = 1 << 20

// isJar reports whether a file name is a Java archive.
func isJar(base string) bool {
	switch strings.ToLower(path.Ext(base)) {
	case ".jar", ".war", ".ear":
		return true
	}
	return false
}

// readJar lists the Maven artifacts a Java archive holds: every
// META-INF/maven/GROUP/ARTIFACT/pom.properties (a shaded jar has one per
// artifact shaded in), and those of the jars nested in it one level down
// (a Spring Boot jar's BOOT-INF/lib, a war's WEB-INF/lib), each read into
// memory within opts.MaxNestedJarSize.
func readJar(fsys fs.FS, p string, opts Options) ([]Package, error) {
	ra, size, closeFn, err := openAt(fsys, p, opts.MaxFileSize)
	if err != nil {
		return nil, err
	}
	defer closeFn()
	zr, err := zip.NewReader(ra, size)
	if err != nil {
		return nil, fmt.Errorf("jar: %w", err)
	}
	out, errs := jarArtifacts(zr, "/"+p)
	for _, f := range zr.File {
		if f.FileInfo().IsDir() || !isJar(f.Name) {
			continue
		}
		loc := "/" + p + "!/" + f.Name
		inner, err := readNestedJar(f, opts.MaxNestedJarSize)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", loc, err))
			continue
		}
		pkgs, e := jarArtifacts(inner, loc)
		out = append(out, pkgs...)
		errs = append(errs, e...)
	}
	return out, errors.Join(errs...)
}

func readNestedJar(f *zip.File, limit int64) (*zip.Reader, error) {
	if f.UncompressedSize64 > uint64(limit) {
		return nil, fmt.Errorf("%w: nested jar of %d bytes, more than %d", ErrTooLarge, f.UncompressedSize64, limit)
	}
	data, err := readZipMember(f, limit)
	if err != nil {
		return nil, err
	}
	return zip.NewReader(bytes.NewReader(data), int64(len(data)))
}

// readZipMember reads one member within limit, whatever its header says.
func readZipMember(f *zip.File, limit int64) ([]byte, error) {
	rc, err := f.Open()
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	data, err := io.ReadAll(io.LimitReader(rc, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > limit {
		return nil, fmt.Errorf("%w: more than %d bytes", ErrTooLarge, limit)
	}
	return data, nil
}

// jarArtifacts reads the pom.properties files of one archive.
func jarArtifacts(zr *zip.Reader, loc string) ([]Package, []error) {
	var out []Package
	var errs []error
	for _, f := range zr.File {
		if !strings.HasPrefix(f.Name, "META-INF/maven/") || path.Base(f.Name) != "pom.properties" {
			continue
		}
		data, err := readZipMember(f, maxPomProperties)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s!/%s: %w", loc, f.Name, err))
			continue
		}
		props := parseProperties(data)
		g, a, v := props["groupId"], props["artifactId"], props["version"]
		if g == "" || a == "" || v == "" {
			errs = append(errs, fmt.Errorf("%s!/%s: no groupId, artifactId or version", loc, f.Name))
			continue
		}
		out = append(out, Package{Ecosystem: "Maven", Name: g + ":" + a, Version: v, Kind: KindMaven, Location: loc})
	}
	return out, errs
}

// parseProperties reads the key=value lines of a Java properties file
// (the subset pom.properties uses: no continuation lines or escapes).
func parseProperties(data []byte) map[string]string {
	out := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' || line[0] == '!' {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			k, v, ok = strings.Cut(line, ":")
		}
		if ok {
			out[strings.TrimSpace(k)] = strings.TrimSpace(v)
		}
	}
	return out
}
