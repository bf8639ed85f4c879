"""In-process fakes of external services (broker and market-data APIs) for offline tests."""
