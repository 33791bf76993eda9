"""Fault-injection tests. Each test names the fault class it proves with ``@pytest.mark.fault(ID)``;
``tools/reliability_report.py`` reads these marks (and the outcomes) into reports/reliability.md,
with the fault classes listed in ``faults.py``."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from faults import FAULTS  # noqa: E402


def pytest_configure(config):
    config.addinivalue_line("markers", "fault(id): the fault class (tests/reliability/faults.py) a test proves")


def pytest_collection_modifyitems(config, items):
    """A mark naming no known fault class is a typo that would drop the test from the report."""
    for item in items:
        for mark in item.iter_markers("fault"):
            if mark.args[0] not in FAULTS:
                raise ValueError(f"{item.nodeid}: unknown fault class {mark.args[0]!r}; known: {', '.join(FAULTS)}")
