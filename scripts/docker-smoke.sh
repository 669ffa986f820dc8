#!/usr/bin/env bash
# Smoke-build the Dockerfile without a Docker engine: Debian's buildah builds it (chroot isolation,
# vfs storage, all state under $SMOKE_DIR), against a base image made here with debootstrap plus
# this machine's Node binary, imported under the name the Dockerfile's FROM asks for. Then the
# image runs `hushdns --version`, binds a privileged port as its non-root user, passes its own
# HEALTHCHECK command against a server started inside it and serves the dashboard.
#
#   scripts/docker-smoke.sh            the real Dockerfile (plus `ARG TARGETARCH`, which BuildKit
#                                      predefines and buildah 1.28 does not): apt-get and `npm ci`
#                                      run inside the build (needs Debian's mirror and the registry)
#   scripts/docker-smoke.sh --offline  a smoke-only variant of the Dockerfile in which `npm ci` is
#                                      replaced by this checkout's node_modules (built for this very
#                                      Node binary, so the native module matches); for machines
#                                      where the build cannot reach the npm registry
#
# Not part of `npm test` (minutes, needs root). Needs root for debootstrap and buildah.
# Environment: SMOKE_DIR (default /var/tmp/hushdns-smoke; the debootstrap root is cached there),
# DEBIAN_MIRROR (default: the first Debian URI in this machine's apt sources), KEEP=1 keeps the
# buildah storage afterwards.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
SMOKE_DIR="${SMOKE_DIR:-/var/tmp/hushdns-smoke}"
MODE=full
for arg in "$@"; do
  case "$arg" in
    --offline) MODE=offline ;;
    -h | --help) sed -n '2,20p' "$0"; exit 0 ;;
    *) echo "docker-smoke: unknown argument $arg (try --help)" >&2; exit 2 ;;
  esac
done

started=$SECONDS
step() { printf '\n== [%4ss] %s\n' "$((SECONDS - started))" "$*"; }
die() { echo "docker-smoke: $*" >&2; exit 1; }

[ "$(id -u)" = 0 ] || die "needs root (debootstrap and buildah with chroot isolation); run it with sudo"
command -v node >/dev/null || die "needs node on this machine: its binary becomes the base image's node"

