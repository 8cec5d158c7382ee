"""TensorBoard scalars and images, written synchronously.

tensorboardX's ``SummaryWriter`` writes from a background thread fed by a bounded queue: when
that thread dies (a full disk: ENOSPC), the training loop blocks forever on the full queue,
and even Ctrl-C does not end it. This writer puts the same records (tensorboardX's protos and
record format, so TensorBoard reads them as before) into the event file from the caller's
thread and flushes each one, so a failing disk raises ``OSError`` where the loop can stop
cleanly (:func:`jaxgan.cli.cli_main`: one line, exit status 2).
"""

from __future__ import annotations

import os
import time

import numpy as np
from tensorboardX import summary
from tensorboardX.event_file_writer import EventsWriter
from tensorboardX.proto.event_pb2 import Event, SessionLog


class EventWriter:
    """One event file in ``logdir``; with ``purge_step``, TensorBoard hides the events of an
    earlier session from that step on (a resumed run's steps after its checkpoint)."""

    def __init__(self, logdir: str | os.PathLike, purge_step: int | None = None):
        os.makedirs(logdir, exist_ok=True)
        # a session's own file, after an earlier one of the same second in name order
        suffix = f".{time.time_ns()}"
        self._events = EventsWriter(os.path.join(logdir, "events"), filename_suffix=suffix)
        self._events.flush()
        if purge_step is not None:
            self._write(Event(step=purge_step, file_version="brain.Event:2"))
            self._write(Event(step=purge_step, session_log=SessionLog(status=SessionLog.START)))

    def add_scalar(self, tag: str, value: float, step: int) -> None:
        self._write(Event(wall_time=time.time(), step=step, summary=summary.scalar(tag, value)))

    def add_image(self, tag: str, image: np.ndarray, step: int) -> None:
        """An ``[H, W, C]`` uint8 image."""
        record = summary.image(tag, image, dataformats="HWC")
        self._write(Event(wall_time=time.time(), step=step, summary=record))

    def close(self) -> None:
        self._events.close()

    def _write(self, event: Event) -> None:
        self._events.write_event(event)
        self._events.flush()
