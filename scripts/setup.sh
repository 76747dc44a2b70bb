#!/usr/bin/env bash
# Install what Dockyard needs on Debian 12, then the Python environment in .venv.
#
#   scripts/setup.sh runtime   what serving needs: Python 3.11+ with venv, `pip install -e .`,
#                              and the web UI's npm packages (`npm ci` from web/package-lock.json)
#   scripts/setup.sh test      everything the tests run as well: the real container clients
#                              (skopeo, podman, buildah, docker, containerd/ctr), the reference
#                              registry, busybox for the test image, psql, nginx, wrk,
#                              Chromium for the UI tests; `pip install -e '.[test]'`, and the
#                              UI's npm packages with the test ones (axe-core)
#
# Idempotent: Debian packages already installed (checked with dpkg-query) are left alone and
# `apt-get update` runs only when something is missing. As root, missing packages are
# installed with `apt-get install -y --no-install-recommends`; as another user the script
# stops and lists them. Daemons that packages would start on install (dockerd, containerd,
# nginx) are held back with a temporary policy-rc.d: the tests start private instances.
#
# Environment: DOCKYARD_VENV (default: <repo>/.venv), PYTHON (default: python3).
set -euo pipefail

usage() {
    echo "usage: $0 runtime|test" >&2
    exit 2
}
[[ $# -eq 1 ]] || usage
mode=$1
case "$mode" in
    runtime | test) ;;
    *) usage ;;
esac

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
venv=${DOCKYARD_VENV:-$repo/.venv}
python=${PYTHON:-python3}

say() { printf '==> %s\n' "$*"; }
die() {
    printf 'setup.sh: %s\n' "$*" >&2
    exit 1
}

# --- Debian packages --------------------------------------------------------------------

packages=()
if ! command -v "$python" >/dev/null 2>&1 ||
    ! "$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
    packages+=(python3 python3-venv)
    python=/usr/bin/python3
elif ! "$python" -c 'import venv, ensurepip' 2>/dev/null; then
    packages+=(python3-venv)
fi
# npm installs the web UI's packages (Debian's npm brings Node.js); a Node.js installed
# another way is used as it is.
command -v npm >/dev/null 2>&1 || packages+=(npm)

test_packages=(
    # podman, buildah and skopeo; runc because crun cannot run containers on hybrid cgroups
    skopeo buildah podman runc uidmap conmon golang-github-containers-common
    # the network of builds whose RUN steps may reach other hosts (never the server's loopback)
    slirp4netns
    # the private dockerd and containerd (ctr) the client tests start
    docker.io containerd
    # reference registry (CNCF Distribution), the test image's busybox, PostgreSQL client, rpm
    # (rpmbuild and an SQLite rpm database for the package index tests), and db5.3-util
    # (db5.3_load writes the BerkeleyDB rpm database of older RPM images for the same tests)
    docker-registry busybox-static postgresql-client rpm db5.3-util
    # load balancer and load generator for the scale-out tests and benchmarks
    nginx wrk
    # the benchmark's load tools (hey for HEAD: Debian's wrk hangs on HEAD) and blob client
    hey curl
    # htpasswd (bcrypt) for the reference registries with Basic auth in the upstream tests
    apache2-utils
    # git, and ssh for ssh:// git contexts (git only recommends it)
    git openssh-client ca-certificates
    # the browser the UI tests drive with Playwright (never a downloaded one)
    chromium
    # real S3 for the S3 storage driver's tests: one-node Ceph with radosgw (scripts/ceph.sh)
    ceph-mon ceph-osd radosgw ceph-common uuid-runtime
)
if [[ $mode == test ]]; then
    packages+=("${test_packages[@]}")
fi

