"""The CLI tests' sandbox-process fixture, for the compliance end-to-end tests."""

from tests.cli.conftest import _restore_logging, sandbox_server

__all__ = ["_restore_logging", "sandbox_server"]
