package e2e

// Replication under faults: a tag pushed twice in quick succession, and a
// destination killed and restarted during a stream of pushes.

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
	"github.com/aws/aws-sdk-go-v2/service/ecr/types"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/stretchr/testify/require"

	"github.com/berthstore/berth/registryd/cli"
)

// pushSmall pushes a fresh image of one small layer to addr/ref and
// returns its digest.
func pushSmall(t *testing.T, addr, ref string) v1.Hash {
	t.Helper()
	img, err := random.Image(256, 1)
	require.NoError(t, err)
	r, err := name.ParseReference(addr+"/"+ref, name.Insecure)
	require.NoError(t, err)
	require.NoError(t, remote.Write(r, img, replAuth("admin")))
	d, err := img.Digest()
	require.NoError(t, err)
	return d
}

// tagAt is the digest tag names at the registry at addr ("" when none).
func tagAt(t *testing.T, addr, repo, tag string) string {
	t.Helper()
	r, err := name.ParseReference(addr+"/"+repo+":"+tag, name.Insecure)
	require.NoError(t, err)
	d, err := remote.Head(r, replAuth("admin"))
	if err != nil {
		return ""
	}
	return d.Digest.String()
}

// waitTags waits until every tag of want is at its digest at addr, and
// fails naming those that are not.
func waitTags(t *testing.T, addr, repo string, want map[string]string, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		var wrong []string
		for tag, d := range want {
			if got := tagAt(t, addr, repo, tag); got != d {
				wrong = append(wrong, fmt.Sprintf("%s=%s (want %s)", tag, got, d))
			}
		}
		if len(wrong) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s at %s: %d tags not at their last push's digest: %v", repo, addr, len(wrong), wrong)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestReplicationTagPushedTwice: a tag pushed twice in quick succession
// ends at the second digest on every destination, 100 times over (100
// tags, each pushed twice back to back while the replicator runs).
func TestReplicationTagPushedTwice(t *testing.T) {
	f := newReplFixture(t, nil)
	f.configure(t)
	want := map[string]string{}
	for i := range 100 {
		tag := fmt.Sprintf("t%03d", i)
		pushSmall(t, f.src.addr, "race/app:"+tag)
		want[tag] = pushSmall(t, f.src.addr, "race/app:"+tag).String()
	}
	waitTags(t, f.region.addr, "race/app", want, 60*time.Second)
	waitTags(t, f.acct.addr, "race/app", want, 60*time.Second)
}

// TestReplicationDestinationRestart: the cross-region destination is
// stopped and started again twice during a stream of pushes; every
// acknowledged push reaches it, each tag at its last push's digest. The
// source authenticates with an access key of the destination.
func TestReplicationDestinationRestart(t *testing.T) {
	regionAddr := freePort(t)
	regionData := t.TempDir()
	iam := replDestIdentities(t, t.TempDir(), "")
	startRegion := func() *replRegistry {
		return startReplRegistry(t, replSrcAccount, replRegion2, iam, func(c *cli.Config) {
			c.Addr, c.Data = regionAddr, regionData
		})
	}
	region := startRegion()
	src := startReplRegistry(t, replSrcAccount, replSrcRegion, "", func(c *cli.Config) {
		c.Replication = cli.Replication{
			InitialBackoff: cli.Duration(20 * time.Millisecond), MaxBackoff: cli.Duration(200 * time.Millisecond),
			// An access key of the destination's ECR API: the replicator
			// logs in with GetAuthorizationToken (its token outlives the
			// destination's restarts: the token key is in its store).
			Destinations: []cli.ReplicationEndpoint{{Region: replRegion2, RegistryID: replSrcAccount, URL: "http://" + regionAddr,
				AccessKeyID: replReplicatorKey, SecretAccessKey: replReplicatorSecret}},
		}
	})
	f := &replFixture{src: src, region: region}
	putRule(t, f.src, replRegion2, replSrcAccount, "stream/")
	want := map[string]string{}
	for i := range 90 {
		tag := fmt.Sprintf("t%02d", i%30) // each tag pushed three times
		want[tag] = pushSmall(t, f.src.addr, "stream/app:"+tag).String()
		switch i {
		case 25, 60:
			region.stop()
		case 40, 75:
			region = startRegion()
		}
	}
	waitTags(t, regionAddr, "stream/app", want, 60*time.Second)
}

// putRule sets src's replication configuration to one rule: prefix to
// the destination {region, registryID}.
func putRule(t *testing.T, src *replRegistry, region, registryID, prefix string) {
	t.Helper()
	_, err := src.ecr().PutReplicationConfiguration(context.Background(), &ecr.PutReplicationConfigurationInput{
		ReplicationConfiguration: &types.ReplicationConfiguration{Rules: []types.ReplicationRule{{
			Destinations:      []types.ReplicationDestination{{Region: aws.String(region), RegistryId: aws.String(registryID)}},
			RepositoryFilters: []types.RepositoryFilter{{Filter: aws.String(prefix), FilterType: types.RepositoryFilterTypePrefixMatch}},
		}}},
	})
	require.NoError(t, err)
}
