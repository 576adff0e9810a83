#!/usr/bin/env bash
# Private, throw-away PostgreSQL 15 cluster for Latchkey's test suite.
#
#   scripts/services/postgres.sh start | stop | status | env | install
#
#   start    install postgresql-15 if missing, initdb on first use, start the server
#            (already running -> nothing to do), make sure the superuser password matches
#   stop     fast shutdown (not running -> nothing to do)
#   status   "running ..." (exit 0) or "stopped" (exit 1)
#   env      print `export LATCHKEY_TEST_PG_URL=postgres://postgres:<pass>@127.0.0.1:<port>/postgres`
#            use as: eval "$(scripts/services/postgres.sh env)"
#   install  apt-get install postgresql-15 postgresql-client-15 if not installed
#
# Knobs (environment):
#   LATCHKEY_PG_DIR        cluster directory, also holds the unix socket   (/tmp/latchkey-pg)
#                          must be reachable by the `postgres` OS user (not under /root)
#   LATCHKEY_PG_PORT       TCP port, bound on 127.0.0.1 only               (55433)
#   LATCHKEY_PG_SUPERPASS  password of the `postgres` superuser            (latchkey-test)
#   LATCHKEY_PG_BIN        PostgreSQL binaries                             (/usr/lib/postgresql/15/bin)
#
# Auth: scram-sha-256 over TCP, trust on the unix socket inside LATCHKEY_PG_DIR (only the local
# postgres/root users can reach it). Tests connect over TCP with the superuser URL and create a
# fresh database per test.
#
# The server refuses to run as root, so when invoked as root every server command runs as the
# `postgres` OS user via `runuser -u postgres --`.
set -euo pipefail

PG_DIR=${LATCHKEY_PG_DIR:-/tmp/latchkey-pg}
PG_PORT=${LATCHKEY_PG_PORT:-55433}
PG_SUPERPASS=${LATCHKEY_PG_SUPERPASS:-latchkey-test}
PGBIN=${LATCHKEY_PG_BIN:-/usr/lib/postgresql/15/bin}
DATA="$PG_DIR/data"
LOG="$PG_DIR/postgres.log"

case "$PG_PORT" in '' | *[!0-9]*) echo "postgres.sh: LATCHKEY_PG_PORT must be a number, got '$PG_PORT'" >&2; exit 2 ;; esac
[ -n "$PG_SUPERPASS" ] || { echo "postgres.sh: LATCHKEY_PG_SUPERPASS must not be empty" >&2; exit 2; }

if [ "$(id -u)" = 0 ]; then
  AS_PG=(runuser -u postgres --)
else
  AS_PG=() # already an unprivileged user: run the server as ourselves
fi

log() { echo "postgres.sh: $*" >&2; }

installed() {
  [ -x "$PGBIN/pg_ctl" ] && [ -x "$PGBIN/initdb" ] && [ -x "$PGBIN/psql" ]
}

install() {
  installed && return 0
  [ "$(id -u)" = 0 ] || { log "PostgreSQL 15 not found in $PGBIN and not root; install postgresql-15 postgresql-client-15"; exit 1; }
  log "installing postgresql-15 postgresql-client-15 ..."
  apt-get -o DPkg::Lock::Timeout=300 update -qq
  DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 install -y -qq --no-install-recommends \
    postgresql-15 postgresql-client-15 >/dev/null
  installed || { log "install finished but $PGBIN/pg_ctl is still missing"; exit 1; }
}

running() {
  [ -f "$DATA/PG_VERSION" ] && "${AS_PG[@]}" "$PGBIN/pg_ctl" -D "$DATA" status >/dev/null 2>&1
}

# Percent-encode for the userinfo part of a URL (byte-wise, so UTF-8 passwords work too).
urlencode() {
  local LC_ALL=C s=$1 out='' c i
  for ((i = 0; i < ${#s}; i++)); do
    c=${s:i:1}
    case $c in
      [a-zA-Z0-9._~-]) out+=$c ;;
      *) printf -v c '%%%02X' "'$c"; out+=$c ;;
    esac
  done
  printf '%s' "$out"
}

init() {
  log "initdb in $DATA"
  mkdir -p "$PG_DIR"
  # Only ever wipe our own data subdirectory (never $PG_DIR itself: it may be user-chosen).
  rm -rf "$DATA"
  local pwfile="$PG_DIR/.pwfile"
  (umask 077 && printf '%s\n' "$PG_SUPERPASS" >"$pwfile")
  if [ ${#AS_PG[@]} -gt 0 ]; then
    chown postgres:postgres "$PG_DIR" "$pwfile"
  fi
  # -N: skip fsync during initdb (~4 s -> ~1 s); fine for a disposable test cluster.
  if ! "${AS_PG[@]}" "$PGBIN/initdb" -N -D "$DATA" -U postgres --pwfile="$pwfile" \
    --auth-local=trust --auth-host=scram-sha-256 -E UTF8 --locale=C.UTF-8 >"$PG_DIR/initdb.log" 2>&1; then
    rm -f "$pwfile"
    cat "$PG_DIR/initdb.log" >&2
    log "initdb failed"
    exit 1
  fi
  rm -f "$pwfile"
}

start() {
  install
  if [ ! -f "$DATA/PG_VERSION" ]; then
    init
  fi
  if running; then
    log "already running (pid $(head -1 "$DATA/postmaster.pid"), port $PG_PORT)"
  else
    # TEST-ONLY settings: fsync/synchronous_commit/full_page_writes off trade crash safety for
    # speed (the suite creates and drops a database per test); never use these for real data.
    # max_connections=400: many tests run in parallel, each with its own pool.
    if ! "${AS_PG[@]}" "$PGBIN/pg_ctl" -D "$DATA" -l "$LOG" -w -t 60 \
      -o "-c listen_addresses=127.0.0.1 -p $PG_PORT -k $PG_DIR -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=400" \
      start >/dev/null; then
      tail -n 30 "$LOG" >&2 || true
      log "failed to start (log: $LOG)"
      exit 1
    fi
    log "started (pid $(head -1 "$DATA/postmaster.pid"), 127.0.0.1:$PG_PORT, log: $LOG)"
  fi
  # Keep the superuser password in step with LATCHKEY_PG_SUPERPASS even for a reused cluster.
  # Sent on stdin (not argv) over the trusted unix socket.
  local sqlpw=${PG_SUPERPASS//\'/\'\'}
  "$PGBIN/psql" -X -q -h "$PG_DIR" -p "$PG_PORT" -U postgres -d postgres -v ON_ERROR_STOP=1 >/dev/null <<SQL
SET log_statement = 'none';
ALTER ROLE postgres PASSWORD '$sqlpw';
SQL
}

stop() {
  if running; then
    "${AS_PG[@]}" "$PGBIN/pg_ctl" -D "$DATA" -m fast -w -t 60 stop >/dev/null
    log "stopped"
  else
    log "not running"
  fi
}

status() {
  if running; then
    echo "running (pid $(head -1 "$DATA/postmaster.pid"), 127.0.0.1:$PG_PORT, dir $PG_DIR)"
  else
    echo "stopped (dir $PG_DIR)"
    return 1
  fi
}

print_env() {
  echo "export LATCHKEY_TEST_PG_URL=postgres://postgres:$(urlencode "$PG_SUPERPASS")@127.0.0.1:$PG_PORT/postgres"
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  status) status ;;
  env) print_env ;;
  install) install ;;
  *) echo "usage: $0 {start|stop|status|env|install}" >&2; exit 2 ;;
esac
