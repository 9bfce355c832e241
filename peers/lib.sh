# Shared helpers for the peer bring-up scripts (peers/<name>.sh). Sourced, not run.
#
# Every peer installs into its own venv under $CROSSDOCK_PEERS_DIR (outside the repository, reused
# across runs; default ~/.cache/crossdock/peers), keeps its state there, listens on one loopback port
# and is stopped by the pid in its pid file. Each script answers the same verbs:
#   install  venv + pinned packages (no-op when the pinned set is already installed)
#   init     create and seed the database, then keep a template/snapshot for fast resets
#   start    start the server in the background and wait until it answers
#   stop     stop it by pid (SIGTERM, then SIGKILL after PEER_STOP_TIMEOUT_S)
#   reset    stop, restore the seeded template, start
#   ensure   install + init + start, each only if needed (what the test fixtures call)
#   status   running or not, and where
#   env      KEY=VALUE lines the tests and the demo read (URL, credentials)

set -euo pipefail

PEERS_DIR=${CROSSDOCK_PEERS_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/crossdock/peers}
PEER_STOP_TIMEOUT_S=${PEER_STOP_TIMEOUT_S:-20}   # seconds a server gets after SIGTERM
PEER_READY_TIMEOUT_S=${PEER_READY_TIMEOUT_S:-120} # seconds a server gets to answer after start

peer_say() { printf '[peer %s] %s\n' "${PEER_NAME:-?}" "$*" >&2; }
peer_die() {
    printf '[peer %s] error: %s\n' "${PEER_NAME:-?}" "$*" >&2
    exit 1
}

# The Python that builds peer venvs: >= 3.12 (django-crm needs it), found like ./crossdock does.
peer_python() {
    local candidate
    if [[ -n "${CROSSDOCK_PYTHON:-}" ]]; then
        printf '%s\n' "$CROSSDOCK_PYTHON"
        return
    fi
    for candidate in python3.12 python3.13; do
        if command -v "$candidate" >/dev/null 2>&1 &&
            "$candidate" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 12) else 1)' 2>/dev/null; then
            command -v "$candidate"
            return
        fi
    done
    for candidate in "${PYENV_ROOT:-$HOME/.pyenv}"/versions/3.1[2-9]*/bin/python3.1[2-9]; do
        if [[ -x "$candidate" ]]; then
            printf '%s\n' "$candidate"
            return
        fi
    done
    peer_die "no Python >= 3.12 found; set CROSSDOCK_PYTHON"
}

# peer_venv DIR PACKAGES...: create DIR as a venv and install the pinned packages, unless a stamp
# file records that exactly this package list is installed already.
peer_venv() {
    local dir=$1
    shift
    local want="$*"
    if [[ -x "$dir/bin/python" && -f "$dir/.crossdock-installed" && "$(cat "$dir/.crossdock-installed")" == "$want" ]]; then
        return 0
    fi
    peer_say "installing into $dir: $want"
    rm -rf "$dir"
    "$(peer_python)" -m venv "$dir"
    # Some machines' pip configuration names index folders that do not exist; pip warns once per
    # package about each, which would bury the progress lines: those warnings are dropped.
    "$dir/bin/pip" install --quiet --disable-pip-version-check "$@" \
        2> >(grep -v 'is ignored: it is neither a file nor a directory' >&2)
    printf '%s' "$want" >"$dir/.crossdock-installed"
}

peer_port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# peer_running PIDFILE: the pid in PIDFILE is alive.
peer_running() {
    local pid
    [[ -f "$1" ]] || return 1
    pid=$(cat "$1" 2>/dev/null || true)
    [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null
}

# peer_wait_http URL [TIMEOUT_S]: until URL answers with any status < 500.
peer_wait_http() {
    local url=$1 timeout=${2:-$PEER_READY_TIMEOUT_S} deadline code
    deadline=$((SECONDS + timeout))
    while true; do
        code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 "$url" 2>/dev/null || true)
        if [[ -n "$code" && "$code" != 000 && "$code" -lt 500 ]]; then
            return 0
        fi
        if ((SECONDS >= deadline)); then
            peer_die "$url does not answer within ${timeout}s (last status: ${code:-none}); see the log"
        fi
        sleep 0.3
    done
}

# peer_stop PIDFILE: SIGTERM the process group leader, wait, then SIGKILL. No-op when not running.
peer_stop() {
    local pidfile=$1 pid deadline
    if ! peer_running "$pidfile"; then
        rm -f "$pidfile"
        return 0
    fi
    pid=$(cat "$pidfile")
    kill -TERM "$pid" 2>/dev/null || true
    deadline=$((SECONDS + PEER_STOP_TIMEOUT_S))
    while kill -0 "$pid" 2>/dev/null; do
        if ((SECONDS >= deadline)); then
            peer_say "pid $pid did not stop after ${PEER_STOP_TIMEOUT_S}s: SIGKILL"
            kill -KILL "$pid" 2>/dev/null || true
            break
        fi
        sleep 0.2
    done
    rm -f "$pidfile"
}
