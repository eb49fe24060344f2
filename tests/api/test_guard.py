"""The front door (api/guard.py) as an attacker's web page and a careless client meet it."""

from __future__ import annotations

import asyncio
import socket
import time

import httpx
import pytest

from tuneforge.store.keys import KeyStore


def _error(r: httpx.Response) -> dict:
    body = r.json()
    assert set(body["error"]) == {"message", "type", "param", "code"}
    return body["error"]


def test_dns_rebinding_host_is_refused_and_loopback_names_work(server):
    r = httpx.get(server.base_url + "/files", headers={"Host": "attacker.example"})
    assert r.status_code == 400 and _error(r)["code"] == "invalid_host"
    assert "TUNEFORGE_ALLOWED_HOSTS" in _error(r)["message"]
    port = server.url.rsplit(":", 1)[1]
    for host in ("127.0.0.1", f"127.0.0.1:{port}", f"localhost:{port}", "[::1]", "app.localhost"):
        assert httpx.get(server.base_url + "/files", headers={"Host": host}).status_code == 200, host


def test_allowed_hosts_setting_admits_a_name(make_settings, start_server):
    live = start_server(make_settings(allowed_hosts=("tuneforge.lan",)))
    assert httpx.get(live.base_url + "/files", headers={"Host": "tuneforge.lan:8000"}).status_code == 200
    assert httpx.get(live.base_url + "/files", headers={"Host": "other.lan"}).status_code == 400


@pytest.mark.parametrize("request_kwargs", [
    {"method": "POST", "path": "/files", "files": {"file": ("a.jsonl", b"{}\n")},
     "data": {"purpose": "fine-tune"}},
    {"method": "POST", "path": "/fine_tuning/jobs/ftjob-abc/cancel"},
    {"method": "POST", "path": "/chat/completions", "json": {"model": "x", "messages": []}},
    {"method": "DELETE", "path": "/files/file-abc"},
    {"method": "GET", "path": "/files"},  # a no-key server: a cross-site read is a leak
])
def test_cross_site_pages_cannot_write_or_read_an_open_server(server, request_kwargs):
    kwargs = dict(request_kwargs)
    method, path = kwargs.pop("method"), kwargs.pop("path")
    for headers in ({"Origin": "http://evil.example"}, {"Origin": "null"},
                    {"Sec-Fetch-Site": "cross-site", "Sec-Fetch-Mode": "cors"}):
        r = httpx.request(method, server.base_url + path, headers=headers, **kwargs)
        assert r.status_code == 403, (headers, r.text)
        assert _error(r)["code"] == "cross_origin_request_blocked"
    assert httpx.get(server.base_url + "/files").json()["data"] == []  # nothing was uploaded


def test_same_origin_web_app_and_link_navigation_still_work(server):
    same = {"Origin": server.url, "Sec-Fetch-Site": "same-origin"}
    r = httpx.post(server.base_url + "/files", headers=same, data={"purpose": "fine-tune"},
                   files={"file": ("a.jsonl", b'{"prompt": "a", "completion": "b"}\n')})
    assert r.status_code == 200, r.text
    assert httpx.get(server.base_url + "/files", headers=same).status_code == 200
    nav = httpx.get(server.url + "/", headers={"Sec-Fetch-Site": "cross-site", "Sec-Fetch-Mode": "navigate"})
    assert nav.status_code == 200 and "<html" in nav.text


def test_with_keys_a_cross_origin_read_needs_the_key_like_anyone(server):
    _, key = KeyStore(server.app.state.db).create("alpha")
    headers = {"Origin": "http://evil.example"}
    assert httpx.get(server.base_url + "/files", headers=headers).status_code == 401
    ok = httpx.get(server.base_url + "/files", headers={**headers, "Authorization": f"Bearer {key}"})
    assert ok.status_code == 200


def test_web_app_cannot_be_framed_and_api_is_not_sniffed(server):
    page = httpx.get(server.url + "/")
    assert page.headers["x-frame-options"] == "DENY"
    assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
    api = httpx.get(server.base_url + "/files")
    assert api.headers["x-content-type-options"] == "nosniff"


# 30 MB declared, none sent.
HUGE_JSON_HEAD = ("POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                  "Content-Type: application/json\r\nContent-Length: 31457280\r\n\r\n")


def _raw_headers_only(url: str, head: str, timeout: float = 10) -> bytes:
    """Send request headers and no body; return what the server answers before the body arrives."""
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=timeout) as sock:
        sock.sendall(head.encode())
        deadline, data = time.monotonic() + timeout, b""
        while b"\r\n\r\n" not in data and time.monotonic() < deadline:
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
        return data


def test_keyless_request_declaring_a_huge_body_gets_401_before_sending_it(server):
    KeyStore(server.app.state.db).create("alpha")
    answer = _raw_headers_only(server.url, HUGE_JSON_HEAD)
    assert answer.startswith(b"HTTP/1.1 401"), answer[:200]


def test_oversized_bodies_are_refused_before_and_while_reading(make_settings, start_server):
    live = start_server(make_settings(max_request_bytes=100_000))
    answer = _raw_headers_only(live.url, HUGE_JSON_HEAD)
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]

    def chunks():
        yield b'{"model": "x", "messages": [{"role": "user", "content": "'
        for _ in range(40):
            yield b"a" * 10_000
        yield b'"}]}'

    r = httpx.post(live.base_url + "/chat/completions", content=chunks(),
                   headers={"Content-Type": "application/json"})
    assert r.status_code == 413 and _error(r)["code"] == "request_too_large"
    assert "TUNEFORGE_MAX_REQUEST_BYTES" in _error(r)["message"]
    assert httpx.get(live.url + "/health").status_code == 200


def test_bad_content_length_is_a_400(server):
    answer = _raw_headers_only(server.url, "POST /v1/files HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                                           "Content-Length: 12abc\r\n\r\n")
    assert answer.startswith((b"HTTP/1.1 400", b"HTTP/1.1 413")), answer[:200]


def test_app_run_under_plain_uvicorn_on_a_network_address_needs_a_key(make_settings):
    """The bind rule lives in the app, not only in `tuneforge serve`: a request that arrived on a
    non-loopback address of a key-less server is refused. (In-process ASGI: no traffic leaves.)"""
    from tuneforge.api.app import create_app

    app = create_app(make_settings(), start_worker=False)
    app.state.db.init_schema()

    async def call() -> httpx.Response:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://192.0.2.10:8000") as client:
            return await client.get("/v1/files")

    r = asyncio.run(call())
    assert r.status_code == 401 and "no active API keys" in _error(r)["message"]


def test_a_form_with_hundreds_of_fields_is_refused(server):
    fields = {f"f{i}": "x" for i in range(300)}
    r = httpx.post(server.base_url + "/files", data={"purpose": "fine-tune", **fields},
                   files={"file": ("a.jsonl", b'{"prompt": "a", "completion": "b"}\n')})
    assert r.status_code == 400 and "parts" in _error(r)["message"]
    assert httpx.get(server.base_url + "/files").json()["data"] == []
