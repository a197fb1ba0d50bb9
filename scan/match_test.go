package scan

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/berthstore/berth/scan/osv"
	"github.com/berthstore/berth/scan/version"
)

func mustParse(t testing.TB, doc string) *osv.Record {
	t.Helper()
	r, err := osv.Parse([]byte(doc))
	require.NoError(t, err)
	return r
}

func ranges(events string) string {
	return `{"id":"GHSA-test-test-test","modified":"2024-01-01T00:00:00Z","affected":[{"package":{"ecosystem":"npm","name":"x"},"ranges":[{"type":"ECOSYSTEM","events":` + events + `}]}]}`
}

// TestRangeEvaluation checks the OSV schema's evaluation of events.
func TestRangeEvaluation(t *testing.T) {
	for _, c := range []struct {
		events   string
		version  string
		affected bool
		fixed    string
	}{
		{`[{"introduced":"0"},{"fixed":"1.2.0"}]`, "1.1.9", true, "1.2.0"},
		{`[{"introduced":"0"},{"fixed":"1.2.0"}]`, "1.2.0", false, ""},
		{`[{"introduced":"0"},{"fixed":"1.2.0"}]`, "1.2.1", false, ""},
		{`[{"introduced":"1.0.0"},{"fixed":"1.2.0"}]`, "0.9.0", false, ""},
		{`[{"introduced":"1.0.0"},{"fixed":"1.2.0"}]`, "1.0.0", true, "1.2.0"},
		{`[{"introduced":"1.0.0"},{"fixed":"1.2.0"}]`, "1.2.0-rc.1", true, "1.2.0"},
		// last_affected includes its version.
		{`[{"introduced":"0"},{"last_affected":"1.2.0"}]`, "1.2.0", true, ""},
		{`[{"introduced":"0"},{"last_affected":"1.2.0"}]`, "1.2.1", false, ""},
		// Several intervals in one range, events out of order.
		{`[{"fixed":"2.0.5"},{"introduced":"2.0.0"},{"introduced":"0"},{"fixed":"1.4.2"}]`, "1.5.0", false, ""},
		{`[{"fixed":"2.0.5"},{"introduced":"2.0.0"},{"introduced":"0"},{"fixed":"1.4.2"}]`, "2.0.4", true, "2.0.5"},
		{`[{"fixed":"2.0.5"},{"introduced":"2.0.0"},{"introduced":"0"},{"fixed":"1.4.2"}]`, "1.0.0", true, "1.4.2"},
		// No fix yet.
		{`[{"introduced":"0"}]`, "99.0.0", true, ""},
		// A limit bounds what the range judges.
		{`[{"introduced":"0"},{"limit":"2.0.0"}]`, "1.9.0", true, ""},
		{`[{"introduced":"0"},{"limit":"2.0.0"}]`, "2.0.0", false, ""},
		{`[{"introduced":"0"},{"limit":"*"}]`, "5.0.0", true, ""},
		// Introduced and fixed at one version: nothing is affected there.
		{`[{"introduced":"1.0.0"},{"fixed":"1.0.0"}]`, "1.0.0", false, ""},
	} {
		db := NewMemDB()
		db.Add(mustParse(t, ranges(c.events)))
		inv := &Inventory{Packages: []Package{{Ecosystem: "npm", Name: "x", Version: c.version, Kind: KindNPM, Location: "/p"}}}
		res, err := Match(context.Background(), inv, db)
		require.NoError(t, err)
		if !c.affected {
			require.Empty(t, res.Findings, "%s at %s", c.events, c.version)
			continue
		}
		require.Len(t, res.Findings, 1, "%s at %s", c.events, c.version)
		require.Equal(t, c.fixed, res.Findings[0].FixedVersion, "%s at %s", c.events, c.version)
	}
}

