from django.apps import AppConfig


class DeadlettersConfig(AppConfig):
    name = "hub.deadletters"
    label = "deadletters"

    def ready(self) -> None:
        from hub.core import work
        from hub.deadletters import replay

        work.register(
            work.WorkQueue(
                name=replay.REPLAY_JOBS,
                task="hub.deadletters.replay_job",
                claim=replay.replay_job_run,
                due=replay.replay_jobs_unfinished,
            )
        )
        work.hook_register("letters_auto_replayed", replay.letters_auto_replay)
