from django.apps import AppConfig


class MappingsConfig(AppConfig):
    name = "hub.mappings"
    label = "mappings"
    verbose_name = "Mappings"
