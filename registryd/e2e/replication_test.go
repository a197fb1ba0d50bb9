package e2e

// Replication between three registryd on 127.0.0.1: a source, a
// "cross-region" destination of the same account and a "cross-account"
// destination whose registry policy grants the source's account
// ecr:ReplicateImage (and ecr:CreateRepository) on prod/* only.

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
	"github.com/aws/aws-sdk-go-v2/service/ecr/types"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/static"
	ggcrtypes "github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/stretchr/testify/require"

	"github.com/berthstore/berth/engine"
	"github.com/berthstore/berth/registryd/cli"
)

const (
	replSrcAccount  = "111111111111"
	replSrcRegion   = "us-east-1"
	replRegion2     = "us-west-2"
	replAcct2       = "222222222222"
	replAcct2Region = "eu-west-1"
	replAdminKey    = "AKIAREPLADMIN0000001"
	replAdminSecret = "repl-admin-secret"
	// The replicator's access key at each destination: a source may log
	// in with it (GetAuthorizationToken) instead of a password.
	replReplicatorKey    = "AKIAREPLICATOR000001"
	replReplicatorSecret = "repl-replicator-secret"
)

// replRegistry is one registryd of the replication tests.
type replRegistry struct {
	addr, account, region string
	stop                  func()
}

func (r *replRegistry) ecr() *ecr.Client {
	return ecr.New(ecr.Options{Region: r.region, BaseEndpoint: aws.String("http://" + r.addr),
		Credentials: credentials.NewStaticCredentialsProvider(replAdminKey, replAdminSecret, "")})
}

// replDestIdentities is a destination's identity file: an administrator,
// the replicator (of account replicator's account; "" for the
// destination's own), and alice, who may push but not replicate.
func replDestIdentities(t *testing.T, dir, replicatorAccount string) string {
	acct := ""
	if replicatorAccount != "" {
		acct = "\n    account: \"" + replicatorAccount + "\""
	}
	p := filepath.Join(dir, "iam.yaml")
	require.NoError(t, os.WriteFile(p, []byte(`policies:
  admin: {Version: "2012-10-17", Statement: [{Effect: Allow, Action: "*", Resource: "*"}]}
  replicate: {Version: "2012-10-17", Statement: [{Effect: Allow, Action: [ecr:ReplicateImage, ecr:CreateRepository, ecr:GetAuthorizationToken], Resource: "*"}]}
  push: {Version: "2012-10-17", Statement: [{Effect: Allow, Action: [ecr:PutImage, ecr:InitiateLayerUpload, ecr:UploadLayerPart, ecr:CompleteLayerUpload, ecr:BatchCheckLayerAvailability, ecr:BatchGetImage, ecr:CreateRepository], Resource: "*"}]}
users:
  admin: {policies: [admin]}
  replicator:
    policies: [replicate]`+acct+`
  alice: {policies: [push]}
`), 0o600))
	return p
}

// startReplRegistry starts a registryd of account and region with the
// users admin, replicator and alice (password "pw-<user>"), the admin's
// ECR access key, the identity file iam (none: every user an
// administrator) and mutate's settings.
func startReplRegistry(t *testing.T, account, region, iam string, mutate func(*cli.Config)) *replRegistry {
	dir := t.TempDir()
	creds := filepath.Join(dir, "ecr-credentials")
	require.NoError(t, os.WriteFile(creds, []byte(replAdminKey+":"+replAdminSecret+":admin\n"+
		replReplicatorKey+":"+replReplicatorSecret+":replicator\n"), 0o600))
	r := &replRegistry{account: account, region: region}
	r.addr, r.stop = startStoppableServer(t, func(c *cli.Config) {
		c.ECRAccountID, c.ECRRegion = account, region
		c.Htpasswd = htpasswdFile(t, dir, "admin", "pw-admin", "replicator", "pw-replicator", "alice", "pw-alice")
		c.ECRCredentials, c.IAM, c.CreateOnPush = creds, iam, true
		if mutate != nil {
			mutate(c)
		}
	})
	return r
}

// replFixture is the three registries, the source configured to
// replicate prod/ and shared/ to the other region, prod/ and restricted/
// to the other account.
type replFixture struct {
	src, region, acct *replRegistry
}

