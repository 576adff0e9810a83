#!/usr/bin/env bash
# A private OpenLDAP (slapd 2.5) for Latchkey's directory tests (sync and LDAP bind), on
# 127.0.0.1 only, with its own config directory: the system /etc/ldap is never touched.
#
#   scripts/services/openldap.sh install | start | stop | status | env
#
#   install  apt-get install slapd ldap-utils if missing (needs root)
#   start    install if missing, configure on first use (reused after that), start slapd
#            (already running -> nothing to do), wait until it answers
#   stop     stop slapd by its PID (SIGTERM, SIGKILL after 10 s)
#   status   "running ..." (exit 0) or "stopped" (exit 1)
#   env      print export lines: eval "$(scripts/services/openldap.sh env)"
#
# Knobs (environment):
#   LATCHKEY_OPENLDAP_DIR        config, data and TLS files        (/tmp/latchkey-openldap)
#   LATCHKEY_OPENLDAP_PORT       ldap:// port (StartTLS works)      (13389)
#   LATCHKEY_OPENLDAP_TLS_PORT   ldaps:// port                      (13636)
#   LATCHKEY_OPENLDAP_SUFFIX     the database suffix                (dc=latchkey,dc=test)
#   LATCHKEY_OPENLDAP_ADMINPASS  password of cn=admin,<suffix>      (Adm1n!Passw0rd)
#
# Overlays: memberof, refint and ppolicy (a user is disabled by pwdAccountLockedTime, which
# needs pwdLockout: TRUE in the default policy). The server certificate is for IP:127.0.0.1 and
# signed by a private CA (the CA file in `env`), so clients keep certificate checking on.
set -euo pipefail

D=${LATCHKEY_OPENLDAP_DIR:-/tmp/latchkey-openldap}
PORT=${LATCHKEY_OPENLDAP_PORT:-13389}
TLS_PORT=${LATCHKEY_OPENLDAP_TLS_PORT:-13636}
SUFFIX=${LATCHKEY_OPENLDAP_SUFFIX:-dc=latchkey,dc=test}
ADMINPASS=${LATCHKEY_OPENLDAP_ADMINPASS:-'Adm1n!Passw0rd'}
ADMIN_DN="cn=admin,$SUFFIX"
PIDFILE=$D/slapd.fgpid
CA=$D/tls/ca.pem
dc1=$(sed 's/^dc=\([^,]*\).*/\1/' <<<"$SUFFIX")

for p in "$PORT" "$TLS_PORT"; do
  case "$p" in '' | *[!0-9]*) echo "openldap.sh: ports must be numbers, got '$p'" >&2; exit 2 ;; esac
done

log() { echo "openldap.sh: $*" >&2; }

installed() {
  local n
  n=$(dpkg-query -W -f='${Status}\n' slapd ldap-utils 2>/dev/null | grep -c 'install ok installed' || true)
  [ "$n" -eq 2 ]
}

install() {
  installed && return 0
  [ "$(id -u)" = 0 ] || { log "slapd is missing and this is not root; install: slapd ldap-utils"; exit 1; }
  log "installing slapd ldap-utils ..."
  apt-get -o DPkg::Lock::Timeout=300 update -qq
  # no_configuration: the package creates neither /etc/ldap/slapd.d nor a dc=nodomain database.
  echo 'slapd slapd/no_configuration boolean true' | debconf-set-selections
  DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 install -y -qq --no-install-recommends \
    slapd ldap-utils >/dev/null
  installed || { log "install finished but slapd is still missing"; exit 1; }
}

