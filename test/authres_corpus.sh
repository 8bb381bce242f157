#!/bin/sh
# Authentication-Results conformance (see test/authres_corpus.py).
top_srcdir=${top_srcdir:-$(dirname "$0")/..}
top_builddir=${top_builddir:-$top_srcdir}
exec /usr/bin/python3 "$top_srcdir/test/authres_corpus.py" \
    "$top_builddir/test/authres_id"
