package ecrapi

import "encoding/base64"

// pageToken is an opaque nextToken: the key of the last item answered,
// so that a page boundary survives deletions between calls.
func pageToken(lastKey string) string {
	return base64.RawURLEncoding.EncodeToString([]byte(lastKey))
}

// parsePageToken decodes a nextToken.
func parsePageToken(tok string) (string, error) {
	b, err := base64.RawURLEncoding.DecodeString(tok)
	if err != nil {
		return "", invalidParameter("nextToken", "the nextToken is not one this registry issued")
	}
	return string(b), nil
}

// pageSize checks maxResults (1 to limit; ECR answers 100 when it is not
// given).
func pageSize(maxResults *int, limit int) (int, error) {
	if maxResults == nil {
		return 100, nil
	}
	switch {
	case *maxResults < 1:
		return 0, invalidParameter("maxResults", minValue, 1)
	case *maxResults > limit:
		return 0, invalidParameter("maxResults", maxValue, limit)
	}
	return *maxResults, nil
}

// paginate returns the page of items (sorted by key) that follows the
// token, at most n, and the token of the next page ("" at the end).
func paginate[T any](items []T, key func(T) string, token string, n int) ([]T, string, error) {
	start := 0
	if token != "" {
		last, err := parsePageToken(token)
		if err != nil {
			return nil, "", err
		}
		for start < len(items) && key(items[start]) <= last {
			start++
		}
	}
	end := min(start+n, len(items))
	page := items[start:end]
	next := ""
	if end < len(items) {
		next = pageToken(key(items[end-1]))
	}
	return page, next, nil
}
