"""log_context(): bound fields on every record, in JSON and text, nested and restored, secrets masked."""

from __future__ import annotations

import contextvars
import io
import json
import logging
import threading

import pytest

from ground.logcontext import ContextTextFormatter, LogContextFilter, bound_fields, log_context
from rebalancer_site.logging import JsonFormatter, RedactSecretsFilter
from rebalancer_site.tests.test_settings import run_manage

SECRET = "AKSECRETKEY123456"
TEXT_FORMAT = "%(levelname)s %(name)s: %(message)s"


@pytest.fixture
def capture():
    """A logger whose handler has the filters and formatter settings.LOGGING gives the console."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(LogContextFilter(secrets=[SECRET]))
    handler.addFilter(RedactSecretsFilter([SECRET]))
    logger = logging.getLogger("rebalancer.test.logcontext")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False

    yield logger, handler, stream
    logger.removeHandler(handler)
    logger.propagate = True


def test_nested_blocks_add_fields_and_restore_the_outer_ones_on_exit():
    assert bound_fields() == {}
    with log_context(run_id=7, portfolio_id=3):
        with log_context(client_order_id="r7-SPY-buy", portfolio_id=4) as inner:
            assert dict(inner) == {"run_id": 7, "portfolio_id": 4, "client_order_id": "r7-SPY-buy"}
        assert bound_fields() == {"run_id": 7, "portfolio_id": 3}
        with pytest.raises(RuntimeError), log_context(user_id=1):
            raise RuntimeError("boom")
        assert bound_fields() == {"run_id": 7, "portfolio_id": 3}
    assert bound_fields() == {}


def test_reserved_record_attributes_cannot_be_bound():
    with pytest.raises(ValueError, match="msg, name"), log_context(name="x", msg="y"):
        pass


def test_json_lines_carry_the_bound_fields_and_extra_wins(capture):
    logger, handler, stream = capture
    handler.setFormatter(JsonFormatter())
    with log_context(run_id=7, portfolio_id=3, user_id=1):
        with log_context(client_order_id="r7-SPY-buy"):
            logger.info("order submitted")
        logger.info("run stored", extra={"run_id": 8})
    logger.info("outside")
    first, second, third = (json.loads(line) for line in stream.getvalue().splitlines())
    assert first["message"] == "order submitted"
    assert (first["run_id"], first["portfolio_id"], first["user_id"], first["client_order_id"]) == (
        7,
        3,
        1,
        "r7-SPY-buy",
    )
    assert second["run_id"] == 8 and "client_order_id" not in second
    assert not {"run_id", "portfolio_id", "user_id", "client_order_id"} & set(third)
    assert not any(key.startswith("_") for key in first)


def test_text_lines_end_with_the_bound_fields(capture):
    logger, handler, stream = capture
    handler.setFormatter(ContextTextFormatter(TEXT_FORMAT))
    with log_context(run_id=7, client_order_id="r7 SPY"):
        logger.warning("order rejected")
        try:
            raise ValueError("no buying power")
        except ValueError:
            logger.exception("submit failed")
    logger.warning("outside")
    lines = stream.getvalue().splitlines()
    assert lines[0] == 'WARNING rebalancer.test.logcontext: order rejected run_id=7 client_order_id="r7 SPY"'
    assert lines[1] == 'ERROR rebalancer.test.logcontext: submit failed run_id=7 client_order_id="r7 SPY"'
    assert lines[2] == "Traceback (most recent call last):"
    assert lines[-1] == "WARNING rebalancer.test.logcontext: outside"


def test_secrets_in_bound_values_are_masked(capture):
    logger, handler, stream = capture
    handler.setFormatter(JsonFormatter())
    with log_context(client_order_id=f"r7-{SECRET}-buy", user_id=1):
        logger.info("key %s used", SECRET)
    line = json.loads(stream.getvalue())
    assert line["client_order_id"] == "r7-[redacted]-buy"
    assert line["message"] == "key [redacted] used"
    assert line["user_id"] == 1
    assert SECRET not in stream.getvalue()


def test_the_filter_takes_the_secrets_the_redact_filter_has():
    for given in (RedactSecretsFilter([SECRET]), {"secrets": [SECRET]}, [SECRET]):
        assert LogContextFilter(secrets=given).secrets == [SECRET]


def test_threads_see_the_fields_only_when_the_context_is_copied():
    seen = {}

    def work(key: str) -> None:
        seen[key] = bound_fields()

    with log_context(run_id=7):
        plain = threading.Thread(target=work, args=("plain",))
        copied = threading.Thread(target=contextvars.copy_context().run, args=(work, "copied"))
        for thread in (plain, copied):
            thread.start()
            thread.join()
    assert seen == {"plain": {}, "copied": {"run_id": 7}}


SNIPPET = (
    "import logging; from ground.logcontext import log_context\n"
    "with log_context(run_id=7, portfolio_id=3, user_id=1, client_order_id='r7-AKSECRETKEY123456'):\n"
    "    logging.getLogger('rebalancer.test').warning('order submitted')\n"
)


def test_settings_logging_prints_bound_fields_masked_in_json_and_text():
    result = run_manage("shell", "-c", SNIPPET, env={"ALPACA_API_KEY": SECRET})
    assert result.returncode == 0, result.stderr
    line = json.loads(result.stderr.strip().splitlines()[-1])
    assert (line["run_id"], line["portfolio_id"], line["user_id"]) == (7, 3, 1)
    assert line["client_order_id"] == "r7-[redacted]"

    result = run_manage("shell", "-c", SNIPPET, env={"ALPACA_API_KEY": SECRET, "LOG_FORMAT": "text"})
    assert result.returncode == 0, result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last.endswith(
        "WARNING rebalancer.test: order submitted run_id=7 portfolio_id=3 user_id=1 client_order_id=r7-[redacted]"
    )
    assert SECRET not in result.stderr
