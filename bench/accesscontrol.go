package main

// The access-control workload: what authentication, the policies and the
// audit log cost a pull. registryd runs three times side by side (open;
// with an htpasswd file, an identity file and access keys; the same with
// --no-audit), and the same requests go to each in alternating short
// phases, so that a shared machine's load falls on every configuration
// alike and their ratios come from one run.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"math"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
	"golang.org/x/crypto/bcrypt"
)

// AccessControlWorkload names the workload.
const AccessControlWorkload = "access-control"

// The configurations of the access-control workload: its columns.
const (
	// ACOff is registryd without authentication (an open registry; its
	// audit log on, as by default).
	ACOff = "auth-off"
	// ACPassword is an htpasswd user holding a 20-statement identity
	// policy, pulling from a repository with a policy with conditions.
	ACPassword = "password"
	// ACToken is the same user through a login token (user AWS).
	ACToken = "login-token"
	// ACNoAudit is ACPassword on a registryd with --no-audit: the audit
	// log's share.
	ACNoAudit = "password-noaudit"
)

// acAccount is the account (--ecr-account-id's default) the policies name.
const acAccount = "000000000000"

// acRepository is the repository the workload pulls from: team-c's, which
// the user's 19th statement and the repository policy allow.
const acRepository = "team-c/web"

