from django.apps import AppConfig


class DeadlettersConfig(AppConfig):
    name = "hub.deadletters"
    label = "deadletters"
