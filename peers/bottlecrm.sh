#!/usr/bin/env bash
# BottleCRM (PyPI django-crm 1.35.0) as the CRM peer for the `bottlecrm` connector's live tests.
#
# Usage: peers/bottlecrm.sh install|init|start|stop|reset|ensure|status|env
#   install  venv under $PEERS_DIR/bottlecrm (Python >= 3.12) with the pinned packages
#   init     PostgreSQL role + database, the 253 migrations (minutes), then a template database
#   start    gunicorn on 127.0.0.1:$CRM_PORT (2 workers), until /healthz/ answers
#   stop     stop gunicorn by its pid file
#   reset    stop, drop the database, clone the template, seed (org, user, PAT, JWT, custom
#            fields), start: a clean CRM in about 10-20 s
#   ensure   install + init + seed + start, each only when needed (what the test fixtures call)
#   status   running or not, and where
#   env      CRM_URL, CRM_PAT, CRM_JWT (re-minted when older than 50 min), CRM_ORG_ID, ...
#
# Facts behind the choices: /work/shared/peers/crm.md. In short: django-crm needs Python >= 3.12
# (pip on 3.11 silently picks 0.9.0, a different API), `packaging` is an undeclared dependency of
# kombu's Redis transport (without it writes answer 500 after committing the row), tenant isolation
# is PostgreSQL row-level security, which a superuser bypasses, so the CRM connects as a role that
# is not one, and Celery runs eagerly (peers/bottlecrm/crm_peer_settings.py) so no worker is needed.
#
# Environment (all optional):
#   CRM_PORT                 port on 127.0.0.1 [18210]
#   CRM_PEER_DB_HOST/PORT    PostgreSQL [127.0.0.1 / 5432]
#   CRM_PEER_DB_NAME         the CRM's database [crossdock_crm_peer]; the template is <name>_tpl
#   CRM_PEER_DB_ROLE         its role, created NOSUPERUSER [crossdock_crm_peer]
#   CROSSDOCK_PEERS_DIR      where the venv and run state live (see peers/lib.sh)
set -euo pipefail

PEER_NAME=bottlecrm
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)
# shellcheck source=peers/lib.sh
source "$HERE/lib.sh"

OVERLAY_DIR="$HERE/bottlecrm" # crm_peer_settings.py, crm_peer_bootstrap.py
VENV="$PEERS_DIR/bottlecrm"
RUN_DIR="$PEERS_DIR/bottlecrm-run"
PIDFILE="$RUN_DIR/server.pid"
LOG="$RUN_DIR/server.log"
ENV_FILE="$RUN_DIR/crm.env"        # the CRM's own environment (sourced before every command)
CREDS_FILE="$RUN_DIR/crm_peer.env" # what `env` prints, written by the seed step

CRM_PORT=${CRM_PORT:-18210}
DB_HOST=${CRM_PEER_DB_HOST:-127.0.0.1}
DB_PORT=${CRM_PEER_DB_PORT:-5432}
DB_NAME=${CRM_PEER_DB_NAME:-crossdock_crm_peer}
DB_TPL="${DB_NAME}_tpl"
DB_ROLE=${CRM_PEER_DB_ROLE:-crossdock_crm_peer}
DB_PASSWORD=$DB_ROLE # a local test role on loopback; the password only matters where pg_hba asks
JWT_MAX_AGE_S=3000   # seconds before `env` re-mints the JWT (its lifetime is 1 h)
umask 077            # crm.env holds the CRM's SECRET_KEY and crm_peer.env the access token
mkdir -p "$RUN_DIR"

# Exact pins: django-crm and what it runs on (as resolved on 2026-11-26), plus the undeclared one.
PACKAGES=(
    django-crm==1.35.0
    packaging==26.4
    Django==6.1.3
    djangorestframework==3.18.3
    djangorestframework-simplejwt==5.5.1
    celery==5.7.0
    kombu==5.7.0
    psycopg==3.3.9
    psycopg-binary==3.3.9
    gunicorn==27.0.1
    python-dotenv==1.2.4
)
# Written as a comment on the template database: a template made by another version is rebuilt.
TEMPLATE_STAMP="crossdock bottlecrm template: ${PACKAGES[*]}"

