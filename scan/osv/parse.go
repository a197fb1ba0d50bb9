package osv

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/ossf/osv-schema/bindings/go/osvschema"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/berthstore/berth/scan/version"
)

// ErrInvalid is returned for a record that is not valid OSV.
var ErrInvalid = errors.New("osv: invalid record")

// MaxRecordSize bounds one record's JSON. The largest real records (kernel
// advisories listing thousands of versions) are a few MiB.
const MaxRecordSize = 32 << 20

// idPattern is what an advisory identifier looks like across the OSV
// databases ("GHSA-xxxx-xxxx-xxxx", "DSA-5514-1", "ALSA-2023:5455",
// "RUSTSEC-2021-0003"): a prefix, a dash, then letters, digits and . : _ -.
var idPattern = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9]*-[A-Za-z0-9._:-]+$`)

var unmarshal = protojson.UnmarshalOptions{
	// Fields newer than the binding are kept out of the way, not refused:
	// an export carrying a field added to the schema after this build must
	// still import. Known fields are checked for type and form.
	DiscardUnknown: true,
}

// Parse validates one OSV record and returns it.
func Parse(data []byte) (*Record, error) {
	if len(data) > MaxRecordSize {
		return nil, fmt.Errorf("%w: %d bytes, more than %d", ErrInvalid, len(data), MaxRecordSize)
	}
	var v osvschema.Vulnerability
	if err := unmarshal.Unmarshal(data, &v); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	r, err := convert(&v)
	if err != nil {
		if id := v.GetId(); id != "" {
			return nil, fmt.Errorf("%w: %s: %v", ErrInvalid, id, err)
		}
		return nil, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	return r, nil
}

func convert(v *osvschema.Vulnerability) (*Record, error) {
	if v.GetId() == "" {
		return nil, errors.New("no id")
	}
	if !idPattern.MatchString(v.GetId()) || len(v.GetId()) > 200 {
		return nil, fmt.Errorf("id %q is not an advisory identifier", v.GetId())
	}
	if v.GetModified() == nil {
		return nil, errors.New("no modified time")
	}
	r := &Record{
		ID:        v.GetId(),
		Modified:  v.GetModified().AsTime().UTC(),
		Published: timePtr(v.GetPublished()),
		Withdrawn: timePtr(v.GetWithdrawn()),
		Aliases:   v.GetAliases(),
		Upstream:  v.GetUpstream(),
		Related:   v.GetRelated(),
		Summary:   v.GetSummary(),
		Details:   v.GetDetails(),
		Rating:    structString(v.GetDatabaseSpecific(), "severity"),
	}
	var err error
	if r.Severity, err = severities(v.GetSeverity()); err != nil {
		return nil, err
	}
	for i, a := range v.GetAffected() {
		aff, err := convertAffected(a)
		if err != nil {
			return nil, fmt.Errorf("affected[%d]: %w", i, err)
		}
		r.Affected = append(r.Affected, aff)
	}
	for _, ref := range v.GetReferences() {
		if ref.GetUrl() == "" {
			return nil, errors.New("a reference without url")
		}
		r.References = append(r.References, Reference{Type: ref.GetType().String(), URL: ref.GetUrl()})
	}
	return r, nil
}

func convertAffected(a *osvschema.Affected) (Affected, error) {
	var out Affected
	if p := a.GetPackage(); p != nil {
		out.Ecosystem, out.Name, out.Purl = p.GetEcosystem(), p.GetName(), p.GetPurl()
	}
	onlyGit := len(a.GetRanges()) > 0
	for _, rg := range a.GetRanges() {
		onlyGit = onlyGit && rg.GetType() == osvschema.Range_GIT
	}
	if !onlyGit && (out.Ecosystem == "" || out.Name == "") {
		return out, errors.New("a package needs an ecosystem and a name (only git ranges may go without)")
	}
	// A release suffix goes with the ecosystem: "Debian:12", never ":12".
	if strings.HasPrefix(out.Ecosystem, ":") {
		return out, fmt.Errorf("ecosystem %q", out.Ecosystem)
	}
	checkVersion := func(s string) error {
		if out.Ecosystem == "" || !version.Supported(out.Ecosystem) {
			return nil
		}
		_, err := version.Parse(out.Ecosystem, s)
		return err
	}
	for i, rg := range a.GetRanges() {
		r, err := convertRange(rg, checkVersion)
		if err != nil {
			return out, fmt.Errorf("ranges[%d]: %w", i, err)
		}
		out.Ranges = append(out.Ranges, r)
	}
	for _, s := range a.GetVersions() {
		if s == "" {
			return out, errors.New("an empty version in versions")
		}
	}
	out.Versions = a.GetVersions()
	var err error
	if out.Severity, err = severities(a.GetSeverity()); err != nil {
		return out, err
	}
	out.Rating = structString(a.GetEcosystemSpecific(), "severity")
	if out.Rating == "" {
		out.Rating = structString(a.GetEcosystemSpecific(), "urgency")
	}
	if out.Rating == "" {
		out.Rating = structString(a.GetDatabaseSpecific(), "severity")
	}
	if out.Rating == "" {
		out.Rating = cvesMapRating(a.GetDatabaseSpecific())
	}
	return out, nil
}

func convertRange(rg *osvschema.Range, checkVersion func(string) error) (Range, error) {
	out := Range{Repo: rg.GetRepo()}
	switch rg.GetType() {
	case osvschema.Range_ECOSYSTEM:
		out.Type = RangeEcosystem
	case osvschema.Range_SEMVER:
		out.Type = RangeSemver
	case osvschema.Range_GIT:
		out.Type = RangeGit
		if out.Repo == "" {
			return out, errors.New("a GIT range needs a repo")
		}
	default:
		return out, fmt.Errorf("range type %v", rg.GetType())
	}
	if len(rg.GetEvents()) == 0 {
		return out, errors.New("no events")
	}
	introduced := false
	for i, e := range rg.GetEvents() {
		ev := Event{Introduced: e.GetIntroduced(), Fixed: e.GetFixed(), LastAffected: e.GetLastAffected(), Limit: e.GetLimit()}
		set := 0
		for _, s := range []string{ev.Introduced, ev.Fixed, ev.LastAffected, ev.Limit} {
			if s != "" {
				set++
			}
		}
		if set != 1 {
			return out, fmt.Errorf("events[%d] sets %d of introduced, fixed, last_affected and limit; one is required", i, set)
		}
		introduced = introduced || ev.Introduced != ""
		if out.Type != RangeGit {
			for _, s := range []string{ev.Introduced, ev.Fixed, ev.LastAffected} {
				if s == "" || s == "0" {
					continue
				}
				if err := checkVersion(s); err != nil {
					return out, fmt.Errorf("events[%d]: %w", i, err)
				}
			}
		}
		out.Events = append(out.Events, ev)
	}
	if !introduced {
		return out, errors.New("no introduced event")
	}
	return out, nil
}

func severities(in []*osvschema.Severity) ([]Severity, error) {
	var out []Severity
	for _, s := range in {
		sev := Severity{Type: s.GetType().String(), Score: s.GetScore()}
		if sev.Score == "" {
			return nil, fmt.Errorf("severity %s without a score", sev.Type)
		}
		switch sev.Type {
		case CVSSv2, CVSSv3, CVSSv4:
			if _, err := CVSSScore(sev); err != nil {
				return nil, err
			}
		case Ubuntu:
		default:
			return nil, fmt.Errorf("severity type %q", sev.Type)
		}
		out = append(out, sev)
	}
	return out, nil
}

func timePtr(ts *timestamppb.Timestamp) *time.Time {
	if ts == nil {
		return nil
	}
	t := ts.AsTime().UTC()
	return &t
}

// ubuntuPriorities orders Ubuntu's priority words.
var ubuntuPriorities = map[string]int{"negligible": 1, "low": 2, "medium": 3, "high": 4, "critical": 5}

// cvesMapRating returns the highest Ubuntu priority of the CVEs an Ubuntu
// security notice lists for one release (database_specific.cves_map),
// which is how a notice, itself unrated, rates the package.
func cvesMapRating(db *structpb.Struct) string {
	m := db.GetFields()["cves_map"].GetStructValue()
	best := ""
	for _, c := range m.GetFields()["cves"].GetListValue().GetValues() {
		for _, s := range c.GetStructValue().GetFields()["severity"].GetListValue().GetValues() {
			f := s.GetStructValue().GetFields()
			if f["type"].GetStringValue() != Ubuntu {
				continue
			}
			w := f["score"].GetStringValue()
			if ubuntuPriorities[w] > ubuntuPriorities[best] {
				best = w
			}
		}
	}
	return best
}

// structString returns s[key] when it is a string.
func structString(s *structpb.Struct, key string) string {
	if s == nil {
		return ""
	}
	v, ok := s.GetFields()[key]
	if !ok {
		return ""
	}
	return v.GetStringValue()
}
