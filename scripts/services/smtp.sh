#!/usr/bin/env bash
# A local SMTP server (aiosmtpd) that keeps every message it accepts, for trying Latchkey's
# audit e-mails by hand. The test suite starts its own aiosmtpd on a free port per test (so it
# can stop it to test "SMTP down"); it only needs `install`.
#
#   scripts/services/smtp.sh install | start | stop | status | env
#
#   install  apt-get install python3-aiosmtpd if Debian's python3 cannot import it
#   start    start aiosmtpd on 127.0.0.1 (already running -> nothing to do); plain SMTP with
#            STARTTLS offered (self-signed certificate for 127.0.0.1, made on first start)
#   stop     stop it (not running -> nothing to do)
#   status   "running ..." (exit 0) or "stopped" (exit 1)
#   env      print the settings for a Latchkey config file and where messages land, e.g.
#            eval "$(scripts/services/smtp.sh env)"
#
# Knobs (environment):
#   LATCHKEY_SMTP_DIR   state: pid, log, certificate, maildir      (/tmp/latchkey-smtp)
#   LATCHKEY_SMTP_PORT  TCP port, bound on 127.0.0.1 only          (2525)
#
# Messages are written one file each to LATCHKEY_SMTP_DIR/maildir/new/. Matching settings:
#
#   [notifications.smtp]
#   host = "127.0.0.1"
#   port = 2525
#   security = "starttls"
#   ca_file = "/tmp/latchkey-smtp/cert.pem"
#   from = "latchkey@example.com"
#
# Debian's /usr/bin/python3 is used on purpose: a python3 earlier on PATH (pyenv and the like)
# does not see Debian's python3-aiosmtpd.
set -euo pipefail

SMTP_DIR=${LATCHKEY_SMTP_DIR:-/tmp/latchkey-smtp}
SMTP_PORT=${LATCHKEY_SMTP_PORT:-2525}
PY=/usr/bin/python3
PIDFILE="$SMTP_DIR/smtp.pid"
LOG="$SMTP_DIR/smtp.log"

case "$SMTP_PORT" in '' | *[!0-9]*) echo "smtp.sh: LATCHKEY_SMTP_PORT must be a number, got '$SMTP_PORT'" >&2; exit 2 ;; esac

log() { echo "smtp.sh: $*" >&2; }

installed() { "$PY" -c 'import aiosmtpd' >/dev/null 2>&1; }

install() {
  installed && return 0
  [ "$(id -u)" = 0 ] || { log "python3-aiosmtpd is missing and this is not root; install python3-aiosmtpd"; exit 1; }
  log "installing python3-aiosmtpd ..."
  apt-get -o DPkg::Lock::Timeout=300 update -qq
  DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 install -y -qq --no-install-recommends \
    python3-aiosmtpd >/dev/null
  installed || { log "install finished but $PY still cannot import aiosmtpd"; exit 1; }
}

running() { [ -f "$PIDFILE" ] && kill -0 "$(cat "$PIDFILE")" 2>/dev/null; }

ready() { (exec 3<>"/dev/tcp/127.0.0.1/$SMTP_PORT") 2>/dev/null; }

start() {
  install
  if running; then
    log "already running (pid $(cat "$PIDFILE"))"
    return 0
  fi
  mkdir -p "$SMTP_DIR/maildir/new" "$SMTP_DIR/maildir/cur" "$SMTP_DIR/maildir/tmp"
  if [ ! -f "$SMTP_DIR/cert.pem" ]; then
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 3650 -subj '/CN=127.0.0.1' \
      -addext 'subjectAltName=IP:127.0.0.1,DNS:localhost' -addext 'basicConstraints=critical,CA:FALSE' \
      -keyout "$SMTP_DIR/key.pem" -out "$SMTP_DIR/cert.pem" 2>/dev/null
    chmod 600 "$SMTP_DIR/key.pem"
  fi
  # -n: stay as this user (setuid to nobody could not write the maildir).
  "$PY" -u -m aiosmtpd -n -l "127.0.0.1:$SMTP_PORT" --tlscert "$SMTP_DIR/cert.pem" --tlskey "$SMTP_DIR/key.pem" \
    --no-requiretls -c aiosmtpd.handlers.Mailbox "$SMTP_DIR/maildir" >"$LOG" 2>&1 </dev/null &
  echo $! >"$PIDFILE"
  for _ in $(seq 1 100); do
    ready && break
    running || { log "aiosmtpd exited:"; cat "$LOG" >&2; exit 1; }
    sleep 0.05
  done
  ready || { log "aiosmtpd is not answering on 127.0.0.1:$SMTP_PORT"; cat "$LOG" >&2; exit 1; }
  log "running on 127.0.0.1:$SMTP_PORT (pid $(cat "$PIDFILE")); messages in $SMTP_DIR/maildir/new"
}

stop() {
  if ! running; then
    rm -f "$PIDFILE"
    log "not running"
    return 0
  fi
  local pid
  pid=$(cat "$PIDFILE")
  kill "$pid"
  for _ in $(seq 1 50); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  if kill -0 "$pid" 2>/dev/null; then kill -9 "$pid"; fi
  rm -f "$PIDFILE"
  log "stopped"
}

print_env() {
  cat <<EOF
export LATCHKEY_SMTP_HOST=127.0.0.1
export LATCHKEY_SMTP_PORT=$SMTP_PORT
export LATCHKEY_SMTP_CA_FILE=$SMTP_DIR/cert.pem
export LATCHKEY_SMTP_MAILDIR=$SMTP_DIR/maildir
EOF
}

case "${1:-}" in
  install) install ;;
  start) start ;;
  stop) stop ;;
  status)
    if running; then echo "running (pid $(cat "$PIDFILE"), 127.0.0.1:$SMTP_PORT)"; else echo "stopped"; exit 1; fi
    ;;
  env) print_env ;;
  *)
    echo "usage: $0 {install|start|stop|status|env}" >&2
    exit 2
    ;;
esac
