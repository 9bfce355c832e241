from django.apps import AppConfig


class CanonicalConfig(AppConfig):
    name = "canonical"
    verbose_name = "Canonical logistics model"
    default_auto_field = "django.db.models.BigAutoField"
