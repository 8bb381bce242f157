# t/chroot.sh -- a minimal Debian 12 system for tests, in $LAB/root.   -*- sh -*-
#
# For what the host cannot be: a fresh machine to install our .deb into
# (t/deb.sh), a Sendmail (sendmail-bin conflicts with the host's Postfix:
# t/sendmail.sh).  Source after t/lib.sh and lab_init:
#
#     . "$T_DIR/chroot.sh"
#     chroot_require                          # skip_all without root/debootstrap
#     chroot_cache NAME PKG... || exit 1      # once per machine (network)
#     netns_enter "$@"                        # private network from here on
#     lab_init
#     chroot_make NAME PKG...                 # $CHROOT = $LAB/root, PKGs installed
#     chroot_run CMD [ARGS...]                # CMD inside, with /proc
#
# The debootstrap of bookworm (minbase) is made once per machine and kept as
# a tarball in $MW_CHROOT_CACHE (default /var/cache/mailwarden-test); so is
# each NAME's package set (keyed by the package list), so a second run only
# unpacks (a few seconds).  Packages come from the host's Debian mirror
# (first line of /etc/apt/sources*).  Package scripts never start daemons
# (policy-rc.d exits 101) and debconf is non-interactive.
#
# Nothing is mounted in the host's mount namespace: chroot_run mounts /proc in
# a private one (unshare -m), so removing $LAB can never reach outside it.
# Processes started inside run with their cwd under $LAB and are killed by
# lab_cleanup's straggler sweep.

MW_CHROOT_CACHE=${MW_CHROOT_CACHE:-/var/cache/mailwarden-test}
CHROOT=

# chroot_require: skip the test (skip_all) unless we can build a chroot
chroot_require() {
    local c
    if [ "$(id -u)" != 0 ]; then
        skip_all "needs root (chroot, network namespace)"
    fi
    for c in debootstrap unshare nsenter chroot; do
        if ! command -v "$c" >/dev/null; then
            skip_all "$c not installed"
        fi
    done
    return 0
}

_chroot_mirror() {
    local m
    m=$(grep -hsoE 'https?://[^ ]+/debian/?( |$)' /etc/apt/sources.list \
        /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources | head -n 1)
    echo "${m:-http://deb.debian.org/debian}" | sed 's/ *$//'
}

# _chroot_base TARBALL LOG: debootstrap bookworm minbase once (caller holds the lock)
_chroot_base() {
    local tb=$1 log=$2 tmp
    [ -s "$tb" ] && return 0
    tmp=$(mktemp -d "$MW_CHROOT_CACHE/base.XXXXXX")
    note "chroot: debootstrap bookworm (minbase) into the cache, once"
    if ! debootstrap --variant=minbase bookworm "$tmp" "$(_chroot_mirror)" >>"$log" 2>&1; then
        rm -rf "$tmp"
        return 1
    fi
    printf '#!/bin/sh\nexit 101\n' > "$tmp/usr/sbin/policy-rc.d"
    chmod 755 "$tmp/usr/sbin/policy-rc.d"
    printf 'APT::Install-Recommends "false";\nAPT::Install-Suggests "false";\n' \
        > "$tmp/etc/apt/apt.conf.d/90mailwarden-test"
    rm -rf "$tmp/var/cache/apt/archives/"*.deb
    tar -C "$tmp" -cf "$tb.tmp" . && mv "$tb.tmp" "$tb"
    rm -rf "$tmp"
}

# chroot_run CMD [ARGS...]: run CMD in $CHROOT (PATH of the guest, /proc
# mounted, a clean environment).  Returns CMD's status.  With CHROOT_EXEC=1
# (in a subshell) it execs: ( CHROOT_EXEC=1 chroot_run daemon ) & gives the
# daemon's own pid in $!.
chroot_run() {
    [ -n "$CHROOT" ] || lab_die "chroot_run before chroot_make"
    ${CHROOT_EXEC:+exec} unshare --mount --propagation private sh -c '
        mount -t proc proc "$1/proc" || exit 125
        mount -t devpts -o newinstance,ptmxmode=0666 devpts "$1/dev/pts" 2>/dev/null
        r=$1; shift
        exec env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8 \
            DEBIAN_FRONTEND=noninteractive chroot "$r" "$@"' chroot_run "$CHROOT" "$@"
}

