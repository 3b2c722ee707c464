"""The header every written file carries: its format, and that each kind of file keeps working."""

from __future__ import annotations

import csv
import json
import re
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner

from symbp.cli import main
from symbp.provenance import Provenance, provenance, stamp_json, stamp_png, stamp_text
from tests.conftest import ROOT, network_spec

SPEC = network_spec(3, [(4, "tanh"), (2, "identity")], "softmax_cross_entropy", name="tiny")
HEADER = r"sha256:[0-9a-f]{64}"


def test_header_formats():
    text = stamp_text("print(1)\n")
    assert re.fullmatch(r"# symbp 0\.1\.0 " + HEADER, text.splitlines()[0])
    assert text.splitlines()[1] == "print(1)"
    tex = stamp_text("\\documentclass{article}\n", "%")
    assert re.fullmatch(r"% symbp 0\.1\.0 " + HEADER, tex.splitlines()[0])
    document = stamp_json({"a": 1})
    assert re.fullmatch(r'\{"symbp": "0\.1\.0 ' + HEADER + '",', document.splitlines()[0])
    assert json.loads(document)["report"] == {"a": 1}
    for data in (text, tex, document):
        assert provenance(data.encode()) is Provenance.OURS


@pytest.mark.parametrize(
    "change",
    [
        lambda b: b + b"\n",
        lambda b: b.replace(b"x = 1", b"x = 2"),
        lambda b: b[:-1],
        lambda b: b.replace(b"0.1.0", b"9.9.9", 1),
    ],
    ids=["appended", "changed", "cut", "version"],
)
def test_any_change_to_the_body_is_an_edit(change):
    data = stamp_text("x = 1\ny = 2\n").encode()
    changed = change(data)
    assert changed != data
    expected = Provenance.OURS if b"9.9.9" in changed else Provenance.EDITED
    assert provenance(changed) is expected  # the version is not hashed: it only informs


def test_no_header_is_foreign():
    for data in (b"", b"x = 1\n", b"# symbp 0.1.0\nx\n", b"# symbp 0.1.0 sha256:abc\n"):
        assert provenance(data) is Provenance.FOREIGN


def test_every_file_symbp_writes_verifies_and_still_works(tmp_path: Path, monkeypatch):
    """Modules import, .tex and the PDF compile and read, JSON and CSV parse, the PNG decodes."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "tiny.toml").write_text(SPEC)
    runner = CliRunner()
    commands = [
        ["generate", "tiny.toml", "-o", "tiny.py"],
        ["report", "tiny.toml", "--json", "-o", "r.json"],
        ["report", "tiny.toml", "-o", "r.txt"],
        ["report", "tiny.toml", "--sweep", "depth=1..2", "--csv", "-o", "s.csv"],
        ["report", "tiny.toml", "--sweep", "depth=1..2", "--plot", "s.png"],
    ]
    commands.append(["latex", "tiny.toml", "-o", "tiny.tex"])
    for args in commands:
        result = runner.invoke(main, args)
        assert result.exit_code == 0, (args, result.stderr)
    written = sorted(p.name for p in tmp_path.iterdir() if p.name != "tiny.toml")
    for name in written:
        assert provenance((tmp_path / name).read_bytes()) is Provenance.OURS, name
    assert json.loads((tmp_path / "r.json").read_text())["report"]["name"] == "tiny"
    lines = (tmp_path / "s.csv").read_text().splitlines()
    rows = list(csv.reader(line for line in lines if not line.startswith("#")))
    assert rows[0][0] == "depth" and len(rows) == 3
    import matplotlib.image

    assert matplotlib.image.imread(tmp_path / "s.png").shape[2] == 4
    assert "cheap gradient" in (tmp_path / "r.txt").read_text()


@pytest.mark.tex
def test_the_pdf_symbp_writes_verifies_and_reads(tmp_path: Path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "tiny.toml").write_text(SPEC)
    result = CliRunner().invoke(main, ["latex", "tiny.toml", "-o", "tiny.tex", "--pdf"])
    assert result.exit_code == 0, result.stderr
    written = sorted(p.name for p in tmp_path.iterdir() if p.name != "tiny.toml")
    assert {"tiny.tex", "tiny.pdf"} <= set(written)  # and the figure, with Graphviz
    for name in written:
        assert provenance((tmp_path / name).read_bytes()) is Provenance.OURS, name
    text = subprocess.run(
        ["pdftotext", "tiny.pdf", "-"], capture_output=True, text=True, check=True
    ).stdout
    assert "Backpropagation for" in text


def test_the_header_is_deterministic():
    """The same spec gives byte-identical files: the hash holds no date and no path."""
    from symbp.derivation import derive
    from symbp.emit.numpy_module import generate
    from symbp.front.spec import load

    spec = ROOT / "examples" / "mlp_digits.toml"
    first = generate(derive(load(spec)))
    assert first == generate(derive(load(spec)))
    assert (
        first.splitlines()[0] == (ROOT / "generated" / "mlp_digits.py").read_text().splitlines()[0]
    )


def test_a_png_without_our_chunk_is_foreign():
    png = b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\x0dIHDR" + bytes(17) + b"data"
    assert provenance(png) is Provenance.FOREIGN
    stamped = stamp_png(png)
    assert provenance(stamped) is Provenance.OURS
    assert provenance(stamped[:-1] + b"x") is Provenance.EDITED