func newReplFixture(t *testing.T, srcMutate func(*cli.Config)) *replFixture {
	t.Helper()
	ctx := context.Background()
	f := &replFixture{}
	templates := func(c *cli.Config) {
		c.Templates = []cli.Template{
			{Prefix: "prod", AppliedFor: []string{engine.AppliedForReplication}, ImageTagMutability: engine.TagImmutable,
				EncryptionConfiguration: &cli.EncryptionConfiguration{EncryptionType: engine.EncryptionKMS, KMSKey: "replica-key"},
				ResourceTags:            []cli.ResourceTag{{Key: "replicated", Value: "prod"}}},
			{Prefix: "ROOT", AppliedFor: []string{engine.AppliedForCreateOnPush}},
		}
	}
	// The destinations' keys, made by their operators before they serve.
	mkKey := func(dir string) {
		e, err := engine.Open(dir, &engine.Options{Logger: quietLogger()})
		require.NoError(t, err)
		_, err = e.CreateKey(ctx, "replica-key")
		require.NoError(t, err)
		require.NoError(t, e.Close())
	}
	regionData, acctData := t.TempDir(), t.TempDir()
	mkKey(regionData)
	mkKey(acctData)
	f.region = startReplRegistry(t, replSrcAccount, replRegion2, replDestIdentities(t, t.TempDir(), ""), func(c *cli.Config) {
		c.Data = regionData
		templates(c)
	})
	f.acct = startReplRegistry(t, replAcct2, replAcct2Region, replDestIdentities(t, t.TempDir(), replSrcAccount), func(c *cli.Config) {
		c.Data = acctData
		templates(c)
	})
	// The cross-account destination's registry policy: the source's
	// account may replicate into prod/ (and create repositories there).
	_, err := f.acct.ecr().PutRegistryPolicy(ctx, &ecr.PutRegistryPolicyInput{PolicyText: aws.String(fmt.Sprintf(
		`{"Version":"2012-10-17","Statement":[{"Sid":"ReplicationFromSource","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::%s:root"},`+
			`"Action":["ecr:ReplicateImage","ecr:CreateRepository"],"Resource":["arn:aws:ecr:%[2]s:%[3]s:repository/prod/*","arn:aws:ecr:%[2]s:%[3]s:repository/race/*"]}]}`,
		replSrcAccount, replAcct2Region, replAcct2))})
	require.NoError(t, err)
	f.src = startReplRegistry(t, replSrcAccount, replSrcRegion, "", func(c *cli.Config) {
		c.Replication = cli.Replication{
			InitialBackoff: cli.Duration(50 * time.Millisecond), MaxBackoff: cli.Duration(time.Second),
			Destinations: []cli.ReplicationEndpoint{
				{Region: replRegion2, RegistryID: replSrcAccount, URL: "http://" + f.region.addr, Username: "replicator", Password: "pw-replicator"},
				{Region: replAcct2Region, RegistryID: replAcct2, URL: "http://" + f.acct.addr, Username: "replicator", Password: "pw-replicator"},
			},
		}
		if srcMutate != nil {
			srcMutate(c)
		}
	})
	return f
}

// configure puts the source's replication configuration.
func (f *replFixture) configure(t *testing.T) {
	_, err := f.src.ecr().PutReplicationConfiguration(context.Background(), &ecr.PutReplicationConfigurationInput{
		ReplicationConfiguration: &types.ReplicationConfiguration{Rules: []types.ReplicationRule{
			{Destinations: []types.ReplicationDestination{{Region: aws.String(replRegion2), RegistryId: aws.String(replSrcAccount)}},
				RepositoryFilters: []types.RepositoryFilter{{Filter: aws.String("prod/"), FilterType: types.RepositoryFilterTypePrefixMatch},
					{Filter: aws.String("shared/"), FilterType: types.RepositoryFilterTypePrefixMatch},
					{Filter: aws.String("race/"), FilterType: types.RepositoryFilterTypePrefixMatch}}},
			{Destinations: []types.ReplicationDestination{{Region: aws.String(replAcct2Region), RegistryId: aws.String(replAcct2)}},
				RepositoryFilters: []types.RepositoryFilter{{Filter: aws.String("prod/"), FilterType: types.RepositoryFilterTypePrefixMatch},
					{Filter: aws.String("restricted/"), FilterType: types.RepositoryFilterTypePrefixMatch},
					{Filter: aws.String("race/"), FilterType: types.RepositoryFilterTypePrefixMatch}}},
		}},
	})
	require.NoError(t, err)
}

