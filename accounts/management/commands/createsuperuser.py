"""Django's createsuperuser, then what a new administrator needs to open the admin.

Their address counts as confirmed (they were made on the server, by its operator), and a
one-time link to set up two-factor sign-in is printed (accounts/staff_mfa.py).
"""

from django.contrib.auth.management.commands.createsuperuser import Command as DjangoCreateSuperuser

from accounts import staff_mfa
from accounts.models import User


class Command(DjangoCreateSuperuser):
    help = "Create a superuser, confirm their address and print their two-factor set-up link."

    def handle(self, *args, **options):
        users = User.objects.db_manager(options["database"])
        newest_before = users.order_by("-pk").values_list("pk", flat=True).first() or 0
        super().handle(*args, **options)
        for user in users.filter(pk__gt=newest_before, is_superuser=True):
            staff_mfa.staff_address_confirm(user)
            self.stdout.write(f"{user.email} can log in now: the address counts as confirmed.")
            self.stdout.write(staff_mfa.setup_instructions(user))
