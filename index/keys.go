package index

import (
	"bytes"
	_ "crypto/sha256" // registers sha256 for digest validation
	_ "crypto/sha512" // registers sha512 for digest validation
	"fmt"
	"strings"

	digest "github.com/opencontainers/go-digest"
)

// This file is the one place where the key schema of the index is defined.
// docs/keys.md describes the same schema for readers of the store.
//
// Every key is one prefix byte followed by parts, each part preceded by the
// separator byte 0x00:
//
//	prefix 0x00 part1 0x00 part2 ...
//
// Parts are raw bytes (repository names, tags, digests in their string form
// "alg:hex", upload ids, template prefixes). No part may be empty or contain
// 0x00 (ErrInvalidKey). Because 0x00 sorts below every other byte, all keys
// that share their leading parts are contiguous, and the keys of one
// repository never interleave with those of another repository whose name
// has it as a prefix ("a" versus "a-b" or "a/b"). Inside one prefix, keys sort
// by the bytes of their parts, so tags and repositories list in lexical
// (byte) order, as OCI pagination requires.
//
//	key                                    value                           written by
//	r 0 <repo>                             Repository record               Batch.PutRepository
//	t 0 <repo> 0 <tag>                     tag record (digest)             Batch.PutTag
//	d 0 <repo> 0 <digest> 0 <tag>          empty (reverse tag index)       Batch.PutTag
//	m 0 <repo> 0 <digest>                  Manifest record + payload       Batch.PutManifest
//	b 0 <digest>                           Blob record                     Batch.PutBlob
//	l 0 <repo> 0 <digest>                  link record (linked-at time)    Batch.PutLink
//	L 0 <digest> 0 <repo>                  empty (reverse link index)      Batch.PutLink
//	f 0 <repo> 0 <subject> 0 <referrer>    Referrer record                 Batch.PutReferrer
//	u 0 <upload id>                        Upload record                   Batch.PutUpload
//	T 0 <prefix>                           template record (opaque bytes)  Batch.PutTemplate
//	P 0 <prefix>                           pull-through cache rule (opaque) Batch.PutCacheRule
//	G 0 <name>                             registry setting (opaque)       Batch.PutRegistrySetting
//	v                                      store metadata (schema version) Open
//	c 0 <layer> 0 <chunk>                  layer TOC chunk (index/toc.go)  Batch.PutLayerTOC
//	x 0 <layer>                            derived uncompressed tar digest Batch.PutLayerDerived
//	C 0 <name>                             stored secret (opaque)          Batch.PutSecret
//	U 0 <repo> 0 <tag>                     upstream check (time)           Batch.PutUpstreamCheck
//	p 0 <repo>                             lifecycle preview (opaque)      Batch.PutPreview
//	q 0 <repo> 0 <digest>                  lifecycle preview result (opaque) Batch.PutPreviewResult
//	S 0 <name>                             schedule state (opaque)         Batch.PutSchedule
//	e 0 <seq>                              queued event (index/events.go)  Batch.PutEvent
//	w 0 <webhook> 0 <seq>                  pending delivery                Batch.PutDelivery
//	W 0 <webhook> 0 <seq>                  dead letter                     Batch.PutDeadLetter
//	A 0 <repo> 0 <digest>                  TierJob record (archive tier)   Batch.PutTierJob
//	h 0 <digest>                           gc barrier mark (shade.go)      Batch.PutShade
const (
	prefixRepo     byte = 'r'
	prefixTag      byte = 't'
	prefixTagRev   byte = 'd'
	prefixManifest byte = 'm'
	prefixBlob     byte = 'b'
	prefixLink     byte = 'l'
	prefixLinkRev  byte = 'L'
	prefixReferrer byte = 'f'
	prefixUpload   byte = 'u'
	prefixTemplate byte = 'T'
	prefixCache    byte = 'P'
	prefixRegistry byte = 'G'
	prefixMeta     byte = 'v'
	// prefixSecret is the secret store's sealed secrets (pullthrough.go);
	// prefixUpCheck when each tag of a pull-through cache repository was
	// last checked upstream.
	prefixSecret  byte = 'C'
	prefixUpCheck byte = 'U'
	// prefixPreview, prefixPreviewResult and prefixSchedule are the
	// lifecycle policy previews (one a repository, its results one key
	// each) and the state of the engine's schedules (preview.go).
	prefixPreview       byte = 'p'
	prefixPreviewResult byte = 'q'
	prefixSchedule      byte = 'S'
	// prefixTierJob is the archive tier's jobs (one a manifest).
	prefixTierJob byte = 'A'

	sep byte = 0x00
)

