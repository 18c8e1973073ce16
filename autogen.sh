#!/bin/sh
# Bootstrap the build system. On Debian/Ubuntu, installs the packages the build,
# the tests and the benchmarks need (as root), or prints the exact apt-get line.
set -e
cd "$(dirname "$0")"

# cargo and librust-tokio-dev: the Tokio side of `make demo` (offline crate
# sources from Debian; bench/compare.sh).
pkgs="autoconf automake libtool pkg-config make gcc liburing-dev libck-dev libcriterion-dev
      cargo librust-tokio-dev"
if command -v dpkg-query >/dev/null 2>&1; then
	missing=""
	for p in $pkgs; do
		dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q "ok installed" ||
			missing="$missing $p"
	done
	if [ -n "$missing" ]; then
		if [ "$(id -u)" = 0 ]; then
			echo "autogen.sh: installing:$missing"
			apt-get update -qq
			DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing
		else
			echo "autogen.sh: missing packages. Run:" >&2
			echo "  sudo apt-get install -y$missing" >&2
			exit 1
		fi
	fi
fi

autoreconf -fi
