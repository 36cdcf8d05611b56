import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
import torch

torch.set_num_threads(2)


@pytest.fixture
def data_root() -> Path:
    """The real sample data (``$SLR_DATA_ROOT``); tests using it skip where it is absent."""
    root = os.environ.get("SLR_DATA_ROOT")
    if not root or not Path(root).is_dir():
        pytest.skip("SLR_DATA_ROOT is not set to the sample data folder (../shared/data); set it to run this test")
    return Path(root)


@pytest.fixture
def one_torch_thread():
    """One torch thread: tiny models run fastest without thread hand-offs, also on a loaded CPU."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def sigkill_once_written():
    """``run(command, path, **popen) -> exit code``: start ``command`` and SIGKILL it as soon as
    ``path`` exists (a real crash in the middle of a run; it gives up waiting after 300 s)."""

    def run(command: list[str], path: Path, **popen) -> int:
        victim = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, **popen)
        deadline = time.time() + 300
        while not path.exists() and time.time() < deadline and victim.poll() is None:
            time.sleep(0.02)
        victim.send_signal(signal.SIGKILL)
        victim.wait()
        return victim.returncode

    return run
