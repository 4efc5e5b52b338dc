#!/usr/bin/env bash
# Makes sure Postgres (127.0.0.1:5432) and Redis (127.0.0.1:6379) answer: starts them when they are
# installed but stopped, installs them with apt-get when missing (CI on a fresh machine).
set -euo pipefail

pg_up() { pg_isready -h 127.0.0.1 -p 5432 -q 2>/dev/null; }
redis_up() { redis-cli -h 127.0.0.1 -p 6379 ping 2>/dev/null | grep -q PONG; }

if ! pg_up; then
  if ! ls /etc/postgresql/*/main >/dev/null 2>&1; then
    echo "ensure-services: installing PostgreSQL"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
  fi
  ver=$(ls /etc/postgresql | sort -V | tail -1)
  conf=/etc/postgresql/$ver/main/pg_hba.conf
  # Tests connect as postgres over TCP without a password, as on the project's machines.
  if ! grep -q "switchboard-trust" "$conf"; then
    sed -i '1i host all all 127.0.0.1/32 trust # switchboard-trust\nhost all all ::1/128 trust # switchboard-trust\nlocal all all trust # switchboard-trust' "$conf"
  fi
  pg_ctlcluster --skip-systemctl-redirect "$ver" main start || true
  for _ in $(seq 1 30); do pg_up && break; sleep 1; done
  pg_up || { echo "ensure-services: PostgreSQL did not start" >&2; exit 1; }
fi

if ! redis_up; then
  if ! command -v redis-server >/dev/null; then
    echo "ensure-services: installing Redis"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >/dev/null
  fi
  mkdir -p /var/lib/redis /var/log/redis
  redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no --dir /var/lib/redis --logfile /var/log/redis/ci.log
  for _ in $(seq 1 30); do redis_up && break; sleep 1; done
  redis_up || { echo "ensure-services: Redis did not start" >&2; exit 1; }
fi
# The dashboard's browser test drives Debian's Chromium through playwright-core (executablePath).
if [ ! -x /usr/bin/chromium ]; then
  echo "ensure-services: installing Chromium"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
fi
# The deployment test renders the Kubernetes manifests offline with `kubectl kustomize`.
if ! command -v kubectl >/dev/null; then
  echo "ensure-services: installing kubectl"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq kubectl >/dev/null
fi
echo "ensure-services: postgres and redis are up"
