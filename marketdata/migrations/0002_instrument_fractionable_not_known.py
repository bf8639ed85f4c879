from django.db import migrations, models


def unknown_symbols_not_known(apps, schema_editor):
    """Symbols outside the reference table were created "not fractionable" without anyone saying
    so: they become "not known" (plans still trade them in whole shares, and now say why)."""
    from marketdata.reference import KNOWN_INSTRUMENTS

    Instrument = apps.get_model("marketdata", "Instrument")
    Instrument.objects.filter(fractionable=False).exclude(symbol__in=list(KNOWN_INSTRUMENTS)).update(
        fractionable=None
    )


def not_known_as_whole_shares(apps, schema_editor):
    Instrument = apps.get_model("marketdata", "Instrument")
    Instrument.objects.filter(fractionable__isnull=True).update(fractionable=False)


class Migration(migrations.Migration):
    dependencies = [
        ("marketdata", "0001_initial"),
    ]

    operations = [
        migrations.AlterField(
            model_name="instrument",
            name="fractionable",
            field=models.BooleanField(
                blank=True,
                default=None,
                help_text="Whether brokers accept fractional shares of it; empty when not known (plans then trade "
                "it in whole shares and say so). A portfolio's broker account, once synced, answers for its own "
                "plans.",
                null=True,
            ),
        ),
        migrations.RunPython(unknown_symbols_not_known, not_known_as_whole_shares),
    ]
