"""Settings overlay for the BottleCRM (django-crm 1.35.0) test peer; see peers/bottlecrm.sh.

django-crm ships its settings as ``crm.settings``, configured from environment variables the peer
script exports (``$PEERS_DIR/bottlecrm-run/crm.env``). This module takes them over and changes three
things for a local test peer:

- Celery runs tasks inline (``CRM_PEER_EAGER=1``, the default), so no worker or broker is needed.
  Without a result, a write whose task fails after ``save()`` answers 500 with the row committed.
- Outbound webhooks may call loopback addresses on any port (``CRM_PEER_WEBHOOK_LOOPBACK=1``, the
  default): stock ``webhooks.ssrf`` allows only public addresses on port 443 (80 with DEBUG).
- Django's own log files go to the run directory under names that do not clash with the script's
  ``server.log`` (gunicorn's output).

Not part of Crossdock: this file is only put on the peer's PYTHONPATH.
"""

import ipaddress
import os

from crm import settings as _base

globals().update({name: getattr(_base, name) for name in dir(_base) if name.isupper()})

_RUN_DIR = os.environ.get("CRM_PEER_RUN_DIR", os.getcwd())

CELERY_TASK_ALWAYS_EAGER = os.environ.get("CRM_PEER_EAGER", "1") != "0"
CELERY_TASK_EAGER_PROPAGATES = False  # a failing task must not turn a committed write into a 500

LOGGING = dict(_base.LOGGING)
LOGGING["handlers"] = {name: dict(handler) for name, handler in _base.LOGGING["handlers"].items()}
LOGGING["handlers"]["logfile"]["filename"] = os.path.join(_RUN_DIR, "django.log")
LOGGING["handlers"]["security_audit"]["filename"] = os.path.join(_RUN_DIR, "security_audit.log")

if os.environ.get("CRM_PEER_WEBHOOK_LOOPBACK", "1") != "0":
    from webhooks import ssrf as _ssrf

    _stock_is_blocked = _ssrf.is_blocked

    def _is_blocked(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
        # Loopback only: private networks and the rest stay refused, as in production.
        return not ip.is_loopback and _stock_is_blocked(ip)

    _ssrf.is_blocked = _is_blocked
    _ssrf._allowed_schemes = lambda: ("https", "http")

    class _AnyPort(frozenset):
        def __contains__(self, port: object) -> bool:
            return isinstance(port, int) and 0 < port < 65536

    _ssrf._allowed_ports = lambda: _AnyPort()