# ------------------------------------------------------------------------------------------------
# PostgreSQL as the postgres superuser: over TCP where that needs no password (trust), else
# through the local socket as the postgres OS user (peer auth).

pg_admin() {
    export PGOPTIONS="-c client_min_messages=warning"
    if psql -h "$DB_HOST" -p "$DB_PORT" -U postgres -w -d postgres -Atqc 'SELECT 1' >/dev/null 2>&1; then
        psql -h "$DB_HOST" -p "$DB_PORT" -U postgres -w -d postgres -v ON_ERROR_STOP=1 -Atq "$@" </dev/null
    elif command -v runuser >/dev/null 2>&1 && id postgres >/dev/null 2>&1; then
        runuser -u postgres -- psql -p "$DB_PORT" -d postgres -v ON_ERROR_STOP=1 -Atq "$@" </dev/null
    else
        peer_die "cannot reach PostgreSQL on $DB_HOST:$DB_PORT as postgres (neither trust over TCP nor runuser)"
    fi
}

db_exists() { [[ "$(pg_admin -c "SELECT 1 FROM pg_database WHERE datname = '$1'")" == 1 ]]; }

template_current() {
    db_exists "$DB_TPL" &&
        [[ "$(pg_admin -c "SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = '$DB_TPL'")" == "$TEMPLATE_STAMP" ]]
}

ensure_role() {
    # Not a superuser and no BYPASSRLS: the CRM's tenant isolation is row-level security.
    local attrs="LOGIN PASSWORD '$DB_PASSWORD' NOSUPERUSER NOCREATEDB NOCREATEROLE NOBYPASSRLS"
    pg_admin -c "DO \$\$ BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '$DB_ROLE') THEN
    CREATE ROLE \"$DB_ROLE\" $attrs;
  ELSE
    ALTER ROLE \"$DB_ROLE\" $attrs;
  END IF;
END \$\$"
}

# ------------------------------------------------------------------------------------------------
# The CRM's environment

write_env_file() {
    mkdir -p "$RUN_DIR"
    local secret_file="$RUN_DIR/secret_key"
    if [[ ! -s "$secret_file" ]]; then
        # At least 32 bytes: it also signs the JWTs (HS256). Kept across resets so JWTs stay valid.
        (umask 077 && "$VENV/bin/python" -c 'import secrets; print(secrets.token_urlsafe(48))' >"$secret_file")
    fi
    cat >"$ENV_FILE" <<EOF
# Written by peers/bottlecrm.sh; every variable crm.settings reads that matters here, exported so
# that no stray .env file (crm.settings calls load_dotenv()) can change them.
export PYTHON_DOTENV_DISABLED=1
export DJANGO_SETTINGS_MODULE=crm_peer_settings
export PYTHONPATH='$OVERLAY_DIR'
export CRM_PEER_RUN_DIR='$RUN_DIR'
export CRM_PEER_EAGER=\${CRM_PEER_EAGER:-1}
export CRM_PEER_WEBHOOK_LOOPBACK=\${CRM_PEER_WEBHOOK_LOOPBACK:-1}
export SECRET_KEY='$(cat "$secret_file")'
export ENV_TYPE=dev
export DEBUG=True
export ALLOWED_HOSTS=localhost,127.0.0.1
export DBNAME='$DB_NAME'
export DBUSER='$DB_ROLE'
export DBPASSWORD='$DB_PASSWORD'
export DBHOST='$DB_HOST'
export DBPORT='$DB_PORT'
export DB_POOL_ENABLED=False
# Only used with CRM_PEER_EAGER=0 (a real worker); db 5 is the CRM's own, apart from Crossdock's.
export CELERY_BROKER_URL=redis://127.0.0.1:6379/5
export CELERY_RESULT_BACKEND=redis://127.0.0.1:6379/5
export CACHE_URL=
export EMAIL_BACKEND=django.core.mail.backends.console.EmailBackend
export DOMAIN_NAME=http://127.0.0.1:$CRM_PORT
export FRONTEND_URL=http://127.0.0.1:5181
EOF
}

