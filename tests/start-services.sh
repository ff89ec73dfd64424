#!/usr/bin/env bash
# What the test suite needs beyond Python and Node: Chromium for the browser journeys, and a
# PostgreSQL server on 127.0.0.1:5432.
# Chromium: Playwright cannot download its own browser here, so the journeys drive the machine's;
# installed (as root, Debian) if missing. Without it the journeys are skipped, except under CI.
# PostgreSQL: starts the machine's cluster if it is installed but down; installs it (as root, Debian)
# if missing. Without PostgreSQL the database tests are skipped, except under CI (CI=true), where they fail.
set -u
have_chromium() {
  [ -n "${LEVA_CHROMIUM:-}" ] || command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 \
    || command -v google-chrome >/dev/null 2>&1 || command -v google-chrome-stable >/dev/null 2>&1
}
if ! have_chromium; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing Chromium (Debian package) for the browser journeys"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
  fi
  have_chromium || echo "no Chromium (not root, or not Debian): the browser journeys will be skipped (or fail under CI)" >&2
fi
if pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; then
  exit 0
fi
if ! command -v pg_ctlcluster >/dev/null 2>&1 && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "installing PostgreSQL (Debian package)"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
fi
if command -v pg_ctlcluster >/dev/null 2>&1; then
  version=$(ls /etc/postgresql | sort -V | tail -1)
  pg_ctlcluster --skip-systemctl-redirect "$version" main start 2>/dev/null || true
  for _ in $(seq 20); do pg_isready -q -h 127.0.0.1 -p 5432 && exit 0; sleep 0.5; done
fi
echo "PostgreSQL is not reachable on 127.0.0.1:5432: its tests will be skipped (or fail under CI)" >&2
exit 0
