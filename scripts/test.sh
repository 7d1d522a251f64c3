#!/usr/bin/env bash
# The one test command: installs what the tests need on a fresh Debian/Ubuntu machine
# (PostgreSQL server and client, util-linux's `script`, asciinema to check that exported
# recordings play in a standard player, OpenSSH server and client, kubectl and openssl for
# the target tests, node and the npm package oidc-provider for the identity tests), then
# runs every test.
# Extra arguments go to `cargo test`, e.g. `scripts/test.sh exec_pty`.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
command -v psql >/dev/null 2>&1 || need+=(postgresql-client)
compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null || need+=(postgresql)
command -v script >/dev/null 2>&1 || need+=(bsdutils)
command -v asciinema >/dev/null 2>&1 || need+=(asciinema)
command -v ssh >/dev/null 2>&1 || need+=(openssh-client)
[ -x /usr/sbin/sshd ] || need+=(openssh-server)
command -v kubectl >/dev/null 2>&1 || need+=(kubernetes-client)
command -v openssl >/dev/null 2>&1 || need+=(openssl)
if [ "$(id -u)" -eq 0 ] && ! getent passwd postgres >/dev/null; then
  # Running as root, the tests start PostgreSQL as the `postgres` user the package creates.
  need+=(postgresql)
fi
if [ ${#need[@]} -gt 0 ]; then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  echo "scripts/test.sh: installing ${need[*]}" >&2
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}"
fi

# The identity tests run a real OpenID provider (npm package oidc-provider) with node.
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  echo "scripts/test.sh: installing nodejs and npm" >&2
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends nodejs npm
fi
if [ "$(node -p 'process.versions.node.split(".")[0]')" -lt 20 ]; then
  echo "scripts/test.sh: the identity tests need node 20 or later (oidc-provider 9); found $(node --version)" >&2
  exit 1
fi
if [ ! -d tests/oidc/node_modules/oidc-provider ] || [ tests/oidc/package-lock.json -nt tests/oidc/node_modules ]; then
  (cd tests/oidc && npm ci --no-audit --no-fund --loglevel=error)
fi

cargo test --locked "$@"
