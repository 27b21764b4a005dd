import struct
import zipfile

import numpy as np
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


def test_npz_members_are_whole_with_fixed_headers_and_load_back(tmp_path):
    """np.savez streams its members with forced zip64 local headers, whose version and size fields differ
    between Python releases (3.11.2: version 20 and the sizes; 3.11.7: version 45, sizes 0xffffffff); members
    written whole have plain local headers, no extra field, a fixed date."""
    arrays = {"errors": np.random.default_rng(0).random((5, 7)), "betas": torch.linspace(0, 1, 5)}
    io.save_npz(arrays, tmp_path / "grid.npz")
    data = (tmp_path / "grid.npz").read_bytes()
    with zipfile.ZipFile(tmp_path / "grid.npz") as archive:
        members = archive.infolist()
    assert [m.filename for m in members] == ["errors.npy", "betas.npy"]
    for member in members:  # the local header: signature, version, flags, method, time, date, crc, sizes, lengths
        _, version, flags, _, _, _, _, packed, size, _, extra = struct.unpack_from("<IHHHHHIIIHH", data,
                                                                                 member.header_offset)
        assert (version, flags, extra, packed) == (20, 0, 0, member.file_size) and size == member.file_size
        assert member.date_time == (1980, 1, 1, 0, 0, 0)
    loaded = io.load_npz(tmp_path / "grid.npz")
    assert np.array_equal(loaded["errors"], arrays["errors"]) and np.array_equal(loaded["betas"], arrays["betas"])


def test_selected_level_files_are_byte_copies_and_replace_the_old_selection(tmp_path):
    for r in range(2):
        for level in range(3):
            io.save_tensors({"w": torch.full((3,), float(level + 10 * r))}, io.level_dir(tmp_path / "imp", r, level)
                            / "mask.pt")
    io.copy_level_files(tmp_path / "imp", tmp_path / "out", [(0, "mask.pt"), (2, "mask.pt")], 2)
    io.copy_level_files(tmp_path / "imp", tmp_path / "out", [(2, "mask.pt")], 1)  # a narrower selection
    files = sorted(p.relative_to(tmp_path / "out").as_posix() for p in (tmp_path / "out").rglob("*") if p.is_file())
    assert files == ["rep_0/level_02/mask.pt", "selection.json"]
    assert (tmp_path / "out/rep_0/level_02/mask.pt").read_bytes() == \
        (tmp_path / "imp/rep_0/level_02/mask.pt").read_bytes()
    assert io.load_json(tmp_path / "out/selection.json") == {"files": [[2, "mask.pt"]], "replicates": 1}
    with pytest.raises(FileNotFoundError, match="missing artifact .*rep_0/level_03/mask.pt: run the stage"):
        io.copy_level_files(tmp_path / "imp", tmp_path / "out", [(3, "mask.pt")], 2)
    assert (tmp_path / "out/rep_0/level_02/mask.pt").exists()  # a failed copy leaves the old selection whole
