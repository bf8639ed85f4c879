"""Services of the brokers app: accounts and credentials, orders, kill switch, positions."""