// acIdentityFile is the identity file: an administrator (who pushes and
// sets the repository policy) and a developer whose group holds one
// identity policy of 20 statements: pulls and pushes on several team
// prefixes, conditions on aws:SourceIp, aws:username, the time and tags,
// a Deny for another prefix. The statement that allows the pull is the
// 19th, so that a decision walks the policy as a real one would.
const acIdentityFile = `policies:
  admin:
    Version: "2012-10-17"
    Statement:
      - {Sid: Everything, Effect: Allow, Action: "*", Resource: "*"}
  developers:
    Version: "2012-10-17"
    Statement:
      - {Sid: Login, Effect: Allow, Action: ecr:GetAuthorizationToken, Resource: "*"}
      - Sid: Describe
        Effect: Allow
        Action: [ecr:DescribeRepositories, ecr:DescribeImages, ecr:ListImages, ecr:ListTagsForResource]
        Resource: "arn:aws:ecr:*:000000000000:repository/*"
      - {Sid: DenySecret, Effect: Deny, Action: "ecr:*", Resource: "arn:aws:ecr:*:*:repository/secret/*"}
      - Sid: DenyOutsideOurNetworks
        Effect: Deny
        Action: "ecr:*"
        Resource: "*"
        Condition: {NotIpAddress: {"aws:SourceIp": ["127.0.0.0/8", "::1/128", "10.0.0.0/8", "192.0.2.0/24"]}}
      - Sid: TeamAPull
        Effect: Allow
        Action: [ecr:BatchGetImage, ecr:GetDownloadUrlForLayer, ecr:BatchCheckLayerAvailability]
        Resource: "arn:aws:ecr:*:000000000000:repository/team-a/*"
        Condition: {StringLike: {"aws:username": ["dev*", "ci-*"]}}
      - Sid: TeamAPush
        Effect: Allow
        Action: [ecr:PutImage, ecr:InitiateLayerUpload, ecr:UploadLayerPart, ecr:CompleteLayerUpload]
        Resource: "arn:aws:ecr:*:000000000000:repository/team-a/*"
        Condition: {IpAddress: {"aws:SourceIp": "10.0.0.0/8"}}
      - Sid: TeamBPull
        Effect: Allow
        Action: [ecr:BatchGetImage, ecr:GetDownloadUrlForLayer, ecr:BatchCheckLayerAvailability]
        Resource: "arn:aws:ecr:*:000000000000:repository/team-b/*"
        Condition: {StringLike: {"aws:username": "dev*"}}
      - Sid: TeamBPush
        Effect: Allow
        Action: [ecr:PutImage, ecr:InitiateLayerUpload, ecr:UploadLayerPart, ecr:CompleteLayerUpload]
        Resource: "arn:aws:ecr:*:000000000000:repository/team-b/*"
      - Sid: DenyProdPush
        Effect: Deny
        Action: ecr:PutImage
        Resource: "arn:aws:ecr:*:*:repository/prod/*"
        Condition: {StringNotLike: {"aws:username": "release-*"}}
      - Sid: DenyPolicyChanges
        Effect: Deny
        Action: [ecr:DeleteRepository, ecr:DeleteRepositoryPolicy, ecr:SetRepositoryPolicy]
        Resource: "*"
      - {Sid: Home, Effect: Allow, Action: "ecr:*", Resource: "arn:aws:ecr:*:000000000000:repository/home/${aws:username}/*"}
      - Sid: Lifecycle
        Effect: Allow
        Action: [ecr:GetLifecyclePolicy, ecr:GetLifecyclePolicyPreview, ecr:StartLifecyclePolicyPreview]
        Resource: "arn:aws:ecr:*:000000000000:repository/team-*"
      - Sid: Scan
        Effect: Allow
        Action: [ecr:StartImageScan, ecr:DescribeImageScanFindings]
        Resource: "arn:aws:ecr:*:000000000000:repository/*"
      - Sid: TeamCPush
        Effect: Allow
        Action: [ecr:PutImage, ecr:InitiateLayerUpload, ecr:UploadLayerPart, ecr:CompleteLayerUpload]
        Resource: "arn:aws:ecr:*:000000000000:repository/team-c/*"
        Condition: {IpAddress: {"aws:SourceIp": ["127.0.0.0/8", "10.0.0.0/8"]}}
      - Sid: DenyAfterContractEnd
        Effect: Deny
        Action: "ecr:*"
        Resource: "*"
        Condition: {DateGreaterThan: {"aws:CurrentTime": "2099-01-01T00:00:00Z"}}
      - Sid: Tagging
        Effect: Allow
        Action: [ecr:TagResource, ecr:UntagResource]
        Resource: "*"
        Condition: {"ForAllValues:StringEquals": {"aws:TagKeys": [team, env]}}
      - Sid: CreateTeamRepositories
        Effect: Allow
        Action: ecr:CreateRepository
        Resource: "arn:aws:ecr:*:000000000000:repository/team-*"
        Condition: {StringEquals: {"aws:RequestTag/team": [a, b, c]}}
      - Sid: TeamDPull
        Effect: Allow
        Action: [ecr:BatchGetImage, ecr:GetDownloadUrlForLayer, ecr:BatchCheckLayerAvailability]
        Resource: "arn:aws:ecr:*:000000000000:repository/team-d/*"
      - Sid: TeamCPull
        Effect: Allow
        Action: [ecr:BatchGetImage, ecr:GetDownloadUrlForLayer, ecr:BatchCheckLayerAvailability, ecr:ListImages]
        Resource: "arn:aws:ecr:*:000000000000:repository/team-c/*"
        Condition:
          IpAddress: {"aws:SourceIp": ["127.0.0.0/8", "10.0.0.0/8"]}
          StringLike: {"aws:username": "dev*"}
      - {Sid: CacheFill, Effect: Allow, Action: ecr:BatchImportUpstreamImage, Resource: "arn:aws:ecr:*:000000000000:repository/docker-hub/*"}
groups:
  admins: {policies: [admin]}
  developers: {policies: [developers]}
users:
  admin: {groups: [admins]}
  dev: {groups: [developers]}
`

// acRepositoryPolicy is the policy of acRepository: the account's users
// may pull from the networks it names (aws:PrincipalArn ArnLike,
// aws:SourceIp); plain HTTP is refused from anywhere else (Bool
// aws:SecureTransport); only CI users and the administrator push.
const acRepositoryPolicy = `{"Version":"2012-10-17","Statement":[
{"Sid":"AccountUsersPull","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::000000000000:root"},
 "Action":["ecr:BatchGetImage","ecr:GetDownloadUrlForLayer","ecr:BatchCheckLayerAvailability"],
 "Condition":{"ArnLike":{"aws:PrincipalArn":"arn:aws:iam::000000000000:user/*"},"IpAddress":{"aws:SourceIp":["127.0.0.0/8","10.0.0.0/8"]}}},
{"Sid":"DenyPlainHTTPFromAfar","Effect":"Deny","Principal":"*","Action":"ecr:*",
 "Condition":{"Bool":{"aws:SecureTransport":"false"},"NotIpAddress":{"aws:SourceIp":["127.0.0.0/8","::1/128","10.0.0.0/8"]}}},
{"Sid":"OnlyCIPushes","Effect":"Deny","Principal":"*","Action":["ecr:PutImage","ecr:CompleteLayerUpload","ecr:BatchDeleteImage"],
 "Condition":{"ArnNotLike":{"aws:PrincipalArn":["arn:aws:iam::000000000000:user/ci-*","arn:aws:iam::000000000000:user/admin"]}}}
]}`

