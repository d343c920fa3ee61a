"""No credential of a shared batch (the S3 keys, the database password, the API key) reaches
anything the SDK shows or keeps: the commands' output and DEBUG logs, their errors (a 402
that stops the batch, a refused database login), the ledger's rows and ``batch status``."""

from __future__ import annotations

import json
import os
import sys
import uuid
from urllib.parse import quote

import anyio
import psycopg
import pytest
from postgres_server import PASSWORD, PostgresServer
from s3_server import ACCESS_KEY, SECRET, Buckets

from diffio_async.testing import emulated_diffio

pytestmark = pytest.mark.anyio


def _ledger_rows(url: str, batch: str) -> str:
    """Every column of every row of the batch, as text."""
    with psycopg.connect(url, autocommit=True) as admin:
        rows = admin.execute(
            "SELECT row_to_json(e)::text FROM diffio_ledger_entries AS e WHERE batch = %s "
            "UNION ALL SELECT row_to_json(b)::text FROM diffio_ledger_batches AS b "
            "WHERE name = %s",
            (batch, batch),
        ).fetchall()
    assert rows
    return "\n".join(str(row[0]) for row in rows)


async def test_no_credential_in_output_logs_errors_ledger_or_status(
    postgres_server: PostgresServer, s3: Buckets
) -> None:
    url = postgres_server.url()
    batch = f"secrets-{uuid.uuid4().hex[:10]}"
    for number in range(3):
        s3.put(f"in/take{number}.wav", b"RIFF" + os.urandom(300))
    cli = [sys.executable, "-m", "diffio_async", "batch"]
    shown: list[str] = []

    async def run(*words: str, code: int = 0) -> str:
        """Run ``batch WORDS`` with DEBUG logs on; keep everything it printed; its stdout."""
        done = await anyio.run_process(
            [*cli, *words], check=False, env={**os.environ, "DIFFIO_LOG": "debug"}
        )
        shown.append(done.stdout.decode() + done.stderr.decode())
        assert done.returncode == code, shown[-1]
        return str(done.stdout.decode())

    async with emulated_diffio(generation_seconds=0.05) as env:
        key = env.emulator.mint_key(admin=True)
        worker = ["-o", f"s3://{s3.output}/out", "--lease", "3", "--json"]
        worker += ["--api-key", key.key, "--base-url", env.base_url]
        await run("add", batch, f"s3://{s3.source}/in/", "--ledger", url)
        await run("run", batch, "--ledger", url, *worker)
        # billing fails: the next file's worker stops the batch (a 402 with its message)
        s3.put("more/take9.wav", b"RIFF" + os.urandom(300))
        await run("add", batch, f"s3://{s3.source}/more/", "--ledger", url)
        env.emulator.set_billing_hold(key_id=key.key_id)
        await run("run", batch, "--ledger", url, *worker, code=1)
        assert "paymentFailed" in shown[-1]
        await run("status", batch, "--ledger", url)
        status = json.loads(await run("status", batch, "--ledger", url, "--json"))
        assert "paymentFailed" in status["stop"]["reason"]
        # a database login refused: the password given is not echoed back
        wrong = url.replace(quote(PASSWORD, safe=""), "wrong-pw-Q9x")
        assert wrong != url
        await run("status", batch, "--ledger", wrong, code=2)
        assert "password authentication failed" in shown[-1]
    everything = "\n".join(shown) + _ledger_rows(url, batch)
    for secret in (SECRET, ACCESS_KEY, key.key, PASSWORD, "wrong-pw-Q9x"):
        assert secret not in everything, secret
