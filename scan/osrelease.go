package scan

import (
	"bufio"
	"bytes"
	"io/fs"
	"strconv"
	"strings"
)

// OS is the operating system of an image, as os-release(5) describes it.
type OS struct {
	// ID is the lower-case identifier ("debian", "ubuntu", "alpine", "almalinux").
	ID string `json:"id"`
	// VersionID is the release ("12", "22.04", "3.19.1", "9.3").
	VersionID string `json:"versionId,omitempty"`
	// PrettyName is the name for people ("Debian GNU/Linux 12 (bookworm)").
	PrettyName string `json:"prettyName,omitempty"`
	// Ecosystem is the OSV ecosystem of the distribution's advisories for
	// this release ("Debian:12", "Ubuntu:22.04", "Alpine:v3.19",
	// "AlmaLinux:9"), empty when OSV has none for it.
	Ecosystem string `json:"ecosystem,omitempty"`
}

// family returns the package format of the OS: "deb", "apk" or "rpm".
func (o *OS) family() string {
	switch o.ID {
	case "debian", "ubuntu":
		return "deb"
	case "alpine", "wolfi", "chainguard":
		return "apk"
	case "rhel", "almalinux", "rocky", "centos", "fedora", "ol", "amzn", "opensuse-leap", "opensuse-tumbleweed", "sles", "sle-micro", "mariner", "azurelinux", "openeuler":
		return "rpm"
	}
	return ""
}

// readOSRelease reads an os-release file: KEY=value lines, values
// optionally quoted with shell quoting.
func readOSRelease(fsys fs.FS, p string, limit int64) (*OS, error) {
	data, err := readAll(fsys, p, min(limit, 1<<20))
	if err != nil {
		return nil, err
	}
	return parseOSRelease(data), nil
}

func parseOSRelease(data []byte) *OS {
	fields := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			continue
		}
		if u, err := strconv.Unquote(v); err == nil && strings.HasPrefix(v, `"`) {
			v = u
		} else {
			v = strings.Trim(v, `"'`)
		}
		fields[k] = v
	}
	o := &OS{ID: strings.ToLower(fields["ID"]), VersionID: fields["VERSION_ID"], PrettyName: fields["PRETTY_NAME"]}
	o.Ecosystem = osEcosystem(o.ID, o.VersionID)
	return o
}

// osEcosystem names the OSV ecosystem of a distribution's release.
func osEcosystem(id, versionID string) string {
	major, minor, _ := strings.Cut(versionID, ".")
	// Only the leading digits of the minor part count: "3.20_alpha2025" is 3.20.
	if i := strings.IndexFunc(minor, func(r rune) bool { return r < '0' || r > '9' }); i >= 0 {
		minor = minor[:i]
	}
	switch id {
	case "debian":
		if versionID == "" {
			return "Debian" // testing and unstable name no release
		}
		return "Debian:" + major
	case "ubuntu":
		return "Ubuntu:" + versionID
	case "alpine":
		if major == "" || minor == "" {
			return "Alpine"
		}
		return "Alpine:v" + major + "." + minor
	case "wolfi":
		return "Wolfi"
	case "chainguard":
		return "Chainguard"
	case "almalinux":
		return "AlmaLinux:" + major
	case "rocky":
		return "Rocky Linux:" + major
	case "rhel":
		return "Red Hat:" + major
	case "opensuse-leap":
		return "openSUSE:Leap " + versionID
	case "opensuse-tumbleweed":
		return "openSUSE:Tumbleweed"
	case "sles":
		if minor != "" && minor != "0" {
			return "SUSE:Linux Enterprise Server " + major + " SP" + minor
		}
		return "SUSE:Linux Enterprise Server " + major
	case "openeuler":
		return "openEuler:" + versionID
	case "mageia":
		return "Mageia:" + major
	}
	return ""
}
