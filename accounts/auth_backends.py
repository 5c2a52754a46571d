"""How a signed-in request loads its user: with the reader's subscription, in one query.

Every portal page, and a signed-in reader's sign page, reads the subscription right after the
user (status, zone, topics, next email). Django and allauth load the user alone; these are
their backends, changed only in that, so a request costs one query fewer (docs/benchmarks.md,
the dashboard). `selectors.subscription_for_user` then reads what came with the user.
"""

from allauth.account import auth_backends as allauth_backends
from asgiref.sync import sync_to_async
from django.contrib.auth import BACKEND_SESSION_KEY, backends, get_user_model


class _LoadsSubscription:
    def get_user(self, user_id):
        users = get_user_model()._default_manager.select_related("subscription")
        try:
            user = users.get(pk=user_id)
        except users.model.DoesNotExist:
            return None
        return user if self.user_can_authenticate(user) else None

    async def aget_user(self, user_id):  # request.auser(): the same user, should an async view ask
        return await sync_to_async(self.get_user)(user_id)


class ModelBackend(_LoadsSubscription, backends.ModelBackend):
    """Django's: the admin's sign-in by email and password."""


class AuthenticationBackend(_LoadsSubscription, allauth_backends.AuthenticationBackend):
    """allauth's: readers' sign-in, sign-up and Cognito."""


# A session remembers the backend that signed it in, and Django keeps it signed in only while
# that backend is listed. Sessions from before these backends name the ones they extend.
EARLIER_BACKENDS = {
    "django.contrib.auth.backends.ModelBackend": f"{__name__}.ModelBackend",
    "allauth.account.auth_backends.AuthenticationBackend": f"{__name__}.AuthenticationBackend",
}


class EarlierSessionsMiddleware:
    """Moves a session signed in before these backends to the one that replaced its own (once:
    the session is saved with the new name), so no reader is signed out by the release. Once
    SESSION_COOKIE_AGE has passed since that release no such session is left: remove it then."""

    def __init__(self, get_response) -> None:
        self.get_response = get_response

    def __call__(self, request):
        # The session is read here rather than lazily, but every request that gets this far
        # reads it anyway: the login and staff middleware ask for the user.
        backend = request.session.get(BACKEND_SESSION_KEY)
        if backend in EARLIER_BACKENDS:
            request.session[BACKEND_SESSION_KEY] = EARLIER_BACKENDS[backend]
        return self.get_response(request)
