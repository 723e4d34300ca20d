#!/bin/sh
# Build and run davmail's comparative benchmark (bench/compare) against
# Apache httpd + mod_dav_fs and Dovecot from Debian, on loopback.
#
#   bench/run.sh                     # full run: 100,000-message folder, 200 MB message
#   bench/run.sh -short              # CI size: 20,000 messages, 20 MB
#   bench/run.sh -runs 9 -out bench/results.json -keep
#
# All arguments go to the compare program (see bench/README.md). When the
# peers are missing and CI=true (or BENCH_INSTALL=1), they are installed
# with apt-get; otherwise the script says what to install and stops.
set -eu

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

need=""
command -v apache2 >/dev/null 2>&1 || need="$need apache2"
command -v dovecot >/dev/null 2>&1 || need="$need dovecot-imapd"
if [ -n "$need" ]; then
	if [ "${CI:-}" = "true" ] || [ "${BENCH_INSTALL:-}" = "1" ]; then
		sudo=""
		[ "$(id -u)" -eq 0 ] || sudo="sudo"
		$sudo apt-get update -q
		# --no-install-recommends: the peers only, not ssl-cert or a
		# running system Apache.
		DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends $need
	else
		echo "bench/run.sh: missing peers:$need" >&2
		echo "install them (apt-get install -y$need) or rerun with BENCH_INSTALL=1" >&2
		exit 2
	fi
fi

bin=$(mktemp -d "${TMPDIR:-/tmp}/davmail-compare.XXXXXX")
trap 'rm -rf "$bin"' EXIT INT TERM
go build -o "$bin/compare" ./bench/compare
"$bin/compare" "$@"
