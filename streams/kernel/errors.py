"""Errors an operator can act on, and the exit codes of ``bosai``. The CLI prints an error as one line, without a
traceback, and exits with the error's code (the table is in ``docs/reference/cli.md``)."""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    OK = 0
    CHECK_FAILED = 1  # a check found a problem, or a plan found drift (something would change)
    USAGE = 2  # the command line is wrong (click's usage errors)
    CLUSTER_UNAVAILABLE = 3  # the Kafka cluster could not be reached within the configured patience
    FAILED = 4  # an operational failure the command reports: a file, a configuration, a process that gave up
    INTERRUPTED = 130  # Ctrl-C / SIGINT


class BosaiError(Exception):
    """Base of every error the hub reports to an operator."""

    exit_code: ExitCode = ExitCode.FAILED


class CheckFailed(BosaiError):
    """A check or plan command found a problem or drift (it has printed what)."""

    exit_code = ExitCode.CHECK_FAILED


class ConfigError(BosaiError):
    """A configuration or data file is wrong: says which file, where in it, and what was expected."""

    def __init__(self, file: object, problem: str, *, where: str | None = None, expected: str | None = None):
        self.file = str(file)
        self.where = where
        self.problem = problem
        self.expected = expected
        text = self.file
        if where:
            text += f" [{where}]"
        text += f": {problem}"
        if expected:
            text += f" (expected {expected})"
        super().__init__(text)


class SettingsError(BosaiError):
    """A command's settings are wrong: which setting, what it was, and what was expected."""

    def __init__(self, what: str, setting: str, value: object, expected: str):
        self.setting = setting
        super().__init__(f"{what}: {setting} is {value!r} (expected {expected})")


class ClusterUnavailable(BosaiError):
    """The Kafka cluster did not answer within the configured patience (the message names it and the last error)."""

    exit_code = ExitCode.CLUSTER_UNAVAILABLE


class KafkaAccessDenied(BosaiError):
    """The Kafka cluster refused the hub's credential or an operation: waiting will not help."""
