package cli

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/berthstore/berth/engine"
)

func TestParseBlobStore(t *testing.T) {
	t.Setenv("AWS_ACCESS_KEY_ID", "AK")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "SK")
	for _, tc := range []struct {
		in   string
		want *engine.ObjectStoreOptions
		err  string
	}{
		{in: "", want: nil},
		{in: "s3://s3.example.com/bucket", want: &engine.ObjectStoreOptions{Endpoint: "s3.example.com", Bucket: "bucket", TLS: true, AccessKey: "AK", SecretKey: "SK"}},
		{in: "s3://127.0.0.1:9000/b/reg/one?tls=false&region=eu-west-1", want: &engine.ObjectStoreOptions{Endpoint: "127.0.0.1:9000", Bucket: "b", Prefix: "reg/one/", Region: "eu-west-1", AccessKey: "AK", SecretKey: "SK"}},
		{in: "s3://h/b/p/", want: &engine.ObjectStoreOptions{Endpoint: "h", Bucket: "b", Prefix: "p/", TLS: true, AccessKey: "AK", SecretKey: "SK"}},
		{in: "gs://h/b", err: "scheme"},
		{in: "s3://user:pass@h/b", err: "credentials in the URL"},
		{in: "s3:///b", err: "no endpoint"},
		{in: "s3://h/", err: "no bucket"},
		{in: "s3://h/b?tls=maybe", err: "tls"},
		{in: "s3://h/b?secure=1", err: "unknown parameter"},
		{in: "s3://h/b\x7f", err: "invalid"},
	} {
		t.Run(tc.in, func(t *testing.T) {
			got, err := ParseBlobStore(tc.in)
			if tc.err != "" {
				require.Error(t, err)
				assert.Contains(t, err.Error(), tc.err)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.want, got)
		})
	}
}
