"""Addresses saved with capitals (through the admin's user form, before User.clean lower-cased
them) are lower-cased: allauth looks a login up by the lower-cased address, so those accounts
could not log in. An address whose lower-case form another account already has is left alone:
the admin shows both, for a person to decide."""

from django.db import migrations


def lower_case_addresses(apps, schema_editor):
    User = apps.get_model("accounts", "User")
    # Only the few addresses with capitals are read, and each is checked on the unique index:
    # reading every address into memory would not do at a million users.
    for user in User.objects.filter(email__regex=r"[A-Z]").only("pk", "email").order_by("pk").iterator():
        lowered = user.email.lower()
        if not User.objects.filter(email=lowered).exists():
            User.objects.filter(pk=user.pk).update(email=lowered)


class Migration(migrations.Migration):
    dependencies = [("accounts", "0002_subscription")]

    operations = [migrations.RunPython(lower_case_addresses, migrations.RunPython.noop)]
