package osv

import (
	"errors"
	"fmt"
	"strings"

	cvss20 "github.com/pandatix/go-cvss/20"
	cvss30 "github.com/pandatix/go-cvss/30"
	cvss31 "github.com/pandatix/go-cvss/31"
	cvss40 "github.com/pandatix/go-cvss/40"
)

// ErrCVSS is returned for a CVSS vector that does not parse.
var ErrCVSS = errors.New("osv: invalid CVSS vector")

// CVSSScore returns the base score of a CVSS severity (0.0 to 10.0),
// computed from its vector by github.com/pandatix/go-cvss.
func CVSSScore(s Severity) (float64, error) {
	switch s.Type {
	case CVSSv2:
		v, err := cvss20.ParseVector(strings.TrimPrefix(s.Score, "CVSS:2.0/"))
		if err != nil {
			return 0, fmt.Errorf("%w: %s %q: %v", ErrCVSS, s.Type, s.Score, err)
		}
		return v.BaseScore(), nil
	case CVSSv3:
		if strings.HasPrefix(s.Score, "CVSS:3.0/") {
			v, err := cvss30.ParseVector(s.Score)
			if err != nil {
				return 0, fmt.Errorf("%w: %s %q: %v", ErrCVSS, s.Type, s.Score, err)
			}
			return v.BaseScore(), nil
		}
		v, err := cvss31.ParseVector(s.Score)
		if err != nil {
			return 0, fmt.Errorf("%w: %s %q: %v", ErrCVSS, s.Type, s.Score, err)
		}
		return v.BaseScore(), nil
	case CVSSv4:
		v, err := cvss40.ParseVector(s.Score)
		if err != nil {
			return 0, fmt.Errorf("%w: %s %q: %v", ErrCVSS, s.Type, s.Score, err)
		}
		return v.Score(), nil
	}
	return 0, fmt.Errorf("%w: %s is not a CVSS type", ErrCVSS, s.Type)
}