func TestMatchRules(t *testing.T) {
	db := NewMemDB()
	db.Add(mustParse(t, `{"id":"GHSA-list-list-list","modified":"2024-01-01T00:00:00Z","aliases":["CVE-2024-0001"],
		"affected":[{"package":{"ecosystem":"PyPI","name":"Zope.Interface"},"versions":["1.0","1.1"]}]}`))
	db.Add(mustParse(t, `{"id":"GHSA-gone-gone-gone","modified":"2024-01-01T00:00:00Z","withdrawn":"2024-02-01T00:00:00Z",
		"affected":[{"package":{"ecosystem":"PyPI","name":"zope-interface"},"ranges":[{"type":"ECOSYSTEM","events":[{"introduced":"0"}]}]}]}`))
	db.Add(mustParse(t, `{"id":"OSV-2024-1","modified":"2024-01-01T00:00:00Z",
		"affected":[{"package":{"ecosystem":"PyPI","name":"zope.interface"},"ranges":[
			{"type":"GIT","repo":"https://example.com/z","events":[{"introduced":"0"},{"fixed":"abcdef"}]}]}]}`))
	inv := &Inventory{Packages: []Package{
		// The version list matches by value: 1.0.0 is 1.0 in PEP 440.
		{Ecosystem: "PyPI", Name: "zope_interface", Version: "1.0.0", Kind: KindPython, Location: "/a"},
		{Ecosystem: "PyPI", Name: "zope.interface", Version: "1.2", Kind: KindPython, Location: "/b"},
		{Ecosystem: "Hackage", Name: "aeson", Version: "1.0", Location: "/c"},
		{Ecosystem: "npm", Name: "y", Version: "not a version at all", Location: "/d"},
		{Ecosystem: "", Name: "rpm-on-unknown-os", Version: "1.0-1", Kind: KindRPM, Location: "/e"},
	}}
	res, err := Match(context.Background(), inv, db)
	require.NoError(t, err)
	require.Len(t, res.Findings, 1)
	f := res.Findings[0]
	require.Equal(t, "CVE-2024-0001", f.Name)
	require.Equal(t, "zope_interface", f.Package.Name)
	require.Equal(t, SeverityUndefined, f.Severity)
	require.Equal(t, MatchStats{Packages: 5, Matched: 2, Unsupported: 2, BadVersions: 1, Records: 6, Withdrawn: 2, GitRanges: 2}, res.Stats)
}

func TestFindingsMerge(t *testing.T) {
	db := NewMemDB()
	// The same CVE through two databases, one rating it higher.
	db.Add(mustParse(t, `{"id":"GO-2024-0001","modified":"2024-01-01T00:00:00Z","aliases":["CVE-2024-1111","GHSA-aaaa-aaaa-aaaa"],
		"affected":[{"package":{"ecosystem":"Go","name":"example.com/m"},"ranges":[{"type":"SEMVER","events":[{"introduced":"0"},{"fixed":"1.5.0"}]}]}]}`))
	db.Add(mustParse(t, `{"id":"GHSA-aaaa-aaaa-aaaa","modified":"2024-01-01T00:00:00Z","aliases":["CVE-2024-1111"],
		"severity":[{"type":"CVSS_V3","score":"CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"}],
		"affected":[{"package":{"ecosystem":"Go","name":"example.com/m"},"ranges":[{"type":"SEMVER","events":[{"introduced":"0"},{"fixed":"1.4.0"}]}]}]}`))
	inv := &Inventory{Packages: []Package{
		{Ecosystem: "Go", Name: "example.com/m", Version: "v1.3.0", Kind: KindGoModule, Location: "/bin/a"},
		{Ecosystem: "Go", Name: "example.com/m", Version: "v1.3.0", Kind: KindGoModule, Location: "/bin/b"},
	}}
	res, err := Match(context.Background(), inv, db)
	require.NoError(t, err)
	require.Len(t, res.Findings, 1)
	f := res.Findings[0]
	require.Equal(t, "CVE-2024-1111", f.Name)
	require.ElementsMatch(t, []string{"GO-2024-0001", "GHSA-aaaa-aaaa-aaaa"}, f.Advisories)
	require.Equal(t, []string{"/bin/a", "/bin/b"}, f.Locations)
	require.Equal(t, SeverityCritical, f.Severity)
	require.Equal(t, "CVSS 3.1", f.SeveritySource)
	require.Equal(t, map[Severity]int{SeverityCritical: 1}, res.Summary())
}

func TestSourcePackages(t *testing.T) {
	db := NewMemDB()
	db.Add(mustParse(t, `{"id":"DEBIAN-CVE-2024-2222","modified":"2024-01-01T00:00:00Z",
		"affected":[{"package":{"ecosystem":"Debian:12","name":"glibc"},"ecosystem_specific":{"urgency":"unimportant"},
		"ranges":[{"type":"ECOSYSTEM","events":[{"introduced":"0"},{"fixed":"2.36-9+deb12u3"}]}]}]}`))
	db.Add(mustParse(t, `{"id":"ALSA-2024:1","modified":"2024-01-01T00:00:00Z","related":["CVE-2024-3333"],
		"affected":[{"package":{"ecosystem":"AlmaLinux:9","name":"openssl"},"ranges":[{"type":"ECOSYSTEM","events":[{"introduced":"0"},{"fixed":"1:3.0.7-17.el9_2"}]}]}],
		"database_specific":{"severity":"Moderate"}}`))
	inv := &Inventory{Packages: []Package{
		// A binNMU: the binary's version is past the fix, its source's is not.
		{Ecosystem: "Debian:12", Name: "libc6", Version: "2.36-9+deb12u1+b1", SourceName: "glibc", SourceVersion: "2.36-9+deb12u1", Kind: KindDeb, Location: "/s"},
		// An rpm matched through its source package, with its epoch.
		{Ecosystem: "AlmaLinux:9", Name: "openssl-libs", Version: "1:3.0.7-16.el9_2", SourceName: "openssl", Kind: KindRPM, Location: "/r"},
		{Ecosystem: "AlmaLinux:9", Name: "openssl-devel", Version: "1:3.0.7-17.el9_2", SourceName: "openssl", Kind: KindRPM, Location: "/r"},
	}}
	res, err := Match(context.Background(), inv, db)
	require.NoError(t, err)
	require.Equal(t, []string{
		"CVE-2024-3333 AlmaLinux:9 openssl-libs 1:3.0.7-16.el9_2 MEDIUM",
		"CVE-2024-2222 Debian:12 libc6 2.36-9+deb12u1+b1 INFORMATIONAL",
	}, findingLinesInOrder(res))
}

