#!/bin/sh
# Install what is needed, build with AddressSanitizer + UBSan and -Werror,
# and run both test suites: `make check` (unit, golden scenarios,
# conformance corpora) and `make check-integration` (nsd, Redis, Postfix,
# miltertest, fuzzing).  From a fresh clone, as root:
#	sh scripts/test.sh
# With CI=true (CI sets it) a skipped test is a failure: CI has every
# dependency installed, so a test that stops running must turn it red.
set -e
cd "$(dirname "$0")/.."
sh scripts/install-deps.sh
autoreconf -fi >/dev/null 2>&1
./configure -q --enable-sanitizers --enable-werror
make -j"$(nproc)" >/dev/null
# The Debian package (t/deb.sh installs it into a fresh Debian 12), lintian
# clean of errors.  Its own build runs no tests: the suite below does.
DEB_BUILD_OPTIONS=nocheck sh scripts/build-deb.sh >/dev/null
lintian --fail-on error build-deb/mailwarden_*.deb
# detect_leaks: the suite also checks that we free what we allocate.
export ASAN_OPTIONS="detect_leaks=1:abort_on_error=0:halt_on_error=1"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
status=0
if ! make -j1 check; then
	[ -f test-suite.log ] && cat test-suite.log
	status=1
fi
if ! make -j1 check-integration; then
	[ -f test-suite-integration.log ] && cat test-suite-integration.log
	status=1
fi
# Belt and braces for the skip rule (t/lib.sh and the others already fail
# a skip under CI=true): any SKIP in the results fails CI.
if [ "${CI:-}" = true ]; then
	skips=$(find test t -name '*.trs' -exec grep -l '^:test-result: SKIP' {} + \
	    2>/dev/null || true)
	if [ -n "$skips" ]; then
		echo "CI=true but these tests skipped something:" >&2
		for f in $skips; do
			echo "  ${f%.trs}: $(grep -h -m3 '# SKIP' "${f%.trs}.log" | tr '\n' ' ')" >&2
		done
		status=1
	fi
fi
exit $status
