"""Read the local outbox in the browser (embedded default only: never with SES)."""

import re
from pathlib import Path

from django.conf import settings
from django.contrib.admin.views.decorators import staff_member_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.clickjacking import xframe_options_sameorigin

from forecasts.sending.outbox import OUTBOX_BACKEND, outbox_messages, read_message
from horoscope_site.security import staff_only

OUTBOX_NAME = re.compile(r"^[0-9TZ]+-[0-9a-f]{8}\.eml$")
HEAD_TAG = re.compile(r"<head\b[^>]*>", re.I)
LINKS_TO_TOP = '<base target="_top">'


def outbox_visible(view):
    """Only with the outbox backend; in development anyone on the machine may read it, else only
    staff, past the admin's second-factor gate (never routed in production at all)."""
    staff_view = staff_member_required(view)

    def wrapper(request: HttpRequest, *args, **kwargs):
        if settings.EMAIL_BACKEND != OUTBOX_BACKEND:
            raise Http404("The local outbox is not in use")
        if settings.DEBUG:
            return view(request, *args, **kwargs)
        return staff_view(request, *args, **kwargs)

    return staff_only(wrapper)


def _message_path(name: str) -> Path:
    if not OUTBOX_NAME.match(name):
        raise Http404("No such message")
    path = Path(settings.EMAIL_OUTBOX_DIR) / name
    if not path.is_file():
        raise Http404("No such message")
    return path


def _summary(path: Path) -> dict:
    message = read_message(path)
    return {"name": path.name, "to": message["To"], "subject": message["Subject"], "date": message["Date"]}


@outbox_visible
def outbox_list(request: HttpRequest) -> HttpResponse:
    # Not "messages": base.html shows that name as the site's flash messages.
    emails = [_summary(path) for path in outbox_messages()[:200]]
    return render(request, "outbox/list.html", {"emails": emails, "outbox_dir": settings.EMAIL_OUTBOX_DIR})


@outbox_visible
def outbox_detail(request: HttpRequest, name: str) -> HttpResponse:
    message = read_message(_message_path(name))
    text = message.get_body(preferencelist=("plain",))
    html = message.get_body(preferencelist=("html",))
    context = {
        **_summary(_message_path(name)),
        "headers": list(message.items()),
        "text": text.get_content() if text else "",
        "has_html": html is not None,
    }
    return render(request, "outbox/detail.html", context)


@outbox_visible
@xframe_options_sameorigin
def outbox_html(request: HttpRequest, name: str) -> HttpResponse:
    html = read_message(_message_path(name)).get_body(preferencelist=("html",))
    if html is None:
        raise Http404("This message has no HTML part")
    # Links open in the whole tab, as in a mail client: inside the preview frame the site's own
    # pages would be refused (frame-ancestors 'none').
    content, found = HEAD_TAG.subn(lambda match: match.group(0) + LINKS_TO_TOP, html.get_content(), count=1)
    response = HttpResponse(content if found else LINKS_TO_TOP + content, content_type="text/html; charset=utf-8")
    # The email's own HTML is shown as-is, so forbid scripts and outside loads in it.
    response["Content-Security-Policy"] = (
        "default-src 'none'; img-src data: 'self'; style-src 'unsafe-inline'; "
        "sandbox allow-top-navigation-by-user-activation"
    )
    return response
