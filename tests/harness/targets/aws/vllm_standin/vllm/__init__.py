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
- NxD Inference (``VLLM_NEURON_FRAMEWORK=neuronx-distributed-inference``) compiles before it serves
  and keeps what it compiled in ``NEURON_COMPILED_ARTIFACTS`` (aws-neuron-sdk,
  libraries/nxd-inference/vllm/quickstart-vllm-offline-serving.rst; vllm-neuron 0.2.x
  ``neuronx_distributed_model_loader._get_compiled_model_path``): the stand-in waits
  ``STANDIN_COMPILE_S`` and writes ``model.pt`` there on a miss, nothing on a hit;
- vllm-neuron on TorchNeuron (the ``neuron`` platform plugin without that framework: Trn2/Trn3)
  compiles during warm-up, before it serves, into its local compile cache
  ``$VLLM_CACHE_ROOT/neuron/compile_cache/<32-hex key>/``, ``VLLM_CACHE_ROOT`` defaulting to
  ``~/.cache/vllm``, and loads an entry that is there instead of compiling; it does not read
  ``NEURON_COMPILED_ARTIFACTS`` for that cache (aws-neuron-sdk
  vllm-neuron/docs/design/compilation/compilation_cache.md, date_updated 2026-06-22, and
  ``vllm_neuron.envs.get_neuron_compile_cache_dir``; read 2026-12-03). The stand-in keys its one
  entry on the model and the arguments, as the real key covers the graph and its shapes.
"""

__version__ = "0.0.0+siliconbench-standin"