// The access keys of the ECR API (--ecr-credentials).
const (
	acAdminKey, acAdminSecret = "AKIABERTHBENCHADMIN1", "bench-admin-secret"
	acDevKey, acDevSecret     = "AKIABERTHBENCHDEV001", "bench-dev-secret"
)

// acFiles are the files of the authenticated configurations.
type acFiles struct {
	htpasswd, identities, credentials string
	// adminPassword and devPassword are the users' passwords.
	adminPassword, devPassword string
}

// writeACFiles writes the htpasswd file (bcrypt at its default cost, as
// registryd htpasswd makes them), the identity file and the access keys
// into dir.
func writeACFiles(dir string) (*acFiles, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	f := &acFiles{
		htpasswd:      filepath.Join(dir, "htpasswd"),
		identities:    filepath.Join(dir, "iam.yaml"),
		credentials:   filepath.Join(dir, "ecr-credentials"),
		adminPassword: "bench-admin-password",
		devPassword:   "bench-dev-password",
	}
	var htpasswd strings.Builder
	for _, u := range [][2]string{{"admin", f.adminPassword}, {"dev", f.devPassword}} {
		hash, err := bcrypt.GenerateFromPassword([]byte(u[1]), bcrypt.DefaultCost)
		if err != nil {
			return nil, err
		}
		fmt.Fprintf(&htpasswd, "%s:%s\n", u[0], hash)
	}
	creds := acAdminKey + ":" + acAdminSecret + ":admin\n" + acDevKey + ":" + acDevSecret + ":dev\n"
	for _, w := range [][2]string{{f.htpasswd, htpasswd.String()}, {f.identities, acIdentityFile}, {f.credentials, creds}} {
		if err := os.WriteFile(w[0], []byte(w[1]), 0o600); err != nil {
			return nil, err
		}
	}
	return f, nil
}

// ecrClient is an AWS SDK ECR client of the registry at base, signing
// with key.
func ecrClient(base, key, secret string) *ecr.Client {
	return ecr.New(ecr.Options{
		Region:       "us-east-1",
		BaseEndpoint: aws.String(base),
		Credentials:  credentials.NewStaticCredentialsProvider(key, secret, ""),
	})
}

// loginToken asks the registry at base for a login token
// (GetAuthorizationToken, signed with key) and returns its password.
func loginToken(ctx context.Context, base, key, secret string) (string, error) {
	out, err := ecrClient(base, key, secret).GetAuthorizationToken(ctx, &ecr.GetAuthorizationTokenInput{})
	if err != nil {
		return "", fmt.Errorf("GetAuthorizationToken: %w", err)
	}
	if len(out.AuthorizationData) != 1 {
		return "", fmt.Errorf("GetAuthorizationToken: %d authorization data, want 1", len(out.AuthorizationData))
	}
	raw, err := base64.StdEncoding.DecodeString(aws.ToString(out.AuthorizationData[0].AuthorizationToken))
	if err != nil {
		return "", fmt.Errorf("GetAuthorizationToken: %w", err)
	}
	user, pass, ok := strings.Cut(string(raw), ":")
	if !ok || user != "AWS" {
		return "", fmt.Errorf("GetAuthorizationToken: the token is not for user AWS")
	}
	return pass, nil
}

// acSide is one configuration as the measurement drives it: a server,
// a client with its credentials, and what its phases added up.
type acSide struct {
	name string
	run  *Running
	c    *Client
	hist *Histogram
	el   time.Duration
	cpu  time.Duration
	// perRequest is each counted phase's time per request (its elapsed
	// time over its requests), in the order of the rounds: round r's
	// phases of all sides ran within one rotation of each other.
	perRequest []float64
	// cpuPerRequest is each counted phase's registryd CPU time per
	// request, in the same order. Both hold NaN for a phase without
	// requests (or CPU time).
	cpuPerRequest []float64
}

