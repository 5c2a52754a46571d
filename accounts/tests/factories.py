"""Test data built in code: readers with verified (or not) addresses, and their subscriptions."""

from datetime import time

import factory
from allauth.account.models import EmailAddress

from accounts.models import Subscription, User, all_topics

PASSWORD = "Orion's belt at midnight 42"


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = User
        skip_postgeneration_save = True

    email = factory.Sequence(lambda n: f"reader{n}@example.test")
    first_name = "Ada"
    last_name = "Reader"
    password = factory.PostGenerationMethodCall("set_password", PASSWORD)

    @factory.post_generation
    def verified(user, create, extracted, **kwargs):
        """verified=True (default) records a verified primary address, as allauth does; False an unverified one."""
        if create:
            user.save()
            EmailAddress.objects.create(
                user=user, email=user.email, primary=True, verified=True if extracted is None else bool(extracted)
            )


class SubscriptionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Subscription

    user = factory.SubFactory(UserFactory)
    sign = "leo"
    time_zone = "Europe/Paris"
    delivery_time = time(6, 0)
    topics = factory.LazyFunction(all_topics)
    status = Subscription.Status.ACTIVE
