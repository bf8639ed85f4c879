"""/api/v1/ (the REST API), /api/schema/ (OpenAPI 3) and /api/docs/ (Swagger UI, served offline).

Every view here answers 401 itself when no one is logged in, instead of the site's redirect to the
login page (`LoginRequiredMiddleware`).
"""

from django.contrib.auth.decorators import login_not_required
from django.urls import path, re_path

from api.views import brokers, docs, market, not_found, portfolios, runs

v1 = [
    path("portfolios/", portfolios.PortfolioListView.as_view(), name="portfolio-list"),
    path("portfolios/<int:pk>/", portfolios.PortfolioDetailView.as_view(), name="portfolio-detail"),
    path("portfolios/<int:pk>/holdings/", portfolios.HoldingsView.as_view(), name="portfolio-holdings"),
    path("portfolios/<int:pk>/cash/", portfolios.CashView.as_view(), name="portfolio-cash"),
    path("portfolios/<int:pk>/targets/", portfolios.TargetsView.as_view(), name="portfolio-targets"),
    path("portfolios/<int:pk>/rebalance/", portfolios.RebalanceView.as_view(), name="portfolio-rebalance"),
    path("portfolios/<int:pk>/preview/", portfolios.PreviewView.as_view(), name="portfolio-preview"),
    path("portfolios/<int:pk>/sync-from-broker/", portfolios.SyncFromBrokerView.as_view(), name="portfolio-sync"),
    path("runs/", runs.RunListView.as_view(), name="run-list"),
    path("runs/<int:pk>/", runs.RunDetailView.as_view(), name="run-detail"),
    path("runs/<int:pk>/approve/", runs.RunApproveView.as_view(), name="run-approve"),
    path("broker-accounts/", brokers.BrokerAccountListView.as_view(), name="broker-account-list"),
    path("broker-accounts/<int:pk>/", brokers.BrokerAccountDetailView.as_view(), name="broker-account-detail"),
    path("instruments/", market.InstrumentListView.as_view(), name="instrument-list"),
    path("prices/", market.PricesView.as_view(), name="prices"),
]

app_name = "api"
urlpatterns = [
    *(path(f"v1/{p.pattern}", login_not_required(p.callback), name=p.name) for p in v1),
    path("schema/", login_not_required(docs.SchemaView.as_view()), name="schema"),
    path("docs/", login_not_required(docs.SwaggerView.as_view(url_name="api:schema")), name="docs"),
    # Anything else under /api/ (an unknown path, an id that is not a number): a JSON 404.
    re_path(r"^", login_not_required(not_found.NotFoundView.as_view()), name="not-found"),
]
