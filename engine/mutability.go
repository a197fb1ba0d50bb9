package engine

// Repository settings validation (ECR's constraints) and tag immutability.

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/berthstore/berth/engine/internal/policy"
)

// ECR limits on repository settings.
const (
	// FilterTypeWildcard is the only filterType of a TagFilter.
	FilterTypeWildcard = "WILDCARD"

	maxExclusionFilters   = 5
	maxFilterLen          = 128
	maxResourceTags       = 50
	maxResourceTagKeyLen  = 128
	maxResourceTagValLen  = 256
	maxKMSKeyLen          = 2048
	maxLifecyclePolicyLen = 30720
	maxRepoPolicyLen      = 10240
)

// validateSettings checks s against ECR's constraints. Every error wraps
// ErrInvalidArgument and names the field.
func validateSettings(s RepositorySettings) error {
	withExclusion := false
	switch s.TagMutability {
	case "", TagMutable, TagImmutable:
	case TagImmutableWithExclusion, TagMutableWithExclusion:
		withExclusion = true
	default:
		return fmt.Errorf("%w: imageTagMutability %q (want MUTABLE, IMMUTABLE, IMMUTABLE_WITH_EXCLUSION or MUTABLE_WITH_EXCLUSION)",
			ErrInvalidArgument, truncateForError(s.TagMutability))
	}
	n := len(s.TagMutabilityExclusions)
	switch {
	case withExclusion && (n < 1 || n > maxExclusionFilters):
		return fmt.Errorf("%w: imageTagMutabilityExclusionFilters: %s needs 1 to %d filters, got %d",
			ErrInvalidArgument, s.TagMutability, maxExclusionFilters, n)
	case !withExclusion && n > 0:
		return fmt.Errorf("%w: imageTagMutabilityExclusionFilters are allowed only with IMMUTABLE_WITH_EXCLUSION or MUTABLE_WITH_EXCLUSION",
			ErrInvalidArgument)
	}
	for i, f := range s.TagMutabilityExclusions {
		if f.FilterType != FilterTypeWildcard {
			return fmt.Errorf("%w: imageTagMutabilityExclusionFilters[%d].filterType %q (want WILDCARD)",
				ErrInvalidArgument, i, truncateForError(f.FilterType))
		}
		if !validTagFilter(f.Filter) {
			return fmt.Errorf("%w: imageTagMutabilityExclusionFilters[%d].filter %q must match ^[0-9a-zA-Z._*-]{1,128}$",
				ErrInvalidArgument, i, truncateForError(f.Filter))
		}
	}

	switch s.Encryption.EncryptionType {
	case "", EncryptionAES256:
		if s.Encryption.KMSKey != "" {
			return fmt.Errorf("%w: encryptionConfiguration.kmsKey is allowed only with KMS or KMS_DSSE", ErrInvalidArgument)
		}
	case EncryptionKMS, EncryptionKMSDSSE:
		if len(s.Encryption.KMSKey) > maxKMSKeyLen {
			return fmt.Errorf("%w: encryptionConfiguration.kmsKey longer than %d characters", ErrInvalidArgument, maxKMSKeyLen)
		}
	default:
		return fmt.Errorf("%w: encryptionConfiguration.encryptionType %q (want AES256, KMS or KMS_DSSE)",
			ErrInvalidArgument, truncateForError(s.Encryption.EncryptionType))
	}

	if len(s.ResourceTags) > maxResourceTags {
		return fmt.Errorf("%w: resourceTags: %d tags, at most %d", ErrInvalidArgument, len(s.ResourceTags), maxResourceTags)
	}
	keys := make(map[string]bool, len(s.ResourceTags))
	for i, t := range s.ResourceTags {
		switch {
		case t.Key == "" || len(t.Key) > maxResourceTagKeyLen:
			return fmt.Errorf("%w: resourceTags[%d].Key must be 1 to %d characters", ErrInvalidArgument, i, maxResourceTagKeyLen)
		case len(t.Value) > maxResourceTagValLen:
			return fmt.Errorf("%w: resourceTags[%d].Value longer than %d characters", ErrInvalidArgument, i, maxResourceTagValLen)
		case strings.HasPrefix(strings.ToLower(t.Key), "aws:"):
			return fmt.Errorf("%w: resourceTags[%d].Key %q: the aws: prefix is reserved", ErrInvalidArgument, i, t.Key)
		case keys[t.Key]:
			return fmt.Errorf("%w: resourceTags[%d].Key %q given twice", ErrInvalidArgument, i, t.Key)
		}
		keys[t.Key] = true
	}

	if err := checkPolicyText("lifecyclePolicy", s.LifecyclePolicy, maxLifecyclePolicyLen); err != nil {
		return err
	}
	if err := checkPolicyText("repositoryPolicy", s.RepositoryPolicy, maxRepoPolicyLen); err != nil {
		return err
	}
	if s.RepositoryPolicy != "" {
		if _, err := policy.Parse(s.RepositoryPolicy); err != nil {
			return fmt.Errorf("%w: repositoryPolicy: %w", ErrInvalidArgument, err)
		}
	}
	return nil
}

