import pytest

from tests.bots.openai_server import OpenAIServer


@pytest.fixture
def openai_server():
    """A local OpenAI-compatible server: script replies with .reply_*(), read .requests."""
    server = OpenAIServer().start()
    yield server
    server.close()
