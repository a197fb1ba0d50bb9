package s3

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/minio/minio-go/v7"
)

// ownerKey is the object, under the prefix, that names the store owning
// the prefix.
const ownerKey = "OWNER"

// claimOwner makes sure that the prefix belongs to owner: it creates the
// owner object when there is none (a conditional PUT, so that of two
// stores opening an empty prefix at once one wins), and refuses a prefix
// that another store owns. Two stores whose metadata differ must never
// share a prefix: each would collect the other's blobs as orphans.
func (s *Store) claimOwner(ctx context.Context, owner string) error {
	key := s.opts.Prefix + ownerKey
	rctx, cancel := s.request(ctx)
	defer cancel()
	body := strings.NewReader(owner + "\n")
	sum, err := putChecksum(body)
	if err != nil {
		return err
	}
	opts := minio.PutObjectOptions{ContentType: "text/plain", DisableContentSha256: true, UserMetadata: sum}
	opts.SetMatchETagExcept("*")
	_, err = s.client.PutObject(rctx, s.opts.Bucket, key, body, body.Size(), opts)
	if err == nil {
		return nil
	}
	if code := minio.ToErrorResponse(err).Code; code != "PreconditionFailed" {
		return mapErr(err, "claiming "+key)
	}
	obj, err := s.client.GetObject(rctx, s.opts.Bucket, key, minio.GetObjectOptions{})
	if err != nil {
		return mapErr(err, "reading "+key)
	}
	defer obj.Close()
	b, err := io.ReadAll(io.LimitReader(obj, 1024))
	if err != nil {
		return mapErr(err, "reading "+key)
	}
	if got := string(bytes.TrimSpace(b)); got != owner {
		return fmt.Errorf("%w: bucket %s prefix %q belongs to store %q, not %q: give each store a prefix of its own", ErrOwned, s.opts.Bucket, s.opts.Prefix, got, owner)
	}
	return nil
}
