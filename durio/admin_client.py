"""A small blocking client of the admin API, for the `durio` command (stdlib only)."""

from __future__ import annotations

import json
import typing
import urllib.error
import urllib.parse
import urllib.request


class AdminError(Exception):
    """The admin API answered with an error, or could not be reached."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class AdminClient:
    def __init__(self, address: str, timeout: float = 30.0) -> None:
        self.base = address if address.startswith("http") else f"http://{address}"
        self.timeout = timeout

    def request(self, method: str, path: str, body: typing.Any = None, query: dict[str, typing.Any] | None = None) -> typing.Any:
        url = self.base.rstrip("/") + path
        if query:
            url += "?" + urllib.parse.urlencode({k: v for k, v in query.items() if v is not None})
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(
            url, data=data, method=method, headers={"content-type": "application/json"} if data else {}
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                raw = response.read()
                status = response.status
        except urllib.error.HTTPError as exc:
            raw = exc.read()
            try:
                message = json.loads(raw).get("message", raw.decode(errors="replace"))
            except (ValueError, AttributeError):
                message = raw.decode(errors="replace") or exc.reason
            raise AdminError(f"{exc.code}: {message}", exc.code) from None
        except urllib.error.URLError as exc:
            raise AdminError(f"cannot reach the admin API at {self.base}: {exc.reason}") from None
        if not raw:
            return {"status": status}
        return json.loads(raw)

    def get(self, path: str, **query: typing.Any) -> typing.Any:
        return self.request("GET", path, query=query or None)
