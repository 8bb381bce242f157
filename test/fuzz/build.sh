#!/bin/sh
# Build the libFuzzer harnesses (fuzz_spf, fuzz_session, fuzz_ini; or
# those MW_FUZZ_HARNESSES names) with clang, ASan and UBSan.
#
#	test/fuzz/build.sh [LIBSPF2_SRC]
#
# Without an argument it links the system libspf2 (Debian libspf2-dev):
# that library is not instrumented, so ASan sees its memory errors only
# where they go through libc functions it intercepts (sprintf, memcpy,
# strcpy, ...).  With the path of an unpacked libspf2 source tree
# (apt-get source libspf2, or the upstream 1.2.10 tarball) its files are
# compiled into the harness with the sanitizers too.
#
# Sources come from the source tree; config.h and the harness binary are
# in the build tree ($top_builddir, default: the source tree), so an
# out-of-tree build (make distcheck) works.
#
# Needs: apt-get install clang libclang-rt-14-dev
# Run:	 test/fuzz/fuzz_spf -max_total_time=300 -max_len=4096 \
#	     test/fuzz/corpus test/fuzz/seeds
set -eu
top=$(cd "$(dirname "$0")/../.." && pwd)
build=$(cd "${top_builddir:-$top}" && pwd)
src_fuzz=$top/test/fuzz
out=$build/test/fuzz
mkdir -p "$out"
obj=$(mktemp -d /tmp/fuzz_spf.XXXXXX)
trap 'rm -rf "$obj"' EXIT
CC=${CC:-clang}
SAN="-fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer"
CFLAGS="-g -O1 -std=gnu11 -DHAVE_CONFIG_H -I$build -I$top/lib -I$src_fuzz $SAN"

srcs=""
for f in "$top"/lib/*.c; do
	case $f in */mw_dns.c) continue ;; esac	# stub_dns.c instead
	srcs="$srcs $f"
done
spf_libs=-lspf2
if [ $# -gt 0 ]; then
	src=$(cd "$1" && pwd)
	[ -f "$src/src/libspf2/spf_compile.c" ] || { echo "no libspf2 source in $1" >&2; exit 1; }
	# The autoconf'd config the library expects, written by hand.
	cat > "$obj/config.h" <<'CFG'
#define STDC_HEADERS 1
#define HAVE_STDLIB_H 1
#define HAVE_STRING_H 1
#define HAVE_STRINGS_H 1
#define HAVE_INTTYPES_H 1
#define HAVE_NETDB_H 1
#define HAVE_UNISTD_H 1
#define HAVE_ARPA_NAMESER_H 1
#define HAVE_ARPA_INET_H 1
#define HAVE_NETINET_IN_H 1
#define HAVE_SYS_SOCKET_H 1
#define HAVE_SYS_TYPES_H 1
#define HAVE_SYS_TIME_H 1
#define HAVE_MEMORY_H 1
#define HAVE_RESOLV_H 1
#define HAVE_NS_TYPE 1
#define HAVE_DECL_NS_T_SPF 0
#define HAVE_PTHREAD_H 1
#define TIME_WITH_SYS_TIME 1
#include <errno.h>
CFG
	mkdir -p "$obj/spf"
	for f in "$src"/src/libspf2/*.c; do
		case $f in *windns*|*win32*) continue ;; esac
		# gnu89: its log macros need the GNU variadic form
		$CC -g -O1 -std=gnu89 $SAN -DHAVE_CONFIG_H -I"$obj" -I"$src/src/include" \
		    -include "$obj/config.h" -w -c "$f" \
		    -o "$obj/spf/$(basename "$f" .c).o"
	done
	spf_libs="$obj/spf/*.o -lresolv"
fi
# The library once, instrumented for coverage; then one binary per harness.
mkdir -p "$obj/lib"
for f in $srcs "$src_fuzz/stub_dns.c"; do
	# shellcheck disable=SC2086
	$CC $CFLAGS -fsanitize=fuzzer-no-link $(pkg-config --cflags opendkim hiredis inih openssl libidn2 libpsl) \
	    -c "$f" -o "$obj/lib/$(basename "$f" .c).o"
done
for h in ${MW_FUZZ_HARNESSES:-fuzz_spf fuzz_session fuzz_ini}; do
	# shellcheck disable=SC2086
	$CC $CFLAGS -fsanitize=fuzzer -o "$out/$h" "$src_fuzz/$h.c" "$obj"/lib/*.o \
	    $spf_libs $(pkg-config --libs opendkim hiredis inih openssl libidn2 libpsl) \
	    -lopendmarc -lpthread -lm
	echo "built $out/$h"
done
