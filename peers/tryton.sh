#!/usr/bin/env bash
# Tryton 8.0 (LTS) as the ERP peer of the `tryton` connector: trytond + sale, sale_shipment_cost,
# carrier, account_invoice, stock, account on SQLite, served over JSON-RPC on 127.0.0.1:$TRYTON_PORT.
#
#   peers/tryton.sh install|init [--force]|start|stop|reset|ensure|status|env
#   TRYTON_PORT=18010 (default) chooses the port; `env` prints TRYTON_URL, _DB, _USER, _PASSWORD.
#
# State lives outside the repository: the venv, config and database under $PEERS_DIR/tryton, the pid
# file and server.log under $PEERS_DIR/tryton-run. `init` creates the database, activates the modules,
# seeds it with peers/tryton_seed.py (proteus, in-process) and keeps a snapshot (sqlite3 backup API);
# `reset` stops the server, restores the snapshot and starts it again (a few seconds).

PEER_NAME=tryton
SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=peers/lib.sh
source "$SCRIPT_DIR/lib.sh"

TRYTON_PORT=${TRYTON_PORT:-18010}
TRYTON_DB=tryton_peer
TRYTON_USER=admin
TRYTON_PASSWORD=admin # set at init (trytond-admin reads it from TRYTONPASSFILE)
TRYTON_HOME=$PEERS_DIR/tryton
RUN_DIR=$PEERS_DIR/tryton-run
CONF=$TRYTON_HOME/trytond.conf
DB_DIR=$TRYTON_HOME/db
DB_FILE=$DB_DIR/$TRYTON_DB.sqlite
SNAPSHOT=$TRYTON_HOME/snapshot/$TRYTON_DB.sqlite
INIT_STAMP=$TRYTON_HOME/snapshot/.crossdock-seeded
PIDFILE=$RUN_DIR/trytond.pid
LOG=$RUN_DIR/server.log
SEED=$SCRIPT_DIR/tryton_seed.py
URL=http://127.0.0.1:$TRYTON_PORT

# Exact pins of the 8.0 LTS series (every module pins <8.1,>=8.0, so pip keeps the set consistent);
# the dependencies they pull in are pinned too, so a fresh machine gets the set that was tested.
PACKAGES=(
    trytond==8.0.12 proteus==8.0.0
    trytond-sale==8.0.5 trytond-sale-shipment-cost==8.0.0 trytond-carrier==8.0.0
    trytond-account-invoice==8.0.2 trytond-stock==8.0.5 trytond-account==8.0.4
    trytond-party==8.0.4 trytond-company==8.0.1 trytond-product==8.0.2 trytond-currency==8.0.0
    trytond-country==8.0.0 trytond-account-product==8.0.1 trytond-account-invoice-stock==8.0.0
    trytond-stock-shipment-cost==8.0.0
)
MODULES=(sale sale_shipment_cost carrier account_invoice stock account)

cmd_install() {
    peer_venv "$TRYTON_HOME" "${PACKAGES[@]}"
    mkdir -p "$DB_DIR" "$RUN_DIR" "$(dirname "$SNAPSHOT")"
    write_config
}

write_config() {
    # [session] timeout: the default 300 s makes fresh_session methods (account.invoice.post) answer
    # 401 after 5 idle minutes; the connector re-logs in on 401, the tests should not depend on it.
    cat >"$CONF" <<EOF
[database]
uri = sqlite://
path = $DB_DIR

[web]
listen = 127.0.0.1:$TRYTON_PORT

[session]
timeout = 3600
EOF
    printf '%s\n' "$TRYTON_PASSWORD" >"$TRYTON_HOME/admin.pass"
}

# What the snapshot was built from: the installed package set, the module list and the seed script.
init_fingerprint() {
    {
        cat "$TRYTON_HOME/.crossdock-installed"
        printf '\n%s\n' "${MODULES[*]}"
        cat "$SEED"
    } | sha256sum | cut -d' ' -f1
}

admin() {
    TRYTONPASSFILE=$TRYTON_HOME/admin.pass "$TRYTON_HOME/bin/trytond-admin" -c "$CONF" -d "$TRYTON_DB" "$@" \
        </dev/null >>"$LOG" 2>&1 || peer_die "trytond-admin $* failed; see $LOG"
}

