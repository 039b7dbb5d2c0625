#!/usr/bin/env bash
# What `pnpm test` needs beside Node and pnpm, checked before the tests run (by ./dev test and CI):
#   - Redis          at $CELERY_TS_REDIS_URL  (default redis://127.0.0.1:6379/0)
#   - RabbitMQ       at $CELERY_TS_AMQP_URL   (default amqp://guest:guest@127.0.0.1:5672//)
#   - PostgreSQL     at $CELERY_TS_POSTGRES_URL (default postgres://postgres@127.0.0.1:5432/test)
#   - Python Celery  5.x with redis and amqp, for /usr/bin/python3 (the real peer of the interop tests)
#   - Chromium       at $CHROMIUM_PATH (default /usr/bin/chromium), for the examples' browser tests
# What is missing is installed (Debian packages, when run as root with apt-get) or started (local
# servers, with the machine's own commands); what cannot be is reported, one line per piece, and the
# script fails. Nothing is ever stopped or restarted.
set -uo pipefail

redis_url="${CELERY_TS_REDIS_URL:-redis://127.0.0.1:6379/0}"
amqp_url="${CELERY_TS_AMQP_URL:-amqp://guest:guest@127.0.0.1:5672//}"
chromium="${CHROMIUM_PATH:-/usr/bin/chromium}"
problems=()

# host and port of a URL: scheme://[user[:pass]@]host[:port][/...]
host_of() { local a="${1#*://}"; a="${a%%/*}"; a="${a##*@}"; echo "${a%:*}"; }
port_of() { local a="${1#*://}"; a="${a%%/*}"; a="${a##*@}"; [[ "$a" == *:* ]] && echo "${a##*:}" || echo "$2"; }
port_open() { (echo >"/dev/tcp/$1/$2") 2>/dev/null; }
can_install() { [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; }

# Debian packages first: the servers may come with them.
packages=()
/usr/bin/python3 -c "import celery, redis, amqp" 2>/dev/null ||
  packages+=(python3-celery python3-redis python3-amqp)
[ -x "$chromium" ] || [ -n "${CHROMIUM_PATH:-}" ] || packages+=(chromium)
port_open "$(host_of "$redis_url")" "$(port_of "$redis_url" 6379)" || command -v redis-server >/dev/null ||
  packages+=(redis-server)
port_open "$(host_of "$amqp_url")" "$(port_of "$amqp_url" 5672)" || command -v rabbitmq-server >/dev/null ||
  packages+=(rabbitmq-server)
if [ ${#packages[@]} -gt 0 ]; then
  if can_install; then
    echo "installing ${packages[*]} (apt-get)"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${packages[@]}" >/dev/null
  fi
fi
/usr/bin/python3 -c "import celery, redis, amqp" 2>/dev/null ||
  problems+=("Python Celery: /usr/bin/python3 cannot import celery, redis and amqp; install them: sudo apt-get install python3-celery python3-redis python3-amqp (or pip install 'celery[redis]' for /usr/bin/python3)")
[ -x "$chromium" ] ||
  problems+=("Chromium: $chromium is missing; install it (sudo apt-get install chromium) or set CHROMIUM_PATH to a Chromium or Chrome binary")

# A local server that is down is started with the machine's own command; a remote one is reported.
ensure_server() { # name url default-port start-command install-hint
  local host port
  host=$(host_of "$2"); port=$(port_of "$2" "$3")
  port_open "$host" "$port" && return 0
  if [[ "$host" == 127.0.0.1 || "$host" == localhost ]] && command -v "${4%% *}" >/dev/null; then
    echo "$1 is not running on $host:$port; starting it"
    eval "$4" >/dev/null 2>&1
    for _ in $(seq 1 120); do port_open "$host" "$port" && return 0; sleep 1; done
  fi
  problems+=("$1: nothing answers on $host:$port; $5")
}
ensure_server Redis "$redis_url" 6379 \
  "redis-server --daemonize yes --bind 127.0.0.1 -::1 --port $(port_of "$redis_url" 6379) --save '' --appendonly no" \
  "start one (redis-server --daemonize yes), install it (sudo apt-get install redis-server), or set CELERY_TS_REDIS_URL"
ensure_server RabbitMQ "$amqp_url" 5672 "rabbitmq-server -detached" \
  "start it (rabbitmq-server -detached), install it (sudo apt-get install rabbitmq-server), or set CELERY_TS_AMQP_URL"

pg_url="${CELERY_TS_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/test}"
ensure_server PostgreSQL "$pg_url" 5432 \
  "pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql 2>/dev/null | head -1) main start" \
  "start it (pg_ctlcluster <version> main start), install it (sudo apt-get install postgresql), or set CELERY_TS_POSTGRES_URL"

# The RabbitMQ tests that close connections from the server side, as an operator would, use it.
command -v rabbitmqctl >/dev/null ||
  problems+=("rabbitmqctl: not on PATH (it comes with rabbitmq-server, in /usr/sbin on Debian); add its folder to PATH")

if [ ${#problems[@]} -gt 0 ]; then
  printf '%s\n' "${problems[@]}" >&2
  echo "pnpm test cannot run until the above is there (see README.md, \"Working on celery-ts\")" >&2
  exit 1
fi
