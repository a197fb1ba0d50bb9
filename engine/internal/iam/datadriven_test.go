package iam

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/cockroachdb/datadriven"
	"github.com/stretchr/testify/require"
)

// testNow is the time of every data-driven request that names none.
var testNow = time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)

// TestDataDriven runs the cases under testdata/cases/: AWS's documented
// policy-evaluation and condition examples (each file cites its page of
// the IAM User Guide), Berth's ECR cases and the refusals of Parse.
//
// Commands:
//
//	policy kind=identity|repository|registry|key name=NAME
//	<policy JSON>
//	----
//	ok | error: <sentinel> / statement <i> / <field>
//
//	eval [identity=(names...)] [resource=(names...)]
//	<principal> <action> <resource ARN> [key=value...]   one request a line
//	----
//	<the decision's text>, one a line
//
// A principal is "anonymous" or a user ARN; a request's options are
// ip=ADDR, https=false, time=RFC3339, owner=ACCOUNT, userid=ID,
// restag=KEY:VALUE and reqtag=KEY:VALUE (repeatable).
func TestDataDriven(t *testing.T) {
	datadriven.Walk(t, "testdata/cases", func(t *testing.T, path string) {
		policies := map[string]*Policy{}
		datadriven.RunTest(t, path, func(t *testing.T, d *datadriven.TestData) string {
			switch d.Cmd {
			case "policy":
				var kindName, name string
				d.ScanArgs(t, "kind", &kindName)
				d.ScanArgs(t, "name", &name)
				kind := map[string]Kind{"identity": IdentityPolicy, "repository": RepositoryPolicy, "registry": RegistryPolicy, "key": KeyPolicy}[kindName]
				require.NotZero(t, kind, "%s: kind %q", d.Pos, kindName)
				p, err := Parse(kind, name, d.Input)
				if err != nil {
					require.ErrorIs(t, err, ErrInvalid, d.Pos)
					require.Nil(t, p)
					var pe *PolicyError
					require.True(t, errors.As(err, &pe), d.Pos)
					require.ErrorIs(t, err, pe.Err, d.Pos)
					return fmt.Sprintf("error: %v / statement %d / %s", pe.Err, pe.Statement, pe.Field)
				}
				policies[name] = p
				return "ok"
			case "eval":
				var identity, resource []*Policy
				for _, a := range d.CmdArgs {
					for _, n := range a.Vals {
						p, ok := policies[n]
						require.True(t, ok, "%s: no policy %q", d.Pos, n)
						switch a.Key {
						case "identity":
							identity = append(identity, p)
						case "resource":
							resource = append(resource, p)
						default:
							t.Fatalf("%s: unknown argument %q", d.Pos, a.Key)
						}
					}
				}
				var out strings.Builder
				for _, line := range strings.Split(strings.TrimSpace(d.Input), "\n") {
					if line = strings.TrimSpace(line); line == "" || strings.HasPrefix(line, "#") {
						continue
					}
					req := parseRequest(t, d.Pos, line)
					out.WriteString(Evaluate(&req, identity, resource).String())
					out.WriteString("\n")
				}
				return out.String()
			}
			t.Fatalf("%s: unknown command %q", d.Pos, d.Cmd)
			return ""
		})
	})
}

// parseRequest reads "<principal> <action> <resource> [key=value...]".
func parseRequest(t *testing.T, pos, line string) Request {
	f := strings.Fields(line)
	require.GreaterOrEqual(t, len(f), 3, "%s: %q", pos, line)
	req := Request{Action: f[1], Resource: f[2], SecureTransport: true, Time: testNow}
	if f[0] != "anonymous" {
		parts, ok := splitARN(f[0])
		require.True(t, ok, "%s: principal %q", pos, f[0])
		name := f[0][strings.LastIndexByte(f[0], '/')+1:]
		req.Principal = Principal{ARN: f[0], Account: parts[arnAccount], UserName: name, UserID: "AIDA" + strings.ToUpper(name)}
	}
	tags := Tags{Resource: map[string]string{}, Request: map[string]string{}}
	for _, kv := range f[3:] {
		k, v, _ := strings.Cut(kv, "=")
		var err error
		switch k {
		case "ip":
			req.SourceIP, err = netip.ParseAddr(v)
		case "https":
			req.SecureTransport = v == "true"
		case "time":
			req.Time, err = time.Parse(time.RFC3339, v)
		case "owner":
			req.ResourceAccount = v
		case "userid":
			req.Principal.UserID = v
		case "restag", "reqtag":
			tk, tv, _ := strings.Cut(v, ":")
			if k == "restag" {
				tags.Resource[tk] = tv
			} else {
				tags.Request[tk] = tv
			}
		default:
			err = fmt.Errorf("unknown option")
		}
		require.NoError(t, err, "%s: %q", pos, kv)
	}
	req.Context = tags
	return req
}
