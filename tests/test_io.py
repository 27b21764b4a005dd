import pytest
import torch

from lthlib.core import io


def test_equal_tensors_saved_to_different_paths_are_byte_identical(tmp_path):
    # DVC hashes bytes: equal results must give equal files, or every downstream stage re-runs.
    state = {"weight": torch.randn(3, 4), "mask": torch.rand(3, 4) > 0.5}
    io.save_tensors(state, tmp_path / "a.pt")
    io.save_tensors({name: tensor.clone() for name, tensor in state.items()}, tmp_path / "b" / "other_name.pt")
    assert (tmp_path / "a.pt").read_bytes() == (tmp_path / "b" / "other_name.pt").read_bytes()
    loaded = io.load_tensors(tmp_path / "a.pt")
    assert all(torch.equal(loaded[name], state[name]) for name in state)


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path):
    io.save_json({"finished": 1}, tmp_path / "run.json")
    with pytest.raises(RuntimeError), io.atomic_path(tmp_path / "run.json") as tmp:
        tmp.write_text("half")
        raise RuntimeError("killed")
    assert io.load_json(tmp_path / "run.json") == {"finished": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["run.json"]
