#!/usr/bin/env bash
# Headless Chromium + ChromeDriver (Debian 12 packages chromium, chromium-driver) for the web UI's
# browser tests (crates/latchkey-server/tests/web).
#
#   ./chromium.sh install
#   ./chromium.sh start        # chromedriver on 127.0.0.1:9515 (loopback only), waits for /status ready=true
#   ./chromium.sh stop
#   ./chromium.sh screenshot URL OUT.png [W,H]   # one-shot headless screenshot, no chromedriver needed
#   ./chromium.sh selftest     # serves a page on 127.0.0.1:8088, screenshots it, drives it over W3C WebDriver
#   ./chromium.sh env
#
# Env knobs: CHROME_DIR (/tmp/svc-chromium), CHROMEDRIVER_PORT (9515).
set -euo pipefail

CHROME_DIR=${CHROME_DIR:-/tmp/latchkey-chromium}
CHROMEDRIVER_PORT=${CHROMEDRIVER_PORT:-9515}
PIDFILE=$CHROME_DIR/chromedriver.pid
# Flags that keep Chromium quiet/offline and working as root in a VM without a GPU/dbus.
FLAGS=(--headless --no-sandbox --disable-gpu --disable-quic --no-first-run --disable-background-networking
       --disable-component-update --disable-sync --disable-dev-shm-usage --hide-scrollbars)

install() {
  if ! dpkg-query -W -f='${Status}\n' chromium chromium-driver 2>/dev/null | grep -c 'install ok installed' | grep -qx 2; then
    [ -n "$(find /var/lib/apt/lists -maxdepth 1 -name '*Packages*' -mmin -1440 2>/dev/null | head -1)" ] \
      || apt-get -o DPkg::Lock::Timeout=300 update -qq
    DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends chromium chromium-driver >/dev/null
  fi
}

running() { [ -f "$PIDFILE" ] && kill -0 "$(cat "$PIDFILE")" 2>/dev/null; }
ready() { curl -fsS "http://127.0.0.1:$CHROMEDRIVER_PORT/status" 2>/dev/null | grep -q '"ready":true'; }

start() {
  install
  if running; then echo "chromedriver already running (pid $(cat "$PIDFILE"))"; print_env; return 0; fi
  mkdir -p "$CHROME_DIR"
  # Do NOT pass --allowed-ips (even empty): it makes chromedriver listen on all interfaces.
  chromedriver --port="$CHROMEDRIVER_PORT" --log-path="$CHROME_DIR/chromedriver.log" >"$CHROME_DIR/chromedriver.out" 2>&1 </dev/null &
  echo $! >"$PIDFILE"
  for _ in $(seq 1 100); do ready && break; running || { cat "$CHROME_DIR/chromedriver.out"; exit 1; }; sleep 0.05; done
  ready || { echo "chromedriver not ready"; exit 1; }
  echo "chromedriver running (pid $(cat "$PIDFILE"))"
  print_env
}

stop() {
  running || { echo "chromedriver not running"; rm -f "$PIDFILE"; return 0; }
  local pid; pid=$(cat "$PIDFILE"); kill "$pid"
  for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -0 "$pid" 2>/dev/null && kill -9 "$pid"
  rm -f "$PIDFILE"; echo "chromedriver stopped"
}

print_env() {
  cat <<EOF
export LATCHKEY_TEST_WEBDRIVER_URL=http://127.0.0.1:$CHROMEDRIVER_PORT
EOF
}

screenshot() { # URL OUT [WxH]
  install
  local prof; prof=$(mktemp -d "${TMPDIR:-/tmp}/chromium-profile.XXXXXX")
  chromium "${FLAGS[@]}" --user-data-dir="$prof" --window-size="${3:-1280,800}" --screenshot="$2" "$1" \
    >"$prof.log" 2>&1 || { cat "$prof.log"; rm -rf "$prof" "$prof.log"; return 1; }
  rm -rf "$prof" "$prof.log"
  [ -s "$2" ]
}

