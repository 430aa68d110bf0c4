"""Cascade on a real two-node Ray cluster (tests/multinode/scenario.py), in its own process and its own cluster,
so it never meets this session's shared Ray instance. Storage: this session's PostgreSQL and moto_server."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import ROOT
from tests.services.postgres import PostgresServer
from tests.services.s3 import MotoServer


def test_two_nodes_share_images_and_history_and_survive_losing_the_gpu_node(
    postgres: PostgresServer, moto: MotoServer, tmp_path: Path
) -> None:
    report_path, log_path = tmp_path / "report.json", tmp_path / "run.log"
    env = {
        **os.environ,
        **moto.env,
        "CASCADE_STORAGE_URL": f"s3://{moto.create_bucket()}/images",
        "CASCADE_DATABASE_URL": postgres.create_database(),
    }
    env.pop("RAY_ADDRESS", None)
    with log_path.open("w") as log:
        result = subprocess.run(
            [sys.executable, "-m", "tests.multinode", "--json", str(report_path)],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            timeout=900,
        )
    output = log_path.read_text(errors="replace")
    assert report_path.exists(), output[-6000:]
    report = json.loads(report_path.read_text())
    print(output[output.rfind("| phase") :])  # the table, for `pytest -s`
    assert report["problems"] == [], report["problems"]
    assert result.returncode == 0, output[-6000:]
