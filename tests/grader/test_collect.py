"""Finding submissions in the layouts instructors hand us."""

from __future__ import annotations

import os
import socket
import stat
import struct
import zipfile
from pathlib import Path

import nbformat
import pytest

from grader import collect as collect_module
from grader import notebook as nbu
from grader.collect import collect
from grader.errors import CloudlabsError, SubmissionError
from tests import factories as f


def test_nbgrader_layout(tmp_path):
    for student in ("alice", "bob"):
        f.write(f.minilab(), tmp_path / student / "minilab" / "minilab.ipynb")
    found = collect(tmp_path, lab="minilab")
    assert [(s.student, s.path.name) for s in found] == [
        ("alice", "minilab.ipynb"),
        ("bob", "minilab.ipynb"),
    ]


def test_classroom_folder_strips_the_lab_name(tmp_path):
    f.write(f.minilab(), tmp_path / "minilab-carol.ipynb")
    f.write(f.minilab(), tmp_path / "dave.ipynb")
    assert [s.student for s in collect(tmp_path, lab="minilab")] == ["carol", "dave"]


def test_invalid_student_id_is_reported_not_graded(tmp_path):
    f.write(f.minilab(), tmp_path / "rm -rf $HOME.ipynb")
    (submission,) = collect(tmp_path, lab="minilab")
    assert submission.path is None and "valid student id" in submission.problem


def test_folder_without_notebook_is_reported(tmp_path):
    (tmp_path / "erin").mkdir()
    (submission,) = collect(tmp_path, lab="minilab")
    assert submission.student == "erin" and "no notebook" in submission.problem


def test_zip_is_unpacked_without_path_traversal(tmp_path):
    archive = tmp_path / "class.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("submissions/frank.ipynb", nbformat.writes(f.minilab()))
        zf.writestr("submissions/gina.ipynb", nbformat.writes(f.minilab()))
        zf.writestr("../escape.ipynb", "{}")
    found = collect(archive, lab="minilab", unpack_dir=tmp_path / "unpacked")
    assert [s.student for s in found] == ["frank", "gina"]
    assert not (tmp_path / "escape.ipynb").exists()


# -- hostile trees: links and special files are refused, never followed -----------------------


def _class(tmp_path, *students):
    for student in students:
        f.write(f.minilab(), tmp_path / f"{student}.ipynb")
    return tmp_path


def _by_student(found):
    return {s.student: s for s in found}


def test_links_and_special_files_are_refused_and_the_class_collected(tmp_path):
    solutions = tmp_path / "solutions" / "minilab"
    f.write(f.minilab(), solutions / "minilab.ipynb")  # what a link would steal
    root = _class(tmp_path / "class", "alice")
    (root / "bob.ipynb").symlink_to(solutions / "minilab.ipynb")  # a link named like a notebook
    (root / "carol.ipynb").symlink_to("/dev/zero")
    os.mkfifo(root / "dave.ipynb")
    (root / "erin").symlink_to(solutions, target_is_directory=True)  # a linked folder
    nested = root / "frank" / "minilab"
    nested.mkdir(parents=True)
    (nested / "minilab.ipynb").symlink_to("../../../solutions/minilab/minilab.ipynb")
    deep = root / "gina" / "minilab"
    f.write(f.minilab(), deep / "minilab.ipynb")
    (deep / "data" / "more").mkdir(parents=True)
    (deep / "data" / "more" / "secrets").symlink_to(tmp_path / "solutions", True)
    f.write(f.minilab(), root / "hank" / "minilab.ipynb")
    os.mkfifo(root / "hank" / "pipe")

    found = _by_student(collect(root, lab="minilab"))
    assert found["alice"].path == root / "alice.ipynb" and not found["alice"].problem
    reasons = {
        "bob": "bob.ipynb is a symbolic link",
        "carol": "carol.ipynb is a symbolic link",
        "dave": "dave.ipynb is a named pipe (FIFO)",
        "erin": "erin is a symbolic link",
        "frank": "frank/minilab/minilab.ipynb is a symbolic link",
        "gina": "gina/minilab/data/more/secrets is a symbolic link",
        "hank": "hank/pipe is a named pipe (FIFO)",
    }
    assert set(found) == {"alice", *reasons}
    for student, reason in reasons.items():
        assert found[student].path is None, student
        assert reason in found[student].problem, (student, found[student].problem)
        assert "plain files" in found[student].problem


