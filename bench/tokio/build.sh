# SPDX-License-Identifier: MIT
#
# bench/tokio/build.sh: the build of bench/tokio, shared by bench/compare.sh,
# bench/echo-compare.sh, bench/frame-compare.sh and bench/peer-compare.sh.
# Sourced, not run:
#
#   . "$srcdir/bench/tokio/build.sh"
#   tokio_build BUILDDIR SRCDIR PREFIX [frames]
#
# Builds offline with cargo against Debian's packaged crate sources (see
# .cargo/config.toml) in BUILDDIR/bench/tokio-build, a copy of bench/tokio
# plus the target directory, so the source tree is never written to. Without
# "frames": the package of Cargo.toml (tokio-bench, tokio-echo-server; needs
# librust-tokio-dev); with it: that of frames/Cargo.toml
# (tokio-frame-echo-server, tokio-peer-bench; needs librust-tokio-util-dev
# too), a package of its own so that the first builds without tokio-util.
# Progress lines start with "PREFIX: ". Sets tokio_dir to the build
# directory (the binaries of both are in $tokio_dir/target/release) and
# tokio_skip to why there is nothing to run (cargo or the crates missing,
# the build failed: then the log's tail is on stderr), or to "" on success.

tokio_registry=/usr/share/cargo/registry # as in .cargo/config.toml

tokio_build() {
	tokio_skip=
	tokio_dir=
	_tb_src=$2/bench/tokio
	_tb_need=librust-tokio-dev
	[ "${4:-}" = frames ] &&
		_tb_need="librust-tokio-dev librust-tokio-util-dev"
	if ! command -v cargo >/dev/null 2>&1; then
		tokio_skip="cargo not found (apt-get install cargo $_tb_need)"
		return
	fi
	if ! ls -d "$tokio_registry"/tokio-1.* >/dev/null 2>&1; then
		tokio_skip="librust-tokio-dev not installed (apt-get install $_tb_need cargo)"
		return
	fi
	_tb_pkg=.
	if [ "${4:-}" = frames ]; then
		_tb_pkg=frames
		for _tb_c in tokio-util-0.7 futures-util-0.3 bytes-1.; do
			if ! ls -d "$tokio_registry/$_tb_c"* >/dev/null 2>&1; then
				tokio_skip="crate ${_tb_c%-*} not in $tokio_registry (apt-get install librust-tokio-util-dev librust-futures-util-dev)"
				return
			fi
		done
	fi
	if [ ! -f "$_tb_src/$_tb_pkg/Cargo.toml" ]; then
		tokio_skip="$_tb_src/$_tb_pkg/Cargo.toml missing"
		return
	fi

	# Build a copy: cargo writes Cargo.lock next to Cargo.toml and finds
	# .cargo/config.toml from its working directory. Files are copied
	# only when they changed, so cargo's freshness checks still hold.
	_tb_dir=$1/bench/tokio-build
	mkdir -p "$_tb_dir/src" "$_tb_dir/frames" "$_tb_dir/.cargo" || {
		tokio_skip="cannot create $_tb_dir"
		return
	}
	_tb_dir=$(cd "$_tb_dir" && pwd)
	echo '*' >"$_tb_dir/.gitignore"
	for _tb_f in Cargo.toml src/main.rs src/echo_server.rs src/server.rs \
	    src/cli.rs \
	    frames/Cargo.toml src/frame_echo_server.rs src/peer_bench.rs \
	    .cargo/config.toml; do
		if ! cmp -s "$_tb_src/$_tb_f" "$_tb_dir/$_tb_f"; then
			cp "$_tb_src/$_tb_f" "$_tb_dir/$_tb_f" || {
				tokio_skip="cannot copy $_tb_f to $_tb_dir"
				return
			}
		fi
	done
	# Resolve afresh each time: a lock written by one cargo (format v4
	# from cargo >= 1.83) is unreadable to another (Debian's 1.63).
	rm -f "$_tb_dir/$_tb_pkg/Cargo.lock"

	_tb_name=bench/tokio
	[ "$_tb_pkg" = . ] || _tb_name=bench/tokio/$_tb_pkg
	_tb_log=$_tb_dir/build-$_tb_pkg.log
	[ "$_tb_pkg" = . ] && _tb_log=$_tb_dir/build.log
	echo "$3: building $_tb_name ($(cargo --version 2>/dev/null))"
	_tb_t0=$(date +%s)
	# .cargo/config.toml is found from frames/ too: cargo looks upwards.
	if ! (cd "$_tb_dir/$_tb_pkg" && unset MAKEFLAGS MFLAGS &&
	      CARGO_TARGET_DIR=$_tb_dir/target cargo build --release --offline) \
	    >"$_tb_log" 2>&1; then
		tokio_skip="cargo build of $_tb_name failed (log: $_tb_log)"
		tail -n 15 "$_tb_log" | sed "s/^/$3:   /" >&2
		return
	fi
	echo "$3: $_tb_name built in $(($(date +%s) - _tb_t0)) s"
	tokio_dir=$_tb_dir
}
