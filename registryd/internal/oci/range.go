package oci

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// byteRange is a satisfiable range [start, start+length) of a blob.
type byteRange struct {
	start, length int64
}

// contentRange is the Content-Range value of r within a blob of size.
func (r byteRange) contentRange(size int64) string {
	return fmt.Sprintf("bytes %d-%d/%d", r.start, r.start+r.length-1, size)
}

// Range parsing errors.
var (
	// errRangeSyntax: the Range header does not parse; RFC 9110 says to
	// ignore it and answer the whole blob.
	errRangeSyntax = errors.New("registryd: malformed range")
	// errRangeUnsatisfiable: no range overlaps the blob (416).
	errRangeUnsatisfiable = errors.New("registryd: range not satisfiable")
)

// maxRanges bounds the ranges of one request (a defence against
// many-small-ranges amplification).
const maxRanges = 64

// parseRange parses a Range header ("bytes=0-9,20-,-5") against a blob of
// size bytes (RFC 9110 §14.1.2). It returns the satisfiable ranges in the
// order asked; ranges that do not overlap the blob are dropped, and if
// none remains it returns errRangeUnsatisfiable. A header that does not
// parse returns errRangeSyntax.
func parseRange(header string, size int64) ([]byteRange, error) {
	if header == "" {
		return nil, nil
	}
	spec, ok := strings.CutPrefix(header, "bytes=")
	if !ok {
		return nil, errRangeSyntax
	}
	parts := strings.Split(spec, ",")
	if len(parts) > maxRanges {
		return nil, errRangeSyntax
	}
	var out []byteRange
	for _, p := range parts {
		p = strings.TrimSpace(p)
		if p == "" {
			continue
		}
		first, last, ok := strings.Cut(p, "-")
		if !ok {
			return nil, errRangeSyntax
		}
		first, last = strings.TrimSpace(first), strings.TrimSpace(last)
		var r byteRange
		switch {
		case first == "":
			// Suffix range: the last n bytes.
			n, err := parseUint(last)
			if err != nil {
				return nil, errRangeSyntax
			}
			if n == 0 || size == 0 {
				continue
			}
			n = min(n, size)
			r = byteRange{start: size - n, length: n}
		default:
			start, err := parseUint(first)
			if err != nil {
				return nil, errRangeSyntax
			}
			end := size - 1
			if last != "" {
				e, err := parseUint(last)
				if err != nil {
					return nil, errRangeSyntax
				}
				if e < start {
					// RFC 9110 calls it invalid; like net/http (and as the
					// OCI conformance suite expects) answer 416.
					return nil, errRangeUnsatisfiable
				}
				end = min(e, size-1)
			}
			if start >= size {
				continue
			}
			r = byteRange{start: start, length: end - start + 1}
		}
		out = append(out, r)
	}
	if len(out) == 0 {
		if spec == "" || strings.Trim(spec, " ,") == "" {
			return nil, errRangeSyntax
		}
		return nil, errRangeUnsatisfiable
	}
	return out, nil
}

// parseUint parses a non-negative decimal without sign.
func parseUint(s string) (int64, error) {
	if s == "" || s[0] == '+' || s[0] == '-' {
		return 0, errRangeSyntax
	}
	return strconv.ParseInt(s, 10, 64)
}

// parseContentRange parses the Content-Range of an upload chunk: the
// spec's "<start>-<end>", also accepted as "bytes <start>-<end>/<total|*>".
// It returns the first byte's offset and the chunk's length.
func parseContentRange(v string) (start, length int64, err error) {
	s := strings.TrimSpace(v)
	s = strings.TrimPrefix(s, "bytes ")
	s = strings.TrimPrefix(s, "bytes=")
	if i := strings.IndexByte(s, '/'); i >= 0 {
		s = s[:i]
	}
	a, b, ok := strings.Cut(s, "-")
	if !ok {
		return 0, 0, errRangeSyntax
	}
	start, err = parseUint(a)
	if err != nil {
		return 0, 0, errRangeSyntax
	}
	end, err := parseUint(b)
	if err != nil || end < start {
		return 0, 0, errRangeSyntax
	}
	return start, end - start + 1, nil
}
