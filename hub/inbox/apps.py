from django.apps import AppConfig


class InboxConfig(AppConfig):
    name = "hub.inbox"
    label = "inbox"

    def ready(self) -> None:
        from hub.core import work
        from hub.deadletters.replay import replayer_register
        from hub.inbox import polling, services

        work.register(
            work.WorkQueue(
                name=services.INBOX_WAKE,
                task="hub.inbox.drain",
                claim=services.inbound_batch_claim,
                expire=services.inbound_leases_expire,
                waiting=services.inbound_waiting_exists,
            )
        )
        work.register(
            work.WorkQueue(
                name=polling.POLLS,
                task="hub.inbox.poll",
                claim=polling.connection_poll,
                due=polling.connections_poll_due,
            )
        )
        replayer_register("message", services.message_letter_replay)
