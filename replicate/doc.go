// Package replicate sends what the engine's replication queue holds to
// other registries over the OCI Distribution API: for each claimed job,
// the image (an index's children first, each image's config and layers,
// then its manifest by digest), then its referrers, then the tag, if the
// source's tag still names the image. It asks the destination before it
// sends: a blob the destination has (HEAD), or can mount from another of
// its repositories (POST ?mount= without from), is not sent; a manifest
// it has is not sent again, nor anything under it.
//
// The engine owns the queue, the retries and the statuses
// (engine.ClaimReplication, engine.FinishReplication); this package owns
// the wire. Every request carries HeaderSource, which a Berth destination
// honours only from an identity its policies grant ecr:ReplicateImage
// (docs/replication.md).
package replicate
