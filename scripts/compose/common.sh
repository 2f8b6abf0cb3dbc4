# Sourced by the Docker tests (compose-test.sh, ha-test.sh, k8s-ha-test.sh), after scripts/lib.sh, with TEST_NAME
# set: what they share. `docker_test_setup` skips the test (exit 0) without a Docker engine, or
# fails under CI=true, and installs the tools; `step` and `fail` print under TEST_NAME's name;
# `wait_until` polls; `read_ids` / `cid` / `health` know the containers of a `dc` (the caller's
# docker-compose function); `build_images` builds the images the standard files name when they
# are missing, without a registry: `debian:bookworm-slim` from debootstrap + docker import,
# `redis:7` from Debian's redis-server with the official image's entry-point behaviour
# (redis.Dockerfile beside this file), and `quantum-trader:latest`: deploy/Dockerfile's runtime
# stage (cut out of the file, so the two cannot drift) with BIN_DIR's binaries copied in
# (needs `$work`, a scratch folder, `$BIN_DIR`, `$MIRROR` and the array BINS); its parts
# `build_debian_base` and `start_redis_build` / `finish_redis_build` serve a test that needs only
# Redis.

docker_test_setup() {
  if ! command -v docker >/dev/null 2>&1 || ! docker info >/dev/null 2>&1; then
    if [ "${CI:-}" = true ]; then
      echo "$TEST_NAME: no Docker engine, and CI=true requires it" >&2
      exit 1
    fi
    echo "$TEST_NAME: skipped (no Docker engine)"
    exit 0
  fi
  need_pkg docker-compose docker-compose
  need_pkg debootstrap debootstrap
  need_pkg sqlite3 sqlite3
  t0=$SECONDS
}

step() { echo "==> $TEST_NAME [$((SECONDS - t0))s] $*"; }
fail() {
  echo "$TEST_NAME FAILED: $*" >&2
  exit 1
}
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_until() { # SECONDS WHAT COMMAND...
  local secs=$1 what=$2 deadline=$((SECONDS + $1))
  shift 2
  until "$@"; do
    [ "$SECONDS" -lt "$deadline" ] || fail "$what (after ${secs}s)"
    sleep 1
  done
}

# Container ids, read once per `up` (a restart keeps the container; docker-compose itself is too
# slow to ask on every poll).
declare -A CID
read_ids() { # SERVICE...
  local s
  for s in "$@"; do CID[$s]=$(dc ps -q "$s"); done
}
cid() { echo "${CID[$1]}"; }
health() { docker inspect -f '{{if .State.Health}}{{.State.Health.Status}}{{else}}{{.State.Status}}{{end}}' "$(cid "$1")"; }

image_exists() { docker image inspect "$1" >/dev/null 2>&1; }

# The Debian base image, from debootstrap + docker import (no registry here).
build_debian_base() {
  if ! image_exists debian:bookworm-slim; then
    step "debian:bookworm-slim: debootstrap --variant=minbase bookworm (no registry here)"
    local root=$work/rootfs
    as_root debootstrap --variant=minbase bookworm "$root" "$MIRROR" >"$work/debootstrap.log" 2>&1 ||
      { tail -20 "$work/debootstrap.log"; fail "debootstrap"; }
    as_root sh -c "rm -rf '$root'/var/cache/apt/archives/*.deb '$root'/var/lib/apt/lists/*"
    as_root tar -C "$root" -c . | docker import --change 'CMD ["bash"]' - debian:bookworm-slim >/dev/null
    as_root rm -rf "$root"
  fi
}

# redis:7 from Debian's redis-server, built in the background; `finish_redis_build` waits.
redis_build=''
start_redis_build() {
  if ! image_exists redis:7; then
    step "redis:7: Debian's redis-server 7 (scripts/compose/redis.Dockerfile)"
    docker build -q -t redis:7 -f scripts/compose/redis.Dockerfile scripts/compose >"$work/redis-build.log" 2>&1 &
    redis_build=$!
  fi
}
finish_redis_build() {
  if [ -n "$redis_build" ]; then
    wait "$redis_build" || { cat "$work/redis-build.log"; fail "building redis:7"; }
    redis_build=''
  fi
}

build_images() {
  build_debian_base
  # redis:7 builds beside quantum-trader:latest (both only need the base).
  start_redis_build

  step "quantum-trader:latest: deploy/Dockerfile's runtime stage with $BIN_DIR's binaries"
  local b
  for b in "${BINS[@]}"; do
    if [ ! -x "$BIN_DIR/$b" ]; then
      [ "$BIN_DIR" = target/debug ] || fail "$BIN_DIR/$b is missing"
      cargo build --locked --workspace --bins
      break
    fi
  done
  local ctx=$work/image
  mkdir -p "$ctx/bin"
  for b in "${BINS[@]}"; do
    # Without debug info the image is a tenth of the size; the code is the same.
    objcopy --strip-debug "$BIN_DIR/$b" "$ctx/bin/$b" 2>/dev/null || cp "$BIN_DIR/$b" "$ctx/bin/$b"
  done
  cp -al data "$ctx/data" 2>/dev/null || cp -r data "$ctx/data"
  sed -n '/^FROM debian:bookworm-slim/,$p' deploy/Dockerfile |
    sed 's#^COPY --from=build /out/ /usr/local/bin/$#COPY bin/ /usr/local/bin/#' >"$ctx/Dockerfile"
  grep -q '^COPY bin/ /usr/local/bin/$' "$ctx/Dockerfile" && ! grep -q -- '--from=' "$ctx/Dockerfile" ||
    fail "deploy/Dockerfile's runtime stage no longer has the shape this script cuts out"
  docker build -q -t quantum-trader:latest "$ctx" >/dev/null
  finish_redis_build
}
