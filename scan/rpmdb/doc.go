// Package rpmdb reads the packages installed in an RPM database, in the
// three formats rpm has written: SQLite (rpmdb.sqlite, rpm 4.16 and
// later: Fedora 33+, RHEL 9 and its rebuilds), Berkeley DB hash (Packages:
// RHEL 8 and older, CentOS 7), and rpm's own NDB (Packages.db: SUSE).
//
// It reads from an io.ReaderAt, so a database inside an image is read in
// place through the layer tables, with no copy to a temporary file and no
// database engine: each format is read as far as listing the package
// header blobs needs (the SQLite reader walks one table's b-tree, and
// applies a write-ahead log when one is given; the Berkeley DB reader
// walks the hash pages and their overflow chains; the NDB reader follows
// the slot table), and each blob is parsed as an rpm header for the few
// tags a package is identified by.
//
// Every structure read is bounds-checked: a corrupt or hostile database
// yields ErrCorrupt, never a panic or an unbounded allocation.
package rpmdb
