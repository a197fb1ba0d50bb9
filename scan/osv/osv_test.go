package osv

import (
	"archive/zip"
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"testing"
	"testing/fstest"

	"github.com/stretchr/testify/require"
)

const minimal = `{"id":"GHSA-aaaa-bbbb-cccc","modified":"2024-01-01T00:00:00Z",
 "affected":[{"package":{"ecosystem":"npm","name":"x"},"ranges":[{"type":"ECOSYSTEM","events":[{"introduced":"0"},{"fixed":"1.0.0"}]}]}]}`

func TestParseRealRecords(t *testing.T) {
	n := 0
	require.NoError(t, ReadFS(os.DirFS("../testdata/osv"), ".", func(name string, r *Record) error {
		n++
		require.NotEmpty(t, r.ID, name)
		require.False(t, r.Modified.IsZero() && r.ID[:3] != "GO-", name)
		return nil
	}))
	require.Equal(t, 15, n)
}

func TestParseFields(t *testing.T) {
	b, err := os.ReadFile("../testdata/osv/ubuntu/USN-5844-1.json")
	require.NoError(t, err)
	r, err := Parse(b)
	require.NoError(t, err)
	require.Equal(t, "USN-5844-1", r.ID)
	require.Len(t, r.Upstream, 8)
	require.Len(t, r.Affected, 3)
	a := r.Affected[2]
	require.Equal(t, "Ubuntu:22.04:LTS", a.Ecosystem)
	require.Equal(t, "openssl", a.Name)
	require.Equal(t, "high", a.Rating, "the notice's most severe CVE for the release")
	require.Equal(t, []Event{{Introduced: "0"}, {Fixed: "3.0.2-0ubuntu1.8"}}, a.Ranges[0].Events)
	require.Equal(t, []PackageKey{{"Ubuntu:18.04", "openssl"}, {"Ubuntu:20.04", "openssl"}, {"Ubuntu:22.04", "openssl"}}, r.Keys())

	b, err = os.ReadFile("../testdata/osv/ghsa/GHSA-j8r2-6x86-q33q.json")
	require.NoError(t, err)
	r, err = Parse(b)
	require.NoError(t, err)
	require.Equal(t, "MODERATE", r.Rating)
	require.Equal(t, []string{"CVE-2023-32681"}, r.Aliases)
	require.Equal(t, "ADVISORY", r.References[1].Type)
	s, err := CVSSScore(r.Severity[0])
	require.NoError(t, err)
	require.Equal(t, 6.1, s)
}

func TestParseRefusesInvalidRecords(t *testing.T) {
	for name, doc := range map[string]string{
		"not json":          `{`,
		"no id":             `{"modified":"2024-01-01T00:00:00Z"}`,
		"bad id":            `{"id":"has space","modified":"2024-01-01T00:00:00Z"}`,
		"no modified":       `{"id":"GHSA-a-b"}`,
		"bad time":          `{"id":"GHSA-a-b","modified":"yesterday"}`,
		"wrong type":        `{"id":"GHSA-a-b","modified":"2024-01-01T00:00:00Z","aliases":"CVE-1"}`,
		"no package":        `{"id":"GHSA-a-b","modified":"2024-01-01T00:00:00Z","affected":[{"ranges":[{"type":"ECOSYSTEM","events":[{"introduced":"0"}]}]}]}`,
		"bad range type":    `{"id":"GHSA-a-b","modified":"2024-01-01T00:00:00Z","affected":[{"package":{"ecosystem":"npm","name":"x"},"ranges":[{"type":"RANGE","events":[{"introduced":"0"}]}]}]}`,
		"no events":         `{"id":"GHSA-a-b","modified":"2024-01-01T00:00:00Z","affected":[{"package":{"ecosystem":"npm","name":"x"},"ranges":[{"type":"ECOSYSTEM","events":[]}]}]}`,
		"two in one event":  `{"id":"GHSA-a-b","modified":"2024-01-01T00:00:00Z","affected":[{"package":{"ecosystem":"npm","name":"x"},"ranges":[{"type":"ECOSYSTEM","events":[{"introduced":"0","fixed":"1.0.0"}]}]}]}`,
		"no introduced":     `{"id":"GHSA-a-b","modified":"2024-01-01T00:00:00Z","affected":[{"package":{"ecosystem":"npm","name":"x"},"ranges":[{"type":"ECOSYSTEM","events":[{"fixed":"1.0.0"}]}]}]}`,
		"git without repo":  `{"id":"GHSA-a-b","modified":"2024-01-01T00:00:00Z","affected":[{"ranges":[{"type":"GIT","events":[{"introduced":"0"}]}]}]}`,
		"bad version":       `{"id":"GHSA-a-b","modified":"2024-01-01T00:00:00Z","affected":[{"package":{"ecosystem":"Alpine:v3.18","name":"x"},"ranges":[{"type":"ECOSYSTEM","events":[{"introduced":"0"},{"fixed":"not-a-version"}]}]}]}`,
		"bad cvss":          `{"id":"GHSA-a-b","modified":"2024-01-01T00:00:00Z","severity":[{"type":"CVSS_V3","score":"CVSS:3.1/AV:X"}]}`,
		"bad severity type": `{"id":"GHSA-a-b","modified":"2024-01-01T00:00:00Z","severity":[{"type":"SEVERE","score":"high"}]}`,
		"empty version":     `{"id":"GHSA-a-b","modified":"2024-01-01T00:00:00Z","affected":[{"package":{"ecosystem":"npm","name":"x"},"versions":[""]}]}`,
	} {
		_, err := Parse([]byte(doc))
		require.True(t, errors.Is(err, ErrInvalid), "%s: %v", name, err)
	}
}