func replAuth(user string) remote.Option {
	return remote.WithAuth(&authn.Basic{Username: user, Password: "pw-" + user})
}

// waitReplicated waits until the image of repo:ref has a final status
// (COMPLETE or FAILED) at every destination it was queued for, and
// returns them by destination.
func (f *replFixture) waitReplicated(t *testing.T, repo, ref string, want int) map[string]types.ImageReplicationStatus {
	t.Helper()
	id := &types.ImageIdentifier{ImageTag: aws.String(ref)}
	if strings.Contains(ref, ":") {
		id = &types.ImageIdentifier{ImageDigest: aws.String(ref)}
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		out, err := f.src.ecr().DescribeImageReplicationStatus(context.Background(), &ecr.DescribeImageReplicationStatusInput{
			RepositoryName: aws.String(repo), ImageId: id})
		require.NoError(t, err)
		got := map[string]types.ImageReplicationStatus{}
		done := len(out.ReplicationStatuses) == want
		for _, s := range out.ReplicationStatuses {
			got[aws.ToString(s.RegistryId)+"/"+aws.ToString(s.Region)] = s
			if s.Status == types.ReplicationStatusInProgress {
				done = false
			}
		}
		if done {
			return got
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s:%s not replicated in time: %+v", repo, ref, out.ReplicationStatuses)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// sameContent checks that ref pulls bit-exact from dst as from src: the
// manifest's bytes, and every blob under it (an index's children too),
// each hashed to its digest.
func sameContent(t *testing.T, src, dst, repo, ref string) {
	t.Helper()
	get := func(addr, user string) *remote.Descriptor {
		r, err := name.ParseReference(addr+"/"+repo+ref, name.Insecure)
		require.NoError(t, err)
		d, err := remote.Get(r, replAuth(user))
		require.NoError(t, err, "%s%s at %s", repo, ref, addr)
		return d
	}
	sd, dd := get(src, "admin"), get(dst, "admin")
	require.Equal(t, sd.Digest, dd.Digest, "%s%s: same digest", repo, ref)
	require.Equal(t, string(sd.Manifest), string(dd.Manifest), "%s%s: same manifest bytes", repo, ref)
	var images []v1.Image
	if dd.MediaType.IsIndex() {
		idx, err := dd.ImageIndex()
		require.NoError(t, err)
		im, err := idx.IndexManifest()
		require.NoError(t, err)
		for _, m := range im.Manifests {
			sameContent(t, src, dst, repo, "@"+m.Digest.String())
		}
		return
	}
	img, err := dd.Image()
	require.NoError(t, err)
	images = append(images, img)
	for _, img := range images {
		layers, err := img.Layers()
		require.NoError(t, err)
		for _, l := range layers {
			d, err := l.Digest()
			require.NoError(t, err)
			rc, err := l.Compressed()
			require.NoError(t, err)
			h := sha256.New()
			_, err = io.Copy(h, rc)
			require.NoError(t, err)
			require.NoError(t, rc.Close())
			require.Equal(t, d.Hex, hex.EncodeToString(h.Sum(nil)), "%s%s: layer %s", repo, ref, d)
		}
		raw, err := img.RawConfigFile()
		require.NoError(t, err)
		cd, err := img.ConfigName()
		require.NoError(t, err)
		sum := sha256.Sum256(raw)
		require.Equal(t, cd.Hex, hex.EncodeToString(sum[:]))
	}
}

// catalog is the repositories of the registry at addr.
func catalog(t *testing.T, addr string) []string {
	t.Helper()
	r, err := name.NewRegistry(addr, name.Insecure)
	require.NoError(t, err)
	repos, err := remote.Catalog(context.Background(), r, replAuth("admin"))
	require.NoError(t, err)
	sort.Strings(repos)
	return repos
}

func pushReplRandom(t *testing.T, addr, ref string) v1.Image {
	t.Helper()
	img, err := random.Image(3000, 2)
	require.NoError(t, err)
	r, err := name.ParseReference(addr+"/"+ref, name.Insecure)
	require.NoError(t, err)
	require.NoError(t, remote.Write(r, img, replAuth("admin")))
	return img
}

// TestReplication: prefix filters select exactly the repositories of
// each rule; the destinations create them from their REPLICATION
// templates (tag mutability, KMS key, resource tags); images, an index
// and a referrer pull bit-exact from each destination with the same
// digests; the cross-account destination's registry policy, which grants
// prod/* only, refuses restricted/ (FAILED, ACCESS_DENIED, nothing
// arrives); an ordinary user cannot pass a push off as a replication.
func TestReplication(t *testing.T) {
	ctx := context.Background()
	f := newReplFixture(t, nil)

	// A destination without an endpoint, and ECR's limits, are refused.
	_, err := f.src.ecr().PutReplicationConfiguration(ctx, &ecr.PutReplicationConfigurationInput{
		ReplicationConfiguration: &types.ReplicationConfiguration{Rules: []types.ReplicationRule{
			{Destinations: []types.ReplicationDestination{{Region: aws.String("ap-south-1"), RegistryId: aws.String("333333333333")}}}}}})
	requireAPIError(t, err, "InvalidParameterException")
	require.ErrorContains(t, err, "no endpoint configured")
	rules := make([]types.ReplicationRule, 11)
	for i := range rules {
		rules[i] = types.ReplicationRule{Destinations: []types.ReplicationDestination{{Region: aws.String(replRegion2), RegistryId: aws.String(replSrcAccount)}}}
	}
	_, err = f.src.ecr().PutReplicationConfiguration(ctx, &ecr.PutReplicationConfigurationInput{
		ReplicationConfiguration: &types.ReplicationConfiguration{Rules: rules}})
	requireAPIError(t, err, "InvalidParameterException")

	// Pushed before the configuration: not replicated (ECR replicates
	// what is pushed after).
	pushReplRandom(t, f.src.addr, "prod/early:v1")
	f.configure(t)
	reg, err := f.src.ecr().DescribeRegistry(ctx, &ecr.DescribeRegistryInput{})
	require.NoError(t, err)
	require.Len(t, reg.ReplicationConfiguration.Rules, 2)
	require.Equal(t, "prod/", aws.ToString(reg.ReplicationConfiguration.Rules[0].RepositoryFilters[0].Filter))

	pushReplRandom(t, f.src.addr, "prod/api:v1")
	pushReplRandom(t, f.src.addr, "prod/api:v2")
	pushReplRandom(t, f.src.addr, "shared/lib:1.0")
	pushReplRandom(t, f.src.addr, "restricted/x:v1")
	pushReplRandom(t, f.src.addr, "other/y:v1")
	// An index with its children, and a referrer of prod/api:v1.
	idx, err := random.Index(2000, 2, 2)
	require.NoError(t, err)
	ir, err := name.ParseReference(f.src.addr+"/prod/multi:v1", name.Insecure)
	require.NoError(t, err)
	require.NoError(t, remote.WriteIndex(ir, idx, replAuth("admin")))
	apiRef, err := name.ParseReference(f.src.addr+"/prod/api:v1", name.Insecure)
	require.NoError(t, err)
	apiDesc, err := remote.Head(apiRef, replAuth("admin"))
	require.NoError(t, err)
	sig := mutate.Subject(mutate.MediaType(mutate.ConfigMediaType(
		mustAppend(t, static.NewLayer([]byte("a signature"), "application/vnd.berth.test.sig")),
		"application/vnd.berth.test.sig.config"), ggcrtypes.OCIManifestSchema1), *apiDesc).(v1.Image)
	sigDigest, err := sig.Digest()
	require.NoError(t, err)
	sr, err := name.ParseReference(f.src.addr+"/prod/api@"+sigDigest.String(), name.Insecure)
	require.NoError(t, err)
	require.NoError(t, remote.Write(sr, sig, replAuth("admin")))

	regionDest := replSrcAccount + "/" + replRegion2
	acctDest := replAcct2 + "/" + replAcct2Region
	for _, c := range []struct {
		repo, ref string
		want      map[string]types.ReplicationStatus
	}{
		{"prod/api", "v1", map[string]types.ReplicationStatus{regionDest: types.ReplicationStatusComplete, acctDest: types.ReplicationStatusComplete}},
		{"prod/api", "v2", map[string]types.ReplicationStatus{regionDest: types.ReplicationStatusComplete, acctDest: types.ReplicationStatusComplete}},
		{"prod/api", sigDigest.String(), map[string]types.ReplicationStatus{regionDest: types.ReplicationStatusComplete, acctDest: types.ReplicationStatusComplete}},
		{"prod/multi", "v1", map[string]types.ReplicationStatus{regionDest: types.ReplicationStatusComplete, acctDest: types.ReplicationStatusComplete}},
		{"shared/lib", "1.0", map[string]types.ReplicationStatus{regionDest: types.ReplicationStatusComplete}},
		{"restricted/x", "v1", map[string]types.ReplicationStatus{acctDest: types.ReplicationStatusFailed}},
		{"other/y", "v1", map[string]types.ReplicationStatus{}},
	} {
		got := f.waitReplicated(t, c.repo, c.ref, len(c.want))
		for dest, want := range c.want {
			require.Equal(t, want, got[dest].Status, "%s:%s at %s: %+v", c.repo, c.ref, dest, got[dest])
		}
		if c.repo == "restricted/x" {
			require.Equal(t, engine.ReplicationAccessDenied, aws.ToString(got[acctDest].FailureCode))
		}
	}

	// The events in the audit logs: ECR Replication Action SUCCESS at
	// each destination, naming the source; FAILED at the source for the
	// refused one.
	for _, dst := range []string{f.region.addr, f.acct.addr} {
		waitAudit(t, dst, "berth:PublishEvent", `"ECR Replication Action"`, `"SUCCESS"`, `"prod/api"`, `"`+replSrcAccount+`"`, `"`+replSrcRegion+`"`)
	}
	waitAudit(t, f.src.addr, "berth:PublishEvent", `"ECR Replication Action"`, `"FAILED"`, `"restricted/x"`)
	// Prefix filters: exactly the rules' repositories at each destination.
	require.Equal(t, []string{"prod/api", "prod/multi", "shared/lib"}, catalog(t, f.region.addr))
	require.Equal(t, []string{"prod/api", "prod/multi"}, catalog(t, f.acct.addr), "restricted/x refused, nothing created")

	// Bit-exact, same digests, at each destination that takes them.
	for _, dst := range []string{f.region.addr, f.acct.addr} {
		for _, ref := range []string{"prod/api:v1", "prod/api:v2", "prod/multi:v1", "prod/api@" + sigDigest.String()} {
			repo, tagOrDigest, _ := strings.Cut(strings.Replace(ref, "@", ":@", 1), ":")
			if !strings.HasPrefix(tagOrDigest, "@") {
				tagOrDigest = ":" + tagOrDigest
			}
			sameContent(t, f.src.addr, dst, repo, tagOrDigest)
		}
	}
	sameContent(t, f.src.addr, f.region.addr, "shared/lib", ":1.0")

	// The referrer is listed under its subject at the destination.
	for _, dst := range []string{f.src.addr, f.region.addr, f.acct.addr} {
		r, err := name.ParseReference(dst+"/prod/api@"+apiDesc.Digest.String(), name.Insecure)
		require.NoError(t, err)
		refs, err := remote.Referrers(r.Context().Digest(apiDesc.Digest.String()), replAuth("admin"))
		require.NoError(t, err)
		im, err := refs.IndexManifest()
		require.NoError(t, err)
		require.Len(t, im.Manifests, 1)
		require.Equal(t, sigDigest, im.Manifests[0].Digest)
	}

	// The REPLICATION template's settings at each destination.
	for _, dst := range []*replRegistry{f.region, f.acct} {
		out, err := dst.ecr().DescribeRepositories(ctx, &ecr.DescribeRepositoriesInput{RepositoryNames: []string{"prod/api"}})
		require.NoError(t, err)
		repo := out.Repositories[0]
		require.Equal(t, types.ImageTagMutabilityImmutable, repo.ImageTagMutability)
		require.Equal(t, types.EncryptionTypeKms, repo.EncryptionConfiguration.EncryptionType)
		require.Contains(t, aws.ToString(repo.EncryptionConfiguration.KmsKey), "replica-key")
		tags, err := dst.ecr().ListTagsForResource(ctx, &ecr.ListTagsForResourceInput{ResourceArn: repo.RepositoryArn})
		require.NoError(t, err)
		require.Equal(t, []types.Tag{{Key: aws.String("replicated"), Value: aws.String("prod")}}, tags.Tags)
		// shared/ has no REPLICATION template: ECR's defaults.
		if dst == f.region {
			out, err := dst.ecr().DescribeRepositories(ctx, &ecr.DescribeRepositoriesInput{RepositoryNames: []string{"shared/lib"}})
			require.NoError(t, err)
			require.Equal(t, types.ImageTagMutabilityMutable, out.Repositories[0].ImageTagMutability)
		}
	}

	// An ordinary user who may push cannot pass a push off as a
	// replication: the header makes it ecr:ReplicateImage, which she is
	// not granted; without it her push is an ordinary one.
	for _, path := range []string{"/v2/prod/forged/blobs/uploads/", "/v2/prod/api/blobs/uploads/"} {
		req, err := http.NewRequest(http.MethodPost, "http://"+f.region.addr+path, nil)
		require.NoError(t, err)
		req.SetBasicAuth("alice", "pw-alice")
		req.Header.Set(engine.ReplicationSourceHeader, replSrcAccount+"/"+replSrcRegion)
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		require.Equal(t, http.StatusForbidden, resp.StatusCode, string(body))
		require.Contains(t, string(body), "ecr:ReplicateImage")
	}
	// Nor can the replicator delete, even with the header.
	req, err := http.NewRequest(http.MethodDelete, "http://"+f.region.addr+"/v2/prod/api/manifests/"+apiDesc.Digest.String(), nil)
	require.NoError(t, err)
	req.SetBasicAuth("replicator", "pw-replicator")
	req.Header.Set(engine.ReplicationSourceHeader, replSrcAccount+"/"+replSrcRegion)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusForbidden, resp.StatusCode)
	// Alice's ordinary push is created from the CREATE_ON_PUSH template,
	// not the REPLICATION one.
	img, err := random.Image(100, 1)
	require.NoError(t, err)
	ar, err := name.ParseReference(f.region.addr+"/prod/alice:v1", name.Insecure)
	require.NoError(t, err)
	require.NoError(t, remote.Write(ar, img, replAuth("alice")))
	out, err := f.region.ecr().DescribeRepositories(ctx, &ecr.DescribeRepositoriesInput{RepositoryNames: []string{"prod/alice"}})
	require.NoError(t, err)
	require.Equal(t, types.ImageTagMutabilityMutable, out.Repositories[0].ImageTagMutability)
	require.Equal(t, types.EncryptionTypeAes256, out.Repositories[0].EncryptionConfiguration.EncryptionType)
}

// waitAudit waits until the audit log of the registry at addr holds a
// record of action whose JSON line holds every one of want, and fails
// after 10 s.
func waitAudit(t *testing.T, addr, action string, want ...string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		req, err := http.NewRequest(http.MethodGet, "http://"+addr+"/admin/v1/audit?action="+action+"&limit=0", nil)
		require.NoError(t, err)
		req.SetBasicAuth("admin", "pw-admin")
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		require.NoError(t, err)
		require.Equal(t, http.StatusOK, resp.StatusCode, string(body))
		for _, line := range strings.Split(string(body), "\n") {
			all := line != ""
			for _, w := range want {
				all = all && strings.Contains(line, w)
			}
			if all {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %s record at %s with %q in:\n%s", action, addr, want, body)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func mustAppend(t *testing.T, l v1.Layer) v1.Image {
	t.Helper()
	img, err := mutate.AppendLayers(empty.Image, l)
	require.NoError(t, err)
	return img
}
