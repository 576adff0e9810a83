#!/usr/bin/env bash
# A real OpenID Connect provider for Latchkey's single sign-on tests (crates/latchkey-server/tests/web/oidc.rs):
# npm oidc-provider 9.13.3 (panva) on Node 20, http://127.0.0.1:9400, loopback only.
# Clients: pam-web / pam-web-secret (authorization_code + refresh_token, redirect $OIDC_REDIRECT_URI,
#                                    and any http://127.0.0.1:PORT/sign-in/oidc/callback)
#          pam-svc / pam-svc-secret (client_credentials)
# Login page (devInteractions) accepts any username + any non-empty password; sub = username;
# usernames starting with "admin" get groups=["pam-admins"], others ["pam-users"].
#
#   scripts/services/oidc.sh install | start | stop | status | env | selftest | code USER
#
#   install  npm ci in scripts/services/oidc (needs Node 20 and npm)
#   start    install if needed, start the provider (already running -> nothing to do), wait until it answers
#   stop     stop it by its PID (SIGTERM, SIGKILL after 5 s)
#   env      print export lines: eval "$(scripts/services/oidc.sh env)"
#
# Knobs (environment): LATCHKEY_OIDC_DIR (/tmp/latchkey-oidc: pid + log), LATCHKEY_OIDC_PORT (9400),
#   OIDC_REDIRECT_URI (http://127.0.0.1:8080/sign-in/oidc/callback; comma-separated list allowed)
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
APP=$HERE/oidc                       # package.json, package-lock.json, server.mjs
OIDC_DIR=${LATCHKEY_OIDC_DIR:-/tmp/latchkey-oidc}
export OIDC_PORT=${LATCHKEY_OIDC_PORT:-9400}
case "$OIDC_PORT" in '' | *[!0-9]*) echo "oidc.sh: the port must be a number, got '$OIDC_PORT'" >&2; exit 2 ;; esac
export OIDC_REDIRECT_URI=${OIDC_REDIRECT_URI:-http://127.0.0.1:8080/sign-in/oidc/callback}
unset OIDC_ISSUER # the provider's issuer is always $ISSUER below
ISSUER=http://127.0.0.1:$OIDC_PORT
PIDFILE=$OIDC_DIR/oidc.pid

install() {
  command -v node >/dev/null || { echo "oidc.sh: node is missing (Node 20 is needed; Debian's nodejs 18 is too old for oidc-provider 9)" >&2; exit 1; }
  command -v npm >/dev/null || { echo "oidc.sh: npm is missing" >&2; exit 1; }
  if [ ! -d "$APP/node_modules/oidc-provider" ]; then
    (cd "$APP" && if [ -f package-lock.json ]; then npm ci --no-audit --no-fund --loglevel=error; else npm install --no-audit --no-fund --loglevel=error; fi)
  fi
}

running() { [ -f "$PIDFILE" ] && kill -0 "$(cat "$PIDFILE")" 2>/dev/null; }
ready() { curl -fsS -o /dev/null "$ISSUER/.well-known/openid-configuration" 2>/dev/null; }

start() {
  install
  if running; then echo "oidc already running (pid $(cat "$PIDFILE"))"; print_env; return 0; fi
  mkdir -p "$OIDC_DIR"
  (cd "$APP" && exec node server.mjs >"$OIDC_DIR/oidc.out" 2>&1 </dev/null) &
  echo $! >"$PIDFILE"
  for _ in $(seq 1 150); do ready && break; running || { cat "$OIDC_DIR/oidc.out"; exit 1; }; sleep 0.1; done
  ready || { echo "oidc not ready"; cat "$OIDC_DIR/oidc.out"; exit 1; }
  echo "oidc-provider running (pid $(cat "$PIDFILE")), log: $OIDC_DIR/oidc.out"
  print_env
}

stop() {
  running || { echo "oidc not running"; rm -f "$PIDFILE"; return 0; }
  local pid; pid=$(cat "$PIDFILE"); kill "$pid"
  for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -0 "$pid" 2>/dev/null && kill -9 "$pid"
  rm -f "$PIDFILE"; echo "oidc stopped"
}

print_env() {
  cat <<EOF
export LATCHKEY_TEST_OIDC_ISSUER=$ISSUER
export OIDC_ISSUER=$ISSUER          # discovery: $ISSUER/.well-known/openid-configuration
export OIDC_CLIENT_ID=pam-web OIDC_CLIENT_SECRET=pam-web-secret OIDC_REDIRECT_URI=$OIDC_REDIRECT_URI
export OIDC_SVC_CLIENT_ID=pam-svc OIDC_SVC_CLIENT_SECRET=pam-svc-secret
EOF
}

# Scripted browser: authorization-code flow with curl + cookie jar. Prints the code.
auth_code() { # $1 = username
  local j; j=$(mktemp); local u
  u=$(curl -sS -c "$j" -b "$j" -o /dev/null -w '%{redirect_url}' \
      "$ISSUER/auth?client_id=pam-web&response_type=code&scope=openid%20email%20profile%20groups%20offline_access&prompt=consent&redirect_uri=$OIDC_REDIRECT_URI&state=st-$$&nonce=n-$$")
  for _ in 1 2 3 4 5 6; do
    case "$u" in
      "$OIDC_REDIRECT_URI"*) break ;;
      */interaction/*)
        local page prompt; page=$(curl -sS -c "$j" -b "$j" "$u")
        prompt=$(echo "$page" | sed -n 's/.*name="prompt" value="\([a-z]*\)".*/\1/p' | head -1)
        if [ "$prompt" = login ]; then
          u=$(curl -sS -c "$j" -b "$j" -o /dev/null -w '%{redirect_url}' -d prompt=login --data-urlencode "login=$1" -d password=any "$u")
        else
          u=$(curl -sS -c "$j" -b "$j" -o /dev/null -w '%{redirect_url}' -d prompt=consent "$u")
        fi ;;
      *) u=$(curl -sS -c "$j" -b "$j" -o /dev/null -w '%{redirect_url}' "$u") ;;
    esac
  done
  rm -f "$j"
  echo "$u" | sed -n 's/.*[?&]code=\([^&]*\).*/\1/p'
}