configure() {
  log "configuring $SUFFIX in $D"
  rm -rf "$D"
  mkdir -p "$D/slapd.d" "$D/data" "$D/tls" "$D/log"
  # A private CA and a server certificate for IP:127.0.0.1 signed by it (a self-signed CA
  # certificate used as the server's own is refused by strict verifiers such as rustls).
  local t=$D/tls
  openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj '/CN=Latchkey test OpenLDAP CA' \
    -keyout "$t/ca.key" -out "$t/ca.pem" 2>/dev/null
  openssl req -newkey rsa:2048 -nodes -subj '/CN=127.0.0.1' -keyout "$t/key.pem" -out "$t/req.csr" 2>/dev/null
  printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n' >"$t/ext.cnf"
  openssl x509 -req -in "$t/req.csr" -CA "$t/ca.pem" -CAkey "$t/ca.key" -CAcreateserial -days 3650 \
    -extfile "$t/ext.cnf" -out "$t/cert.pem" 2>/dev/null
  chmod 600 "$t/key.pem" "$t/ca.key"
  local hash
  hash=$(slappasswd -s "$ADMINPASS")
  cat >"$D/config.ldif" <<EOF
dn: cn=config
objectClass: olcGlobal
cn: config
olcPidFile: $D/slapd.pid
olcArgsFile: $D/slapd.args
olcLogLevel: none
olcTLSCertificateFile: $D/tls/cert.pem
olcTLSCertificateKeyFile: $D/tls/key.pem

dn: cn=module{0},cn=config
objectClass: olcModuleList
cn: module{0}
olcModulePath: /usr/lib/ldap
olcModuleLoad: back_mdb
olcModuleLoad: memberof
olcModuleLoad: refint
olcModuleLoad: ppolicy

dn: cn=schema,cn=config
objectClass: olcSchemaConfig
cn: schema

include: file:///etc/ldap/schema/core.ldif
include: file:///etc/ldap/schema/cosine.ldif
include: file:///etc/ldap/schema/nis.ldif
include: file:///etc/ldap/schema/inetorgperson.ldif

dn: olcDatabase={-1}frontend,cn=config
objectClass: olcDatabaseConfig
objectClass: olcFrontendConfig
olcDatabase: {-1}frontend
olcSizeLimit: 500

dn: olcDatabase={0}config,cn=config
objectClass: olcDatabaseConfig
olcDatabase: {0}config
olcRootDN: cn=admin,cn=config
olcRootPW: $hash

dn: olcDatabase={1}mdb,cn=config
objectClass: olcDatabaseConfig
objectClass: olcMdbConfig
olcDatabase: {1}mdb
olcDbDirectory: $D/data
olcSuffix: $SUFFIX
olcRootDN: $ADMIN_DN
olcRootPW: $hash
olcDbMaxSize: 1073741824
olcDbIndex: objectClass eq
olcDbIndex: uid,cn,mail eq,sub
olcDbIndex: member,memberOf,uniqueMember eq
olcDbIndex: entryUUID eq
olcAccess: to attrs=userPassword by self write by anonymous auth by * none
olcAccess: to * by self read by users read by * none

dn: olcOverlay={0}memberof,olcDatabase={1}mdb,cn=config
objectClass: olcOverlayConfig
objectClass: olcMemberOf
olcOverlay: {0}memberof
olcMemberOfRefInt: TRUE
olcMemberOfGroupOC: groupOfNames
olcMemberOfMemberAD: member
olcMemberOfMemberOfAD: memberOf

dn: olcOverlay={1}refint,olcDatabase={1}mdb,cn=config
objectClass: olcOverlayConfig
objectClass: olcRefintConfig
olcOverlay: {1}refint
olcRefintAttribute: member
olcRefintAttribute: memberOf

dn: olcOverlay={2}ppolicy,olcDatabase={1}mdb,cn=config
objectClass: olcOverlayConfig
objectClass: olcPPolicyConfig
olcOverlay: {2}ppolicy
olcPPolicyDefault: cn=default,ou=policies,$SUFFIX
olcPPolicyHashCleartext: TRUE
EOF
  slapadd -q -n0 -F "$D/slapd.d" -l "$D/config.ldif"
  cat >"$D/base.ldif" <<EOF
dn: $SUFFIX
objectClass: top
objectClass: dcObject
objectClass: organization
o: Latchkey test directory
dc: $dc1

dn: ou=policies,$SUFFIX
objectClass: organizationalUnit
ou: policies

dn: cn=default,ou=policies,$SUFFIX
objectClass: top
objectClass: device
objectClass: pwdPolicy
cn: default
pwdAttribute: userPassword
pwdLockout: TRUE
pwdMaxFailure: 0
pwdAllowUserChange: TRUE
EOF
  slapadd -q -n1 -F "$D/slapd.d" -l "$D/base.ldif"
  touch "$D/.configured"
}

running() { [ -f "$PIDFILE" ] && kill -0 "$(cat "$PIDFILE")" 2>/dev/null; }

ready() {
  LDAPTLS_CACERT=$CA LDAPTLS_REQCERT=demand \
    ldapsearch -LLL -x -H "ldaps://127.0.0.1:$TLS_PORT" -s base -b '' namingContexts </dev/null >/dev/null 2>&1
}

start() {
  install
  if running; then
    log "already running (pid $(cat "$PIDFILE"))"
    return 0
  fi
  if [ ! -f "$D/.configured" ]; then
    configure
  fi
  # -d 0: stay in the foreground, so $! is slapd's own pid.
  slapd -h "ldap://127.0.0.1:$PORT/ ldaps://127.0.0.1:$TLS_PORT/" -F "$D/slapd.d" -d 0 \
    >"$D/log/slapd.out" 2>&1 </dev/null &
  echo $! >"$PIDFILE"
  for _ in $(seq 1 200); do
    ready && break
    running || { cat "$D/log/slapd.out" >&2; log "slapd exited during start"; rm -f "$PIDFILE"; exit 1; }
    sleep 0.05
  done
  ready || { cat "$D/log/slapd.out" >&2; log "not ready after 10 s"; exit 1; }
  log "started (pid $(cat "$PIDFILE"), ldap://127.0.0.1:$PORT, ldaps://127.0.0.1:$TLS_PORT)"
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
  for _ in $(seq 1 100); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  if kill -0 "$pid" 2>/dev/null; then kill -9 "$pid"; fi
  rm -f "$PIDFILE"
  log "stopped"
}

status() {
  if running; then
    echo "running (pid $(cat "$PIDFILE"), ldaps://127.0.0.1:$TLS_PORT, dir $D)"
  else
    echo "stopped (dir $D)"
    return 1
  fi
}

print_env() {
  printf 'export LATCHKEY_TEST_OPENLDAP_URL=%q\n' "ldaps://127.0.0.1:$TLS_PORT"
  printf 'export LATCHKEY_TEST_OPENLDAP_STARTTLS_URL=%q\n' "ldap://127.0.0.1:$PORT"
  printf 'export LATCHKEY_TEST_OPENLDAP_BASE_DN=%q\n' "$SUFFIX"
  printf 'export LATCHKEY_TEST_OPENLDAP_BIND_DN=%q\n' "$ADMIN_DN"
  printf 'export LATCHKEY_TEST_OPENLDAP_BIND_PASSWORD=%q\n' "$ADMINPASS"
  printf 'export LATCHKEY_TEST_OPENLDAP_CA_FILE=%q\n' "$CA"
}

case "${1:-}" in
  install) install ;;
  start) start ;;
  stop) stop ;;
  status) status ;;
  env) print_env ;;
  *) echo "usage: $0 {install|start|stop|status|env}" >&2; exit 2 ;;
esac