def test_a_socket_is_refused(tmp_path):
    root = _class(tmp_path / "c", "alice")
    path = root / "ivy.ipynb"
    if len(str(path)) > 100:
        pytest.skip("the temporary path is too long for a unix socket")
    with socket.socket(socket.AF_UNIX) as server:
        server.bind(str(path))
        found = _by_student(collect(root, lab="minilab"))
    assert "ivy.ipynb is a socket" in found["ivy"].problem
    assert not found["alice"].problem


def test_a_source_given_as_a_link_or_special_file_is_refused(tmp_path):
    real = _class(tmp_path / "class", "alice")
    (tmp_path / "link").symlink_to(real, target_is_directory=True)
    with pytest.raises(CloudlabsError, match="is a symbolic link"):
        collect(tmp_path / "link", lab="minilab")
    (tmp_path / "one.ipynb").symlink_to(real / "alice.ipynb")
    with pytest.raises(CloudlabsError, match="is a symbolic link"):
        collect(tmp_path / "one.ipynb", lab="minilab")
    os.mkfifo(tmp_path / "fifo")
    with pytest.raises(CloudlabsError, match="named pipe"):
        collect(tmp_path / "fifo", lab="minilab")


@pytest.mark.parametrize("where", ["link", "fifo", "device", "folder"])
def test_reading_a_notebook_never_follows_links_nor_blocks(tmp_path, where):
    real = tmp_path / "real.ipynb"
    f.write(f.minilab(), real)
    path = tmp_path / "x.ipynb"
    if where == "link":
        path.symlink_to(real)
    elif where == "fifo":
        os.mkfifo(path)  # opening it for reading would block without O_NONBLOCK
    elif where == "device":
        path = Path("/dev/zero")  # endless: a stat-then-read check would never end
    else:
        path.mkdir()
    with pytest.raises(SubmissionError, match=r"symbolic link|not a regular file"):
        nbu.read(path)


def test_size_is_checked_on_what_is_read(tmp_path, monkeypatch):
    monkeypatch.setattr(nbu, "MAX_NOTEBOOK_BYTES", 1000)
    path = tmp_path / "big.ipynb"
    path.write_bytes(b" " * 1001)
    with pytest.raises(SubmissionError, match="larger than 1,000 bytes"):
        nbu.read(path)
    path.write_bytes(b" " * 990 + b"{}")  # at the limit: read, and then not a notebook
    with pytest.raises(SubmissionError, match="not a Jupyter notebook"):
        nbu.read(path)


def _link_entry(name: str) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name)
    info.create_system = 3
    info.external_attr = (stat.S_IFLNK | 0o777) << 16
    return info