jwt_payload() { /usr/bin/python3 -c 'import sys,json,base64;p=sys.argv[1].split(".")[1];print(json.dumps(json.loads(base64.urlsafe_b64decode(p+"="*(-len(p)%4)))))' "$1"; }
jget() { /usr/bin/python3 -c 'import sys,json;print(json.load(sys.stdin).get(sys.argv[1],""))' "$1"; }

selftest() {
  local n=0 fail=0 disc cc code tok at idt rt
  ok() { n=$((n+1)); if eval "$2"; then echo "ok   - $1"; else echo "FAIL - $1"; fail=$((fail+1)); fi; }
  disc=$(curl -fsS "$ISSUER/.well-known/openid-configuration")
  ok "discovery issuer" '[ "$(echo "$disc" | jget issuer)" = "$ISSUER" ]'
  ok "jwks has a key" 'curl -fsS "$(echo "$disc" | jget jwks_uri)" | grep -q "\"kty\""'
  cc=$(curl -sS -u pam-svc:pam-svc-secret -d grant_type=client_credentials "$ISSUER/token")
  ok "client_credentials token" '[ -n "$(echo "$cc" | jget access_token)" ]'
  ok "client_credentials wrong secret -> invalid_client" 'curl -sS -u pam-svc:nope -d grant_type=client_credentials "$ISSUER/token" | grep -q invalid_client'
  ok "introspection says active" 'curl -sS -u pam-svc:pam-svc-secret -d token="$(echo "$cc" | jget access_token)" "$ISSUER/token/introspection" | grep -q "\"active\":true"'
  code=$(auth_code admin-alice)
  ok "auth-code flow yields a code" '[ -n "$code" ]'
  tok=$(curl -sS -u pam-web:pam-web-secret -d grant_type=authorization_code -d code="$code" -d redirect_uri="$OIDC_REDIRECT_URI" "$ISSUER/token")
  at=$(echo "$tok" | jget access_token); idt=$(echo "$tok" | jget id_token); rt=$(echo "$tok" | jget refresh_token)
  ok "code -> id_token with sub + groups" 'jwt_payload "$idt" | grep -q "\"sub\": \"admin-alice\".*\"groups\": \[\"pam-admins\"\]"'
  ok "userinfo with access token" 'curl -fsS -H "Authorization: Bearer $at" "$ISSUER/me" | grep -q "\"email\":\"admin-alice@pam.test\""'
  ok "refresh_token grant" 'curl -sS -u pam-web:pam-web-secret -d grant_type=refresh_token -d refresh_token="$rt" "$ISSUER/token" | grep -q id_token'
  echo "$((n-fail)) passed, $fail failed"; [ $fail = 0 ]
}

case "${1:-}" in
  install) install ;;
  start) start ;;
  stop) stop ;;
  status) if running; then echo "running pid $(cat "$PIDFILE")"; else echo stopped; exit 1; fi ;;
  env) print_env ;;
  selftest) selftest ;;
  code) auth_code "${2:-alice}" ;;
  *) echo "usage: $0 {install|start|stop|status|env|selftest|code USER}"; exit 2 ;;
esac
