"""`sentinel alert`, `sentinel incidents ...` and `sentinel silences ...` against the real services."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

BIN = Path(sys.executable).parent


async def sentinel(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return await asyncio.to_thread(
        subprocess.run,
        [str(BIN / "sentinel"), *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env=env,
    )


async def sentinel_json(incidents: Any, *args: str) -> Any:
    done = await sentinel(*args, "--target", incidents.address, "--json")
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


ALERT = ["alert", "--title", "p99 latency over 2s", "--severity", "high", "--service", "cli-chat",
         "--model", "gpt-4o", "--type", "latency_spike",
         "--label", "env=prod", "--label", "region=eu"]  # fmt: skip


async def test_an_alert_reported_twice_is_one_incident_with_two_reports(incidents: Any) -> None:
    first = await sentinel_json(incidents, *ALERT)
    second = await sentinel(*ALERT, "--target", incidents.address)

    [r1] = first["results"]
    assert r1["outcome"] == "ALERT_OUTCOME_NEW_INCIDENT"
    assert second.returncode == 0, second.stderr
    header, row = second.stdout.splitlines()
    assert header.split()[:2] == ["OUTCOME", "INCIDENT"]
    assert row.split()[:2] == ["deduplicated", r1["incident_id"]]

    listed = await sentinel_json(incidents, "incidents", "list", "--service", "cli-chat")
    assert [i["incident_id"] for i in listed] == [r1["incident_id"]]
    assert listed[0]["alert_count"] == 1
    shown = await sentinel_json(incidents, "incidents", "get", r1["incident_id"])
    [stored] = shown["alerts"]
    assert int(stored["duplicate_count"]) == 1  # two reports: the first plus one repeat
    assert stored["labels"] == {"env": "prod", "region": "eu"}

    text = await sentinel("incidents", "list", "--state", "triggered", "--target", incidents.address)
    assert text.returncode == 0, text.stderr
    header, *rows = text.stdout.splitlines()
    assert header.split()[:3] == ["ID", "STATE", "SEVERITY"]
    assert any(row.startswith(r1["incident_id"]) and "triggered" in row and "high" in row for row in rows)
    detail = await sentinel("incidents", "get", r1["incident_id"], "--target", incidents.address)
    assert "state:" in detail.stdout and "alert_deduplicated" in detail.stdout
    [alert_row] = [line for line in detail.stdout.splitlines() if line.startswith(r1["fingerprint"][:19])]
    assert alert_row.split()[1:3] == ["firing", "2"]  # STATUS, REPORTS


async def test_ack_resolve_reopen_note_assign(incidents: Any) -> None:
    [result] = (await sentinel_json(incidents, *ALERT[:6], "cli-lifecycle"))["results"]
    incident_id = result["incident_id"]

    acked = await sentinel_json(incidents, "incidents", "ack", incident_id, "--actor", "alice")
    noted = await sentinel_json(incidents, "incidents", "note", incident_id, "rolled back the deploy",
                                "--actor", "alice")  # fmt: skip
    assigned = await sentinel_json(incidents, "incidents", "assign", incident_id, "bob", "carol")
    resolved = await sentinel_json(incidents, "incidents", "resolve", incident_id, "--reason", "fixed")
    reopened = await sentinel_json(incidents, "incidents", "reopen", incident_id)
    table = await sentinel("incidents", "ack", incident_id, "--target", incidents.address)
    shown = await sentinel_json(incidents, "incidents", "get", incident_id)

    assert acked["state"] == "INCIDENT_STATE_ACKNOWLEDGED"
    assert noted["kind"] == "TIMELINE_ENTRY_KIND_NOTE_ADDED"
    assert assigned["assignees"] == ["bob", "carol"]
    assert resolved["state"] == "INCIDENT_STATE_RESOLVED"
    assert reopened["state"] == "INCIDENT_STATE_TRIGGERED"
    assert reopened["reopen_count"] == 1
    assert table.returncode == 0, table.stderr
    assert "acknowledged" in table.stdout
    kinds = [entry["kind"] for entry in shown["timeline"]]
    for kind in ("STATE_CHANGED", "NOTE_ADDED", "ASSIGNED", "REOPENED"):
        assert f"TIMELINE_ENTRY_KIND_{kind}" in kinds
    notes = [e for e in shown["timeline"] if e["kind"] == "TIMELINE_ENTRY_KIND_NOTE_ADDED"]
    assert notes[0]["message"] == "rolled back the deploy"
    assert "alice" in notes[0]["actor"]


async def test_silences_add_list_expire(incidents: Any) -> None:
    created = await sentinel_json(
        incidents, "silences", "add", "--matcher", "service=cli-silenced", "--matcher", "severity!=info",
        "--duration", "2h", "--comment", "deploy window", "--author", "dave",
    )  # fmt: skip
    silence_id = created["silence_id"]
    [muted] = (await sentinel_json(incidents, *ALERT[:6], "cli-silenced"))["results"]
    listed = await sentinel_json(incidents, "silences", "list", "--state", "active")
    table = await sentinel("silences", "list", "--target", incidents.address)
    expired = await sentinel_json(incidents, "silences", "expire", silence_id)
    after = await sentinel_json(incidents, "silences", "list", "--state", "expired")

    assert created["state"] == "SILENCE_STATE_ACTIVE"
    assert "dave" in created["created_by"]
    assert muted["outcome"] == "ALERT_OUTCOME_SUPPRESSED" and muted["silence_ids"] == [silence_id]
    assert silence_id in [s["silence_id"] for s in listed]
    assert table.returncode == 0, table.stderr
    assert silence_id in table.stdout and "service=cli-silenced,severity!=info" in table.stdout
    assert expired["state"] == "SILENCE_STATE_EXPIRED"
    assert silence_id in [s["silence_id"] for s in after]


async def test_watch_prints_a_change(incidents: Any) -> None:
    watch = subprocess.Popen(
        [str(BIN / "sentinel"), "incidents", "watch", "--service", "cli-watched", "--count", "1",
         "--target", incidents.address],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert watch.stdout is not None
        banner = await asyncio.to_thread(watch.stdout.readline)
        assert banner.startswith("watching")
        await asyncio.sleep(0.5)  # let the stream open on the server
        [result] = (await sentinel_json(incidents, *ALERT[:6], "cli-watched"))["results"]
        out, err = await asyncio.to_thread(watch.communicate, timeout=30)
    finally:
        if watch.poll() is None:
            watch.kill()
            watch.wait()
    assert watch.returncode == 0, err
    assert result["incident_id"] in out and "created" in out


async def test_watch_json_until_stopped(incidents: Any) -> None:
    watch = subprocess.Popen(
        [str(BIN / "sentinel"), "incidents", "watch", "--json", "--service", "cli-watched-json",
         "--target", incidents.address],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        await asyncio.sleep(1.5)
        [result] = (await sentinel_json(incidents, *ALERT[:6], "cli-watched-json"))["results"]
        assert watch.stdout is not None
        line = await asyncio.wait_for(asyncio.to_thread(watch.stdout.readline), timeout=30)
        watch.terminate()  # SIGTERM: a clean stop
        _, err = await asyncio.to_thread(watch.communicate, timeout=30)
    finally:
        if watch.poll() is None:
            watch.kill()
            watch.wait()
    event = json.loads(line)
    assert event["incident"]["incident_id"] == result["incident_id"]
    assert watch.returncode == 0, err


async def test_bad_input_exits_non_zero_with_the_servers_message(incidents: Any) -> None:
    missing = await sentinel("incidents", "get", "inc_nope", "--target", incidents.address)
    bad_regex = await sentinel("silences", "add", "--matcher", "service=~(", "--comment", "x",
                               "--target", incidents.address)  # fmt: skip
    [result] = (await sentinel_json(incidents, *ALERT[:6], "cli-bad"))["results"]
    await sentinel_json(incidents, "incidents", "resolve", result["incident_id"])
    await sentinel_json(incidents, "incidents", "resolve", result["incident_id"])  # a no-op
    closed = await sentinel("incidents", "ack", result["incident_id"], "--target", incidents.address)
    long_title = await sentinel(
        "alert", "--title", "x" * 301, "--service", "x", "--target", incidents.address
    )
    bad_matcher = await sentinel("silences", "add", "--matcher", "no operator", "--comment", "x",
                                 "--target", incidents.address)  # fmt: skip

    assert missing.returncode == 1
    assert "NOT_FOUND" in missing.stderr and "INCIDENT_NOT_FOUND" in missing.stderr
    assert bad_regex.returncode == 1 and "INVALID_ARGUMENT" in bad_regex.stderr
    assert closed.returncode == 1
    assert "FAILED_PRECONDITION" in closed.stderr and "INVALID_TRANSITION" in closed.stderr
    assert long_title.returncode == 1
    assert "INVALID_ARGUMENT" in long_title.stderr and "field=alerts[0].title" in long_title.stderr
    assert bad_matcher.returncode == 2 and "matcher" in bad_matcher.stderr


async def test_target_from_the_environment(incidents: Any) -> None:
    env = {**os.environ, "SENTINEL_INCIDENT_MANAGER_ADDR": incidents.address, "USER": "erin"}
    started = time.monotonic()
    [result] = json.loads((await sentinel(*ALERT[:6], "cli-env", "--json", env=env)).stdout)["results"]
    acked = await sentinel("incidents", "ack", result["incident_id"], "--json", env=env)
    assert acked.returncode == 0, acked.stderr
    shown = json.loads((await sentinel("incidents", "get", result["incident_id"], "--json", env=env)).stdout)
    actors = [e["actor"] for e in shown["timeline"] if e["kind"] == "TIMELINE_ENTRY_KIND_STATE_CHANGED"]
    assert any("erin" in actor for actor in actors)
    assert time.monotonic() - started < 60


async def test_a_reader_that_stops_early_ends_the_listing_quietly(incidents: Any) -> None:
    done = await sentinel(*ALERT[:6], "cli-pipe", "--target", incidents.address)
    assert done.returncode == 0, done.stderr

    def list_into_a_closed_pipe() -> tuple[int, str]:
        reader, writer = os.pipe()
        os.close(reader)  # the reader is gone before the first row: like `| head -0`
        with subprocess.Popen(
            [str(BIN / "sentinel"), "incidents", "list", "--target", incidents.address],
            stdout=writer,
            stderr=subprocess.PIPE,
            text=True,
        ) as process:
            os.close(writer)
            _, stderr = process.communicate(timeout=120)
        return process.returncode, stderr

    returncode, stderr = await asyncio.to_thread(list_into_a_closed_pipe)
    assert returncode == 141
    assert "Traceback" not in stderr and "BrokenPipeError" not in stderr