func TestParseAccepts(t *testing.T) {
	for name, doc := range map[string]string{
		"minimal":           minimal,
		"git only":          `{"id":"OSV-2020-1","modified":"2024-01-01T00:00:00Z","affected":[{"ranges":[{"type":"GIT","repo":"https://example.com/r","events":[{"introduced":"0"},{"fixed":"abc"}]}]}]}`,
		"a newer field":     `{"id":"GHSA-a-b","modified":"2024-01-01T00:00:00Z","some_future_field":{"x":1}}`,
		"withdrawn":         `{"id":"GHSA-a-b","modified":"2024-01-01T00:00:00Z","withdrawn":"2024-02-01T00:00:00Z"}`,
		"limit":             `{"id":"GHSA-a-b","modified":"2024-01-01T00:00:00Z","affected":[{"package":{"ecosystem":"npm","name":"x"},"ranges":[{"type":"SEMVER","events":[{"introduced":"0"},{"limit":"*"}]}]}]}`,
		"cvss v2, v3.0, v4": `{"id":"GHSA-a-b","modified":"2024-01-01T00:00:00Z","severity":[{"type":"CVSS_V2","score":"AV:N/AC:L/Au:N/C:P/I:P/A:P"},{"type":"CVSS_V3","score":"CVSS:3.0/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"},{"type":"CVSS_V4","score":"CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N"}]}`,
		"unknown ecosystem": `{"id":"GHSA-a-b","modified":"2024-01-01T00:00:00Z","affected":[{"package":{"ecosystem":"NewThing","name":"x"},"ranges":[{"type":"ECOSYSTEM","events":[{"introduced":"0"},{"fixed":"whatever"}]}]}]}`,
	} {
		_, err := Parse([]byte(doc))
		require.NoError(t, err, name)
	}
}

func TestCVSSScores(t *testing.T) {
	for _, c := range []struct {
		sev   Severity
		score float64
	}{
		{Severity{CVSSv2, "AV:N/AC:L/Au:N/C:P/I:P/A:P"}, 7.5},
		{Severity{CVSSv3, "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"}, 9.8},
		{Severity{CVSSv3, "CVSS:3.0/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"}, 9.8},
		{Severity{CVSSv3, "CVSS:3.1/AV:N/AC:H/PR:N/UI:N/S:U/C:H/I:N/A:H"}, 7.4},
		{Severity{CVSSv4, "CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N"}, 9.3},
	} {
		s, err := CVSSScore(c.sev)
		require.NoError(t, err, c.sev.Score)
		require.Equal(t, c.score, s, c.sev.Score)
	}
	_, err := CVSSScore(Severity{Ubuntu, "high"})
	require.ErrorIs(t, err, ErrCVSS)
}

