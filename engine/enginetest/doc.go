// Package enginetest helps tests of packages that use the engine: a
// store opened in a temporary directory and closed at the end of the
// test, images pushed in one call, a manual clock that only the test
// moves, and a key provider the test can take away.
//
// It is for tests only; it imports testing.
package enginetest
