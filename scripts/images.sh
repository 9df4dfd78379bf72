#!/usr/bin/env bash
# Builds the container images of the integration tests, idempotently: an
# image whose inputs (binary, root filesystem, recipe) did not change is
# not rebuilt. Nothing is pulled from a registry.
#
#   scripts/images.sh build [NAME…]   build (or keep) the images; prints NAME_IMAGE=… lines
#   scripts/images.sh sizes           the size of each image
#
# Images (names are settings: WRAPI_IT_<NAME>_IMAGE):
#   wrapi       localhost/wrapi:local              FROM scratch + static `wrapi` (deploy/container)
#   fakeopenai  localhost/wrapi-it/fakeopenai:local FROM scratch + static fake OpenAI (pkg/openaitest)
#   memcached   localhost/wrapi-it/memcached:local  root filesystem: this machine's memcached + its libraries
#   dynalite    localhost/wrapi-it/dynalite:local   root filesystem: this machine's node + its libraries + dynalite
# On Docker the defaults of memcached and dynamodb are the public images
# (memcached:1.6-alpine, localstack/localstack:4); only wrapi and
# fakeopenai are built. An image name outside localhost/ is never built.
#
# The engine: $WRAPI_IT_ENGINE (podman or docker), else podman when
# DOCKER_HOST is podman's socket, else docker when `docker info` answers,
# else podman (scripts/podman.sh writes its config).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
work=${WRAPI_IMAGES_DIR:-$root/.cache/images}
mkdir -p "$work"
LABEL=dev.wrapi.it.inputs

die() { echo "images.sh: $*" >&2; exit 1; }

engine=${WRAPI_IT_ENGINE:-}
if [[ -z $engine ]]; then
  if [[ ${DOCKER_HOST:-} == *podman* ]]; then
    engine=podman
  elif command -v docker >/dev/null && docker info >/dev/null 2>&1; then
    engine=docker
  else
    engine=podman
  fi
fi
case $engine in
  podman)
    command -v podman >/dev/null || die "podman is not installed (scripts/podman.sh install)"
    if [[ -z ${CONTAINERS_CONF:-} ]]; then
      eval "$("$root/scripts/podman.sh" env)"
    fi
    ;;
  docker) ;;
  *) die "WRAPI_IT_ENGINE=$engine: want podman or docker" ;;
esac

img_wrapi=${WRAPI_IT_WRAPI_IMAGE:-localhost/wrapi:local}
img_fakeopenai=${WRAPI_IT_FAKEOPENAI_IMAGE:-localhost/wrapi-it/fakeopenai:local}
if [[ $engine == docker ]]; then
  img_memcached=${WRAPI_IT_MEMCACHED_IMAGE:-memcached:1.6-alpine}
  img_dynamodb=${WRAPI_IT_DYNAMODB_IMAGE:-localstack/localstack:4}
else
  img_memcached=${WRAPI_IT_MEMCACHED_IMAGE:-localhost/wrapi-it/memcached:local}
  img_dynamodb=${WRAPI_IT_DYNAMODB_IMAGE:-localhost/wrapi-it/dynalite:local}
fi

# current IMAGE: the inputs hash the image was built from ("" if none).
current() { $engine image inspect --format "{{ index .Config.Labels \"$LABEL\" }}" "$1" 2>/dev/null || true; }

human() { numfmt --to=iec --suffix=B "$1" 2>/dev/null || echo "$1 bytes"; }

size() {
  local s
  s=$($engine image inspect --format '{{.Size}}' "$1" 2>/dev/null) || { echo "absent"; return; }
  human "$s"
}

# gobuild DIR PKG OUT [TAGS]: a static, reproducible linux binary.
gobuild() {
  (cd "$root/$1" && GOWORK=off CGO_ENABLED=0 GOOS=linux GOFLAGS="-buildvcs=false -trimpath" \
    go build ${4:+-tags "$4"} -ldflags "-s -w -buildid=" -o "$3" "$2")
}

