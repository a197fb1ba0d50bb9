package gc

import (
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cockroachdb/datadriven"
	digest "github.com/opencontainers/go-digest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/berthstore/berth/index"
)

// lifecycleNow is the evaluation time of every data-driven case.
var lifecycleNow = time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)

// fakeDigest names an image of a test case by a digest derived from its name.
func fakeDigest(name string) digest.Digest { return digest.FromString(name) }

// parseAgo reads "10d", "36h" or "90m" as a time before lifecycleNow.
func parseAgo(s string) (time.Time, error) {
	if n, ok := strings.CutSuffix(s, "d"); ok {
		f, err := strconv.ParseFloat(n, 64)
		if err != nil {
			return time.Time{}, err
		}
		return lifecycleNow.Add(-time.Duration(f * 24 * float64(time.Hour))), nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return time.Time{}, err
	}
	return lifecycleNow.Add(-d), nil
}

// parseNodes reads one manifest a line: name key=value... with keys
// pushed, pulled, archived, activated (ages), tags, children (comma
// lists), subject and status (active, archived, activating).
func parseNodes(t *testing.T, input string) (*Graph, map[digest.Digest]string) {
	g := &Graph{Repo: "test", Nodes: map[digest.Digest]*Node{}}
	names := map[digest.Digest]string{}
	for _, line := range strings.Split(strings.TrimSpace(input), "\n") {
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		n := &Node{Digest: fakeDigest(f[0]), PushedAt: lifecycleNow}
		names[n.Digest] = f[0]
		for _, kv := range f[1:] {
			k, v, _ := strings.Cut(kv, "=")
			var err error
			switch k {
			case "pushed":
				n.PushedAt, err = parseAgo(v)
			case "pulled":
				n.LastPulledAt, err = parseAgo(v)
			case "tags":
				n.Tags = strings.Split(v, ",")
			case "children":
				for _, c := range strings.Split(v, ",") {
					n.Children = append(n.Children, fakeDigest(c))
				}
			case "subject":
				n.Subject = fakeDigest(v)
			case "status":
				switch v {
				case "active":
					n.Status = index.StatusActive
				case "archived":
					n.Status = index.StatusArchived
				case "activating":
					n.Status = index.StatusActivating
				default:
					err = fmt.Errorf("unknown status %q", v)
				}
			case "archived":
				n.LastArchivedAt, err = parseAgo(v)
			case "activated":
				n.LastActivatedAt, err = parseAgo(v)
			default:
				err = fmt.Errorf("unknown key %q", k)
			}
			require.NoError(t, err, line)
		}
		g.Nodes[n.Digest] = n
	}
	return g, names
}

func nameList(names map[digest.Digest]string, ds []digest.Digest) string {
	if len(ds) == 0 {
		return "none"
	}
	out := make([]string, len(ds))
	for i, d := range ds {
		out[i] = names[d]
	}
	return strings.Join(out, " ")
}

// TestLifecycle runs the data-driven cases of testdata/lifecycle. Commands:
//
//	policy            the input is a policy; prints "ok" or the error
//	manifests         the input is the repository's manifests (parseNodes)
//	images            prints the images of the repository
//	eval              prints each image acted on and the rule acting on it
//	                  (with the action when it is not expire)
//	closure a b ...   prints what expiring a, b, ... removes
//	archive-closure a b ...  prints what archiving a, b, ... archives
//	restore-closure a b ...  prints what restoring a, b, ... restores
func TestLifecycle(t *testing.T) {
	datadriven.Walk(t, "testdata/lifecycle", func(t *testing.T, path string) {
		var (
			policy *Policy
			graph  *Graph
			names  map[digest.Digest]string
		)
		datadriven.RunTest(t, path, func(t *testing.T, td *datadriven.TestData) string {
			switch td.Cmd {
			case "policy":
				p, err := ParsePolicy(td.Input)
				if err != nil {
					require.ErrorIs(t, err, ErrInvalidPolicy)
					var pe *PolicyError
					require.True(t, errors.As(err, &pe))
					policy = nil
					return "error: " + err.Error() + "\n"
				}
				policy = p
				return "ok\n"
			case "manifests":
				graph, names = parseNodes(t, td.Input)
				return ""
			case "images":
				require.NotNil(t, graph, "manifests first")
				var ds []digest.Digest
				for _, img := range graph.Images() {
					ds = append(ds, img.Digest)
				}
				sort.Slice(ds, func(i, j int) bool { return names[ds[i]] < names[ds[j]] })
				return nameList(names, ds) + "\n"
			case "eval":
				require.NotNil(t, policy, "a valid policy first")
				require.NotNil(t, graph, "manifests first")
				exp := policy.Evaluate(graph.Images(), lifecycleNow)
				if len(exp) == 0 {
					return "none\n"
				}
				var b strings.Builder
				for _, x := range exp {
					fmt.Fprintf(&b, "%s rule=%d", names[x.Digest], x.RulePriority)
					if x.Action != ActionExpire {
						fmt.Fprintf(&b, " %s", x.Action)
					}
					b.WriteString("\n")
				}
				return b.String()
			case "closure", "archive-closure", "restore-closure":
				require.NotNil(t, graph, "manifests first")
				var ds []digest.Digest
				for _, a := range td.CmdArgs {
					ds = append(ds, fakeDigest(a.Key))
				}
				closure := map[string]func([]digest.Digest) []digest.Digest{
					"closure": graph.Closure, "archive-closure": graph.ArchiveClosure, "restore-closure": graph.RestoreClosure,
				}[td.Cmd]
				return nameList(names, closure(ds)) + "\n"
			}
			t.Fatalf("unknown command %q", td.Cmd)
			return ""
		})
	})
}

