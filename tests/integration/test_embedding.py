"""The README's embedding example runs as written, in a process of its own."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import imagetag
from tests.support.assets import BUS

README = Path(__file__).resolve().parents[2] / "README.md"


def readme_example() -> str:
    text = README.read_text()
    match = re.search(r"<!-- embedding-example[^>]*-->\n```python\n(.*?)```", text, re.DOTALL)
    assert match, "the README has lost its embedding example"
    return match.group(1)


def test_the_readme_embedding_example_runs_as_written(tmp_path: Path) -> None:
    (tmp_path / "samples").mkdir()
    shutil.copy(BUS, tmp_path / "samples" / "bus.jpg")
    result = subprocess.run(
        [sys.executable, "-c", readme_example()],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    (line,) = result.stdout.splitlines()
    assert line.startswith("1 "), "image 1, the only one stored"
    assert "('street', 'human')" in line
    assert "('daytime', 'human')" in line
    assert re.search(r"\('(red|green|blue)', 'model'\)", line), line
    assert (tmp_path / ".imagetag-embedded" / "imagetag.db").is_file()


def test_the_public_api_is_importable_without_loading_adapters() -> None:
    code = (
        "import sys, imagetag; "
        "assert not {'sqlalchemy', 'cv2', 'litestar', 'requests'} & set(sys.modules), "
        "sorted(m for m in sys.modules if m.split('.')[0] in "
        "{'sqlalchemy', 'cv2', 'litestar', 'requests'}); "
        "print(len(imagetag.__all__))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    assert int(result.stdout) == len(imagetag.__all__)
    for name in imagetag.__all__:
        assert getattr(imagetag, name) is not None