# crm_run CMD ARGS...: run CMD in the run directory with the CRM's environment.
crm_run() {
    write_env_file
    (
        cd "$RUN_DIR"
        # shellcheck disable=SC1090
        source "$ENV_FILE"
        "$@"
    )
}

# ------------------------------------------------------------------------------------------------
# Verbs

cmd_install() {
    peer_venv "$VENV" "${PACKAGES[@]}"
    local version
    version=$("$VENV/bin/python" -c 'import importlib.metadata as m; print(m.version("django-crm"))')
    [[ "$version" == 1.35.0 ]] || peer_die "django-crm $version installed, expected 1.35.0"
}

cmd_init() {
    cmd_install
    ensure_role
    if template_current; then
        return 0
    fi
    peer_say "migrating a new database $DB_NAME (253 migrations: a few minutes)"
    cmd_stop
    pg_admin -c "DROP DATABASE IF EXISTS \"$DB_TPL\"" -c "DROP DATABASE IF EXISTS \"$DB_NAME\" WITH (FORCE)"
    pg_admin -c "CREATE DATABASE \"$DB_NAME\" OWNER \"$DB_ROLE\""
    local started=$SECONDS
    crm_run "$VENV/bin/django-admin" migrate --noinput >>"$RUN_DIR/migrate.log" 2>&1 ||
        peer_die "migrate failed; see $RUN_DIR/migrate.log"
    peer_say "migrated in $((SECONDS - started)) s"
    pg_admin -c "CREATE DATABASE \"$DB_TPL\" TEMPLATE \"$DB_NAME\" OWNER \"$DB_ROLE\"" \
        -c "COMMENT ON DATABASE \"$DB_TPL\" IS '$TEMPLATE_STAMP'"
    # The migrated database is not seeded yet: the next ensure/reset seeds it.
    rm -f "$CREDS_FILE"
}

seed() {
    local out pat_file="$RUN_DIR/pat"
    if [[ ! -s "$pat_file" ]]; then
        # One token per machine, registered again after every reset: a test session holding it keeps
        # working when another process resets the peer.
        (umask 077 && "$VENV/bin/python" -c 'import secrets; print("bcrm_pat_" + secrets.token_urlsafe(32))' >"$pat_file")
    fi
    out=$(crm_run "$VENV/bin/python" "$OVERLAY_DIR/crm_peer_bootstrap.py" seed "$pat_file" 2>>"$LOG") ||
        peer_die "seeding failed; see $LOG"
    {
        echo "$out"
        echo "CRM_JWT_ISSUED_AT=$(date +%s)"
    } >"$CREDS_FILE.tmp"
    mv "$CREDS_FILE.tmp" "$CREDS_FILE"
}

# clone: a fresh copy of the template, seeded. The server must be stopped.
clone() {
    pg_admin -c "DROP DATABASE IF EXISTS \"$DB_NAME\" WITH (FORCE)" \
        -c "CREATE DATABASE \"$DB_NAME\" TEMPLATE \"$DB_TPL\" OWNER \"$DB_ROLE\""
    seed
}