// acOp is one kind of request the workload measures.
type acOp struct {
	label string
	do    func(ctx context.Context, c *Client, worker, i int) error
}

// acTags is how many tags the manifest has (HEADs spread over them).
const acTags = 16

func (b *Bench) accessControl(ctx context.Context) error {
	const w = AccessControlWorkload
	var berth *Server
	for _, s := range b.Servers {
		switch {
		case s.Name == "berth":
			berth = s
		case !s.IsBerth():
			b.Res.Note(w, s.Name+": not run: the workload measures registryd's own authentication, policies and audit log")
		}
	}
	if berth == nil {
		return errors.New("no berth server")
	}
	smallSize, bigSize := 8<<10, 6<<20 // tar bytes: about 5 KiB and 3.5 MiB of gzip
	if b.P.Quick {
		bigSize = 1 << 20
	}
	im, err := b.Gen.Image(ImageSpec{Name: "access", Layers: []LayerSpec{
		{Name: "access-small", Size: smallSize, Compression: Gzip},
		{Name: "access-big", Size: bigSize, Compression: Gzip},
	}})
	if err != nil {
		return err
	}
	small, big := im.Blobs[1], im.Blobs[2]
	files, err := writeACFiles(filepath.Join(b.Work, "access-control-files"))
	if err != nil {
		return err
	}
	// The cache of verified passwords keeps an entry for --auth-cache-ttl
	// (1m by default), then checks the password with bcrypt again: 50-220
	// ms of CPU once a minute, which the alternation would count whole in
	// the one figure whose 3 s it lands in (2-6 µs a request there). The
	// configurations keep their entry for the run (acAuthCacheTTL); what
	// the bcrypt costs a request over a minute is a figure of its own
	// (acBcryptShare).
	authArgs := []string{"--htpasswd", files.htpasswd, "--iam", files.identities, "--ecr-credentials", files.credentials,
		"--auth-cache-ttl", acAuthCacheTTL.String()}
	variant := func(name string, args ...string) *Server {
		return &Server{Name: name, Style: StyleBerth, Bin: berth.Bin, Env: berth.Env, InProcess: berth.InProcess,
			Args: append(append([]string{}, berth.Args...), args...), Version: berth.Version}
	}
	// A process of its own for each configuration, the login token's
	// too: a process's garbage collection and writer goroutines go on
	// after a phase, and would be counted in the next phase of the same
	// process.
	servers := []*Server{variant(ACOff), variant(ACPassword, authArgs...), variant(ACToken, authArgs...)}
	if !b.P.Quick {
		servers = append(servers, variant(ACNoAudit, append(authArgs, "--no-audit")...))
	}
	running := map[string]*Running{}
	defer func() {
		for _, s := range servers {
			if r := running[s.Name]; r != nil {
				if rss, _ := r.Stop(); rss > 0 {
					b.Res.Add(w, "peak RSS", "MiB", false, s.Name, float64(rss)/mib)
				}
			}
			_ = os.RemoveAll(filepath.Join(b.Work, w+"-"+s.Name))
		}
	}()
	for _, s := range servers {
		dir := filepath.Join(b.Work, w+"-"+s.Name)
		_ = os.RemoveAll(dir)
		r, err := s.Start(ctx, dir)
		if err != nil {
			return err
		}
		running[s.Name] = r
		admin := NewClient(r.URL, 4)
		if s.Name != ACOff {
			admin.SetBasicAuth("admin", files.adminPassword)
		}
		err = acPopulate(ctx, admin, im)
		admin.Close()
		if err != nil {
			return fmt.Errorf("%s: %w", s.Name, err)
		}
		if s.Name != ACOff {
			if _, err := ecrClient(r.URL, acAdminKey, acAdminSecret).SetRepositoryPolicy(ctx, &ecr.SetRepositoryPolicyInput{
				RepositoryName: aws.String(acRepository), PolicyText: aws.String(acRepositoryPolicy)}); err != nil {
				return fmt.Errorf("%s: SetRepositoryPolicy: %w", s.Name, err)
			}
		}
	}
	var sides []*acSide
	for _, s := range servers {
		sides = append(sides, &acSide{name: s.Name, run: running[s.Name]})
	}
	token, err := loginToken(ctx, running[ACToken].URL, acDevKey, acDevSecret)
	if err != nil {
		return err
	}
	for _, s := range sides {
		s.c = NewClient(s.run.URL, 64)
		defer s.c.Close()
		switch s.name {
		case ACPassword, ACNoAudit:
			s.c.SetBasicAuth("dev", files.devPassword)
		case ACToken:
			s.c.SetBasicAuth("AWS", token)
		}
	}
	if err := acCheckEnforced(ctx, sides); err != nil {
		return err
	}
	b.Res.Note(w, fmt.Sprintf("configurations, each a registryd process of its own (so that what a process does after a phase, its garbage collection, is not counted in another configuration's phase): "+
		"**%s** registryd without authentication (an open registry: every request allowed unless a policy denies it; the audit log on, as by default); "+
		"**%s** basic authentication of htpasswd user dev (bcrypt, the cache of verified passwords on, its entry kept for the run: --auth-cache-ttl %s, so that no figure counts the bcrypt the default 1m would spend once a minute; the figure \"%s\" spreads it over a minute of requests), "+
		"holding one identity policy of 20 statements (pulls and pushes on four team prefixes, a home prefix per user, a cache prefix, a Deny for another prefix, conditions on aws:SourceIp, aws:username, aws:CurrentTime, aws:TagKeys and aws:RequestTag; the pull is allowed by the 19th statement), "+
		"pulling from %s, whose repository policy has three statements with conditions (aws:PrincipalArn ArnLike and aws:SourceIp on an Allow, a Deny on Bool aws:SecureTransport with NotIpAddress, a Deny on ArnNotLike aws:PrincipalArn); "+
		"**%s** the same user through a login token (user AWS, from GetAuthorizationToken signed with dev's access key); "+
		"**%s** %s's configuration with --no-audit: the audit log's share",
		ACOff, ACPassword, acAuthCacheTTL, ACBcryptShare, acRepository, ACToken, ACNoAudit, ACPassword))
	b.Res.Note(w, fmt.Sprintf("each figure's configurations ran in alternating phases of %s (the order rotating each round, %s in all for each), after a warm-up phase each; "+
		"overhead columns are what the configuration costs over %s: for requests per second the time per request (%s's rps / its rps - 1), for latency and CPU its figure / %s's - 1; "+
		"\"registryd CPU\" is the user and system time of the server's process over the requests it served (/proc/PID/stat), which the load generator (same two cores) does not count in",
		acPhase(b.P.Dur), b.P.Dur, ACOff, ACOff, ACOff))
	b.Res.Note(w, fmt.Sprintf("\"overhead per request, median of paired rounds\": each phase's time per request over %s's phase of the same round, the median over the rounds minus one, "+
		"with a distribution-free 95%% confidence interval (order statistics at the binomial ranks; at least 6 rounds); a burst of the machine's other load during one phase moves it by one rank, where the totals' ratio counts the burst by its size. "+
		"The targets read the median when it is there", ACOff))
	b.Res.Note(w, fmt.Sprintf("small blob: %.1f KiB; big blob: %.2f MiB (gzip layers, stored encrypted); HEADs spread over %d tags of one manifest", float64(len(small.Data))/1024, float64(len(big.Data))/mib, acTags))

	ops := []acOp{
		{"HEAD manifest", func(ctx context.Context, c *Client, worker, i int) error {
			return c.HeadManifest(ctx, acRepository, fmt.Sprintf("v%d", (worker+i)%acTags))
		}},
		{"GET small blob", func(ctx context.Context, c *Client, _, _ int) error {
			_, err := c.GetBlob(ctx, acRepository, small.Digest)
			return err
		}},
		{"GET big blob", func(ctx context.Context, c *Client, _, _ int) error {
			_, err := c.GetBlob(ctx, acRepository, big.Digest)
			return err
		}},
	}
	conc := b.P.Conc
	if b.P.Quick {
		// The smoke run: the target's client count and the small requests.
		ops, conc = ops[:2], []int{8}
	}
	stopProfile := b.profileStart(w)
	defer stopProfile()
	for _, op := range ops {
		for _, k := range conc {
			if err := b.interleave(ctx, sides, k, op); err != nil {
				return fmt.Errorf("%s, %s: %w", op.label, clients(k), err)
			}
			for _, s := range sides {
				n := float64(s.hist.Count())
				b.Res.Add(w, fmt.Sprintf("%s rps, %s", op.label, clients(k)), "req/s", true, s.name, n/s.el.Seconds())
				b.Res.Add(w, fmt.Sprintf("%s p50, %s", op.label, clients(k)), "ms", false, s.name, ms(s.hist.Percentile(50)))
				b.Res.Add(w, fmt.Sprintf("%s p99, %s", op.label, clients(k)), "ms", false, s.name, ms(s.hist.Percentile(99)))
				if s.cpu > 0 && n > 0 {
					b.Res.Add(w, fmt.Sprintf("%s registryd CPU per request, %s", op.label, clients(k)), "µs", false, s.name, float64(s.cpu.Microseconds())/n)
				}
			}
			acRoundOverheads(b.Res, op.label, k, sides)
		}
	}
	// The Go benchmark is for full runs of the harness: not for the smoke
	// run, nor for servers in this process (--profile, tests).
	if !b.P.Quick && !berth.InProcess {
		if err := b.loginTokenBenchmark(ctx); err != nil {
			b.Res.Note(w, "BenchmarkLoginTokenRequest failed: "+err.Error())
			b.Failed++
		}
		b.acBcryptShare()
	}
	return nil
}

