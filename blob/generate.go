package blob

// The blob files the fuzz targets start from (testdata/blobfiles) are
// written by a program, not by a test: `go generate ./blob` rewrites them.
//go:generate go run ./internal/fuzzfiles -dir testdata/blobfiles
