"""Shared by this app's commands: bad arguments give one line on stderr and exit status 2."""

from datetime import UTC, datetime

from django.core.management.base import BaseCommand, CommandError

USAGE_ERROR = 2


def usage_error(message: str) -> CommandError:
    return CommandError(message, returncode=USAGE_ERROR)


def parse_instant(text: str) -> datetime:
    """An ISO 8601 date-time; no offset means UTC."""
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise usage_error(f"cannot read {text!r} as an ISO 8601 date-time (e.g. 2025-03-09T06:00:00Z)") from None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


class OneLineCommand(BaseCommand):
    """argparse prints its usage before an error; here an error is one line, as for CommandError."""

    def create_parser(self, prog_name, subcommand, **kwargs):
        parser = super().create_parser(prog_name, subcommand, **kwargs)

        def error(message: str):
            if parser.called_from_command_line:
                parser.exit(USAGE_ERROR, f"{parser.prog}: error: {message}\n")
            raise usage_error(f"Error: {message}")

        parser.error = error
        return parser
