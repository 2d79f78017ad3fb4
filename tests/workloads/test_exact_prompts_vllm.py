"""The engine stage's check of exact prompts: every zoo tokenizer's prompts of 8, 32, 128 and 480
tokens, counted by vLLM's own tokenizer code in the engine's venv (``vllm_count_prompts.py``),
with the context length a ``--max-model-len 1024`` server has. Token-id prompts are counted
and checked against the vocabulary the way the server checks them."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from harness.runfile.engine import TokenCounts
from tests.vllm_cpu import VllmCpu
from tests.workloads.tokenizer_zoo import build_zoo
from workloads.request_sets import load_tokenizer, synthetic_requests

pytestmark = [pytest.mark.engine, pytest.mark.slow]

LENGTHS = (8, 32, 128, 480)
#: Where no text is short enough (``bytes-only``: none under 5 tokens), the prompt goes as ids.
IDS_ONLY = ("bytes-only-specials", 3)
MAX_MODEL_LEN = 1024
MAX_TOKENS = 16
COUNTER = Path(__file__).with_name("vllm_count_prompts.py")


def test_vllm_counts_every_zoo_prompt_as_built(vllm_cpu: VllmCpu, tmp_path: Path) -> None:
    prompts: dict[str, list[dict[str, object]]] = {}
    expected: dict[str, list[int]] = {}
    forms: dict[str, set[str]] = {}
    for name, folder in build_zoo(tmp_path / "zoo").items():
        tokenizer = load_tokenizer(str(folder))
        entries: list[dict[str, object]] = []
        for tokens in LENGTHS:
            built = synthetic_requests(tokenizer, 2, TokenCounts("fixed", tokens), TokenCounts("fixed", MAX_TOKENS))
            for request in built.requests:
                prompt = request.prompt
                entries.append({"text": prompt} if isinstance(prompt, str) else {"token_ids": list(prompt or ())})
            forms[name] = forms.get(name, set()) | set(built.prompt_forms)
        expected[str(folder)] = [tokens for tokens in LENGTHS for _ in range(2)]
        if name == IDS_ONLY[0]:
            short = synthetic_requests(tokenizer, 1, TokenCounts("fixed", IDS_ONLY[1]), TokenCounts("fixed", 4))
            assert short.prompt_forms == ("token_ids",)
            entries.append({"token_ids": list(short.requests[0].prompt or ())})
            expected[str(folder)].append(IDS_ONLY[1])
        prompts[str(folder)] = entries
    spec = tmp_path / "prompts.json"
    spec.write_text(json.dumps({"max_model_len": MAX_MODEL_LEN, "max_tokens": MAX_TOKENS, "prompts": prompts}))
    done = subprocess.run([vllm_cpu.python, str(COUNTER), str(spec)], capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    counted = json.loads(done.stdout.strip().splitlines()[-1])
    assert counted == expected
    assert all(seen == {"text"} for seen in forms.values()), forms
