// Package gc holds Berth's two ways of reclaiming space, both below the
// engine (package gc reads package index and deletes from package blob; it
// never imports package engine).
//
// Nouns:
//
//   - Policy: an ECR lifecycle policy (ParsePolicy), a list of rules that
//     select images of one repository by tag status, tag prefixes or tag
//     patterns and expire them by count or age.
//   - Image: a top-level manifest of a repository (not an index child, not a
//     referrer of another manifest there) with its tags and push and pull
//     times. Policy.Evaluate is a pure function from images to Expiry
//     values; Closure extends a set of expired images with the referrers and
//     index children that go with them.
//   - Collector: one online mark-and-sweep collection of blobs. Plan marks
//     every blob some manifest references and lists the unreferenced blob
//     records, orphan files and stale upload sessions older than the grace
//     period; Execute sweeps them one by one under the engine's digest lock,
//     re-checking the write barrier (Shade) first. docs/gc.md states the
//     protocol and why it is safe while pushes go on.
//   - Fsck: a consistency check of the whole store: blob files against
//     records (and optionally their digests), every reference resolvable,
//     orphans listed.
package gc
