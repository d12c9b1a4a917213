"""The patient kernel client: a poll that missed its wake-up costs one short poll, not the whole run."""

import asyncio
import time
from queue import Empty

import nbformat
import pytest
from jupyter_client.channels import AsyncZMQSocketChannel
from nbformat.v4 import new_code_cell, new_notebook

from modekit.reproduction import notebook_client
from modekit.reproduction import runner as batch
from modekit.reproduction.notebook_client import PatientKernelClient, PatientKernelManager, PatientSocketChannel


def missing_first_polls(monkeypatch, misses):
    """The plain channel's get_msg reports 'nothing' for its first `misses` polls, as a poll that missed
    the socket's wake-up does, then returns the message."""
    asked = []

    async def plain_get_msg(self, timeout=None):
        asked.append(timeout)
        if len(asked) <= misses:
            raise Empty
        return {"content": "the reply"}

    monkeypatch.setattr(AsyncZMQSocketChannel, "get_msg", plain_get_msg)
    return asked


def test_missed_wake_ups_cost_short_polls_not_the_whole_wait(monkeypatch):
    monkeypatch.setattr(notebook_client, "POLL_INTERVAL_S", 0.01)
    asked = missing_first_polls(monkeypatch, misses=3)
    channel = PatientSocketChannel.__new__(PatientSocketChannel)
    assert asyncio.run(channel.get_msg(timeout=None)) == {"content": "the reply"}
    assert asked == [0.01] * 4  # never one endless poll, which a missed wake-up would leave waiting forever


def test_a_deadline_is_kept(monkeypatch):
    monkeypatch.setattr(notebook_client, "POLL_INTERVAL_S", 0.01)
    asked = missing_first_polls(monkeypatch, misses=10**9)
    channel = PatientSocketChannel.__new__(PatientSocketChannel)
    start = time.monotonic()
    with pytest.raises(Empty):
        asyncio.run(channel.get_msg(timeout=0.2))
    assert 0.2 <= time.monotonic() - start < 5 and len(asked) > 5 and max(asked) <= 0.01
    asked.clear()
    with pytest.raises(Empty):
        asyncio.run(channel.get_msg(timeout=0))  # timeout 0: one immediate poll
    assert asked == [0]


def test_the_manager_hands_out_patient_clients():
    client = PatientKernelManager().client()
    assert isinstance(client, PatientKernelClient)
    assert client.shell_channel_class is PatientSocketChannel and client.iopub_channel_class is PatientSocketChannel


def test_the_batch_reproduction_waits_through_the_patient_channel(tmp_path, monkeypatch):
    polls = []
    patient_get_msg = PatientSocketChannel.get_msg

    async def counted(self, timeout=None):
        polls.append(timeout)
        return await patient_get_msg(self, timeout)

    monkeypatch.setattr(PatientSocketChannel, "get_msg", counted)
    notebook = new_notebook(
        cells=[new_code_cell("FAST = None\nOUT_DIR = None", metadata={"tags": ["parameters"]}), new_code_cell("print(6 * 7)")]
    )
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    (tmp_path / "notebooks").mkdir()
    nbformat.write(notebook, tmp_path / "notebooks" / "tiny.ipynb")
    monkeypatch.setattr(batch, "NOTEBOOK_DIR", tmp_path / "notebooks")
    (tmp_path / "out").mkdir()
    runs = batch.run_notebooks(tmp_path / "out", notebooks=["tiny"], progress=False)
    assert runs.status.tolist() == ["ok"], runs.error.tolist()
    assert polls, "papermill did not use the patient kernel client"
    executed = nbformat.read(tmp_path / "out" / "tiny.ipynb", as_version=4)
    assert executed.cells[-1].outputs[0]["text"] == "42\n"