// metaKey is the key of the store metadata record.
var metaKey = []byte{prefixMeta}

// checkPart validates one key part: non-empty and free of 0x00.
func checkPart(kind, s string) error {
	if s == "" {
		return fmt.Errorf("empty %s: %w", kind, ErrInvalidKey)
	}
	if strings.IndexByte(s, sep) >= 0 {
		return fmt.Errorf("%s %q contains 0x00: %w", kind, s, ErrInvalidKey)
	}
	return nil
}

// checkDigest validates a digest used as a key part.
func checkDigest(d digest.Digest) error {
	if err := checkPart("digest", string(d)); err != nil {
		return err
	}
	if wellFormedSHA(string(d)) {
		return nil // the common case, checked without go-digest's regexp
	}
	if err := d.Validate(); err != nil {
		return fmt.Errorf("digest %q: %v: %w", d, err, ErrInvalidKey)
	}
	return nil
}

// wellFormedSHA reports whether s is "sha256:" or "sha512:" followed by
// the right number of lower-case hex digits.
func wellFormedSHA(s string) bool {
	var hex string
	switch {
	case len(s) == 7+64 && s[:7] == "sha256:":
		hex = s[7:]
	case len(s) == 7+128 && s[:7] == "sha512:":
		hex = s[7:]
	default:
		return false
	}
	for i := 0; i < len(hex); i++ {
		if c := hex[i]; (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// makeKey builds prefix 0x00 part1 0x00 part2 ... without validation.
func makeKey(prefix byte, parts ...string) []byte {
	n := 1
	for _, p := range parts {
		n += 1 + len(p)
	}
	k := make([]byte, 0, n)
	k = append(k, prefix)
	for _, p := range parts {
		k = append(k, sep)
		k = append(k, p...)
	}
	return k
}

// spanPrefix returns the key that every key below the given leading parts
// starts with: prefix 0x00 part1 ... 0x00 (the trailing separator included).
func spanPrefix(prefix byte, parts ...string) []byte {
	return append(makeKey(prefix, parts...), sep)
}

// upperBound returns the smallest key greater than every key starting with p.
func upperBound(p []byte) []byte {
	u := bytes.Clone(p)
	for i := len(u) - 1; i >= 0; i-- {
		if u[i] != 0xff {
			u[i]++
			return u[:i+1]
		}
	}
	return nil // p is all 0xff: no upper bound
}

// afterKey returns the seek key for exclusive pagination: the smallest key
// greater than k and every key of which k is a proper prefix would be below;
// since parts never contain 0x00, k+0x00 is greater than k and smaller than
// any other key of the span.
func afterKey(k []byte) []byte {
	return append(bytes.Clone(k), sep)
}

func repoKey(repo string) ([]byte, error) {
	if err := checkPart("repository", repo); err != nil {
		return nil, err
	}
	return makeKey(prefixRepo, repo), nil
}

func tagKey(repo, tag string) ([]byte, error) {
	if err := checkPart("repository", repo); err != nil {
		return nil, err
	}
	if err := checkPart("tag", tag); err != nil {
		return nil, err
	}
	return makeKey(prefixTag, repo, tag), nil
}

func tagRevKey(repo string, d digest.Digest, tag string) ([]byte, error) {
	if err := checkPart("repository", repo); err != nil {
		return nil, err
	}
	if err := checkDigest(d); err != nil {
		return nil, err
	}
	if err := checkPart("tag", tag); err != nil {
		return nil, err
	}
	return makeKey(prefixTagRev, repo, string(d), tag), nil
}

func repoDigestKey(prefix byte, repo string, d digest.Digest) ([]byte, error) {
	if err := checkPart("repository", repo); err != nil {
		return nil, err
	}
	if err := checkDigest(d); err != nil {
		return nil, err
	}
	return makeKey(prefix, repo, string(d)), nil
}

func manifestKey(repo string, d digest.Digest) ([]byte, error) {
	return repoDigestKey(prefixManifest, repo, d)
}

func tierJobKey(repo string, d digest.Digest) ([]byte, error) {
	return repoDigestKey(prefixTierJob, repo, d)
}

func linkKey(repo string, d digest.Digest) ([]byte, error) {
	return repoDigestKey(prefixLink, repo, d)
}

// linkRevKey is the reverse link index entry of the link of d to repo:
// the repositories that link one digest are one short span.
func linkRevKey(repo string, d digest.Digest) ([]byte, error) {
	if err := checkPart("repository", repo); err != nil {
		return nil, err
	}
	if err := checkDigest(d); err != nil {
		return nil, err
	}
	return makeKey(prefixLinkRev, string(d), repo), nil
}

func blobKey(d digest.Digest) ([]byte, error) {
	if err := checkDigest(d); err != nil {
		return nil, err
	}
	return makeKey(prefixBlob, string(d)), nil
}

func referrerKey(repo string, subject, d digest.Digest) ([]byte, error) {
	if err := checkPart("repository", repo); err != nil {
		return nil, err
	}
	if err := checkDigest(subject); err != nil {
		return nil, err
	}
	if err := checkDigest(d); err != nil {
		return nil, err
	}
	return makeKey(prefixReferrer, repo, string(subject), string(d)), nil
}

// upstreamCheckKey is the key of when tag of repo (a pull-through cache
// repository) was last checked against its upstream.
func upstreamCheckKey(repo, tag string) ([]byte, error) {
	if err := checkPart("repository", repo); err != nil {
		return nil, err
	}
	if err := checkPart("tag", tag); err != nil {
		return nil, err
	}
	return makeKey(prefixUpCheck, repo, tag), nil
}

func uploadKey(id string) ([]byte, error) {
	if err := checkPart("upload id", id); err != nil {
		return nil, err
	}
	return makeKey(prefixUpload, id), nil
}

func templateKey(prefix string) ([]byte, error) { return opaqueKey(prefixTemplate, prefix) }

// previewResultKey is the key of the preview result of image d of repo.
func previewResultKey(repo string, d digest.Digest) ([]byte, error) {
	return repoDigestKey(prefixPreviewResult, repo, d)
}

// opaqueKey is the key of a registry-level record of kind (a creation
// template, a pull-through cache rule) named by a repository prefix.
func opaqueKey(kind byte, prefix string) ([]byte, error) {
	if err := checkPart(opaqueKinds[kind]+" prefix", prefix); err != nil {
		return nil, err
	}
	return makeKey(kind, prefix), nil
}

// opaqueKinds names the kinds of registry-level records.
var opaqueKinds = map[byte]string{prefixTemplate: "template", prefixCache: "pull-through cache rule", prefixRegistry: "registry setting",
	prefixSecret: "secret", prefixPreview: "lifecycle preview", prefixPreviewResult: "lifecycle preview result", prefixSchedule: "schedule"}

// splitKey splits a key into its parts (the prefix byte excluded). It
// reports false when the key does not start with prefix followed by 0x00 or
// does not have exactly n parts.
func splitKey(k []byte, prefix byte, n int) ([]string, bool) {
	if len(k) < 2 || k[0] != prefix || k[1] != sep {
		return nil, false
	}
	parts := make([]string, 0, n)
	rest := k[2:]
	for {
		i := bytes.IndexByte(rest, sep)
		if i < 0 {
			parts = append(parts, string(rest))
			break
		}
		parts = append(parts, string(rest[:i]))
		rest = rest[i+1:]
	}
	if len(parts) != n {
		return nil, false
	}
	return parts, true
}