def test_zip_links_and_special_entries_are_refused(tmp_path):
    archive = tmp_path / "class.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("submissions/frank.ipynb", nbformat.writes(f.minilab()))
        zf.writestr(_link_entry("submissions/gina.ipynb"), "../../solutions/minilab/minilab.ipynb")
        zf.writestr(_link_entry("submissions/hank/minilab/minilab.ipynb"), "/dev/zero")
        zf.writestr("submissions/ivy/minilab/minilab.ipynb", nbformat.writes(f.minilab()))
        zf.writestr(_link_entry("submissions/ivy/minilab/data"), "/etc")
        fifo = zipfile.ZipInfo("submissions/jack.ipynb")
        fifo.create_system = 3
        fifo.external_attr = (stat.S_IFIFO | 0o644) << 16
        zf.writestr(fifo, "")
    unpacked = tmp_path / "unpacked"
    found = _by_student(collect(archive, lab="minilab", unpack_dir=unpacked))
    assert found["frank"].path is not None and not found["frank"].problem
    assert "gina.ipynb is a symbolic link" in found["gina"].problem
    assert "hank/minilab/minilab.ipynb is a symbolic link" in found["hank"].problem
    assert "ivy/minilab/data is a symbolic link" in found["ivy"].problem
    assert "jack.ipynb is a named pipe" in found["jack"].problem
    assert all(s.path is None for n, s in found.items() if n != "frank")
    assert not [p for p in unpacked.rglob("*") if p.is_symlink()]
    assert not (unpacked / "submissions" / "jack.ipynb").exists()


def _lying_zip(path: Path, size: int, declared: int) -> None:
    """A zip whose entry ``class/bomb.ipynb`` holds ``size`` bytes but declares ``declared``."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("class/bomb.ipynb", b"\0" * size)
        zf.writestr("class/ok.ipynb", nbformat.writes(f.minilab()))
    data = bytearray(path.read_bytes())
    for signature, offset in ((b"PK\x01\x02", 24), (b"PK\x03\x04", 22)):
        at = data.find(signature)  # the first entry is the bomb, in both places
        struct.pack_into("<I", data, at + offset, declared)
    path.write_bytes(bytes(data))


def test_zip_bomb_writes_no_more_than_it_declares(tmp_path):
    archive = tmp_path / "bomb.zip"
    _lying_zip(archive, size=50 * 2**20, declared=100)
    unpacked = tmp_path / "unpacked"
    found = _by_student(collect(archive, lab="minilab", unpack_dir=unpacked))
    assert "bomb.ipynb cannot be unpacked" in found["bomb"].problem and not found["bomb"].path
    assert not found["ok"].problem
    assert sum(p.stat().st_size for p in unpacked.rglob("*") if p.is_file()) < 2**20


def test_zip_entries_are_capped_on_bytes_written(tmp_path, monkeypatch):
    monkeypatch.setattr(nbu, "MAX_NOTEBOOK_BYTES", 10_000)
    archive = tmp_path / "big.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("class/big.ipynb", b" " * (5 * 2**20))
        zf.writestr("class/small.ipynb", b"{}")
    found = _by_student(collect(archive, lab="minilab", unpack_dir=tmp_path / "unpacked"))
    assert found["big"].path.stat().st_size == 10_001  # one byte over: reading says why
    with pytest.raises(SubmissionError, match="larger than"):
        nbu.read(found["big"].path)


def test_zip_declaring_too_much_is_refused_before_unpacking(tmp_path, monkeypatch):
    monkeypatch.setattr(collect_module, "MAX_ZIP_BYTES", 2**20)
    archive = tmp_path / "many.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
        for i in range(3):
            zf.writestr(f"class/s{i}.ipynb", b" " * (600 * 2**10))
    with pytest.raises(CloudlabsError, match=r"unpacks to 2 MiB; refused"):
        collect(archive, lab="minilab", unpack_dir=tmp_path / "unpacked")
    assert not list((tmp_path / "unpacked").iterdir())


def test_unpacking_again_leaves_no_student_of_the_earlier_zip(tmp_path):
    unpacked = tmp_path / "unpacked"
    for students in (("kim", "lee"), ("lee",)):
        archive = tmp_path / "class.zip"
        with zipfile.ZipFile(archive, "w") as zf:
            for student in students:
                zf.writestr(f"class/{student}.ipynb", nbformat.writes(f.minilab()))
            zf.writestr("class/readme.txt", "hello")
        found = collect(archive, lab="minilab", unpack_dir=unpacked)
    assert [s.student for s in found] == ["lee"]
