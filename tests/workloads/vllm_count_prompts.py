"""Count prompts the way vLLM's completions endpoint does, with vLLM's own code (run by the engine
venv's python: ``python vllm_count_prompts.py PROMPTS.json``; prints one JSON object).

The input maps each tokenizer folder to its prompts (``{"text": ...}`` or ``{"token_ids": [...]}``)
and the model length to check against. For each prompt this does what vLLM 0.32's renderer does
with a completions request (``vllm/renderers/base.py``, ``_tokenize_singleton_prompt``): load the
tokenizer with ``vllm.tokenizers.get_tokenizer`` (the loader the server uses), build the request's
``TokenizeParams`` the way ``CompletionRequest.build_tok_params`` does (``add_special_tokens``
true, the API's default; ``max_total_tokens`` the model length), apply its pre-tokenization
checks, encode with ``get_encode_kwargs()``, and apply its post-tokenization checks (the context
length). Token-id prompts skip the encode, as the server does, and are checked the same way and
against the vocabulary. The output maps each folder to the counts, or to vLLM's error.
"""

from __future__ import annotations

import json
import sys
from typing import Any


def count(folder: str, prompts: list[dict[str, Any]], max_model_len: int, max_tokens: int) -> list[Any]:
    from vllm.renderers.params import TokenizeParams
    from vllm.tokenizers import get_tokenizer

    tokenizer = get_tokenizer(folder)
    params = TokenizeParams(
        max_total_tokens=max_model_len,
        max_output_tokens=max_tokens,
        add_special_tokens=True,
        max_total_tokens_param="max_model_len",
        max_output_tokens_param="max_tokens",
    )
    counts: list[Any] = []
    for prompt in prompts:
        try:
            if "token_ids" in prompt:
                ids = list(prompt["token_ids"])
                if max(ids) > tokenizer.max_token_id or min(ids) < 0:
                    raise ValueError(f"token id out of vocabulary (max {tokenizer.max_token_id})")
            else:
                text = params.apply_pre_tokenization(tokenizer, {"prompt": prompt["text"]})["prompt"]
                ids = tokenizer(text, **params.get_encode_kwargs())["input_ids"]
            checked = params.apply_post_tokenization(tokenizer, {"prompt_token_ids": ids})
            counts.append(len(checked["prompt_token_ids"]))
        except Exception as exc:  # vLLM's validation errors: reported per prompt, not raised
            counts.append(f"{type(exc).__name__}: {exc}")
    return counts


def main() -> None:
    spec = json.loads(open(sys.argv[1], encoding="utf-8").read())
    out = {
        folder: count(folder, prompts, spec["max_model_len"], spec["max_tokens"])
        for folder, prompts in spec["prompts"].items()
    }
    print(json.dumps(out))


if __name__ == "__main__":
    main()
