"""The LLM providers against their HTTP APIs: the OpenAI client against a local
OpenAI-compatible server, GigaChat's requests stubbed with `responses`."""

import json
import time
from urllib.parse import parse_qs

import pytest
import responses
from django.core.cache import cache

from bots.llm import LLMError, get_provider

API_KEY = "sk-test-secret-0123456789"
MESSAGES = [
    {"role": "system", "content": "Ты продавец-консультант."},
    {"role": "user", "content": "Есть креветки?"},
]
SEARCH_TOOL = {
    "type": "function",
    "function": {
        "name": "search_products",
        "description": "Найти товары в каталоге",
        "parameters": {"type": "object", "properties": {"query": {"type": "string"}}, "required": ["query"]},
    },
}


def ask(provider, *, tools=(), messages=MESSAGES, timeout=5.0):
    return provider.chat(
        messages=list(messages), tools=list(tools), model="test-model", temperature=0.3, timeout=timeout
    )


# OpenAI-compatible


@pytest.fixture
def openai_provider(settings, openai_server):
    settings.OPENAI_API_KEY = API_KEY
    settings.OPENAI_BASE_URL = openai_server.url
    settings.LLM_TIMEOUT_S = 5.0
    return get_provider("openai")


def test_openai_text_answer_with_token_usage(openai_provider, openai_server):
    openai_server.reply_text("Да, есть королевские креветки.", prompt_tokens=40, completion_tokens=9)

    result = ask(openai_provider)

    assert result.text == "Да, есть королевские креветки."
    assert result.tool_calls == []
    assert (result.prompt_tokens, result.completion_tokens) == (40, 9)


def test_openai_request_carries_messages_model_and_tools(openai_provider, openai_server):
    openai_server.reply_text("Ищу.")

    ask(openai_provider, tools=[SEARCH_TOOL])

    body = openai_server.requests[0]["body"]
    assert body["messages"] == MESSAGES
    assert body["model"] == "test-model"
    assert body["tools"] == [SEARCH_TOOL]


def test_openai_request_without_tools_omits_them(openai_provider, openai_server):
    openai_server.reply_text("Здравствуйте!")

    ask(openai_provider, tools=[])

    assert "tools" not in openai_server.requests[0]["body"]


def test_openai_tool_call_is_decoded(openai_provider, openai_server):
    openai_server.reply_tool_call("search_products", {"query": "креветки"}, call_id="call_1")

    result = ask(openai_provider, tools=[SEARCH_TOOL])

    [call] = result.tool_calls
    assert (call.id, call.name, call.arguments) == ("call_1", "search_products", {"query": "креветки"})


def test_openai_unreadable_tool_arguments_give_empty_dict_and_keep_raw(openai_provider, openai_server):
    openai_server.reply_tool_call("search_products", '{"query": "креве')

    [call] = ask(openai_provider, tools=[SEARCH_TOOL]).tool_calls

    assert call.arguments == {}
    assert call.raw_arguments == '{"query": "креве'


def test_openai_server_error_twice_is_an_llm_error_after_one_retry(openai_provider, openai_server):
    openai_server.reply_error(500)
    openai_server.reply_error(500)

    with pytest.raises(LLMError, match="HTTP 500"):
        ask(openai_provider)

    assert len(openai_server.requests) == 2


def test_openai_server_error_then_success_is_retried(openai_provider, openai_server):
    openai_server.reply_error(500)
    openai_server.reply_text("Со второго раза.")

    assert ask(openai_provider).text == "Со второго раза."
    assert len(openai_server.requests) == 2


def test_openai_rate_limit_then_success_is_retried(openai_provider, openai_server):
    openai_server.reply_error(429, code="rate_limit_exceeded")
    openai_server.reply_text("Дождались.")

    assert ask(openai_provider).text == "Дождались."
    assert len(openai_server.requests) == 2


def test_openai_timeout_is_an_llm_error(settings, openai_provider, openai_server):
    settings.LLM_TIMEOUT_S = 0.5
    provider = get_provider("openai")
    openai_server.reply_delay(5)
    openai_server.reply_delay(5)  # the client's one retry times out too

    started = time.monotonic()
    with pytest.raises(LLMError, match="timed out"):
        ask(provider, timeout=0.5)

    assert time.monotonic() - started < 4  # two 0.5 s attempts and the backoff, not the 5 s answer


def test_openai_malformed_answer_is_an_llm_error(openai_provider, openai_server):
    openai_server.reply_json({"id": "x", "object": "chat.completion", "choices": []})

    with pytest.raises(LLMError, match="malformed"):
        ask(openai_provider)


def test_openai_key_is_sent_as_bearer(openai_provider, openai_server):
    openai_server.reply_text("Ок.")

    ask(openai_provider)

    assert openai_server.requests[0]["headers"]["authorization"] == f"Bearer {API_KEY}"


