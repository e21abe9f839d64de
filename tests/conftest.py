"""Shared fixtures: each area keeps its own in tests/fixtures/ and they are gathered here."""

from tests.fixtures.agents import *  # noqa: F403
from tests.fixtures.bundling import *  # noqa: F403
from tests.fixtures.claude import *  # noqa: F403
from tests.fixtures.common import *  # noqa: F403
from tests.fixtures.emulator import *  # noqa: F403
from tests.fixtures.github import *  # noqa: F403
from tests.fixtures.tui import *  # noqa: F403