# hash_dir DIR: the hash of a build context (names, modes, contents).
hash_dir() {
  (cd "$1" && find . -type f -o -type d | LC_ALL=C sort | while read -r f; do
    if [[ -f $f ]]; then printf '%s %s %s\n' "$f" "$(stat -c %a "$f")" "$(sha256sum <"$f" | cut -c1-64)"; else printf '%s/\n' "$f"; fi
  done) | sha256sum | cut -c1-64
}

# build_context NAME IMAGE CONTEXT: docker/podman build when the inputs changed.
build_context() {
  local name=$1 image=$2 ctx=$3 h
  h=$(hash_dir "$ctx")
  if [[ $(current "$image") == "$h" ]]; then
    echo "images.sh: $name: $image is up to date ($(size "$image"))" >&2
    return
  fi
  echo "images.sh: $name: building $image" >&2
  local out
  out=$($engine build -q --label "$LABEL=$h" -t "$image" "$ctx" 2>&1) || { echo "$out" >&2; die "$name: build failed"; }
  echo "images.sh: $name: built $image ($(size "$image"))" >&2
  prune
}

# prune removes earlier builds of our images that a rebuild left untagged.
prune() { $engine image prune -f --filter "label=$LABEL" >/dev/null 2>&1 || true; }

# import_rootfs NAME IMAGE ROOTFS CHANGE…: an image from a root filesystem.
import_rootfs() {
  local name=$1 image=$2 rootfs=$3
  shift 3
  local tarball=$work/$name.tar h
  tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner -C "$rootfs" -cf "$tarball" .
  h=$( (sha256sum <"$tarball"; printf '%s\n' "$@") | sha256sum | cut -c1-64)
  if [[ $(current "$image") == "$h" ]]; then
    echo "images.sh: $name: $image is up to date ($(size "$image"))" >&2
    rm -f "$tarball"
    return
  fi
  echo "images.sh: $name: importing $image" >&2
  local changes=(--change "LABEL $LABEL=$h")
  for c in "$@"; do changes+=(--change "$c"); done
  local out
  out=$($engine import "${changes[@]}" "$tarball" "$image" 2>&1) || { echo "$out" >&2; die "$name: import failed"; }
  rm -f "$tarball"
  echo "images.sh: $name: imported $image ($(size "$image"))" >&2
  prune
}

# add_elf ROOTFS BINARY: copies a dynamically linked program and every
# library the dynamic loader resolves for it, at the same paths.
add_elf() {
  local rootfs=$1 bin=$2 lib
  mkdir -p "$rootfs$(dirname "$bin")"
  cp -L "$bin" "$rootfs$bin"
  while read -r lib; do
    [[ -n $lib ]] || continue
    mkdir -p "$rootfs$(dirname "$lib")"
    cp -L "$lib" "$rootfs$lib"
  done < <(ldd "$bin" | awk '/not found/ {print "MISSING " $1; next} $2 == "=>" && $3 ~ /^\// {print $3; next} $1 ~ /^\// {print $1}' |
    { while read -r a b; do [[ $a == MISSING ]] && die "$bin needs $b, which is not installed"; echo "$a"; done; })
}

# base_rootfs DIR: the few files a C program expects (users, nsswitch, tmp).
base_rootfs() {
  rm -rf "$1"
  mkdir -p "$1/etc" "$1/tmp"
  chmod 1777 "$1/tmp"
  printf 'root:x:0:0:root:/root:/sbin/nologin\nnobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin\n' >"$1/etc/passwd"
  printf 'root:x:0:\nnogroup:x:65534:\n' >"$1/etc/group"
  printf 'passwd: files\ngroup: files\nhosts: files dns\n' >"$1/etc/nsswitch.conf"
}