def test_openai_error_never_shows_the_key(openai_provider, openai_server):
    # Servers do quote the key they refused.
    openai_server.reply_error(401, f"Incorrect API key provided: {API_KEY}", code="invalid_api_key")

    with pytest.raises(LLMError) as excinfo:
        ask(openai_provider)

    assert "HTTP 401" in str(excinfo.value)
    assert API_KEY not in str(excinfo.value)
    assert len(openai_server.requests) == 1  # a refused key is not retried


# GigaChat

AUTH_KEY = "Z2lnYS1jbGllbnQ6Z2lnYS1zZWNyZXQ="
OAUTH_URL = "https://oauth.gigachat.test/api/v2/oauth"
API_URL = "https://api.gigachat.test/api/v1"
CHAT_URL = f"{API_URL}/chat/completions"


@pytest.fixture
def gigachat(settings):
    settings.GIGACHAT_AUTH_KEY = AUTH_KEY
    settings.GIGACHAT_SCOPE = "GIGACHAT_API_PERS"
    settings.GIGACHAT_OAUTH_URL = OAUTH_URL
    settings.GIGACHAT_API_URL = API_URL
    settings.GIGACHAT_CA_BUNDLE = ""
    # The token lives in the shared cache (Redis in CI): no test may see another's.
    cache.clear()
    yield get_provider("gigachat")
    cache.clear()


@pytest.fixture
def api():
    with responses.RequestsMock() as mock:
        yield mock


def token_reply(api, value="token-1", lifetime_s=1800):
    api.post(OAUTH_URL, json={"access_token": value, "expires_at": int((time.time() + lifetime_s) * 1000)})


def chat_reply(api, message=None, status=200):
    message = message or {"role": "assistant", "content": "Есть, 1200 ₽ за кг."}
    body = {
        "choices": [{"message": message, "index": 0, "finish_reason": "stop"}],
        "created": int(time.time()),
        "model": "GigaChat:1.0.26.20",
        "object": "chat.completion",
        "usage": {"prompt_tokens": 30, "completion_tokens": 8, "total_tokens": 38},
    }
    api.post(CHAT_URL, json=body if status == 200 else {"status": status, "message": "scripted error"}, status=status)


def calls_to(api, url):
    return [call for call in api.calls if call.request.url == url]


def test_gigachat_fetches_a_token_then_chats_with_it(gigachat, api):
    token_reply(api, "token-1")
    chat_reply(api)

    result = ask(gigachat)

    assert result.text == "Есть, 1200 ₽ за кг."
    assert (result.prompt_tokens, result.completion_tokens) == (30, 8)
    [token_call, chat_call] = api.calls
    assert token_call.request.url == OAUTH_URL
    assert token_call.request.headers["Authorization"] == f"Basic {AUTH_KEY}"
    assert token_call.request.headers["RqUID"]
    assert parse_qs(token_call.request.body) == {"scope": ["GIGACHAT_API_PERS"]}
    assert chat_call.request.headers["Authorization"] == "Bearer token-1"
    assert json.loads(chat_call.request.body)["messages"] == MESSAGES


def test_gigachat_reuses_the_cached_token(gigachat, api):
    token_reply(api, "token-1")
    chat_reply(api)
    chat_reply(api)

    ask(gigachat)
    ask(get_provider("gigachat"))  # another worker shares it through the cache

    assert len(calls_to(api, OAUTH_URL)) == 1
    assert [c.request.headers["Authorization"] for c in calls_to(api, CHAT_URL)] == ["Bearer token-1"] * 2


def test_gigachat_token_about_to_expire_is_fetched_again(gigachat, api):
    token_reply(api, "token-1", lifetime_s=30)  # inside the 60 s safety margin
    token_reply(api, "token-2")
    chat_reply(api)
    chat_reply(api)

    ask(gigachat)
    ask(gigachat)

    assert [c.request.headers["Authorization"] for c in calls_to(api, CHAT_URL)] == ["Bearer token-1", "Bearer token-2"]


def test_gigachat_refused_token_is_refreshed_and_the_call_retried(gigachat, api):
    token_reply(api, "token-1")
    token_reply(api, "token-2")
    chat_reply(api, status=401)
    chat_reply(api)

    assert ask(gigachat).text == "Есть, 1200 ₽ за кг."
    assert [c.request.headers["Authorization"] for c in calls_to(api, CHAT_URL)] == ["Bearer token-1", "Bearer token-2"]


def test_gigachat_refused_twice_is_an_llm_error(gigachat, api):
    token_reply(api, "token-1")
    token_reply(api, "token-2")
    chat_reply(api, status=401)
    chat_reply(api, status=401)

    with pytest.raises(LLMError, match="HTTP 401") as excinfo:
        ask(gigachat)

    assert len(calls_to(api, CHAT_URL)) == 2
    assert AUTH_KEY not in str(excinfo.value)
    assert "token-" not in str(excinfo.value)


