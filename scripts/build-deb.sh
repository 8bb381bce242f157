#!/bin/sh
# Build the Debian package from this checkout, in a clean copy of it (the
# files git knows about, so a configured or built tree does not leak in):
#	sh scripts/build-deb.sh [OUTDIR]
# Leaves mailwarden_VERSION_ARCH.deb (and .buildinfo, .changes) in OUTDIR
# (default: build-deb/) and prints the .deb's path.  Needs the build
# dependencies (scripts/install-deps.sh installs them, with debhelper).
# DEB_BUILD_OPTIONS=nocheck skips the unit tests run during the build.
set -e
cd "$(dirname "$0")/.."
out=${1:-build-deb}
mkdir -p "$out"
out=$(cd "$out" && pwd)
work=$(mktemp -d /tmp/mailwarden-deb.XXXXXX)
trap 'rm -rf "$work"' EXIT
mkdir "$work/mailwarden"
if [ -d .git ] || [ -f .git ]; then
	git ls-files -z --cached --others --exclude-standard |
	    xargs -0 tar -cf - --no-recursion | tar -C "$work/mailwarden" -xf -
else
	tar --exclude=./build-deb -cf - . | tar -C "$work/mailwarden" -xf -
fi
(cd "$work/mailwarden" && dpkg-buildpackage -us -uc -b) >"$work/build.log" 2>&1 || {
	tail -n 60 "$work/build.log" >&2
	echo "build-deb: dpkg-buildpackage failed" >&2
	exit 1
}
rm -f "$out"/mailwarden_*.deb "$out"/mailwarden-dbgsym_*
for f in "$work"/*.deb "$work"/*.buildinfo "$work"/*.changes "$work"/*.ddeb; do
	[ -e "$f" ] && cp "$f" "$out/"
done
cp "$work/build.log" "$out/build.log"
ls "$out"/mailwarden_*.deb
