from django.contrib import admin, messages
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.db.models import QuerySet
from django.http import HttpRequest

from accounts import services, staff_mfa
from accounts.models import Subscription, User
from horoscope_site.json_input import JSON_INPUT_ADMIN_FIELDS

# Status and its timestamps change only through the actions (services), never by editing.
SUBSCRIPTION_READONLY = [
    "status",
    "status_reason",
    "status_changed_at",
    "confirmed_at",
    "next_send_at",
    "last_local_date",
    "created_at",
    "updated_at",
]


class SubscriptionInline(admin.StackedInline):
    model = Subscription
    can_delete = False
    extra = 0
    max_num = 1
    formfield_overrides = JSON_INPUT_ADMIN_FIELDS
    fields = ["sign", "time_zone", "delivery_time", "topics", *SUBSCRIPTION_READONLY]
    readonly_fields = SUBSCRIPTION_READONLY


@admin.register(User)
class UserAdmin(DjangoUserAdmin):
    ordering = ["email"]
    list_display = ["email", "first_name", "last_name", "subscription_status", "is_staff", "is_active", "date_joined"]
    list_filter = ["is_staff", "is_superuser", "is_active", "subscription__status", "subscription__sign"]
    list_select_related = ["subscription"]
    search_fields = ["email", "first_name", "last_name"]
    readonly_fields = ["last_login", "date_joined"]
    inlines = [SubscriptionInline]
    fieldsets = [
        (None, {"fields": ["email", "password"]}),
        ("Name", {"fields": ["first_name", "last_name"]}),
        ("Permissions", {"fields": ["is_active", "is_staff", "is_superuser", "groups", "user_permissions"]}),
        ("Dates", {"fields": ["last_login", "date_joined"]}),
    ]
    add_fieldsets = [(None, {"classes": ["wide"], "fields": ["email", "password1", "password2"]})]
    actions = ["email_mfa_setup_link"]

    @admin.action(description="Email a two-factor set-up link", permissions=["change"])
    def email_mfa_setup_link(self, request: HttpRequest, queryset: QuerySet[User]) -> None:
        """The out-of-band step: the link goes to the staff member's own address, never shown here."""
        sent = [user for user in queryset.filter(is_staff=True) if not staff_mfa.staff_has_second_factor(user)]
        for user in sent:
            staff_mfa.setup_link_email(user)
        self.message_user(request, f"Set-up links emailed: {len(sent)}.", messages.SUCCESS if sent else messages.INFO)
        if skipped := queryset.count() - len(sent):
            self.message_user(
                request, f"Skipped {skipped}: not staff, or a second factor is already set up.", messages.WARNING
            )

    @admin.display(description="subscription", ordering="subscription__status")
    def subscription_status(self, user: User) -> str:
        try:
            return user.subscription.get_status_display()
        except Subscription.DoesNotExist:
            return "—"

    def save_model(self, request: HttpRequest, obj: User, form, change: bool) -> None:
        super().save_model(request, obj, form, change)
        # Staff made here log in without a reader's confirmation email first: the administrator
        # vouches for their address, as the operator does for createsuperuser's.
        if obj.is_staff and (not change or {"is_staff", "email"} & set(form.changed_data)):
            staff_mfa.staff_address_confirm(obj)

    def delete_model(self, request: HttpRequest, obj: User) -> None:
        services.user_delete(obj)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[User]) -> None:
        for user in queryset:
            services.user_delete(user)


def _apply(modeladmin, request, queryset, change, done: str) -> None:
    """Run one service per selected subscription; count what changed and what did not apply."""
    changed = skipped = 0
    for subscription in queryset.select_related("user"):
        try:
            result = change(subscription)
        except services.SubscriptionStateError:
            skipped += 1
            continue
        if result is False:
            skipped += 1
        else:
            changed += 1
    modeladmin.message_user(request, f"{done}: {changed}.", messages.SUCCESS if changed else messages.INFO)
    if skipped:
        modeladmin.message_user(request, f"Left as they were (status did not allow it): {skipped}.", messages.WARNING)


@admin.action(description="Pause the selected subscriptions")
def pause_subscriptions(modeladmin, request, queryset):
    _apply(modeladmin, request, queryset, services.subscription_pause, "Paused")


@admin.action(description="Resume the selected (paused) subscriptions")
def resume_subscriptions(modeladmin, request, queryset):
    _apply(modeladmin, request, queryset, services.subscription_resume, "Resumed")


@admin.action(description="Unsubscribe the selected subscriptions")
def unsubscribe_subscriptions(modeladmin, request, queryset):
    reason = f"unsubscribed by {request.user.email} in the admin"
    _apply(modeladmin, request, queryset, lambda s: services.subscription_unsubscribe(s, reason=reason), "Unsubscribed")


@admin.action(description="Resend the confirmation email (pending only)")
def resend_confirmation(modeladmin, request, queryset):
    _apply(modeladmin, request, queryset, services.subscription_send_confirmation, "Confirmation emails sent")


@admin.register(Subscription)
class SubscriptionAdmin(admin.ModelAdmin):
    list_display = ["user_email", "sign", "status", "time_zone", "delivery_time", "next_send_at", "confirmed_at"]
    list_filter = ["status", "sign", "time_zone"]
    list_select_related = ["user"]
    search_fields = ["user__email"]
    readonly_fields = SUBSCRIPTION_READONLY
    formfield_overrides = JSON_INPUT_ADMIN_FIELDS
    raw_id_fields = ["user"]
    date_hierarchy = "created_at"
    ordering = ["-created_at"]
    actions = [pause_subscriptions, resume_subscriptions, unsubscribe_subscriptions, resend_confirmation]
    fieldsets = [
        (None, {"fields": ["user", "status", "status_reason", "status_changed_at", "confirmed_at"]}),
        ("Reading", {"fields": ["sign", "topics", "birth_date", "birth_time", "birth_place"]}),
        ("Schedule", {"fields": ["time_zone", "delivery_time", "next_send_at", "last_local_date"]}),
        ("Bounces", {"fields": ["transient_bounce_count"]}),
        ("Dates", {"fields": ["created_at", "updated_at"]}),
    ]

    @admin.display(description="email", ordering="user__email")
    def user_email(self, subscription: Subscription) -> str:
        return subscription.user.email
