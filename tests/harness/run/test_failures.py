"""One-line failure messages: out-of-memory and device faults rewritten so the fix is visible."""

from __future__ import annotations

import pytest
import torch

from harness.run.cell import failed_cell
from harness.run.failures import describe_failure, describe_signal
from harness.runfile.records import CellConfig
from tests.harness.fault_workloads import CUDA_OOM_MESSAGE


def test_cuda_out_of_memory_names_the_request_the_free_memory_and_the_fix() -> None:
    kind, message = describe_failure(torch.cuda.OutOfMemoryError(CUDA_OOM_MESSAGE), batch_size=512)
    assert kind == "OutOfMemoryError"
    assert message == (
        "CUDA out of memory; tried to allocate 20.00 GiB; GPU 0 has a total capacity of 79.10 GiB of which "
        "3.12 GiB is free; try a smaller --batch-size than 512"
    )


def test_an_out_of_memory_text_without_details_still_gets_the_hint() -> None:
    kind, message = describe_failure(RuntimeError("CUDA out of memory."))
    assert kind == "OutOfMemoryError"
    assert message == "CUDA out of memory; try a smaller --batch-size"


def test_a_real_host_allocation_failure_is_reported_as_host_out_of_memory() -> None:
    with pytest.raises(RuntimeError) as caught:
        torch.empty(2**60, dtype=torch.uint8)
    kind, message = describe_failure(caught.value, batch_size=8)
    assert kind == "OutOfMemoryError"
    assert message == "host out of memory; tried to allocate 1.00 EiB; try a smaller --batch-size than 8"


def test_python_memory_error_is_host_out_of_memory() -> None:
    assert describe_failure(MemoryError(), batch_size=2)[1] == "host out of memory; try a smaller --batch-size than 2"


@pytest.mark.parametrize(
    ("text", "what"),
    [
        (
            "CUDA error: an illegal memory access was encountered\nCUDA kernel errors might be asynchronously "
            "reported at some other API call",
            "an illegal memory access was encountered",
        ),
        ("CUDA error: device-side assert triggered\nCompile with `TORCH_USE_CUDA_DSA`", "device-side assert triggered"),
        ("CUDA error: unspecified launch failure", "unspecified launch failure"),
    ],
)
def test_device_faults_say_the_context_is_lost(text: str, what: str) -> None:
    kind, message = describe_failure(RuntimeError(text))
    assert kind == "RuntimeError"
    assert message.startswith(f"CUDA device fault: {what}; ")
    assert "own process" in message and "\n" not in message


def test_other_errors_keep_their_first_line() -> None:
    assert describe_failure(ValueError("shapes differ\nmore detail")) == ("ValueError", "shapes differ")
    assert describe_failure(RuntimeError("CUDA error: invalid argument")) == (
        "RuntimeError",
        "CUDA error: invalid argument",
    )


def test_signal_hints() -> None:
    assert "out-of-memory killer" in describe_signal("SIGKILL")
    assert "native code" in describe_signal("SIGSEGV")
    assert describe_signal("SIGTERM") == ""


def test_failed_cells_carry_the_rewritten_message() -> None:
    config = CellConfig("mlp", "tiny", "cuda", "fp16", "eager", None, 4096)
    record = failed_cell(config, "prepare", torch.cuda.OutOfMemoryError(CUDA_OOM_MESSAGE), "2025-01-01T00:00:00Z")
    assert record.status == "failed"
    assert record.error.type == "OutOfMemoryError"
    assert record.error.phase == "prepare"
    assert record.error.message.endswith("try a smaller --batch-size than 4096")
