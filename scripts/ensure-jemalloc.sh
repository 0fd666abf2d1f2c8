#!/usr/bin/env bash
# Run before the server and the tests (npm's "prestart" and "pretest"): the Demucs child runs ~10%
# faster with jemalloc preloaded (src/separation/jemalloc.ts). Installs Debian's libjemalloc2 with
# apt when it is missing and we may (root); otherwise says so and goes on: without it the child uses
# glibc malloc, slower but the same output.
[ "$(uname -s)" = Linux ] || exit 0
[ "${STEMSCRIBE_JEMALLOC-unset}" != unset ] && exit 0 # chosen by hand (a path, or 0 for off)
cd "$(dirname "$0")/.."
# found where the child would look for it (findJemalloc), so the two cannot disagree
node_modules/.bin/bun -e 'import { findJemalloc } from "./src/separation/jemalloc"; process.exit(findJemalloc() ? 0 : 1)' && exit 0
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  echo "installing libjemalloc2 for faster separation (apt-get)…" >&2
  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libjemalloc2 >/dev/null; } && exit 0
fi
echo "no libjemalloc.so.2: separation runs with glibc malloc, ~10% slower ('apt-get install libjemalloc2' to fix)" >&2
exit 0
