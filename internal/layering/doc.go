// Package layering holds the test that keeps Berth's imports pointing
// down (design.md, "The shape"), in the manner of pebble's internal lint:
// it runs `go list` over the module and checks every import, of code and
// of tests, against these rules.
//
//   - Every top-level directory has a layer, lowest first: internal;
//     crypt; blob and index; gc; engine; and the consumers registryd,
//     fuse, bench and examples. An import from one top-level tree into
//     another goes to a lower layer (so blob, index, crypt and gc never
//     import engine, registryd or fuse).
//   - The consumers use engine and nothing below it: besides their own
//     packages they import engine (and its test kit, engine/enginetest)
//     and internal/... leaf helpers, plus the few sideways edges listed
//     with their reasons in sidewaysImports (registryd's mount command
//     mounts the FUSE view; the bench harness runs the daemon).
//   - internal/... packages are leaves: they import nothing of Berth,
//     except that a test-server kit named <name>test (internal/pgtest,
//     internal/miniotest) uses internal/testenv, the one policy for
//     what a machine lacks.
//   - Within a tree no import runs upward: a package never imports one of
//     its ancestors (engine's internals never import engine), except a
//     test kit named <name>test, built on the package it serves as
//     net/http/httptest is on net/http, and the few consumers of their
//     parent's output listed with their reasons in upwardImports
//     (scan/sbom writes SBOMs from scan's inventories; blob/s3 implements
//     blob's roles over blob's format, reader and writer).
//
// A violation fails the test with the importer, the import and the rule.
// A new top-level directory needs a layer here, and a reason in docs/.
package layering
