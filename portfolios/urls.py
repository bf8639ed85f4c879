"""The dashboard, portfolio pages (settings, holdings, runs) and broker account pages.

Reports of stored runs (``run_report``, ``run_trades_csv``) are in `portfolios.report_urls`.
"""

from django.urls import path

from brokers import views as broker_views
from portfolios.views import dashboard, holdings, portfolio, preview, runs

urlpatterns = [
    path("", dashboard.dashboard, name="dashboard"),
    # Portfolios.
    path("portfolios/new/", portfolio.portfolio_create, name="portfolio_create"),
    path("portfolios/<int:pk>/", portfolio.portfolio_detail_view, name="portfolio_detail"),
    path("portfolios/<int:pk>/settings/", portfolio.portfolio_edit, name="portfolio_edit"),
    path("portfolios/<int:pk>/delete/", portfolio.portfolio_delete, name="portfolio_delete"),
    path("portfolios/<int:pk>/holdings/", holdings.holdings_edit, name="portfolio_holdings"),
    path("portfolios/<int:pk>/holdings/upload/", holdings.holdings_upload, name="portfolio_holdings_upload"),
    path("portfolios/<int:pk>/sync/", holdings.portfolio_sync, name="portfolio_sync"),
    path("portfolios/<int:pk>/rebalance/", runs.portfolio_rebalance, name="portfolio_rebalance"),
    # Preview a plan (nothing stored), then save exactly the previewed plan.
    path("portfolios/<int:pk>/preview/", preview.portfolio_preview, name="portfolio_preview"),
    path("portfolios/<int:pk>/preview/save/", preview.portfolio_preview_save, name="portfolio_preview_save"),
    # Approving a proposed run (its report is /runs/<id>/, in portfolios.report_urls).
    path("runs/<int:pk>/approve/", runs.run_approve, name="run_approve"),
    # Broker accounts.
    path("brokers/", broker_views.broker_account_list, name="broker_account_list"),
    path("brokers/new/", broker_views.broker_account_create_view, name="broker_account_create"),
    path("brokers/<int:pk>/", broker_views.broker_account_detail, name="broker_account_detail"),
    path("brokers/<int:pk>/edit/", broker_views.broker_account_edit, name="broker_account_edit"),
    path("brokers/<int:pk>/live/", broker_views.broker_account_live, name="broker_account_live"),
    # The connection test (saves nothing): a new account's typed credentials, or an account's.
    path(
        "brokers/new/test-connection/",
        broker_views.broker_account_connection_test,
        name="broker_account_new_connection_test",
    ),
    path(
        "brokers/<int:pk>/test-connection/",
        broker_views.broker_account_connection_test,
        name="broker_account_connection_test",
    ),
]
