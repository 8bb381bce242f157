#!/bin/sh
# Install what is needed, build with AddressSanitizer + UBSan, and run the
# whole test suite (unit, golden scenarios, conformance corpora, miltertest
# and Postfix integration).  From a fresh clone, as root:
#	sh scripts/test.sh
set -e
cd "$(dirname "$0")/.."
sh scripts/install-deps.sh
autoreconf -fi >/dev/null 2>&1
./configure -q --enable-sanitizers
make -j"$(nproc)" >/dev/null
# detect_leaks: the suite also checks that we free what we allocate.
export ASAN_OPTIONS="detect_leaks=1:abort_on_error=0:halt_on_error=1"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
if ! make -j1 check; then
	for f in test-suite.log; do [ -f "$f" ] && cat "$f"; done
	exit 1
fi
