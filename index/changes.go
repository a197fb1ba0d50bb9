package index

// What a committed batch touched, told to the caches above the index: on
// PostgreSQL, where several processes share one index, each commit that
// touches records a cache holds sends a description of them with
// pg_notify in its own transaction, and every process listening drops
// what it holds of them (changewatch.go). On pebble a store has one
// process, whose writers drop their caches themselves: nothing is sent.

import (
	"bytes"
	"strconv"
	"strings"
)

// Family is a set of the record families a cache may hold.
type Family uint8

// The families a Change names.
const (
	// FamilyRepository is repository records (settings, policies,
	// lifecycle policies, tags, deletion).
	FamilyRepository Family = 1 << iota
	// FamilyTag is tags and their reverse index.
	FamilyTag
	// FamilyManifest is manifest records.
	FamilyManifest
	// FamilyRegistry is registry settings (registry policy, account
	// settings, scanning and replication configuration).
	FamilyRegistry
	// FamilyCacheRule is pull-through cache rules.
	FamilyCacheRule
	// FamilyTemplate is repository creation templates.
	FamilyTemplate

	// familyRepoScoped are the families whose keys start with a
	// repository name.
	familyRepoScoped = FamilyRepository | FamilyTag | FamilyManifest
)

// Change is what one committed batch (or a lost notification) touched.
type Change struct {
	// Families are the families touched.
	Families Family
	// Repositories are the repositories whose repository-scoped records
	// (FamilyRepository, FamilyTag, FamilyManifest) were touched, unless
	// AnyRepository is set.
	Repositories []string
	// AnyRepository: the repository-scoped records of repositories not
	// listed may have been touched (a range deletion across
	// repositories, a description too long to send).
	AnyRepository bool
}

// ChangeAll is the change that touches everything: what a process must
// assume when it may have missed notifications.
var ChangeAll = Change{Families: ^Family(0), AnyRepository: true}

// familyOf is the family of keys with prefix byte p, 0 for one no cache
// holds.
func familyOf(p byte) Family {
	switch p {
	case prefixRepo:
		return FamilyRepository
	case prefixTag, prefixTagRev:
		return FamilyTag
	case prefixManifest:
		return FamilyManifest
	case prefixRegistry:
		return FamilyRegistry
	case prefixCache:
		return FamilyCacheRule
	case prefixTemplate:
		return FamilyTemplate
	}
	return 0
}

// changeBuilder collects a batch's Change key by key.
type changeBuilder struct {
	c     Change
	repos map[string]struct{}
}

// key notes a write of key k.
func (b *changeBuilder) key(k []byte) {
	if len(k) == 0 {
		return
	}
	f := familyOf(k[0])
	if f == 0 {
		return
	}
	b.c.Families |= f
	if f&familyRepoScoped == 0 || b.c.AnyRepository {
		return
	}
	repo, ok := firstPart(k)
	if !ok {
		b.c.AnyRepository = true
		return
	}
	if b.repos == nil {
		b.repos = map[string]struct{}{}
	}
	if _, seen := b.repos[string(repo)]; !seen {
		b.repos[string(repo)] = struct{}{}
		b.c.Repositories = append(b.c.Repositories, string(repo))
	}
}

// keyRange notes a deletion of [lo, hi) (hi nil: to the end).
func (b *changeBuilder) keyRange(lo, hi []byte) {
	if len(lo) == 0 || hi == nil || len(hi) == 0 || hi[0] != lo[0] {
		// Across prefixes: whatever lies between.
		for p := 0; p < 256; p++ {
			if (len(lo) == 0 || byte(p) >= lo[0]) && (hi == nil || len(hi) == 0 || byte(p) <= hi[0]) {
				b.c.Families |= familyOf(byte(p))
			}
		}
		if b.c.Families&familyRepoScoped != 0 {
			b.c.AnyRepository = true
		}
		return
	}
	// Within one prefix: one repository when the range lies inside the
	// span of its keys (prefix 0x00 repo 0x00 ...).
	if repo, ok := firstPart(lo); ok {
		span := lo[:2+len(repo)]
		if len(lo) > len(span) && bytes.Compare(hi, upperBound(append(bytes.Clone(span), sep))) <= 0 {
			b.key(lo)
			return
		}
	}
	f := familyOf(lo[0])
	b.c.Families |= f
	if f&familyRepoScoped != 0 {
		b.c.AnyRepository = true
	}
}

// change is the Change collected; ok false when it touches nothing a
// cache holds.
func (b *changeBuilder) change() (Change, bool) {
	if b.c.AnyRepository {
		b.c.Repositories = nil
	}
	return b.c, b.c.Families != 0
}

// firstPart is the first part of key k (prefix 0x00 part 0x00 ...),
// false when k has none that ends.
func firstPart(k []byte) ([]byte, bool) {
	if len(k) < 3 || k[1] != sep {
		return nil, false
	}
	rest := k[2:]
	if i := bytes.IndexByte(rest, sep); i >= 0 {
		rest = rest[:i]
	}
	return rest, len(rest) > 0
}

// maxChangePayload bounds a notification's payload (PostgreSQL's limit is
// 8000 bytes): a longer description is sent as AnyRepository.
const maxChangePayload = 7000

// encodeChange is c as the payload of sender's notification number
// seq: "sender seq families-hex *" or "sender seq families-hex"
// followed by a line per repository.
func encodeChange(sender string, seq uint64, c Change) string {
	var s strings.Builder
	s.WriteString(sender)
	s.WriteByte(' ')
	s.WriteString(strconv.FormatUint(seq, 10))
	s.WriteByte(' ')
	s.WriteString(hexByte(byte(c.Families)))
	if c.AnyRepository {
		s.WriteString(" *")
		return s.String()
	}
	for _, r := range c.Repositories {
		if s.Len()+1+len(r) > maxChangePayload {
			c.AnyRepository = true
			return encodeChange(sender, seq, c)
		}
		s.WriteByte('\n')
		s.WriteString(r)
	}
	return s.String()
}

// decodeChange parses encodeChange's payload; a payload it cannot read
// is ChangeAll (a newer sender: drop everything rather than miss).
func decodeChange(payload string) (sender string, seq uint64, c Change) {
	head, repos, _ := strings.Cut(payload, "\n")
	fields := strings.Fields(head)
	if len(fields) < 3 || len(fields[2]) != 2 {
		return "", 0, ChangeAll
	}
	sender = fields[0]
	seq, err := strconv.ParseUint(fields[1], 10, 64)
	if err != nil {
		return sender, 0, ChangeAll
	}
	f, ok := unhexByte(fields[2])
	if !ok {
		return sender, seq, ChangeAll
	}
	c.Families = Family(f)
	if len(fields) > 3 {
		c.AnyRepository = true
		return sender, seq, c
	}
	if repos != "" {
		c.Repositories = strings.Split(repos, "\n")
	}
	return sender, seq, c
}

const hexDigits = "0123456789abcdef"

func hexByte(b byte) string { return string([]byte{hexDigits[b>>4], hexDigits[b&15]}) }

func unhexByte(s string) (byte, bool) {
	hi, lo := strings.IndexByte(hexDigits, s[0]), strings.IndexByte(hexDigits, s[1])
	if hi < 0 || lo < 0 {
		return 0, false
	}
	return byte(hi<<4 | lo), true
}
