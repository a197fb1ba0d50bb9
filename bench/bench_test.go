package main

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestWorkloadsInProcess runs the HTTP workloads, at toy sizes, against
// Berth served inside the test process: the client, the generator and
// the figures end to end.
func TestWorkloadsInProcess(t *testing.T) {
	if testing.Short() {
		t.Skip("-short")
	}
	b := &Bench{
		P: Params{BigMiB: 1, SmallN: 3, SmallKiB: 64, Conc: []int{1, 2}, Dur: 50 * time.Millisecond,
			Tags: 20, Repos: 20, DedupeN: 3, DedupeKiB: 64, ColdManifests: 200, ListRepeat: 1},
		Gen:     NewGen(1),
		Servers: []*Server{{Name: "berth", Style: StyleBerth, InProcess: true}},
		Work:    t.TempDir(),
		Res:     NewResults(),
		Logf:    t.Logf,
	}
	ctx := context.Background()
	for _, w := range Workloads {
		switch w.Name {
		case "push-pull", "manifest", "tags", "catalog", "dedupe":
			require.NoError(t, w.Run(b, ctx), w.Name)
		}
	}
	require.Zero(t, b.Failed, "notes: %v", b.Res.Notes)
	tests := []struct{ workload, metric string }{
		{"push-pull", "push big image, 1 client"},
		{"push-pull", "pull small images, 2 clients"},
		{"manifest", "HEAD rps, 2 clients"},
		{"manifest", "GET p99, 1 client"},
		{"tags", "list 20 tags"},
		{"tags", "tag one manifest 20 times, 1 client"},
		{"catalog", "catalog of 21 repositories (pages of 1000)"},
		{"dedupe", "bytes on disk"},
	}
	for _, tc := range tests {
		f := b.Res.Get(tc.workload, tc.metric)
		require.NotNil(t, f, "%s / %s", tc.workload, tc.metric)
		assert.Greater(t, f.Values["berth"], 0.0, "%s / %s", tc.workload, tc.metric)
	}
}

func TestResolvePeersReportsWhatCannotBeHad(t *testing.T) {
	tests := []struct {
		spec, name, status string
	}{
		{"zot=/nonexistent/zot", "zot", "unavailable"},
		{"mystery=/bin/true", "mystery", "no known configuration style"},
		{"nosuch", "nosuch", "unknown peer"},
	}
	for _, tc := range tests {
		t.Run(tc.spec, func(t *testing.T) {
			peers := ResolvePeers(context.Background(), tc.spec, "", t.Logf)
			require.NotEmpty(t, peers)
			assert.Equal(t, tc.name, peers[0].Name)
			assert.Contains(t, peers[0].Status, tc.status)
			assert.Nil(t, peers[0].Server)
		})
	}
	// zot, when not asked for, is still reported.
	peers := ResolvePeers(context.Background(), "", "", t.Logf)
	require.Len(t, peers, 1)
	assert.Equal(t, "zot", peers[0].Name)
	assert.Equal(t, "not run: not in --peers", peers[0].Status)
}

func TestStyleFor(t *testing.T) {
	tests := []struct {
		name, bin string
		want      Style
		ok        bool
	}{
		{"zot", "/opt/zot-linux-amd64", StyleZot, true},
		{"distribution", "/usr/bin/registry", StyleDistribution, true},
		{"dist2", "/root/go/bin/registry", StyleDistribution, true},
		{"other", "/usr/bin/true", "", false},
	}
	for _, tc := range tests {
		got, ok := styleFor(tc.name, tc.bin)
		assert.Equal(t, tc.ok, ok, tc.name)
		assert.Equal(t, tc.want, got, tc.name)
	}
}

func TestTargetsAndMarkdown(t *testing.T) {
	res := NewResults()
	res.Add("push-pull", "push big image, 1 client", "MiB/s", true, "berth", 600)
	res.Add("push-pull", "push big image, 1 client", "MiB/s", true, "distribution", 300)
	res.Add("manifest", "HEAD rps, 8 clients", "req/s", true, "berth", 20000)
	res.Add("manifest", "HEAD rps, 8 clients", "req/s", true, "distribution", 10000)
	res.Add("manifest", "HEAD p99, 32 clients", "ms", false, "berth", 4)
	res.Add("manifest", "peak RSS", "MiB", false, "berth", 120)
	servers := []string{"berth", "distribution"}
	got := map[string]string{}
	for _, v := range EvaluateTargets(res, servers) {
		got[v.Target] = v.Verdict
	}
	tests := []struct{ target, verdict string }{
		{"push throughput: push big image, 1 client", "met"},
		{"manifest HEAD rps: HEAD rps, 8 clients", "**missed**"},
		{"manifest HEAD p99, 32 clients", "met"},
		{"peak RSS of registryd serve, every workload", "**missed**"},
		{"ahead of zot on most workloads", "not measured"},
		{"ahead of distribution: push-pull", "met"},
		{"ahead of distribution on most workloads", "met"},
	}
	for _, tc := range tests {
		assert.Equal(t, tc.verdict, got[tc.target], tc.target)
	}
	rep := &Report{Servers: servers, Results: res, Titles: map[string]string{"push-pull": "Push", "manifest": "Manifests"},
		Peers: []Peer{{Name: "zot", Status: "unavailable: no binary"}}}
	rep.Targets = EvaluateTargets(res, servers)
	md := Markdown(rep, "charts", "")
	assert.True(t, strings.HasPrefix(md, SectionHeading+"\n"))
	assert.Contains(t, md, "![push-pull](charts/push-pull.svg)")
	assert.Contains(t, md, "**zot**: unavailable: no binary")
	assert.Contains(t, md, "| metric | unit | berth | distribution | vs distribution |")
	assert.Contains(t, md, "| push big image, 1 client | MiB/s | 600 | 300 | 2.00x |")
	svg := t.TempDir() + "/m.svg"
	require.NoError(t, WriteSVG(svg, rep, "manifest"))
	b, err := os.ReadFile(svg)
	require.NoError(t, err)
	assert.Contains(t, string(b), "HEAD rps, 8 clients")
}

func TestBerthVariantFlag(t *testing.T) {
	var v variantList
	require.NoError(t, v.Set("berth-mem80=GOMEMLIMIT=80MiB --disable-compression"))
	require.NoError(t, v.Set("berth-nolimit=--memory-limit=none"))
	require.Len(t, v.list, 2)
	assert.Equal(t, variant{name: "berth-mem80", env: []string{"GOMEMLIMIT=80MiB"}, args: []string{"--disable-compression"}}, v.list[0])
	assert.Equal(t, variant{name: "berth-nolimit", args: []string{"--memory-limit=none"}}, v.list[1])
	for _, bad := range []string{"mem80=GOMEMLIMIT=80MiB", "berth-noenc=--x", "berth-mem80=--y", "berth-a b=--x", "berth-x"} {
		assert.Error(t, v.Set(bad), bad)
	}
}
