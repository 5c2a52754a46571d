"""Print (or email) a staff member's one-time link to set up two-factor sign-in.

manage.py staff_mfa_link EMAIL [--send]
"""

from django.core.management.base import BaseCommand, CommandError

from accounts import staff_mfa
from accounts.models import User

USAGE_ERROR = 2


class Command(BaseCommand):
    help = "Print a staff member's one-time link to set up two-factor sign-in, or email it with --send."

    def add_arguments(self, parser):
        parser.add_argument("email", help="the staff member's email address")
        parser.add_argument("--send", action="store_true", help="email the link to that address instead")

    def handle(self, *args, **options):
        email = options["email"].strip()
        user = User.objects.filter(email__iexact=email).first()
        if user is None:
            raise CommandError(f"no account has the address {email!r}", returncode=USAGE_ERROR)
        if not user.is_staff:
            raise CommandError(
                f"{user.email} is not staff: tick 'staff status' in the admin first", returncode=USAGE_ERROR
            )
        if staff_mfa.staff_has_second_factor(user):
            raise CommandError(
                f"{user.email} already has a second factor; to replace a lost phone, delete their "
                "authenticators in the admin (MFA > Authenticators) and run this again",
                returncode=USAGE_ERROR,
            )
        if options["send"]:
            staff_mfa.setup_link_email(user)
            self.stdout.write(f"Set-up link emailed to {user.email}.")
            return
        self.stdout.write(staff_mfa.setup_instructions(user))
