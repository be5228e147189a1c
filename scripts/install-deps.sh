#!/bin/sh
# Install the Debian/Ubuntu packages cachetoryd needs to build, test and run.
#
#   scripts/install-deps.sh           apt-get update, then install whatever is missing
#   scripts/install-deps.sh --check   exit 0 if everything is installed, 1 (listing what is missing) if not
#
# Installing needs root: the script uses sudo when run as another user and sudo exists. Nothing is
# done (not even apt-get update) when every package is already there. `make deps` runs --check first.
#
# Last, when npm exists: the Node.js clients of the TLS listener tests (ioredis, node-redis, pinned in
# tests/clients/node/package-lock.json) are installed with `npm ci` into tests/clients/node/node_modules,
# as the invoking user, if that directory is missing or was installed from another package-lock.json.
# --check reports (exit 1) a missing or stale node_modules as well.
set -eu

ROOT=$(cd "$(dirname "$0")/.." && pwd)
NODE_DIR=$ROOT/tests/clients/node
# a copy of the package-lock.json that node_modules was installed from (written after npm ci succeeds)
NODE_STAMP=$NODE_DIR/node_modules/.installed-package-lock.json

# Build: compiler and pkg-config, then one -dev package per library in the Makefile's LIBS_PC.
# Tests: cmocka (unit), a real redis and python (integration, compared against redis), procps (pgrep),
# valgrind (make test VALGRIND=1, and the valgrind smoke of make test), faketime (a daemon whose clock
# differs from the upstream's). The container image and its tests (make image,
# tests/integration/test_container.py): podman with runc (Debian's podman prefers crun, which fails on
# hosts with hybrid cgroups; the tests pass --runtime runc), catatonit (the pause process of the pods
# that podman kube play makes, built locally: no registry is reached), iproute2 (ip brings up the
# loopback of the network namespace where the static binary's DNS lookup meets a responder of the
# test's own) and python3-yaml (the test reads deploy/kubernetes.yaml).
PACKAGES="
build-essential
pkg-config
libuv1-dev
libhiredis-dev
zlib1g-dev
libzstd-dev
libmsgpack-dev
libinih-dev
libssl-dev
libcmocka-dev
redis-server
redis-tools
python3
python3-redis
python3-pytest
python3-msgpack
python3-zstd
python3-yaml
zstd
procps
valgrind
faketime
groff-base
man-db
systemd
nutcracker
gnuplot-nox
podman
runc
catatonit
iproute2
"

# The Node.js clients of the tests (ioredis, node-redis, tests/clients/node) need node and npm: Debian's,
# unless the machine has its own already.
if ! command -v npm >/dev/null 2>&1; then
    PACKAGES="$PACKAGES nodejs npm"
fi

usage() {
    echo "usage: $0 [--check]" >&2
    exit 2
}

# Print the packages of $PACKAGES that are not installed, separated by spaces.
missing_packages() {
    for pkg in $PACKAGES; do
        # ${Status} is "install ok installed" only for a package that is fully installed (not one
        # merely unpacked, half-configured or removed with its config files left).
        status=$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null || true)
        if [ "$status" != "install ok installed" ]; then
            printf '%s ' "$pkg"
        fi
    done
}

# Exit status 0 if tests/clients/node/node_modules was installed from the current package-lock.json.
node_clients_fresh() {
    [ -d "$NODE_DIR/node_modules" ] && [ -f "$NODE_STAMP" ] && cmp -s "$NODE_DIR/package-lock.json" "$NODE_STAMP"
}

# --check: 1 (with a message) if npm exists and node_modules is missing or stale, else 0.
check_node_clients() {
    if ! command -v npm >/dev/null 2>&1; then
        echo "note: npm not found: the Node.js client tests (ioredis, node-redis) cannot run"
        return 0
    fi
    if node_clients_fresh; then
        echo "node clients installed ($NODE_DIR/node_modules)"
        return 0
    fi
    echo "node clients missing or stale: $NODE_DIR/node_modules"
    echo "install them with: $0"
    return 1
}

# Install the node clients with npm ci when npm exists and node_modules is missing or stale.
install_node_clients() {
    if ! command -v npm >/dev/null 2>&1; then
        echo "note: npm not found: skipping the Node.js clients of the tests (ioredis, node-redis)"
        return 0
    fi
    if node_clients_fresh; then
        echo "node clients installed"
        return 0
    fi
    echo "installing the node clients: npm ci in $NODE_DIR"
    # npm ci removes node_modules first, so a failed run leaves no stamp behind
    (cd "$NODE_DIR" && npm ci --no-audit --no-fund) || {
        echo "$0: npm ci failed in $NODE_DIR" >&2
        return 1
    }
    cp "$NODE_DIR/package-lock.json" "$NODE_STAMP"
    echo "node clients installed"
}

check=0
case $# in
0) ;;
1) [ "$1" = "--check" ] || usage; check=1 ;;
*) usage ;;
esac

if ! command -v dpkg-query >/dev/null 2>&1; then
    echo "$0: dpkg-query not found: this script is for Debian and Ubuntu." >&2
    echo "Install the equivalents of:" "$(echo "$PACKAGES" | tr '\n' ' ')" >&2
    exit 1
fi

missing=$(missing_packages)
missing=${missing% }

if [ "$check" -eq 1 ]; then
    status=0
    if [ -n "$missing" ]; then
        echo "missing packages: $missing"
        echo "install them with: $0"
        status=1
    else
        echo "all packages installed"
    fi
    check_node_clients || status=1
    exit $status
fi

if [ -z "$missing" ]; then
    echo "all packages installed"
    install_node_clients
    exit $?
fi

if [ "$(id -u)" -eq 0 ]; then
    sudo=""
elif command -v sudo >/dev/null 2>&1; then
    sudo="sudo"
else
    echo "$0: installing packages needs root, and sudo is not available." >&2
    echo "As root, run:" >&2
    echo "  apt-get update && apt-get install -y --no-install-recommends $missing" >&2
    exit 1
fi

echo "installing: $missing"
# $sudo and $missing are meant to split into words (package names have no spaces or wildcards).
# shellcheck disable=SC2086
$sudo env DEBIAN_FRONTEND=noninteractive apt-get update
# shellcheck disable=SC2086
$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $missing

still=$(missing_packages)
still=${still% }
if [ -n "$still" ]; then
    echo "$0: still missing after apt-get install: $still" >&2
    exit 1
fi
echo "all packages installed"
install_node_clients