// The figures of the overhead measured round by round (acRoundOverheads),
// for an operation at a client count: the median and the bounds of its
// confidence interval.
func acMedianMetric(op string, k int) string {
	return fmt.Sprintf("%s overhead per request, median of paired rounds, %s", op, clients(k))
}

func acMedianLowMetric(op string, k int) string {
	return fmt.Sprintf("%s overhead per request, median of paired rounds, 95%% CI low, %s", op, clients(k))
}

func acMedianHighMetric(op string, k int) string {
	return fmt.Sprintf("%s overhead per request, median of paired rounds, 95%% CI high, %s", op, clients(k))
}

// acRoundOverheads records, for each configuration but auth-off, the
// median over the rounds of its phase's time per request over
// auth-off's phase of the same round, minus one, with a 95% confidence
// interval (MedianCI). The totals' ratio (rps) counts a phase that a
// burst of the machine's other load slowed by its size; paired by round
// and taken by rank, that phase moves the figure by one rank.
func acRoundOverheads(res *Results, op string, k int, sides []*acSide) {
	var off *acSide
	for _, s := range sides {
		if s.name == ACOff {
			off = s
		}
	}
	if off == nil {
		return
	}
	for _, s := range sides {
		if s == off {
			continue
		}
		if med, lo, hi, ok := pairedMedian(s.perRequest, off.perRequest); ok {
			res.Add(AccessControlWorkload, acMedianMetric(op, k), "%", false, s.name, 100*(med-1))
			res.Add(AccessControlWorkload, acMedianLowMetric(op, k), "%", false, s.name, 100*(lo-1))
			res.Add(AccessControlWorkload, acMedianHighMetric(op, k), "%", false, s.name, 100*(hi-1))
		}
		if med, lo, hi, ok := pairedMedian(s.cpuPerRequest, off.cpuPerRequest); ok {
			res.Add(AccessControlWorkload, fmt.Sprintf("%s registryd CPU overhead per request, median of paired rounds, %s", op, clients(k)),
				"%", false, s.name, 100*(med-1))
			res.Note(AccessControlWorkload, fmt.Sprintf("%s, %s, %s: registryd CPU per request over %s's, median of paired rounds %s, 95%% CI %s to %s",
				op, clients(k), s.name, ACOff, fmtOverhead(med-1), fmtOverhead(lo-1), fmtOverhead(hi-1)))
		}
	}
}

