package cli

import (
	"fmt"
	"net/url"
	"os"
	"strconv"
	"strings"

	"github.com/berthstore/berth/engine"
)

// ParseBlobStore reads the --blob-store setting: "" is the file store
// (nil); s3://HOST[:PORT]/BUCKET[/PREFIX][?tls=BOOL&region=R] an
// S3-compatible bucket, with TLS unless tls=false and the credentials of
// AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY when both are set (else the
// AWS chain: shared files, instance role). Credentials in the URL are
// refused: a configuration file or a process list would show them.
func ParseBlobStore(s string) (*engine.ObjectStoreOptions, error) {
	if s == "" {
		return nil, nil
	}
	bad := func(why string) error { return fmt.Errorf("--blob-store %q: %s", s, why) }
	u, err := url.Parse(s)
	if err != nil {
		return nil, bad(err.Error())
	}
	if u.Scheme != "s3" {
		return nil, bad("the scheme is not s3:// (the only object store supported)")
	}
	if u.User != nil {
		return nil, bad("credentials in the URL; set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY instead")
	}
	if u.Host == "" {
		return nil, bad("no endpoint host")
	}
	bucket, prefix, _ := strings.Cut(strings.TrimPrefix(u.Path, "/"), "/")
	if bucket == "" {
		return nil, bad("no bucket")
	}
	if prefix != "" && !strings.HasSuffix(prefix, "/") {
		prefix += "/"
	}
	o := &engine.ObjectStoreOptions{Endpoint: u.Host, Bucket: bucket, Prefix: prefix, TLS: true}
	q := u.Query()
	for k := range q {
		if k != "tls" && k != "region" {
			return nil, bad(fmt.Sprintf("unknown parameter %q (tls, region)", k))
		}
	}
	if v := q.Get("tls"); v != "" {
		if o.TLS, err = strconv.ParseBool(v); err != nil {
			return nil, bad("tls is not true or false")
		}
	}
	o.Region = q.Get("region")
	ak, sk := os.Getenv("AWS_ACCESS_KEY_ID"), os.Getenv("AWS_SECRET_ACCESS_KEY")
	if ak != "" && sk != "" {
		o.AccessKey, o.SecretKey = ak, sk
	}
	return o, nil
}
