from django.apps import AppConfig


class OutboxConfig(AppConfig):
    name = "hub.outbox"
    label = "outbox"

    def ready(self) -> None:
        from hub.core import work
        from hub.deadletters.replay import replayer_register
        from hub.outbox import services

        work.register(
            work.WorkQueue(
                name=services.OUTBOX_WAKE,
                task="hub.outbox.drain",
                claim=services.delivery_batch_claim,
                expire=services.delivery_leases_expire,
                waiting=services.deliveries_due_exist,
            )
        )
        replayer_register("delivery", services.delivery_letter_replay)
