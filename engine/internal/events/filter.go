package events

import "strings"

// Filter selects the events an endpoint wants. The zero Filter selects
// every event.
type Filter struct {
	// DetailTypes selects events of these detail types; empty: all.
	DetailTypes []string
	// RepositoryPrefixes selects events of repositories whose names
	// start with one of these (a plain string prefix: "team-a/" selects
	// team-a/app, "team-a" also team-ab); empty: all.
	RepositoryPrefixes []string
}

// Match reports whether the filter selects an event of detail type dt
// about repository repo.
func (f Filter) Match(dt, repo string) bool {
	if len(f.DetailTypes) > 0 {
		ok := false
		for _, t := range f.DetailTypes {
			ok = ok || t == dt
		}
		if !ok {
			return false
		}
	}
	if len(f.RepositoryPrefixes) == 0 {
		return true
	}
	for _, p := range f.RepositoryPrefixes {
		if strings.HasPrefix(repo, p) {
			return true
		}
	}
	return false
}
