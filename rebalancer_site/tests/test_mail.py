"""E-mail settings reach a real SMTP conversation: an alert sent by a process started with EMAIL_URL
logs in to the server the URL names, with its (percent-decoded) user and password, and delivers the
message from DEFAULT_FROM_EMAIL. The server is a small SMTP listener on the loopback."""

from __future__ import annotations

import base64
import socketserver
import threading
from email import message_from_string

import pytest

from rebalancer_site.tests.test_settings import run_manage

SEND_ALERT = (
    "from types import SimpleNamespace as N; from portfolios.services.notify import notify_owner; "
    "notify_owner(N(pk=7, owner=N(pk=3, email='alice@example.com')), subject='Core has drifted 12.5% from its "
    "targets', body='drift 12.5% at or above the 10.0% alert threshold')"
)


class SmtpServer(socketserver.ThreadingTCPServer):
    """Speaks enough SMTP for smtplib: EHLO, AUTH PLAIN, MAIL, RCPT, DATA, QUIT; keeps what it got."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self):
        super().__init__(("127.0.0.1", 0), SmtpSession)
        self.logins: list[tuple[str, str]] = []
        self.recipients: list[str] = []
        self.messages: list[str] = []


class SmtpSession(socketserver.StreamRequestHandler):
    def reply(self, line: str) -> None:
        self.wfile.write(line.encode() + b"\r\n")

    def handle(self) -> None:
        self.reply("220 localhost ESMTP")
        while line := self.rfile.readline().decode().rstrip("\r\n"):
            verb, _, argument = line.partition(" ")
            verb = verb.upper()
            if verb in ("EHLO", "HELO"):
                self.reply("250-localhost")
                self.reply("250 AUTH PLAIN")
            elif verb == "AUTH":
                _, user, password = base64.b64decode(argument.split(" ")[1]).decode().split("\0")
                self.server.logins.append((user, password))
                self.reply("235 2.7.0 Authentication successful")
            elif verb == "RCPT":
                self.server.recipients.append(argument.removeprefix("TO:").strip("<>"))
                self.reply("250 OK")
            elif verb == "DATA":
                self.reply("354 End data with <CR><LF>.<CR><LF>")
                lines = []
                while (data := self.rfile.readline()) not in (b".\r\n", b""):
                    lines.append(data.decode())
                self.server.messages.append("".join(lines))
                self.reply("250 OK: queued")
            elif verb == "QUIT":
                self.reply("221 Bye")
                return
            else:  # MAIL, RSET, NOOP
                self.reply("250 OK")


@pytest.fixture
def smtp_server():
    server = SmtpServer()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def test_an_alert_goes_out_through_the_server_email_url_names(smtp_server):
    port = smtp_server.server_address[1]
    result = run_manage(
        "shell",
        "-c",
        SEND_ALERT,
        env={
            "EMAIL_URL": f"smtp://alerts%40example.com:p%40ss%3Aword@127.0.0.1:{port}",
            "DEFAULT_FROM_EMAIL": "Portfolio rebalancer <alerts@example.com>",
        },
    )
    assert result.returncode == 0, result.stderr

    assert smtp_server.logins == [("alerts@example.com", "p@ss:word")]
    assert smtp_server.recipients == ["alice@example.com"]
    (raw,) = smtp_server.messages
    message = message_from_string(raw)
    assert message["To"] == "alice@example.com"
    assert message["From"] == "Portfolio rebalancer <alerts@example.com>"
    assert message["Subject"] == "Core has drifted 12.5% from its targets"
    assert message.get_payload().strip() == "drift 12.5% at or above the 10.0% alert threshold"
    assert "could not e-mail" not in result.stderr and "p@ss:word" not in result.stderr