func TestNormalize(t *testing.T) {
	require.Equal(t, "Ubuntu:22.04", NormalizeEcosystem("Ubuntu:22.04:LTS"))
	require.Equal(t, "Ubuntu:Pro:18.04", NormalizeEcosystem("Ubuntu:Pro:18.04:LTS"))
	require.Equal(t, "Red Hat:9", NormalizeEcosystem("Red Hat:enterprise_linux:9::appstream"))
	require.Equal(t, "Red Hat:rhel_eus:9.2::baseos", NormalizeEcosystem("Red Hat:rhel_eus:9.2::baseos"))
	require.Equal(t, "Debian:12", NormalizeEcosystem("Debian:12"))
	require.Equal(t, "zope-interface", NormalizeName("PyPI", "Zope.Interface"))
	require.Equal(t, "pyyaml", NormalizeName("PyPI", "PyYAML"))
	require.Equal(t, "a-b", NormalizeName("PyPI", "a__-.b"))
	require.Equal(t, "Foo_Bar", NormalizeName("npm", "Foo_Bar"))
}

func zipOf(t testing.TB, files map[string]string) []byte {
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for n, body := range files {
		w, err := zw.Create(n)
		require.NoError(t, err)
		_, err = w.Write([]byte(body))
		require.NoError(t, err)
	}
	require.NoError(t, zw.Close())
	return buf.Bytes()
}

func TestReadZipAndFS(t *testing.T) {
	good := zipOf(t, map[string]string{"GHSA-aaaa-bbbb-cccc.json": minimal, "README": "not a record"})
	var ids []string
	require.NoError(t, ReadZip(bytes.NewReader(good), int64(len(good)), func(name string, r *Record) error {
		ids = append(ids, name+"="+r.ID)
		return nil
	}))
	require.Equal(t, []string{"GHSA-aaaa-bbbb-cccc.json=GHSA-aaaa-bbbb-cccc"}, ids)

	bad := zipOf(t, map[string]string{"a.json": minimal, "b.json": `{"id":"GHSA-x-y"}`})
	err := ReadZip(bytes.NewReader(bad), int64(len(bad)), func(string, *Record) error { return nil })
	require.ErrorIs(t, err, ErrInvalid)
	require.Contains(t, err.Error(), "b.json")

	err = ReadZip(bytes.NewReader([]byte("PK not really")), 13, func(string, *Record) error { return nil })
	require.ErrorIs(t, err, ErrInvalid)

	empty := zipOf(t, map[string]string{"README": "x"})
	err = ReadZip(bytes.NewReader(empty), int64(len(empty)), func(string, *Record) error { return nil })
	require.ErrorIs(t, err, ErrNoRecords)

	fsys := fstest.MapFS{
		"npm/all.zip":   {Data: good},
		"one/x.json":    {Data: []byte(minimal)},
		"one/notes.txt": {Data: []byte("ignored")},
	}
	ids = nil
	require.NoError(t, ReadFS(fsys, ".", func(name string, r *Record) error {
		ids = append(ids, name)
		return nil
	}))
	require.Equal(t, []string{"npm/all.zip:GHSA-aaaa-bbbb-cccc.json", "one/x.json"}, ids)
	require.ErrorIs(t, ReadFS(fstest.MapFS{"x.txt": {}}, ".", func(string, *Record) error { return nil }), ErrNoRecords)
}

func FuzzParse(f *testing.F) {
	f.Add([]byte(minimal))
	for _, p := range []string{"../testdata/osv/ubuntu/USN-5844-1.json", "../testdata/osv/go/GO-2022-1059.json", "../testdata/osv/transcribed/ALSA-2023-5455.json"} {
		b, err := os.ReadFile(p)
		require.NoError(f, err)
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := Parse(b)
		if err != nil {
			require.ErrorIs(t, err, ErrInvalid)
			return
		}
		require.NotEmpty(t, r.ID)
		r.Keys()
	})
}

// TestRecordJSONRoundTrip checks that a Record stored as JSON (as the
// engine may keep it) loads back equal, without a second validation.
func TestRecordJSONRoundTrip(t *testing.T) {
	require.NoError(t, ReadFS(os.DirFS("../testdata/osv"), ".", func(name string, r *Record) error {
		b, err := json.Marshal(r)
		require.NoError(t, err)
		var back Record
		require.NoError(t, json.Unmarshal(b, &back))
		require.Equal(t, r, &back, name)
		return nil
	}))
}
