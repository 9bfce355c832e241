#!/usr/bin/env bash
# Every peer at once: ./peers/all.sh ensure|stop|status|reset|env
#   ensure  install, init and start each peer that needs it, in parallel (first run: several
#           minutes; later runs reuse the installs under $CROSSDOCK_PEERS_DIR and take seconds)
# See peers/lib.sh for the verbs and README "Peer systems" for ports and credentials.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
PEERS=(tryton karrio bottlecrm)
verb=${1:-ensure}

case "$verb" in
ensure | reset)
    # In parallel: each peer's install and database init are mostly waiting on pip and migrations.
    declare -A pids
    for peer in "${PEERS[@]}"; do
        bash "./$peer.sh" "$verb" > >(sed -u "s/^/[$peer] /") 2>&1 &
        pids[$peer]=$!
    done
    failed=()
    for peer in "${PEERS[@]}"; do
        wait "${pids[$peer]}" || failed+=("$peer")
    done
    if ((${#failed[@]})); then
        echo "error: peers failed to $verb: ${failed[*]}" >&2
        exit 1
    fi
    ;;
stop | status | env)
    for peer in "${PEERS[@]}"; do bash "./$peer.sh" "$verb"; done
    ;;
*)
    echo "usage: $0 ensure|reset|stop|status|env" >&2
    exit 2
    ;;
esac
