"""Settings, mapper and proxy of the offline carrier. Everything is answered locally.

Tracking echoes what Karrio already stores for the number (status and events), so a tracker
refresh (re-POST after a minute, or the periodic job) never rolls back injected events. A number
Karrio does not know yet answers ``pending`` with one "label created" event.

No ``custom_carrier_name`` anywhere: Karrio treats any connection or settings that carry it as the
``generic`` carrier.
"""

import datetime
import typing

import attr
import jstruct
import karrio.core.models as models
import karrio.lib as lib
from karrio.api.mapper import Mapper as BaseMapper
from karrio.api.proxy import Proxy as BaseProxy
from karrio.core.settings import Settings as BaseSettings
from karrio.universal.mappers.rating_proxy import RatingMixinProxy
from karrio.universal.mappers.shipping_proxy import ShippingMixinProxy
from karrio.universal.providers import rating, shipping


class Service(lib.Enum):
    offline_standard = "offline_standard"
    offline_express = "offline_express"


def _service(code: str, name: str, rate: float, days: int) -> models.ServiceLevel:
    return models.ServiceLevel(
        service_name=name,
        service_code=code,
        currency="USD",
        transit_days=days,
        zones=[models.ServiceZone(label="Everywhere", rate=rate)],
    )


SERVICES = [
    _service("offline_standard", "Offline Standard", 10.0, 3),
    _service("offline_express", "Offline Express", 25.0, 1),
]


@attr.s(auto_attribs=True)
class Settings(BaseSettings):
    carrier_id: str = "offline"
    account_number: str = None
    display_name: str = "Offline carrier"
    label_template: models.LabelTemplate = jstruct.JStruct[models.LabelTemplate]
    # typing.List, not list: jstruct reads these hints to build nested objects from Karrio's dicts.
    services: typing.List[models.ServiceLevel] = jstruct.JList[models.ServiceLevel]  # noqa: UP006

    @property
    def carrier_name(self) -> str:
        return "offline"

    @property
    def shipping_services(self) -> list[models.ServiceLevel]:
        return self.services or SERVICES


def _stored_trackers(numbers: list[str]) -> dict:
    try:  # inside karrio-server: read the tracker Karrio has stored (events injected so far)
        from karrio.server.manager.models import Tracking

        return {t.tracking_number: t for t in Tracking.objects.filter(tracking_number__in=numbers)}
    except Exception:  # the bare SDK (no Django): nothing is stored
        return {}


class Proxy(BaseProxy):
    settings: Settings
    get_rates = RatingMixinProxy.get_rates
    create_shipment = ShippingMixinProxy.create_shipment

    def get_tracking(self, request: lib.Serializable) -> lib.Deserializable:
        numbers = request.serialize()
        stored = _stored_trackers(numbers)
        return lib.Deserializable([(number, stored.get(number)) for number in numbers])


class Mapper(BaseMapper):
    settings: Settings

    def create_rate_request(self, payload):
        return rating.rate_request(payload, self.settings)

    def parse_rate_response(self, response):
        return rating.parse_rate_response(response, self.settings)

    def create_shipment_request(self, payload):
        return shipping.shipment_request(payload, self.settings)

    def parse_shipment_response(self, response):
        return shipping.parse_shipment_response(response, self.settings)

    def create_tracking_request(self, payload: models.TrackingRequest) -> lib.Serializable:
        return lib.Serializable(payload.tracking_numbers)

    def parse_tracking_response(self, response: lib.Deserializable):
        now = datetime.datetime.now(datetime.UTC)
        created = models.TrackingEvent(
            date=now.strftime("%Y-%m-%d"),
            time=now.strftime("%H:%M"),
            code="CREATED",
            status="created",  # as in Karrio's own label-created event
            timestamp=now.strftime("%Y-%m-%dT%H:%M:%S.000Z"),
            description="Label created",
        )
        details = [
            models.TrackingDetails(
                carrier_name="offline",
                carrier_id=self.settings.carrier_id,
                tracking_number=number,
                events=[lib.to_object(models.TrackingEvent, e) for e in tracker.events]
                if tracker
                else [created],
                status=tracker.status if tracker else "pending",
                delivered=bool(tracker and tracker.delivered),
            )
            for number, tracker in response.deserialize()
        ]
        return details, []
