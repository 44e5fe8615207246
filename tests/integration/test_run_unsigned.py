"""`dita run` without a control key says, once, that anyone who reaches the cluster can steer it."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import Cluster
from tests.integration.test_run_refused import ended, run

pytestmark = pytest.mark.hazelcast

WARNING = "anyone who can reach the cluster can steer this kernel"


def test_an_unsigned_run_says_anyone_can_steer_it_and_a_signed_one_does_not(
    cluster: Cluster, tmp_path: Path
) -> None:
    code, out, err = ended(run(cluster, "--kernel-id", "unsigned-1", "--steps", "5"))
    assert code == 0, out + err
    [warning] = [line for line in err.splitlines() if WARNING in line]
    assert warning.startswith("dita: no control key")
    assert "--control-key-file" in warning and "DITA_CONTROL_KEY" in warning, warning

    key = tmp_path / "k.key"
    key.write_text("secret\n")
    code, out, err = ended(
        run(cluster, "--kernel-id", "signed-1", "--steps", "5", "--control-key-file", str(key))
    )
    assert code == 0, out + err
    assert WARNING not in err
