"""Field and code mappings per connection and direction, versioned (connectors.mapping has the format)."""

from __future__ import annotations

from django.db import models
from django.db.models import Q

from canonical.models import TimestampedModel
from hub.connections.models import Connection


class Mapping(TimestampedModel):
    """One version of a connection's overrides on top of its connector's packaged defaults.

    Drafts are edited and previewed; publishing makes a version the one messages use (and retires
    the previous one). A published version never changes again, so every processed message's
    ``mapping_version`` names exactly the rules it went through.
    """

    class Direction(models.TextChoices):
        INBOUND = "inbound", "Inbound (native → canonical)"
        OUTBOUND = "outbound", "Outbound (canonical → native)"

    class Status(models.TextChoices):
        DRAFT = "draft"
        PUBLISHED = "published"
        RETIRED = "retired"

    connection = models.ForeignKey(Connection, on_delete=models.CASCADE, related_name="mappings")
    direction = models.CharField(max_length=8, choices=Direction.choices)
    version = models.PositiveIntegerField(editable=False)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.DRAFT)
    data = models.JSONField(
        default=dict,
        blank=True,
        help_text='Overrides: {"fields": {canonical field: source path}, "codes": {code set: {native: canonical}}}.',
    )
    notes = models.TextField(blank=True, help_text="Why this version exists (shown in the history).")
    published_at = models.DateTimeField(null=True, blank=True, editable=False)
    published_by = models.CharField(max_length=150, blank=True, editable=False)

    class Meta:
        ordering = ["connection", "direction", "-version"]
        constraints = [
            models.UniqueConstraint(
                fields=["connection", "direction", "version"], name="mappings_conn_dir_version_uniq"
            ),
            # mapping_set_for reads the one published version per connection and direction.
            models.UniqueConstraint(
                fields=["connection", "direction"],
                condition=Q(status="published"),
                name="mappings_one_published_uniq",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.connection.slug} {self.direction} v{self.version} ({self.status})"
