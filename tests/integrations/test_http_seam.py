"""The shared HTTP seam's retry loop, narrowed for sends that may have reached the other side."""

import pytest

from integrations.http import ApiError, OutboundHttp


def seam(sleeps):
    return OutboundHttp("test", sleep=sleeps.append, backoff=1.0)


def failing(*errors):
    calls = []

    def attempt():
        calls.append(1)
        if len(calls) <= len(errors):
            raise errors[len(calls) - 1]
        return "ok"

    return attempt, calls


def test_a_narrowed_retry_tries_again_after_what_it_allows():
    attempt, calls = failing(ApiError("HTTP_429", status=429, retry_after=2))

    result = seam([]).retrying(attempt, what="send", retry_if=lambda exc: exc.status == 429)

    assert (result, len(calls)) == ("ok", 2)


def test_a_narrowed_retry_does_not_repeat_a_send_that_may_have_landed():
    attempt, calls = failing(ApiError("HTTP_502", status=502))

    with pytest.raises(ApiError):
        seam([]).retrying(attempt, what="send", retry_if=lambda exc: exc.status == 429)

    assert len(calls) == 1
