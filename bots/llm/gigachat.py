"""Sber's GigaChat REST API.

Two calls: an OAuth token (POST to GIGACHAT_OAUTH_URL with the Basic auth key,
valid about 30 minutes) and POST {GIGACHAT_API_URL}/chat/completions with it.
GigaChat predates OpenAI's "tools": it takes `functions` and answers with one
`function_call` whose arguments are an object, and a function's result goes
back as a role "function" message whose content must be a JSON object. This
module translates the OpenAI-format messages and tools the assistant uses to
that and back.
"""

import hashlib
import json
import logging
import time
import uuid

import requests
from django.conf import settings
from django.core.cache import cache

from bots.llm.base import ChatResult, LLMError, LLMProvider, ToolCall

logger = logging.getLogger(__name__)

# A token is dropped this long before GigaChat says it expires, so it never dies mid-request.
TOKEN_MARGIN_S = 60
AUTH_STATUSES = {401, 403}


class GigaChatProvider(LLMProvider):
    name = "gigachat"

    def __init__(
        self,
        auth_key: str,
        scope: str = "GIGACHAT_API_PERS",
        oauth_url: str = "https://ngw.devices.sberbank.ru:9443/api/v2/oauth",
        api_url: str = "https://gigachat.devices.sberbank.ru/api/v1",
        ca_bundle: str = "",
        timeout: float = 30.0,
        retry_backoff: float = 0.5,
    ):
        if not auth_key:
            raise LLMError("GigaChat provider is not configured (GIGACHAT_AUTH_KEY)")
        self._auth_key = auth_key
        self._scope = scope
        self._oauth_url = oauth_url
        self._chat_url = api_url.rstrip("/") + "/chat/completions"
        self._timeout = timeout
        self._retry_backoff = retry_backoff
        self._session = requests.Session()
        # GigaChat's certificates are issued by the Russian Trusted Root CA, absent from most stores.
        self._session.verify = ca_bundle or True
        # Tokens are shared by every worker through the cache; the key name only
        # identifies the account, it must not reveal the auth key.
        digest = hashlib.sha256(f"{auth_key}\0{scope}".encode()).hexdigest()[:32]
        self._cache_key = f"llm:gigachat:token:{digest}"

    @classmethod
    def from_settings(cls) -> "GigaChatProvider":
        return cls(
            auth_key=settings.GIGACHAT_AUTH_KEY,
            scope=settings.GIGACHAT_SCOPE,
            oauth_url=settings.GIGACHAT_OAUTH_URL,
            api_url=settings.GIGACHAT_API_URL,
            ca_bundle=settings.GIGACHAT_CA_BUNDLE,
            timeout=settings.LLM_TIMEOUT_S,
        )

    def chat(self, *, messages, tools, model, temperature, timeout) -> ChatResult:
        body = {"model": model, "messages": gigachat_messages(messages), "temperature": temperature, "stream": False}
        if tools:
            body["functions"] = gigachat_functions(tools)
            body["function_call"] = "auto"
        token = self._token(timeout)
        response = self._post_chat(body, token, timeout)
        if response.status_code in AUTH_STATUSES:
            # The token was revoked or expired early: one fresh token, one more try.
            logger.info("GigaChat refused the token (HTTP %s), fetching a new one", response.status_code)
            cache.delete(self._cache_key)
            token = self._token(timeout)
            response = self._post_chat(body, token, timeout)
        if not response.ok:
            raise LLMError(self._scrub(_status_message("GigaChat", response), token))
        return _chat_result(response, model)

    def _post_chat(self, body: dict, token: str, timeout: float) -> requests.Response:
        headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
        return self._post(self._chat_url, timeout, json=body, headers=headers)

    def _token(self, timeout: float) -> str:
        cached = cache.get(self._cache_key)
        if cached and cached["expires_at"] / 1000 - TOKEN_MARGIN_S > time.time():
            return cached["access_token"]
        # The token call shares the caller's deadline but never waits longer than LLM_TIMEOUT_S.
        response = self._post(
            self._oauth_url,
            min(timeout, self._timeout),
            data={"scope": self._scope},
            headers={
                "Authorization": f"Basic {self._auth_key}",
                "RqUID": str(uuid.uuid4()),
                "Content-Type": "application/x-www-form-urlencoded",
                "Accept": "application/json",
            },
        )
        if not response.ok:
            raise LLMError(self._scrub(_status_message("GigaChat OAuth", response)))
        try:
            data = response.json()
            token, expires_at = data["access_token"], int(data["expires_at"])
        except (ValueError, KeyError, TypeError):
            raise LLMError("GigaChat OAuth sent a malformed answer") from None
        ttl = expires_at / 1000 - TOKEN_MARGIN_S - time.time()
        if ttl > 0:
            cache.set(self._cache_key, {"access_token": token, "expires_at": expires_at}, timeout=int(ttl))
        return token

    def _post(self, url: str, timeout: float, **kwargs) -> requests.Response:
        """POST with one retry on 429 / 5xx after a short pause."""
        response = self._send(url, timeout, **kwargs)
        if response.status_code == 429 or response.status_code >= 500:
            logger.info("GigaChat answered HTTP %s, retrying once", response.status_code)
            time.sleep(self._retry_backoff)
            response = self._send(url, timeout, **kwargs)
        return response

    def _send(self, url: str, timeout: float, **kwargs) -> requests.Response:
        try:
            return self._session.post(url, timeout=timeout, **kwargs)
        except requests.Timeout:
            raise LLMError("GigaChat timed out") from None
        except requests.RequestException as exc:
            # The class name is what helps; the text would only repeat the URL.
            raise LLMError(f"could not reach GigaChat: {type(exc).__name__}") from None

    def _scrub(self, message: str, token: str = "") -> str:
        # Error text comes from the server; never let it carry the key or a token into logs.
        for secret in (self._auth_key, token):
            if secret:
                message = message.replace(secret, "***")
        return message


