"""The universe relation gets a model of its own, on the same table, to remember which instruments
joined it only because they were held (those leave it when no longer held nor targeted)."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("marketdata", "0002_instrument_fractionable_not_known"),
        ("portfolios", "0009_run_inputs_fingerprint_and_approval"),
    ]

    operations = [
        # The table exists (Django's own for the relation): only the state learns its model.
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name="PortfolioInstrument",
                    fields=[
                        (
                            "id",
                            models.BigAutoField(
                                auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                            ),
                        ),
                        (
                            "portfolio",
                            models.ForeignKey(on_delete=models.deletion.CASCADE, to="portfolios.portfolio"),
                        ),
                        (
                            "instrument",
                            models.ForeignKey(on_delete=models.deletion.CASCADE, to="marketdata.instrument"),
                        ),
                    ],
                    options={
                        "db_table": "portfolios_portfolio_instruments",
                        "unique_together": {("portfolio", "instrument")},
                    },
                ),
                migrations.AlterField(
                    model_name="portfolio",
                    name="instruments",
                    field=models.ManyToManyField(
                        blank=True,
                        related_name="portfolios",
                        through="portfolios.PortfolioInstrument",
                        to="marketdata.instrument",
                    ),
                ),
            ],
        ),
        # Rows stored before are kept as the owner's choices: nothing tells which joined with a holding.
        migrations.AddField(
            model_name="portfolioinstrument",
            name="joined_with_holding",
            field=models.BooleanField(
                default=False,
                help_text="In the universe only because it was held (not chosen): it leaves when neither held nor "
                "targeted.",
            ),
        ),
    ]
