#!/usr/bin/env bash
# Karrio 2026.1 (open-source shipping platform) as the local TMS/carrier peer, fully offline.
#
#   peers/karrio.sh install|init|start|stop|reset|ensure|status|env      (verbs: see peers/lib.sh)
#
# - venv $PEERS_DIR/karrio (karrio-server and friends, pinned), SQLite data in $PEERS_DIR/karrio-data,
#   log and pid in $PEERS_DIR/karrio-run, our carrier plugin copied to $PEERS_DIR/karrio-plugins.
# - The `offline` carrier (peers/karrio_plugin, loaded through KARRIO_PLUGINS) rates, buys labels and
#   tracks locally, so every purchase gets a tracker and `POST /v1/trackers/{id}/inject-events`
#   drives Karrio's real webhooks. `init` seeds one connection with carrier_id `offline`.
# - WORKER_IMMEDIATE_MODE=True: webhooks are sent inside the API call that caused them, so a test
#   has received them when the call returns. Karrio's webhook POST has no timeout: a receiver that
#   hangs makes that API call hang.
# - Migrations take ~3.5 min, so `init` keeps a migrated and seeded template; `reset` copies it back
#   (seconds). Delete $PEERS_DIR/karrio-data to re-init.
# - `karrio-server-documents` is left out on purpose: it fetches a CSS file from a CDN at import
#   time and breaks every command offline. `karrio-server-pricing` is required by the migrations.
set -euo pipefail

PEER_NAME=karrio
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=peers/lib.sh
source "$HERE/lib.sh"

KARRIO_VERSION=2026.1.32
KARRIO_PORT=${KARRIO_PORT:-18110}
# Fixed test-only credentials: the peer listens on loopback and holds nothing but test data.
KARRIO_API_KEY=key_crossdock00000000000000peertest
KARRIO_ADMIN_EMAIL=admin@crossdock.test
KARRIO_ADMIN_PASSWORD=crossdock-peer-only-1
KARRIO_CARRIER_ID=offline

VENV=$PEERS_DIR/karrio
DATA=$PEERS_DIR/karrio-data
RUN=$PEERS_DIR/karrio-run
PLUGINS=$PEERS_DIR/karrio-plugins
PIDFILE=$RUN/server.pid
LOG=$RUN/server.log
DB=$DATA/db.sqlite3
TEMPLATE=$DATA/db.template.sqlite3
URL=http://127.0.0.1:$KARRIO_PORT

PACKAGES=(
    "karrio-server==$KARRIO_VERSION" "karrio-server-core==$KARRIO_VERSION"
    "karrio-server-manager==$KARRIO_VERSION" "karrio-server-events==$KARRIO_VERSION"
    "karrio-server-orders==$KARRIO_VERSION" "karrio-server-graph==$KARRIO_VERSION"
    "karrio-server-pricing==$KARRIO_VERSION" "karrio-generic==$KARRIO_VERSION" "karrio==$KARRIO_VERSION"
    "django==5.2.19" "gunicorn==27.0.1"
)

# Karrio's whole environment. `env -i` drops everything else: the caller's DATABASE_URL, REDIS_URL or
# SECRET_KEY (the hub's test settings) must never reach Karrio, which reads them all.
KARRIO_ENV=(
    HOME="$HOME" PATH="$VENV/bin:/usr/bin:/bin" LANG=C.UTF-8
    SECRET_KEY=karrio-peer-test-only DEBUG_MODE=False LOG_LEVEL=WARNING
    WORK_DIR="$DATA" DATABASE_NAME=db.sqlite3 WORKER_IMMEDIATE_MODE=True KARRIO_PLUGINS="$PLUGINS"
)

karrio_env() {
    (cd "$DATA" && exec env -i "${KARRIO_ENV[@]}" "$@")
}

sync_plugin() {
    # A copy, so Python's bytecode caches never land in the repository.
    mkdir -p "$PLUGINS"
    rm -rf "$PLUGINS/offline"
    cp -R "$HERE/karrio_plugin/offline" "$PLUGINS/offline"
}

cmd_install() {
    peer_venv "$VENV" "${PACKAGES[@]}"
}

