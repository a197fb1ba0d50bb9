package scan

import (
	"regexp"
	"strings"

	"github.com/berthstore/berth/scan/osv"
)

// Finding is one vulnerability of one installed package.
type Finding struct {
	// Name is the vulnerability's name as ECR reports it: the CVE the
	// advisory is about when it names exactly one, else the advisory's id.
	Name string `json:"name"`
	// Advisories are the ids of the records that reported it (a CVE can
	// come through a GHSA and a Go advisory, a DSA and a DEBIAN-CVE).
	Advisories []string `json:"advisories"`
	// Description is the advisory's summary, or its details.
	Description string `json:"description,omitempty"`
	// URI links to the advisory.
	URI string `json:"uri,omitempty"`
	// Severity is the severity in ECR's words; SeveritySource says where
	// it came from ("rating", "Ubuntu", "CVSS 3.1"...).
	Severity       Severity `json:"severity"`
	SeveritySource string   `json:"severitySource,omitempty"`
	// CVSS are the advisory's CVSS scores.
	CVSS []CVSS `json:"cvss,omitempty"`
	// Package is the affected package.
	Package Package `json:"package"`
	// FixedVersion is the first version that fixes it after the installed
	// one, if the advisory names one.
	FixedVersion string `json:"fixedVersion,omitempty"`
	// Locations are where the package was found (one package can be
	// installed at several places, or read from an installed tree and a
	// lock file).
	Locations []string `json:"locations"`
}

var (
	cveID        = regexp.MustCompile(`^CVE-[0-9]{4}-[0-9]{4,}$`)
	distroCVEID  = regexp.MustCompile(`^[A-Z]+-(CVE-[0-9]{4}-[0-9]{4,})$`)
	osvLinkables = []string{"GHSA-", "GO-", "PYSEC-", "RUSTSEC-"}
)

// findingName returns the CVE a record is about: its id if it is one;
// the one CVE its aliases name; else the one CVE its upstream names
// (distribution records: "UBUNTU-CVE-2023-0286" stands for the CVE); else
// the one CVE it is related to (AlmaLinux's and Rocky's advisories name
// the CVE they fix there); else the CVE its own id stands for
// ("DEBIAN-CVE-2023-4911"). A record about several CVEs keeps its own id.
func findingName(r *osv.Record) string {
	if cveID.MatchString(r.ID) {
		return r.ID
	}
	for _, list := range [][]string{r.Aliases, r.Upstream, r.Related} {
		if cve := soleCVE(list); cve != "" {
			return cve
		}
	}
	if m := distroCVEID.FindStringSubmatch(r.ID); m != nil {
		return m[1]
	}
	return r.ID
}

// soleCVE returns the one CVE ids names (directly or as a distribution's
// "XXX-CVE-..." record), "" if none or several.
func soleCVE(ids []string) string {
	found := ""
	for _, id := range ids {
		cve := id
		if m := distroCVEID.FindStringSubmatch(id); m != nil {
			cve = m[1]
		}
		if !cveID.MatchString(cve) {
			continue
		}
		if found != "" && found != cve {
			return ""
		}
		found = cve
	}
	return found
}

// advisoryURI returns the record's advisory link (its first ADVISORY
// reference, else its first reference).
func advisoryURI(r *osv.Record) string {
	for _, ref := range r.References {
		if ref.Type == "ADVISORY" {
			return ref.URL
		}
	}
	if len(r.References) > 0 {
		return r.References[0].URL
	}
	for _, p := range osvLinkables {
		if strings.HasPrefix(r.ID, p) {
			return "https://osv.dev/vulnerability/" + r.ID
		}
	}
	return ""
}

func description(r *osv.Record) string {
	if r.Summary != "" {
		return r.Summary
	}
	return r.Details
}