cmd_init() {
    cmd_install
    if [[ "${1:-}" != --force && -f "$SNAPSHOT" && -f "$INIT_STAMP" && "$(cat "$INIT_STAMP")" == "$(init_fingerprint)" ]]; then
        peer_say "seeded snapshot is current: $SNAPSHOT (init --force rebuilds it)"
        return 0
    fi
    cmd_stop
    local started=$SECONDS
    rm -f "$DB_FILE" "$DB_FILE-wal" "$DB_FILE-shm" "$SNAPSHOT" "$INIT_STAMP"
    touch "$DB_FILE" # trytond-admin refuses a SQLite database whose file does not exist
    peer_say "creating database $TRYTON_DB with ${MODULES[*]} and their dependencies"
    # --email: the first init asks for the admin e-mail on stdin otherwise (EOFError with stdin closed).
    # One run: --all (ir, res) creates the database; -u activates the modules and their dependencies.
    admin --all -u "${MODULES[@]}" --activate-dependencies --email admin@example.com
    peer_say "seeding with $(basename "$SEED")"
    "$TRYTON_HOME/bin/python" "$SEED" --config "$CONF" --database "$TRYTON_DB" </dev/null >>"$LOG" 2>&1 ||
        peer_die "seeding failed; see $LOG"
    snapshot_take
    init_fingerprint >"$INIT_STAMP"
    peer_say "database seeded and snapshotted in $((SECONDS - started))s"
}

# The sqlite3 backup API copies a consistent database even with WAL pages pending, unlike cp.
snapshot_take() {
    "$TRYTON_HOME/bin/python" - "$DB_FILE" "$SNAPSHOT" <<'PY'
import sqlite3, sys
src, dst = sqlite3.connect(sys.argv[1]), sqlite3.connect(sys.argv[2] + ".tmp")
src.backup(dst)
dst.close(); src.close()
PY
    mv "$SNAPSHOT.tmp" "$SNAPSHOT"
}

snapshot_restore() {
    [[ -f "$SNAPSHOT" ]] || peer_die "no snapshot at $SNAPSHOT; run init"
    # trytond runs SQLite in WAL mode: a -wal left by the previous server would be replayed onto the
    # restored file and bring the old data back, so it goes first.
    rm -f "$DB_FILE-wal" "$DB_FILE-shm"
    cp "$SNAPSHOT" "$DB_FILE.tmp"
    mv "$DB_FILE.tmp" "$DB_FILE"
}

cmd_start() {
    if peer_running "$PIDFILE"; then
        peer_wait_http "$URL/"
        return 0
    fi
    [[ -f "$DB_FILE" ]] || peer_die "no database at $DB_FILE; run init"
    if peer_port_open "$TRYTON_PORT"; then
        peer_die "port $TRYTON_PORT is taken by another process; set TRYTON_PORT"
    fi
    mkdir -p "$RUN_DIR"
    write_config # TRYTON_PORT may differ from the last install
    local started=$SECONDS
    # setsid: the server does not share the caller's process group (a test's Ctrl-C, the caller's job).
    setsid "$TRYTON_HOME/bin/trytond" -c "$CONF" -d "$TRYTON_DB" </dev/null >>"$LOG" 2>&1 &
    echo $! >"$PIDFILE"
    peer_wait_http "$URL/"
    # Listening is not enough: the first request loads the pool; wait until the database answers.
    local deadline=$((SECONDS + PEER_READY_TIMEOUT_S))
    until curl -sf --max-time 10 -H 'Content-Type: application/json' \
        -d '{"id": 0, "method": "common.db.list", "params": []}' "$URL/rpc/" | grep -q "$TRYTON_DB"; do
        peer_running "$PIDFILE" || peer_die "trytond exited; see $LOG"
        ((SECONDS < deadline)) || peer_die "trytond does not list $TRYTON_DB within ${PEER_READY_TIMEOUT_S}s"
        sleep 0.3
    done
    peer_say "listening on $URL (pid $(cat "$PIDFILE"), up in $((SECONDS - started))s)"
}

cmd_stop() { peer_stop "$PIDFILE"; }

cmd_reset() {
    local started=$SECONDS
    cmd_stop
    snapshot_restore
    cmd_start
    peer_say "reset in $((SECONDS - started))s"
}

cmd_ensure() {
    cmd_install
    cmd_init
    if ! peer_running "$PIDFILE"; then
        [[ -f "$DB_FILE" ]] || snapshot_restore
        cmd_start
    fi
}

cmd_status() {
    if peer_running "$PIDFILE"; then
        echo "tryton: running (pid $(cat "$PIDFILE")) at $URL, database $TRYTON_DB, log $LOG"
    else
        echo "tryton: stopped (home $TRYTON_HOME)"
        return 3
    fi
}

cmd_env() {
    printf 'TRYTON_URL=%s\nTRYTON_DB=%s\nTRYTON_USER=%s\nTRYTON_PASSWORD=%s\n' \
        "$URL" "$TRYTON_DB" "$TRYTON_USER" "$TRYTON_PASSWORD"
}

main() {
    local verb=${1:-}
    shift || true
    case "$verb" in
    install) cmd_install ;;
    init) cmd_init "$@" ;;
    start) cmd_start ;;
    stop) cmd_stop ;;
    reset) cmd_reset ;;
    ensure) cmd_ensure ;;
    status) cmd_status ;;
    env) cmd_env ;;
    *)
        echo "usage: $0 install|init [--force]|start|stop|reset|ensure|status|env" >&2
        exit 2
        ;;
    esac
}

main "$@"
