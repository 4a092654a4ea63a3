#!/usr/bin/env bash
# Installs the Debian packages the test suite needs when they are missing (as root), or says exactly
# what to install (as a normal user). Needed: a PostgreSQL 15 server and client, and pgTAP for it.
set -euo pipefail
BINDIR="${CALSYNC_PG_BINDIR:-/usr/lib/postgresql/15/bin}"
missing=()
[ -x "$BINDIR/postgres" ] || missing+=(postgresql-15 postgresql-contrib)
command -v psql >/dev/null 2>&1 || [ -x "$BINDIR/psql" ] || missing+=(postgresql-client-15)
sharedir="$("$BINDIR/pg_config" --sharedir 2>/dev/null || echo /usr/share/postgresql/15)"
[ -f "$sharedir/extension/pgtap.control" ] || missing+=(postgresql-15-pgtap)
if [ ${#missing[@]} -eq 0 ]; then
    exit 0
fi
if [ "$(id -u)" = 0 ]; then
    echo "Installing Debian packages: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
else
    echo "calsync tests need these Debian packages: ${missing[*]}" >&2
    echo "Install them with:  sudo apt-get install ${missing[*]}" >&2
    exit 1
fi