func TestMatchWildcard(t *testing.T) {
	for _, tc := range []struct {
		pattern, s string
		want       bool
	}{
		{"prod", "prod", true},
		{"prod", "prod1", false},
		{"prod*", "prod", true},
		{"prod*", "prod-1", true},
		{"*prod", "preprod", true},
		{"*prod", "prod-x", false},
		{"*", "", true},
		{"a*b*c", "abc", true},
		{"a*b*c", "axxbyyc", true},
		{"a*b*c", "acb", false},
		{"*test*1*2*3", "xtestA1B2C3", true},
		{"a*a", "a", false},
		{"a*a", "aa", true},
		{"**", "anything", true},
	} {
		assert.Equal(t, tc.want, MatchWildcard(tc.pattern, tc.s), "%q ~ %q", tc.pattern, tc.s)
	}
}

func TestPolicyStringRoundTrip(t *testing.T) {
	text := `{"rules":[{"rulePriority":2,"selection":{"tagStatus":"any","countType":"imageCountMoreThan","countNumber":3},"action":{"type":"expire"}},
	{"rulePriority":1,"description":"old","selection":{"tagStatus":"tagged","tagPrefixList":["v"],"countType":"sinceImagePushed","countUnit":"days","countNumber":7},"action":{"type":"expire"}}]}`
	p, err := ParsePolicy(text)
	require.NoError(t, err)
	require.Equal(t, 1, p.Rules[0].RulePriority)
	q, err := ParsePolicy(p.String())
	require.NoError(t, err)
	require.Equal(t, p, q)
}

// FuzzParsePolicy checks that no input makes ParsePolicy panic, that every
// error is a PolicyError, and that an accepted policy survives a round trip
// through its canonical form and evaluates without panicking.
func FuzzParsePolicy(f *testing.F) {
	f.Add(`{"rules":[{"rulePriority":1,"selection":{"tagStatus":"untagged","countType":"imageCountMoreThan","countNumber":1},"action":{"type":"expire"}}]}`)
	f.Fuzz(func(t *testing.T, text string) {
		p, err := ParsePolicy(text)
		if err != nil {
			var pe *PolicyError
			if !errors.As(err, &pe) || !errors.Is(err, ErrInvalidPolicy) {
				t.Fatalf("error %v is not a PolicyError", err)
			}
			return
		}
		q, err := ParsePolicy(p.String())
		if err != nil && len(p.String()) >= MinPolicyLength {
			t.Fatalf("canonical form %s does not parse: %v", p.String(), err)
		}
		if err == nil && len(q.Rules) != len(p.Rules) {
			t.Fatalf("round trip changed the rules")
		}
		imgs := []Image{
			{Digest: fakeDigest("a"), Tags: []string{"v1", "prod"}, PushedAt: lifecycleNow.Add(-48 * time.Hour)},
			{Digest: fakeDigest("b"), PushedAt: lifecycleNow.Add(-400 * 24 * time.Hour)},
			{Digest: fakeDigest("c"), Tags: []string{"latest"}, PushedAt: lifecycleNow, LastPulledAt: lifecycleNow},
		}
		_ = p.Evaluate(imgs, lifecycleNow)
	})
}
