"""Pages of lists: ``?page=N&page_size=M``, refused with 400 (naming the parameter) unless both
are whole numbers in range; a page past the last one is 404."""

from __future__ import annotations

import re

from rest_framework.exceptions import ValidationError
from rest_framework.pagination import PageNumberPagination

_WHOLE_NUMBER = re.compile(r"[0-9]{1,9}")


class Pagination(PageNumberPagination):
    """``?page=N&page_size=M`` (at most 200 a page); answers ``count``, ``next``, ``previous``, ``results``."""

    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 200
    last_page_strings = ()

    def get_page_size(self, request) -> int:
        return _whole_number(request, self.page_size_query_param, self.page_size, maximum=self.max_page_size)

    def get_page_number(self, request, paginator) -> int:
        return _whole_number(request, self.page_query_param, 1, maximum=None)

    def get_paginated_response_schema(self, schema: dict) -> dict:
        link = {"type": ["string", "null"], "format": "uri"}
        return {
            "type": "object",
            "required": ["count", "next", "previous", "results"],
            "properties": {
                "count": {"type": "integer", "minimum": 0, "description": "Objects in all pages."},
                "next": {**link, "description": "The next page's address; null on the last page."},
                "previous": {**link, "description": "The previous page's address; null on the first page."},
                "results": schema,
            },
        }

    def get_schema_operation_parameters(self, view) -> list[dict]:
        return [
            {
                "name": self.page_query_param,
                "required": False,
                "in": "query",
                "description": "Page number, from 1 (default 1); a page past the last one is 404.",
                "schema": {"type": "integer", "minimum": 1, "maximum": 10**9 - 1},
            },
            {
                "name": self.page_size_query_param,
                "required": False,
                "in": "query",
                "description": f"Objects per page, 1 to {self.max_page_size} (default {self.page_size}).",
                "schema": {"type": "integer", "minimum": 1, "maximum": self.max_page_size},
            },
        ]


def _whole_number(request, name: str, default: int, *, maximum: int | None) -> int:
    text = request.query_params.get(name)
    if text is None:
        return default
    if not _WHOLE_NUMBER.fullmatch(text) or int(text) < 1:
        raise ValidationError({name: [f"must be a whole number from 1, got {text[:20]!r}"]})
    if maximum is not None and int(text) > maximum:
        raise ValidationError({name: [f"must be at most {maximum}, got {text}"]})
    return int(text)
