#!/bin/sh
# Bootstrap the build system. On Debian/Ubuntu, checks for the packages the
# library and its tests need: as root, installs them (and the optional ones,
# without failing if those cannot be had); otherwise prints the exact
# apt-get line and stops if a required one is missing.
set -e
cd "$(dirname "$0")"

# Required: build the library (make, make install) and run make check.
required="autoconf automake libtool pkg-config make gcc liburing-dev libck-dev
	  libcriterion-dev"
# Optional: cargo and librust-tokio-dev are the Tokio side of `make demo`
# (offline crate sources from Debian; without them bench/compare.sh says so
# and runs weft alone), librust-tokio-util-dev and librust-futures-util-dev
# that of its frame and peer comparisons (tokio-util's codec; also make
# codec-tokio-diff), golang-go its Go side (the fiber workloads against
# goroutines); clang is the second compiler .ci/run builds with;
# gcc-aarch64-linux-gnu and qemu-user let make check test the AArch64
# fiber context switch on an x86-64 machine; libhttp-parser-dev is the HTTP
# parser of examples/http-hello (built only when configure finds it);
# libclang-rt-dev holds clang's libFuzzer (tests/codec-fuzz.sh).
optional="cargo librust-tokio-dev librust-tokio-util-dev librust-futures-util-dev golang-go clang libclang-rt-dev gcc-aarch64-linux-gnu qemu-user libhttp-parser-dev"

# The packages among "$@" that are not installed, each after a space.
missing() {
	for p in "$@"; do
		dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null |
			grep -q "ok installed" || printf ' %s' "$p"
	done
}

if command -v dpkg-query >/dev/null 2>&1; then
	need=$(missing $required)
	want=$(missing $optional)
	if [ "$(id -u)" = 0 ] && [ -n "$need$want" ]; then
		echo "autogen.sh: installing:$need$want"
		export DEBIAN_FRONTEND=noninteractive
		if [ -n "$need" ]; then
			apt-get update -qq
			apt-get install -y -qq $need
		else
			apt-get update -qq || true
		fi
		# One at a time on failure: a package this release lacks must
		# not keep out the others.
		if [ -n "$want" ] && ! apt-get install -y -qq $want; then
			for p in $want; do
				apt-get install -y -qq "$p" || failed="$failed $p"
			done
		fi
		if [ -n "${failed:-}" ]; then
			echo "autogen.sh: note: optional packages not installed:$failed" >&2
			echo "  (without cargo/tokio or golang-go make demo leaves that side out;" \
			     "without libhttp-parser-dev no examples/http-hello;" \
			     "without libclang-rt-dev no codec fuzzing)" >&2
		fi
	elif [ -n "$need" ]; then
		echo "autogen.sh: missing packages. Run:" >&2
		echo "  sudo apt-get install -y$need" >&2
		[ -z "$want" ] ||
			echo "autogen.sh: note: optional, for the Tokio and Go sides of make demo, clang builds and fuzzing, the AArch64 switch test and examples/http-hello:$want" >&2
		exit 1
	elif [ -n "$want" ]; then
		echo "autogen.sh: note: optional packages not installed:$want" >&2
		echo "  (sudo apt-get install -y$want: the Tokio and Go sides of make demo, clang builds and fuzzing, the AArch64 switch test, examples/http-hello)" >&2
	fi
fi

autoreconf -fi
