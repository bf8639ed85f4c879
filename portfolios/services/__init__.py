"""Services of the portfolios app: the only code that writes portfolios, holdings and runs."""
