"""Every ModelAdmin of the ops console, one module per app whose models it shows.

Django's autodiscover imports ``hub.ops.admin`` (this package), so importing the modules here
registers them. The admin URL of a model depends on its app label, not on this package:
``/admin/inbox/inboundmessage/`` stays where it was. The shared base classes, mixins and helpers
are in :mod:`hub.ops.admin.kit`; docs/subsystems/ops.md says how to add an admin.
"""

from hub.ops.admin import (  # noqa: F401  registers the admins
    canonical,
    connections,
    deadletters,
    inbox,
    ledger,
    mappings,
    outbox,
    reconciliation,
    workflows,
)
