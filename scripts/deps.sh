#!/usr/bin/env bash
# Installs what hoopx needs to build and to be tested on a fresh Debian/Ubuntu machine, each
# only when missing, with sudo when not root: a C compiler and libclang (the pg_query crate
# compiles PostgreSQL's own SQL parser), the PostgreSQL server and client (psql, pg_dump,
# pgbench), python3-psycopg (a real extended-protocol client), util-linux's `script`,
# asciinema (exported recordings must play in a standard player), OpenSSH server and client,
# kubectl and openssl for the target tests, node and the npm package oidc-provider for the
# identity tests.
# `scripts/deps.sh --build` installs only what building needs (cargo install).
set -euo pipefail
cd "$(dirname "$0")/.."

build_only=false
[ "${1:-}" = "--build" ] && build_only=true

need=()
command -v cc >/dev/null 2>&1 || need+=(gcc libc6-dev)
# bindgen (pg_query's build) loads libclang and parses C headers with clang's own.
compgen -G "/usr/lib/llvm-*/lib/libclang*.so*" >/dev/null || need+=(libclang-dev)
compgen -G "/usr/lib/llvm-*/lib/clang/*/include/stddef.h" >/dev/null || need+=(clang)
if ! $build_only; then
command -v psql >/dev/null 2>&1 || need+=(postgresql-client)
compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null || need+=(postgresql)
command -v script >/dev/null 2>&1 || need+=(bsdutils)
command -v asciinema >/dev/null 2>&1 || need+=(asciinema)
command -v ssh >/dev/null 2>&1 || need+=(openssh-client)
[ -x /usr/sbin/sshd ] || need+=(openssh-server)
command -v kubectl >/dev/null 2>&1 || need+=(kubernetes-client)
command -v openssl >/dev/null 2>&1 || need+=(openssl)
# The docs' examples run as written in tests: `curl … /v1/keys | jq …`, `hoopx man exec | man -l -`.
command -v curl >/dev/null 2>&1 || need+=(curl)
command -v jq >/dev/null 2>&1 || need+=(jq)
command -v man >/dev/null 2>&1 || need+=(man-db)
/usr/bin/python3 -c 'import psycopg' >/dev/null 2>&1 || need+=(python3-psycopg)
if [ "$(id -u)" -eq 0 ] && ! getent passwd postgres >/dev/null; then
  # Running as root, the tests start PostgreSQL as the `postgres` user the package creates.
  need+=(postgresql)
fi
fi
if [ ${#need[@]} -gt 0 ]; then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  echo "scripts/deps.sh: installing ${need[*]}" >&2
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}"
fi

$build_only && exit 0

# The identity tests run a real OpenID provider (npm package oidc-provider) with node.
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  echo "scripts/deps.sh: installing nodejs and npm" >&2
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends nodejs npm
fi
if [ "$(node -p 'process.versions.node.split(".")[0]')" -lt 20 ]; then
  echo "scripts/deps.sh: the identity tests need node 20 or later (oidc-provider 9); found $(node --version)" >&2
  exit 1
fi
if [ ! -d tests/oidc/node_modules/oidc-provider ] || [ tests/oidc/package-lock.json -nt tests/oidc/node_modules ]; then
  (cd tests/oidc && npm ci --no-audit --no-fund --loglevel=error)
fi