cmd_init() {
    cmd_install
    if [[ -f "$TEMPLATE" ]]; then
        return 0
    fi
    peer_stop "$PIDFILE"
    mkdir -p "$DATA" "$RUN"
    sync_plugin
    rm -f "$DB" "$DATA"/tasks.sqlite3*
    local started=$SECONDS
    peer_say "migrating a new database (about 3-4 minutes)"
    karrio_env karrio migrate --noinput >>"$LOG" 2>&1 || peer_die "migrate failed; see $LOG"
    peer_say "migrated in $((SECONDS - started)) s; seeding the admin, API key and offline connection"
    # The Django test client goes through Karrio's real serializers, without starting a server.
    karrio_env karrio shell -c "
from django.contrib.auth import get_user_model
from karrio.server.user.models import Token
from rest_framework.test import APIClient
user = get_user_model().objects.create_superuser(email='$KARRIO_ADMIN_EMAIL', password='$KARRIO_ADMIN_PASSWORD')
Token.objects.create(key='$KARRIO_API_KEY', user=user, label='crossdock-peer-tests')
client = APIClient()
client.credentials(HTTP_AUTHORIZATION='Token $KARRIO_API_KEY')
response = client.post('/v1/connections', {'carrier_name': 'offline', 'carrier_id': '$KARRIO_CARRIER_ID',
    'credentials': {'account_number': 'CROSSDOCK-1'}, 'capabilities': ['rating', 'shipping', 'tracking']},
    format='json')
assert response.status_code == 201, (response.status_code, response.content)
" >>"$LOG" 2>&1 || peer_die "seeding failed; see $LOG"
    cp "$DB" "$TEMPLATE.tmp"
    mv "$TEMPLATE.tmp" "$TEMPLATE"
    peer_say "init done in $((SECONDS - started)) s (template: $TEMPLATE)"
}

cmd_start() {
    if peer_running "$PIDFILE"; then
        return 0
    fi
    [[ -f "$TEMPLATE" ]] || peer_die "not initialised; run: $0 init"
    if peer_port_open "$KARRIO_PORT"; then
        peer_die "port $KARRIO_PORT is taken by another process; set KARRIO_PORT"
    fi
    mkdir -p "$RUN"
    sync_plugin
    [[ -f "$DB" ]] || cp "$TEMPLATE" "$DB"
    # setsid: the server survives the caller's shell (and its Ctrl-C); stop uses the pid file.
    # --graceful-timeout 3: in-flight requests get 3 s on stop, which keeps reset fast.
    # One subshell that execs all the way down (env, setsid, gunicorn), so $! is gunicorn's master.
    (cd "$DATA" && exec env -i "${KARRIO_ENV[@]}" setsid gunicorn karrio.server.wsgi:application \
        --bind "127.0.0.1:$KARRIO_PORT" --workers 1 --threads 4 --timeout 120 --graceful-timeout 3 \
        --access-logfile -) </dev/null >>"$LOG" 2>&1 &
    echo $! >"$PIDFILE"
    local deadline=$((SECONDS + PEER_READY_TIMEOUT_S))
    until curl -s -o /dev/null --max-time 5 "$URL/"; do
        peer_running "$PIDFILE" || peer_die "the server exited at start; see $LOG"
        ((SECONDS < deadline)) || peer_die "$URL does not answer within ${PEER_READY_TIMEOUT_S}s; see $LOG"
        sleep 0.3
    done
    peer_say "running at $URL (pid $(cat "$PIDFILE"))"
}

cmd_stop() {
    peer_stop "$PIDFILE"
}

cmd_reset() {
    [[ -f "$TEMPLATE" ]] || peer_die "not initialised; run: $0 init"
    peer_stop "$PIDFILE"
    cp "$TEMPLATE" "$DB.tmp"
    mv "$DB.tmp" "$DB"
    rm -f "$DATA"/tasks.sqlite3*
    cmd_start
}

cmd_ensure() {
    cmd_install
    cmd_init
    cmd_start
}

cmd_status() {
    if peer_running "$PIDFILE"; then
        echo "running at $URL (pid $(cat "$PIDFILE")); log $LOG"
    else
        echo "stopped; initialised: $([[ -f "$TEMPLATE" ]] && echo yes || echo no); log $LOG"
        return 3
    fi
}

cmd_env() {
    echo "KARRIO_URL=$URL"
    echo "KARRIO_API_KEY=$KARRIO_API_KEY"
    echo "KARRIO_CARRIER_ID=$KARRIO_CARRIER_ID"
    echo "KARRIO_ADMIN_EMAIL=$KARRIO_ADMIN_EMAIL"
    echo "KARRIO_ADMIN_PASSWORD=$KARRIO_ADMIN_PASSWORD"
}

case "${1:-}" in
install | init | start | stop | reset | ensure | status | env) "cmd_$1" ;;
*)
    echo "usage: $0 install|init|start|stop|reset|ensure|status|env" >&2
    exit 2
    ;;
esac
