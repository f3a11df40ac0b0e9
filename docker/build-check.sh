#!/usr/bin/env bash
# The steps of docker/Dockerfile, run outside a container (no container engine
# needed), and checked:
#   1. npm ci --omit=dev --omit=optional into a fresh folder laid out like the image (/opt/sidecar)
#   2. the compile cache warmed as the Dockerfile warms it (as uid 1000)
#   3. the sidecar started as that user, with the ENTRYPOINT's Node flags and the
#      cache read-only (as under readOnlyRootFilesystem); prints RSS at ready
#   4. fails unless every TypeScript module of the sidecar came from the cache
#   5. the image's HEALTHCHECK command: healthy while the sidecar runs, unhealthy
#      once it stopped
# Usage: docker/build-check.sh   (as root it switches users with setpriv; as
# another user it runs as that user). Environment:
#   BUILD_CHECK_UID        uid (and gid) the image runs as (default: the
#                          Dockerfile's last USER, which must be numeric)
#   BUILD_CHECK_WARM_UID   uid that warms the cache (default: the Dockerfile's
#                          USER at the warm-up; 0 reproduces the image before
#                          issue 24, and fails)
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
# The project's Node 24 (the image's node:24), for node and for npm's own shebang.
export PATH="$ROOT/node_modules/.bin:$PATH"
DOCKERFILE="$ROOT/docker/Dockerfile"
say() { echo "build-check: $*"; }
fail() { echo "build-check: FAILED: $*" >&2; exit 1; }

node --version | grep -q '^v24\.' || fail "node on PATH is $(node --version), not Node 24 (run npm ci in $ROOT first)"

# The users of the Dockerfile: the USER in force at the warm-up (RUN node src/cli.ts
# check ...; none = root) and the USER the image runs as (the last one).
DOCKER_WARM_USER=$(awk '/^USER /{u=$2} /^RUN node src\/cli.ts check/{print (u=="" ? "0" : u); exit}' "$DOCKERFILE")
DOCKER_RUN_USER=$(awk '/^USER /{u=$2} END{print u}' "$DOCKERFILE")
[ -n "$DOCKER_WARM_USER" ] || fail "the Dockerfile has no compile cache warm-up (RUN node src/cli.ts check ...)"
numeric_uid() { [[ "$1" =~ ^([0-9]+)(:[0-9]+)?$ ]] || fail "the Dockerfile's USER $1 is not numeric (Kubernetes' runAsNonRoot cannot verify a name)"; echo "${BASH_REMATCH[1]}"; }
if [ "$(id -u)" = 0 ]; then
  RUN_UID=${BUILD_CHECK_UID:-$(numeric_uid "$DOCKER_RUN_USER")}
  WARM_UID=${BUILD_CHECK_WARM_UID:-$(numeric_uid "$DOCKER_WARM_USER")}
  command -v setpriv >/dev/null || fail "setpriv (util-linux) is needed to switch to uid $RUN_UID"
else
  RUN_UID=$(id -u)
  WARM_UID=$RUN_UID
  say "not root: warming and starting as uid $RUN_UID"
fi
[ "$RUN_UID" != 0 ] || fail "the image runs as a non-root user: BUILD_CHECK_UID must not be 0"
as_uid() { # as_uid UID CMD...: run CMD as that uid and gid, no supplementary groups
  local uid=$1; shift
  if [ "$(id -u)" = "$uid" ]; then "$@"; else setpriv --reuid="$uid" --regid="$uid" --clear-groups -- "$@"; fi
}