// pairedMedian is MedianCI of xs[i]/base[i] over the rounds both have a
// figure for (not NaN, base positive).
func pairedMedian(xs, base []float64) (med, lo, hi float64, ok bool) {
	n := min(len(xs), len(base))
	ratios := make([]float64, 0, n)
	for i := range n {
		if math.IsNaN(xs[i]) || math.IsNaN(base[i]) || base[i] <= 0 {
			continue
		}
		ratios = append(ratios, xs[i]/base[i])
	}
	return MedianCI(ratios)
}

// acAuthCacheTTL is the workload's --auth-cache-ttl: longer than the run,
// so that no figure counts a password's bcrypt (acBcryptShare does).
const acAuthCacheTTL = time.Hour

// ACBcryptShare is the figure of a password's bcrypt, once per default
// --auth-cache-ttl, spread over the HEADs a password client makes in that
// time at 8 clients' rate.
const ACBcryptShare = "a password's bcrypt once a minute (default --auth-cache-ttl), per HEAD at 8 clients' rate"

// acBcryptShare records what the bcrypt of a password whose cached check
// expires costs each request of a client that keeps making them at the
// workload's HEAD rate at 8 clients: one bcrypt (BenchmarkLoginTokenRequest's
// "before", a bcrypt of the default cost) per minute (the default
// --auth-cache-ttl) over a minute of requests.
func (b *Bench) acBcryptShare() {
	w := AccessControlWorkload
	bcrypt, head := b.Res.Get(w, LoginTokenBefore), b.Res.Get(w, "HEAD manifest rps, 8 clients")
	if bcrypt == nil || head == nil || bcrypt.Values[ACToken] <= 0 || head.Values[ACPassword] <= 0 {
		return
	}
	perMinute := head.Values[ACPassword] * time.Minute.Seconds()
	b.Res.Add(w, ACBcryptShare, "µs", false, ACPassword, bcrypt.Values[ACToken]/perMinute)
}

