"""/api/docs/ works without the internet: Swagger UI comes from our own static
files (drf-spectacular-sidecar), never from a CDN."""

import re
from html.parser import HTMLParser
from pathlib import Path

from django.contrib.staticfiles import finders
from django.core.management import call_command

STATIC_PREFIX = "/static/"


class Assets(HTMLParser):
    """The URLs a page loads: script src, link href (stylesheet, icon), img src."""

    def __init__(self):
        super().__init__()
        self.urls = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag in ("script", "img") and attrs.get("src"):
            self.urls.append(attrs["src"])
        if tag == "link" and attrs.get("href"):
            self.urls.append(attrs["href"])


def page_assets(html: str) -> list[str]:
    parser = Assets()
    parser.feed(html)
    return parser.urls


def docs_page(client) -> str:
    response = client.get("/api/docs/")
    assert response.status_code == 200
    return response.content.decode()


def test_docs_page_names_no_outside_host(client):
    html = docs_page(client)

    hosts = set(re.findall(r"https?://([^/\"'\s]+)", html))
    assert hosts <= {"testserver"}, hosts


def test_docs_page_loads_swagger_ui_from_our_static_files(client):
    assets = page_assets(docs_page(client))

    assert any(url.endswith("swagger-ui-bundle.js") for url in assets), assets
    assert any(url.endswith("swagger-ui.css") for url in assets), assets
    for url in assets:
        assert url.startswith(STATIC_PREFIX), url
        assert finders.find(url.removeprefix(STATIC_PREFIX)), f"{url} is not among the static files"


def test_collected_docs_page_refers_to_files_collectstatic_wrote(client, settings, tmp_path):
    # What `make run` and the Dockerfile serve: whitenoise's manifest storage after collectstatic.
    settings.STATIC_ROOT = tmp_path
    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
    }
    call_command("collectstatic", interactive=False, verbosity=0)

    assets = page_assets(docs_page(client))

    assert len(assets) >= 3
    for url in assets:
        assert url.startswith(STATIC_PREFIX), url
        # Hashed names, so a new sidecar version is never served from a stale browser cache.
        assert re.search(r"\.[0-9a-f]{12}\.\w+$", url), url
        assert (Path(tmp_path) / url.removeprefix(STATIC_PREFIX)).is_file(), url
