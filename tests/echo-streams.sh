#!/bin/bash
# SPDX-License-Identifier: MIT
#
# echo-streams.sh: both echo servers with --streams (an accept stream and a
# recv stream per connection, weft/multishot.h): the load run of
# tests/echo-fiber.sh (every byte checked, exit report), --idle-timeout
# (tests/echo-idle.sh) and the SIGTERM drain (tests/echo-drain.sh), for
# examples/echo-server and examples/echo-fiber. Run by `make check` from the
# build directory. Exits 0 pass, 1 fail, 77 skip.

[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
set -u
export ECHO_ARGS=--streams
for server in ./examples/echo-server ./examples/echo-fiber; do
	bash "$(dirname "$0")/echo-fiber.sh" "$server" || exit $?
done
exit 0
