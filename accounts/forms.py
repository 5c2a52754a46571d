"""Forms for the reader's preferences, the sign-up page and account deletion.

Bad input of any kind (unknown zones, impossible dates, huge or binary text) ends as an error
next to its field, never as an exception.
"""

from datetime import date

from allauth.account.forms import SignupForm as AllauthSignupForm
from allauth.core import context as allauth_context
from django import forms
from django.utils import timezone

from accounts.fields import TimeZoneField
from accounts.models import Subscription, User, all_topics
from accounts.scheduling import DEFAULT_DELIVERY_TIME
from accounts.signs import sun_sign_options
from forecasts.topics import TOPIC_CHOICES
from forecasts.zodiac import SIGN_CHOICES, SIGNS_BY_SLUG

EARLIEST_BIRTH_DATE = date(1900, 1, 1)

# One line on the form; the page explains what happens when the clocks change.
DELIVERY_TIME_HELP = "Your local time, every day; it follows daylight saving."


def sign_label(slug: str) -> str:
    sign = SIGNS_BY_SLUG[slug]
    return f"{sign.name} ({sign.dates})"


class PreferenceFields(forms.Form):
    """The reader's choices, shared by the preferences page and the sign-up page."""

    sign = forms.ChoiceField(
        label="Your sun sign",
        choices=[("", "Work it out from my birth date"), *[(slug, sign_label(slug)) for slug, _ in SIGN_CHOICES]],
        required=False,
        help_text="Pick it, or leave this and give your birth date below: we work it out.",
        error_messages={"invalid_choice": "Choose one of the twelve signs."},
    )
    birth_date = forms.DateField(
        label="Birth date",
        required=False,
        widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
        help_text="Optional. Gives your sign when you leave the sign above empty.",
        error_messages={"invalid": "Enter a date as YYYY-MM-DD, for example 1990-07-14."},
    )
    time_zone = TimeZoneField()
    delivery_time = forms.TimeField(
        label="Delivery time",
        initial=DEFAULT_DELIVERY_TIME,
        widget=forms.TimeInput(attrs={"type": "time", "step": 60}, format="%H:%M"),
        help_text=DELIVERY_TIME_HELP,
        error_messages={
            "required": "Choose a time, such as 06:00.",
            "invalid": "Enter a time as HH:MM, such as 06:00.",
        },
    )

    cusp_options: tuple = ()

    def is_valid(self) -> bool:
        """Valid only once the sign is known: a cusp date waits for the reader's choice."""
        return super().is_valid() and not self.cusp_options

    def clean_birth_date(self):
        value = self.cleaned_data.get("birth_date")
        if value is None:
            return None
        if value < EARLIEST_BIRTH_DATE:
            raise forms.ValidationError("Enter a birth date from 1900 on.")
        if value > timezone.localdate():
            raise forms.ValidationError("A birth date cannot be in the future.")
        return value

    def clean_delivery_time(self):
        value = self.cleaned_data.get("delivery_time")
        # Whole minutes: the schedule has no use for seconds.
        return value.replace(second=0, microsecond=0, tzinfo=None) if value else value

    def clean_preferences(self, cleaned_data: dict) -> dict:
        """Derive the sign from the birth date when none is chosen, or ask on a cusp date."""
        if cleaned_data.get("sign") or "sign" in self.errors or "birth_date" in self.errors:
            return cleaned_data
        birth_date = cleaned_data.get("birth_date")
        if birth_date is None:
            self.add_error("sign", "Choose your sign, or give your birth date and we will work it out.")
            return cleaned_data
        options = sun_sign_options(birth_date)
        if len(options) == 1:
            cleaned_data["sign"] = options[0].slug
            return cleaned_data
        # Not an error: a question with exactly the two possible signs, asked on the next round.
        self.cusp_options = options
        first, second = options
        field = self.fields["sign"]
        field.widget = forms.RadioSelect(attrs={"class": "choice-list"})
        field.choices = [(sign.slug, sign_label(sign.slug)) for sign in options]
        bound = self["sign"]  # made while cleaning: it keeps its own label and help
        field.label = bound.label = f"{first.name} or {second.name}?"
        field.help_text = bound.help_text = (
            f"{birth_date.day} {birth_date:%B} is on the cusp of {first.name} and {second.name}: the Sun changes "
            "sign around that day at a different hour each year. Choose the sign that is yours."
        )
        return cleaned_data