func findingLinesInOrder(res *Result) []string {
	var out []string
	for _, f := range res.Findings {
		out = append(out, f.Name+" "+f.Package.Ecosystem+" "+f.Package.Name+" "+f.Package.Version+" "+string(f.Severity))
	}
	return out
}

func TestSeverityMapping(t *testing.T) {
	for w, s := range map[string]Severity{
		"critical": SeverityCritical, "HIGH": SeverityHigh, "Important": SeverityHigh, "MODERATE": SeverityMedium,
		"medium": SeverityMedium, "low": SeverityLow, "negligible": SeverityInformational, "unimportant": SeverityInformational,
		"not yet assigned": "", "untriaged": "", "": "",
	} {
		require.Equal(t, s, SeverityFromWord(w), w)
	}
	for _, c := range []struct {
		typ   string
		score float64
		want  Severity
	}{
		{osv.CVSSv3, 9.8, SeverityCritical}, {osv.CVSSv3, 9.0, SeverityCritical}, {osv.CVSSv3, 8.9, SeverityHigh},
		{osv.CVSSv3, 7.0, SeverityHigh}, {osv.CVSSv3, 6.9, SeverityMedium}, {osv.CVSSv3, 4.0, SeverityMedium},
		{osv.CVSSv3, 3.9, SeverityLow}, {osv.CVSSv3, 0.1, SeverityLow}, {osv.CVSSv3, 0, SeverityInformational},
		{osv.CVSSv4, 9.3, SeverityCritical}, {osv.CVSSv2, 10, SeverityHigh}, {osv.CVSSv2, 4.3, SeverityMedium},
		{osv.CVSSv2, 2.1, SeverityLow},
	} {
		require.Equal(t, c.want, SeverityFromCVSS(c.typ, c.score), "%s %v", c.typ, c.score)
	}
}

func TestFindingName(t *testing.T) {
	for _, c := range []struct {
		rec  osv.Record
		want string
	}{
		{osv.Record{ID: "CVE-2024-1234"}, "CVE-2024-1234"},
		{osv.Record{ID: "GHSA-x-y", Aliases: []string{"CVE-2024-1"}}, "GHSA-x-y"}, // not a CVE id shape
		{osv.Record{ID: "GHSA-x-y", Aliases: []string{"CVE-2024-12345"}}, "CVE-2024-12345"},
		{osv.Record{ID: "GO-2022-1059", Aliases: []string{"CVE-2022-32149", "GHSA-69ch-w2m2-3vjp"}}, "CVE-2022-32149"},
		{osv.Record{ID: "ALPINE-CVE-2023-5363", Upstream: []string{"CVE-2023-5363"}}, "CVE-2023-5363"},
		{osv.Record{ID: "DEBIAN-CVE-2023-4911"}, "CVE-2023-4911"},
		{osv.Record{ID: "USN-5844-1", Upstream: []string{"UBUNTU-CVE-2023-0286", "UBUNTU-CVE-2022-4304"}}, "USN-5844-1"},
		{osv.Record{ID: "DSA-5514-1", Upstream: []string{"CVE-2023-4911", "DEBIAN-CVE-2023-4911"}}, "CVE-2023-4911"},
		{osv.Record{ID: "ALSA-2023:5455", Related: []string{"CVE-2023-4911"}}, "CVE-2023-4911"},
		{osv.Record{ID: "PYSEC-2023-74"}, "PYSEC-2023-74"},
	} {
		require.Equal(t, c.want, findingName(&c.rec), c.rec.ID)
	}
}

func TestVersionsOfPackagesParse(t *testing.T) {
	// The versions each reader produces parse in their ecosystem.
	for _, p := range []Package{
		{Ecosystem: "AlmaLinux:9", Version: "1:3.0.7-16.el9_2"},
		{Ecosystem: "Go", Version: "v0.0.0-20210101000000-abcdefabcdef"},
		{Ecosystem: "Go", Version: "1.21.0-rc.2"},
		{Ecosystem: "Alpine:v3.18", Version: "1.36.1-r2"},
	} {
		_, err := version.Parse(p.Ecosystem, p.Version)
		require.NoError(t, err, p.Version)
	}
}
