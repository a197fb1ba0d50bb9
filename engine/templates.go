package engine

// Repository creation templates: the pure part (matching and validation).
//
// A template's prefix matches the repositories *under* it, whole path
// components only, as ECR documents ("a prefix of prod applies to all
// repositories beginning with prod/"): prefix "prod" matches "prod/x" and
// "prod/team/x", not "production/x" and not "prod" itself (a repository
// named exactly "prod" gets the ROOT template, or none). The longest
// matching prefix wins; ROOT is the fallback. A prefix may be written with
// a trailing "/" ("prod/" is the same template as "prod").

import (
	"fmt"
	"strings"
)

const maxTemplateDescriptionLen = 256

// normalizeTemplatePrefix drops the one trailing slash a prefix may have.
func normalizeTemplatePrefix(p string) string {
	if p != RootPrefix {
		p = strings.TrimSuffix(p, "/")
	}
	return p
}

// matchTemplate returns the template that applies to a repository named
// repo created for the scenario appliedFor (an AppliedFor* constant): among
// the templates whose AppliedFor lists appliedFor, the one with the
// longest prefix that repo is under, else the ROOT template. It returns a
// copy, and false when no template applies.
func matchTemplate(templates []CreationTemplate, repo, appliedFor string) (*CreationTemplate, bool) {
	best, bestLen, root := -1, -1, -1
	for i := range templates {
		t := &templates[i]
		if !appliesFor(t, appliedFor) {
			continue
		}
		p := normalizeTemplatePrefix(t.Prefix)
		if p == RootPrefix {
			if root < 0 {
				root = i
			}
			continue
		}
		if p == "" || len(repo) <= len(p) || !strings.HasPrefix(repo, p) || repo[len(p)] != '/' {
			continue
		}
		if len(p) > bestLen {
			best, bestLen = i, len(p)
		}
	}
	if best < 0 {
		best = root
	}
	if best < 0 {
		return nil, false
	}
	t := templates[best]
	return &t, true
}

func appliesFor(t *CreationTemplate, appliedFor string) bool {
	for _, a := range t.AppliedFor {
		if a == appliedFor {
			return true
		}
	}
	return false
}

// validateTemplate checks a creation template: a prefix that is ROOT or a
// valid repository name (optionally ending in "/"), a description of at
// most 256 characters, one or more known and distinct AppliedFor values,
// and valid settings. Errors wrap ErrInvalidArgument.
func validateTemplate(t CreationTemplate) error {
	if t.Prefix == "" {
		return fmt.Errorf("%w: prefix missing", ErrInvalidArgument)
	}
	if t.Prefix != RootPrefix {
		p := normalizeTemplatePrefix(t.Prefix)
		if err := ValidateRepositoryName(p); err != nil {
			return fmt.Errorf("%w: prefix %q is neither ROOT nor a repository name prefix: %v", ErrInvalidArgument, truncateForError(t.Prefix), err)
		}
	}
	if len(t.Description) > maxTemplateDescriptionLen {
		return fmt.Errorf("%w: description is %d characters, at most %d", ErrInvalidArgument, len(t.Description), maxTemplateDescriptionLen)
	}
	if len(t.AppliedFor) == 0 {
		return fmt.Errorf("%w: appliedFor needs at least one of CREATE_ON_PUSH, PULL_THROUGH_CACHE, REPLICATION", ErrInvalidArgument)
	}
	seen := make(map[string]bool, len(t.AppliedFor))
	for i, a := range t.AppliedFor {
		switch a {
		case AppliedForCreateOnPush, AppliedForPullThroughCache, AppliedForReplication:
		default:
			return fmt.Errorf("%w: appliedFor[%d] %q (want CREATE_ON_PUSH, PULL_THROUGH_CACHE or REPLICATION)", ErrInvalidArgument, i, truncateForError(a))
		}
		if seen[a] {
			return fmt.Errorf("%w: appliedFor[%d] %q given twice", ErrInvalidArgument, i, a)
		}
		seen[a] = true
	}
	if err := validateSettings(t.RepositorySettings); err != nil {
		return fmt.Errorf("template %q: %w", truncateForError(t.Prefix), err)
	}
	return nil
}
