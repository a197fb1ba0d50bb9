package scan

import (
	"strings"

	"github.com/berthstore/berth/scan/osv"
)

// Severity is a finding's severity in ECR's words.
type Severity string

// Severities, most severe first, as ECR reports them.
const (
	SeverityCritical      Severity = "CRITICAL"
	SeverityHigh          Severity = "HIGH"
	SeverityMedium        Severity = "MEDIUM"
	SeverityLow           Severity = "LOW"
	SeverityInformational Severity = "INFORMATIONAL"
	SeverityUndefined     Severity = "UNDEFINED"
)

// Severities lists every severity, most severe first.
var Severities = []Severity{SeverityCritical, SeverityHigh, SeverityMedium, SeverityLow, SeverityInformational, SeverityUndefined}

// Rank orders severities: CRITICAL is 5, UNDEFINED 0.
func (s Severity) Rank() int {
	switch s {
	case SeverityCritical:
		return 5
	case SeverityHigh:
		return 4
	case SeverityMedium:
		return 3
	case SeverityLow:
		return 2
	case SeverityInformational:
		return 1
	}
	return 0
}

// SeverityFromWord maps a distribution's or a database's severity word
// to ECR's: "critical"; "high" and Red Hat's "important"; "medium" and
// GHSA's and Red Hat's "moderate"; "low"; Ubuntu's "negligible" and
// Debian's "unimportant" as INFORMATIONAL. A word that rates nothing
// ("untriaged", Debian's "not yet assigned", "unknown") returns "" so
// that the next source is asked.
func SeverityFromWord(w string) Severity {
	switch strings.ToLower(strings.TrimSpace(w)) {
	case "critical":
		return SeverityCritical
	case "high", "important":
		return SeverityHigh
	case "medium", "moderate":
		return SeverityMedium
	case "low":
		return SeverityLow
	case "negligible", "unimportant", "informational", "none":
		return SeverityInformational
	}
	return ""
}

// SeverityFromCVSS maps a base score to ECR's words with the rating
// scale of the vector's version: CVSS v3 and v4 (0 None as INFORMATIONAL,
// 0.1-3.9 Low, 4.0-6.9 Medium, 7.0-8.9 High, 9.0-10.0 Critical) and
// CVSS v2 as NVD rates it (0-3.9 Low, 4.0-6.9 Medium, 7.0-10.0 High).
func SeverityFromCVSS(typ string, score float64) Severity {
	if typ == osv.CVSSv2 {
		switch {
		case score >= 7:
			return SeverityHigh
		case score >= 4:
			return SeverityMedium
		}
		return SeverityLow
	}
	switch {
	case score >= 9:
		return SeverityCritical
	case score >= 7:
		return SeverityHigh
	case score >= 4:
		return SeverityMedium
	case score > 0:
		return SeverityLow
	}
	return SeverityInformational
}

// CVSS is one CVSS score of a finding.
type CVSS struct {
	// Version is "2.0", "3.0", "3.1" or "4.0".
	Version string `json:"version"`
	// Vector is the CVSS vector.
	Vector string `json:"vector"`
	// Score is the base score computed from the vector.
	Score float64 `json:"score"`
}

// cvssVersion returns the version a CVSS severity's vector declares.
func cvssVersion(s osv.Severity) string {
	switch s.Type {
	case osv.CVSSv2:
		return "2.0"
	case osv.CVSSv4:
		return "4.0"
	}
	if strings.HasPrefix(s.Score, "CVSS:3.0/") {
		return "3.0"
	}
	return "3.1"
}

// rate chooses a finding's severity from an affected entry and its
// record, the first that rates in this order: the distribution's rating
// of the package (Debian's urgency, an "Ubuntu" severity of the
// package), the distribution's rating of the record (an "Ubuntu"
// severity, database_specific.severity of GHSA, AlmaLinux, Rocky), then
// the CVSS scores, v3 first (the version ECR's findings carry), then v4,
// then v2, the package's before the record's. It returns the severity,
// what it came from, and every CVSS score found.
func rate(a osv.Affected, r *osv.Record) (Severity, string, []CVSS) {
	var scores []CVSS
	seen := map[string]bool{}
	for _, list := range [][]osv.Severity{a.Severity, r.Severity} {
		for _, s := range list {
			if s.Type == osv.Ubuntu || seen[s.Score] {
				continue
			}
			score, err := osv.CVSSScore(s)
			if err != nil {
				continue // Parse refused such records; a stored one is not re-judged here
			}
			seen[s.Score] = true
			scores = append(scores, CVSS{Version: cvssVersion(s), Vector: s.Score, Score: score})
		}
	}
	if sev := SeverityFromWord(a.Rating); sev != "" {
		return sev, "rating", scores
	}
	for _, list := range [][]osv.Severity{a.Severity, r.Severity} {
		for _, s := range list {
			if s.Type == osv.Ubuntu {
				if sev := SeverityFromWord(s.Score); sev != "" {
					return sev, "Ubuntu", scores
				}
			}
		}
	}
	if sev := SeverityFromWord(r.Rating); sev != "" {
		return sev, "rating", scores
	}
	for _, prefix := range []string{"3.", "4.", "2."} {
		for _, c := range scores {
			if strings.HasPrefix(c.Version, prefix) {
				typ := osv.CVSSv3
				if prefix == "2." {
					typ = osv.CVSSv2
				}
				return SeverityFromCVSS(typ, c.Score), "CVSS " + c.Version, scores
			}
		}
	}
	return SeverityUndefined, "", scores
}
