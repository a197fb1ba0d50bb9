package scan

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/berthstore/berth/scan/osv"
	"github.com/berthstore/berth/scan/version"
)

// Result is what Match found.
type Result struct {
	// Findings are sorted most severe first, then by name and package.
	Findings []Finding `json:"findings"`
	// Stats counts what matching could and could not judge.
	Stats MatchStats `json:"stats"`
}

// MatchStats counts what matching could and could not judge, so that a
// scan says what it skipped instead of passing silence off as safety.
type MatchStats struct {
	// Packages is the number of packages of the inventory.
	Packages int `json:"packages"`
	// Matched is the number of packages looked up in the database.
	Matched int `json:"matched"`
	// Unsupported counts packages of an ecosystem whose versions Berth
	// does not order (or of an OS with no OSV ecosystem): not looked up.
	Unsupported int `json:"unsupported"`
	// BadVersions counts packages whose version does not parse in their
	// ecosystem: not looked up.
	BadVersions int `json:"badVersions"`
	// Records is the number of records read for the packages looked up.
	Records int `json:"records"`
	// Withdrawn counts withdrawn records skipped.
	Withdrawn int `json:"withdrawn"`
	// GitRanges counts GIT ranges skipped: commits cannot be matched
	// against an installed version offline.
	GitRanges int `json:"gitRanges"`
	// BadRanges counts ranges skipped because a version in them does not
	// parse in the package's ecosystem.
	BadRanges int `json:"badRanges"`
}

// Match returns the findings of an inventory against a database.
// Packages that share a source package and version (libc6 and libc-bin
// both built from glibc) are judged once: the database is read and the
// ranges evaluated once per package key and version.
func Match(ctx context.Context, inv *Inventory, db DB) (*Result, error) {
	res := &Result{}
	byKey := map[findingKey]int{}
	judged := map[lookup][]hit{}
	for _, p := range inv.Packages {
		res.Stats.Packages++
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if p.Ecosystem == "" || !version.Supported(p.Ecosystem) {
			res.Stats.Unsupported++
			continue
		}
		v, err := version.Parse(p.Ecosystem, p.MatchVersion())
		if err != nil {
			res.Stats.BadVersions++
			continue
		}
		res.Stats.Matched++
		for _, name := range p.MatchNames() {
			l := lookup{osv.Key(p.Ecosystem, name), v.String()}
			hits, ok := judged[l]
			if !ok {
				if hits, err = judge(ctx, db, l.key, p.Ecosystem, v, &res.Stats); err != nil {
					return nil, err
				}
				judged[l] = hits
			}
			for _, h := range hits {
				res.add(byKey, h, p)
			}
		}
	}
	sortFindings(res.Findings)
	return res, nil
}

// lookup is one package key at one version.
type lookup struct {
	key     osv.PackageKey
	version string
}

// hit is an affected entry of a record that affects a version, rated.
type hit struct {
	rec      *osv.Record
	fixed    string
	severity Severity
	source   string
	cvss     []CVSS
}

// judge returns the records' entries for key that affect version v.
func judge(ctx context.Context, db DB, key osv.PackageKey, eco string, v version.Version, st *MatchStats) ([]hit, error) {
	recs, err := db.Advisories(ctx, key)
	if err != nil {
		return nil, fmt.Errorf("scan: advisories of %s: %w", key, err)
	}
	var hits []hit
	for _, r := range recs {
		st.Records++
		if r.Withdrawn != nil {
			st.Withdrawn++
			continue
		}
		for _, a := range r.Affected {
			if a.Ecosystem == "" || osv.Key(a.Ecosystem, a.Name) != key {
				continue
			}
			ok, fixed := affects(a, eco, v, st)
			if !ok {
				continue
			}
			sev, source, cvss := rate(a, r)
			hits = append(hits, hit{rec: r, fixed: fixed, severity: sev, source: source, cvss: cvss})
		}
	}
	return hits, nil
}

// findingKey identifies a finding: one vulnerability of one installed
// package (a package installed twice at one version is one finding with
// two locations).
type findingKey struct {
	name, ecosystem, pkg, version string
}

func (res *Result) add(byKey map[findingKey]int, h hit, p Package) {
	r, fixed, sev, source, cvss := h.rec, h.fixed, h.severity, h.source, h.cvss
	k := findingKey{findingName(r), p.Ecosystem, p.Name, p.Version}
	if i, ok := byKey[k]; ok {
		f := &res.Findings[i]
		if !slices.Contains(f.Advisories, r.ID) {
			f.Advisories = append(f.Advisories, r.ID)
		}
		if !slices.Contains(f.Locations, p.Location) {
			f.Locations = append(f.Locations, p.Location)
		}
		if sev.Rank() > f.Severity.Rank() {
			f.Severity, f.SeveritySource = sev, source
		}
		for _, c := range cvss {
			if !slices.ContainsFunc(f.CVSS, func(x CVSS) bool { return x.Vector == c.Vector }) {
				f.CVSS = append(f.CVSS, c)
			}
		}
		if f.FixedVersion == "" {
			f.FixedVersion = fixed
		}
		return
	}
	byKey[k] = len(res.Findings)
	res.Findings = append(res.Findings, Finding{
		Name:           k.name,
		Advisories:     []string{r.ID},
		Description:    description(r),
		URI:            advisoryURI(r),
		Severity:       sev,
		SeveritySource: source,
		CVSS:           slices.Clone(cvss),
		Package:        p,
		FixedVersion:   fixed,
		Locations:      []string{p.Location},
	})
}

