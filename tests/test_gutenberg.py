"""POST /v1/corpora {"gutenberg_id"}: stripping, the size and time caps, offline, with a
stand-in for Gutenberg on 127.0.0.1 (TEXTGEN_GUTENBERG_URL points the server at it)."""

import dataclasses
import time

import pytest

from shared.text.gutenberg import strip_gutenberg
from tests.api_helpers import assert_problem
from tests.conftest import client_of
from tests.fake_gutenberg import BOOK


def test_strips_header_and_licence():
    assert strip_gutenberg(BOOK) == "Letter 1\n\nYou will rejoice to hear...\n"


def test_text_without_markers_is_kept():
    assert strip_gutenberg("just a text\n") == "just a text\n"


@pytest.fixture
def client(settings, gutenberg_url):
    from api import create_app

    app = create_app(dataclasses.replace(settings, gutenberg_url=gutenberg_url,
                                         max_upload_bytes=100 * 1024))
    return client_of(app)


def test_a_book_is_fetched_stripped_and_stored(client, services):
    response = client.post("/v1/corpora", json={"gutenberg_id": 84})
    assert response.status_code == 201, response.get_json()
    corpus = response.get_json()
    assert corpus["source"] == "gutenberg" and corpus["gutenberg_id"] == 84
    assert corpus["name"] == "gutenberg-84"
    assert services.artifacts.read_corpus(corpus["sha256"]) == \
        "Letter 1\n\nYou will rejoice to hear...\n"


def test_a_book_over_the_upload_limit_is_refused(client, services):
    assert_problem(client.post("/v1/corpora", json={"gutenberg_id": 2}), 422,
                   "corpus_rejected", field="gutenberg_id")
    assert services.corpora.page("alice").data == []


def test_a_slow_mirror_is_cut_off(client, monkeypatch):
    monkeypatch.setattr("shared.text.gutenberg.FETCH_TIMEOUT_S", 1.0)
    started = time.monotonic()
    assert_problem(client.post("/v1/corpora", json={"gutenberg_id": 3}), 503,
                   "service_unavailable")
    assert time.monotonic() - started < 3


def test_an_unknown_book_is_a_404(client):
    assert_problem(client.post("/v1/corpora", json={"gutenberg_id": 999}), 404, "not_found",
                   field="gutenberg_id")


def test_offline_is_a_503_that_says_what_to_do(settings):
    from api import create_app
    from shared.stack.runner import free_port

    app = create_app(dataclasses.replace(
        settings, gutenberg_url=f"http://127.0.0.1:{free_port()}/pg{{n}}.txt"))
    body = assert_problem(client_of(app).post("/v1/corpora", json={"gutenberg_id": 84}),
                          503, "service_unavailable")
    assert "upload" in body["detail"]
