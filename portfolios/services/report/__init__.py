"""The rebalancing report: what it shows (`rows`), read from the stored run (`build`), and the
sentences that stand for its charts (`captions`). Templates format its numbers with the filters
of `portfolios.templatetags.numbers`."""
