#!/usr/bin/env bash
# Samba 4 as a real Active Directory domain controller on 127.0.0.1, for Latchkey's directory
# tests (sync and LDAP bind).
#
#   scripts/services/samba-ad.sh install | start | stop | status | env
#
#   install  apt-get install the Samba AD DC packages if missing (needs root)
#   start    install if missing, provision on first use (the data directory is reused after
#            that), start the DC (already running -> nothing to do), wait until LDAPS answers
#   stop     stop the DC by its PID (SIGTERM, SIGKILL after 15 s)
#   status   "running ..." (exit 0) or "stopped" (exit 1)
#   env      print export lines: eval "$(scripts/services/samba-ad.sh env)"
#
# Knobs (environment):
#   LATCHKEY_SAMBA_DIR        data directory (smb.conf, sam.ldb, TLS files)   (/tmp/latchkey-samba)
#   LATCHKEY_SAMBA_REALM      Kerberos realm / DNS domain                      (LATCHKEY.TEST)
#   LATCHKEY_SAMBA_DOMAIN     NetBIOS domain                                   (LATCHKEY)
#   LATCHKEY_SAMBA_ADMINPASS  Administrator password                           (Adm1n!Passw0rd)
#
# Samba's LDAP ports are fixed (389, 636, 3268, 3269, plus 88 and 135): one DC per machine.
# Tests share it and create uniquely named OUs and objects. Simple binds need TLS: the DC gets
# its own CA and a server certificate for IP:127.0.0.1, so clients keep certificate checking on.
# Nothing is written under /etc/samba, /var/lib/samba or /run: every path is inside the data dir.
set -euo pipefail

SAMBA_DIR=${LATCHKEY_SAMBA_DIR:-/tmp/latchkey-samba}
REALM=${LATCHKEY_SAMBA_REALM:-LATCHKEY.TEST}
DOMAIN=${LATCHKEY_SAMBA_DOMAIN:-LATCHKEY}
ADMINPASS=${LATCHKEY_SAMBA_ADMINPASS:-'Adm1n!Passw0rd'}
realm_lc=$(tr '[:upper:]' '[:lower:]' <<<"$REALM")
BASE_DN=$(sed 's/^/DC=/; s/\./,DC=/g' <<<"$realm_lc")
ADMIN_DN="CN=Administrator,CN=Users,$BASE_DN"
CONF=$SAMBA_DIR/etc/smb.conf
PIDFILE=$SAMBA_DIR/samba.pid
CA=$SAMBA_DIR/tls/ca.pem
PKGS=(samba samba-ad-provision samba-dsdb-modules samba-vfs-modules winbind krb5-user ldb-tools ldap-utils)

log() { echo "samba-ad.sh: $*" >&2; }