# _chroot_tarball NAME PKG...: the cache file for this package set
_chroot_tarball() {
    local name=$1; shift
    echo "$MW_CHROOT_CACHE/bookworm-$name-$(printf '%s\n' "$@" | sort -u | sha256sum | cut -c1-12).tar"
}

# chroot_cache NAME [PKG...]: make sure the cache has the base system plus
# PKGs (apt-get install, no recommends).  Needs the Debian mirror the first
# time, so call it before netns_enter; works without lab_init.
chroot_cache() {
    local name=$1 tb base work log rc=0; shift
    mkdir -p "$MW_CHROOT_CACHE"
    base=$MW_CHROOT_CACHE/bookworm-minbase.tar
    tb=$(_chroot_tarball "$name" "$@")
    [ -s "$tb" ] && return 0
    work=$(mktemp -d "$MW_CHROOT_CACHE/build.XXXXXX")
    log=$work.log
    (
        flock 9
        [ -s "$tb" ] && exit 0
        _chroot_base "$base" "$log" || exit 1
        CHROOT=$work
        tar -C "$CHROOT" -xf "$base"
        if [ $# -gt 0 ]; then
            note "chroot: installing $* into the cache ($tb), once"
            cp /etc/resolv.conf "$CHROOT/etc/resolv.conf" 2>/dev/null
            { chroot_run sh -c 'echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections' &&
              chroot_run apt-get update -q &&
              chroot_run apt-get install -y -q "$@" &&
              chroot_run apt-get clean; } >>"$log" 2>&1 || exit 1
        fi
        tar -C "$CHROOT" -cf "$tb.tmp" . && mv "$tb.tmp" "$tb"
    ) 9>"$MW_CHROOT_CACHE/.lock" || rc=1
    if [ "$rc" != 0 ]; then
        diag "chroot: building $tb failed:"; diag "$(tail -n 30 "$log")"
    fi
    rm -rf "$work" "$log"
    return $rc
}

# chroot_make NAME [PKG...]: $CHROOT = $LAB/root, unpacked from the cache
# (chroot_cache NAME PKG... must have run).  Also sets the guest's name
# (mx.chroot.test) in /etc/hostname, /etc/mailname, /etc/hosts.
chroot_make() {
    _lab_need_init chroot_make
    local name=$1 tb; shift
    tb=$(_chroot_tarball "$name" "$@")
    [ -s "$tb" ] || lab_die "chroot_make: no $tb (call chroot_cache first)"
    CHROOT=$LAB/root
    mkdir -p "$CHROOT"
    tar -C "$CHROOT" -xf "$tb" || lab_die "chroot_make: cannot unpack $tb"
    chmod 0755 "$CHROOT"     # the tarball keeps mktemp's 0700
    echo mx.chroot.test > "$CHROOT/etc/hostname"
    echo mx.chroot.test > "$CHROOT/etc/mailname"
    printf '127.0.0.1 localhost\n127.0.1.1 mx.chroot.test mx\n' > "$CHROOT/etc/hosts"
    return 0
}

# netns_enter "$@": call first (before lab_init): re-runs the test script in
# a private network and UTS namespace (loopback up, hostname mx.chroot.test),
# so that everything it starts -- nsd on port 53, the daemon, the MTA in the
# chroot, swaks -- sees only that loopback, whose extra addresses
# (netns_addr) stand for remote clients.  The chroot shares it.
netns_enter() {
    if [ -z "${_MW_IN_NETNS:-}" ]; then
        _MW_IN_NETNS=1 exec unshare --net --uts -- "$BASH" "$0" "$@"
    fi
    ip link set lo up || skip_all "cannot set up a network namespace"
    hostname mx.chroot.test
}

# netns_addr ADDR...: add ADDR/32 (or /128) to the namespace's loopback
netns_addr() {
    local a
    for a in "$@"; do
        case $a in *:*) ip -6 addr add "$a/128" dev lo nodad ;; *) ip addr add "$a/32" dev lo ;; esac
    done
}