cmd_start() {
    if peer_running "$PIDFILE"; then
        return 0
    fi
    if peer_port_open "$CRM_PORT"; then
        peer_die "127.0.0.1:$CRM_PORT is taken by another program; set CRM_PORT"
    fi
    [[ -x "$VENV/bin/gunicorn" ]] || peer_die "not installed; run: $0 install"
    write_env_file
    (
        cd "$RUN_DIR"
        # shellcheck disable=SC1090
        source "$ENV_FILE"
        # setsid: its own session, so the caller's terminal or test process group can end without
        # taking it along; every descriptor goes to the log, so a caller capturing output is not held.
        setsid "$VENV/bin/gunicorn" crm.wsgi:application -b "127.0.0.1:$CRM_PORT" -w 2 \
            --no-control-socket --timeout 60 --access-logfile - \
            >>"$LOG" 2>&1 </dev/null 9>&- &
        echo $! >"$PIDFILE"
    )
    peer_wait_http "http://127.0.0.1:$CRM_PORT/healthz/"
    peer_say "running on http://127.0.0.1:$CRM_PORT (pid $(cat "$PIDFILE"), log $LOG)"
}

cmd_stop() { peer_stop "$PIDFILE"; }

cmd_reset() {
    cmd_stop
    cmd_init
    clone
    cmd_start
}

# credentials_work: the PAT in the credentials file is accepted by the running server.
credentials_work() {
    local pat code
    pat=$(sed -n 's/^CRM_PAT=//p' "$CREDS_FILE" 2>/dev/null || true)
    [[ -n "$pat" ]] || return 1
    code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 10 -H "Authorization: Bearer $pat" \
        "http://127.0.0.1:$CRM_PORT/api/accounts/?limit=1" || true)
    [[ "$code" == 200 ]]
}

cmd_ensure() {
    cmd_init
    if ! db_exists "$DB_NAME" || [[ ! -s "$CREDS_FILE" ]]; then
        cmd_stop
        clone
    fi
    cmd_start
    if ! credentials_work; then
        peer_say "the stored credentials are not accepted: resetting"
        cmd_reset
    fi
}

cmd_status() {
    if peer_running "$PIDFILE"; then
        echo "bottlecrm: running on http://127.0.0.1:$CRM_PORT (pid $(cat "$PIDFILE")), log $LOG"
    else
        echo "bottlecrm: stopped (venv $VENV, database $DB_NAME)"
        return 3
    fi
}

cmd_env() {
    [[ -s "$CREDS_FILE" ]] || peer_die "not seeded yet; run: $0 ensure"
    local issued now
    issued=$(sed -n 's/^CRM_JWT_ISSUED_AT=//p' "$CREDS_FILE")
    now=$(date +%s)
    if ((now - ${issued:-0} > JWT_MAX_AGE_S)); then
        local jwt
        jwt=$(crm_run "$VENV/bin/python" "$OVERLAY_DIR/crm_peer_bootstrap.py" jwt 2>>"$LOG") ||
            peer_die "minting a JWT failed; see $LOG"
        grep -v -e '^CRM_JWT=' -e '^CRM_JWT_ISSUED_AT=' "$CREDS_FILE" >"$CREDS_FILE.tmp"
        printf '%s\nCRM_JWT_ISSUED_AT=%s\n' "$jwt" "$now" >>"$CREDS_FILE.tmp"
        mv "$CREDS_FILE.tmp" "$CREDS_FILE"
    fi
    echo "CRM_URL=http://127.0.0.1:$CRM_PORT"
    grep -v -e '^CRM_JWT_ISSUED_AT=' -e '^CRM_URL=' "$CREDS_FILE"
}

# One verb at a time per machine (tests, CI's peers/all.sh and a developer may call this at once):
# a reset racing a start would leave a server without its pid file. status and env (which at most
# re-mints the JWT) take no lock.
case "${1:-}" in
install | init | start | stop | reset | ensure)
    exec 9>"$RUN_DIR/lock"
    flock -w 900 9 || peer_die "another peers/bottlecrm.sh is still running after 900 s"
    ;;
esac

case "${1:-}" in
install) cmd_install ;;
init) cmd_init ;;
start) cmd_start ;;
stop) cmd_stop ;;
reset) cmd_reset ;;
ensure) cmd_ensure ;;
status) cmd_status ;;
env) cmd_env ;;
*)
    sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//' >&2
    exit 2
    ;;
esac