def gigachat_functions(tools: list[dict]) -> list[dict]:
    """OpenAI function tools → GigaChat `functions`."""
    functions = []
    for tool in tools:
        function = tool.get("function", tool)
        functions.append(
            {
                "name": function["name"],
                "description": function.get("description", ""),
                # GigaChat wants a parameters object even for a function without arguments.
                "parameters": function.get("parameters") or {"type": "object", "properties": {}},
            }
        )
    return functions


def gigachat_messages(messages: list[dict]) -> list[dict]:
    """OpenAI chat messages → GigaChat's: tool calls become `function_call`s, tool results role "function"."""
    translated = []
    calls = {}  # tool_call_id → GigaChat function_call, to name the tool results
    announced = set()  # tool_call_ids already shown to GigaChat in an assistant message
    for message in messages:
        role = message.get("role")
        if role == "assistant" and message.get("tool_calls"):
            for call in message["tool_calls"]:
                calls[call.get("id")] = _function_call(call)
            first = message["tool_calls"][0]
            # GigaChat makes one call per assistant turn, so the message carries the first call.
            translated.append(
                {"role": "assistant", "content": message.get("content") or "", "function_call": calls[first.get("id")]}
            )
            announced.add(first.get("id"))
        elif role == "tool":
            call_id = message.get("tool_call_id")
            function_call = calls.get(call_id)
            if function_call and call_id not in announced:
                # A parallel call from another model: give it its own assistant turn so
                # every function result follows the call it answers.
                translated.append({"role": "assistant", "content": "", "function_call": function_call})
                announced.add(call_id)
            name = function_call["name"] if function_call else message.get("name", "")
            translated.append({"role": "function", "name": name, "content": _json_object(message.get("content"))})
        else:
            translated.append({"role": role, "content": message.get("content") or ""})
    return translated


def _function_call(call: dict) -> dict:
    function = call.get("function") or {}
    arguments = function.get("arguments") or {}
    if isinstance(arguments, str):
        try:
            arguments = json.loads(arguments)
        except ValueError:
            arguments = {}
    return {"name": function.get("name", ""), "arguments": arguments if isinstance(arguments, dict) else {}}


def _json_object(content) -> str:
    # GigaChat rejects a function result that is not a JSON object
    # ("invalid function result json string"); plain text is wrapped.
    if isinstance(content, str):
        try:
            value = json.loads(content)
        except ValueError:
            value = content
        else:
            if isinstance(value, dict):
                return content
    else:
        value = content
    if isinstance(value, dict):
        return json.dumps(value, ensure_ascii=False)
    return json.dumps({"result": value}, ensure_ascii=False)


def _status_message(service: str, response: requests.Response) -> str:
    detail = ""
    try:
        detail = str(response.json().get("message", ""))[:200]
    except (ValueError, AttributeError):
        pass
    return f"{service} answered HTTP {response.status_code}" + (f": {detail}" if detail else "")


def _chat_result(response: requests.Response, model: str) -> ChatResult:
    try:
        data = response.json()
        message = data["choices"][0]["message"]
        text = message.get("content") or ""
        tool_calls = []
        function_call = message.get("function_call")
        if function_call:
            tool_calls.append(_tool_call(function_call))
        usage = data.get("usage") or {}
        return ChatResult(
            text=text,
            tool_calls=tool_calls,
            model=data.get("model") or model,
            prompt_tokens=usage.get("prompt_tokens"),
            completion_tokens=usage.get("completion_tokens"),
        )
    except (ValueError, KeyError, IndexError, TypeError, AttributeError):
        raise LLMError("GigaChat sent a malformed answer") from None


def _tool_call(function_call: dict) -> ToolCall:
    arguments = function_call.get("arguments")
    if isinstance(arguments, dict):
        raw = json.dumps(arguments, ensure_ascii=False)
    else:
        # Documented as an object, but a string is read the OpenAI way rather than lost.
        raw = arguments if isinstance(arguments, str) else ""
        try:
            arguments = json.loads(raw) if raw else {}
        except ValueError:
            arguments = {}
        if not isinstance(arguments, dict):
            arguments = {}
    # GigaChat gives calls no id; the assistant needs one to pair the result with the call.
    return ToolCall(
        id=f"call_{uuid.uuid4().hex[:24]}", name=function_call["name"], arguments=arguments, raw_arguments=raw
    )
