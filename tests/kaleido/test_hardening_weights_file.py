"""The released `.pth` files are read with `weights_only=True`; a file that fails is one error naming
it, the pickled code is never run, and the message never suggests disabling the check."""

from __future__ import annotations

import os

import pytest
import torch

from kaleido_bench.kaleido.checkpoint import read_sat_state
from kaleido_bench.kaleido.errors import CheckpointUnreadableError
from kaleido_bench.kaleido.weights_file import load_torch_weights


class _Payload:
    def __init__(self, marker) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_unreadable_files_are_one_error_naming_them(tmp_path):
    (tmp_path / "text.pth").write_text("<html>not found</html>")
    (tmp_path / "empty.pth").write_bytes(b"")
    torch.save({"module": {"w": _Payload(tmp_path / "EXECUTED")}}, tmp_path / "evil.pth")
    for name in ("text.pth", "empty.pth", "evil.pth"):
        for mmap in (False, True):
            with pytest.raises(CheckpointUnreadableError) as info:
                load_torch_weights(tmp_path / name, mmap=mmap)
            assert str(tmp_path / name) in str(info.value) and "weights_only" not in str(info.value)
    with pytest.raises(CheckpointUnreadableError, match="pickled Python objects"):
        read_sat_state(tmp_path / "evil.pth")
    assert not (tmp_path / "EXECUTED").exists()


def test_a_good_file_loads_memory_mapped(tmp_path):
    torch.save({"module": {"w": torch.arange(4.0)}}, tmp_path / "ok.pt")
    assert torch.equal(read_sat_state(tmp_path / "ok.pt")["w"], torch.arange(4.0))