// acPopulate pushes im into the workload's repository with its tags.
func acPopulate(ctx context.Context, c *Client, im *Image) error {
	if _, err := c.PushImage(ctx, acRepository, im); err != nil {
		return err
	}
	for i := range acTags {
		if err := c.PutManifest(ctx, acRepository, fmt.Sprintf("v%d", i), im.Top); err != nil {
			return err
		}
	}
	return nil
}

// acCheckEnforced makes sure the authenticated configurations decide:
// the developer's pull is allowed, its pull from a prefix its policy
// denies is refused, and a request without credentials is challenged.
func acCheckEnforced(ctx context.Context, sides []*acSide) error {
	for _, s := range sides {
		if err := s.c.HeadManifest(ctx, acRepository, "v1"); err != nil {
			return fmt.Errorf("%s: %w", s.name, err)
		}
		if s.name == ACOff {
			continue
		}
		code, err := s.c.Status(ctx, http.MethodHead, "/v2/secret/app/manifests/v1")
		if err != nil {
			return err
		}
		if code != http.StatusForbidden {
			return fmt.Errorf("%s: HEAD of a manifest under secret/: %d, want 403 (the identity policy's Deny)", s.name, code)
		}
		anon := NewClient(s.run.URL, 1)
		code, err = anon.Status(ctx, http.MethodHead, "/v2/"+acRepository+"/manifests/v1")
		anon.Close()
		if err != nil {
			return err
		}
		if code != http.StatusUnauthorized {
			return fmt.Errorf("%s: HEAD without credentials: %d, want 401", s.name, code)
		}
	}
	return nil
}

// acPhase is the length of one phase of the alternation: a quarter of a
// second, shorter when the whole measurement is.
func acPhase(d time.Duration) time.Duration {
	return min(d/3, 250*time.Millisecond)
}

// acSettle is how long a phase's server is left to finish its work
// before its CPU time is read.
const acSettle = 20 * time.Millisecond

