"""What the pages owe assistive technology and keyboards, checked without a browser: the colour
pairs of static/css/app.css meet WCAG 2.1 AA contrast, a form's help and error texts are the
elements its fields' aria-describedby names, a form with errors opens with a focusable summary
linking each field, every page starts with a skip link to <main id="main">, and every table header
(an action column's too) has text.

The browser side (axe-core on every page, the focus landing on the summary) is
tests/browser/test_accessibility.py.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path

import pytest
from django import forms
from django.template.loader import render_to_string
from django.urls import reverse

from api.services import api_token_create
from portfolios.services.execution import execute_run
from portfolios.tests.execution_factories import paper_portfolio, planned_run

APP_CSS = Path(__file__).resolve().parents[1] / "static" / "css" / "app.css"
TEXT, LARGE_TEXT_OR_UI = 4.5, 3.0
WHITE = "#ffffff"

# (foreground, background, minimum ratio, where the pair is seen). Names are app.css variables.
PAIRS = [
    ("ink", WHITE, TEXT, "body text on cards, tables and fields"),
    ("ink", "bg", TEXT, "body text on the page"),
    ("ink", "outside", TEXT, "a holding outside its band"),
    ("ink", "code-bg", TEXT, "a CSV format sample"),
    ("muted", WHITE, TEXT, "help texts, table headers"),
    ("muted", "bg", TEXT, "notes on the page"),
    ("muted", "outside", TEXT, "notes in a holding outside its band"),
    ("muted", "code-bg", TEXT, "notes in a code sample"),
    ("accent", WHITE, TEXT, "links, secondary buttons"),
    ("accent", "bg", TEXT, "links on the page"),
    ("accent", "outside", TEXT, "links in a holding outside its band"),
    (WHITE, "accent", TEXT, "primary buttons"),
    (WHITE, "bad", TEXT, "danger buttons"),
    ("good", WHITE, TEXT, "good badges"),
    ("good", "bg", TEXT, "good states on the page"),
    ("bad", WHITE, TEXT, "errors, bad badges"),
    ("bad", "bg", TEXT, "errors on the page"),
    ("bad", "outside", TEXT, "alerts in a holding outside its band"),
    ("warn", WHITE, TEXT, "warnings, synthetic prices"),
    ("warn", "bg", TEXT, "warnings on the page"),
    ("warn", "outside", TEXT, "a stale price in a holding outside its band"),
    ("field-border", WHITE, LARGE_TEXT_OR_UI, "an input's border against its inside"),
    ("field-border", "bg", LARGE_TEXT_OR_UI, "an input's border against the page"),
    ("bad", WHITE, LARGE_TEXT_OR_UI, "an invalid input's border"),
    ("focus", WHITE, LARGE_TEXT_OR_UI, "the focus ring on cards"),
    ("focus", "bg", LARGE_TEXT_OR_UI, "the focus ring on the page"),
]
# Card and table rules only separate areas (no information): WCAG asks no contrast of them.
DECORATIVE = {"line"}


def css_colours() -> dict[str, str]:
    root = re.search(r":root\s*\{(.*?)\}", APP_CSS.read_text(), re.S).group(1)
    return dict(re.findall(r"--([\w-]+):\s*(#[0-9a-fA-F]{6})\b", root))


def relative_luminance(colour: str) -> float:
    """WCAG 2.1's relative luminance of a #rrggbb colour (0 black to 1 white)."""
    channels = [int(colour[i : i + 2], 16) / 255 for i in (1, 3, 5)]
    linear = [c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


def contrast_ratio(first: str, second: str) -> float:
    lighter, darker = sorted((relative_luminance(first), relative_luminance(second)), reverse=True)
    return (lighter + 0.05) / (darker + 0.05)


def test_the_contrast_ratio_is_wcags():
    assert contrast_ratio("#000000", WHITE) == pytest.approx(21.0)
    assert contrast_ratio(WHITE, WHITE) == pytest.approx(1.0)
    assert contrast_ratio("#767676", WHITE) == pytest.approx(4.54, abs=0.01)


@pytest.mark.parametrize(("foreground", "background", "minimum", "where"), PAIRS, ids=[p[3] for p in PAIRS])
def test_each_colour_pair_of_the_stylesheet_meets_wcag_aa(foreground, background, minimum, where):
    colours = css_colours()
    front, back = colours.get(foreground, foreground), colours.get(background, background)
    assert contrast_ratio(front, back) >= minimum, f"{where}: {foreground} on {background}"


def test_every_colour_of_the_stylesheet_is_checked():
    checked = {name for pair in PAIRS for name in pair[:2]}
    assert set(css_colours()) - DECORATIVE <= checked


class ExampleForm(forms.Form):
    name = forms.CharField(label="Name", help_text="What you call it.")
    shares = forms.IntegerField(label="Shares", min_value=1)
    notes = forms.CharField(label="Notes", required=False)

    def clean(self):
        if self.cleaned_data.get("name") == "clash":
            raise forms.ValidationError("the name and the shares disagree")
        return self.cleaned_data


def widget_of(html: str, name: str) -> str:
    return re.search(rf'<input[^>]*name="{name}"[^>]*>', html).group(0)


def described_by(widget: str) -> list[str]:
    found = re.search(r'aria-describedby="([^"]*)"', widget)
    return found.group(1).split() if found else []


def test_help_and_error_texts_are_the_elements_aria_describedby_names():
    form = ExampleForm({"name": "", "shares": "0"})
    html = render_to_string("includes/form_fields.html", {"form": form})

    name = widget_of(html, "name")
    assert described_by(name) == ["id_name_helptext", "id_name_error"]
    assert 'aria-invalid="true"' in name
    assert re.search(r'id="id_name_helptext"[^>]*>What you call it\.<', html)
    assert re.search(r'id="id_name_error"[^>]*>This field is required\.<', html)
    shares = widget_of(html, "shares")
    assert described_by(shares) == ["id_shares_error"]
    assert re.search(r'id="id_shares_error"[^>]*>Ensure this value is greater than or equal to 1\.<', html)
    notes = widget_of(html, "notes")
    assert described_by(notes) == [] and "aria-invalid" not in notes


def test_a_form_with_errors_opens_with_a_focusable_summary_linking_each_field():
    form = ExampleForm({"name": "", "shares": "0"})
    html = render_to_string("includes/form_fields.html", {"form": form, "title": "Nothing was saved."})

    summary = re.search(r"<div class=\"error-summary\"([^>]*)>(.*?)</div>", html, re.S)
    assert summary and html.index("error-summary") < html.index('name="name"')
    assert 'tabindex="-1"' in summary.group(1) and "data-error-summary" in summary.group(1)
    assert "Nothing was saved." in summary.group(2)
    assert re.findall(r'<a href="#([^"]+)">', summary.group(2)) == ["id_name", "id_shares"]


def test_a_form_error_of_no_field_is_in_the_summary():
    form = ExampleForm({"name": "clash", "shares": "3"})
    html = render_to_string("includes/form_fields.html", {"form": form})

    summary = re.search(r'<div class="error-summary".*?</div>', html, re.S).group(0)
    assert "the name and the shares disagree" in summary
    assert html.count("the name and the shares disagree") == 1


def test_a_valid_form_and_a_page_with_its_own_summary_show_none():
    assert "error-summary" not in render_to_string("includes/form_fields.html", {"form": ExampleForm()})
    invalid = ExampleForm({"name": "", "shares": "0"})
    html = render_to_string("includes/form_fields.html", {"form": invalid, "summary": False})
    assert "error-summary" not in html and 'id="id_name_error"' in html


@pytest.mark.django_db
def test_a_page_starts_with_a_skip_link_to_its_main_content(client):
    html = client.get("/accounts/login/").content.decode()

    body = html[html.index("<body") :]
    first_focusable = re.search(r"<(a|button|input|select|textarea)\b[^>]*>", body).group(0)
    assert first_focusable == '<a class="skip-link" href="#main">'
    assert re.search(r'<main id="main"[^>]*>', html)
    assert "Skip to main content" in html


def test_no_template_keeps_information_in_a_title_tooltip():
    # A title shows only on mouse hover: keyboards, touch screens and most screen readers never get it.
    templates = Path(__file__).resolve().parents[1] / "templates"
    tooltips = [
        f"{path.relative_to(templates)}: {found.group(0)}"
        for path in templates.rglob("*.html")
        for found in re.finditer(r"<[a-z][a-z0-9]*\b[^<>]*\stitle=\"[^\"]*\"", path.read_text())
    ]
    assert not tooltips


def test_no_template_comment_spans_lines():
    # Django's {# ... #} comment ends at the line's end: one spread over lines is printed on the page.
    templates = Path(__file__).resolve().parents[1] / "templates"
    unclosed = [
        f"{path.relative_to(templates)}:{number}"
        for path in templates.rglob("*.html")
        for number, line in enumerate(path.read_text().splitlines(), start=1)
        if "{#" in line and "#}" not in line.split("{#", 1)[1]
    ]
    assert not unclosed


class TableMarkup(HTMLParser):
    """Each <th> of a page with its text (visually hidden text included), and the width in columns of
    each table's header row and body rows."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.headers: list[str] = []
        self.tables: list[dict] = []  # {"head": [row widths], "body": [row widths]}
        self._open: list[dict] = []  # the tables being read, innermost last
        self._section = "body"
        self._header_text: list[str] | None = None

    def handle_starttag(self, tag, attrs) -> None:
        if tag == "table":
            self._open.append({"head": [], "body": []})
        elif not self._open:
            return
        elif tag in ("thead", "tbody", "tfoot"):
            self._section = "head" if tag == "thead" else "body"
        elif tag == "tr":
            self._open[-1][self._section].append(0)
        elif tag in ("th", "td"):
            rows = self._open[-1][self._section]
            if rows:
                rows[-1] += int(dict(attrs).get("colspan") or 1)
            if tag == "th":
                self._header_text = []

    def handle_endtag(self, tag) -> None:
        if tag == "th" and self._header_text is not None:
            self.headers.append(" ".join("".join(self._header_text).split()))
            self._header_text = None
        elif tag == "thead":
            self._section = "body"
        elif tag == "table" and self._open:
            self.tables.append(self._open.pop())

    def handle_data(self, data) -> None:
        if self._header_text is not None:
            self._header_text.append(data)


def table_markup(html: str) -> TableMarkup:
    parser = TableMarkup()
    parser.feed(html)
    parser.close()
    return parser


@pytest.mark.django_db
def test_every_table_header_of_the_pages_with_tables_has_text(client, prices, clock):
    # A column of buttons or links (report, revoke, remove) has a header too, its text visually hidden
    # if need be: a screen reader announces an empty header as nothing, or as the cell's position.
    portfolio = paper_portfolio(holdings_usd={"SPY": 8000, "BND": 2000}, mode="propose")
    account = portfolio.broker_account
    api_token_create(user=portfolio.owner, name="spreadsheet")
    client.force_login(portfolio.owner)
    run = planned_run(portfolio)
    pages = {"run approval": client.get(reverse("run_approve", args=[run.pk]))}
    executed = execute_run(run=run, submit=True, approved=True)  # orders at the broker, a run in the history
    assert executed.run.status == "executed"
    for name, url in [
        ("portfolio", reverse("portfolio_detail", args=[portfolio.pk])),
        ("holdings editor", reverse("portfolio_holdings", args=[portfolio.pk])),
        ("sync review", reverse("portfolio_sync", args=[portfolio.pk])),
        ("run report", reverse("run_report", args=[run.pk])),
        ("broker accounts", reverse("broker_account_list")),
        ("broker account", reverse("broker_account_detail", args=[account.pk])),
        ("API tokens", reverse("api_tokens")),
    ]:
        pages[name] = client.get(url)

    empty, headless, markup = [], [], {}
    for name, response in pages.items():
        assert response.status_code == 200, f"{name} answered {response.status_code}"
        markup[name] = found = table_markup(response.content.decode())
        assert found.headers, f"{name}: no table header at all"
        empty += [
            f"{name}: the <th> after {found.headers[:number]}" for number, text in enumerate(found.headers) if not text
        ]
        for table in found.tables:
            if table["head"]:  # a header row over columns: it names every column of every row
                headless += [
                    f"{name}: {width} cells under {table['head']} headed"
                    for width in table["body"]
                    if width not in table["head"]
                ]
    assert not empty, "empty table headers:\n" + "\n".join(empty)
    assert not headless, "columns without a header:\n" + "\n".join(headless)
    # The action columns are there, headed by their hidden text.
    assert "Report" in markup["portfolio"].headers
    assert "Remove" in markup["holdings editor"].headers
    assert "Revoke" in markup["API tokens"].headers
