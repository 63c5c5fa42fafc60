"""``pip install .`` compiles the request path wherever a C compiler exists, and says why when it does not."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import pytest

from originlock.edge import build_info

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "buildtools"))
from hotpath import (  # noqa: E402
    BUILD_FILE,
    COMPILE_ENV,
    COMPILED,
    HOT_MODULES,
    NO_COMPILER,
    OPTED_OUT,
    PURE_ENV,
    HotPathBuildError,
    build_kind,
    extensions,
    h1_shim_extensions,
    nghttp2_link_args,
    shim_extensions,
)


def test_the_users_wheel_holds_every_hot_module_compiled(user_wheel: Path) -> None:
    with zipfile.ZipFile(user_wheel) as archive:
        names = archive.namelist()
        record = archive.read(BUILD_FILE).decode().strip()
    tag = f"cpython-{sys.version_info.major}{sys.version_info.minor}"
    missing = [m for m in HOT_MODULES if not any(n.startswith(m.removesuffix(".py") + f".{tag}") for n in names)]
    assert not missing, f"not compiled in the wheel: {missing}"
    assert any(n.startswith("originlock__mypyc.") for n in names), "mypyc's shared runtime module is missing"
    assert record == COMPILED


def test_the_installed_wheel_says_it_runs_compiled(wheel_tree: Path) -> None:
    probe = "from originlock.edge.build_info import hot_path_kind; print(hot_path_kind())"
    out = subprocess.run(
        [sys.executable, "-c", probe], env={"PYTHONPATH": str(wheel_tree)}, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "compiled (mypyc)"


@pytest.mark.parametrize(
    ("env", "compiler", "kind"),
    [
        ({}, "/usr/bin/cc", None),  # editable install / setup.py by hand: the source runs
        ({COMPILE_ENV: "1"}, "/usr/bin/cc", COMPILED),
        ({COMPILE_ENV: "1"}, None, NO_COMPILER),
        ({COMPILE_ENV: "1", PURE_ENV: "1"}, "/usr/bin/cc", OPTED_OUT),
    ],
)
def test_build_kind(env: dict[str, str], compiler: str | None, kind: str | None) -> None:
    assert build_kind(env, compiler) == kind


def test_a_mypyc_error_fails_the_build(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("mypyc")
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "__init__.py").write_text("")
    (tmp_path / "pkg" / "bad.py").write_text(
        textwrap.dedent("""
        def half(n: int) -> int:
            return n / 2
    """)
    )
    monkeypatch.chdir(tmp_path)
    with pytest.raises(HotPathBuildError, match="ORIGINLOCK_PURE=1"):
        extensions(Path("."), COMPILED, ["pkg/bad.py"])


@pytest.mark.parametrize(
    ("record", "says"),
    [
        (None, "editable install"),
        ("no-compiler", "no C compiler"),
        ("opted-out", "ORIGINLOCK_PURE=1"),
    ],
)
def test_serve_says_why_the_path_is_interpreted(monkeypatch: pytest.MonkeyPatch, record: str | None, says: str) -> None:
    monkeypatch.setattr(build_info, "hot_path_compiled", lambda: False)
    monkeypatch.setattr(build_info, "_build_record", lambda: record)
    assert build_info.hot_path_kind().startswith("interpreted (")
    assert says in build_info.hot_path_kind()


def test_the_users_wheel_holds_the_http2_shim_and_serve_runs_it(user_wheel: Path, wheel_tree: Path) -> None:
    tag = f"cpython-{sys.version_info.major}{sys.version_info.minor}"
    with zipfile.ZipFile(user_wheel) as archive:
        names = archive.namelist()
    assert any(n.startswith(f"originlock/proto/_ngshim.{tag}") for n in names), "the HTTP/2 shim is not built"
    probe = "from originlock.proto.http2 import h2_codec; print(h2_codec())"
    env = {"PYTHONPATH": str(wheel_tree)}
    out = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip().endswith("(compiled shim)"), out.stdout
    env["ORIGINLOCK_H2_SHIM"] = "0"
    out = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True, check=True)
    assert "cffi ABI mode" in out.stdout and "ORIGINLOCK_H2_SHIM=0" in out.stdout, out.stdout


def test_the_users_wheel_splits_response_and_request_heads_in_c(wheel_tree: Path) -> None:
    probe = (
        "from originlock.proto.http1_response import SPLIT_HEAD; from originlock.proto.http1 import SPLIT_REQUEST_HEAD;"
        " print(SPLIT_HEAD.__module__, SPLIT_REQUEST_HEAD.__module__)"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], env={"PYTHONPATH": str(wheel_tree)}, capture_output=True, text=True
    )
    assert out.stdout.split() == ["originlock.proto._h1shim"] * 2, out.stdout + out.stderr


def test_the_shim_needs_only_the_runtime_library() -> None:
    # Debian ships no libnghttp2.so without -dev: the versioned soname is linked by name.
    assert nghttp2_link_args("libnghttp2.so.14") == ["-l:libnghttp2.so.14"]
    assert nghttp2_link_args("/opt/lib/libnghttp2.14.dylib") == ["/opt/lib/libnghttp2.14.dylib"]
    assert nghttp2_link_args(None) is None


def test_without_libnghttp2_the_wheel_leaves_the_shim_out() -> None:
    assert shim_extensions(Path("src"), COMPILED, lambda: None) == []
    assert shim_extensions(Path("src"), NO_COMPILER, lambda: ["-l:libnghttp2.so.14"]) == []
    (extension,) = shim_extensions(Path("src"), COMPILED, lambda: ["-l:libnghttp2.so.14"])
    assert extension.name == "originlock.proto._ngshim" and extension.optional


def test_the_response_head_splitter_is_built_with_the_compiled_modules() -> None:
    assert h1_shim_extensions(Path("src"), NO_COMPILER) == []
    (extension,) = h1_shim_extensions(Path("src"), COMPILED)
    assert extension.name == "originlock.proto._h1shim" and extension.optional and not extension.libraries