installed() {
  local n
  n=$(dpkg-query -W -f='${Status}\n' "${PKGS[@]}" 2>/dev/null | grep -c 'install ok installed' || true)
  [ "$n" -eq ${#PKGS[@]} ]
}

install() {
  installed && return 0
  [ "$(id -u)" = 0 ] || { log "the Samba packages are missing and this is not root; install: ${PKGS[*]}"; exit 1; }
  log "installing ${PKGS[*]} ..."
  apt-get -o DPkg::Lock::Timeout=300 update -qq
  # krb5-user asks debconf questions: noninteractive takes the defaults.
  DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 install -y -qq --no-install-recommends \
    "${PKGS[@]}" >/dev/null
  installed || { log "install finished but packages are still missing"; exit 1; }
}

provision() {
  log "provisioning $REALM in $SAMBA_DIR"
  # Only ever wipe our own data directory.
  rm -rf "$SAMBA_DIR"
  mkdir -p "$SAMBA_DIR/log" "$SAMBA_DIR/run"
  if ! samba-tool domain provision --targetdir="$SAMBA_DIR" \
    --realm="$REALM" --domain="$DOMAIN" --server-role=dc --dns-backend=NONE \
    --host-name=DC1 --host-ip=127.0.0.1 --adminpass="$ADMINPASS" --use-rfc2307 \
    --option='interfaces = lo' --option='bind interfaces only = yes' \
    --option="log file = $SAMBA_DIR/log/log.%m" \
    --option="pid directory = $SAMBA_DIR/run" --option="ncalrpc dir = $SAMBA_DIR/run/ncalrpc" \
    --option="winbindd socket directory = $SAMBA_DIR/run/winbindd" \
    --option="ntp signd socket directory = $SAMBA_DIR/run/ntp_signd" \
    --option='dsdb:schema update allowed = true' \
    >"$SAMBA_DIR/log/provision.log" 2>&1; then
    tail -n 20 "$SAMBA_DIR/log/provision.log" >&2
    log "provision failed (log: $SAMBA_DIR/log/provision.log)"
    exit 1
  fi
  # Only the services the tests need (the default set also starts smbd, nmbd, winbindd, ...).
  sed -i 's/^\tserver services = .*/\tserver services = ldap, kdc, rpc/' "$CONF"
  # A private CA and a server certificate for IP:127.0.0.1 (Samba's own is for dc1.<realm>
  # only). Samba refuses a key file that is not mode 0600.
  local t=$SAMBA_DIR/tls
  mkdir -p "$t"
  openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj '/CN=Latchkey test directory CA' \
    -keyout "$t/ca.key" -out "$t/ca.pem" 2>/dev/null
  openssl req -newkey rsa:2048 -nodes -subj "/CN=dc1.$realm_lc" -keyout "$t/key.pem" -out "$t/req.csr" 2>/dev/null
  printf 'subjectAltName=IP:127.0.0.1,DNS:dc1.%s,DNS:localhost\nextendedKeyUsage=serverAuth\n' "$realm_lc" >"$t/ext.cnf"
  openssl x509 -req -in "$t/req.csr" -CA "$t/ca.pem" -CAkey "$t/ca.key" -CAcreateserial -days 3650 \
    -extfile "$t/ext.cnf" -out "$t/cert.pem" 2>/dev/null
  chmod 600 "$t/key.pem" "$t/ca.key"
  sed -i "s|^\[global\]\$|[global]\n\ttls keyfile = $t/key.pem\n\ttls certfile = $t/cert.pem\n\ttls cafile = $t/ca.pem|" "$CONF"
  touch "$SAMBA_DIR/.provisioned"
}

running() { [ -f "$PIDFILE" ] && kill -0 "$(cat "$PIDFILE")" 2>/dev/null; }

ready() {
  LDAPTLS_CACERT=$CA LDAPTLS_REQCERT=demand \
    ldapsearch -LLL -x -H ldaps://127.0.0.1:636 -s base -b '' defaultNamingContext </dev/null >/dev/null 2>&1
}

start() {
  install
  if running; then
    log "already running (pid $(cat "$PIDFILE"))"
    return 0
  fi
  if [ ! -f "$SAMBA_DIR/.provisioned" ] || [ ! -f "$SAMBA_DIR/private/sam.ldb" ]; then
    provision
  fi
  rm -f "$SAMBA_DIR"/run/*.pid # stale pid files of an earlier run
  # -F --debug-stdout: foreground, log to stdout (not -i: it exits when stdin closes).
  # -M single: one process (~60 MiB) instead of the prefork workers (~950 MiB).
  (cd "$SAMBA_DIR" && exec samba -F --debug-stdout -M single -s "$CONF" >"$SAMBA_DIR/log/samba.out" 2>&1 </dev/null) &
  echo $! >"$PIDFILE"
  for _ in $(seq 1 300); do
    ready && break
    running || { tail -n 30 "$SAMBA_DIR/log/samba.out" >&2; log "samba exited during start"; rm -f "$PIDFILE"; exit 1; }
    sleep 0.1
  done
  ready || { tail -n 30 "$SAMBA_DIR/log/samba.out" >&2; log "not ready after 30 s"; exit 1; }
  log "started (pid $(cat "$PIDFILE"), ldaps://127.0.0.1:636, log: $SAMBA_DIR/log/samba.out)"
}

stop() {
  if ! running; then
    log "not running"
    rm -f "$PIDFILE"
    return 0
  fi
  local pid
  pid=$(cat "$PIDFILE")
  kill "$pid"
  for _ in $(seq 1 150); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  if kill -0 "$pid" 2>/dev/null; then kill -9 "$pid"; fi
  rm -f "$PIDFILE"
  log "stopped"
}

status() {
  if running; then
    echo "running (pid $(cat "$PIDFILE"), ldaps://127.0.0.1:636, dir $SAMBA_DIR)"
  else
    echo "stopped (dir $SAMBA_DIR)"
    return 1
  fi
}

print_env() {
  printf 'export LATCHKEY_TEST_SAMBA_URL=%q\n' "ldaps://127.0.0.1:636"
  printf 'export LATCHKEY_TEST_SAMBA_STARTTLS_URL=%q\n' "ldap://127.0.0.1:389"
  printf 'export LATCHKEY_TEST_SAMBA_BASE_DN=%q\n' "$BASE_DN"
  printf 'export LATCHKEY_TEST_SAMBA_BIND_DN=%q\n' "$ADMIN_DN"
  printf 'export LATCHKEY_TEST_SAMBA_BIND_PASSWORD=%q\n' "$ADMINPASS"
  printf 'export LATCHKEY_TEST_SAMBA_CA_FILE=%q\n' "$CA"
  printf 'export LATCHKEY_TEST_SAMBA_REALM=%q\n' "$realm_lc"
}

case "${1:-}" in
  install) install ;;
  start) start ;;
  stop) stop ;;
  status) status ;;
  env) print_env ;;
  *) echo "usage: $0 {install|start|stop|status|env}" >&2; exit 2 ;;
esac
