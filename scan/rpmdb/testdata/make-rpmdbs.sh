#!/usr/bin/env bash
# Builds the RPM databases in this directory with the real rpm tools, so
# the readers are tested on files rpm itself wrote (rpm 4.18 as Debian 12
# packages it: apt-get install rpm db5.3-util sqlite3).
#
# Two small packages are built with rpmbuild from specs named like the
# real ones (openssl-libs 1:3.0.7-16.el9_2 from source openssl, glibc
# 2.34-60.el9 and 2.34-60.el9_2.7 from source glibc) and registered with
# `rpm --justdb` (glibc's header is made larger than a page with a long
# description, so that overflow pages are read):
#   rpmdb.sqlite  rpm's sqlite backend (rpm 4.16+, RHEL 9): openssl-libs
#                 and glibc 2.34-60.el9
#   Packages      Berkeley DB hash (RHEL 8 and older): openssl-libs and
#                 glibc 2.34-60.el9_2.7
# rpm 4.18 reads but no longer writes Berkeley DB, so Packages is made by
# Berkeley DB's own db5.3_load from the header blobs rpm stored in a second
# sqlite database, under the keys rpm uses (the install instance as a
# native-endian 32-bit integer, key 0 holding the last instance).
# Debian's rpm is built without the ndb backend; the tests write an NDB
# database themselves from rpmdb.sqlite's blobs (see ndb_test.go).
set -euo pipefail
out=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

spec() { # name epoch version release subpackage
	cat <<SPEC
Name: $1
$( [ "$2" != 0 ] && echo "Epoch: $2" )
Version: $3
Release: $4
Summary: fixture package named like $1
License: MIT
BuildArch: x86_64
%description
A fixture for Berth's rpmdb tests.
$( [ "$1" = glibc ] && for i in $(seq 400); do echo "A long description line $i, so that the header outgrows a database page."; done )
$( [ -n "$5" ] && printf '%%package %s\nSummary: %s\n%%description %s\nfixture\n%%files %s\n' "$5" "$5" "$5" "$5" )
%files
SPEC
}

build() { # name epoch version release subpackage
	spec "$@" >"$work/$1-$3-$4.spec"
	rpmbuild -bb --quiet --target x86_64 --define "_topdir $work/build" \
		--define '_build_id_links none' "$work/$1-$3-$4.spec" >/dev/null
}
build openssl 1 3.0.7 16.el9_2 libs
build glibc 0 2.34 60.el9 ""
build glibc 0 2.34 60.el9_2.7 ""
rpms=$work/build/RPMS/x86_64

install() { # backend dbpath rpms...
	local backend=$1 db=$2
	shift 2
	mkdir -p "$db"
	rpm --define "_db_backend $backend" --dbpath "$db" --initdb
	rpm --define "_db_backend $backend" --dbpath "$db" -i --justdb --nodeps --noscripts \
		--ignorearch --ignoreos --nosignature --nodigest "$@"
}
install sqlite "$work/sqlite" "$rpms/openssl-libs-3.0.7-16.el9_2.x86_64.rpm" "$rpms/glibc-2.34-60.el9.x86_64.rpm"
install sqlite "$work/fixed" "$rpms/openssl-libs-3.0.7-16.el9_2.x86_64.rpm" "$rpms/glibc-2.34-60.el9_2.7.x86_64.rpm"
cp "$work/sqlite/rpmdb.sqlite" "$out/rpmdb.sqlite"

# Berkeley DB: db_load's printable input, keys as little-endian uint32.
le32() { printf '%02x%02x%02x%02x' $(($1 & 255)) $(($1 >> 8 & 255)) $(($1 >> 16 & 255)) $(($1 >> 24 & 255)); }
{
	printf 'VERSION=3\nformat=bytevalue\ntype=hash\nHEADER=END\n'
	last=0
	while IFS='|' read -r hnum hex; do
		printf ' %s\n %s\n' "$(le32 "$hnum")" "$(echo "$hex" | tr 'A-F' 'a-f')"
		last=$hnum
	done < <(sqlite3 "$work/fixed/rpmdb.sqlite" 'SELECT hnum, hex(blob) FROM Packages ORDER BY hnum')
	printf ' %s\n %s\n' "$(le32 0)" "$(le32 "$last")"
	printf 'DATA=END\n'
} >"$work/packages.dump"
rm -f "$out/Packages"
db5.3_load -f "$work/packages.dump" "$out/Packages"
ls -l "$out/rpmdb.sqlite" "$out/Packages"

# A write-ahead log with a committed transaction not yet checkpointed:
# sqlite3 deletes glibc's row in WAL mode and is killed before it closes
# (a close would checkpoint the log into the database).
mkdir -p "$out/wal"
cp "$out/rpmdb.sqlite" "$work/wal.sqlite"
sqlite3 "$work/wal.sqlite" 'PRAGMA journal_mode=WAL;' >/dev/null
sqlite3 "$work/wal.sqlite" <<SQL >/dev/null 2>&1 || true
PRAGMA wal_autocheckpoint=0;
DELETE FROM Packages WHERE hnum = (SELECT hnum FROM Packages WHERE length(blob) > 4096);
.system kill -9 \$PPID
SQL
cp "$work/wal.sqlite" "$out/wal/rpmdb.sqlite"
cp "$work/wal.sqlite-wal" "$out/wal/rpmdb.sqlite-wal"
ls -l "$out/wal"