// affects reports whether installed version v (of ecosystem eco) is
// affected by a: listed in its versions, or inside one of its ECOSYSTEM or
// SEMVER ranges. It also returns the first fixed version above v.
func affects(a osv.Affected, eco string, v version.Version, st *MatchStats) (bool, string) {
	hit := false
	normalizes := versionsNormalize[version.Base(eco)]
	for _, s := range a.Versions {
		if s == v.String() {
			hit = true
			break
		}
		if !normalizes {
			continue
		}
		if w, err := version.Parse(eco, s); err == nil && w.Compare(v) == 0 {
			hit = true
			break
		}
	}
	fixed := ""
	for _, rg := range a.Ranges {
		if rg.Type == osv.RangeGit {
			st.GitRanges++
			continue
		}
		in, fix, err := inRange(rg, eco, v)
		if err != nil {
			st.BadRanges++
			continue
		}
		if in {
			hit = true
			if fixed == "" {
				fixed = fix
			}
		}
	}
	return hit, fixed
}

// versionsNormalize are the ecosystems where one version has several
// spellings ("1.0" is "1.0.0" in PEP 440, "v1.2.3" is "1.2.3" for Go), so
// that a versions list is compared by value. The distributions list the
// exact strings their archives carry, compared as strings.
var versionsNormalize = map[string]bool{"PyPI": true, "Maven": true, "Go": true, "npm": true, "crates.io": true}

// event is a range event with its version parsed; introduced "0" and
// limit "*" stand below and above every version.
type event struct {
	kind  int // order at one version: introduced, then last_affected, fixed, limit
	raw   string
	v     version.Version
	zero  bool // introduced "0"
	infty bool // limit "*"
}

const (
	evIntroduced = iota
	evLastAffected
	evFixed
	evLimit
)

// inRange evaluates one ECOSYSTEM or SEMVER range as the OSV schema
// specifies: events sorted by version; v is affected by the last event at
// or below it ("introduced" opens, "fixed" closes at its version,
// "last_affected" closes above its version); with "limit" events, only
// versions below a limit are judged. It returns whether v is affected,
// the first "fixed" above v, and an error when an event's version does
// not parse.
func inRange(rg osv.Range, eco string, v version.Version) (bool, string, error) {
	evs := make([]event, 0, len(rg.Events))
	for _, e := range rg.Events {
		var ev event
		switch {
		case e.Introduced != "":
			ev = event{kind: evIntroduced, raw: e.Introduced, zero: e.Introduced == "0"}
		case e.LastAffected != "":
			ev = event{kind: evLastAffected, raw: e.LastAffected}
		case e.Fixed != "":
			ev = event{kind: evFixed, raw: e.Fixed}
		case e.Limit != "":
			ev = event{kind: evLimit, raw: e.Limit, infty: e.Limit == "*"}
		default:
			continue
		}
		if !ev.zero && !ev.infty {
			w, err := version.Parse(eco, ev.raw)
			if err != nil {
				return false, "", err
			}
			ev.v = w
		}
		evs = append(evs, ev)
	}
	sort.SliceStable(evs, func(i, j int) bool {
		if c := compareEvents(evs[i], evs[j]); c != 0 {
			return c < 0
		}
		return evs[i].kind < evs[j].kind
	})
	limited, belowLimit := false, false
	affected := false
	fixed := ""
	for _, e := range evs {
		at := 1 // how v compares with the event's version
		switch {
		case e.zero:
			at = 1
		case e.infty:
			at = -1
		default:
			at = v.Compare(e.v)
		}
		switch e.kind {
		case evIntroduced:
			if at >= 0 {
				affected = true
			}
		case evLastAffected:
			if at > 0 {
				affected = false
			}
		case evFixed:
			if at >= 0 {
				affected = false
			} else if fixed == "" {
				fixed = e.raw
			}
		case evLimit:
			limited = true
			if at < 0 {
				belowLimit = true
			}
		}
	}
	if limited && !belowLimit {
		return false, "", nil
	}
	if !affected {
		return false, "", nil
	}
	return true, fixed, nil
}

// compareEvents orders events by version: introduced "0" first, limit "*" last.
func compareEvents(a, b event) int {
	switch {
	case a.zero && b.zero, a.infty && b.infty:
		return 0
	case a.zero, b.infty:
		return -1
	case b.zero, a.infty:
		return 1
	}
	return a.v.Compare(b.v)
}

// sortFindings orders findings most severe first, then by name and
// package. Findings are large, so an index is sorted and the findings are
// moved once.
func sortFindings(fs []Finding) {
	idx := make([]int, len(fs))
	for i := range idx {
		idx[i] = i
	}
	slices.SortFunc(idx, func(i, j int) int {
		a, b := &fs[i], &fs[j]
		if c := cmp.Compare(b.Severity.Rank(), a.Severity.Rank()); c != 0 {
			return c
		}
		return cmp.Or(
			strings.Compare(a.Name, b.Name),
			strings.Compare(a.Package.Name, b.Package.Name),
			strings.Compare(a.Package.Version, b.Package.Version),
			strings.Compare(a.Package.Ecosystem, b.Package.Ecosystem),
		)
	})
	sorted := make([]Finding, len(fs))
	for i, k := range idx {
		sorted[i] = fs[k]
	}
	copy(fs, sorted)
}

// Summary counts findings by severity, as ECR's findingSeverityCounts.
func (res *Result) Summary() map[Severity]int {
	out := map[Severity]int{}
	for _, f := range res.Findings {
		out[f.Severity]++
	}
	return out
}
