#!/usr/bin/env python3
"""Azure Blob REST requests signed with SharedKey, for testenv/services/azurite.sh.

The test environment needs two things from Azurite before the Azure backend's tests run: the
`pinvault` container, and proof that conditional puts work (the property the object backend
builds on). Both are a handful of REST calls, so this is the standard library only (hmac,
hashlib, http.client): nothing to install beyond Azurite itself.

    azblob.py ensure-container   create the container; an existing one is fine
    azblob.py smoke              conditional-put smoke test; prints one line of what it proved

Configuration comes from the environment: AZBLOB_ENDPOINT (http://127.0.0.1:10000/devstoreaccount1,
path-style as Azurite serves it), AZBLOB_ACCOUNT, AZBLOB_KEY (base64), AZBLOB_CONTAINER.
"""

import base64
import hashlib
import hmac
import http.client
import os
import sys
import time
import urllib.parse
from email.utils import formatdate

API_VERSION = "2021-12-02"


class Blob:
    """A SharedKey-signing client for one account on one endpoint."""

    def __init__(self, endpoint, account, key):
        url = urllib.parse.urlsplit(endpoint)
        if url.scheme != "http":
            raise SystemExit(f"azblob: only http endpoints are supported, got {endpoint}")
        self.host = url.hostname
        self.port = url.port or 80
        self.base_path = url.path.rstrip("/")
        self.account = account
        self.key = base64.b64decode(key)

    def request(self, method, path, query=None, headers=None, body=b""):
        """Sends one signed request; returns (status, headers dict with lowercase names, body)."""
        query = query or {}
        headers = dict(headers or {})
        headers["x-ms-date"] = formatdate(usegmt=True)
        headers["x-ms-version"] = API_VERSION
        if body or method in ("PUT", "POST"):
            headers["Content-Length"] = str(len(body))
        full_path = self.base_path + path
        headers["Authorization"] = f"SharedKey {self.account}:{self._sign(method, full_path, query, headers)}"
        target = urllib.parse.quote(full_path)
        if query:
            target += "?" + urllib.parse.urlencode(query)
        conn = http.client.HTTPConnection(self.host, self.port, timeout=10)
        try:
            conn.request(method, target, body=body, headers=headers)
            resp = conn.getresponse()
            data = resp.read()
            return resp.status, {k.lower(): v for k, v in resp.getheaders()}, data
        finally:
            conn.close()

    def _sign(self, method, full_path, query, headers):
        h = {k.lower(): v for k, v in headers.items()}
        length = h.get("content-length", "")
        standard = [
            method,
            h.get("content-encoding", ""),
            h.get("content-language", ""),
            "" if length == "0" else length,
            h.get("content-md5", ""),
            h.get("content-type", ""),
            "",  # Date: x-ms-date is used instead
            h.get("if-modified-since", ""),
            h.get("if-match", ""),
            h.get("if-none-match", ""),
            h.get("if-unmodified-since", ""),
            h.get("range", ""),
        ]
        canonical_headers = "".join(
            f"{k}:{h[k].strip()}\n" for k in sorted(k for k in h if k.startswith("x-ms-"))
        )
        # Path-style (emulator) URLs keep the account in the path, and the canonical resource
        # is "/" + account + the URL path, so the account appears twice.
        resource = f"/{self.account}{full_path}"
        for name in sorted(query):
            resource += f"\n{name.lower()}:{query[name]}"
        to_sign = "\n".join(standard) + "\n" + canonical_headers + resource
        digest = hmac.new(self.key, to_sign.encode("utf-8"), hashlib.sha256).digest()
        return base64.b64encode(digest).decode("ascii")


def fail(message):
    print(f"azblob: {message}", file=sys.stderr)
    sys.exit(1)


def ensure_container(client, container):
    status, _, body = client.request("PUT", f"/{container}", {"restype": "container"})
    if status == 201:
        return "created"
    if status == 409 and b"ContainerAlreadyExists" in body:
        return "exists"
    fail(f"create container {container}: HTTP {status}: {body[:300]!r}")


def smoke(client, container):
    ensure_container(client, container)
    blob = f"/{container}/pvenv-smoke/conditional-put-{os.getpid()}-{time.time_ns()}"
    put = {"x-ms-blob-type": "BlockBlob", "Content-Type": "application/octet-stream"}

    first, first_headers, body = client.request("PUT", blob, headers={**put, "If-None-Match": "*"}, body=b"first")
    if first != 201:
        fail(f"PUT If-None-Match: * on a new blob: HTTP {first}: {body[:300]!r}")
    second, _, second_body = client.request("PUT", blob, headers={**put, "If-None-Match": "*"}, body=b"second")
    if second not in (409, 412):
        fail(f"second PUT If-None-Match: * was not refused: HTTP {second}")
    code = second_body.split(b"<Code>")[1].split(b"</Code>")[0].decode() if b"<Code>" in second_body else "?"

    etag = first_headers.get("etag", "")
    if not etag:
        fail("PUT returned no ETag")
    matched, matched_headers, body = client.request("PUT", blob, headers={**put, "If-Match": etag}, body=b"third")
    if matched != 201:
        fail(f"PUT If-Match: <current ETag> was refused: HTTP {matched}: {body[:300]!r}")
    stale, _, _ = client.request("PUT", blob, headers={**put, "If-Match": etag}, body=b"fourth")
    if stale != 412:
        fail(f"PUT If-Match: <stale ETag> was not refused with 412: HTTP {stale}")

    status, _, content = client.request("GET", blob)
    if status != 200 or content != b"third":
        fail(f"GET after the conditional puts: HTTP {status}, content {content!r} (want 'third')")
    status, _, _ = client.request("DELETE", blob)
    if status != 202:
        fail(f"DELETE smoke blob: HTTP {status}")
    print(
        f"azurite smoke: container {container}; PUT If-None-Match: * -> {first}, again -> {second} {code}; "
        f"If-Match current ETag -> {matched}, stale ETag -> {stale}; content is the If-Match write"
    )


def main():
    try:
        client = Blob(os.environ["AZBLOB_ENDPOINT"], os.environ["AZBLOB_ACCOUNT"], os.environ["AZBLOB_KEY"])
        container = os.environ["AZBLOB_CONTAINER"]
    except KeyError as missing:
        fail(f"environment variable {missing} is not set")
    command = sys.argv[1] if len(sys.argv) > 1 else ""
    try:
        if command == "ensure-container":
            print(f"azurite: container {container} {ensure_container(client, container)}")
        elif command == "smoke":
            smoke(client, container)
        else:
            fail("usage: azblob.py ensure-container|smoke")
    except OSError as err:
        fail(f"request failed: {err}")


if __name__ == "__main__":
    main()