class PreferencesForm(PreferenceFields):
    """The full preferences page."""

    birth_time = forms.TimeField(
        label="Birth time",
        required=False,
        widget=forms.TimeInput(attrs={"type": "time"}, format="%H:%M"),
        help_text="Optional, local time where you were born. Kept for personal readings later.",
        error_messages={"invalid": "Enter a time as HH:MM, such as 14:30."},
    )
    birth_place = forms.CharField(
        label="Birth place",
        required=False,
        max_length=Subscription._meta.get_field("birth_place").max_length,
        strip=True,
        help_text="Optional, a town and country. Kept for personal readings later.",
    )
    topics = forms.MultipleChoiceField(
        label="Topics",
        choices=TOPIC_CHOICES,
        widget=forms.CheckboxSelectMultiple(attrs={"class": "choice-list"}),
        help_text="The parts of life your horoscope covers.",
        error_messages={
            "required": "Pick at least one topic.",
            "invalid_choice": "Pick topics from the list.",
        },
    )

    field_order = ["sign", "birth_date", "birth_time", "birth_place", "time_zone", "delivery_time", "topics"]

    def __init__(self, *args, suggest_time_zone: bool = False, **kwargs):
        super().__init__(*args, **kwargs)
        if suggest_time_zone:
            self.fields["time_zone"].widget.attrs["data-timezone-suggest"] = ""

    def clean_birth_place(self):
        value = self.cleaned_data.get("birth_place", "")
        if any(ord(char) < 32 for char in value):
            raise forms.ValidationError("Use letters, digits and punctuation only.")
        return value

    def clean(self):
        return self.clean_preferences(super().clean())

    @classmethod
    def initial_for(cls, subscription: Subscription | None) -> dict:
        if subscription is None:
            return {"time_zone": "UTC", "delivery_time": DEFAULT_DELIVERY_TIME, "topics": all_topics()}
        return {
            "sign": subscription.sign,
            "birth_date": subscription.birth_date,
            "birth_time": subscription.birth_time,
            "birth_place": subscription.birth_place,
            "time_zone": subscription.time_zone,
            "delivery_time": subscription.delivery_time,
            "topics": subscription.topics,
        }

    def preferences(self) -> dict:
        """The cleaned values, named as the subscription's fields."""
        return {name: self.cleaned_data[name] for name in self.field_order}


class SignupForm(AllauthSignupForm, PreferenceFields):
    """allauth's sign-up form plus what the daily email needs: the subscription starts pending.

    Short enough for one phone screen: one password box, no help paragraphs, the sign or the
    birth date side by side, the time zone by city.
    """

    field_order = ["email", "password1", "sign", "birth_date", "time_zone", "delivery_time"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["password1"].help_text = "At least 8 characters, not only digits."
        self.fields["sign"].label = "Your sun sign"
        self.fields["sign"].choices = [("", "I don't know"), *self.fields["sign"].choices[1:]]
        self.fields["birth_date"].label = "Or birth date"
        self.fields["delivery_time"].label = "Arrives at"
        for name in ("sign", "birth_date", "time_zone", "delivery_time"):
            self.fields[name].help_text = ""
        if not self.is_bound:
            # Only a new, empty form takes the browser's zone (js/timezone.js).
            self.fields["time_zone"].widget.attrs["data-timezone-suggest"] = ""
            # A sign page links here with ?sign=aries; allauth's middleware keeps the request.
            request = allauth_context.request
            sign = request.GET.get("sign", "") if request is not None else ""
            if sign in SIGNS_BY_SLUG:  # anything else is ignored: the reader picks on the page
                self.initial["sign"] = sign

    def is_valid(self) -> bool:
        valid = super().is_valid()
        if self.cusp_options and not self.errors:
            # The page comes back only to ask which sign: keep the password the reader typed.
            self.fields["password1"].widget.render_value = True
        return valid

    def clean(self):
        return self.clean_preferences(super().clean())

    def save(self, request) -> User:
        from accounts.services import subscription_create

        user = super().save(request)
        subscription_create(
            user=user,
            sign=self.cleaned_data["sign"],
            birth_date=self.cleaned_data.get("birth_date"),
            time_zone=self.cleaned_data["time_zone"],
            delivery_time=self.cleaned_data["delivery_time"],
        )
        return user


class DeleteAccountForm(forms.Form):
    """Re-authentication before deleting: the password, when the account has one."""

    password = forms.CharField(
        label="Your password",
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "current-password"}),
        help_text="To be sure it is you.",
    )

    def __init__(self, *args, user: User, **kwargs):
        self.user = user
        super().__init__(*args, **kwargs)
        if not user.has_usable_password():
            del self.fields["password"]

    def clean_password(self):
        password = self.cleaned_data.get("password", "")
        if not self.user.check_password(password):
            raise forms.ValidationError("That is not your password.")
        return password
