"""Staff reach the admin through createsuperuser, a login and a TOTP set up from a one-time link;
a staff password alone can never add an authenticator."""

import io
import re
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from allauth.account.models import EmailAddress
from allauth.mfa.models import Authenticator
from django.core import mail
from django.core.management import CommandError, call_command
from django.test import Client

from accounts import staff_mfa
from accounts.models import User
from accounts.tests.factories import PASSWORD, UserFactory
from horoscope_site.tests.test_deploy_checks import totp

LINK = re.compile(r"https?://\S+/staff/two-factor/\S+/")


@pytest.fixture(autouse=True)
def mfa_required(settings):
    settings.ADMIN_REQUIRE_MFA = True
    settings.SITE_URL = "http://testserver"


def location(response) -> str:
    assert response.status_code in {301, 302, 303}, (response.status_code, response.content[:400])
    return response["Location"]


def path_of(url: str) -> str:
    return url.removeprefix("http://testserver")


def staff(email: str = "keeper@example.test") -> User:
    return UserFactory(email=email, is_staff=True, is_superuser=True)


def log_in(client: Client, email: str) -> str:
    return location(client.post("/accounts/login/", {"login": email, "password": PASSWORD}))


def activate_totp_with_link(client: Client, link: str) -> str:
    """Open the link (logged in), spend it, confirm the password, scan and type a code."""
    assert client.get(path_of(link)).status_code == 200
    assert location(client.post(path_of(link))) == "/accounts/2fa/totp/activate/?next=%2Fadmin%2F"
    page = client.get("/accounts/2fa/totp/activate/")
    if page.status_code == 302:  # allauth asks for the password again before adding a factor
        assert location(page).startswith("/accounts/reauthenticate/")
        assert location(client.post("/accounts/reauthenticate/", {"password": PASSWORD}))
        page = client.get("/accounts/2fa/totp/activate/")
    assert page.status_code == 200
    secret = client.session["mfa.totp.secret"]
    # allauth shows the new recovery codes next, whatever `next` said; staff go on from there.
    activated = client.post("/accounts/2fa/totp/activate/", {"code": totp(secret)})
    assert location(activated) == "/accounts/2fa/recovery-codes/"
    codes = client.get("/accounts/2fa/recovery-codes/").content.decode()
    assert 'href="/admin/"' in codes and "Continue to the admin" in codes
    return secret


@pytest.mark.django_db
def test_createsuperuser_then_login_then_totp_from_the_printed_link_opens_the_admin(monkeypatch):
    monkeypatch.setenv("DJANGO_SUPERUSER_PASSWORD", PASSWORD)
    out = io.StringIO()
    call_command("createsuperuser", "--noinput", "--email", "First.Admin@example.test", stdout=out)
    printed = out.getvalue()
    assert "first.admin@example.test can log in now: the address counts as confirmed." in printed
    [link] = LINK.findall(printed)

    client = Client()
    # No confirmation email to open first: the login goes straight to the staff page.
    assert log_in(client, "first.admin@example.test") == "/staff/"
    home = client.get("/staff/").content.decode()
    assert "Your account is staff" in home and "manage.py staff_mfa_link first.admin@example.test" in home
    assert location(client.get("/admin/")) == "/staff/?next=%2Fadmin%2F"

    secret = activate_totp_with_link(client, link)

    # This session began with the password only: one code from the app opens the admin.
    assert location(client.get("/admin/")) == "/accounts/2fa/reauthenticate/?next=%2Fadmin%2F"
    with time_machine.travel(datetime.now(UTC) + timedelta(seconds=30)):
        opened = client.post("/accounts/2fa/reauthenticate/?next=%2Fadmin%2F", {"code": totp(secret)})
        assert location(opened) == "/admin/"
        assert client.get("/admin/").status_code == 200
    # And the next login asks for the code as part of signing in.
    later = Client()
    assert log_in(later, "first.admin@example.test") == "/accounts/2fa/authenticate/"


@pytest.mark.django_db
@pytest.mark.parametrize("require_mfa", [True, False])
def test_a_staff_password_alone_cannot_add_an_authenticator(client, settings, require_mfa):
    settings.ADMIN_REQUIRE_MFA = require_mfa
    member = staff()
    log_in(client, member.email)
    assert location(client.post("/accounts/reauthenticate/", {"password": PASSWORD}))

    for method in (client.get, client.post):
        response = method("/accounts/2fa/totp/activate/", {"code": "123456"} if method is client.post else None)
        assert location(response) == "/staff/"
    assert not Authenticator.objects.exists()


