#!/usr/bin/env bash
# scripts/deploy-check.sh: run the Dockerfile's steps natively, since no
# Docker engine runs here.
#
#   1. build the binary with deploy/build.sh, the Dockerfile's build step
#      (static, stripped, version stamped) and check that it is static, as
#      distroless/static needs;
#   2. lay out the image's directories in a temporary root and start the
#      binary with the Dockerfile's ENV (only the paths moved under that
#      root and the port made free), its CMD (serve) and the compose
#      file's initial-admin variables;
#   3. probe it with the HEALTHCHECK command itself ('davmail healthcheck',
#      which derives the URL from the same environment), and /readyz;
#   4. stop it with the STOPSIGNAL (SIGTERM) and expect a clean exit.
#
# Exit status 0 and a last line "deploy-check: OK" when all is well.
# internal/e2e/deploy_test.go runs it; it needs bash, go and coreutils.
set -euo pipefail

cd "$(dirname "$0")/.."
root=$(mktemp -d "${TMPDIR:-/tmp}/davmail-deploy-check.XXXXXX")
pid=
cleanup() {
	if [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null; then
		kill -KILL "$pid" 2>/dev/null || true
	fi
	rm -rf "$root"
}
trap cleanup EXIT
fail() {
	echo "deploy-check: FAIL: $*" >&2
	if [[ -f $root/log ]]; then
		echo "--- davmail output:" >&2
		cat "$root/log" >&2
	fi
	exit 1
}

# 1. The build step.
grep -q 'sh deploy/build.sh /out/davmail' Dockerfile || fail "the Dockerfile no longer builds with deploy/build.sh"
sh deploy/build.sh "$root/davmail" deploy-check || fail "build failed"
if command -v ldd >/dev/null && ldd "$root/davmail" >/dev/null 2>&1; then
	fail "the binary is dynamically linked; distroless/static needs a static one"
fi
"$root/davmail" version | grep -q 'davmail deploy-check' || fail "version not stamped"

# 2. The image's layout and ENV. The ENV lines are read from the
# Dockerfile, so a change there is a change here.
mkdir -p "$root/var/lib/davmail" "$root/srv/mail"
env_args=()
while IFS= read -r kv; do
	case $kv in
	DAVMAIL_LISTEN=*) kv=DAVMAIL_LISTEN=127.0.0.1:0 ;; # a free port, loopback only
	DAVMAIL_*=/*) kv="${kv%%=*}=$root${kv#*=}" ;;       # paths under the temp root
	esac
	env_args+=("$kv")
done < <(sed -n '/^ENV /,/[^\\]$/p' Dockerfile | sed -e 's/^ENV //' -e 's/\\$//' | tr -s ' ' '\n' | grep '^DAVMAIL_')
[[ ${#env_args[@]} -ge 4 ]] || fail "could not read the Dockerfile's ENV (got: ${env_args[*]-})"
env_args+=(DAVMAIL_INITIAL_ADMIN_USER=admin DAVMAIL_INITIAL_ADMIN_PASSWORD=deploy-check-pw)

# Clean environment: only what the image would have.
env -i PATH=/usr/bin:/bin "${env_args[@]}" "$root/davmail" serve >"$root/log" 2>&1 &
pid=$!

addr=
for _ in $(seq 1 100); do # 100 x 0.1 s: the start takes well under a second
	addr=$(grep '"message":"listening"' "$root/log" | head -n1 | sed -n 's/.*"addr":"\([^"]*\)".*/\1/p' || true)
	[[ -n $addr ]] && break
	kill -0 "$pid" 2>/dev/null || fail "davmail exited at start"
	sleep 0.1
done
[[ -n $addr ]] || fail "no 'listening' line within 10 s"
grep -q '"message":"initial admin user created"' "$root/log" || fail "initial admin not created"
grep -q 'deploy-check-pw' "$root/log" && fail "the admin password was logged"

# 3. The HEALTHCHECK command, with the image's environment and the real port.
hc_env=()
for kv in "${env_args[@]}"; do
	[[ $kv == DAVMAIL_LISTEN=* ]] && kv=DAVMAIL_LISTEN=$addr
	hc_env+=("$kv")
done
env -i PATH=/usr/bin:/bin "${hc_env[@]}" "$root/davmail" healthcheck || fail "HEALTHCHECK failed"
env -i PATH=/usr/bin:/bin "${hc_env[@]}" "$root/davmail" healthcheck --ready || fail "/readyz failed"
[[ -s $root/var/lib/davmail/users ]] || fail "no users file under the data directory"

# 4. STOPSIGNAL.
kill -TERM "$pid"
status=0
wait "$pid" || status=$?
pid=
[[ $status -eq 0 ]] || fail "exit status $status after SIGTERM"
grep -q '"message":"stopped"' "$root/log" || fail "no 'stopped' line after SIGTERM"
echo "deploy-check: OK ($(wc -c <"$root/davmail") byte static binary; healthcheck, readiness and SIGTERM as in the Dockerfile)"
