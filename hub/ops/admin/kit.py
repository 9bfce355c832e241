"""The ops console's admin toolkit: every ModelAdmin in :mod:`hub.ops.admin` is built from these.

- **Writes through services.** :class:`ServiceModelAdmin` saves through a service; a service's
  ``DomainError`` is shown on the form and nothing is saved (see its ``changeform_view``). Its forms
  know which system owns a record (:func:`owner_systems`).
- **Read-only records.** :class:`ReadOnlyAdmin` for what only the pipeline writes (listed and shown,
  never added, edited or deleted); :class:`ViewOnlyInline` for child rows shown on a parent's page.
- **Permissions.** :class:`NoAddMixin`, :class:`NoChangeMixin`, :class:`NoDeleteMixin` and
  :class:`ReadOnlyMixin` refuse the matching admin rights; :class:`OwnerKeepsDeleteMixin` refuses
  deleting a record another system owns. Put one before the admin base class.
- **Links, search, filters and display.** :func:`admin_link` and friends, :class:`ExactSearchMixin`,
  :class:`ConnectionFilter`, :class:`SourceSystemFilter`, :func:`payload_html`, :func:`json_html`.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any
from urllib.parse import urlencode

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.contrib.admin.utils import flatten_fieldsets, quote
from django.contrib.contenttypes.models import ContentType
from django.db import models
from django.db.models import Exists, OuterRef, Q, QuerySet
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import NoReverseMatch, reverse
from django.utils.html import format_html, format_html_join

from canonical import services
from canonical.errors import DomainError
from canonical.models import ExternalRef
from hub.connections.models import Connection
from hub.core.payloads import payload_repr

# The system name of records Crossdock itself holds; a ref to any other system makes it the owner.
HUB_SYSTEM = "crossdock"
RECORD_FIELDS = ("id", "created_at", "updated_at")
RECORD_FIELDSET = ("Record", {"classes": ("collapse",), "fields": RECORD_FIELDS})
NON_FIELD = ("", "__all__", "non_field_errors")


# --- Permissions -----------------------------------------------------------------------------------
# Each mixin goes before the admin (or inline) base class. ``obj`` is optional on ``has_add_permission``
# because Django passes it to inlines and not to ModelAdmins.


class NoAddMixin:
    """No record is added here (the pipeline, a service or another page makes them)."""

    def has_add_permission(self, request: HttpRequest, obj: models.Model | None = None) -> bool:
        return False


class NoChangeMixin:
    """No record is edited here."""

    def has_change_permission(self, request: HttpRequest, obj: models.Model | None = None) -> bool:
        return False


class NoDeleteMixin:
    """No record is deleted here (deactivate instead, or the record must stay as history)."""

    def has_delete_permission(self, request: HttpRequest, obj: models.Model | None = None) -> bool:
        return False


class ReadOnlyMixin(NoAddMixin, NoChangeMixin, NoDeleteMixin):
    """Viewed only. For inlines the view right is the parent's: Django asks for it without an object
    when it builds the inline's queryset, so refusing there would hide every row."""


class OwnerKeepsDeleteMixin:
    """A record another system owns (``self.owners(obj)``) is not deleted here: the next sync would
    only recreate it."""

    def has_delete_permission(self, request: HttpRequest, obj: models.Model | None = None) -> bool:
        return not self.owners(obj) and super().has_delete_permission(request, obj)  # type: ignore[attr-defined,misc]


# --- Links -----------------------------------------------------------------------------------------


def admin_url(obj: models.Model) -> str | None:
    """The admin change page of ``obj``, or None when its model has no admin."""
    opts = obj._meta
    try:
        return reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=[quote(obj.pk)])
    except NoReverseMatch:
        return None


def admin_link(obj: models.Model | None, label: object | None = None) -> str:
    """``obj`` as a link to its admin change page ("-" for no object, plain text without an admin)."""
    if obj is None:
        return "-"
    text = obj if label is None else label
    url = admin_url(obj)
    return str(text) if url is None else format_html('<a href="{}">{}</a>', url, text)


