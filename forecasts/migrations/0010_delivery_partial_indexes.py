"""Delivery's SES message id and forecast are indexed only where set.

A delivery is inserted (dispatch) and claimed (queued -> sending) before it has either, and each
of those writes a new entry in every index of the row: the empty id and the null forecast were
two index entries per reader per write that no lookup ever used.
"""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('accounts', '0002_subscription'),
        ('forecasts', '0009_prepare_task_names'),
    ]

    operations = [
        migrations.RemoveIndex(
            model_name='delivery',
            name='delivery_ses_message_idx',
        ),
        migrations.AlterField(
            model_name='delivery',
            name='forecast',
            field=models.ForeignKey(blank=True, db_index=False, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='deliveries', to='forecasts.forecast'),
        ),
        migrations.AddIndex(
            model_name='delivery',
            index=models.Index(condition=models.Q(('ses_message_id', ''), _negated=True), fields=['ses_message_id'], name='delivery_ses_message_idx'),
        ),
        migrations.AddIndex(
            model_name='delivery',
            index=models.Index(condition=models.Q(('forecast__isnull', False)), fields=['forecast'], name='delivery_forecast_idx'),
        ),
    ]
