"""Test helper: ``pyhf cls`` run in this process, through pyhf's own command line.

The tests that compare gammastar's CLs with ``pyhf cls`` on a written workspace check the file
and the numbers, not the shell: pyhf's click command (what the ``pyhf`` script calls) reads
the file here, without a new interpreter that imports pyhf again. The command run as a
process: test_reach.py::test_run_reach_writes_the_contract.
"""

from __future__ import annotations

import json
import os
from typing import Any


def pyhf_cls(workspace: str | os.PathLike[str], *args: str) -> dict[str, Any]:
    """The JSON that ``pyhf cls WORKSPACE ARGS...`` prints (exit status 0 asserted).

    gammastar never sets pyhf's backend or optimizer, so the command runs with pyhf's
    defaults, as in a new process."""
    from click.testing import CliRunner
    from pyhf.cli import cli

    from gammastar.reach.stats.workspace import quiet_pyhf

    with quiet_pyhf():  # pyhf's jsonschema deprecation (a warning is an error in the tests)
        res = CliRunner().invoke(cli, ["cls", os.fspath(workspace), *args], catch_exceptions=False)
    assert res.exit_code == 0, res.output
    return json.loads(res.stdout)