local_name() { [[ $1 == localhost/* ]]; }

build_wrapi() {
  local_name "$img_wrapi" || { echo "images.sh: wrapi: $img_wrapi is not a local name; not built" >&2; return; }
  local ctx=$work/wrapi
  rm -rf "$ctx" && mkdir -p "$ctx/data"
  gobuild cmd/wrapi . "$ctx/wrapi" timetzdata
  local ca=/etc/ssl/certs/ca-certificates.crt
  [[ -f $ca ]] || die "$ca is missing (apt-get install ca-certificates): the proxy image needs it to reach OpenAI"
  cp "$ca" "$ctx/ca-certificates.crt"
  cp "$root/deploy/container/Dockerfile" "$ctx/Dockerfile"
  build_context wrapi "$img_wrapi" "$ctx"
}

build_fakeopenai() {
  local_name "$img_fakeopenai" || { echo "images.sh: fakeopenai: $img_fakeopenai is not a local name; not built" >&2; return; }
  local ctx=$work/fakeopenai
  rm -rf "$ctx" && mkdir -p "$ctx"
  gobuild pkg ./openaitest/cmd/fakeopenai "$ctx/fakeopenai"
  cp "$root/scripts/images/fakeopenai/Dockerfile" "$ctx/Dockerfile"
  build_context fakeopenai "$img_fakeopenai" "$ctx"
}

build_memcached() {
  local_name "$img_memcached" || { echo "images.sh: memcached: using $img_memcached" >&2; return; }
  "$root/scripts/memcached.sh" install
  local rootfs=$work/memcached-rootfs
  base_rootfs "$rootfs"
  add_elf "$rootfs" "$(command -v memcached)"
  # 900 connections: below the 1024 open files the containers get.
  import_rootfs memcached "$img_memcached" "$rootfs" \
    'USER 65534:65534' 'EXPOSE 11211' \
    "ENTRYPOINT [\"$(command -v memcached)\", \"-p\", \"11211\", \"-U\", \"0\", \"-m\", \"64\", \"-c\", \"900\"]"
  rm -rf "$rootfs"
}

build_dynalite() {
  local_name "$img_dynamodb" || { echo "images.sh: dynamodb: using $img_dynamodb" >&2; return; }
  local cli
  cli=$("$root/scripts/dynalite.sh" cli)
  local modules=${cli%/dynalite/cli.js}
  local rootfs=$work/dynalite-rootfs node
  node=$(command -v node)
  base_rootfs "$rootfs"
  add_elf "$rootfs" "$node"
  mkdir -p "$rootfs/app"
  cp -a "$modules" "$rootfs/app/node_modules"
  # Port 4566, as LocalStack: the tests reach either the same way.
  import_rootfs dynalite "$img_dynamodb" "$rootfs" \
    'USER 65534:65534' 'EXPOSE 4566' 'WORKDIR /app' 'STOPSIGNAL SIGKILL' \
    "ENTRYPOINT [\"$node\", \"/app/node_modules/dynalite/cli.js\", \"--host\", \"0.0.0.0\", \"--port\", \"4566\", \"--createTableMs\", \"0\", \"--deleteTableMs\", \"0\", \"--updateTableMs\", \"0\"]"
  rm -rf "$rootfs"
}

print_names() {
  echo "WRAPI_IT_ENGINE=$engine"
  echo "WRAPI_IT_WRAPI_IMAGE=$img_wrapi"
  echo "WRAPI_IT_FAKEOPENAI_IMAGE=$img_fakeopenai"
  echo "WRAPI_IT_MEMCACHED_IMAGE=$img_memcached"
  echo "WRAPI_IT_DYNAMODB_IMAGE=$img_dynamodb"
}

build() {
  local names=("$@")
  ((${#names[@]})) || names=(wrapi fakeopenai memcached dynalite)
  # One build at a time (two test binaries may ask at once).
  exec 9>"$work/.lock"
  flock 9
  local n
  for n in "${names[@]}"; do
    case $n in
      wrapi) build_wrapi ;;
      fakeopenai) build_fakeopenai ;;
      memcached) build_memcached ;;
      dynalite | dynamodb) build_dynalite ;;
      *) die "unknown image $n (wrapi, fakeopenai, memcached, dynalite)" ;;
    esac
  done
  print_names
}

sizes() {
  local i
  for i in "$img_wrapi" "$img_fakeopenai" "$img_memcached" "$img_dynamodb"; do
    printf '%-40s %s\n' "$i" "$(size "$i")"
  done
}

case "${1:-}" in
  build) shift; build "$@" ;;
  sizes) sizes ;;
  *) sed -n '2,21p' "$0" >&2; exit 2 ;;
esac
