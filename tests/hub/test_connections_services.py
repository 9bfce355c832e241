"""hub.connections.services: connection and subscription validation, the outbound URL policy, and
secrets encrypted at rest (including key rotation)."""

from __future__ import annotations

import pytest
from cryptography.fernet import Fernet, InvalidToken

from hub.connections.models import Connection, Subscription
from hub.connections.services import (
    connection_config,
    connection_save,
    connection_secret,
    connection_secrets_rotate,
    subscription_save,
)
from hub.core import crypto
from hub.core.errors import ConflictError, ValidationFailed

pytestmark = pytest.mark.django_db


def webhook_data(slug: str = "peer", **config) -> dict:
    return {
        "slug": slug,
        "system": "partner",
        "connector": "webhook",
        "config": {"url": "https://peer.example/hook", **config},
    }


def fields_of(exc: ValidationFailed) -> list[str]:
    return [error["field"] for error in exc.errors]


@pytest.fixture
def allow_private_networks(settings):
    def allow(value: bool) -> None:
        settings.CROSSDOCK_ALLOW_PRIVATE_NETWORKS = value

    return allow


@pytest.fixture(autouse=True)
def _public_names(dns):
    # The outbound URL policy resolves a webhook's host on save: these names answer a public address.
    dns["peer.example"] = dns["x.example"] = ["93.184.215.14"]


# --- Validation ---------------------------------------------------------------------------------------


def test_unknown_connector_key_is_refused_naming_the_field():
    with pytest.raises(ValidationFailed) as caught:
        connection_save(data={"slug": "x", "system": "erp", "connector": "sap-r3", "config": {}})

    assert fields_of(caught.value) == ["connector"]
    assert "sap-r3" in caught.value.detail
    assert caught.value.status == 400
    assert not Connection.objects.exists()


def test_missing_webhook_url_is_refused_naming_config_url():
    data = webhook_data()
    del data["config"]["url"]

    with pytest.raises(ValidationFailed) as caught:
        connection_save(data=data)

    assert fields_of(caught.value) == ["config.url"]
    assert not Connection.objects.exists()


@pytest.mark.parametrize(
    ("config", "field"),
    [
        ({"url": "not a url"}, "config.url"),
        ({"max_attempts": 0}, "config.max_attempts"),
        ({"backoff_base_s": -1}, "config.backoff_base_s"),
        ({"colour": "red"}, "config.colour"),
    ],
)
def test_invalid_webhook_config_is_refused_naming_the_field(config: dict, field: str):
    with pytest.raises(ValidationFailed) as caught:
        connection_save(data=webhook_data(**config))

    assert field in fields_of(caught.value)
    assert field in caught.value.detail


def test_valid_webhook_connection_is_saved_with_its_defaults_applied_on_read():
    connection = connection_save(data=webhook_data())

    stored = Connection.objects.get(pk=connection.pk)
    assert (stored.slug, stored.connector) == ("peer", "webhook")
    assert stored.config == {"url": "https://peer.example/hook"}
    config = connection_config(stored)
    assert (config.max_attempts, config.backoff_base_s) == (8, 5)  # contract v1 defaults


def test_duplicate_slug_is_a_conflict():
    connection_save(data=webhook_data("same"))

    with pytest.raises(ConflictError):
        connection_save(data=webhook_data("same"))

    assert Connection.objects.filter(slug="same").count() == 1


@pytest.mark.parametrize(
    "url",
    ["http://127.0.0.1:8080/hook", "http://[::1]/hook", "http://10.1.2.3/hook", "http://169.254.169.254/"],
)
def test_private_or_loopback_url_is_refused_when_private_networks_are_not_allowed(
    allow_private_networks, url
):
    allow_private_networks(False)

    with pytest.raises(ValidationFailed) as caught:
        connection_save(data=webhook_data(url=url))

    assert fields_of(caught.value) == ["config.url"]
    assert "CROSSDOCK_ALLOW_PRIVATE_NETWORKS" in caught.value.detail
    assert not Connection.objects.exists()


def test_loopback_url_is_accepted_when_private_networks_are_allowed(allow_private_networks):
    allow_private_networks(True)

    connection = connection_save(data=webhook_data(url="http://127.0.0.1:8080/hook"))

    assert Connection.objects.filter(pk=connection.pk).exists()


def test_every_url_in_a_config_is_checked_on_save_naming_its_field():
    with pytest.raises(ValidationFailed) as caught:
        connection_save(
            data={
                "slug": "edi-partner",
                "system": "carrier",
                "connector": "x12",
                "config": {
                    "sender_id": "CROSSDOCK",
                    "receiver_id": "PARTNER",
                    "outbound_url": "http://10.0.0.9/as2",
                },
            }
        )

    assert fields_of(caught.value) == ["config.outbound_url"]
    assert not Connection.objects.exists()


def test_non_http_scheme_is_refused_even_when_private_networks_are_allowed(allow_private_networks):
    allow_private_networks(True)

    with pytest.raises(ValidationFailed) as caught:
        connection_save(data=webhook_data(url="ftp://127.0.0.1/hook"))

    assert "config.url" in fields_of(caught.value)


