"""The install adds one top-level package, ``dispatch``: the repository's ``strategies/``
and ``migrations/`` folders install as ``dispatch.strategies`` and ``dispatch.migrations``,
so a user project with packages of those names keeps working."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

_PROBE = textwrap.dedent("""
    import importlib.util, sys
    import anyio
    import migrations, strategies            # the user's own packages
    assert migrations.MINE and strategies.MINE
    from dispatch.store import Store
    from dispatch.strategies import CsvStrategy

    async def main() -> None:
        store = await Store.open(sys.argv[1])   # our migrations, not the user's
        try:
            print(sorted(await store.counts()))
        finally:
            await store.close()

    anyio.run(main)
    print("ok", CsvStrategy.__module__)
""")


def _user_project(root: Path) -> Path:
    for name in ("migrations", "strategies"):
        (root / name).mkdir(parents=True)
        (root / name / "__init__.py").write_text("MINE = True\n")
    return root


def test_a_user_project_with_its_own_migrations_and_strategies_packages(tmp_path: Path) -> None:
    project = _user_project(tmp_path / "app")
    env = {**os.environ, "PYTHONPATH": str(project)}
    proc = subprocess.run([sys.executable, "-c", _PROBE, str(tmp_path / "x.db")], cwd=project,
                          env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines()[-1] == "ok dispatch.strategies.csv"


def test_no_generic_top_level_packages_are_installed(tmp_path: Path) -> None:
    code = ("import importlib.util as u; "
            "print([n for n in ('strategies', 'migrations') if u.find_spec(n)])")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    proc = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"
