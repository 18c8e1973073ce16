# SPDX-License-Identifier: MIT
#
# bench/tokio/build.sh: the build of bench/tokio (tokio-bench and
# tokio-echo-server), shared by bench/compare.sh and bench/echo-compare.sh.
# Sourced, not run:
#
#   . "$srcdir/bench/tokio/build.sh"
#   tokio_build BUILDDIR SRCDIR PREFIX
#
# Builds offline with cargo against Debian's packaged crate sources
# (librust-tokio-dev; see .cargo/config.toml) in BUILDDIR/bench/tokio-build,
# a copy of bench/tokio plus the target directory, so the source tree is
# never written to. Progress lines start with "PREFIX: ". Sets tokio_dir to
# the build directory (the binaries are in $tokio_dir/target/release) and
# tokio_skip to why there is nothing to run (cargo or the crates missing,
# the build failed: then the log's tail is on stderr), or to "" on success.

tokio_registry=/usr/share/cargo/registry # as in .cargo/config.toml

tokio_build() {
	tokio_skip=
	tokio_dir=
	_tb_src=$2/bench/tokio
	if ! command -v cargo >/dev/null 2>&1; then
		tokio_skip="cargo not found (apt-get install cargo librust-tokio-dev)"
		return
	fi
	if ! ls -d "$tokio_registry"/tokio-1.* >/dev/null 2>&1; then
		tokio_skip="librust-tokio-dev not installed (apt-get install librust-tokio-dev cargo)"
		return
	fi
	if [ ! -f "$_tb_src/Cargo.toml" ]; then
		tokio_skip="$_tb_src/Cargo.toml missing"
		return
	fi

	# Build a copy: cargo writes Cargo.lock next to Cargo.toml and finds
	# .cargo/config.toml from its working directory. Files are copied
	# only when they changed, so cargo's freshness checks still hold.
	_tb_dir=$1/bench/tokio-build
	mkdir -p "$_tb_dir/src" "$_tb_dir/.cargo" || {
		tokio_skip="cannot create $_tb_dir"
		return
	}
	_tb_dir=$(cd "$_tb_dir" && pwd)
	echo '*' >"$_tb_dir/.gitignore"
	for _tb_f in Cargo.toml src/main.rs src/echo_server.rs src/server.rs \
	    src/cli.rs .cargo/config.toml; do
		if ! cmp -s "$_tb_src/$_tb_f" "$_tb_dir/$_tb_f"; then
			cp "$_tb_src/$_tb_f" "$_tb_dir/$_tb_f" || {
				tokio_skip="cannot copy $_tb_f to $_tb_dir"
				return
			}
		fi
	done
	# Resolve afresh each time: a lock written by one cargo (format v4
	# from cargo >= 1.83) is unreadable to another (Debian's 1.63).
	rm -f "$_tb_dir/Cargo.lock"

	echo "$3: building bench/tokio ($(cargo --version 2>/dev/null))"
	_tb_t0=$(date +%s)
	if ! (cd "$_tb_dir" && unset MAKEFLAGS MFLAGS &&
	      CARGO_TARGET_DIR=$_tb_dir/target cargo build --release --offline) \
	    >"$_tb_dir/build.log" 2>&1; then
		tokio_skip="cargo build of bench/tokio failed (log: $_tb_dir/build.log)"
		tail -n 15 "$_tb_dir/build.log" | sed "s/^/$3:   /" >&2
		return
	fi
	echo "$3: bench/tokio built in $(($(date +%s) - _tb_t0)) s"
	tokio_dir=$_tb_dir
}