def test_updating_a_connection_revalidates_its_config():
    connection = connection_save(data=webhook_data())

    with pytest.raises(ValidationFailed) as caught:
        connection_save(
            instance=connection, data={"config": {"url": "https://x.example", "max_attempts": 99}}
        )

    assert fields_of(caught.value) == ["config.max_attempts"]
    assert Connection.objects.get(pk=connection.pk).config == {"url": "https://peer.example/hook"}


# --- Secrets ----------------------------------------------------------------------------------------


def test_secret_is_stored_encrypted_and_decrypts():
    connection = connection_save(data=webhook_data(), secret="whsec-plain-text")

    stored = Connection.objects.get(pk=connection.pk)
    assert stored.secret_encrypted
    assert "whsec-plain-text" not in stored.secret_encrypted
    assert crypto.decrypt(stored.secret_encrypted) == "whsec-plain-text"
    assert connection_secret(stored) == "whsec-plain-text"
    assert stored.has_secret


def test_secret_none_keeps_it_and_empty_clears_it():
    connection = connection_save(data=webhook_data(), secret="keep-me")

    connection_save(instance=connection, data={"name": "renamed"}, secret=None)
    assert connection_secret(Connection.objects.get(pk=connection.pk)) == "keep-me"

    connection_save(instance=connection, data={}, secret="")
    stored = Connection.objects.get(pk=connection.pk)
    assert stored.secret_encrypted == ""
    assert connection_secret(stored) is None


@pytest.fixture
def encryption_keys(settings):
    """Set CROSSDOCK_ENCRYPTION_KEYS for the test; the MultiFernet cache never outlives it."""
    crypto._fernet.cache_clear()

    def use(*keys: bytes) -> None:
        settings.CROSSDOCK_ENCRYPTION_KEYS = [key.decode() for key in keys]
        crypto._fernet.cache_clear()

    yield use
    crypto._fernet.cache_clear()


def test_rotation_re_encrypts_secrets_so_only_the_new_key_is_needed(encryption_keys):
    old, new = Fernet.generate_key(), Fernet.generate_key()
    encryption_keys(old)
    connection = connection_save(data=webhook_data(), secret="rotate-me")
    before = Connection.objects.get(pk=connection.pk).secret_encrypted
    assert Fernet(old).decrypt(before.encode()) == b"rotate-me"

    encryption_keys(new, old)
    rotated = connection_secrets_rotate()

    after = Connection.objects.get(pk=connection.pk).secret_encrypted
    assert rotated == 1
    assert after != before
    with pytest.raises(InvalidToken):
        Fernet(old).decrypt(after.encode())
    assert Fernet(new).decrypt(after.encode()) == b"rotate-me"
    encryption_keys(new)  # the old key is dropped: the secret is still readable
    assert connection_secret(Connection.objects.get(pk=connection.pk)) == "rotate-me"


def test_rotation_skips_connections_without_a_secret_and_is_repeatable(encryption_keys):
    old, new = Fernet.generate_key(), Fernet.generate_key()
    encryption_keys(old)
    connection_save(data=webhook_data("with-secret"), secret="s")
    connection_save(data=webhook_data("no-secret"))
    encryption_keys(new, old)

    assert connection_secrets_rotate() == 1
    assert connection_secrets_rotate() == 1  # rewriting under the same primary key is harmless
    assert connection_secret(Connection.objects.get(slug="with-secret")) == "s"
    assert Connection.objects.get(slug="no-secret").secret_encrypted == ""


def test_secret_under_a_removed_key_is_reported_unreadable(encryption_keys):
    old, new = Fernet.generate_key(), Fernet.generate_key()
    encryption_keys(old)
    connection = connection_save(data=webhook_data(), secret="lost")
    encryption_keys(new)  # old key dropped before rotating

    with pytest.raises(crypto.SecretUnreadableError):
        connection_secret(Connection.objects.get(pk=connection.pk))
    with pytest.raises(crypto.SecretUnreadableError):
        connection_secrets_rotate()


# --- Subscriptions ----------------------------------------------------------------------------------


def test_subscription_with_canonical_event_types_is_saved():
    connection = connection_save(data=webhook_data())

    subscription = subscription_save(data={"connection": connection, "event_types": ["DELIVERED", "DELAYED"]})

    assert Subscription.objects.get(pk=subscription.pk).event_types == ["DELIVERED", "DELAYED"]


def test_subscription_with_no_event_types_means_all():
    connection = connection_save(data=webhook_data())

    subscription = subscription_save(data={"connection": connection, "event_types": []})

    assert Subscription.objects.get(pk=subscription.pk).event_types == []


def test_subscription_with_unknown_event_types_is_refused_naming_them():
    connection = connection_save(data=webhook_data())

    with pytest.raises(ValidationFailed) as caught:
        subscription_save(data={"connection": connection, "event_types": ["DELIVERED", "TELEPORTED"]})

    assert fields_of(caught.value) == ["event_types"]
    assert "TELEPORTED" in caught.value.detail
    assert not Subscription.objects.exists()


def test_subscription_to_a_connection_that_cannot_render_is_refused():
    inbound_only = connection_save(
        data={"slug": "tms-in", "system": "tms", "connector": "canonical", "config": {}}
    )

    with pytest.raises(ValidationFailed) as caught:
        subscription_save(data={"connection": inbound_only, "event_types": []})

    assert fields_of(caught.value) == ["connection"]
    assert "canonical" in caught.value.detail
    assert not Subscription.objects.exists()