def link_column(
    path: str, description: str, *, label: str | None = None, ordering: str | None = None, empty: str = "-"
) -> Any:
    """An admin column (list or read-only field): the record at ``path`` (an attribute of the row,
    dotted to follow relations: ``"shipment.carrier"``) as ``admin_link``, labelled by its ``label``
    field (default: ``str()``), or ``empty`` when there is none."""

    @admin.display(description=description, ordering=ordering)
    def column(model_admin: admin.ModelAdmin, obj: models.Model) -> str:
        target: Any = obj
        for name in path.split("."):
            target = getattr(target, name)
            if target is None:
                return empty
        return admin_link(target, None if label is None else getattr(target, label))

    return column


def admin_links(objs: Iterable[models.Model]) -> str:
    """Several records as comma-separated links, or "-"."""
    pairs = [(admin_url(obj) or "#", str(obj)) for obj in objs]
    return format_html_join(", ", '<a href="{}">{}</a>', pairs) if pairs else "-"


def changelist_link(model: type[models.Model], label: str, **filters: object) -> str:
    """A link to ``model``'s changelist filtered by ``filters`` (e.g. ``customer__id__exact=pk``)."""
    opts = model._meta
    url = reverse(f"admin:{opts.app_label}_{opts.model_name}_changelist")
    query = urlencode({name: str(value) for name, value in filters.items()})
    return format_html('<a href="{}?{}">{}</a>', url, query, label)


# --- Ownership -------------------------------------------------------------------------------------


def owner_systems(obj: models.Model | None) -> list[str]:
    """The systems other than Crossdock that hold ``obj`` (through its external refs); they own it.

    Reads ``obj.external_refs.all()``, so a prefetch (every admin below prefetches) makes it free.
    """
    if obj is None or obj._state.adding or not hasattr(obj, "external_refs"):
        return []
    return sorted({ref.system for ref in obj.external_refs.all()} - {HUB_SYSTEM})


class SourceSystemFilter(admin.SimpleListFilter):
    """Filter records by a system that holds them, or keep those only Crossdock holds."""

    title = "source system"
    parameter_name = "source"
    HUB_ONLY = "-"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list[tuple[str, str]]:
        content_type = ContentType.objects.get_for_model(model_admin.model)
        systems = (
            ExternalRef.objects.filter(content_type=content_type)
            .exclude(system=HUB_SYSTEM)
            .order_by("system")
            .values_list("system", flat=True)
            .distinct()
        )
        return [(self.HUB_ONLY, "Crossdock only"), *((system, system) for system in systems)]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        value = self.value()
        if value is None:
            return queryset
        refs = ExternalRef.objects.filter(
            content_type=ContentType.objects.get_for_model(queryset.model), object_id=OuterRef("pk")
        )
        if value == self.HUB_ONLY:
            return queryset.exclude(Exists(refs.exclude(system=HUB_SYSTEM)))
        # Exists, not a join: a record with two refs in the system is listed once.
        return queryset.filter(Exists(refs.filter(system=value)))


# --- Writes through services -----------------------------------------------------------------------


class ServiceRejected(Exception):
    """A service refused the write; carries its ``DomainError`` out of the admin's atomic block."""

    def __init__(self, error: DomainError):
        super().__init__(error.detail)
        self.error = error


class ServiceModelForm(forms.ModelForm):
    """The base form of every admin here. On the second pass after a service refused a write (see
    :meth:`ServiceModelAdmin.changeform_view`), it shows the service's errors on the fields they name.
    """

    service_error: DomainError | None = None

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        error = self.service_error
        if error is not None:
            items = error.errors or [{"field": "", "message": error.detail}]
            for item in items:
                field, message = item.get("field", ""), item.get("message", error.detail)
                if field in self.fields:
                    self.add_error(field, message)
                else:
                    self.add_error(None, message if field in NON_FIELD else f"{field}: {message}")
        return cleaned


def _adopt(target: models.Model, saved: models.Model) -> None:
    """Make the admin's form instance the record the service saved (same row, same field values).

    Django keeps using its own instance after ``save_model`` (inline formsets save children against
    it; the response redirects to its pk), so a service that built a new instance must hand its
    state back.
    """
    if target is saved:
        return
    for field in saved._meta.concrete_fields:
        setattr(target, field.attname, getattr(saved, field.attname))
    target._state.adding = False
    target._state.db = saved._state.db


