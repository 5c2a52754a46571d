"""The (status, sign) index holds only readers who are not active.

The dispatcher rewrites every due reader's row each day, and since next_send_at is indexed the
update is never HOT: each index over active rows gets a new entry per reader per day. Only the
admin's filters used this one, and "active" is most readers, which PostgreSQL reads without it.
"""

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('accounts', '0003_user_email_lower_case'),
    ]

    operations = [
        migrations.RemoveIndex(
            model_name='subscription',
            name='subscription_status_sign_idx',
        ),
        migrations.AddIndex(
            model_name='subscription',
            index=models.Index(condition=models.Q(('status', 'active'), _negated=True), fields=['status', 'sign'], name='subscription_inactive_idx'),
        ),
    ]
