"""The report of a stored rebalancing run, and its planned trades as CSV."""

from django.urls import path

from portfolios.views import report

urlpatterns = [
    path("runs/<int:run_id>/", report.run_report, name="run_report"),
    path("runs/<int:run_id>/trades.csv", report.run_trades_csv, name="run_trades_csv"),
]