// checkPolicyText checks a policy's length and that it is JSON; its
// meaning is checked by the code that evaluates it.
func checkPolicyText(field, text string, max int) error {
	if text == "" {
		return nil
	}
	if len(text) > max {
		return fmt.Errorf("%w: %s is %d characters, at most %d", ErrInvalidArgument, field, len(text), max)
	}
	if !json.Valid([]byte(text)) {
		return fmt.Errorf("%w: %s is not valid JSON", ErrInvalidArgument, field)
	}
	return nil
}

// validTagFilter reports whether f matches ^[0-9a-zA-Z._*-]{1,128}$.
func validTagFilter(f string) bool {
	if f == "" || len(f) > maxFilterLen {
		return false
	}
	for i := 0; i < len(f); i++ {
		b := f[i]
		if !isAlnum(b) && b != '.' && b != '_' && b != '*' && b != '-' {
			return false
		}
	}
	return true
}

// tagImmutable reports whether tag, once it exists, may not be moved to
// another digest under settings s:
//
//	"" or MUTABLE              no tag is immutable
//	IMMUTABLE                  every tag is immutable
//	IMMUTABLE_WITH_EXCLUSION   every tag but those matching a filter
//	MUTABLE_WITH_EXCLUSION     only the tags matching a filter
//
// An unknown setting (which validateSettings never lets through) fails
// closed: the tag is immutable.
func tagImmutable(s RepositorySettings, tag string) bool {
	switch s.TagMutability {
	case "", TagMutable:
		return false
	case TagImmutableWithExclusion:
		return !matchAnyTagFilter(s.TagMutabilityExclusions, tag)
	case TagMutableWithExclusion:
		return matchAnyTagFilter(s.TagMutabilityExclusions, tag)
	default: // TagImmutable, and unknown values
		return true
	}
}

func matchAnyTagFilter(filters []TagFilter, tag string) bool {
	for _, f := range filters {
		if wildcardMatch(f.Filter, tag) {
			return true
		}
	}
	return false
}

// wildcardMatch reports whether s matches pattern, in which '*' matches
// any run of characters (also none) and every other byte itself. The
// pattern is cut at its stars into literals: the first must be a prefix,
// the last a suffix, and those between are found left to right, each at
// its leftmost place (greedy leftmost is optimal for '*'-only patterns,
// so there is no backtracking: time O(len(s)·segments) at worst).
func wildcardMatch(pattern, s string) bool {
	star := strings.IndexByte(pattern, '*')
	if star < 0 {
		return pattern == s
	}
	prefix := pattern[:star]
	if !strings.HasPrefix(s, prefix) {
		return false
	}
	s = s[len(prefix):]
	rest := pattern[star+1:]
	last := strings.LastIndexByte(rest, '*')
	suffix := rest
	middle := ""
	if last >= 0 {
		suffix = rest[last+1:]
		middle = rest[:last]
	}
	if len(suffix) > len(s) || !strings.HasSuffix(s, suffix) {
		return false
	}
	s = s[:len(s)-len(suffix)]
	for middle != "" {
		var seg string
		if i := strings.IndexByte(middle, '*'); i >= 0 {
			seg, middle = middle[:i], middle[i+1:]
		} else {
			seg, middle = middle, ""
		}
		if seg == "" {
			continue
		}
		j := strings.Index(s, seg)
		if j < 0 {
			return false
		}
		s = s[j+len(seg):]
	}
	return true
}