missing=()
if ((${#packages[@]})); then
    command -v dpkg-query >/dev/null 2>&1 ||
        die "this script installs Debian packages and needs dpkg/apt; install these by hand: ${packages[*]}"
    for package in "${packages[@]}"; do
        status=$(dpkg-query -W -f='${Status}' "$package" 2>/dev/null || true)
        [[ $status == "install ok installed" ]] || missing+=("$package")
    done
fi

if ((${#missing[@]})); then
    if [[ $(id -u) -ne 0 ]]; then
        die "missing Debian packages: ${missing[*]}
run as root, or install them first:
  sudo apt-get update && sudo apt-get install -y --no-install-recommends ${missing[*]}"
    fi
    say "installing Debian packages: ${missing[*]}"
    policy=/usr/sbin/policy-rc.d
    if [[ ! -e $policy ]]; then
        printf '#!/bin/sh\n# written by dockyard scripts/setup.sh during apt-get install\nexit 101\n' >"$policy"
        chmod 755 "$policy"
        trap 'rm -f "$policy"' EXIT
    fi
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
elif ((${#packages[@]})); then
    say "Debian packages: all ${#packages[@]} present"
else
    say "Debian packages: none needed ($("$python" -V 2>&1) with venv)"
fi

if [[ $mode == test ]]; then
    tools=(skopeo podman buildah runc newuidmap conmon dockerd docker containerd ctr
        containerd-shim-runc-v2 docker-registry busybox psql nginx wrk hey curl git htpasswd
        slirp4netns unshare ssh chromium ceph-mon ceph-osd radosgw radosgw-admin ceph uuidgen)
    absent=()
    for tool in "${tools[@]}"; do
        PATH=$PATH:/usr/sbin:/sbin:/usr/libexec/podman command -v "$tool" >/dev/null 2>&1 || absent+=("$tool")
    done
    ((${#absent[@]} == 0)) || die "installed, but still not found on PATH: ${absent[*]}"
    [[ -x /bin/busybox ]] || die "/bin/busybox (busybox-static) is missing: the test image is built from it"
fi

# --- the web UI's npm packages ----------------------------------------------------------
# Installed from web/package-lock.json (exact versions and integrity hashes), then the files
# the UI loads are copied into the package's static folder with their licences. A stamp of the
# lock file and the mode skips this when nothing changed.

web=$repo/web
vendor=$repo/src/dockyard/web/static/vendor
stamp="$mode $(sha256sum "$web/package-lock.json" | cut -d' ' -f1)"
if [[ ! -f $vendor/.stamp || $(cat "$vendor/.stamp") != "$stamp" ]]; then
    say "npm ci in web/ ($([[ $mode == test ]] && echo 'with the test packages' || echo 'runtime packages'))"
    npm_flags=(--no-audit --no-fund --ignore-scripts --loglevel=error)
    [[ $mode == runtime ]] && npm_flags+=(--omit=dev)
    (cd "$web" && npm ci "${npm_flags[@]}")
    mkdir -p "$vendor"
    cp "$web/node_modules/preact/dist/preact.mjs" "$vendor/preact.mjs"
    cp "$web/node_modules/preact/hooks/dist/hooks.mjs" "$vendor/hooks.mjs"
    cp "$web/node_modules/htm/dist/htm.mjs" "$vendor/htm.mjs"
    cp "$web/node_modules/preact/LICENSE" "$vendor/LICENSE.preact"
    cp "$web/node_modules/htm/LICENSE" "$vendor/LICENSE.htm"
    printf '%s' "$stamp" >"$vendor/.stamp"
else
    say "web UI packages: up to date"
fi

# --- Python environment -----------------------------------------------------------------

if [[ ! -x $venv/bin/python ]]; then
    say "creating $venv"
    "$python" -m venv "$venv"
fi
target=$repo
[[ $mode == test ]] && target="$repo[test,bench]"
say "pip install -e $( [[ $mode == test ]] && echo "'.[test,bench]'" || echo . ) into $venv"
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check -e "$target"
say "done: activate with '. $venv/bin/activate'"