def _filter_fieldsets(fieldsets: Sequence[tuple[Any, Mapping[str, Any]]], hidden: set[str]) -> list:
    """``fieldsets`` without the ``hidden`` fields, and without fieldsets left empty."""
    result = []
    for name, options in fieldsets:
        fields = []
        for entry in options["fields"]:
            if isinstance(entry, list | tuple):
                kept = tuple(f for f in entry if f not in hidden)
                if kept:
                    fields.append(kept)
            elif entry not in hidden:
                fields.append(entry)
        if fields:
            result.append((name, {**options, "fields": tuple(fields)}))
    return result


class ServiceModelAdmin(admin.ModelAdmin):
    """A ModelAdmin whose saves go through a service and whose forms know who owns the record.

    Subclasses name a ``save_service`` or implement :meth:`service_save`. ``readonly_fields`` lists what is always read-only
    (it is hidden on the add form: there is nothing to show yet); ``readonly_after_create`` the
    business key; ``hub_owned_fields`` what stays editable when another system owns the record.
    """

    form = ServiceModelForm
    list_per_page = 50
    # The unfiltered total is one more COUNT(*) over the whole table on every list page.
    show_full_result_count = False
    readonly_fields: Sequence[str] = RECORD_FIELDS
    readonly_after_create: Sequence[str] = ()
    hub_owned_fields: Sequence[str] = ()
    add_hidden_fields: Sequence[str] = ()
    # Name of a canonical.services function called as f(instance=<obj or None>, data=...), e.g.
    # "order_save"; looked up at call time.
    save_service: str | None = None

    # -- ownership --

    def owners(self, obj: models.Model | None) -> list[str]:
        """The systems that own ``obj`` (empty when Crossdock does). Cached on the instance."""
        if obj is None:
            return []
        cached = getattr(obj, "_crossdock_owners", None)
        if cached is None:
            cached = owner_systems(obj)
            obj._crossdock_owners = cached  # type: ignore[attr-defined]
        return cached

    @admin.display(description="Owned by")
    def ownership(self, obj: models.Model) -> str:
        systems = self.owners(obj)
        if not systems:
            return "Crossdock: edit it here."
        names = ", ".join(systems)
        return f"{names}: its business data is read-only here; change it in {names}."

    # -- form shape --

    def get_fieldsets(self, request: HttpRequest, obj: models.Model | None = None) -> list:
        fieldsets = self.fieldsets or [(None, {"fields": self.get_fields(request, obj)})]
        if obj is None:
            return _filter_fieldsets(fieldsets, {*self.readonly_fields, *self.add_hidden_fields})
        return list(fieldsets)

    def get_readonly_fields(self, request: HttpRequest, obj: models.Model | None = None) -> Sequence[str]:
        readonly = list(self.readonly_fields)
        if obj is not None:
            readonly += self.readonly_after_create
            if self.owners(obj):
                keep = set(self.hub_owned_fields)
                readonly += [f for f in flatten_fieldsets(self.fieldsets or ()) if f not in keep]
        return tuple(dict.fromkeys(readonly))

    def get_form(self, request: HttpRequest, obj: models.Model | None = None, change: bool = False, **kwargs):
        error = getattr(request, "_crossdock_service_error", None)
        if error is not None:
            base = kwargs.get("form", self.form)
            kwargs["form"] = type(base.__name__, (base,), {"service_error": error})
        return super().get_form(request, obj, change, **kwargs)

    # -- writes --

    def changeform_view(
        self,
        request: HttpRequest,
        object_id: str | None = None,
        form_url: str = "",
        extra_context: dict[str, Any] | None = None,
    ) -> HttpResponse:
        try:
            return super().changeform_view(request, object_id, form_url, extra_context)
        except ServiceRejected as rejected:
            # The first pass ran inside the admin's atomic block; raising out of it rolled back all
            # it wrote (the record and any inline rows). Run the view again on the same POST with the
            # service's errors attached to the form: it is invalid now, so nothing is saved, and the
            # operator sees the errors next to their input instead of a 500.
            request._crossdock_service_error = rejected.error  # type: ignore[attr-defined]
            self.message_user(request, rejected.error.detail, level=messages.ERROR)
            return super().changeform_view(request, object_id, form_url, extra_context)

    def form_data(self, form: forms.ModelForm, change: bool) -> dict[str, Any]:
        """The model fields the operator set: all the form's on create, the changed ones on update."""
        model_fields = {field.name for field in form._meta.model._meta.concrete_fields}
        names = form.changed_data if change else list(form.cleaned_data)
        return {name: form.cleaned_data[name] for name in names if name in model_fields}

    def save_model(
        self, request: HttpRequest, obj: models.Model, form: forms.ModelForm, change: bool
    ) -> None:
        try:
            saved = self.service_save(
                request=request, obj=obj, form=form, data=self.form_data(form, change), change=change
            )
        except DomainError as exc:
            raise ServiceRejected(exc) from exc
        _adopt(obj, saved)

    def service_save(
        self,
        *,
        request: HttpRequest,
        obj: models.Model,
        form: forms.ModelForm,
        data: dict[str, Any],
        change: bool,
    ) -> models.Model:
        """Write through ``save_service`` (a service taking ``instance``/``data``) when the admin names
        one, else the flat master-data services; admins with other rules override this."""
        if self.save_service is not None:
            save = getattr(services, self.save_service)
            return save(instance=obj if change else None, data=data)
        if change:
            return services.record_update(instance=obj, data=data)
        return services.record_create(model=type(obj), data=data)


