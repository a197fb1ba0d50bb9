package oci

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
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
// many-small-ranges amplification; coalesce is the other).
const maxRanges = 64

// coalesce returns the ranges to serve for ranges asked of a blob of
// size bytes, as RFC 9110 §14.2 lets a server: overlapping and adjacent
// ranges merged, in ascending order, so that no byte is read, decrypted
// or sent twice. whole is true when the ranges asked add up to more than
// the blob (a request such as 64 times "0-"): the server then ignores
// the Range and answers the blob once (200), never a multiple of it.
func coalesce(ranges []byteRange, size int64) (out []byteRange, whole bool) {
	var total int64
	for _, r := range ranges {
		total += r.length
	}
	if total > size {
		return nil, true
	}
	if len(ranges) < 2 {
		return ranges, false
	}
	sorted := slices.Clone(ranges)
	slices.SortFunc(sorted, func(a, b byteRange) int { return cmp.Compare(a.start, b.start) })
	out = sorted[:1]
	for _, r := range sorted[1:] {
		last := &out[len(out)-1]
		end := last.start + last.length // first byte after last
		if r.start <= end {
			last.length = max(end, r.start+r.length) - last.start
			continue
		}
		out = append(out, r)
	}
	return out, false
}

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
