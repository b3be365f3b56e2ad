#!/bin/sh
# Makes the golden packages and repository in repo/ with the REAL xbps 0.60.7 (built outside this
# project, see README.md), from the inputs in ../hello and ../hello-doc. golden_test.go prepares the
# same inputs the same way (prepare, below) and compares what build/userpkg writes with these files.
#
#   XBPS=/root/oracle/xbps sh make-golden.sh
set -eu
: "${XBPS:?set XBPS to the prefix xbps 0.60.7 was installed into}"
export PATH="$XBPS/bin:$PATH" LD_LIBRARY_PATH="$XBPS/lib" LC_ALL=C XBPS_TARGET_ARCH=x86_64
here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
epoch=1704164645 # 2024-01-02T03:04:05Z, the templates' date

# prepare copies a template's payload into a destdir as xbps-create wants it (scripts at its top),
# with modes that do not depend on git or the umask, a hard link and an empty folder that git cannot
# carry, and every time set to the template's date (what mage pkg gives every entry).
prepare() { # prepare <input folder> <destdir>
	cp -R "$1/payload" "$2"
	find "$2" -type d -exec chmod 0755 {} +
	find "$2" -type f -exec chmod 0644 {} +
	for s in INSTALL REMOVE INSTALL.msg; do
		if [ -f "$1/$s" ]; then cp "$1/$s" "$2/$s"; fi
	done
	if [ -d "$2/usr/bin" ]; then
		chmod 0755 "$2/usr/bin/hello" "$2/INSTALL" "$2/REMOVE"
		chmod 0640 "$2/etc/hello.conf"
		ln "$2/usr/bin/hello" "$2/usr/bin/hello-again"
		mkdir -p "$2/var/lib/hello"
	fi
	find "$2" -exec touch -h -d "@$epoch" {} +
}

prepare "$here/../hello" "$work/hello"
prepare "$here/../hello-doc" "$work/hello-doc"
rm -rf "$here/repo"
mkdir "$here/repo"
cd "$here/repo"
for v in 1.2.2 1.2.3; do
	xbps-create -q -A x86_64 -n "hello-${v}_1" -B simple-uml \
		-s "Hello & greetings: simple-uml's golden test package" \
		-S "$(printf 'Says hello.\nIts short description holds an ampersand and an apostrophe'"'"'s escaping.')" \
		-l MIT -H https://example.org/hello -m "Test Person <test@example.invalid>" \
		-D "busybox>=1.30_1 hello-doc>=0" -F /etc/hello.conf -P greeter-1.0_1 \
		-R "old-hello>=0" -C "other-hello<2.0_1" \
		--alternatives "greeter:/usr/bin/greeter:/usr/bin/hello" "$work/hello"
done
xbps-create -q -A noarch -n hello-doc-1.0_1 -B simple-uml -s "hello's documentation" "$work/hello-doc"
# The older hello goes in last: xbps-rindex keeps the newest whatever the order.
xbps-rindex -a "$here/repo/hello-1.2.3_1.x86_64.xbps" "$here/repo/hello-doc-1.0_1.noarch.xbps" "$here/repo/hello-1.2.2_1.x86_64.xbps"
xbps-rindex --sign --signedby "simple-uml golden tests (TEST ONLY) <test@example.invalid>" \
	--privkey "$here/test-only-key.pem" "$here/repo"
xbps-rindex --sign-pkg --privkey "$here/test-only-key.pem" "$here"/repo/*.xbps
ls -l "$here/repo"
