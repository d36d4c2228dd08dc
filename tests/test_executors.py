"""The executor interface: the local default, and the Ray executor's message when Ray is missing."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from eureka.errors import ConfigError
from eureka.training.executors import LocalExecutor, RayExecutor, make_executor
from eureka.types import SolveConfig


def test_local_is_the_default() -> None:
    assert isinstance(make_executor(SolveConfig(task="cartpole", model="m")), LocalExecutor)


def test_ray_missing_is_one_clear_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # as if it were not installed
    with pytest.raises(ConfigError) as err:
        RayExecutor("127.0.0.1:1")
    assert str(err.value) == (
        "--executor ray needs Ray: pip install 'eureka-rewards[ray]' (and a cluster to connect to)"
    )


@pytest.mark.parametrize("has_filter", [True, False], ids=["data-filter", "python-3.11.2"])
def test_job_archives_unpack_files_only_inside_their_folder(
    has_filter: bool, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Python 3.11.2 (Debian 12's) has no extractall(filter=): every Ray job crashed there with a
    TypeError; the same rule is checked by hand where the filter is missing."""
    import io
    import tarfile

    from eureka.training.executors import _pack, _unpack

    if not has_filter:
        monkeypatch.delattr(tarfile, "data_filter", raising=False)
    source = tmp_path / "src"
    (source / "sub").mkdir(parents=True)
    (source / "sub" / "metrics.json").write_text("{}")
    _unpack(_pack(source), tmp_path / "out")
    assert (tmp_path / "out" / "sub" / "metrics.json").read_text() == "{}"

    def archive(member: tarfile.TarInfo) -> bytes:
        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
            tar.addfile(member, io.BytesIO(b"x") if member.isfile() else None)
        return buffer.getvalue()

    outside = tarfile.TarInfo("../escaped.txt")
    outside.size = 1
    link = tarfile.TarInfo("link")
    link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
    for bad in (outside, link):
        with pytest.raises(tarfile.TarError):
            _unpack(archive(bad), tmp_path / "bad")
    assert not (tmp_path / "escaped.txt").exists() and not (tmp_path / "bad" / "link").exists()