# --- Read-only records -----------------------------------------------------------------------------


class ReadOnlyAdmin(ReadOnlyMixin, admin.ModelAdmin):
    """A record only the pipeline writes: listed and shown, never added, edited or deleted here."""

    list_per_page = 50
    # The unfiltered total is one more COUNT(*) over a large table on every list page.
    show_full_result_count = False
    # Large columns (message bodies, letter payloads) not read on list pages.
    changelist_defer: tuple[str, ...] = ()

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        queryset = super().get_queryset(request)
        match = request.resolver_match
        if self.changelist_defer and match is not None and match.url_name.endswith("_changelist"):
            queryset = queryset.defer(*self.changelist_defer)
        return queryset


class RelatedInlineMixin:
    """Inline rows fetched with the relations their labels read (``str(row)`` names its parent)."""

    inline_select_related: Sequence[str] = ()

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        queryset = super().get_queryset(request)  # type: ignore[misc]
        return (
            queryset.select_related(*self.inline_select_related) if self.inline_select_related else queryset
        )


class ViewOnlyInline(ReadOnlyMixin, RelatedInlineMixin, admin.TabularInline):
    """Child rows shown for context on the parent's page, edited (if at all) on their own page."""

    extra = 0
    can_delete = False
    show_change_link = True


# --- Search and filters ----------------------------------------------------------------------------


class ExactSearchMixin:
    """Admin search that matches keys and ids whole (see ``exact_search``)."""

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet, search_term: str
    ) -> tuple[QuerySet, bool]:
        if not search_term.strip():
            return queryset, False
        return exact_search(queryset, search_term, self.search_fields), False


class ConnectionFilter(admin.SimpleListFilter):
    """Filter by connection slug (``?connection=<slug>``), the key the API and replay jobs use."""

    title = "connection"
    parameter_name = "connection"
    field_path = "connection__slug"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list[tuple[str, str]]:
        return [(slug, slug) for slug in Connection.objects.order_by("slug").values_list("slug", flat=True)]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        value = self.value()
        return queryset if value is None else queryset.filter(**{self.field_path: value})


