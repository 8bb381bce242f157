#!/bin/sh
# Install the Debian 12 packages mailwarden builds against and tests with.
# Run as root.  Quiet unless something fails.
set -e
PKGS="build-essential autoconf autoconf-archive automake libtool pkg-config
 libmilter-dev libspf2-dev libopendkim-dev libopendmarc-dev libc-ares-dev
 libhiredis-dev libssl-dev libinih-dev libmicrohttpd-dev libidn2-dev libpsl-dev libjansson-dev zlib1g-dev
 libxml2-utils
 postfix swaks miltertest nsd redis-server redis-sentinel dnsutils publicsuffix
 python3 python3-dnslib python3-yaml python3-dkim python3-authres opendkim-tools
 clang libclang-rt-14-dev
 iproute2 procps openssl
 debhelper lintian debootstrap systemd
 prometheus chromium curl"
missing=""
for p in $PKGS; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" ||
	    missing="$missing $p"
done
[ -z "$missing" ] && exit 0
if [ "$(id -u)" != 0 ]; then
	echo "install-deps: need root to install:$missing" >&2
	exit 1
fi
# Postfix: install only, no system mail configuration (tests run their own).
echo "postfix postfix/main_mailer_type select No configuration" |
    debconf-set-selections
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >/dev/null
# Do not let package scripts start system daemons (nsd on :53, redis, postfix).
if [ ! -e /usr/sbin/policy-rc.d ]; then
	printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
	chmod +x /usr/sbin/policy-rc.d
	trap 'rm -f /usr/sbin/policy-rc.d' EXIT
fi
apt-get install -y -qq --no-install-recommends $missing >/dev/null