def test_gigachat_server_error_then_success_is_retried(gigachat, api):
    token_reply(api)
    chat_reply(api, status=503)
    chat_reply(api)

    assert ask(gigachat).text == "Есть, 1200 ₽ за кг."
    assert len(calls_to(api, CHAT_URL)) == 2


def test_gigachat_refused_auth_key_is_an_llm_error_without_the_key(gigachat, api):
    api.post(
        OAUTH_URL, json={"code": 6, "message": f"Can't decode 'Authorization' header: Basic {AUTH_KEY}"}, status=401
    )

    with pytest.raises(LLMError, match="OAuth answered HTTP 401") as excinfo:
        ask(gigachat)

    assert AUTH_KEY not in str(excinfo.value)
    assert not calls_to(api, CHAT_URL)


def test_gigachat_gets_tools_as_functions_and_its_function_call_becomes_a_tool_call(gigachat, api):
    token_reply(api)
    chat_reply(
        api,
        {
            "role": "assistant",
            "content": "",
            "function_call": {"name": "search_products", "arguments": {"query": "креветки"}},
        },
    )

    result = ask(gigachat, tools=[SEARCH_TOOL])

    body = json.loads(calls_to(api, CHAT_URL)[0].request.body)
    assert "tools" not in body
    assert body["functions"] == [SEARCH_TOOL["function"]]
    [call] = result.tool_calls
    assert (call.name, call.arguments) == ("search_products", {"query": "креветки"})
    assert call.id
    assert json.loads(call.raw_arguments) == {"query": "креветки"}


def test_gigachat_tool_result_is_sent_as_a_function_message(gigachat, api):
    token_reply(api)
    chat_reply(api)
    history = [
        *MESSAGES,
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "call_7",
                    "type": "function",
                    "function": {"name": "search_products", "arguments": '{"query": "креветки"}'},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "call_7", "content": '{"items": [{"name": "Креветки тигровые"}]}'},
    ]

    ask(gigachat, tools=[SEARCH_TOOL], messages=history)

    sent = json.loads(calls_to(api, CHAT_URL)[0].request.body)["messages"]
    assert sent[2] == {
        "role": "assistant",
        "content": "",
        "function_call": {"name": "search_products", "arguments": {"query": "креветки"}},
    }
    assert sent[3] == {
        "role": "function",
        "name": "search_products",
        "content": '{"items": [{"name": "Креветки тигровые"}]}',
    }


def test_gigachat_plain_text_tool_result_is_wrapped_in_a_json_object(gigachat, api):
    token_reply(api)
    chat_reply(api)
    history = [
        *MESSAGES,
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {"id": "c1", "type": "function", "function": {"name": "search_products", "arguments": "{}"}}
            ],
        },
        {"role": "tool", "tool_call_id": "c1", "content": "ничего не найдено"},
    ]

    ask(gigachat, tools=[SEARCH_TOOL], messages=history)

    sent = json.loads(calls_to(api, CHAT_URL)[0].request.body)["messages"]
    assert json.loads(sent[3]["content"]) == {"result": "ничего не найдено"}


# «Проверить подключение» (bots.llm.check): one short call, secrets never shown.


def test_check_connection_asks_gigachat_one_short_question(gigachat, api):
    from bots.llm.check import CHECK_PROMPT, check_connection

    token_reply(api, "token-check")
    chat_reply(api, {"role": "assistant", "content": "Работает"})

    result = check_connection("gigachat", model="GigaChat", temperature=0.3)

    assert (result.ok, result.text, result.model) == (True, "Работает", "GigaChat:1.0.26.20")
    [chat] = calls_to(api, CHAT_URL)
    body = json.loads(chat.request.body)
    assert body["messages"] == [{"role": "user", "content": CHECK_PROMPT}]
    assert "functions" not in body


def test_check_connection_error_never_shows_the_gigachat_key(settings, gigachat, api):
    from bots.llm.check import check_connection

    api.post(OAUTH_URL, json={"code": 7, "message": f"bad key {AUTH_KEY}"}, status=401)

    result = check_connection("gigachat", model="GigaChat", temperature=0.3)

    assert not result.ok
    assert "GigaChat OAuth answered HTTP 401" in result.text
    assert AUTH_KEY not in result.text


def test_check_connection_to_an_unconfigured_provider_says_what_is_missing(settings):
    from bots.llm.check import check_connection

    settings.OPENAI_API_KEY = ""

    result = check_connection("openai", model="gpt-4o-mini", temperature=0.3)

    assert (result.ok, result.text) == (False, "OpenAI-compatible provider is not configured (OPENAI_API_KEY)")