def uuid_or_none(text: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(text.strip())
    except ValueError:
        return None


def exact_search(queryset: QuerySet, term: str, fields: Iterable[str]) -> QuerySet:
    """Rows whose id is ``term`` (when it is a UUID) or whose ``fields`` equal it exactly.

    Keys and correlation ids are matched whole, not with ``icontains``: a substring scan over
    millions of messages would take seconds, and operators paste the whole value.
    """
    term = term.strip()
    condition = Q()
    for field in fields:
        condition |= Q(**{field: term})
    pk = uuid_or_none(term)
    if pk is not None:
        condition |= Q(pk=pk)
    return queryset.filter(condition)


# --- Display ---------------------------------------------------------------------------------------


# Characters of a body shown on a page; the stored bytes are never cut (bodies go up to 1 MB).
PAYLOAD_DISPLAY_MAX_CHARS = 100_000


def pre(text: str) -> str:
    return format_html('<pre style="white-space: pre-wrap; max-height: 30em; overflow: auto">{}</pre>', text)


def payload_html(raw: bytes, content_type: str = "") -> str:
    """Stored bytes as shown to an operator: text when UTF-8, else base64, in a ``<pre>``."""
    shown = payload_repr(raw)
    body = shown["body"]
    note = f"{len(bytes(raw))} bytes, shown as {shown['encoding']}"
    if content_type:
        note += f", content type {content_type}"
    if len(body) > PAYLOAD_DISPLAY_MAX_CHARS:
        note += f"; first {PAYLOAD_DISPLAY_MAX_CHARS} characters of {len(body)}"
        body = body[:PAYLOAD_DISPLAY_MAX_CHARS]
    return format_html('<div class="help">{}</div>{}', note, pre(body))


def json_html(value: object) -> str:
    return pre(json.dumps(value, indent=2, sort_keys=True, default=str))


def links_html(rows: Iterable[tuple[models.Model, str]]) -> str:
    """Records as a list of links to their admin pages, or "-"."""
    items = [(admin_link(obj, label),) for obj, label in rows]
    if not items:
        return "-"
    return format_html(
        '<ul style="margin: 0; padding-left: 1.2em">{}</ul>', format_html_join("", "<li>{}</li>", items)
    )


# --- Operator actions that ask why ----------------------------------------------------------------

REASON_PREVIEW_ROWS = 20  # records listed on an action's intermediate page


class ReasonForm(forms.Form):
    reason = forms.CharField(
        max_length=2000,
        widget=forms.Textarea(attrs={"rows": 3, "cols": 80}),
    )


class ReasonActionsMixin:
    """A ModelAdmin whose actions ask for a reason on an intermediate page (``reason_template``
    extends ``admin/action_reason.html``) before calling a service per selected record."""

    reason_template: str
    reason_help = "Kept with the record, your name and the time."

    def reason_form(self, request) -> ReasonForm:
        form = ReasonForm(request.POST) if request.POST.get("confirm") else ReasonForm()
        form.fields["reason"].help_text = self.reason_help
        return form

    def reason_page(self, request, queryset, *, form, action, title, intro) -> TemplateResponse:
        count = queryset.count()
        context = {
            **self.admin_site.each_context(request),
            "title": title,
            "opts": self.opts,
            "media": self.media,
            "intro": intro,
            "items": list(queryset[:REASON_PREVIEW_ROWS]),
            "count": count,
            "more": max(0, count - REASON_PREVIEW_ROWS),
            "form": form,
            "action": action,
            "selected": request.POST.getlist(helpers.ACTION_CHECKBOX_NAME),
            "select_across": request.POST.get("select_across", "0"),
            "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
            "submit_label": title,
        }
        request.current_app = self.admin_site.name
        return TemplateResponse(request, self.reason_template, context)


def reason_action(service: Callable, *, name: str, title: str, intro: str, key: str, noun: str, **extra):
    """An admin action calling ``service(<key>=pk, reason=..., actor="admin:<user>", **extra)`` for each
    selected record once the operator gave a reason; a DomainError is shown per record."""

    def run_action(modeladmin: ReasonActionsMixin, request: HttpRequest, queryset: QuerySet):
        form = modeladmin.reason_form(request)
        if not (form.is_bound and form.is_valid()):
            return modeladmin.reason_page(request, queryset, form=form, action=name, title=title, intro=intro)
        done = 0
        for obj in queryset:
            try:
                service(
                    **{key: obj.pk},
                    reason=form.cleaned_data["reason"],
                    actor=f"admin:{request.user.get_username()}",
                    **extra,
                )
                done += 1
            except DomainError as exc:
                modeladmin.message_user(request, f"{obj}: {exc.detail}", messages.ERROR)
        if done:
            modeladmin.message_user(request, f"{title}: {done} {noun}(s).", messages.SUCCESS)
        return None

    run_action.__name__ = name
    return admin.action(description=f"{title} (asks why)", permissions=["change"])(run_action)
