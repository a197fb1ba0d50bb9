package e2e

// A destination whose credentials the source reads from its own secret
// store (the endpoint's `secret:`), rather than from its configuration.

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecr/types"
	"github.com/stretchr/testify/require"

	"github.com/berthstore/berth/engine"
	"github.com/berthstore/berth/registryd/cli"
)

// TestReplicationSecretCredentials: both destinations require basic
// authentication and the source holds no password for them, only the
// names of secrets of its store ({"username","accessToken"}), stored on
// the running daemon with `registryd secrets put`. The secret with the
// replicator's password replicates (COMPLETE, the image bit-exact at the
// destination); the one with a wrong password gives FAILED with
// ACCESS_DENIED, nothing created there; a secret that is not stored
// fails the same way. Once the secret is corrected, `registryd
// replication retry` sends the image (the secret is read for each job,
// not at start).
func TestReplicationSecretCredentials(t *testing.T) {
	ctx := context.Background()
	const (
		regionSecret = "replication/region"
		acctSecret   = "replication/partner"
	)
	f := newReplFixture(t, func(c *cli.Config) {
		for i, secret := range []string{regionSecret, acctSecret} {
			d := &c.Replication.Destinations[i]
			d.Username, d.Password, d.Secret = "", "", secret
		}
	})
	f.configure(t)
	secrets := func(stdin string, args ...string) {
		t.Helper()
		t.Setenv("BERTH_PASSWORD", "pw-admin")
		var stdout, stderr bytes.Buffer
		code := cli.Main(ctx, cli.Env{Stdin: strings.NewReader(stdin), Stdout: &stdout, Stderr: &stderr},
			append([]string{args[0], args[1], "--server", "http://" + f.src.addr, "--server-user", "admin"}, args[2:]...))
		require.Equal(t, 0, code, "%v: %s%s", args, stdout.String(), stderr.String())
	}
	regionDest := replSrcAccount + "/" + replRegion2
	acctDest := replAcct2 + "/" + replAcct2Region

	// No secret stored yet: both refused at the source, before a request.
	pushReplRandom(t, f.src.addr, "prod/none:v1")
	got := f.waitReplicated(t, "prod/none", "v1", 2)
	for _, dest := range []string{regionDest, acctDest} {
		require.Equal(t, types.ReplicationStatusFailed, got[dest].Status, "%s: %+v", dest, got[dest])
		require.Equal(t, engine.ReplicationAccessDenied, aws.ToString(got[dest].FailureCode), dest)
	}

	secrets(`{"username":"replicator","accessToken":"pw-replicator"}`, "secrets", "put", regionSecret)
	secrets(`{"username":"replicator","accessToken":"not-the-password"}`, "secrets", "put", acctSecret)
	pushReplRandom(t, f.src.addr, "prod/app:v1")
	got = f.waitReplicated(t, "prod/app", "v1", 2)
	require.Equal(t, types.ReplicationStatusComplete, got[regionDest].Status, "%+v", got[regionDest])
	require.Equal(t, types.ReplicationStatusFailed, got[acctDest].Status, "%+v", got[acctDest])
	require.Equal(t, engine.ReplicationAccessDenied, aws.ToString(got[acctDest].FailureCode))
	sameContent(t, f.src.addr, f.region.addr, "prod/app", ":v1")
	require.NotContains(t, catalog(t, f.acct.addr), "prod/app", "nothing created with the wrong password")

	// The secret corrected, a retry reads it and sends the image.
	secrets(`{"username":"replicator","accessToken":"pw-replicator"}`, "secrets", "put", acctSecret)
	secrets("", "replication", "retry", "--destination", acctDest)
	got = f.waitReplicated(t, "prod/app", "v1", 2)
	require.Equal(t, types.ReplicationStatusComplete, got[acctDest].Status, "%+v", got[acctDest])
	sameContent(t, f.src.addr, f.acct.addr, "prod/app", ":v1")
}
