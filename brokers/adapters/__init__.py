"""Broker adapters behind `brokers.base.Broker`; broker SDKs are imported only in this package."""