WORK=$(mktemp -d "${TMPDIR:-/tmp}/sidecar-build-check.XXXXXX")
SIDECAR_PID=
cleanup() {
  if [ -n "$SIDECAR_PID" ] && kill -0 "$SIDECAR_PID" 2>/dev/null; then
    kill -KILL "$SIDECAR_PID" 2>/dev/null || true
    wait "$SIDECAR_PID" 2>/dev/null || true
  fi
  # The warm-up leaves files only their owner may change; root removes them.
  chmod -R u+w "$WORK" 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT
chmod 755 "$WORK"   # mktemp's 0700 would keep the non-root user out

# --- FROM node:24-slim AS deps: npm ci --omit=dev --omit=optional ---------------------
mkdir -p "$WORK/deps"
cp "$ROOT/package.json" "$ROOT/package-lock.json" "$WORK/deps/"
started=$(date +%s%N)
# --prefer-offline: the packages come from the npm cache that `npm ci` of the
# checkout filled; the registry is asked only for what is missing.
(cd "$WORK/deps" && npm ci --omit=dev --omit=optional --no-audit --no-fund --prefer-offline --loglevel=error) >"$WORK/npm.log" 2>&1 \
  || { cat "$WORK/npm.log" >&2; fail "npm ci --omit=dev"; }
say "npm ci --omit=dev: $(ls "$WORK/deps/node_modules" | wc -l) packages in $(( ($(date +%s%N) - started) / 1000000 )) ms"
[ ! -e "$WORK/deps/node_modules/vitest" ] || fail "dev dependencies were installed"

# --- FROM node:24-slim: the image's files ------------------------------------------
APP="$WORK/opt/sidecar"
mkdir -p "$APP"
mv "$WORK/deps/node_modules" "$APP/node_modules"
cp -r "$ROOT/package.json" "$ROOT/src" "$ROOT/config" "$ROOT/demo" "$APP/"
chmod -R a+rX "$WORK"
export NODE_ENV=production
export NODE_COMPILE_CACHE="$APP/.compile-cache"
install -d -o "$WARM_UID" -g "$WARM_UID" "$NODE_COMPILE_CACHE"
(cd "$APP" && as_uid "$WARM_UID" node src/cli.ts check --config config/sidecar.yaml) >/dev/null \
  || fail "the warm-up (sidecar check) failed"
say "compile cache warmed as uid $WARM_UID: $(ls "$NODE_COMPILE_CACHE"/*/ | wc -l) entries in $(ls "$NODE_COMPILE_CACHE")"
# At run time the cache is only read (readOnlyRootFilesystem in Kubernetes).
chmod -R a-w "$NODE_COMPILE_CACHE"

# --- USER 1000:1000, ENTRYPOINT [node, FLAGS..., cli.ts] ------------------------------
# The Node flags of the ENTRYPOINT, read from the Dockerfile.
mapfile -t ENTRY < <(node -e '
  const text = require("node:fs").readFileSync(process.argv[1], "utf8");
  const entry = JSON.parse(/^ENTRYPOINT\s+(\[.*\])\s*$/m.exec(text)[1]);
  for (const arg of entry) if (arg.startsWith("--")) console.log(arg);' "$DOCKERFILE")
cat >"$WORK/sidecar.yaml" <<'YAML'
admin: { listen: 127.0.0.1:0 }
log: { level: info, access: true }
upstreams:
  app: { endpoints: [http://127.0.0.1:3000] }
ingress:
  listen: 127.0.0.1:0
  routes: [ { name: app, match: { path: / }, upstream: app } ]
egress:
  listen: 127.0.0.1:0
YAML
chmod 644 "$WORK/sidecar.yaml"
# NODE_DEBUG_NATIVE=COMPILE_CACHE: Node says, module by module, whether the cache served it.
cd "$APP"
# A simple command, so that $! is the sidecar's own pid (setpriv execs node).
RUN_AS=()
[ "$(id -u)" = "$RUN_UID" ] || RUN_AS=(setpriv --reuid="$RUN_UID" --regid="$RUN_UID" --clear-groups --)
NODE_DEBUG_NATIVE=COMPILE_CACHE "${RUN_AS[@]}" node "${ENTRY[@]}" "$APP/src/cli.ts" --config "$WORK/sidecar.yaml" \
  >"$WORK/stdout.log" 2>"$WORK/stderr.log" &
SIDECAR_PID=$!
for _ in $(seq 200); do
  grep -q '"msg":"sidecar listening"' "$WORK/stdout.log" 2>/dev/null && break
  kill -0 "$SIDECAR_PID" 2>/dev/null || { grep -v '^\[compile cache\]' "$WORK/stderr.log" >&2; fail "the sidecar exited at start"; }
  sleep 0.1
done
grep -q '"msg":"sidecar listening"' "$WORK/stdout.log" || fail "the sidecar was not listening within 20 s"
RSS_KB=$(awk '/^VmRSS:/ { print $2 }' "/proc/$SIDECAR_PID/status")
UID_NOW=$(awk '/^Uid:/ { print $2 }' "/proc/$SIDECAR_PID/status")
ADMIN_PORT=$(grep -o '"adminPort":[0-9]*' "$WORK/stdout.log" | head -1 | cut -d: -f2)
[ "$UID_NOW" = "$RUN_UID" ] || fail "the sidecar runs as uid $UID_NOW, not $RUN_UID"
say "sidecar ready as uid $UID_NOW with ${ENTRY[*]}: RSS at ready $(( RSS_KB / 1024 )) MiB ($RSS_KB kB)"

# --- the cache was used: every TypeScript module of src/ came from it ------------------
hits=$(grep -c "retrieving transpile cache for StrippedTypeScript file://$APP/src/.*success" "$WORK/stderr.log" || true)
misses=$(grep -c "no transpile cache for StrippedTypeScript file://$APP/src/" "$WORK/stderr.log" || true)
grep -h 'Cannot create cache directory\|Cannot open cache' "$WORK/stderr.log" >&2 || true
if [ "$hits" = 0 ] || [ "$misses" != 0 ]; then
  fail "compile cache not used: $hits modules of src/ from the cache, $misses compiled afresh (warmed as uid $WARM_UID, run as uid $RUN_UID)"
fi
say "compile cache used: all $hits TypeScript modules of src/ came from the cache"

# --- HEALTHCHECK: the image's own command ---------------------------------------------
mapfile -t HEALTH < <(node -e '
  const text = require("node:fs").readFileSync(process.argv[1], "utf8").replace(/\\\n/g, " ");
  const check = /^HEALTHCHECK\s.*?\bCMD\s+(\[.*\])\s*$/m.exec(text);
  if (!check) process.exit(1);
  for (const arg of JSON.parse(check[1])) console.log(arg);' "$DOCKERFILE")
[ "${#HEALTH[@]}" -gt 0 ] || fail "the Dockerfile has no exec-form HEALTHCHECK"
export SIDECAR_ADMIN_URL="http://127.0.0.1:$ADMIN_PORT"
as_uid "$RUN_UID" "${HEALTH[@]}" || fail "HEALTHCHECK reports unhealthy while the sidecar is ready"
kill -TERM "$SIDECAR_PID"
for _ in $(seq 150); do kill -0 "$SIDECAR_PID" 2>/dev/null || break; sleep 0.1; done
if kill -0 "$SIDECAR_PID" 2>/dev/null; then fail "the sidecar did not stop within 15 s of SIGTERM"; fi
code=0; wait "$SIDECAR_PID" || code=$?
SIDECAR_PID=
[ "$code" = 0 ] || fail "the sidecar exited with $code after SIGTERM"
if as_uid "$RUN_UID" "${HEALTH[@]}"; then fail "HEALTHCHECK reports healthy after the sidecar stopped"; fi
say "HEALTHCHECK: healthy while ready, unhealthy once stopped"
say "ok"
