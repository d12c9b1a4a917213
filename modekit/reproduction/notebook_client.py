"""A kernel client for headless notebook runs that cannot miss a reply.

nbclient (under papermill) waits for a cell's reply with one asyncio poll of the kernel's socket for
as long as the cell may run. Now and then that poll misses the socket's wake-up and waits on, with
the reply already there (jupyter/nbclient#312): we saw a FAST notebook's widget cell hang for 15
minutes in CI with the kernel idle and answering other clients. A poll that ends re-reads the
socket's state, so waiting in short polls turns a missed wake-up into a delay of one poll.

Pass `kernel_manager_class=PatientKernelManager` to `papermill.execute_notebook` (or nbclient's
`NotebookClient`).
"""

from __future__ import annotations

import time
from queue import Empty

from jupyter_client.asynchronous import AsyncKernelClient
from jupyter_client.channels import AsyncZMQSocketChannel
from jupyter_client.manager import AsyncKernelManager
from traitlets import Type

POLL_INTERVAL_S = 0.5


class PatientSocketChannel(AsyncZMQSocketChannel):
    """`get_msg` in polls of at most POLL_INTERVAL_S seconds until the message or the deadline."""

    async def get_msg(self, timeout: float | None = None) -> dict:
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            left = POLL_INTERVAL_S if deadline is None else max(0.0, deadline - time.monotonic())
            try:
                return await super().get_msg(timeout=min(POLL_INTERVAL_S, left))
            except Empty:
                if deadline is not None and time.monotonic() >= deadline:
                    raise


class PatientKernelClient(AsyncKernelClient):
    shell_channel_class = Type(PatientSocketChannel)
    iopub_channel_class = Type(PatientSocketChannel)
    control_channel_class = Type(PatientSocketChannel)


class PatientKernelManager(AsyncKernelManager):
    client_factory = Type(PatientKernelClient)
