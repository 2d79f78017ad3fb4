"""vLLM, played for the laid-out instance images (tests/harness/targets/aws/amis.py).

Only what siliconbench touches of vLLM is played, as vLLM documents it:
- the OpenAI-compatible server is ``python -m vllm.entrypoints.openai.api_server --model M --host H
  --port P ...`` with ``GET /health`` (200 once serving), ``GET /version``, ``GET /v1/models`` and
  streaming ``POST /v1/completions`` (docs.vllm.ai, "OpenAI-Compatible Server"); the stream comes
  from siliconbench's scripted server (backends/engine/scripted.py), which sends no token ids, so
  the cell's correctness is recorded unchecked;
- Neuron support is a platform plugin named ``neuron`` in the ``vllm.platform_plugins`` entry-point
  group (docs.vllm.ai, "Plugin System"; vllm-project/vllm-neuron), which the image's venv carries as
  the ``vllm_neuron`` distribution's entry point (amis.py writes it);
- NxD Inference compiles before it serves and keeps what it compiled in ``NEURON_COMPILED_ARTIFACTS``
  (aws-neuron-sdk, libraries/nxd-inference/vllm/quickstart-vllm-offline-serving.rst): the stand-in
  waits ``STANDIN_COMPILE_S`` and writes ``model.pt`` there on a miss, nothing on a hit.
"""

__version__ = "0.0.0+siliconbench-standin"