step "tools"
need=()
command -v buildah >/dev/null 2>&1 || need+=(buildah)
command -v debootstrap >/dev/null 2>&1 || need+=(debootstrap)
if [ ${#need[@]} -gt 0 ]; then
  command -v apt-get >/dev/null 2>&1 || die "missing ${need[*]} and no apt-get to install them"
  echo "installing ${need[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
buildah --version

# One storage for everything this script does, apart from the machine's own container storage.
BUILDAH=(buildah --root "$SMOKE_DIR/storage" --runroot "$SMOKE_DIR/run" --storage-driver vfs)
mkdir -p "$SMOKE_DIR"

# The base image is named after the Node that is really in it, so the name does not lie:
# node:20-bookworm-slim on a bookworm machine with Node 20. The Dockerfile gets the same two parts
# as build arguments.
SUITE="$(. /etc/os-release && echo "${VERSION_CODENAME:-bookworm}")"
NODE_MAJOR="$(node -p 'process.versions.node.split(".")[0]')"
BASE="docker.io/library/node:${NODE_MAJOR}-${SUITE}-slim"
MIRROR="${DEBIAN_MIRROR:-$( (cat /etc/apt/sources.list /etc/apt/sources.list.d/*.sources /etc/apt/sources.list.d/*.list 2>/dev/null || true) \
  | grep -oE '^(URIs:|deb) +https?://[^ ]+/debian/?( |$)' | head -n1 | awk '{print $2}')}"
MIRROR="${MIRROR:-http://deb.debian.org/debian}"

step "base rootfs: debootstrap $SUITE (minbase) from $MIRROR"
ROOTFS="$SMOKE_DIR/rootfs-$SUITE"
if [ ! -x "$ROOTFS/usr/bin/apt-get" ]; then
  rm -rf "$ROOTFS"
  debootstrap --variant=minbase "$SUITE" "$ROOTFS" "$MIRROR" >"$SMOKE_DIR/debootstrap.log" 2>&1 \
    || { tail -n 20 "$SMOKE_DIR/debootstrap.log" >&2; die "debootstrap failed (log: $SMOKE_DIR/debootstrap.log)"; }
else
  echo "cached: $ROOTFS"
fi

step "base image $BASE: rootfs + this machine's node $(node --version)"
NODE_BIN="$(readlink -f "$(command -v node)")"
NPM_DIR="$(dirname "$(dirname "$(readlink -f "$(command -v npm)")")")"
STAGE="$SMOKE_DIR/base-stage"
rm -rf "$STAGE" && mkdir -p "$STAGE"
cp -a "$ROOTFS/." "$STAGE/"
# Laid out like the official node images: node, npm and the headers under /usr/local, a `node` user
# with uid 1000.
install -D -m 755 "$NODE_BIN" "$STAGE/usr/local/bin/node"
mkdir -p "$STAGE/usr/local/lib/node_modules"
cp -a "$NPM_DIR" "$STAGE/usr/local/lib/node_modules/npm"
ln -sf ../lib/node_modules/npm/bin/npm-cli.js "$STAGE/usr/local/bin/npm"
ln -sf ../lib/node_modules/npm/bin/npx-cli.js "$STAGE/usr/local/bin/npx"
NODE_HEADERS=""
for inc in /usr/include/node /usr/local/include/node; do
  if [ -f "$inc/node_version.h" ]; then NODE_HEADERS="$inc"; break; fi
done
if [ -n "$NODE_HEADERS" ]; then
  mkdir -p "$STAGE/usr/local/include"
  cp -a "$NODE_HEADERS" "$STAGE/usr/local/include/node"
fi
chroot "$STAGE" /usr/sbin/groupadd --gid 1000 node
chroot "$STAGE" /usr/sbin/useradd --uid 1000 --gid node --shell /bin/bash --create-home node
# This machine's CA bundle: a registry reached through an intercepting proxy needs its CA.
[ -f /etc/ssl/certs/ca-certificates.crt ] && install -D -m 644 /etc/ssl/certs/ca-certificates.crt "$STAGE/usr/local/share/smoke-ca.crt"
rm -rf "$STAGE/var/cache/apt/archives/"*.deb "$STAGE/var/lib/apt/lists/"*

"${BUILDAH[@]}" rmi -f "$BASE" >/dev/null 2>&1 || true
ctr="$("${BUILDAH[@]}" from scratch)"
mnt="$("${BUILDAH[@]}" mount "$ctr")"
tar -C "$STAGE" -cf - . | tar -C "$mnt" -xpf -
"${BUILDAH[@]}" umount "$ctr" >/dev/null
base_env=(--env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin --env NODE_VERSION="$(node -p process.versions.node)")
# node-gyp reads the local headers instead of downloading them from nodejs.org.
[ -n "$NODE_HEADERS" ] && base_env+=(--env npm_config_nodedir=/usr/local)
[ -f "$STAGE/usr/local/share/smoke-ca.crt" ] && base_env+=(--env npm_config_cafile=/usr/local/share/smoke-ca.crt)
"${BUILDAH[@]}" config "${base_env[@]}" --cmd node "$ctr"
"${BUILDAH[@]}" commit --quiet "$ctr" "$BASE" >/dev/null
"${BUILDAH[@]}" rm "$ctr" >/dev/null
rm -rf "$STAGE"

step "build context ($MODE): a snapshot of this checkout"
# A copy taken now, so edits made while the build runs (minutes) do not mix into it. What
# .dockerignore keeps out is left out here too (the copy carries .dockerignore along).
CONTEXT="$SMOKE_DIR/context"
rm -rf "$CONTEXT" && mkdir -p "$CONTEXT"
excludes=(--exclude=./.git --exclude=./dist --exclude=./data --exclude=./test-results)
[ "$MODE" = offline ] || excludes+=(--exclude=./node_modules)
tar -C "$ROOT" "${excludes[@]}" -cf - . | tar -C "$CONTEXT" -xf -
# The Dockerfile uses TARGETARCH in FROM, which BuildKit predefines; buildah 1.28 (Debian 12) only
# substitutes arguments declared before the first FROM. The smoke copy adds that one declaration;
# the rest is the real Dockerfile. The value is this machine's architecture.
TARGETARCH="$(node -p '({ x64: "amd64", arm64: "arm64", arm: "arm" })[process.arch] ?? process.arch')"
DOCKERFILE="$SMOKE_DIR/Dockerfile.smoke"
awk '!done && /^FROM /{ print "ARG TARGETARCH"; done = 1 } { print }' "$ROOT/Dockerfile" >"$DOCKERFILE"
if [ "$MODE" = offline ]; then
  [ -d "$CONTEXT/node_modules/better-sqlite3" ] || die "--offline needs this checkout's node_modules: run npm ci first"
  # Smoke-only variant: `npm ci` becomes a COPY of the prepared node_modules. Everything else,
  # the build, the prune and the whole runtime stage, is the real Dockerfile's.
  sed -i -E 's#^RUN npm ci( .*)?$#COPY node_modules ./node_modules#' "$DOCKERFILE"
  grep -q '^COPY node_modules ./node_modules$' "$DOCKERFILE" || die "the Dockerfile has no 'RUN npm ci' line to replace; update this script"
  grep -v '^node_modules$' "$ROOT/.dockerignore" >"$CONTEXT/.dockerignore"
fi
du -sh "$CONTEXT" | awk '{print "context: " $1}'

step "buildah bud (chroot isolation, vfs)"
IMAGE=localhost/hushdns:smoke
bud_start=$SECONDS
set +e +o pipefail
# --format docker: the OCI image format has no HEALTHCHECK; Docker builds this format too.
"${BUILDAH[@]}" bud --isolation chroot --format docker --pull=never --layers=false \
  --build-arg NODE_VERSION="$NODE_MAJOR" --build-arg DEBIAN_RELEASE="$SUITE" --build-arg TARGETARCH="$TARGETARCH" \
  -f "$DOCKERFILE" -t "$IMAGE" "$CONTEXT" 2>&1 | tee "$SMOKE_DIR/bud.log" | grep --line-buffered -E '^(\[[0-9/]+\] )?(STEP|COMMIT)'
bud_status=${PIPESTATUS[0]}
set -e -o pipefail
[ "$bud_status" = 0 ] || { tail -n 30 "$SMOKE_DIR/bud.log" >&2; die "buildah bud failed with status $bud_status (log: $SMOKE_DIR/bud.log)"; }
echo "built in $((SECONDS - bud_start)) s"

step "inspect"
"${BUILDAH[@]}" inspect --type image --format '{{.OCIv1.Config.User}} {{.OCIv1.Config.Entrypoint}} {{.OCIv1.Config.Cmd}} {{.OCIv1.Config.ExposedPorts}} {{.OCIv1.Config.Volumes}}' "$IMAGE"
"${BUILDAH[@]}" inspect --type image --format '{{.Docker.Config.Healthcheck}}' "$IMAGE" 2>/dev/null || true
"${BUILDAH[@]}" images --format '{{.Name}}:{{.Tag}} {{.Size}}' "$IMAGE"

step "run: hushdns --version"
run_ctr="$("${BUILDAH[@]}" from --pull=never "$IMAGE")"
cleanup() {
  "${BUILDAH[@]}" rm "$run_ctr" >/dev/null 2>&1 || true
  if [ "${KEEP:-0}" != 1 ]; then rm -rf "$SMOKE_DIR/storage" "$SMOKE_DIR/run" "$SMOKE_DIR/context"; fi
}
trap cleanup EXIT
version="$("${BUILDAH[@]}" run --isolation chroot "$run_ctr" -- node dist/cli.js --version)"
expected="$(node -p "require('$ROOT/package.json').version")"
echo "hushdns --version: $version"
[ "$version" = "$expected" ] || die "expected version $expected, got $version"

step "run: user, privileged port, serve + the image's HEALTHCHECK command"
# chroot isolation shares this machine's network: loopback only, a privileged port nobody uses.
"${BUILDAH[@]}" run --isolation chroot "$run_ctr" -- sh -c '
  set -e
  echo "user: $(id -un) ($(id -u))"
  [ "$(id -u)" != 0 ] || { echo "runs as root" >&2; exit 1; }
  export HUSHDNS_DNS_LISTEN=127.0.0.1:553 HUSHDNS_HTTP_LISTEN=127.0.0.1:18553 \
         HUSHDNS_UPSTREAM=udp://127.0.0.1:9 HUSHDNS_REFRESH_INTERVAL=0 HUSHDNS_DATA_DIR=/tmp/smoke-data
  if node dist/cli.js health --timeout 500 >/dev/null 2>&1; then echo "health passed with nothing listening" >&2; exit 1; fi
  node dist/cli.js serve 2>/tmp/serve.log &
  pid=$!
  i=0
  until node dist/cli.js health --timeout 500 2>/tmp/health.log; do
    i=$((i + 1))
    if [ $i -ge 30 ] || ! kill -0 $pid 2>/dev/null; then cat /tmp/health.log /tmp/serve.log >&2; kill $pid 2>/dev/null; exit 1; fi
    sleep 1
  done
  # The dashboard is read from the package root, outside dist/: it must be in the image.
  node -e "fetch(\"http://127.0.0.1:18553/\").then(async (r) => { const t = await r.text(); if (r.status !== 200 || !/<html/i.test(t)) { console.error(\"dashboard: HTTP \" + r.status); process.exit(1); } console.log(\"dashboard: HTTP 200, \" + t.length + \" bytes\"); })"
  kill -TERM $pid
  status=0
  wait $pid || status=$?
  [ $status = 0 ] || { echo "serve exited with status $status after SIGTERM" >&2; cat /tmp/serve.log >&2; exit 1; }
  echo "serve on 127.0.0.1:553 as $(id -un), healthy after $i s, stopped on SIGTERM with status 0"
'

step "done in $((SECONDS - started)) s (mode: $MODE, base: $BASE)"
