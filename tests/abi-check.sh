#!/bin/sh
# SPDX-License-Identifier: MIT
#
# abi-check.sh: the exported ABI is exactly what the headers promise.
#
# Compares three lists of names:
#   declared  every function (or object) marked WEFT_API in include/weft.h
#             and include/weft/*.h
#   listed    every name in a global: section of src/libweft.map
#   exported  `nm -D --defined-only` of the built .libs/libweft.so
# and fails, naming each name to add or remove, when declared != listed,
# when the library exports a name the map does not list, or when the map
# lists a name the library does not define. Also fails when a version node
# is not sorted (LC_ALL=C), so merges of new names stay easy to read.
#
# Run by `make check` from the build directory; srcdir comes from the
# environment (automake sets it), the library from .libs/ there.
# Exit 0 pass, 1 fail, 77 skip (no shared library or no nm).

set -u
LC_ALL=C
export LC_ALL

srcdir=${srcdir:-.}
map=$srcdir/src/libweft.map
lib=${WEFT_ABI_LIB:-.libs/libweft.so}
tmp=$(mktemp -d) || exit 1
trap 'rm -rf "$tmp"' EXIT
status=0

fail() {
	echo "abi-check: FAIL: $*"
	status=1
}

# Print "$2" then each line of file $3 indented, and fail, if $3 is not
# empty. $1 is the failure summary.
report() {
	if [ -s "$3" ]; then
		fail "$1"
		echo "  $2"
		sed 's/^/    /' "$3"
	fi
}

[ -r "$map" ] || { fail "$map not found"; exit 1; }

# --- declared: one declaration per WEFT_API, up to its ';' or '{' --------
# Join the declaration's lines, drop the WEFT_* macros and attributes, then
# take the identifier before the first '(' (a function) or the last one (an
# object).
awk '
	/^[ \t]*#/ { next }
	!decl && /(^|[^A-Za-z0-9_])WEFT_API([^A-Za-z0-9_]|$)/ { decl = 1; text = "" }
	decl {
		text = text " " $0
		if ($0 !~ /[;{]/)
			next
		decl = 0
		sub(/[;{].*/, "", text)
		sub(/.*WEFT_API/, "", text)
		gsub(/__attribute__[ \t]*\(\([^()]*(\([^()]*\)[^()]*)*\)\)/, " ", text)
		gsub(/WEFT_[A-Z0-9_]+/, " ", text)
		if (match(text, /[A-Za-z_][A-Za-z0-9_]*[ \t]*\(/)) {
			name = substr(text, RSTART, RLENGTH)
			sub(/[ \t]*\($/, "", name)
		} else {
			sub(/[ \t]*(\[[^]]*\])?[ \t]*(=.*)?$/, "", text)
			n = split(text, w, /[^A-Za-z0-9_]+/)
			name = w[n]
		}
		if (name == "")
			printf "abi-check: cannot parse: %s\n", text > "/dev/stderr"
		else
			print name
	}
' "$srcdir"/include/weft.h "$srcdir"/include/weft/*.h | sort -u >"$tmp/declared"

# --- listed: the global: names of every version node -----------------------
awk '
	# Drop comments: /* */ (possibly over several lines) and #.
	incomment { if (!sub(/.*\*\//, "")) next; incomment = 0 }
	{ gsub(/\/\*([^*]|\*+[^*\/])*\*+\//, ""); sub(/#.*/, "") }
	/\/\*/ { sub(/\/\*.*/, ""); incomment = 1 }
	{
		gsub(/[{};]/, " & ")
		n = split($0, w, /[ \t]+/)
		for (i = 1; i <= n; i++) {
			t = w[i]
			if (t == "" || t == ";")
				continue
			if (t == "{") {
				node = last; inside = 1; where = ""
			} else if (t == "}") {
				inside = 0
			} else if (t == "global:" || t == "local:") {
				where = t
			} else if (inside && where == "global:") {
				print node, t
			} else {
				last = t
			}
		}
	}
' "$map" >"$tmp/nodes"
awk '{ print $2 }' "$tmp/nodes" | sort -u >"$tmp/listed"

for node in $(awk '{ print $1 }' "$tmp/nodes" | uniq); do
	awk -v n="$node" '$1 == n { print $2 }' "$tmp/nodes" >"$tmp/node"
	sort -c "$tmp/node" 2>/dev/null ||
		fail "$map: the names in $node are not sorted (LC_ALL=C sort)"
done
grep -n '[*?]' "$tmp/listed" >"$tmp/globs"
report "$map lists patterns, not names" "list each name instead of:" \
	"$tmp/globs"

comm -23 "$tmp/declared" "$tmp/listed" >"$tmp/add"
comm -13 "$tmp/declared" "$tmp/listed" >"$tmp/remove"
report "WEFT_API declarations missing from $map" \
	"add to src/libweft.map (WEFT_API in include/):" "$tmp/add"
report "$map lists names no header declares WEFT_API" \
	"remove from src/libweft.map (or declare WEFT_API):" "$tmp/remove"

# --- exported: what the linked library really exports ----------------------
if ! command -v nm >/dev/null 2>&1; then
	echo "abi-check: nm not found: exported symbols not checked"
	[ $status -eq 0 ] && status=77
elif [ ! -f "$lib" ]; then
	echo "abi-check: $lib not built (--disable-shared?): exports not checked"
	[ $status -eq 0 ] && status=77
else
	# Type A is the version node itself (WEFT_0.1); strip @@WEFT_0.1.
	nm -D --defined-only "$lib" |
		awk '$2 != "A" { sub(/@.*/, "", $3); print $3 }' |
		sort -u >"$tmp/exported"
	comm -23 "$tmp/exported" "$tmp/listed" >"$tmp/extra"
	comm -13 "$tmp/exported" "$tmp/listed" >"$tmp/undefined"
	report "$lib exports names $map does not list" \
		"hide these (static, or drop WEFT_API) or list them:" \
		"$tmp/extra"
	report "$map lists names $lib does not define" \
		"define these or remove them from src/libweft.map:" \
		"$tmp/undefined"
fi

[ $status -eq 0 ] &&
	echo "abi-check: ok: $(wc -l <"$tmp/listed") names declared, listed and exported"
exit $status