wd() { # METHOD PATH [JSON]
  curl -sS -X "$1" "http://127.0.0.1:$CHROMEDRIVER_PORT$2" -H 'content-type: application/json' ${3:+-d "$3"}
}
jval() { /usr/bin/python3 -c 'import sys,json;v=json.load(sys.stdin)["value"];print(list(v.values())[0] if isinstance(v,dict) else v)'; }

selftest() {
  local n=0 fail=0 www=$CHROME_DIR/www http_pid prof sid el txt
  ok() { n=$((n+1)); if eval "$2"; then echo "ok   - $1"; else echo "FAIL - $1"; fail=$((fail+1)); fi; }
  mkdir -p "$www"
  cat >"$www/index.html" <<'EOF'
<!doctype html><html><head><meta charset="utf-8"><title>PAM test page</title></head>
<body style="font-family:sans-serif;margin:40px"><h1 style="color:#1d4ed8">PAM - Checkout</h1>
<button id="reveal" onclick="document.getElementById('pw').textContent='S3cret-Local-Adm1n'">Reveal password</button>
<p id="pw">********</p></body></html>
EOF
  (cd "$www" && exec /usr/bin/python3 -m http.server 8088 --bind 127.0.0.1 >"$CHROME_DIR/http.out" 2>&1 </dev/null) &
  http_pid=$!
  for _ in $(seq 1 50); do curl -fsS -o /dev/null http://127.0.0.1:8088/ 2>/dev/null && break; sleep 0.1; done
  rm -f "$CHROME_DIR/shot.png"
  ok "one-shot screenshot of local page" 'screenshot http://127.0.0.1:8088/ "$CHROME_DIR/shot.png" 800,400'
  local started=0; running || { start >/dev/null; started=1; }
  prof=$(mktemp -d "$CHROME_DIR/profile.XXXXXX")
  local args; args=$(printf '"%s",' "${FLAGS[@]}")
  sid=$(wd POST /session "{\"capabilities\":{\"alwaysMatch\":{\"browserName\":\"chrome\",\"goog:chromeOptions\":{\"binary\":\"/usr/bin/chromium\",\"args\":[${args}\"--window-size=800,400\",\"--user-data-dir=$prof\"]}}}}" \
        | /usr/bin/python3 -c 'import sys,json;print(json.load(sys.stdin)["value"].get("sessionId",""))')
  ok "WebDriver session created" '[ -n "$sid" ]'
  wd POST "/session/$sid/url" '{"url":"http://127.0.0.1:8088/"}' >/dev/null
  ok "title" '[ "$(wd GET /session/$sid/title | jval)" = "PAM test page" ]'
  el=$(wd POST "/session/$sid/element" '{"using":"css selector","value":"#reveal"}' | jval)
  wd POST "/session/$sid/element/$el/click" '{}' >/dev/null
  el=$(wd POST "/session/$sid/element" '{"using":"css selector","value":"#pw"}' | jval)
  ok "click changes DOM" '[ "$(wd GET /session/$sid/element/$el/text | jval)" = "S3cret-Local-Adm1n" ]'
  wd GET "/session/$sid/screenshot" | /usr/bin/python3 -c 'import sys,json,base64;open(sys.argv[1],"wb").write(base64.b64decode(json.load(sys.stdin)["value"]))' "$CHROME_DIR/webdriver.png"
  ok "WebDriver screenshot" '[ -s "$CHROME_DIR/webdriver.png" ]'
  wd DELETE "/session/$sid" >/dev/null
  rm -rf "$prof"
  kill "$http_pid"
  [ $started = 1 ] && stop >/dev/null
  echo "screenshots: $CHROME_DIR/shot.png $CHROME_DIR/webdriver.png"
  echo "$((n-fail)) passed, $fail failed"; [ $fail = 0 ]
}

case "${1:-}" in
  install) install ;;
  start) start ;;
  stop) stop ;;
  status) if running; then echo "running pid $(cat "$PIDFILE")"; else echo stopped; exit 1; fi ;;
  env) print_env ;;
  screenshot) shift; screenshot "$@" ;;
  selftest) selftest ;;
  *) echo "usage: $0 {install|start|stop|status|env|screenshot URL OUT [W,H]|selftest}"; exit 2 ;;
esac