// interleave measures op at k clients on every side: a warm-up phase
// each (connections opened, caches filled; not counted), then rounds of
// one phase each, the order rotating, until each side ran b.P.Dur.
func (b *Bench) interleave(ctx context.Context, sides []*acSide, k int, op acOp) error {
	phase := acPhase(b.P.Dur)
	rounds := max(1, int((b.P.Dur+phase/2)/phase))
	run := func(s *acSide, d time.Duration) (*Histogram, time.Duration, time.Duration, error) {
		cpu0 := s.run.CPUTime()
		h, el, err := load(ctx, k, d, func(ctx context.Context, worker, i int) error {
			return op.do(ctx, s.c, worker, i)
		})
		// What the server does for the phase's requests after their
		// answers (the garbage collection cycle under way) is theirs: let
		// it finish before reading the CPU time. The next phase is
		// another process's.
		time.Sleep(acSettle)
		return h, el, s.run.CPUTime() - cpu0, err
	}
	for _, s := range sides {
		s.hist, s.el, s.cpu, s.perRequest, s.cpuPerRequest = &Histogram{}, 0, 0, nil, nil
		if _, _, _, err := run(s, phase/2); err != nil {
			return fmt.Errorf("%s: %w", s.name, err)
		}
	}
	for r := range rounds {
		for j := range sides {
			s := sides[(r+j)%len(sides)]
			h, el, cpu, err := run(s, phase)
			if err != nil {
				return fmt.Errorf("%s: %w", s.name, err)
			}
			s.hist.Merge(h)
			s.el += el
			s.cpu += cpu
			// One entry per round, NaN for a phase without requests or
			// CPU time, so that entry r is round r on every side.
			perReq, cpuPerReq := math.NaN(), math.NaN()
			if n := h.Count(); n > 0 {
				perReq = el.Seconds() / float64(n)
				if cpu > 0 {
					cpuPerReq = cpu.Seconds() / float64(n)
				}
			}
			s.perRequest = append(s.perRequest, perReq)
			s.cpuPerRequest = append(s.cpuPerRequest, cpuPerReq)
		}
	}
	return nil
}

// The figures of BenchmarkLoginTokenRequest (registryd/internal/auth).
const (
	// LoginTokenBefore is a login-token request's authentication as
	// registryd did it before the identity work: the htpasswd file
	// first (a bcrypt of the unknown user AWS), then the token.
	LoginTokenBefore = "authenticate a login-token request, before: password file first (BenchmarkLoginTokenRequest)"
	// LoginTokenNow is the same now: the token first, and only the token.
	LoginTokenNow = "authenticate a login-token request, now: token first (BenchmarkLoginTokenRequest)"
)

// benchLine is one result line of go test -bench.
var benchLine = regexp.MustCompile(`^BenchmarkLoginTokenRequest/(\S+?)(-\d+)?\s+\d+\s+([0-9.]+) ns/op`)

// loginTokenBenchmark runs BenchmarkLoginTokenRequest (each side with a
// benchtime that suits it: the old path spends a bcrypt per request) and
// records both sides' time per request.
func (b *Bench) loginTokenBenchmark(ctx context.Context) error {
	root, err := moduleRoot()
	if err != nil {
		return err
	}
	for _, sub := range []struct{ pattern, benchtime, metric string }{
		{"before=", "10x", LoginTokenBefore},
		{"after=", "1s", LoginTokenNow},
	} {
		cmd := exec.CommandContext(ctx, "go", "test", "-run", "^$", "-bench", "^BenchmarkLoginTokenRequest$/^"+sub.pattern,
			"-benchtime", sub.benchtime, "-count", "1", "./registryd/internal/auth")
		cmd.Dir = root
		out, err := cmd.CombinedOutput()
		if err != nil {
			return fmt.Errorf("go test -bench LoginTokenRequest: %w: %s", err, lastLines(string(out), 5))
		}
		ns, ok := parseBenchNs(out)
		if !ok {
			return fmt.Errorf("go test -bench LoginTokenRequest: no result in %q", lastLines(string(out), 5))
		}
		b.Res.Add(AccessControlWorkload, sub.metric, "µs", false, ACToken, ns/1e3)
	}
	return nil
}

// parseBenchNs returns the ns/op of the first BenchmarkLoginTokenRequest
// line of out.
func parseBenchNs(out []byte) (float64, bool) {
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		if m := benchLine.FindStringSubmatch(sc.Text()); m != nil {
			v, err := strconv.ParseFloat(m[3], 64)
			return v, err == nil
		}
	}
	return 0, false
}
