"""The flow definitions; importing this package registers every version that may still have runs."""

from hub.workflows.flows import (  # noqa: F401  (registration)
    exception_to_case,
    freight_adjustment,
    order_to_ship,
    ship_to_invoice,
)
