"""Seed a freshly cloned BottleCRM database for Crossdock's tests; see peers/bottlecrm.sh.

Run with the peer's Python, ``DJANGO_SETTINGS_MODULE=crm_peer_settings`` and this folder on
PYTHONPATH. Idempotent: it reuses the org, user, token and custom-field definitions it finds, and
mints a new JWT each time.

    python crm_peer_bootstrap.py seed PAT_FILE  # org, user, the PAT in PAT_FILE, JWT, custom fields -> KEY=VALUE
    python crm_peer_bootstrap.py jwt    # a fresh JWT for the same user and org -> CRM_JWT=... line

BottleCRM has no REST login with a password (Google OAuth or a magic link only), so credentials are
made here through the ORM, the way its own ``devlogin`` command does.
"""

import sys

import django

ORG_NAME = "Crossdock Test Org"
USER_EMAIL = "hub@crossdock.example"
USER_NAME = "Crossdock Hub"
TOKEN_NAME = "crossdock-hub"

# (target model, key, label): where the hub keeps its keys and the shipment data. Filterable, so
# the connector can search by them (`?cf_<key>=<value>`, an exact match).
CUSTOM_FIELDS = (
    ("Account", "erp_customer_id", "ERP customer id"),
    ("Case", "shipment_id", "Shipment id"),
    ("Case", "shipment_status", "Shipment status"),
    ("Case", "exception_type", "Exception type"),
)


def _org_and_profile():
    from common.models import Org, Profile, User
    from common.tasks import set_rls_context

    user, _ = User.objects.get_or_create(email=USER_EMAIL, defaults={"name": USER_NAME})
    org = Org.objects.filter(name=ORG_NAME).first() or Org.objects.create(name=ORG_NAME)
    # Org-scoped tables carry FORCE ROW LEVEL SECURITY keyed on app.current_org.
    set_rls_context(org.id)
    profile, _ = Profile.objects.get_or_create(
        user=user, org=org, defaults={"role": "ADMIN", "is_active": True}
    )
    return org, profile


def _jwt(org, profile) -> str:
    from common.serializer import OrgAwareRefreshToken

    return str(OrgAwareRefreshToken.for_user_and_org(profile.user, org, profile).access_token)


def seed(raw: str) -> None:
    """``raw`` is the personal access token to register (``bcrm_pat_...``). The peer script keeps one
    per machine, so a reset by another process does not invalidate the token a test session holds."""
    from common.models import CustomFieldDefinition, PersonalAccessToken

    org, profile = _org_and_profile()
    for order, (target, key, label) in enumerate(CUSTOM_FIELDS):
        CustomFieldDefinition.objects.update_or_create(
            org=org,
            target_model=target,
            key=key,
            defaults={
                "label": label,
                "field_type": "text",
                "is_filterable": True,
                "is_active": True,
                "display_order": order,
            },
        )
    if not raw.startswith("bcrm_pat_"):
        sys.exit("the token must look like bcrm_pat_<random>")
    # PersonalAccessToken.generate makes its own random token; this registers the given one the same way.
    PersonalAccessToken.objects.get_or_create(
        token_hash=PersonalAccessToken.hash_token(raw),
        defaults={
            "org": org,
            "profile": profile,
            "name": TOKEN_NAME,
            "token_prefix": raw[:13],
            "scopes": [],
            "created_by": profile.user,
        },
    )
    print(f"CRM_ORG_ID={org.id}")
    print(f"CRM_PAT={raw}")
    print(f"CRM_ORG_API_KEY={org.api_key}")
    print(f"CRM_JWT={_jwt(org, profile)}")


def jwt() -> None:
    org, profile = _org_and_profile()
    print(f"CRM_JWT={_jwt(org, profile)}")


if __name__ == "__main__":
    django.setup()
    if sys.argv[1:2] == ["seed"] and len(sys.argv) == 3:
        with open(sys.argv[2], encoding="utf-8") as token_file:  # a file: a token in argv shows in ps
            seed(token_file.read().strip())
    elif sys.argv[1:] == ["jwt"]:
        jwt()
    else:
        sys.exit(f"usage: {sys.argv[0]} seed PAT_FILE | jwt")
