package osv

import "time"

// Record is one advisory: what matching needs to decide whether a package
// version is affected, and what a finding reports.
type Record struct {
	// ID is the advisory's identifier ("GHSA-...", "DSA-5514-1", "GO-2022-1059").
	ID string `json:"id"`
	// Modified is when the record last changed.
	Modified time.Time `json:"modified"`
	// Published is when the record was first published, if it says.
	Published *time.Time `json:"published,omitempty"`
	// Withdrawn is set when the advisory was withdrawn: it matches nothing.
	Withdrawn *time.Time `json:"withdrawn,omitempty"`
	// Aliases are other identifiers of the same vulnerability (often a CVE).
	Aliases []string `json:"aliases,omitempty"`
	// Upstream are identifiers of the vulnerabilities this record derives
	// from (OSV 1.7: distribution records name their CVE here).
	Upstream []string `json:"upstream,omitempty"`
	// Related are identifiers of closely related vulnerabilities
	// (AlmaLinux and Rocky advisories list the CVEs they fix here).
	Related []string `json:"related,omitempty"`
	// Summary is a one-line description.
	Summary string `json:"summary,omitempty"`
	// Details is the long description.
	Details string `json:"details,omitempty"`
	// Severity lists the record's scores: CVSS vectors and distribution
	// ratings ("Ubuntu": "medium").
	Severity []Severity `json:"severity,omitempty"`
	// Rating is a severity word the database put on the record outside the
	// severity list (GHSA's and AlmaLinux's database_specific.severity).
	Rating string `json:"rating,omitempty"`
	// Affected lists the packages and versions the advisory is about.
	Affected []Affected `json:"affected,omitempty"`
	// References are links to more information, in the record's order.
	References []Reference `json:"references,omitempty"`
}

// Severity is one score of a record or of an affected package.
type Severity struct {
	// Type is CVSS_V2, CVSS_V3, CVSS_V4 or Ubuntu.
	Type string `json:"type"`
	// Score is a CVSS vector, or a distribution's word.
	Score string `json:"score"`
}

// Affected is one package an advisory is about, with its affected versions.
type Affected struct {
	// Ecosystem is the package's OSV ecosystem, with its release
	// ("Debian:12", "Alpine:v3.19", "PyPI").
	Ecosystem string `json:"ecosystem,omitempty"`
	// Name is the package's name as the ecosystem spells it (a source
	// package for Debian, Ubuntu and Alpine).
	Name string `json:"name,omitempty"`
	// Purl is the package URL the record gives, if any.
	Purl string `json:"purl,omitempty"`
	// Ranges are the affected version ranges.
	Ranges []Range `json:"ranges,omitempty"`
	// Versions enumerates affected versions.
	Versions []string `json:"versions,omitempty"`
	// Severity are scores for this package alone.
	Severity []Severity `json:"severity,omitempty"`
	// Rating is a severity word for this package (Debian's urgency,
	// ecosystem_specific.severity, or for an Ubuntu notice the highest
	// Ubuntu priority among the CVEs it fixes for this release).
	Rating string `json:"rating,omitempty"`
}

// Range is one range of affected versions.
type Range struct {
	// Type is ECOSYSTEM, SEMVER or GIT.
	Type string `json:"type"`
	// Repo is the repository of a GIT range.
	Repo string `json:"repo,omitempty"`
	// Events are the range's events in the record's order.
	Events []Event `json:"events"`
}

// Event is one event of a range: exactly one field is set.
type Event struct {
	Introduced   string `json:"introduced,omitempty"`
	Fixed        string `json:"fixed,omitempty"`
	LastAffected string `json:"last_affected,omitempty"`
	Limit        string `json:"limit,omitempty"`
}

// Reference is a link of a record.
type Reference struct {
	Type string `json:"type,omitempty"`
	URL  string `json:"url"`
}

// Range types.
const (
	RangeEcosystem = "ECOSYSTEM"
	RangeSemver    = "SEMVER"
	RangeGit       = "GIT"
)

// Severity types.
const (
	CVSSv2 = "CVSS_V2"
	CVSSv3 = "CVSS_V3"
	CVSSv4 = "CVSS_V4"
	Ubuntu = "Ubuntu"
)
