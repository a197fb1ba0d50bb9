// Package templates matches repository names against the prefixes of
// repository creation templates and pull-through cache rules, as ECR does.
//
// A prefix matches the repositories *under* it, whole path components
// only ("a prefix of prod applies to all repositories beginning with
// prod/"): prefix "prod" matches "prod/x" and "prod/team/x", not
// "production/x" and not "prod" itself (a repository named exactly "prod"
// gets the ROOT template, or none). The longest matching prefix wins;
// ROOT is the fallback. A template prefix may be written with a trailing
// "/" ("prod/" is the same template as "prod").
package templates

import (
	"fmt"
	"strings"

	"github.com/berthstore/berth/engine/internal/errdefs"
	"github.com/berthstore/berth/engine/internal/reference"
)

// Root is the prefix that matches every repository no other prefix
// matches.
const Root = "ROOT"

// NormalizePrefix drops the one trailing slash a prefix may have.
func NormalizePrefix(p string) string {
	if p != Root {
		p = strings.TrimSuffix(p, "/")
	}
	return p
}

// Longest returns the index in prefixes (normalized) of the longest
// prefix that repo is under, else of the first Root, else -1. Among equal
// prefixes the first wins.
func Longest(prefixes []string, repo string) int {
	best, bestLen, root := -1, -1, -1
	for i, p := range prefixes {
		if p == Root {
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
		return root
	}
	return best
}

// CheckPrefix checks a creation template's prefix: ROOT, or a valid
// repository name optionally ending in "/". Errors wrap
// errdefs.ErrInvalidArgument.
func CheckPrefix(p string) error {
	if p == "" {
		return fmt.Errorf("%w: prefix missing", errdefs.ErrInvalidArgument)
	}
	if p == Root {
		return nil
	}
	if err := reference.ValidateRepositoryName(NormalizePrefix(p)); err != nil {
		return fmt.Errorf("%w: prefix %q is neither ROOT nor a repository name prefix: %v", errdefs.ErrInvalidArgument, errdefs.Truncate(p), err)
	}
	return nil
}
