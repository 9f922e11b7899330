"""Inspect model provider `tinker/`: a Tinker checkpoint or base model through Tinker's OpenAI-compatible
endpoint, for organisms trained by the Tinker backend (`finetune/backends/tinker_api.py`).

    inspect eval evals/risk.py@risk_behavior --model tinker/tinker://<run>/sampler_weights/selfaware-final

Why a provider rather than Inspect's generic `openai-api/tinker/...`: that one takes its URL from
`TINKER_BASE_URL`, which the tinker SDK reads as the *training* service's address (another URL), so one
variable cannot serve both. This one reads the key from `TINKER_API_KEY` and the URL from `-M base_url=...`,
`$TINKER_OAI_BASE_URL` or Tinker's production endpoint, in that order. Requests and answers are those of any
OpenAI-compatible chat endpoint; whether it returns logprobs is the endpoint's business (the suite's
answer-distribution solver probes once and falls back to sampling, recording which it used).
"""

from __future__ import annotations

import os
from typing import Any

from inspect_ai.model import GenerateConfig, ModelAPI, modelapi

DEFAULT_BASE_URL = "https://tinker.thinkingmachines.dev/services/tinker-prod/oai/api/v1"
BASE_URL_ENV = "TINKER_OAI_BASE_URL"
API_KEY_ENV = "TINKER_API_KEY"


def tinker_base_url(base_url: str | None = None) -> str:
    return base_url or os.environ.get(BASE_URL_ENV) or DEFAULT_BASE_URL


@modelapi(name="tinker")
def tinker() -> type[ModelAPI]:
    # Imported when a tinker/ model is first made, not when Inspect loads the suite's entry point.
    from inspect_ai.model._providers.openai_compatible import OpenAICompatibleAPI

    class TinkerAPI(OpenAICompatibleAPI):
        def __init__(self, model_name: str, base_url: str | None = None, api_key: str | None = None,
                     config: GenerateConfig | None = None, **model_args: Any) -> None:
            super().__init__(model_name=model_name, base_url=tinker_base_url(base_url), api_key=api_key,
                             config=config or GenerateConfig(), service="tinker", api_key_var=API_KEY_ENV,
                             **model_args)

    return TinkerAPI