@pytest.mark.django_db
def test_readers_are_not_offered_the_admin_with_their_recovery_codes(client):
    from allauth.mfa.recovery_codes.internal.auth import RecoveryCodes
    from allauth.mfa.totp.internal.auth import TOTP

    reader = UserFactory(email="reader@example.test")
    TOTP.activate(reader, "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP")
    RecoveryCodes.activate(reader)
    assert log_in(client, reader.email) == "/accounts/2fa/authenticate/"
    assert location(client.post("/accounts/2fa/authenticate/", {"code": totp("JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP")}))
    assert location(client.post("/accounts/reauthenticate/", {"password": PASSWORD}))  # allauth asks again
    page = client.get("/accounts/2fa/recovery-codes/")
    assert page.status_code == 200 and "Continue to the admin" not in page.content.decode()


@pytest.mark.django_db
def test_readers_still_add_their_own_authenticator_with_their_password(client):
    reader = UserFactory(email="reader@example.test")
    log_in(client, reader.email)
    assert location(client.post("/accounts/reauthenticate/", {"password": PASSWORD}))
    assert client.get("/accounts/2fa/totp/activate/").status_code == 200


@pytest.mark.django_db
def test_the_link_works_once(client):
    member = staff()
    link = staff_mfa.setup_url(member)
    log_in(client, member.email)
    assert location(client.post(path_of(link))).startswith("/accounts/2fa/totp/activate/")

    again = Client()
    log_in(again, member.email)
    refused = again.post(path_of(link))
    assert refused.status_code == 400
    assert "This link has been used already." in refused.content.decode()
    assert location(again.get("/accounts/2fa/totp/activate/")) == "/staff/"


@pytest.mark.django_db
def test_opening_the_link_does_not_spend_it_a_mail_scanner_follows_links(client):
    member = staff()
    link = staff_mfa.setup_url(member)
    scanner = Client()
    assert scanner.get(path_of(link)).status_code == 200  # logged out: asks to log in
    log_in(client, member.email)
    assert client.get(path_of(link)).status_code == 200
    assert client.get(path_of(link)).status_code == 200
    assert location(client.post(path_of(link))).startswith("/accounts/2fa/totp/activate/")


@pytest.mark.django_db
def test_a_logged_out_visitor_is_sent_to_log_in_and_back_to_the_link(client):
    member = staff()
    link = path_of(staff_mfa.setup_url(member))
    page = client.get(link).content.decode()
    assert f"Log in as {member.email}" in page
    assert location(client.post("/accounts/login/?next=" + link, {"login": member.email, "password": PASSWORD})) == (
        link
    )


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("spoil", "reason"),
    [
        ("expired", "older than 24 hours"),
        ("password changed", "no longer matches the account"),
        ("other account", "made for another account"),
        ("cut short", "not one this site made"),
        ("already set up", "already has a second factor"),
    ],
)
def test_a_link_that_cannot_be_used_says_why(client, spoil, reason):
    member = staff()
    link = path_of(staff_mfa.setup_url(member))
    if spoil == "password changed":
        member.set_password("A-New-Password-8812")
        member.save()
    if spoil == "cut short":
        link = link[:-12] + "/"
    if spoil == "already set up":
        from allauth.mfa.totp.internal.auth import TOTP

        TOTP.activate(member, "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP")
    client.force_login(staff("other@example.test") if spoil == "other account" else member)
    with time_machine.travel(datetime.now(UTC) + timedelta(hours=25 if spoil == "expired" else 0)):
        response = client.post(link)
    assert response.status_code == 400
    assert reason in response.content.decode()
    assert not Authenticator.objects.filter(user=member, type=Authenticator.Type.TOTP).exists() or (
        spoil == "already set up"
    )


@pytest.mark.django_db
def test_the_session_may_enrol_only_for_a_while_after_the_link(client, settings):
    member = staff()
    log_in(client, member.email)
    client.post(path_of(staff_mfa.setup_url(member)))
    with time_machine.travel(datetime.now(UTC) + timedelta(minutes=settings.STAFF_MFA_GRANT_MINUTES + 1)):
        assert location(client.get("/accounts/2fa/totp/activate/")) == "/staff/"


