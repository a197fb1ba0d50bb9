package s3

import (
	"time"

	"github.com/minio/minio-go/v7"
)

// timeNow is the clock of commit times.
var timeNow = time.Now

// putOptions are the options of a blob's PUT: the stored bytes are
// already compressed and sealed, so no content type or encoding is
// claimed; parts go in parallel, each with its CRC32C (minio-go adds it
// as a trailer and creates the multipart upload with the algorithm) and
// no payload signature (checksum.go).
func putOptions(partSize uint64) minio.PutObjectOptions {
	return minio.PutObjectOptions{
		ContentType:          "application/octet-stream",
		PartSize:             partSize,
		NumThreads:           4,
		DisableContentSha256: true,
	}
}