@pytest.mark.django_db
def test_an_admin_emails_the_link_to_the_staff_members_own_address(client):
    admin_user = staff("boss@example.test")
    from allauth.mfa.totp.internal.auth import TOTP

    TOTP.activate(admin_user, "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP")
    newcomer = staff("newcomer@example.test")
    reader = UserFactory(email="reader@example.test")
    assert log_in(client, admin_user.email) == "/accounts/2fa/authenticate/"
    assert location(client.post("/accounts/2fa/authenticate/", {"code": totp("JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP")}))

    response = client.post(
        "/admin/accounts/user/",
        {"action": "email_mfa_setup_link", "_selected_action": [newcomer.pk, reader.pk, admin_user.pk]},
    )

    assert location(response) == "/admin/accounts/user/"
    [message] = mail.outbox
    assert message.to == ["newcomer@example.test"]
    [link] = LINK.findall(message.body)
    assert staff_mfa.setup_token_check(link.rstrip("/").rsplit("/", 1)[1]).user == newcomer


# The user form's subscription inline, left empty.
NO_SUBSCRIPTION_FORMS = {"subscription-TOTAL_FORMS": "0", "subscription-INITIAL_FORMS": "0"}


@pytest.mark.django_db
def test_staff_added_in_the_admin_log_in_without_a_readers_confirmation_email(client):
    admin_user = staff("boss@example.test")
    from allauth.mfa.totp.internal.auth import TOTP

    TOTP.activate(admin_user, "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP")
    assert log_in(client, admin_user.email) == "/accounts/2fa/authenticate/"
    assert location(client.post("/accounts/2fa/authenticate/", {"code": totp("JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP")}))
    added = client.post(
        "/admin/accounts/user/add/",
        {
            "email": "Helper@Example.test",
            "usable_password": "true",  # "Password-based authentication: enabled"
            "password1": PASSWORD,
            "password2": PASSWORD,
            **NO_SUBSCRIPTION_FORMS,
        },
    )
    helper = User.objects.get(email="helper@example.test")  # as every address is kept: lower case
    assert path_of(location(added)) == f"/admin/accounts/user/{helper.pk}/change/"
    assert helper.has_usable_password() and helper.check_password(PASSWORD)
    assert not helper.is_staff  # a reader so far: their address is theirs to confirm
    assert not EmailAddress.objects.filter(user=helper, verified=True).exists()

    changed = client.post(
        f"/admin/accounts/user/{helper.pk}/change/",
        {
            "email": helper.email,
            "first_name": "",
            "last_name": "",
            "is_active": "on",
            "is_staff": "on",
            **NO_SUBSCRIPTION_FORMS,
        },
    )
    assert path_of(location(changed)) == "/admin/accounts/user/"

    mail.outbox.clear()
    assert log_in(Client(), "helper@example.test") == "/staff/"  # not "confirm your address" first
    assert mail.outbox == []


@pytest.mark.django_db
def test_staff_mfa_link_command_prints_a_link_or_says_why_not_in_one_line():
    member = staff()
    out = io.StringIO()
    call_command("staff_mfa_link", member.email.upper(), stdout=out)
    [link] = LINK.findall(out.getvalue())
    assert staff_mfa.setup_token_check(link.rstrip("/").rsplit("/", 1)[1]).user == member

    UserFactory(email="reader@example.test")
    for email, reason in [("nobody@example.test", "no account has the address"), ("reader@example.test", "not staff")]:
        with pytest.raises(CommandError, match=reason) as error:
            call_command("staff_mfa_link", email)
        assert error.value.returncode == 2

    call_command("staff_mfa_link", member.email, "--send", stdout=io.StringIO())
    assert mail.outbox[0].to == [member.email]


@pytest.mark.django_db
@pytest.mark.parametrize("target", ["https://evil.example/", "//evil.example/admin/", "/admin/forecasts/"])
def test_the_staff_page_sends_on_only_within_the_site(client, settings, target):
    settings.ADMIN_REQUIRE_MFA = False
    client.force_login(staff())

    sent_to = location(client.get("/staff/", {"next": target}))

    assert sent_to == (target if target.startswith("/admin/") else "/admin/")


@pytest.mark.django_db
def test_a_forwarded_chain_shorter_than_the_proxies_is_refused_not_a_server_error(client, settings):
    settings.ALLAUTH_TRUSTED_PROXY_COUNT = 2  # CloudFront and an ALB: both append an address

    response = client.post(
        "/accounts/login/",
        {"login": "reader@example.test", "password": PASSWORD},
        HTTP_X_FORWARDED_FOR="198.51.100.7",
    )

    assert response.status_code == 403
